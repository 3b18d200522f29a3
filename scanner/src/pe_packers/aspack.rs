//! ASPack 2.12 to 2.42: the entry point (`pusha; call …`) leads to a loader whose data lists
//! compressed blocks (RVA, size). Each block is decompressed in place with ASPack's coder:
//! LZ77 whose literals, match lengths and distances are Huffman-coded with tables sent in
//! the stream (their code lengths themselves Huffman-coded, and sent again when a code asks
//! for it), distances from a table of base values plus extra bits, the last three distances
//! kept for reuse. The first block's `call`/`jmp` targets, made absolute and tagged by the
//! packer, are made relative again. The image becomes the rebuilt program, each section's
//! octets at its address, as ClamAV rebuilds it.

use super::rebuild::{self, Placed};
use super::{Mem, Pe};
use crate::le::le32;

/// Where each version keeps its pieces, as offsets from the entry point.
struct Layout {
    blocks: u32,
    multipliers: u32,
    coder: u32,
    call_tag: u32,
    entry: u32,
    /// 2.12's block records are 8 octets, the later ones' 12.
    record: u32,
}

const V212: Layout = Layout {
    blocks: 0x57c,
    multipliers: 0x70e,
    coder: 0x6d6,
    call_tag: 0x148,
    entry: 0x39b,
    record: 8,
};
const V2XX: Layout = Layout {
    blocks: 0x5d8,
    multipliers: 0x76a,
    coder: 0x732,
    call_tag: 0x13a,
    entry: 0x401,
    record: 12,
};
const V242: Layout = Layout {
    blocks: 0x5e4,
    multipliers: 0x776,
    coder: 0x73e,
    call_tag: 0x148,
    entry: 0x40d,
    record: 12,
};

/// The rebuilt program, if `pe` is ASPack-packed and unpacks.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let e = pe.ep_window();
    let fsize = pe.data.len() as u64;
    let ep = u64::from(pe.ep);
    let near_end = [58 + 0x70e, 58 + 0x76a, 58 + 0x776]
        .iter()
        .any(|o| ep + o < fsize);
    if !near_end
        || !e.starts_with(&[0x60, 0xe8, 0x03, 0x00, 0x00, 0x00, 0xe9, 0xeb])
        || e.len() < 0x3bf
    {
        return None;
    }
    let push_ret = [0x68, 0, 0, 0, 0, 0xc3];
    let layout = [(0x3b9, &V212), (0x41f, &V2XX), (0x42b, &V242)]
        .into_iter()
        .find(|(at, _)| e.get(*at..*at + 6) == Some(&push_ret[..]))
        .map(|(_, l)| l)?;
    let size = pe
        .sections
        .iter()
        .map(|s| s.rva.wrapping_add(s.vsz))
        .max()?;
    let mut image = Mem::zeroed(size)?.b;
    pe.place_sections(&mut image, &pe.sections)?;
    let ep = pe.vep.wrapping_sub(1);
    decompress_blocks(&mut image, ep, layout)?;
    let mut count = pe.sections.len();
    if count > 2 && ep == pe.sections[count - 2].rva && pe.sections[count - 1].rsz == 0 {
        count -= 2;
    }
    let placed: Vec<Placed> = pe.sections[..count]
        .iter()
        .map(|s| Placed {
            raw: s.rva,
            rva: s.rva,
            size: s.vsz,
            vsize: s.vsz,
        })
        .collect();
    let entry = le32(&image, (ep as usize).checked_add(layout.entry as usize)?).unwrap_or(0);
    Some(rebuild::pe(&image, &placed, pe.image_base, entry, 0).unwrap_or(image))
}

/// Decompresses every block the loader lists, in place.
fn decompress_blocks(image: &mut [u8], ep: u32, layout: &Layout) -> Option<()> {
    let at = |off: u32| (ep as usize).checked_add(off as usize);
    let mut s = Stream::new();
    let mut acc: u32 = 0;
    for k in 0..58 {
        s.bases[k] = acc;
        if let Some(b) = at(layout.multipliers + k as u32).and_then(|i| image.get(i)) {
            acc = acc.wrapping_add(1u32.wrapping_shl(u32::from(*b)));
        }
    }
    let coder_at = at(layout.coder)?;
    let tag = at(layout.call_tag).and_then(|i| image.get(i).copied());
    let mut blocks = at(layout.blocks)?;
    let mut first = true;
    let mut unrolled: u32 = 0;
    loop {
        let (Some(rva), Some(len)) = (le32(image, blocks), le32(image, blocks + 4)) else {
            return None;
        };
        if rva == 0 {
            return Some(());
        }
        let (start, n) = (rva as usize, len as usize);
        if len == 0 || start.checked_add(n)? > image.len() {
            return None;
        }
        let mut input = image[start..start + n].to_vec();
        input.resize(n + 0x10e, 0);
        // The loader's tables read: length extras (0x56), their bit counts, distance bit
        // counts (58 from 0x38).
        let stuff = image
            .get(coder_at..(coder_at + 0x80).min(image.len()))?
            .to_vec();
        s.block(&input, &stuff, &mut image[start..start + n])?;
        // The first block's call and jump targets (each tagged with the packer's octet).
        if first && len > 7 {
            let mut i = unrolled;
            while i < len - 6 {
                let p = start + i as usize;
                if matches!(image[p], 0xe8 | 0xe9) && Some(image[p + 1]) == tag {
                    let target = (le32(image, p + 1)? & 0xffff_ff00).rotate_left(24);
                    image[p + 1..p + 5].copy_from_slice(&target.wrapping_sub(i).to_le_bytes());
                    i += 4;
                }
                i += 1;
            }
            unrolled = i;
            first = unrolled == 0;
        }
        blocks = blocks.checked_add(layout.record as usize)?;
        if layout.record == 12 {
            while le32(image, blocks + 4)?.wrapping_add(0x10e) == 0 {
                blocks = blocks.checked_add(12)?;
            }
        }
    }
}

