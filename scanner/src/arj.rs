//! ARJ archives, read without I/O: the members of an archive, each unpacked within a byte
//! budget (ClamAV opens ARJ too, `libclamav/unarj.c`).
//!
//! Layout (Robert Jung's ARJ technical notes): every header starts with the marker `60 EA`
//! and a two-octet size of its basic part (0 ends the archive), then the basic header, its
//! CRC-32, and extended headers (`size, data, CRC`) up to one of size 0. The first header
//! describes the archive; each later one a file whose packed data follows it. Methods: 0
//! stored; 1–3 LZSS with static Huffman blocks — the layout of Okumura's ar002 with a
//! 64 KiB position alphabet, which LHA calls `-lh7-` (decoded by `compcol`); 4 ARJ's own
//! "fastest" scheme (unary-prefixed lengths and positions, decoded here).

/// The container name in ClamAV's terms (for `.ldb` container conditions).
pub const CONTAINER: &str = "CL_TYPE_ARJ";

/// ARJ's header marker.
const MARKER: [u8; 2] = [0x60, 0xea];
/// The largest basic header ARJ writes (`HEADERSIZE_MAX`).
const HEADER_MAX: usize = 2600;
/// Header flag: the member is encrypted ("garbled").
const GARBLED: u8 = 0x01;
/// File types that carry no data to scan: the archive header (2), a directory (3), a volume
/// label (4).
const NO_DATA_TYPES: [u8; 3] = [2, 3, 4];

pub use crate::unpacked::Member;

/// A member's header fields this reader uses.
struct Header<'a> {
    flags: u8,
    method: u8,
    file_type: u8,
    packed: usize,
    original: u64,
    name: &'a [u8],
}

/// Reads the header at `at` (its marker included); returns it and where its data starts, or
/// `None` at the end of the archive or on damage.
fn header(data: &[u8], at: usize) -> Option<(Header<'_>, usize)> {
    if data.get(at..at + 2)? != MARKER {
        return None;
    }
    let size = usize::from(u16::from_le_bytes(
        data.get(at + 2..at + 4)?.try_into().ok()?,
    ));
    if size == 0 || size > HEADER_MAX {
        return None;
    }
    let basic = data.get(at + 4..at + 4 + size)?;
    let first = usize::from(*basic.first()?);
    if first < 20 || first > size {
        return None;
    }
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(basic.get(o..o + 4)?.try_into().ok()?))
    };
    let rest = &basic[first..];
    let name = &rest[..memchr::memchr(0, rest).unwrap_or(rest.len())];
    let h = Header {
        flags: basic[4],
        method: basic[5],
        file_type: basic[6],
        packed: usize::try_from(u32_at(12)?).ok()?,
        original: u64::from(u32_at(16)?),
        name,
    };
    // Past the basic header's CRC, the extended headers: each a size, its octets and a CRC.
    let mut p = at + 4 + size + 4;
    loop {
        let ext = usize::from(u16::from_le_bytes(data.get(p..p + 2)?.try_into().ok()?));
        p += 2;
        if ext == 0 {
            break;
        }
        p = p.checked_add(ext + 4)?;
    }
    Some((h, p))
}

/// The members of the archive `data`, at most `max_members`, each unpacked to at most
/// `budget` octets (the budget is shared: what one member used is gone for the next).
/// `None` when `data` is not an ARJ archive.
pub fn members(data: &[u8], max_members: usize, mut budget: u64) -> Option<Vec<Member>> {
    let (main, mut at) = header(data, 0)?;
    if main.file_type != 2 {
        return None;
    }
    let mut out = Vec::new();
    while out.len() < max_members {
        let Some((h, start)) = header(data, at) else {
            break;
        };
        let Some(packed) = start
            .checked_add(h.packed)
            .and_then(|end| data.get(start..end))
        else {
            break;
        };
        at = start + h.packed;
        if NO_DATA_TYPES.contains(&h.file_type) {
            continue;
        }
        let name = String::from_utf8_lossy(h.name).into_owned();
        if h.flags & GARBLED != 0 {
            out.push(Member {
                name,
                data: Vec::new(),
                capped: false,
                encrypted: true,
            });
            continue;
        }
        let cap = usize::try_from(budget.min(h.original)).unwrap_or(usize::MAX);
        let capped = h.original > budget;
        let data = match h.method {
            0 => packed[..packed.len().min(cap)].to_vec(),
            1..=3 => lh7(packed, cap),
            4 => fastest(packed, cap),
            _ => continue,
        };
        budget = budget.saturating_sub(data.len() as u64);
        out.push(Member {
            name,
            data,
            capped,
            encrypted: false,
        });
    }
    Some(out)
}

