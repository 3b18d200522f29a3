//! Upack 0.39 (its three-section form: a `SizeOfOptionalHeader` of 0x148 and an entry point
//! starting `mov esi, …`): the loader's data, found by following the stub's jumps, gives
//! the LZMA stream, where its output goes, the literal context bits (a `shr ebp, n` in the
//! stub) and the size of the probability model; the output's `call`/`jmp` targets were
//! turned into big-endian absolute ones tagged with a marker octet, undone afterwards.
//!
//! The decoder is LZMA with no position bits (`lp` = `pb` = 0) and `8 - n` literal context
//! bits; Upack's own range decoder (which re-reads four octets at each step) produces the
//! same bits as the standard one, so the standard decoder is used.

use super::rebuild::{self, Placed};
use super::{Mem, Pe};
use crate::le::le32;

/// The stub variants ClamAV distinguishes (named after the samples they came from).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stub {
    /// `mov esi, …; lodsd; push eax`: Upack 0.39.
    V039,
    /// Like 0.39, the `jecxz` three octets later.
    S0151477,
    /// `mov esi, …; push [esi]`.
    S0297729,
}

/// Where the loader's pieces were found.
struct Loader {
    stub: Stub,
    /// Offset in the image of the marker octet that tags filtered call targets.
    marker: i64,
    /// The `shr ebp, n` count: literal context is the previous octet shifted right by it.
    shift: u32,
    /// Probability model entries the loader initialises.
    model: u32,
}

/// The rebuilt program, if `pe` is Upack-packed (three-section form) and unpacks.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let e = pe.ep_window();
    if pe.opt_size != 0x148 || pe.sections.len() != 3 || e.len() < 16 {
        return None;
    }
    let esi = le32(e, 1)?;
    if e[0] != 0xbe || esi.wrapping_sub(pe.image_base) <= pe.min {
        return None;
    }
    let stub = match (e[5], e[6]) {
        (0xad, 0x50) => Stub::V039,
        (0xff, 0x36) => Stub::S0297729,
        _ => return None,
    };
    let (s0, s1, s2) = (pe.sections[0], pe.sections[1], pe.sections[2]);
    let head = s0.ursz.checked_add(s0.uraw)?;
    let vma = pe.image_base.wrapping_add(s0.rva);
    let size = s0.vsz.checked_add(s1.vsz)?.checked_add(s2.vsz)?;
    let s1_at = s1.rva.wrapping_sub(s0.rva);
    let s2_at = s2.rva.wrapping_sub(s0.rva);
    if !fits(size, s1_at, s1.ursz) || !fits(size, s2_at, head) || head > size {
        return None;
    }
    // The image: the file's head where the loader expects it (at 0 and again at the third
    // section), the second section's data at its place.
    let mut m = Mem::zeroed(size)?;
    let file_head = pe.read(0, head);
    let second = pe.read(s1.uraw, s1.ursz);
    if file_head.len() != head as usize || second.len() != s1.ursz as usize {
        return None;
    }
    m.put(0, file_head);
    m.put(s2_at as usize, file_head);
    m.put(s1_at as usize, second);
    let (len, entry) = run(&mut m, esi, stub, vma, pe.ep, pe.image_base)?;
    if len > size {
        return None;
    }
    let region = Placed {
        raw: 0,
        rva: s0.rva,
        size: len,
        vsize: len,
    };
    rebuild::pe(&m.b, &[region], pe.image_base, entry, 0)
}

/// ClamAV's `CLI_ISCONTAINED_0_TO`: `n` > 0 octets at `at` inside `size`.
fn fits(size: u32, at: u32, n: u32) -> bool {
    n > 0 && n <= size && u64::from(at) + u64::from(n) <= u64::from(size)
}

