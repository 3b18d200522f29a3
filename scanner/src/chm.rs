//! Microsoft compiled HTML help (`.chm`, the ITSF format), read without I/O: the files of
//! its directory, those in the compressed section unpacked with LZX within a byte budget
//! (ClamAV opens CHM too, `libclamav/chmunpack.c`).
//!
//! Layout (the format as documented by the chmlib and libmspack authors): an `ITSF` header
//! giving the directory's place and where content section 0 starts; an `ITSP` directory
//! header and fixed-size chunks, the `PMGL` ones listing entries as (name, section, offset,
//! length) with 7-bit variable-length integers. Section 0 is stored. Section 1
//! ("MSCompressed") is the LZX stream kept in section 0's file `…/MSCompressed/Content`;
//! its `ControlData` (`LZXC`) gives the window and the reset interval, its reset table the
//! compressed offset of every 32 KiB frame; the decoder restarts at each reset interval.

use crate::le::{le32 as u32_at, le64 as u64_at};
/// The container name in ClamAV's terms (for `.ldb` container conditions).
pub const CONTAINER: &str = "CL_TYPE_MSCHM";

const CONTENT: &str = "::DataSpace/Storage/MSCompressed/Content";
const CONTROL: &str = "::DataSpace/Storage/MSCompressed/ControlData";
const RESET_TABLE: &str = "::DataSpace/Storage/MSCompressed/Transform/\
{7FC28940-9D31-11D0-9B27-00A0C91E9C7C}/InstanceData/ResetTable";
/// Uncompressed octets per LZX frame.
const FRAME: usize = 32 * 1024;
/// The most directory chunks read (a directory of this many 4 KiB chunks lists far more
/// files than any help file holds).
const MAX_CHUNKS: usize = 1 << 16;

pub use crate::unpacked::Member as File;

/// A directory entry.
struct Entry {
    name: String,
    section: u64,
    offset: u64,
    length: u64,
}

fn usize_at(d: &[u8], at: usize) -> Option<usize> {
    usize::try_from(u64_at(d, at)?).ok()
}

/// A 7-bit big-endian variable-length integer ("ENCINT"); advances `at`.
fn encint(d: &[u8], at: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for _ in 0..10 {
        let b = *d.get(*at)?;
        *at += 1;
        v = v.checked_shl(7)? | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// The directory's entries and where content section 0 starts.
fn directory(d: &[u8]) -> Option<(Vec<Entry>, usize)> {
    if d.get(..4)? != b"ITSF" {
        return None;
    }
    let version = u32_at(d, 4)?;
    let (dir_at, dir_len) = (usize_at(d, 72)?, usize_at(d, 80)?);
    let content_at = if version >= 3 {
        usize_at(d, 88)?
    } else {
        dir_at.checked_add(dir_len)?
    };
    let itsp = d.get(dir_at..)?;
    if itsp.get(..4)? != b"ITSP" {
        return None;
    }
    let header_len = usize::try_from(u32_at(itsp, 8)?).ok()?;
    let chunk_size = usize::try_from(u32_at(itsp, 16)?).ok()?;
    let chunks = usize::try_from(u32_at(itsp, 44)?).ok()?.min(MAX_CHUNKS);
    if chunk_size < 20 {
        return None;
    }
    let mut entries = Vec::new();
    for i in 0..chunks {
        let at = header_len.checked_add(i.checked_mul(chunk_size)?)?;
        let Some(chunk) = itsp.get(at..at.checked_add(chunk_size)?) else {
            break;
        };
        if &chunk[..4] != b"PMGL" {
            continue;
        }
        let free = usize::try_from(u32_at(chunk, 4)?).ok()?;
        let end = chunk_size.saturating_sub(free);
        let mut p = 20;
        while p < end {
            let Some(e) = entry(chunk, &mut p) else {
                break;
            };
            entries.push(e);
        }
    }
    Some((entries, content_at))
}

fn entry(chunk: &[u8], p: &mut usize) -> Option<Entry> {
    let len = usize::try_from(encint(chunk, p)?).ok()?;
    let name = chunk.get(*p..p.checked_add(len)?)?;
    *p += len;
    Some(Entry {
        name: String::from_utf8_lossy(name).into_owned(),
        section: encint(chunk, p)?,
        offset: encint(chunk, p)?,
        length: encint(chunk, p)?,
    })
}

/// A section-0 file's octets.
fn stored<'a>(d: &'a [u8], content_at: usize, e: &Entry) -> Option<&'a [u8]> {
    let start = content_at.checked_add(usize::try_from(e.offset).ok()?)?;
    d.get(start..start.checked_add(usize::try_from(e.length).ok()?)?)
}

/// The compressed section, unpacked up to `want` octets (fewer on damage).
fn unpack_section1(d: &[u8], entries: &[Entry], content_at: usize, want: usize) -> Vec<u8> {
    let find = |n: &str| {
        entries
            .iter()
            .find(|e| e.section == 0 && e.name == n)
            .and_then(|e| stored(d, content_at, e))
    };
    let (Some(content), Some(control), Some(table)) =
        (find(CONTENT), find(CONTROL), find(RESET_TABLE))
    else {
        return Vec::new();
    };
    lzx_frames(content, control, table, want).unwrap_or_default()
}

