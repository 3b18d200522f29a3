//! A plain PE file around an unpacked memory image, so that it is scanned as a program
//! again: a DOS header pointing at a PE32 header with one section per unpacked region, each
//! region's octets at a 512-aligned file offset. The loader-only fields (imports,
//! relocations, resources) are left empty: the file is for scanning, never for running.

use super::{MAX_IMAGE, align_up};

/// One region of the image that becomes a section: its offset in the image buffer, its
/// RVA, its size in the file and in memory.
#[derive(Debug, Clone, Copy)]
pub(super) struct Placed {
    pub raw: u32,
    pub rva: u32,
    pub size: u32,
    pub vsize: u32,
}

/// The PE header goes where ClamAV's rebuilt files have it (after a DOS header of 0xd0
/// octets), so that every section lands at the file offset ClamAV gives it.
const DOS_HEADER: usize = 0xd0;
const COFF_HEADER: usize = 20;
const OPTIONAL_HEADER: usize = 0xe0;
const SECTION_ENTRY: usize = 40;
const FILE_ALIGN: u32 = 0x200;
const SECTION_ALIGN: u32 = 0x1000;

/// The PE file: `image` holds the regions `sections` name; `entry` is the entry point's RVA;
/// sizes and addresses are rounded up to `align` when it is not 0. A gap between the headers
/// and the first region gets an empty section of its own, as ClamAV's rebuilt files have.
pub(super) fn pe(
    image: &[u8],
    sections: &[Placed],
    base: u32,
    entry: u32,
    align: u32,
) -> Option<Vec<u8>> {
    build(image, sections, base, entry, align, (0, 0))
}

/// [`pe`] without rounding, with the resource directory's RVA and size in the header.
pub(super) fn pe_with_resources(
    image: &[u8],
    sections: &[Placed],
    base: u32,
    entry: u32,
    resources: (u32, u32),
) -> Option<Vec<u8>> {
    build(image, sections, base, entry, 0, resources)
}

fn build(
    image: &[u8],
    sections: &[Placed],
    base: u32,
    entry: u32,
    align: u32,
    resources: (u32, u32),
) -> Option<Vec<u8>> {
    if sections.is_empty() || sections.len() > super::MAX_SECTIONS {
        return None;
    }
    let headers_for = |n: usize| {
        let end = DOS_HEADER + 4 + COFF_HEADER + OPTIONAL_HEADER + SECTION_ENTRY * n;
        align_up(end as u32, FILE_ALIGN)
    };
    let mut headers = headers_for(sections.len());
    let ghost = sections[0].rva > align_up(headers, SECTION_ALIGN);
    if ghost {
        headers = headers_for(sections.len() + 1);
    }
    let round = |v: u32| if align == 0 { v } else { align_up(v, align) };
    let mut file_len = u64::from(headers);
    for s in sections {
        file_len += u64::from(align_up(round(s.size), FILE_ALIGN));
    }
    if file_len > u64::from(MAX_IMAGE) {
        return None;
    }
    let mut f = vec![0u8; usize::try_from(file_len).ok()?];
    f[..2].copy_from_slice(b"MZ");
    put32(&mut f, 0x3c, DOS_HEADER as u32);
    let pe = DOS_HEADER;
    f[pe..pe + 4].copy_from_slice(b"PE\0\0");
    let coff = pe + 4;
    let count = sections.len() + usize::from(ghost);
    put16(&mut f, coff, 0x14c); // i386
    put16(&mut f, coff + 2, u16::try_from(count).ok()?);
    put16(&mut f, coff + 16, OPTIONAL_HEADER as u16);
    put16(&mut f, coff + 18, 0x010f); // executable, 32-bit, stripped
    let opt = coff + COFF_HEADER;
    put16(&mut f, opt, 0x10b); // PE32
    put32(&mut f, opt + 16, entry);
    put32(&mut f, opt + 28, base);
    put32(&mut f, opt + 32, SECTION_ALIGN);
    put32(&mut f, opt + 36, FILE_ALIGN);
    put16(&mut f, opt + 40, 4); // operating system 4.0
    put16(&mut f, opt + 48, 4); // subsystem 4.0
    put32(&mut f, opt + 60, headers);
    put16(&mut f, opt + 68, 2); // Windows GUI
    put32(&mut f, opt + 92, 16); // data directories: only the resources'
    put32(&mut f, opt + 96 + 16, resources.0);
    put32(&mut f, opt + 96 + 20, resources.1);
    let mut image_end = align_up(headers, SECTION_ALIGN);
    let mut raw = headers;
    let mut e = opt + OPTIONAL_HEADER;
    if ghost {
        f[e..e + 5].copy_from_slice(b"empty");
        put32(&mut f, e + 8, sections[0].rva - image_end);
        put32(&mut f, e + 12, image_end);
        put32(&mut f, e + 36, 0xffff_ffff);
        image_end += align_up(sections[0].rva - image_end, SECTION_ALIGN);
        e += SECTION_ENTRY;
    }
    for (k, s) in sections.iter().enumerate() {
        let name = format!(".unpk{:02}", (k + 1) % 100);
        let n = name.len().min(8);
        f[e..e + n].copy_from_slice(&name.as_bytes()[..n]);
        let (vsz, rva, rsz) = (round(s.vsize), round(s.rva), round(s.size));
        put32(&mut f, e + 8, vsz);
        put32(&mut f, e + 12, rva);
        put32(&mut f, e + 16, rsz);
        put32(&mut f, e + 20, raw);
        put32(&mut f, e + 36, 0xe000_0060); // code, data, executable, readable, writable
        let from = (s.raw as usize).min(image.len());
        let to = (s.raw as usize)
            .saturating_add(s.size as usize)
            .min(image.len());
        let at = raw as usize;
        f[at..at + (to - from)].copy_from_slice(&image[from..to]);
        raw += align_up(rsz, FILE_ALIGN);
        image_end = image_end.saturating_add(align_up(vsz, SECTION_ALIGN));
        e += SECTION_ENTRY;
    }
    put32(&mut f, opt + 56, image_end);
    Some(f)
}

fn put16(f: &mut [u8], at: usize, v: u16) {
    f[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

fn put32(f: &mut [u8], at: usize, v: u32) {
    f[at..at + 4].copy_from_slice(&v.to_le_bytes());
}
