//! Where an executable's entry point and sections lie in its file, for the body-signature
//! offsets that name them (ClamAV manual, "Extended signature format": `EP+n`, `EP-n`,
//! `Sx+n`, `SEx`, `SL+n`): PE (Microsoft PE/COFF specification: the optional header's
//! `AddressOfEntryPoint`, the section table's raw data), ELF (the ELF specification: `e_entry`
//! mapped through the `PT_LOAD` program headers; section headers) and Mach-O (`LC_MAIN`'s
//! entry offset, or `LC_UNIXTHREAD`'s program counter through the segments; sections of the
//! segments). Parsing is pure and bounded; damage gives no layout, never a panic.

use crate::le::{le16, le32};
/// An executable's entry point and sections, as offsets into its file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layout {
    /// The file offset of the entry point, when it maps into the file.
    pub entry: Option<u64>,
    /// Each section's file offset and size, in table order.
    pub sections: Vec<(u64, u64)>,
}

/// The most sections read from a table (PE allows 96; this bounds a crafted count).
const MAX_SECTIONS: usize = 1024;

/// The layout of `data` when it is a PE, ELF or Mach-O executable.
pub fn layout(data: &[u8]) -> Option<Layout> {
    match data.get(..4)? {
        [b'M', b'Z', ..] => pe(data),
        [0x7f, b'E', b'L', b'F'] => elf(data),
        [0xfe, 0xed, 0xfa, 0xce | 0xcf] | [0xce | 0xcf, 0xfa, 0xed, 0xfe] => macho(data),
        _ => None,
    }
}

/// `o` rounded down to a multiple of `a` (ClamAV's `PEALIGN`; `a` = 0 leaves it).
fn align_down(o: u64, a: u64) -> u64 {
    o.checked_div(a).map_or(o, |q| q * a)
}

/// `o` rounded up to a multiple of `a` (ClamAV's `PESALIGN`).
fn align_up(o: u64, a: u64) -> u64 {
    if a == 0 {
        o
    } else {
        o.div_ceil(a).saturating_mul(a)
    }
}

/// PE/COFF: `e_lfanew`, the `PE\0\0` signature, the COFF header's section count and optional
/// header size, the entry point's RVA, the alignments and header size, then the section
/// table (40 octets per section). Sections are placed as the Windows loader and ClamAV place
/// them: raw pointers rounded down to the file alignment (512 when a section's pointer
/// contradicts the declared one), raw sizes rounded up and cut at the end of the file,
/// sections starting past it dropped; the entry point maps through the last section whose
/// raw extent holds it, or is a file offset when it lies in the headers.
fn pe(d: &[u8]) -> Option<Layout> {
    let fsize = d.len() as u64;
    let pe = usize::try_from(le32(d, 0x3c)?).ok()?;
    if d.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
        return None;
    }
    let coff = pe + 4;
    let count = usize::from(le16(d, coff + 2)?).min(MAX_SECTIONS);
    let opt_size = usize::from(le16(d, coff + 16)?);
    let opt = coff + 20;
    let entry_rva = u64::from(le32(d, opt + 16)?);
    let valign = u64::from(le32(d, opt + 32)?);
    let mut falign = u64::from(le32(d, opt + 36)?);
    let hdr_size = align_up(u64::from(le32(d, opt + 60)?), valign);
    let table = opt.checked_add(opt_size)?;
    // (VirtualAddress, SizeOfRawData, PointerToRawData) of each entry the table holds.
    let mut raw_entries = Vec::new();
    for i in 0..count {
        let s = table.checked_add(i.checked_mul(40)?)?;
        let (Some(va), Some(size), Some(ptr)) = (le32(d, s + 12), le32(d, s + 16), le32(d, s + 20))
        else {
            break;
        };
        raw_entries.push((u64::from(va), u64::from(size), u64::from(ptr)));
    }
    if falign != 0x200
        && falign != 0
        && raw_entries
            .iter()
            .any(|&(_, size, ptr)| size != 0 && ptr % falign != 0 && ptr % 0x200 == 0)
    {
        falign = 0x200;
    }
    // (rva, raw, raw size) as placed.
    let placed: Vec<(u64, u64, u64)> = raw_entries
        .iter()
        .map(|&(va, size, ptr)| {
            let raw = align_down(ptr, falign);
            let rsz = align_up(size, falign);
            (
                align_down(va, valign),
                raw,
                rsz.min(fsize.saturating_sub(raw)),
            )
        })
        .filter(|&(_, raw, rsz)| rsz == 0 || raw < fsize)
        .collect();
    let entry = if entry_rva < hdr_size {
        Some(entry_rva)
    } else {
        placed
            .iter()
            .rev()
            .find(|(rva, _, rsz)| *rsz > 0 && *rva <= entry_rva && entry_rva - rva < *rsz)
            .map(|(rva, raw, _)| entry_rva - rva + raw)
    };
    Some(Layout {
        entry: entry.filter(|&e| e < fsize),
        sections: placed.iter().map(|&(_, raw, rsz)| (raw, rsz)).collect(),
    })
}

