//! MEW 11: a program whose first section is empty in the file and whose entry point jumps
//! to a loader at 0x154 (0x158 without the Win9x option) in the headers. The loader's data
//! names where the compressed sections are and where each goes; each is an
//! [`aplib`](super::aplib) stream, and a second stage may LZMA-decompress the result (its
//! loader then calls an LZMA routine, found through a `call` at a fixed place in the stub).

use super::aplib;
use super::rebuild::{self, Placed};
use super::{Mem, Pe, align_up};

/// The loader's offsets in the headers, with and without the Win9x option.
const LOADERS: [u32; 2] = [0x154, 0x158];
/// Octets of the loader read.
const LOADER_LEN: u32 = 0xb0;
/// LZMA literal context bits, position bits (MEW's decoder: `prev >> 4`, `pos & 3`).
const LZMA_LC: u8 = 4;
const LZMA_PB: u8 = 2;
/// Octets of the LZMA routine's probability model (checked to fit in the image).
const LZMA_MODEL: i64 = 0x6e6c;

/// The rebuilt program, if `pe` is MEW-packed and unpacks.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let epbuf = pe.ep_window();
    if epbuf.len() < 16 || epbuf[0] != 0xe9 {
        return None;
    }
    let i = pe.packed_after_empty()?;
    let (empty, packed) = (pe.sections[i], pe.sections[i + 1]);
    let loader = pe
        .vep
        .wrapping_add(u32::from_le_bytes(epbuf[1..5].try_into().ok()?))
        .wrapping_add(5);
    if !LOADERS.contains(&loader) {
        return None;
    }
    let stub = pe.read(loader, LOADER_LEN);
    if stub.len() != LOADER_LEN as usize {
        return None;
    }
    let stub32 =
        |at: usize| u32::from_le_bytes([stub[at], stub[at + 1], stub[at + 2], stub[at + 3]]);
    // ESI at the loader's start: the packed data's header, inside the packed section.
    let esi = stub32(1).wrapping_sub(pe.image_base);
    if esi <= packed.rva || esi >= packed.rva.wrapping_add(packed.raw).wrapping_sub(4) {
        return None;
    }
    let offdiff = esi - packed.rva;
    let (ssize, dsize) = (packed.vsz, empty.vsz);
    let total = ssize.checked_add(dsize)?;
    if offdiff >= total || packed.rsz < offdiff.checked_add(12)? || packed.rsz > ssize {
        return None;
    }
    let mut m = Mem::zeroed(total)?;
    let raw = pe.read(packed.raw, packed.rsz);
    if raw.len() != packed.rsz as usize {
        return None;
    }
    m.put(dsize as usize, raw);
    // A `call` at 0x7b of the loader: an LZMA stage, its routine at the call's target.
    let lzma = if stub[0x7b] == 0xe8 {
        let target = stub32(0x7c).wrapping_add(loader).wrapping_add(0x80);
        let s1 = pe.sections.get(1)?;
        if !(target >= s1.rva && u64::from(target) + 4 <= u64::from(s1.rva) + u64::from(s1.vsz)) {
            return None;
        }
        Some(stub32(0x7c).wrapping_sub(pe.sections[0].rva.wrapping_sub(loader).wrapping_sub(0x80)))
    } else {
        None
    };
    let base = pe.image_base;
    let vadd = pe.sections[0].rva;
    let (entry, sections) = sections(&mut m, offdiff, ssize, dsize, base, vadd, lzma)?;
    rebuild::pe(&m.b, &sections, base, entry.wrapping_sub(base), 0x1000)
}

/// Runs the loader: the aplib streams one after another (each followed by the address of
/// the next destination, 0 after the last), then the LZMA stage if there is one. Returns
/// the original entry point (a VA) and the sections to rebuild.
fn sections(
    m: &mut Mem,
    offdiff: u32,
    ssize: u32,
    dsize: u32,
    base: u32,
    vadd: u32,
    lzma: Option<u32>,
) -> Option<(u32, Vec<Placed>)> {
    let vma = i64::from(base.checked_add(vadd)?);
    let total = m.len();
    let head = i64::from(dsize) + i64::from(offdiff);
    if !m.holds(head, 12) {
        return None;
    }
    let entry = m.u32(head + 4)?;
    let first = i64::from(m.u32(head + 8)?) - vma;
    let (mut src, mut dst) = (head + 12, first);
    let mut src_len = i64::from(ssize) - 12 - i64::from(offdiff);
    let mut dst_len = total - first;
    let mut placed: Vec<Placed> = Vec::new();
    let mut last_end;
    loop {
        if !m.holds(src, src_len) || !m.holds(dst, dst_len) {
            return None;
        }
        let end = aplib::decompress(m, src, src_len, dst, dst_len)?;
        last_end = end.src;
        let next = m.u32(end.src)?;
        src_len -= end.src + 4 - src;
        src = end.src + 4;
        dst = i64::from(next) - vma;
        dst_len = total - dst;
        if lzma.is_none() {
            // Sections end where each stream's output ends, rounded to a page.
            let val = align_up(u32::try_from(end.dst).ok()?, 0x1000);
            let start = placed.last().map_or(0, |p: &Placed| p.raw + p.size);
            if !placed.is_empty() && val < start {
                return None;
            }
            let size = val - start;
            if start.checked_add(size)? > dsize {
                return None;
            }
            placed.push(Placed {
                raw: start,
                rva: start.checked_add(vadd)?,
                size,
                vsize: size,
            });
        }
        if next == 0 {
            break;
        }
    }
    if let Some(at) = lzma {
        let special = m.u8(i64::from(at) + 8)? == 0x50;
        lzma_stage(m, last_end + 4, vma, special)?;
        placed = vec![Placed {
            raw: 0,
            rva: vadd,
            size: dsize,
            vsize: dsize,
        }];
    }
    Some((entry, placed))
}

