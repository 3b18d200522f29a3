//! WWPack32: the last section (`.WWP32`) holds the loader, entered at its start, and a list
//! of compressed regions; each region is decompressed in place in the program's memory
//! image (its compressed octets first moved aside), with WWPack's own LZ77 coder: 32-bit
//! bit words interleaved with literal octets, two-octet matches with short distances, and
//! block matches with distance classes of 5 to 15 bits and lengths coded in steps. The image,
//! with its header told that the loader section is gone, is the rebuilt program (as ClamAV
//! writes it: sections at file offsets equal to their addresses).

use super::{MIN_EP_WINDOW, Pe};
use crate::le::le32;

/// The loader's first octets, and the octets 0x68 into it.
const ENTRY: [u8; 7] = [0x53, 0x55, 0x8b, 0xe8, 0x33, 0xdb, 0xeb];
const ENTRY_68: [u8; 19] = [
    0xe8, 0x00, 0x00, 0x00, 0x00, 0x58, 0x2d, 0x6d, 0x00, 0x00, 0x00, 0x50, 0x60, 0x33, 0xc9, 0x50,
    0x58, 0x50, 0x50,
];
/// Where in the loader section the region list starts, and where the original entry point is.
const REGIONS: usize = 0x2a1;
const ORIGINAL_ENTRY: usize = 0x295;

/// The rebuilt program, if `pe` is WWPack-packed and unpacks.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let e = pe.ep_window();
    let n = pe.sections.len();
    let last = *pe.sections.last()?;
    if n < 2
        || e.len() < MIN_EP_WINDOW
        || pe.vep != last.rva
        || !e.starts_with(&ENTRY)
        || e.get(0x68..0x68 + 19) != Some(&ENTRY_68[..])
    {
        return None;
    }
    let head = pe.sections.iter().map(|s| s.raw).min()?;
    let size = pe.sections[..n - 1]
        .iter()
        .map(|s| s.rva.wrapping_add(s.vsz))
        .max()?;
    if head == 0 || size == 0 || head > size || size > super::MAX_IMAGE {
        return None;
    }
    let mut exe = vec![0u8; size as usize];
    let headers = pe.read(0, head);
    if headers.len() != head as usize {
        return None;
    }
    exe[..headers.len()].copy_from_slice(headers);
    pe.place_sections(&mut exe, &pe.sections[..n - 1])?;
    let loader = pe.read(last.raw, last.rsz);
    if last.rsz == 0 || loader.len() != last.rsz as usize {
        return None;
    }
    let mut at = REGIONS;
    // Regions until one's flag octet is 0 (or the list leaves the section: ClamAV then
    // keeps what was done).
    while at + 17 <= loader.len() {
        let src = last.rva.wrapping_sub(le32(loader, at)?);
        let packed = le32(loader, at + 8)?.wrapping_mul(4);
        let end = le32(loader, at + 12)?;
        let start = i64::from(src) + i64::from(end) + 4 - i64::from(packed);
        if packed == 0 || start < 0 || start + i64::from(packed) > i64::from(size) {
            break;
        }
        decompress(&mut exe, start as usize, packed as usize)?;
        let more = loader[at + 16];
        at += 17;
        if more == 0 {
            break;
        }
    }
    fix_header(&mut exe, pe, loader)?;
    Some(exe)
}

/// The header of the unpacked image: the loader section dropped from the count, the size of
/// the image and the table, the original entry point restored.
fn fix_header(exe: &mut [u8], pe: &Pe<'_>, loader: &[u8]) -> Option<()> {
    let lfanew = le32(pe.data, 0x3c)? as usize;
    let last = *pe.sections.last()?;
    let kept = pe.sections.len() - 1;
    if lfanew.checked_add(0x54)? > exe.len() || loader.len() < ORIGINAL_ENTRY + 4 {
        return None;
    }
    exe[lfanew + 6..lfanew + 8].copy_from_slice(&(kept as u16).to_le_bytes());
    let entry = le32(loader, ORIGINAL_ENTRY)?
        .wrapping_add(last.rva)
        .wrapping_add(0x299);
    put32(exe, lfanew + 0x28, entry);
    let image = le32(exe, lfanew + 0x50)?.wrapping_sub(last.vsz);
    put32(exe, lfanew + 0x50, image);
    let mut table = lfanew + 0x18 + (le32(exe, lfanew + 0x14)? & 0xffff) as usize;
    for s in &pe.sections[..kept] {
        if table + 0x28 > exe.len() {
            return None;
        }
        for (off, v) in [(8, s.vsz), (12, s.rva), (16, s.vsz), (20, s.rva)] {
            put32(exe, table + off, v);
        }
        table += 0x28;
    }
    exe.get_mut(table..table + 0x28)?.fill(0);
    Some(())
}

