//! UPX: a program whose first section (UPX0) is empty in the file and whose second (UPX1)
//! holds the compressed image and the loader. The loader's decompression routine, found at
//! a fixed place after the entry point, tells the method: NRV2B, NRV2D or NRV2E (UCL's LZ77
//! coders with 32-bit little-endian bit words, below) or LZMA (its properties in the stub).
//! Like ClamAV, the routine found is tried first (with the loader's offset into UPX1 when
//! `mov esi, …` names one), then the other NRV coders, at offset 0 and 0x15.
//!
//! The decompressed image starts at UPX0's address. As ClamAV does, the original program is
//! rebuilt from its own PE header, found right after the import names the loader's data
//! points to (or by searching back from the image's end): its sections laid out one after
//! another behind the headers. Without a header, one of postcore's own goes around the
//! whole image; with one that does not fit the image, the bare image is what is scanned.

use super::rebuild::{self, Placed};

/// The section alignment of a header built around a bare image.
const SECTION_ALIGN: u32 = 0x1000;
use super::{MAX_IMAGE, Pe, align_down, align_up};
use crate::le::le32;

/// Loader code that identifies each NRV routine (ClamAV's `UPX_NRV2B` … patterns).
const NRV2B: [u8; 24] = [
    0x11, 0xdb, 0x11, 0xc9, 0x01, 0xdb, 0x75, 0x07, 0x8b, 0x1e, 0x83, 0xee, 0xfc, 0x11, 0xdb, 0x11,
    0xc9, 0x11, 0xc9, 0x75, 0x20, 0x41, 0x01, 0xdb,
];
const NRV2D: [u8; 24] = [
    0x83, 0xf0, 0xff, 0x74, 0x78, 0xd1, 0xf8, 0x89, 0xc5, 0xeb, 0x0b, 0x01, 0xdb, 0x75, 0x07, 0x8b,
    0x1e, 0x83, 0xee, 0xfc, 0x11, 0xdb, 0x11, 0xc9,
];
const NRV2E: [u8; 24] = [
    0xeb, 0x52, 0x31, 0xc9, 0x83, 0xe8, 0x03, 0x72, 0x11, 0xc1, 0xe0, 0x08, 0x8a, 0x06, 0x46, 0x83,
    0xf0, 0xff, 0x74, 0x75, 0xd1, 0xf8, 0x89, 0xc5,
];
/// The LZMA loaders: UPX 2 (fixed properties lc 3, lp 0, pb 2) and UPX 1 (properties in
/// the stub).
const LZMA2: [u8; 20] = [
    0x56, 0x83, 0xc3, 0x04, 0x53, 0x50, 0xc7, 0x03, 0x03, 0x00, 0x02, 0x00, 0x90, 0x90, 0x90, 0x90,
    0x90, 0x55, 0x57, 0x56,
];
const LZMA1_FIRST: [u8; 8] = [0x56, 0x83, 0xc3, 0x04, 0x53, 0x50, 0xc7, 0x03];
const LZMA1_SECOND: [u8; 8] = [0x90, 0x90, 0x90, 0x55, 0x57, 0x56, 0x53, 0x83];

/// The NRV variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nrv {
    B,
    D,
    E,
}