/// The LZMA stage: blocks of (output size, destination VA, compressed size, one octet, then
/// the LZMA stream) until a zero size; in the "special" form (the routine starts with
/// `push eax`) one block preceded by the length of code whose `call`/`jmp` targets were made
/// relative-to-absolute big-endian before packing, undone here.
fn lzma_stage(m: &mut Mem, at: i64, vma: i64, special: bool) -> Option<()> {
    let mut p = at;
    let call_span = if special {
        let n = m.u32(p)?;
        p += 4;
        n
    } else {
        0
    };
    let model = i64::from(m.u32(p)?) - vma;
    p += 4;
    loop {
        if !m.holds(p, if special { 12 } else { 16 }) {
            return None;
        }
        let out_len = m.u32(p)?;
        if !special && out_len == 0 {
            return Some(());
        }
        let dst = i64::from(m.u32(p + 4)?) - vma;
        let packed = i64::from(m.u32(p + 8)?);
        let stream = p + 13;
        p = stream + packed;
        if !m.holds(model, LZMA_MODEL) || !m.holds(stream, 5) {
            return None;
        }
        if out_len == 0 {
            continue;
        }
        let out = lzma(m, stream, out_len)?;
        if !m.holds(dst, i64::try_from(out.len()).ok()?) {
            return None;
        }
        m.put(dst as usize, &out);
        if special {
            unfix_calls(m, dst, call_span);
            return Some(());
        }
    }
}

/// Decodes `out_len` octets of raw LZMA (the stream's first octet is the range coder's
/// unused one) from the image at `stream`.
fn lzma(m: &Mem, stream: i64, out_len: u32) -> Option<Vec<u8>> {
    let input = m.b.get(usize::try_from(stream).ok()?..)?;
    super::raw_lzma(input, true, (LZMA_LC, 0, LZMA_PB), out_len)
}

/// Undoes the packer's call filter over `span` octets at `at`: each `E8`/`E9` is followed by
/// a big-endian absolute target, made little-endian relative again.
fn unfix_calls(m: &mut Mem, at: i64, span: u32) {
    if span < 5 || !m.holds(at, i64::from(span)) {
        return;
    }
    let mut i: i64 = 0;
    while i < i64::from(span) - 5 {
        if matches!(m.u8(at + i), Some(0xe8 | 0xe9)) {
            let adr = at + i + 1;
            if let Some(v) = m.u32(adr) {
                let fixed = v.swap_bytes().wrapping_sub(i as u32).wrapping_sub(1);
                let _ = m.set_u32(adr, fixed);
            }
            i += 4;
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A raw LZMA1 stream with MEW's properties (lc 4, lp 0, pb 2), made with Python's
    /// `lzma` (liblzma), and its text.
    const TEXT: &[u8] = include_bytes!("../../testdata/mew/text.txt");
    const STREAM: &[u8] = include_bytes!("../../testdata/mew/text.lzma1");
    const VMA: u32 = 0x40_1000;

    /// An image holding one LZMA block at 0x100 (model at 0x9000, output to 0x2000), in the
    /// plain form or the "special" one (a call-filter span first, one block).
    fn image(special: bool) -> (Mem, i64) {
        let mut m = Mem::zeroed(0x10000).expect("image");
        let mut p = 0x100;
        if special {
            m.set_u32(p, TEXT.len() as u32).expect("span");
            p += 4;
        }
        m.set_u32(p, VMA + 0x9000).expect("model");
        p += 4;
        m.set_u32(p, TEXT.len() as u32).expect("size");
        m.set_u32(p + 4, VMA + 0x2000).expect("destination");
        m.set_u32(p + 8, STREAM.len() as u32).expect("packed");
        m.put(p as usize + 13, STREAM);
        (m, 0x100)
    }

    #[test]
    fn lzma_stage_decodes_blocks_into_the_image() {
        let (mut m, at) = image(false);
        lzma_stage(&mut m, at, i64::from(VMA), false).expect("decoded");
        assert_eq!(&m.b[0x2000..0x2000 + TEXT.len()], TEXT);
    }

    #[test]
    fn special_form_undoes_the_call_filter() {
        let (mut m, at) = image(true);
        lzma_stage(&mut m, at, i64::from(VMA), true).expect("decoded");
        // The text has no E8/E9 octet: the filter leaves it as it is.
        assert_eq!(&m.b[0x2000..0x2000 + TEXT.len()], TEXT);
        let mut calls = Mem::zeroed(16).expect("buffer");
        calls.put(
            0,
            &[0x90, 0xe8, 0x00, 0x00, 0x10, 0x00, 0x90, 0x90, 0x90, 0x90],
        );
        unfix_calls(&mut calls, 0, 10);
        // Target 0x1000 (big-endian) at offset 1: relative 0x1000 - 1 - 1.
        assert_eq!(calls.u32(2), Some(0x1000 - 2));
    }

    #[test]
    fn lzma_stage_refuses_a_model_outside_the_image_or_a_cut_stream() {
        let (mut m, at) = image(false);
        m.set_u32(at, VMA + 0xf000).expect("model");
        assert!(lzma_stage(&mut m, at, i64::from(VMA), false).is_none());
        let (mut m, at) = image(false);
        let cut = at as usize + 4 + 13 + STREAM.len() / 2;
        m.b[cut..].fill(0);
        let _ = lzma_stage(&mut m, at, i64::from(VMA), false);
        assert_ne!(&m.b[0x2000..0x2000 + TEXT.len()], TEXT);
    }
}
