//! yC (yoda's Crypter) 1.3 and its variants: the last section holds a loader entered 0x60
//! into it, whose polymorphic decryptor — a few dozen octets of `add`/`sub`/`xor`/`rol`/
//! `ror`/`dec` on AL, with junk jumps between them — first decrypts the loader's own
//! section decryptor, which then decrypts every section but resources, relocations, TLS and
//! the import/export data, one octet at a time with CL counting down. Both decryptors are
//! interpreted here over the file as ClamAV does; the result, without the loader section
//! and with the original entry point, is the rebuilt program.

use super::{MIN_EP_WINDOW, Pe};
use crate::le::{le16, le32};

/// Octets of a decryptor interpreted per octet decrypted.
const DECRYPTOR_LEN: u32 = 0x30;
/// Most jumps followed in one run (a jump loop ends the unpacking).
const MAX_JUMPS: u32 = 100_000_000;

/// Why the interpreter stopped.
enum Stop {
    /// An instruction it does not know, or a read outside the file.
    Unknown,
}

/// The rebuilt program, if `pe` is yC-packed and decrypts.
pub(super) fn unpack(pe: &Pe<'_>) -> Option<Vec<u8>> {
    let e = pe.ep_window();
    let n = pe.sections.len();
    let last = *pe.sections.last()?;
    let lfanew = le32(pe.data, 0x3c)? as usize;
    let entry = le32(pe.data, lfanew + 0x28)?;
    if n < 2 || entry != last.rva.wrapping_add(0x60) || e.len() < MIN_EP_WINDOW {
        return None;
    }
    let (ecx, offset) = variant(e)?;
    let fsize = pe.data.len() as u64;
    let mark = usize::try_from(0x63 + offset).ok()?;
    if !(0x801..0x2000).contains(&ecx)
        || e.get(mark..mark + 3) != Some(&[0xaa, 0xe2, 0xcc][..])
        || fsize < (i64::from(last.raw) + 0xc6 + i64::from(ecx) + offset) as u64
    {
        return None;
    }
    let mut f = pe.data.to_vec();
    let loader = usize::try_from(i64::from(last.raw) + offset).ok()?;
    // First layer: the section decryptor, decrypted by the polymorphic one.
    decrypt(&mut f, loader + 0x93, loader + 0xc6, ecx, ecx).ok()?;
    let kept_len = f.len().checked_sub(last.ursz as usize)?;
    let table = lfanew + 0x18 + usize::from(le16(&f, lfanew + 0x14)?);
    let second = loader + if offset == -0x18 { 0x3ea } else { 0x457 };
    for (i, s) in pe.sections[..n - 1].iter().enumerate() {
        let name = le32(&f, table + i * 0x28)?;
        if s.raw == 0 || s.rsz == 0 || skipped(name) {
            continue;
        }
        let limit = (kept_len as u32).checked_sub(s.raw)?;
        decrypt(&mut f, second, s.raw as usize, s.ursz, limit).ok()?;
    }
    // The header: the loader section gone, no import directory, the original entry point,
    // the image smaller by the loader.
    let original_entry = le32(&f, loader + 0xa0f)?;
    let opt = lfanew + 24;
    f.get_mut(lfanew + 6..lfanew + 8)?
        .copy_from_slice(&((n - 1) as u16).to_le_bytes());
    f.get_mut(opt + 0x68..opt + 0x70)?.fill(0);
    f.get_mut(opt + 16..opt + 20)?
        .copy_from_slice(&original_entry.to_le_bytes());
    let image = le32(&f, opt + 0x38)?.wrapping_sub(last.vsz);
    f.get_mut(opt + 0x38..opt + 0x3c)?
        .copy_from_slice(&image.to_le_bytes());
    f.truncate(kept_len);
    Some(f)
}