/// One Huffman table: its symbols by code, the code lengths' limits and base indexes, and a
/// lookup of the code length by the code's first eight bits.
#[derive(Clone)]
struct Table {
    symbols: Vec<u32>,
    by_prefix: [u8; 256],
    limits: [u32; 24],
    bases: [u32; 24],
}

impl Table {
    fn new(size: usize) -> Table {
        Table {
            symbols: vec![0; size],
            by_prefix: [0; 256],
            limits: [0; 24],
            bases: [0; 24],
        }
    }
}

/// The coder's state across the blocks of one program.
struct Stream {
    hash: u32,
    bitpos: u32,
    pos: usize,
    /// Distance bases, from the loader's table of extra-bit counts.
    bases: [u32; 58],
    /// Literals and lengths, match lengths, distance low bits, code lengths.
    tables: [Table; 4],
    lengths: [u8; 757],
    dict_ok: bool,
    array1: [u8; 19],
    array2: [u8; 758],
}

impl Stream {
    fn new() -> Stream {
        Stream {
            hash: 0x10000,
            bitpos: 0,
            pos: 0,
            bases: [0; 58],
            tables: [
                Table::new(721),
                Table::new(28),
                Table::new(8),
                Table::new(19),
            ],
            lengths: [0; 757],
            dict_ok: false,
            array1: [0; 19],
            array2: [0; 758],
        }
    }

    /// Tops the 32-bit window up to fewer than 8 consumed bits.
    fn refill(&mut self, input: &[u8]) -> Option<()> {
        while self.bitpos >= 8 {
            let b = *input.get(self.pos)?;
            self.hash = (self.hash << 8) | u32::from(b);
            self.pos += 1;
            self.bitpos -= 8;
        }
        Some(())
    }

    /// The next 24 bits of the window.
    fn window(&self) -> u32 {
        (self.hash >> (8 - self.bitpos)) & 0xff_ffff
    }

    fn bits(&mut self, input: &[u8], n: u32) -> Option<u32> {
        self.refill(input)?;
        if n > 24 {
            return None;
        }
        let v = (self.window() >> (24 - n)) & 0xff;
        self.bitpos += n;
        Some(v)
    }

    fn symbol(&mut self, input: &[u8], which: usize) -> Option<u32> {
        self.refill(input)?;
        let code = (self.hash >> (8 - self.bitpos)) & 0xff_fe00;
        let t = &self.tables[which];
        let len = if code < t.limits[8] {
            let l = *t.by_prefix.get((code >> 16) as usize)?;
            if l == 0 || l >= 24 {
                return None;
            }
            u32::from(l)
        } else if code < t.limits[10] {
            if code < t.limits[9] { 9 } else { 10 }
        } else {
            (11..15).find(|&l| code < t.limits[l]).unwrap_or(15) as u32
        };
        self.bitpos += len;
        let index = ((code.wrapping_sub(t.limits[len as usize - 1])) >> (24 - len))
            .wrapping_add(t.bases[len as usize]);
        t.symbols.get(index as usize).copied()
    }