/// Reads of one ELF file: its class (32 or 64 bits) and byte order.
struct Elf<'a> {
    d: &'a [u8],
    wide: bool,
    big: bool,
}

impl Elf<'_> {
    fn half(&self, at: usize) -> Option<u64> {
        let b: [u8; 2] = self.d.get(at..at.checked_add(2)?)?.try_into().ok()?;
        Some(u64::from(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        }))
    }

    fn word(&self, at: usize) -> Option<u64> {
        let b: [u8; 4] = self.d.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    }

    /// An address or offset: 4 octets in ELF32, 8 in ELF64.
    fn addr(&self, at: usize) -> Option<u64> {
        if !self.wide {
            return self.word(at);
        }
        let b: [u8; 8] = self.d.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
}

/// ELF: `e_entry`, mapped to the file through the `PT_LOAD` segment holding it; sections from
/// the section header table, as its entries give them.
fn elf(d: &[u8]) -> Option<Layout> {
    let e = Elf {
        d,
        wide: *d.get(4)? == 2,
        big: *d.get(5)? == 2,
    };
    let a = if e.wide { 8 } else { 4 };
    let entry_va = e.addr(24)?;
    // Tables that start past the end are empty (and positions in them cannot overflow).
    let table = |v: u64| {
        usize::try_from(v)
            .ok()
            .filter(|&o| o < d.len())
            .unwrap_or(d.len())
    };
    let phoff = table(e.addr(24 + a)?);
    let shoff = table(e.addr(24 + 2 * a)?);
    let at = 24 + 3 * a + 4;
    let (phentsize, phnum) = (e.half(at + 2)? as usize, e.half(at + 4)? as usize);
    let (shentsize, shnum) = (e.half(at + 6)? as usize, e.half(at + 8)? as usize);
    let mut entry = None;
    for i in 0..phnum.min(MAX_SECTIONS) {
        let p = phoff.checked_add(i.checked_mul(phentsize)?)?;
        // p_type, then (ELF64) p_flags, p_offset, p_vaddr, p_paddr, p_filesz.
        let (off, va, filesz) = if e.wide {
            (e.addr(p + 8), e.addr(p + 16), e.addr(p + 32))
        } else {
            (e.word(p + 4), e.word(p + 8), e.word(p + 16))
        };
        let (Some(kind), Some(off), Some(va), Some(filesz)) = (e.word(p), off, va, filesz) else {
            break;
        };
        if kind == 1 && entry_va >= va && entry_va - va < filesz {
            entry = Some(off.saturating_add(entry_va - va));
            break;
        }
    }
    // Every entry of the section header table, the null one (index 0) too, as ClamAV counts
    // them for `Sx+n`.
    let mut sections = Vec::new();
    for i in 0..shnum.min(MAX_SECTIONS) {
        let s = shoff.checked_add(i.checked_mul(shentsize)?)?;
        // sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size.
        let (Some(off), Some(size)) = (e.addr(s + 8 + 2 * a), e.addr(s + 8 + 3 * a)) else {
            break;
        };
        sections.push((off, size));
    }
    Some(Layout {
        entry: entry.filter(|&x| x < d.len() as u64),
        sections,
    })
}