/// The loader's byte count and the loader's offset from its section, by stub variant
/// (1.3, 1.3 with a stack frame, 1.x modified).
fn variant(e: &[u8]) -> Option<(u32, i64)> {
    let r32 = |at: usize| le32(e, at).unwrap_or(0);
    let mut ecx = 0u32;
    let mut offset = None;
    if e.starts_with(&[
        0x55, 0x8b, 0xec, 0x53, 0x56, 0x57, 0x60, 0xe8, 0, 0, 0, 0, 0x5d, 0x81, 0xed,
    ]) && e.get(0x26..0x33)
        == Some(
            &[
                0x8d, 0x3a, 0x8b, 0xf7, 0x33, 0xc0, 0xeb, 0x04, 0x90, 0xeb, 0x01, 0xc2, 0xac,
            ][..],
        )
        && e[0x13] == 0xb9
        && le16(e, 0x18) == Some(0xe981)
        && e.get(0x1e..0x22) == Some(&[0x8b, 0xd5, 0x81, 0xc2][..])
    {
        offset = Some(0);
        if 0x6cu32.wrapping_sub(r32(0xf)).wrapping_add(r32(0x22)) == 0xc6 {
            ecx = r32(0x14).wrapping_sub(r32(0x1a));
        }
    }
    if ecx == 0
        && e.starts_with(&[0x55, 0x8b, 0xec, 0x83, 0xec, 0x40, 0x53, 0x56, 0x57])
        && e.get(0x17..0x1f) == Some(&[0xe8, 0, 0, 0, 0, 0x5d, 0x81, 0xed][..])
        && e[0x23] == 0xb9
    {
        offset = Some(0x10);
        if 0x6cu32.wrapping_sub(r32(0x1f)).wrapping_add(r32(0x32)) == 0xc6 {
            ecx = r32(0x24).wrapping_sub(r32(0x2a));
        }
    }
    if ecx == 0
        && e.starts_with(&[0x60, 0xe8, 0, 0, 0, 0, 0x5d, 0x81, 0xed])
        && e[0xd] == 0xb9
        && le16(e, 0x12) == Some(0xbd8d)
        && e.get(0x18..0x1b) == Some(&[0x8b, 0xf7, 0xac][..])
    {
        offset = Some(-0x18);
        if 0x66u32.wrapping_sub(r32(0x9)).wrapping_add(r32(0x14)) == 0xae {
            ecx = r32(0xe);
        }
    }
    Some((ecx, offset?))
}

/// Sections the loader leaves as they are: resources, relocations, export, read-only, import
/// and TLS data, and its own.
fn skipped(name: u32) -> bool {
    const NAMES: [&[u8; 4]; 8] = [
        b"rsrc", b".rsr", b"relo", b".rel", b".eda", b".rda", b".ida", b".tls",
    ];
    NAMES.iter().any(|n| u32::from_le_bytes(**n) == name)
        || name & 0xffff == u32::from(u16::from_le_bytes(*b"yC"))
}

/// Decrypts `count` octets (at most `limit`) at `code` with the decryptor at `decryptor`,
/// both offsets into the file `f`.
fn decrypt(
    f: &mut [u8],
    decryptor: usize,
    code: usize,
    count: u32,
    limit: u32,
) -> Result<(), Stop> {
    let byte = |f: &[u8], at: usize| f.get(at).copied().ok_or(Stop::Unknown);
    let mut cl = count as u8;
    let mut jumps = MAX_JUMPS;
    for i in 0..count.min(limit) as usize {
        let mut al = byte(f, code + i)?;
        let mut j: u32 = 0;
        while j < DECRYPTOR_LEN {
            let at = |k: u32| decryptor + k as usize;
            match byte(f, at(j))? {
                0xeb => {
                    // jmp short: a signed displacement from the next instruction.
                    j += 1;
                    if jumps == 0 {
                        return Err(Stop::Unknown);
                    }
                    jumps -= 1;
                    j = j.wrapping_add(byte(f, at(j))? as i8 as u32);
                }
                0xfe => {
                    al = al.wrapping_sub(1);
                    j += 1;
                }
                0x2a => {
                    al = al.wrapping_sub(cl);
                    j += 1;
                }
                0x02 => {
                    al = al.wrapping_add(cl);
                    j += 1;
                }
                0x32 => {
                    al ^= cl;
                    j += 1;
                }
                0x04 => {
                    j += 1;
                    al = al.wrapping_add(byte(f, at(j))?);
                }
                0x34 => {
                    j += 1;
                    al ^= byte(f, at(j))?;
                }
                0x2c => {
                    j += 1;
                    al = al.wrapping_sub(byte(f, at(j))?);
                }
                0xc0 => {
                    j += 1;
                    let rol = byte(f, at(j))? == 0xc0;
                    j += 1;
                    let n = u32::from(byte(f, at(j))? & 7);
                    al = if rol {
                        al.rotate_left(n)
                    } else {
                        al.rotate_right(n)
                    };
                }
                0xd2 => {
                    j += 1;
                    let ror = byte(f, at(j))? == 0xc8;
                    j += 1;
                    let n = u32::from(cl & 7);
                    al = if ror {
                        al.rotate_right(n)
                    } else {
                        al.rotate_left(n)
                    };
                }
                0x90 | 0xf8 | 0xf9 => {}
                _ => return Err(Stop::Unknown),
            }
            j = j.wrapping_add(1);
        }
        cl = cl.wrapping_sub(1);
        *f.get_mut(code + i).ok_or(Stop::Unknown)? = al;
    }
    Ok(())
}