/// Methods 1–3: the `-lh7-` decoder of `compcol`, stopped after `len` octets. What was
/// decoded before any damage is kept (as ClamAV scans a partly unpacked member).
fn lh7(packed: &[u8], len: usize) -> Vec<u8> {
    use compcol::Algorithm;
    let dec = compcol::lha::Lh7::decoder_with(compcol::lha::DecoderConfig::with_len(len));
    crate::codec::drain(dec, packed, len)
}

/// MSB-first bit reader over a packed member (ARJ's `getbits`); past the end it reads zeros.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> u32 {
        let byte = self.data.get(self.pos / 8).copied().unwrap_or(0);
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        u32::from(b)
    }

    fn bits(&mut self, n: u32) -> u32 {
        (0..n).fold(0, |v, _| (v << 1) | self.bit())
    }

    fn exhausted(&self) -> bool {
        self.pos > self.data.len() * 8
    }

    /// A unary-prefixed number: up to `stop - start` one-bits, each doubling the step, then
    /// that many plus `start` bits (`decode_len`/`decode_ptr`).
    fn prefixed(&mut self, start: u32, stop: u32) -> u32 {
        let (mut plus, mut step, mut width) = (0u32, 1u32 << start, start);
        while width < stop {
            if self.bit() == 0 {
                break;
            }
            plus += step;
            step <<= 1;
            width += 1;
        }
        let v = if width != 0 { self.bits(width) } else { 0 };
        v + plus
    }
}

/// Method 4: a length (0 means a literal octet follows) then, for a match, its distance.
fn fastest(packed: &[u8], len: usize) -> Vec<u8> {
    // ARJ's constants: lengths from 0 to 7 prefix bits, positions from 9 to 13.
    const THRESHOLD: usize = 3;
    let mut bits = Bits {
        data: packed,
        pos: 0,
    };
    let mut out: Vec<u8> = Vec::with_capacity(len.min(1 << 20));
    while out.len() < len && !bits.exhausted() {
        let c = bits.prefixed(0, 7) as usize;
        if c == 0 {
            out.push(bits.bits(8) as u8);
            continue;
        }
        let n = c - 1 + THRESHOLD;
        let distance = bits.prefixed(9, 13) as usize + 1;
        let Some(from) = out.len().checked_sub(distance) else {
            break;
        };
        for i in 0..n.min(len - out.len()) {
            let b = out[from + i];
            out.push(b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/arj");

    /// Archives made by Debian's `arj` 3.10 (`arj a -mN`) of a text and a binary file, one
    /// per method.
    #[test]
    fn unpacks_every_method() {
        let text = std::fs::read(format!("{DIR}/text.txt")).expect("text");
        let bin = std::fs::read(format!("{DIR}/random.bin")).expect("bin");
        for m in 0..=4 {
            let arj = std::fs::read(format!("{DIR}/m{m}.arj")).expect("archive");
            let got = members(&arj, 10, u64::MAX).expect("an archive");
            assert_eq!(got.len(), 2, "method {m}");
            assert_eq!(got[0].name, "text.txt");
            assert!(got[0].data == text, "method {m}: text differs");
            assert!(got[1].data == bin, "method {m}: binary differs");
            assert!(!got[0].capped && !got[1].encrypted);
        }
    }

    #[test]
    fn the_budget_caps_what_is_unpacked() {
        let arj = std::fs::read(format!("{DIR}/m1.arj")).expect("archive");
        let got = members(&arj, 10, 1000).expect("an archive");
        assert_eq!(got[0].data.len(), 1000);
        assert!(got[0].capped && got[1].capped && got[1].data.is_empty());
        assert_eq!(members(&arj, 1, u64::MAX).map(|m| m.len()), Some(1));
    }

    /// clamav-testfiles' `clam.arj` holds clam.exe (method 1).
    #[test]
    fn clamav_sample() {
        let arj = std::fs::read("/usr/share/clamav-testfiles/clam.arj")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
        let got = members(&arj, 10, u64::MAX).expect("an archive");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "clam.exe");
        assert!(got[0].data == exe);
    }

    #[test]
    fn damage_ends_the_listing_without_a_panic() {
        let arj = std::fs::read(format!("{DIR}/m4.arj")).expect("archive");
        for cut in [0, 3, 10, 60, 200, arj.len() / 2, arj.len() - 1] {
            let _ = members(&arj[..cut], 10, u64::MAX);
        }
        let mut flipped = arj.clone();
        for i in (0..flipped.len()).step_by(37) {
            flipped[i] ^= 0x5a;
        }
        let _ = members(&flipped, 10, 1 << 20);
        assert_eq!(members(b"not an archive", 10, 100), None);
    }
}