fn lzx_frames(content: &[u8], control: &[u8], table: &[u8], want: usize) -> Option<Vec<u8>> {
    if control.get(4..8)? != b"LZXC" {
        return None;
    }
    // Version 2 counts the reset interval and the window in frames; version 1 in octets.
    let (mut reset, mut window) = (u32_at(control, 12)?, u32_at(control, 16)?);
    if u32_at(control, 8)? == 2 {
        reset = reset.checked_mul(FRAME as u32)?;
        window = window.checked_mul(FRAME as u32)?;
    }
    let frames_per_reset = (reset as usize / FRAME).max(1);
    let window = window_size(window)?;
    let count = usize::try_from(u32_at(table, 4)?).ok()?;
    let header = usize::try_from(u32_at(table, 12)?).ok()?;
    let total = usize_at(table, 16)?.min(want);
    let compressed = usize_at(table, 24)?.min(content.len());
    let offset = |i: usize| -> Option<usize> {
        if i >= count {
            return Some(compressed);
        }
        usize_at(table, header.checked_add(i.checked_mul(8)?)?)
    };
    let mut out = Vec::new();
    // The LZX decoder is a dependency fed with mail: a panic ends the section where it
    // happened, never the scanner thread.
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut lzx = lzxd::Lzxd::new(window);
        let mut i = 0;
        while out.len() < total {
            if i > 0 && i % frames_per_reset == 0 {
                lzx.reset();
            }
            let (Some(from), Some(to)) = (offset(i), offset(i + 1)) else {
                break;
            };
            let Some(chunk) = content.get(from..to.max(from)) else {
                break;
            };
            let n = FRAME.min(total - out.len());
            match lzx.decompress_next(chunk, n) {
                Ok(frame) => out.extend_from_slice(frame),
                Err(_) => break,
            }
            i += 1;
        }
    }));
    Some(out)
}

fn window_size(octets: u32) -> Option<lzxd::WindowSize> {
    use lzxd::WindowSize::*;
    Some(match octets {
        0x8000 => KB32,
        0x1_0000 => KB64,
        0x2_0000 => KB128,
        0x4_0000 => KB256,
        0x8_0000 => KB512,
        0x10_0000 => MB1,
        0x20_0000 => MB2,
        _ => return None,
    })
}

/// The files of the help file `data`, at most `max`, with at most `budget` octets unpacked
/// from the compressed section. `None` when `data` is not a help file.
pub fn files(data: &[u8], max: usize, budget: u64) -> Option<Vec<File>> {
    let (entries, content_at) = directory(data)?;
    let listed: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.name.starts_with("::") && !e.name.ends_with('/') && e.length > 0)
        .take(max)
        .collect();
    let cap = usize::try_from(budget).unwrap_or(usize::MAX);
    let want = listed
        .iter()
        .filter(|e| e.section == 1)
        .map(|e| e.offset.saturating_add(e.length))
        .max()
        .map_or(0, |end| usize::try_from(end).unwrap_or(usize::MAX).min(cap));
    let section1 = if want > 0 {
        unpack_section1(data, &entries, content_at, want)
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let mut left = cap;
    for e in listed {
        let whole = match e.section {
            0 => stored(data, content_at, e).unwrap_or_default(),
            _ => {
                let start = usize::try_from(e.offset).unwrap_or(usize::MAX);
                let end = start.saturating_add(usize::try_from(e.length).unwrap_or(usize::MAX));
                section1
                    .get(start.min(section1.len())..end.min(section1.len()))
                    .unwrap_or_default()
            }
        };
        let short = (whole.len() as u64) < e.length;
        let take = whole.len().min(left);
        left -= take;
        out.push(File {
            name: e.name.clone(),
            data: whole[..take].to_vec(),
            capped: take < whole.len() || (short && e.section == 1 && want == cap),
            encrypted: false,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clamav-testfiles' `clam.chm`: clam.exe in the compressed section of a help file.
    #[test]
    fn clamav_sample() {
        let chm = std::fs::read("/usr/share/clamav-testfiles/clam.chm")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
        let got = files(&chm, 100, u64::MAX).expect("a help file");
        let names: Vec<&str> = got.iter().map(|f| f.name.as_str()).collect();
        assert!(
            got.iter().any(|f| f.data == exe),
            "clam.exe not among {names:?}"
        );
        let capped = files(&chm, 100, 100).expect("a help file");
        assert!(capped.iter().map(|f| f.data.len()).sum::<usize>() <= 100);
        assert!(capped.iter().any(|f| f.capped));
    }

    #[test]
    fn damage_gives_fewer_files_without_a_panic() {
        let chm = std::fs::read("/usr/share/clamav-testfiles/clam.chm")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        for cut in (0..chm.len()).step_by(97) {
            let _ = files(&chm[..cut], 100, 1 << 20);
        }
        for step in [13, 101, 997] {
            let mut bad = chm.clone();
            for i in (0..bad.len()).step_by(step) {
                bad[i] ^= 0xa5;
            }
            let _ = files(&bad, 100, 1 << 20);
        }
        assert!(files(b"ITSF", 10, 10).is_none());
        assert!(files(b"PK\x03\x04", 10, 10).is_none());
    }
}
