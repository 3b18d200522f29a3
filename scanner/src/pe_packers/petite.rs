//! Petite 2.1 and 2.2: the entry point loads the address of the loader's section
//! (`mov eax, …`: the last section for 2.2, the one before for 2.1). The loader's data is a
//! list of records: ones with bit 31 set move a block of packed data to the end of its
//! section; the others name an original section (its RVA and size) and the packed stream that
//! decompresses into it (an NRV-like LZ77 coder whose literals are XORed with the count of
//! octets left). The loader's own code, decompressed with the last section, is recognised and
//! cut off, and from it the encrypted original entry point is recovered (for 2.2, by replaying
//! how the loader mangles the imports). The sections are then compacted and rebuilt into a PE
//! file laid out as ClamAV lays its rebuilt files out.

use super::aplib::Bits;
use super::rebuild::{self, Placed};
use super::{MIN_EP_WINDOW, Mem, Pe};
use crate::le::le32;

/// Most original sections (ClamAV's bound).
const MAX_SECTIONS: usize = 96;
/// The loader's first instructions at the end of the last decompressed section (two words).
const LOADER_MAGIC: (u32, u32) = (0x645e_c033, 0x1b8b_188b);

/// One original section: its RVA, size in the file and in memory, and where its octets are
/// once compacted.
#[derive(Debug, Clone, Copy)]
struct Section {
    rva: u32,
    rsz: u32,
    vsz: u32,
    raw: u32,
}

/// The rebuilt program, if `pe` is Petite-packed and unpacks.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let e = pe.ep_window();
    let n = pe.sections.len();
    if e.len() < MIN_EP_WINDOW || e[0] != 0xb8 {
        return None;
    }
    let target = le32(e, 1)?;
    let version = if target == pe.sections[n - 1].rva.wrapping_add(pe.image_base) {
        2
    } else if n >= 2 && target == pe.sections[n - 2].rva.wrapping_add(pe.image_base) {
        1
    } else {
        return None;
    };
    // Compression level 0 (stored) is not a stream this reads (nor does ClamAV).
    if le32(e, 0x80)? == 0x163c_988d {
        return None;
    }
    let size = pe.max.checked_sub(pe.min)?;
    let mut m = Mem::zeroed(size)?;
    for s in &pe.sections {
        if s.raw == 0 {
            continue;
        }
        let at = s.rva.wrapping_sub(pe.min);
        if s.rsz == 0 || s.ursz == 0 || u64::from(at) + u64::from(s.ursz) > u64::from(size) {
            return None;
        }
        let data = pe.read(s.raw, s.ursz);
        if data.len() != s.ursz as usize {
            return None;
        }
        m.put(at as usize, data);
    }
    let count = n - usize::from(version == 1);
    let opt = le32(pe.data, 0x3c)? as usize + 24;
    let resources = (le32(pe.data, opt + 0x70)?, le32(pe.data, opt + 0x74)?);
    let mut run = Run {
        m,
        min: pe.min,
        pe,
        count,
        version,
    };
    let (sections, entry) = run.sections()?;
    let placed: Vec<Placed> = sections
        .iter()
        .map(|s| Placed {
            raw: s.raw,
            rva: s.rva,
            size: s.rsz,
            vsize: s.vsz,
        })
        .collect();
    rebuild::pe_with_resources(&run.m.b, &placed, pe.image_base, entry, resources)
}

/// The loader's work over the image (`m` holds the sections from RVA `min` on).
struct Run<'p, 'a> {
    m: Mem,
    min: u32,
    pe: &'p Pe<'a>,
    /// Sections of the packed file the original ones must lie in (the loader's excluded
    /// for 2.1).
    count: usize,
    version: u8,
}

/// What the loader's own code, found at the end of the last section, tells.
#[derive(Default)]
struct Clues {
    encrypted_entry: u32,
    imports: u32,
    mangled: bool,
}

impl Run<'_, '_> {
    /// An RVA's offset in the image (may be out of it).
    fn at(&self, rva: u32) -> i64 {
        i64::from(rva) - i64::from(self.min)
    }