fn put32(d: &mut [u8], at: usize, v: u32) {
    d[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// The bit reader: 32-bit words, most significant bit first, literal octets taken from the
/// same stream between them.
struct Bits<'a> {
    packed: &'a [u8],
    at: usize,
    word: u32,
    left: u8,
}

impl Bits<'_> {
    fn reseed(&mut self) -> Option<()> {
        self.word = le32(self.packed, self.at)?;
        self.at += 4;
        self.left = 32;
        Some(())
    }

    fn bit(&mut self) -> Option<u32> {
        let b = self.word >> 31;
        self.word <<= 1;
        self.left -= 1;
        if self.left == 0 {
            self.reseed()?;
        }
        Some(b)
    }

    fn bits(&mut self, n: u8) -> Option<u32> {
        if n == 0 {
            return Some(0);
        }
        let mut v = self.word >> (32 - u32::from(n));
        if self.left >= n {
            self.left -= n;
            self.word = self.word.checked_shl(u32::from(n)).unwrap_or(0);
            if self.left == 0 {
                self.reseed()?;
            }
        } else {
            let w = le32(self.packed, self.at)?;
            self.at += 4;
            self.left += 32 - n;
            v |= w >> self.left;
            self.word = w << (32 - self.left);
        }
        Some(v)
    }
}

/// Decompresses the `len` octets at `start` of the image in place (they are moved aside and
/// the output written from `start` on).
fn decompress(exe: &mut [u8], start: usize, len: usize) -> Option<()> {
    let packed = exe[start..start + len].to_vec();
    exe[start..start + len].fill(0xff);
    let mut r = Bits {
        packed: &packed,
        at: 0,
        word: 0,
        left: 0,
    };
    r.reseed()?;
    let mut out = start;
    let copy = |exe: &mut [u8], out: &mut usize, back: usize, n: usize| -> Option<()> {
        let from = out.checked_sub(back)?;
        if *out + n > exe.len() || from + n > exe.len() || n == 0 {
            return None;
        }
        for k in 0..n {
            exe[*out + k] = exe[from + k];
        }
        *out += n;
        Some(())
    };
    loop {
        if r.bit()? == 0 {
            let b = *packed.get(r.at)?;
            *exe.get_mut(out)? = b;
            r.at += 1;
            out += 1;
            continue;
        }
        let kind = r.bits(2)?;
        if kind == 3 {
            // Two octets, distance 1 to 0x35f in four classes.
            let class = r.bits(2)?;
            let (width, sub) = if class >= 2 {
                (class + 6, 31 + 0x80)
            } else {
                (class + 5, 31)
            };
            let base = (1u32 << width) - sub;
            let v = r.bits(width as u8)?;
            if v == 0x1ff {
                return Some(());
            }
            copy(exe, &mut out, (base + v) as usize, 2)?;
            continue;
        }
        let class = r.bits(3)?;
        let distance = match class {
            0..=5 => {
                let width = match class {
                    0..=2 => class + 5,
                    3 => 8 + r.bit()?,
                    4 => 10 + r.bit()?,
                    _ => 12,
                };
                r.bits(width as u8)? + (1 << width) - 31
            }
            6 => r.bits(14)? + 0x1fe1,
            _ => r.bits(15)? + 0x5fe1,
        };
        let len = if kind == 0 {
            block_len(&mut r)?
        } else {
            kind + 2
        };
        copy(exe, &mut out, distance as usize, len as usize)?;
    }
}

/// A block match's length (when the kind bits did not give it): 5-6, 7-13, 14-28, then
/// longer classes of 5 to 14 bits.
fn block_len(r: &mut Bits<'_>) -> Option<u32> {
    if r.bit()? == 0 {
        return Some(r.bit()? + 5);
    }
    let v = r.bits(3)?;
    if v != 0 {
        return Some(v + 6);
    }
    let v = r.bits(4)?;
    if v != 0 {
        return Some(v + 13);
    }
    let (mut width, mut base) = (4u8, 0x0du32);
    loop {
        if width == 7 {
            width = 0x0e;
            base = 0;
            break;
        }
        base = ((base + 2) << 1) - 1;
        let b = r.bit()?;
        width += 1;
        if b != 0 {
            break;
        }
    }
    Some(r.bits(width)? + base)
}