/// The rebuilt program, if `pe` is UPX-packed and decompresses.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let e = pe.ep_window();
    let i = pe.packed_after_empty()?;
    let (upx0, upx1) = (pe.sections[i], pe.sections[i + 1]);
    let ssize = upx1.rsz;
    let dsize = upx0.vsz.checked_add(upx1.vsz)?;
    if ssize <= 0x19 || dsize <= ssize || dsize > MAX_IMAGE {
        return None;
    }
    let src = pe.read(upx1.raw, ssize);
    if src.len() != ssize as usize {
        return None;
    }
    let named = [(Nrv::B, &NRV2B), (Nrv::D, &NRV2D), (Nrv::E, &NRV2E)]
        .into_iter()
        .find(|(_, pattern)| names(pattern, e, 0x69) || names(pattern, e, 0x71))
        .map(|(nrv, _)| nrv);
    let layout = Layout {
        base: pe.image_base,
        upx0: upx0.rva,
        upx1: upx1.rva,
    };
    // Each attempt: the coder, where in UPX1 its stream starts (the entry point moves back
    // by the same amount, as the loader's data is found relative to it).
    let attempt = |nrv: Nrv, skew: usize| -> Option<Vec<u8>> {
        let from = src.get(skew..)?;
        let image = inflate(nrv, from, dsize)?;
        let ep = pe.vep.wrapping_sub(skew as u32);
        Some(layout.file(from, ep, nrv.loader_offsets(), image, dsize))
    };
    let mut file = None;
    if let Some(nrv) = named {
        let skew = le32(e, 2)
            .map(|v| v.wrapping_sub(pe.image_base).wrapping_sub(upx1.rva) as i32)
            .filter(|&s| e.get(1) == Some(&0xbe) && s > 0 && s <= 0xfff && s as u32 <= ssize)
            .unwrap_or(0) as usize;
        file = attempt(nrv, skew);
        if file.is_none() && skew != 0 {
            file = attempt(nrv, 0);
        }
    }
    for nrv in [Nrv::B, Nrv::D, Nrv::E] {
        if file.is_none() && named != Some(nrv) {
            file = attempt(nrv, 0).or_else(|| attempt(nrv, 0x15));
        }
    }
    // An LZMA loader decides on its own (ClamAV lets its result replace the NRV one).
    if let Some((size, props)) = lzma_loader(e) {
        let skew = if ssize > 0x15 && e.first() == Some(&0x60) && e.get(1) == Some(&0xbe) {
            le32(e, 2)
                .map(|v| v.wrapping_sub(upx1.rva).wrapping_sub(pe.image_base))
                .filter(|&s| s == 0x15)
                .unwrap_or(0) as usize
        } else {
            0
        };
        file = if size <= dsize {
            lzma(&src[skew..], size, props)
                .map(|image| layout.file(&src[skew..], pe.vep, &LZMA_LOADER, image, size))
        } else {
            None
        };
    }
    file
}

/// Offsets in the loader of the `lea edi, [esi + imports]` that names the original imports
/// (right after them, the original PE header), per coder.
const NRV2B_LOADER: [u32; 3] = [0x108, 0x110, 0xd5];
const NRV2D_LOADER: [u32; 2] = [0x11c, 0x124];
const NRV2E_LOADER: [u32; 2] = [0x128, 0x130];
const LZMA_LOADER: [u32; 2] = [0xb16, 0xb1e];

impl Nrv {
    fn loader_offsets(self) -> &'static [u32] {
        match self {
            Nrv::B => &NRV2B_LOADER,
            Nrv::D => &NRV2D_LOADER,
            Nrv::E => &NRV2E_LOADER,
        }
    }
}

/// Where the packed program lives: its image base and the two UPX sections' RVAs.
struct Layout {
    base: u32,
    upx0: u32,
    upx1: u32,
}

/// Room for a DOS header before the original PE header, where ClamAV puts it.
const DOS_ROOM: usize = 0xd0;
/// PE signature, file header and PE32 optional header (with its directories).
const PE_HEADER: usize = 0xf8;
const SECTION_ENTRY: usize = 0x28;

impl Layout {
    /// The file scanned for a decompressed image (`image`, `dsize` octets of room of which
    /// the stream filled the first `image.len()`): the original program rebuilt from its own
    /// PE header when the loader's data leads to it (or one is found by searching back from
    /// the end), each section at a file offset of its own, as ClamAV rebuilds it; a header
    /// of postcore's own around the whole image when there is none; the image as it is when
    /// the header found does not fit it.
    fn file(&self, src: &[u8], ep: u32, loader: &[u32], image: Vec<u8>, dsize: u32) -> Vec<u8> {
        let dend = image.len();
        let mut buf = image;
        buf.resize(dsize as usize, 0);
        let (header, stuff) = match self.original_header(src, ep, loader, &buf, dend) {
            Some(found) => found,
            None => {
                let region = Placed {
                    raw: 0,
                    rva: SECTION_ALIGN,
                    size: dend as u32,
                    vsize: dend as u32,
                };
                return rebuild::pe(
                    &buf[..dend],
                    &[region],
                    self.base,
                    SECTION_ALIGN,
                    SECTION_ALIGN,
                )
                .unwrap_or(buf);
            }
        };
        self.restore(buf, header, stuff).unwrap_or_else(|raw| raw)
    }