    /// Walks the loader's records; returns the original sections, compacted, and the entry
    /// point.
    fn sections(&mut self) -> Option<(Vec<Section>, u32)> {
        let last_rva = self.pe.sections[self.count - 1].rva;
        let (mut packed, grown, skew) = if self.version == 2 {
            (self.at(last_rva) + 0x1b8, 0x355, 0x35)
        } else {
            (self.at(last_rva) + 0x178, 0x323, 0x34)
        };
        let mut found: Vec<Section> = Vec::new();
        let mut bottom: u32 = 0;
        let mut first_of_block = true;
        let mut clues = Clues::default();
        loop {
            let srva = self.m.u32(packed)?;
            if srva == 0 {
                break;
            }
            let size = srva & 0x7fff_ffff;
            if srva != size {
                // Move a block of packed data to the end of its section.
                first_of_block = true;
                let (from, to) = (self.m.u32(packed + 4)?, self.m.u32(packed + 8)?);
                bottom = to.checked_add(4).filter(|_| to <= u32::MAX - 4)?;
                let len = size.wrapping_mul(4);
                let back = i64::from(size.wrapping_sub(1).wrapping_mul(4));
                let src = i64::from(from as i32) - i64::from(self.min) - back;
                let dst = i64::from(to as i32) - i64::from(self.min) - back;
                let n = i64::from(len);
                if !self.m.holds(src, n) || !self.m.holds(dst, n) {
                    return None;
                }
                self.m
                    .b
                    .copy_within(src as usize..(src + n) as usize, dst as usize);
                packed += 0xc;
                continue;
            }
            let (len, rva) = (self.m.u32(packed + 4)?, self.m.u32(packed + 8)?);
            packed += 0x10;
            if found.len() >= MAX_SECTIONS {
                return None;
            }
            let mut s = Section {
                rva,
                rsz: len,
                vsz: if (bottom.wrapping_sub(rva) as i32) > 0 {
                    bottom.wrapping_sub(rva)
                } else {
                    len
                },
                raw: 0,
            };
            if len == 0 {
                found.push(s);
                continue;
            }
            // The packed file's section that holds it (the first one to decompress may
            // carry unpacked data before it: it then starts with that section).
            let holder = self.pe.sections[..self.count].iter().find(|h| {
                h.vsz > 0
                    && s.vsz > 0
                    && s.vsz <= h.vsz
                    && s.rva >= h.rva
                    && u64::from(s.rva) + u64::from(s.vsz) <= u64::from(h.rva) + u64::from(h.vsz)
            })?;
            if first_of_block {
                s.rsz = rva.wrapping_sub(holder.rva).wrapping_add(len);
                s.rva = holder.rva;
            }
            found.push(s);
            let end = self.inflate(i64::from(srva) - i64::from(self.min), self.at(rva), len)?;
            // The loader's own code at the end of the last section: cut off, and read.
            let last = found.len() - 1;
            let magic_at = |reloc: i64| end - grown + 5 + 0x4f - reloc;
            let reloc = if found[last].rsz > grown as u32 && self.magic(magic_at(0)) {
                Some(0)
            } else if found[last].rsz > (grown + skew) as u32 && self.magic(magic_at(skew)) {
                Some(skew)
            } else {
                None
            };
            if let Some(reloc) = reloc {
                let base = end - grown - reloc;
                if self.m.holds(base + 0x0f - 8, 8) {
                    let t1 = self.m.u32(base + 0x0f - 8)? ^ 0x9d66_61aa;
                    let t2 = self.m.u32(base + 0x0f - 4)? ^ 0xe908_c483;
                    if t1 == t2 && self.m.holds(base + 0x0f, 0x1c0 - 0x0f + 4) {
                        clues = Clues {
                            imports: self.m.u32(base + 0x121)?,
                            encrypted_entry: self.m.u32(base + 0x0f)? ^ t1,
                            mangled: self.m.u32(base + 0x1c0)? != 0x9090_9090,
                        };
                    }
                    found[last].rsz = found[last].rsz.wrapping_sub((grown + reloc) as u32);
                }
            }
            first_of_block = false;
        }
        if found.is_empty() {
            return None;
        }
        found.sort_by_key(|s| s.rva);
        for t in 0..found.len() - 1 {
            found[t].vsz = found[t + 1].rva.wrapping_sub(found[t].rva);
        }
        let entry = self.entry(&clues, &found);
        self.compact(&mut found)?;
        Some((found, entry))
    }

    fn magic(&self, at: i64) -> bool {
        self.m.holds(at, 8)
            && self.m.u32(at) == Some(LOADER_MAGIC.0)
            && self.m.u32(at + 4) == Some(LOADER_MAGIC.1)
    }