/// Follows the stub to its data, decompresses and undoes the call filter. Returns the
/// output's length and the original entry point's RVA.
fn run(m: &mut Mem, esi: u32, stub: Stub, vma: u32, ep: u32, base: u32) -> Option<(u32, u32)> {
    let ep = i64::from(ep);
    let mut at = i64::from(esi.wrapping_sub(vma));
    if !m.holds(at, 12) {
        return None;
    }
    let entry = m.u32(at)?.wrapping_sub(vma);
    at += 8;
    let (loader, mut data, mut edi) = find_loader(m, at, stub, ep, vma, base)?;
    // The loader copies its data block, then lays out the range coder's state (range,
    // code, four repeat distances) and the probability model after it.
    let (block, end_at) = if loader.stub == Stub::S0297729 {
        (0x16, 0x64)
    } else {
        (0x27, 0x34)
    };
    let model = i64::from(loader.model);
    if !m.holds(edi, block * 4 + 24 + 4 * model) || !m.holds(data, block * 4 + end_at + 4) {
        return None;
    }
    for _ in 0..block {
        let v = m.u32(data)?;
        m.set_u32(edi, v)?;
        data += 4;
        edi += 4;
    }
    let mut calls = m.u32(data + 4)?;
    let input = i64::from(m.u32(edi - 4)?.wrapping_sub(vma));
    let state = edi;
    for (k, v) in [u32::MAX, 0, 1, 1, 1, 1].into_iter().enumerate() {
        m.set_u32(state + 4 * k as i64, v)?;
    }
    let probs = state + 24;
    for k in 0..model {
        m.set_u32(probs + 4 * k, 0x400)?;
    }
    let signed = |v: u32| i64::from(v as i32);
    let out = if loader.stub == Stub::S0297729 {
        i64::from(vma) - i64::from(base)
    } else {
        signed(m.u32(data + 0xc)?) - i64::from(vma)
    };
    let out_end = signed(m.u32(data + end_at)?) - i64::from(vma);
    if loader.stub == Stub::S0297729 {
        calls = m.u32(data + 0x40)?;
    }
    if out > out_end {
        return None;
    }
    // The model must hold every probability the decoder reads, all initialised (0x18
    // octets of state precede it, the literal tables start at 0x1008).
    let lc = 8 - loader.shift;
    if 0x18 + 4 * model < 0x1008 + (0xc00_i64 << lc) {
        return None;
    }
    let len = u32::try_from(out_end - out).ok()?;
    let decoded = lzma(m, input, lc, len)?;
    if !m.holds(out, i64::from(len)) {
        return None;
    }
    m.put(out as usize, &decoded);
    let marker = m.u8(loader.marker)?;
    unfilter_calls(m, out, calls, marker)?;
    Some((len, entry))
}