    /// Builds table `which` from the code lengths of its symbols.
    fn build(&mut self, lengths: &[u8], which: usize) -> Option<()> {
        let mut count = [0u32; 18];
        let mut next = [0u32; 18];
        for &l in lengths {
            *count.get_mut(usize::from(l))? += 1;
        }
        let t = &mut self.tables[which];
        t.limits[0] = 0;
        t.bases[0] = 0;
        let mut sum: u32 = 0;
        let mut prefix_end: u32 = 0;
        for (i, shift) in (9..=23u32).rev().enumerate() {
            sum = sum.wrapping_add(count[i + 1] << shift);
            if sum > 0x100_0000 {
                return None;
            }
            t.limits[i + 1] = sum;
            t.bases[i + 1] = count[i].wrapping_add(t.bases[i]);
            next[i + 1] = t.bases[i + 1];
            if shift >= 0x10 {
                let old = prefix_end;
                prefix_end = t.limits[i + 1] >> 16;
                if prefix_end < old || prefix_end > 0x100 {
                    return None;
                }
                t.by_prefix[old as usize..prefix_end as usize].fill((i + 1) as u8);
            }
        }
        if sum != 0x100_0000 {
            return None;
        }
        for (i, &l) in lengths.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let slot = next[usize::from(l)] as usize;
            *t.symbols.get_mut(slot)? = i as u32;
            next[usize::from(l)] += 1;
        }
        Some(())
    }

    /// Reads new tables from the stream.
    fn tables(&mut self, input: &[u8]) -> Option<()> {
        if self.bits(input, 1)? == 0 {
            self.lengths = [0; 757];
        }
        for k in 0..19 {
            self.array1[k] = self.bits(input, 4)? as u8;
        }
        let a1 = self.array1;
        self.build(&a1, 3)?;
        let mut k = 0usize;
        while k < 757 {
            let v = self.symbol(input, 3)?;
            match v {
                0..=15 => {
                    self.array2[1 + k] = ((u32::from(self.lengths[k]) + v) & 0xf) as u8;
                    k += 1;
                }
                16 => {
                    let run = 3 + self.bits(input, 2)?;
                    for _ in 0..run {
                        if k >= 757 {
                            break;
                        }
                        self.array2[1 + k] = self.array2[k];
                        k += 1;
                    }
                }
                _ => {
                    let run = if v == 17 {
                        3 + self.bits(input, 3)?
                    } else {
                        11 + self.bits(input, 7)?
                    };
                    for _ in 0..run {
                        if k >= 757 {
                            break;
                        }
                        self.array2[1 + k] = 0;
                        k += 1;
                    }
                }
            }
        }
        let a2 = self.array2;
        self.build(&a2[1..722], 0)?;
        self.build(&a2[722..750], 1)?;
        self.build(&a2[750..758], 2)?;
        self.dict_ok = a2[750..758].iter().any(|&l| l != 3);
        self.lengths.copy_from_slice(&a2[1..758]);
        Some(())
    }

    /// Decompresses one block (`input`, with slack after it) into `out`; `stuff` is the
    /// loader's table of length extras and distance bit counts.
    fn block(&mut self, input: &[u8], stuff: &[u8], out: &mut [u8]) -> Option<()> {
        for t in &mut self.tables {
            t.limits = [0; 24];
            t.bases = [0; 24];
        }
        self.lengths = [0; 757];
        self.bitpos = 0x20;
        self.pos = 0;
        self.tables(input)?;
        let size = out.len();
        let mut n = 0usize;
        let mut recent = [0u32; 4];
        while n < size {
            let sym = self.symbol(input, 0)?;
            if sym < 256 {
                out[n] = sym as u8;
                n += 1;
                continue;
            }
            if sym >= 720 {
                self.tables(input)?;
                continue;
            }
            let slot = ((sym - 256) >> 3) as usize;
            let mut len = ((sym - 256) & 7) + 2;
            if len == 9 {
                let k = self.symbol(input, 1)?;
                if k >= 0x56 {
                    return None;
                }
                let extra_bits = u32::from(*stuff.get(k as usize + 0x1c)?);
                self.refill(input)?;
                if extra_bits > 24 {
                    return None;
                }
                len = len
                    .wrapping_add(u32::from(*stuff.get(k as usize)?))
                    .wrapping_add(self.top(extra_bits));
                self.bitpos += extra_bits;
            }
            let mut distance = self.bases[slot];
            let bits = u32::from(*stuff.get(slot + 0x38)?);
            if !self.dict_ok || bits < 3 {
                self.refill(input)?;
                if bits > 24 {
                    return None;
                }
                distance = distance.wrapping_add(self.top(bits));
                self.bitpos += bits;
            } else {
                let high = bits - 3;
                self.refill(input)?;
                if high > 24 {
                    return None;
                }
                distance = distance.wrapping_add(self.top(high).wrapping_mul(8));
                self.bitpos += high;
                distance = distance.wrapping_add(self.symbol(input, 2)?);
            }
            let back = if distance < 3 {
                let d = recent[distance as usize];
                if distance != 0 {
                    recent[distance as usize] = recent[0];
                    recent[0] = d;
                }
                d
            } else {
                recent[2] = recent[1];
                recent[1] = recent[0];
                recent[0] = distance - 3;
                distance - 3
            };
            let back = back.wrapping_add(1) as usize;
            let len = len as usize;
            if back == 0 || back > n || len > size - n {
                return None;
            }
            for _ in 0..len {
                out[n] = out[n - back];
                n += 1;
            }
        }
        Some(())
    }

    /// The window's top `n` bits (0 for none).
    fn top(&self, n: u32) -> u32 {
        if n == 0 { 0 } else { self.window() >> (24 - n) }
    }
}