    /// The original entry point: decrypted with the clues (for 2.2 by replaying the import
    /// mangling that keyed it), else the first section's start.
    fn entry(&self, clues: &Clues, found: &[Section]) -> u32 {
        if clues.encrypted_entry == 0 {
            return 0;
        }
        let pep = self.pe.vep;
        let base = self.pe.image_base;
        let mut key = clues.encrypted_entry;
        let mut done = self.version != 2;
        if self.version == 2 {
            let mut virtaddr = pep.wrapping_add(5).wrapping_add(base);
            let mut rndm: i32 = 0;
            let mut thunk = self.at(clues.imports);
            let mut dummy = true;
            let loader_va = self.pe.sections[self.count - 1].rva.wrapping_add(base);
            while dummy && self.m.holds(thunk, 4) {
                let Some(first) = self.m.u32(thunk) else {
                    break;
                };
                if first == 0 {
                    done = true;
                    break;
                }
                let mut imports = i64::from(first as i32) - i64::from(self.min);
                thunk += 4;
                dummy = false;
                while self.m.holds(imports, 4) {
                    imports += 4;
                    let Some(mut api) = self.m.u32(imports - 4) else {
                        break;
                    };
                    if api == 0 {
                        dummy = true;
                        break;
                    }
                    let by_ordinal = api & 0x8000_0000 != 0;
                    if !by_ordinal && clues.mangled && {
                        rndm -= 1;
                        rndm < 0
                    } {
                        api = virtaddr;
                        virtaddr = virtaddr.wrapping_add(5);
                        rndm = (virtaddr & 7) as i32;
                    } else {
                        api = 0xbff0_1337;
                    }
                    if loader_va < api {
                        key = key.wrapping_sub(1);
                    }
                    if api < virtaddr {
                        key = key.wrapping_sub(1);
                    }
                    key = key.rotate_right(3);
                }
            }
        }
        if done {
            pep.wrapping_add(5).wrapping_add(key)
        } else {
            found[0].rva
        }
    }

    /// Moves every section's octets to the start of the buffer, one after another.
    fn compact(&mut self, found: &mut [Section]) -> Option<()> {
        for t in 0..found.len() {
            found[t].raw = if t > 0 {
                found[t - 1].raw.wrapping_add(found[t - 1].rsz)
            } else {
                0
            };
            if found[t].rsz == 0 {
                continue;
            }
            let (dst, n) = (i64::from(found[t].raw), i64::from(found[t].rsz));
            let src = self.at(found[t].rva);
            if self.m.holds(dst, n) && self.m.holds(src, n) {
                self.m
                    .b
                    .copy_within(src as usize..(src + n) as usize, dst as usize);
            } else {
                found[t].raw = if t > 0 { found[t - 1].raw } else { 0 };
                found[t].rsz = 0;
            }
        }
        Some(())
    }

    /// Decompresses `len` octets from `src` to `dst` (offsets in the image); returns the offset
    /// after the last octet written.
    fn inflate(&mut self, src: i64, mut dst: i64, len: u32) -> Option<i64> {
        let (far, near, goback) = if len < 0x10000 {
            (0xffff_c060u32, 0xffff_fc60u32, 5)
        } else if len < 0x40000 {
            (0xffff_8180, 0xffff_f980, 7)
        } else {
            (0xffff_8300, 0xffff_fb00, 8)
        };
        if !self.m.holds(src, 1) || !self.m.holds(dst, 1) {
            return None;
        }
        let mut left = len - 1;
        self.m.b[dst as usize] = self.m.b[src as usize];
        dst += 1;
        // The bits are bounded by the whole buffer, as the loader's are.
        let mut r = Bits::new(0, self.m.len(), src + 1);
        let mut last: i32 = 0;
        while left > 0 {
            if r.bit(&self.m)? == 0 {
                if !self.m.holds(r.src, 1) || !self.m.holds(dst, 1) {
                    return None;
                }
                self.m.b[dst as usize] = self.m.b[r.src as usize] ^ (left & 0xff) as u8;
                r.src += 1;
                dst += 1;
                left -= 1;
                continue;
            }
            let mut extra: u32 = 0;
            let mut back: i32 = 1;
            loop {
                let b = r.bit(&self.m)?;
                if back >= i32::MAX / 2 {
                    return None;
                }
                back = back * 2 + b as i32;
                if r.bit(&self.m)? == 0 {
                    break;
                }
            }
            back -= 3;
            let mut n: u32;
            if back >= 0 {
                for _ in 0..goback {
                    let b = r.bit(&self.m)?;
                    if back >= i32::MAX / 2 {
                        return None;
                    }
                    back = back * 2 + b as i32;
                }
                back ^= -1;
                extra += 1 + u32::from(back < near as i32) + u32::from(back < far as i32);
                last = back;
                n = 0;
            } else {
                n = (back + 1) as u32;
                back = last;
            }
            n = n.wrapping_mul(2).wrapping_add(r.bit(&self.m)?);
            n = n.wrapping_mul(2).wrapping_add(r.bit(&self.m)?);
            if n == 0 {
                n = 1;
                loop {
                    n = n.wrapping_mul(2).wrapping_add(r.bit(&self.m)?);
                    if r.bit(&self.m)? == 0 {
                        break;
                    }
                }
                n = n.wrapping_add(2);
            }
            n = n.wrapping_add(extra);
            left = left.wrapping_sub(n);
            let from = dst + i64::from(back);
            if !self.m.holds(dst, i64::from(n)) || !self.m.holds(from, i64::from(n)) {
                return None;
            }
            for k in 0..i64::from(n) {
                self.m.b[(dst + k) as usize] = self.m.b[(from + k) as usize];
            }
            dst += i64::from(n);
        }
        Some(dst)
    }
}