    /// The original PE header's offset in the image and the size of what precedes the
    /// imports (the program's own sections).
    fn original_header(
        &self,
        src: &[u8],
        ep: u32,
        loader: &[u32],
        buf: &[u8],
        dend: usize,
    ) -> Option<(usize, u32)> {
        let at_ep = i64::from(ep) - i64::from(self.upx1);
        let n = src.len() as i64;
        let fits =
            |at: i64, len: i64, room: i64| at >= 0 && len > 0 && len <= room && at <= room - len;
        let mut lea = loader.iter().copied().find(|&m| {
            let p = at_ep + i64::from(m) - 2;
            fits(p, 2, n - 5) && src[p as usize] == 0x8d && src[p as usize + 1] == 0xbe
        });
        if lea.is_none() && fits(at_ep + 0x80, 8, n - 8) {
            let mut pt = (at_ep + 0x80) as usize;
            while let Some(q) = src
                .get(pt..src.len().saturating_sub(8))
                .and_then(|w| memchr::memmem::find(w, b"\x8d\xbe"))
            {
                let q = pt + q;
                if src[q + 6] == 0x8b && src[q + 7] == 0x07 {
                    lea = u32::try_from(q as i64 + 2 - at_ep).ok();
                    break;
                }
                pt = q + 1;
            }
        }
        if let Some(v) = lea {
            let p = at_ep + i64::from(v);
            if fits(p, 4, n) {
                let imports = le32(src, p as usize).map_or(-1, |x| i64::from(x as i32));
                if imports >= 0 && (imports as usize) < buf.len() {
                    let hdr = skip_imports(buf, imports as usize) + 4;
                    if check_pe(buf, hdr).is_some() {
                        return Some((hdr, imports as u32));
                    }
                }
            }
        }
        if dend > PE_HEADER + SECTION_ENTRY {
            let mut p = dend - PE_HEADER - SECTION_ENTRY;
            while p > 0 {
                if check_pe(buf, p).is_some() {
                    return Some((p, p as u32));
                }
                p -= 1;
            }
        }
        None
    }

    /// Lays the original sections out one after another behind the headers (each section's
    /// virtual size rounded to the section alignment, which also becomes the file
    /// alignment). `Err` with the image as it is when a section does not fit it.
    fn restore(&self, mut buf: Vec<u8>, header: usize, stuff: u32) -> Result<Vec<u8>, Vec<u8>> {
        let Some((align, count, table)) = check_pe(&buf, header) else {
            return Err(buf);
        };
        let mut offset = align_up((DOS_ROOM + PE_HEADER + SECTION_ENTRY * count) as u32, align);
        for k in 0..count {
            let e = table + k * SECTION_ENTRY;
            let (Some(vs), Some(va)) = (le32(&buf, e + 8), le32(&buf, e + 12)) else {
                return Err(buf);
            };
            let vsize = align_up(vs, align);
            let rva = align_down(va, align);
            let inside = vsize > 0
                && stuff > 0
                && vsize <= stuff
                && rva >= self.upx0
                && u64::from(rva) + u64::from(vsize) <= u64::from(self.upx0) + u64::from(stuff);
            let Some(next) = offset.checked_add(vsize).filter(|_| inside) else {
                return Err(buf);
            };
            for (at, v) in [(8, vsize), (12, rva), (16, vsize), (20, offset)] {
                buf[e + at..e + at + 4].copy_from_slice(&v.to_le_bytes());
            }
            offset = next;
        }
        buf[header + 8..header + 12].copy_from_slice(b"CLAM");
        buf[header + 0x3c..header + 0x40].copy_from_slice(&align.to_le_bytes());
        if offset > MAX_IMAGE || offset as usize > buf.len() + 8192 {
            return Err(buf);
        }
        let mut file = vec![0u8; offset as usize];
        file[..2].copy_from_slice(b"MZ");
        file[0x3c..0x40].copy_from_slice(&(DOS_ROOM as u32).to_le_bytes());
        let head_len = PE_HEADER + SECTION_ENTRY * count;
        file[DOS_ROOM..DOS_ROOM + head_len].copy_from_slice(&buf[header..header + head_len]);
        for k in 0..count {
            let e = table + k * SECTION_ENTRY;
            let (raw, size, rva) = (
                le32(&buf, e + 20).unwrap_or(0),
                le32(&buf, e + 16).unwrap_or(0),
                le32(&buf, e + 12).unwrap_or(0),
            );
            let from = rva.wrapping_sub(self.upx0) as usize;
            if u64::from(raw) + u64::from(size) > u64::from(offset) || from > buf.len() {
                return Err(buf);
            }
            let n = (size as usize).min(buf.len() - from);
            file[raw as usize..raw as usize + n].copy_from_slice(&buf[from..from + n]);
        }
        Ok(file)
    }
}