/// Mach-O (thin): the load commands' segments and their sections, and the entry point from
/// `LC_MAIN` (an offset from the start of `__TEXT`, which maps the file from 0) or
/// `LC_UNIXTHREAD` (a program counter, mapped through the segments).
fn macho(d: &[u8]) -> Option<Layout> {
    let big = d[0] == 0xfe;
    let wide = d[3] == 0xcf || d[0] == 0xcf;
    let u32_at = |at: usize| -> Option<u64> {
        let b: [u8; 4] = d.get(at..at.checked_add(4)?)?.try_into().ok()?;
        Some(u64::from(if big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }))
    };
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = d.get(at..at.checked_add(8)?)?.try_into().ok()?;
        Some(if big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    };
    let cpu = u32_at(4)?;
    let ncmds = usize::try_from(u32_at(16)?).ok()?.min(MAX_SECTIONS);
    let mut at = if wide { 32 } else { 28 };
    let mut segments = Vec::new();
    let mut sections = Vec::new();
    let (mut main, mut pc) = (None, None);
    for _ in 0..ncmds {
        let (Some(cmd), Some(size)) = (u32_at(at), u32_at(at + 4)) else {
            break;
        };
        match cmd {
            // LC_SEGMENT: vmaddr, vmsize, fileoff, filesize at 24.., nsects at 48; sections
            // of 68 octets from 56 (addr at 32, size 36, offset 40).
            0x1 => {
                let seg = (u32_at(at + 24)?, u32_at(at + 32)?, u32_at(at + 36)?);
                segments.push(seg);
                for k in 0..usize::try_from(u32_at(at + 48)?).ok()?.min(MAX_SECTIONS) {
                    let s = at + 56 + 68 * k;
                    sections.push((u32_at(s + 40)?, u32_at(s + 36)?));
                }
            }
            // LC_SEGMENT_64: vmaddr 24, fileoff 40, filesize 48, nsects 64; sections of 80
            // octets from 72 (size 40, offset 48).
            0x19 => {
                segments.push((u64_at(at + 24)?, u64_at(at + 40)?, u64_at(at + 48)?));
                for k in 0..usize::try_from(u32_at(at + 64)?).ok()?.min(MAX_SECTIONS) {
                    let s = at + 72 + 80 * k;
                    sections.push((u32_at(s + 48)?, u64_at(s + 40)?));
                }
            }
            // LC_MAIN (with LC_REQ_DYLD): entryoff.
            0x8000_0028 => main = u64_at(at + 8),
            // LC_UNIXTHREAD: flavor, count, then the thread state; the program counter's
            // place depends on the processor.
            0x5 => {
                let state = at + 16;
                pc = match cpu {
                    7 => u32_at(state + 40),            // i386: eip
                    0x0100_0007 => u64_at(state + 128), // x86_64: rip
                    12 => u32_at(state + 60),           // arm: pc (r15)
                    0x0100_000c => u64_at(state + 256), // arm64: pc
                    18 => u32_at(state),                // ppc: srr0
                    _ => None,
                };
            }
            _ => {}
        }
        if size < 8 {
            break;
        }
        at = at.checked_add(usize::try_from(size).ok()?)?;
    }
    let entry = main.or_else(|| {
        let pc = pc?;
        segments
            .iter()
            .find(|(va, _, filesz)| pc >= *va && pc - va < *filesz)
            .map(|(va, off, _)| off + (pc - va))
    });
    Some(Layout {
        entry: entry.filter(|&x| x < d.len() as u64),
        sections,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A PE with two sections: `.text` at RVA 0x1000 (raw 0x200, 0x100 octets) holding the
    /// entry point at RVA 0x1010, `.data` at RVA 0x2000 (raw 0x300).
    pub(crate) fn small_pe() -> Vec<u8> {
        let mut d = vec![0u8; 0x400];
        d[..2].copy_from_slice(b"MZ");
        d[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        d[0x80..0x84].copy_from_slice(b"PE\0\0");
        let coff = 0x84;
        d[coff + 2..coff + 4].copy_from_slice(&2u16.to_le_bytes());
        d[coff + 16..coff + 18].copy_from_slice(&0xe0u16.to_le_bytes());
        let opt = coff + 20;
        d[opt..opt + 2].copy_from_slice(&0x10bu16.to_le_bytes());
        d[opt + 16..opt + 20].copy_from_slice(&0x1010u32.to_le_bytes());
        let table = opt + 0xe0;
        for (i, (name, va, raw)) in [
            (b".text\0\0\0", 0x1000u32, 0x200u32),
            (b".data\0\0\0", 0x2000, 0x300),
        ]
        .iter()
        .enumerate()
        {
            let s = table + 40 * i;
            d[s..s + 8].copy_from_slice(*name);
            d[s + 8..s + 12].copy_from_slice(&0x100u32.to_le_bytes());
            d[s + 12..s + 16].copy_from_slice(&va.to_le_bytes());
            d[s + 16..s + 20].copy_from_slice(&0x100u32.to_le_bytes());
            d[s + 20..s + 24].copy_from_slice(&raw.to_le_bytes());
        }
        d
    }

    #[test]
    fn pe_entry_point_and_sections() {
        let l = layout(&small_pe()).expect("a PE");
        assert_eq!(l.entry, Some(0x210));
        assert_eq!(l.sections, vec![(0x200, 0x100), (0x300, 0x100)]);
    }

    /// clamav-testfiles' clam.exe: a real (tiny) PE.
    #[test]
    fn clamav_sample_pe() {
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let l = layout(&exe).expect("a PE");
        assert!(!l.sections.is_empty());
        assert!(l.entry.is_some_and(|e| e < exe.len() as u64));
    }

    /// This test binary's own ELF file: the entry point lies in a loaded segment and the
    /// `.text` section holds it.
    #[test]
    fn elf_entry_point_and_sections() {
        let me = std::fs::read("/proc/self/exe").expect("own executable");
        let l = layout(&me).expect("an ELF");
        let entry = l.entry.expect("entry point");
        assert!(l.sections.len() > 5);
        assert_eq!(
            l.sections[0],
            (0, 0),
            "the null section counts as section 0"
        );
        assert!(
            l.sections
                .iter()
                .any(|(off, size)| entry >= *off && entry < off + size)
        );
    }

    #[test]
    fn damage_gives_no_layout_or_a_partial_one_without_a_panic() {
        let pe = small_pe();
        for cut in [0, 2, 0x3c, 0x82, 0x90, 0x180, 0x1a0] {
            let _ = layout(&pe[..cut]);
        }
        let mut big = pe.clone();
        big[0x3c..0x40].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(layout(&big), None);
        let me = std::fs::read("/proc/self/exe").expect("own executable");
        for cut in [16, 40, 64, 200, 4096] {
            let _ = layout(&me[..cut.min(me.len())]);
        }
        let mut macho = vec![0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1, 0, 0, 0, 0, 2, 0, 0, 0];
        macho.extend([0xff; 64]);
        let _ = layout(&macho);
        assert_eq!(layout(b"plain text"), None);
        // Found by the fuzzer: program header offset 2^64 - 1 overflowed an addition.
        let crafted = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/exe-layout-overflow.bin"
        ))
        .expect("fixture");
        let _ = layout(&crafted);
    }
}