/// Follows the stub's jumps to the loader proper: returns what it found, the offset of the
/// loader's data block and where that block is copied to.
fn find_loader(
    m: &Mem,
    at: i64,
    stub: Stub,
    ep: i64,
    vma: u32,
    base: u32,
) -> Option<(Loader, i64, i64)> {
    let byte = |o: i64| m.u8(o);
    let (mut edi, start, mut al, far) = if stub == Stub::V039 {
        let edi = i64::from(m.u32(at)?.wrapping_sub(vma));
        // jmp short, then another 0x1a further on.
        if !m.holds(ep + 0xa, 2) || byte(ep + 0xa)? != 0xeb {
            return None;
        }
        let start = i64::from(byte(ep + 0xb)? as i8) + ep + 0xc;
        let mut al = start + 0x1a;
        if !m.holds(al, 2) || byte(al)? != 0xeb {
            return None;
        }
        al += 1;
        al += i64::from(byte(al)?) + 1 + 0xa;
        (edi, start, al, 8)
    } else {
        if !m.holds(ep + 7, 5) || byte(ep + 7)? != 0xe9 {
            return None;
        }
        let start = signed32(m.u32(ep + 8)?) + ep + 0xc;
        (0, start, start + 0x25, 10)
    };
    // `mov ch, count`: the model's size in 256-entry units.
    if !m.holds(al, 2) || byte(al)? != 0xb5 {
        return None;
    }
    al += 1;
    let model = u32::from(byte(al)?) * 0x100;
    if !m.holds(al, far + 5) || byte(al + far)? != 0xe9 {
        return None;
    }
    let jump = i64::from(m.u32(al + far + 1)?);
    let head = if stub == Stub::V039 {
        jump + start + i64::from(byte(start + 0x1b)? as i8) + 0x1c + 0x18
    } else {
        jump + start + 0x35
    };
    let head = i64::from(head as u32);
    // The `jecxz` at 43 (0.39) or 46 (the others) into the loader.
    let (mut stub, mut jecxz, mut aljump, mut shift_at) = (stub, head + 43, 8, 24);
    if !m.holds(jecxz - 1, 2) || byte(jecxz - 1)? != 0xe3 {
        jecxz = head + 46;
        if !m.holds(jecxz - 1, 2) || byte(jecxz - 1)? != 0xe3 {
            return None;
        }
        if stub != Stub::S0297729 {
            stub = Stub::S0151477;
        }
        aljump = 7;
        shift_at = 26;
    }
    let mut marker = jecxz + i64::from(byte(jecxz)?) + 1;
    if !m.holds(marker, aljump + 5) || byte(marker + aljump)? != 0xe9 {
        return None;
    }
    let rel = m.u32(marker + aljump + 1)?;
    marker += i64::from(rel.wrapping_add(aljump as u32 + 1 + 4 + 27));
    if stub == Stub::S0297729 {
        marker += 2;
    }
    // `shr ebp, n`.
    if !m.holds(head + shift_at, 3)
        || byte(head + shift_at)? != 0xc1
        || byte(head + shift_at + 1)? != 0xed
    {
        return None;
    }
    let shift = u32::from(byte(head + shift_at + 2)?);
    if !(2..=8).contains(&shift) {
        return None;
    }
    let data = if stub == Stub::S0297729 {
        if !m.holds(start + 6, 10) || byte(start + 6)? != 0xbe || byte(start + 11)? != 0xbf {
            return None;
        }
        let src = m.u32(start + 7)?;
        if src < base || src > vma {
            return None;
        }
        edi = i64::from(m.u32(start + 12)?.wrapping_sub(vma));
        i64::from(src - base)
    } else {
        if !m.holds(start + 7, 5) || byte(start + 7)? != 0xbe {
            return None;
        }
        i64::from(m.u32(start + 8)?.wrapping_sub(vma))
    };
    let loader = Loader {
        stub,
        marker,
        shift,
        model,
    };
    Some((loader, data, edi))
}

fn signed32(v: u32) -> i64 {
    i64::from(v as i32)
}

/// Decodes `len` octets of LZMA (`lc` literal context bits, no position bits) whose range
/// coder starts at `input` in the image (Upack's stream has no unused first octet).
fn lzma(m: &Mem, input: i64, lc: u32, len: u32) -> Option<Vec<u8>> {
    let src = m.b.get(usize::try_from(input).ok()?..)?;
    super::raw_lzma(src, false, (u8::try_from(lc).ok()?, 0, 0), len)
}

/// Undoes the call filter: `calls` `E8`/`E9` instructions from `at` on whose operand's low
/// octet is `marker` carry a big-endian absolute target in the other three; each becomes
/// relative again. Running past the image before all are found fails the unpacking, as it
/// fails the packer's loader.
fn unfilter_calls(m: &mut Mem, at: i64, mut calls: u32, marker: u8) -> Option<()> {
    let mut i: i64 = 0;
    while calls > 0 {
        let op = m.u8(at + i)?;
        if op != 0xe8 && op != 0xe9 {
            i += 1;
            continue;
        }
        let adr = at + i + 1;
        i += 1;
        let v = m.u32(adr)?;
        if v & 0xff != u32::from(marker) {
            continue;
        }
        let fixed = (v & 0xffff_ff00)
            .swap_bytes()
            .wrapping_sub(i as u32)
            .wrapping_sub(4);
        m.set_u32(adr, fixed)?;
        i += 4;
        calls -= 1;
    }
    Some(())
}