/// Past the import descriptors the loader keeps before the original header: entries of a
/// dword (0 ends them) and four more octets, then names, each zero-terminated, up to an
/// empty one.
fn skip_imports(buf: &[u8], mut p: usize) -> usize {
    let inside = |p: usize, n: usize| p + n <= buf.len();
    while inside(p, 8) && le32(buf, p) != Some(0) {
        p += 8;
        while inside(p, 2) && buf[p] != 0 {
            p += 1;
            while inside(p, 2) && buf[p] != 0 {
                p += 1;
            }
            p += 1;
        }
        p += 1;
    }
    p
}

/// A PE header at `p` whole in `buf`: its section alignment, section count and the
/// offset of its section table.
fn check_pe(buf: &[u8], p: usize) -> Option<(u32, usize, usize)> {
    if p.checked_add(PE_HEADER)? > buf.len() || le32(buf, p)? != 0x4550 {
        return None;
    }
    let align = le32(buf, p + 0x38).filter(|&a| a != 0)?;
    let count = usize::from(crate::le::le16(buf, p + 6)?);
    let table = p + PE_HEADER;
    if count == 0 || table + count * SECTION_ENTRY > buf.len() {
        return None;
    }
    Some((align, count, table))
}

/// ClamAV's `cli_memstr(pattern, 24, ep + at, 13)`: the 13 octets at `at` occur in the
/// pattern.
fn names(pattern: &[u8; 24], e: &[u8], at: usize) -> bool {
    e.get(at..at + 13)
        .is_some_and(|needle| pattern.windows(13).any(|w| w == needle))
}

/// The LZMA loader's output size and properties (lc, lp, pb), if the stub is one.
fn lzma_loader(e: &[u8]) -> Option<(u32, (u8, u8, u8))> {
    if e.get(0x2f..0x2f + 20) == Some(&LZMA2[..]) {
        return Some((le32(e, 0x21)?, (3, 0, 2)));
    }
    if e.get(0x39..0x41) == Some(&LZMA1_FIRST[..]) && e.get(0x45..0x4d) == Some(&LZMA1_SECOND[..]) {
        let p = le32(e, 0x41)?.to_le_bytes();
        return Some((le32(e, 0x2b)?, (p[0], p[1], p[2])));
    }
    None
}

/// UPX's LZMA: two octets of its own header, then a raw LZMA stream.
fn lzma(src: &[u8], size: u32, props: (u8, u8, u8)) -> Option<Vec<u8>> {
    super::raw_lzma(src.get(2..)?, true, props, size)
}

/// The bit reader: 32-bit little-endian words, most significant bit first, a marker bit
/// telling when the word is used up.
struct Bits<'a> {
    src: &'a [u8],
    at: usize,
    word: u32,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let old = self.word;
        self.word = self.word.wrapping_mul(2);
        if old & 0x7fff_ffff != 0 {
            return Some(old >> 31);
        }
        let w = le32(self.src, self.at)?;
        self.at += 4;
        self.word = w.wrapping_mul(2).wrapping_add(1);
        Some(w >> 31)
    }

    fn octet(&mut self) -> Option<u8> {
        let b = *self.src.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    /// `v * 2 + bit`, refused past the coder's bound.
    fn push(&mut self, v: u32, bound: u32) -> Option<u32> {
        let b = self.bit()?;
        (v.checked_add(b)? <= bound).then(|| v * 2 + b)
    }
}

/// Decompresses an NRV stream into at most `dsize` octets; `None` if it does not end
/// cleanly (an end marker) within the bounds.
fn inflate(nrv: Nrv, src: &[u8], dsize: u32) -> Option<Vec<u8>> {
    const OFFSET_BOUND: u32 = i32::MAX as u32 / 2;
    const SIZE_BOUND: u32 = u32::MAX / 2;
    let mut r = Bits {
        src,
        at: 0,
        word: 0,
    };
    let mut out: Vec<u8> = Vec::new();
    let cap = dsize as usize;
    let mut last: u32 = u32::MAX; // the previous match's offset, as a negative i32
    loop {
        while r.bit()? == 1 {
            if out.len() >= cap {
                return None;
            }
            out.push(r.octet()?);
        }
        // The offset's high part: Elias-gamma-like pairs (2D/2E interleave a decrement).
        let mut high: u32 = 1;
        loop {
            high = r.push(high, OFFSET_BOUND)?;
            if r.bit()? == 1 {
                break;
            }
            if nrv != Nrv::B {
                high -= 1;
                high = r.push(high, OFFSET_BOUND)?;
            }
        }
        let mut len: u32 = 0;
        if high >= 3 {
            let h = high - 3;
            if h & 0xff00_0000 != 0 {
                return None;
            }
            let offset = ((h << 8) + u32::from(r.octet()?)) ^ u32::MAX;
            if offset == 0 {
                break;
            }
            if nrv == Nrv::B {
                last = offset;
            } else {
                len = offset & 1;
                last = ((offset as i32) >> 1) as u32;
            }
        } else if nrv != Nrv::B {
            len = r.bit()?;
        }
        let mut len = match nrv {
            Nrv::B | Nrv::D => {
                if nrv == Nrv::B {
                    len = r.bit()?;
                }
                len = r.push(len, SIZE_BOUND)?;
                if len == 0 {
                    len = gamma(&mut r, SIZE_BOUND)?.checked_add(2)?;
                }
                len
            }
            Nrv::E => {
                if len != 0 {
                    r.bit()?
                } else if r.bit()? == 1 {
                    2 + r.bit()?
                } else {
                    gamma(&mut r, SIZE_BOUND)?.checked_add(2)?
                }
            }
        };
        let far = if nrv == Nrv::B {
            0xffff_f300
        } else {
            0xffff_fb00
        };
        if last < far {
            len += 1;
        }
        len += if nrv == Nrv::E { 2 } else { 1 };
        let back = (last as i32).unsigned_abs() as usize;
        let n = len as usize;
        if (last as i32) >= 0 || back > out.len() || out.len() + n > cap {
            return None;
        }
        let from = out.len() - back;
        for k in 0..n {
            let b = out[from + k];
            out.push(b);
        }
    }
    Some(out)
}

/// The length's gamma code after a 0: a leading 1, then (bit, continue-while-0) pairs.
fn gamma(r: &mut Bits<'_>, bound: u32) -> Option<u32> {
    let mut v: u32 = 1;
    loop {
        v = r.push(v, bound)?;
        if r.bit()? == 1 {
            return Some(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw LZMA1 stream (lc 4, lp 0, pb 2) made with Python's `lzma`, behind UPX's two
    /// octets of its own header, as the UPX 1 loader's properties would name it.
    #[test]
    fn lzma_stream_after_upx_header_decodes() {
        let text = include_bytes!("../../testdata/mew/text.txt");
        let stream = include_bytes!("../../testdata/mew/text.lzma1");
        let src = [&[0x00, 0x00][..], &stream[..]].concat();
        let out = lzma(&src, text.len() as u32, (4, 0, 2)).expect("decoded");
        assert_eq!(out, text);
        assert!(
            lzma(&src, text.len() as u32, (9, 0, 2)).is_none(),
            "lc out of range"
        );
        assert!(
            lzma(&src[..src.len() / 2], text.len() as u32, (4, 0, 2)).is_none(),
            "cut"
        );
    }

    /// The NRV loaders are told apart by 13 octets of their code.
    #[test]
    fn names_the_nrv_routine_from_its_code() {
        let mut ep = vec![0u8; 0x100];
        ep[0x69..0x69 + 13].copy_from_slice(&NRV2D[5..18]);
        assert!(names(&NRV2D, &ep, 0x69));
        assert!(!names(&NRV2B, &ep, 0x69));
        assert!(!names(&NRV2E, &ep, 0x71));
    }
}
