//! Symbian installation files (`.sis`, EPOC releases 3 to 6), read without I/O: the files
//! an installer carries, each inflated within a byte budget (ClamAV opens them too,
//! `libclamav/sis.c`).
//!
//! Layout (Symbian's "SIS file format" for EPOC): a header of four UIDs (the third is
//! 0x10000419), counts of languages and file records, option flags, and offsets of the
//! language list and the file records. A file record names its source and destination and
//! gives, per language for a multi-language record, the length and offset of the file;
//! files are zlib streams unless the header's "not compressed" flag is set. Records of
//! other kinds (option lists, conditions) are stepped over by their sizes.

/// The container name in ClamAV's terms (for `.ldb` container conditions).
pub const CONTAINER: &str = "CL_TYPE_SIS";

/// The third UID of every EPOC installation file.
const UID3: u32 = 0x1000_0419;
/// The second UID of an EPOC release 6 file, whose file records give each file's
/// uncompressed length as well.
const UID2_EPOC6: u32 = 0x1000_3a12;
/// Header option: names are UCS-2.
const OPT_UNICODE: u16 = 0x0001;
/// Header option: files are stored, not deflated.
const OPT_NOT_COMPRESSED: u16 = 0x0008;
/// File types without contents in the package ("null": a file the program creates).
const FILE_NULL: u32 = 4;

pub use crate::unpacked::Member as File;

/// Little-endian reads at offsets of the package.
struct Pkg<'a>(&'a [u8]);

impl<'a> Pkg<'a> {
    fn u16(&self, at: usize) -> Option<u16> {
        Some(u16::from_le_bytes(self.0.get(at..at + 2)?.try_into().ok()?))
    }

    fn u32(&self, at: usize) -> Option<u32> {
        Some(u32::from_le_bytes(self.0.get(at..at + 4)?.try_into().ok()?))
    }

    fn usize(&self, at: usize) -> Option<usize> {
        usize::try_from(self.u32(at)?).ok()
    }

    fn slice(&self, at: usize, len: usize) -> Option<&'a [u8]> {
        self.0.get(at..at.checked_add(len)?)
    }
}

/// The header fields the reader uses.
struct Header {
    langs: usize,
    files: usize,
    options: u16,
    epoc6: bool,
    records: usize,
}

fn header(p: &Pkg<'_>) -> Option<Header> {
    if p.u32(8)? != UID3 {
        return None;
    }
    Some(Header {
        langs: usize::from(p.u16(18)?).max(1),
        files: usize::from(p.u16(20)?),
        options: p.u16(36)?,
        epoc6: p.u32(4)? == UID2_EPOC6,
        records: p.usize(52)?,
    })
}

/// A name field: UCS-2 when the package says so.
fn name(p: &Pkg<'_>, len: usize, at: usize, unicode: bool) -> String {
    let Some(raw) = p.slice(at, len) else {
        return String::new();
    };
    if unicode {
        let units: Vec<u16> = raw
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(raw).into_owned()
    }
}

/// The files of the package `data`, at most `max`, with at most `budget` octets inflated in
/// all. `None` when `data` is not an EPOC installation file.
pub fn files(data: &[u8], max: usize, mut budget: u64) -> Option<Vec<File>> {
    let p = Pkg(data);
    let h = header(&p)?;
    let unicode = h.options & OPT_UNICODE != 0;
    let mut out = Vec::new();
    let mut at = h.records;
    for _ in 0..h.files {
        if out.len() >= max {
            break;
        }
        let Some(kind) = p.u32(at) else {
            break;
        };
        at += 4;
        match kind {
            // A simple file (0), or one per language (1).
            0 | 1 => {
                let copies = if kind == 1 { h.langs } else { 1 };
                let file_type = p.u32(at)?;
                let (src_len, src_at) = (p.usize(at + 8)?, p.usize(at + 12)?);
                let (dst_len, dst_at) = (p.usize(at + 16)?, p.usize(at + 20)?);
                let lens = at + 24;
                let ptrs = lens.checked_add(copies.checked_mul(4)?)?;
                at = ptrs.checked_add(copies.checked_mul(if h.epoc6 { 8 } else { 4 })?)?;
                if file_type == FILE_NULL {
                    continue;
                }
                let mut label = name(&p, dst_len, dst_at, unicode);
                if label.is_empty() {
                    label = name(&p, src_len, src_at, unicode);
                }
                for i in 0..copies {
                    if out.len() >= max {
                        break;
                    }
                    let (Some(len), Some(off)) = (p.usize(lens + 4 * i), p.usize(ptrs + 4 * i))
                    else {
                        break;
                    };
                    let Some(stored) = p.slice(off, len) else {
                        continue;
                    };
                    let (data, capped) = contents(stored, h.options, budget);
                    budget = budget.saturating_sub(data.len() as u64);
                    out.push(File {
                        name: label.clone(),
                        data,
                        capped,
                        encrypted: false,
                    });
                }
            }
            // Options: per option a (length, offset) name in each language, then 16 octets
            // of selections.
            2 => {
                let n = p.usize(at)?;
                at = at
                    .checked_add(4)?
                    .checked_add(n.checked_mul(h.langs)?.checked_mul(8)?)?
                    .checked_add(16)?;
            }
            // A condition (`if`, `else if`): its expression's length, then the expression.
            3 | 4 => at = at.checked_add(4)?.checked_add(p.usize(at)?)?,
            // `else`, `endif`: nothing more.
            5 | 6 => {}
            _ => break,
        }
    }
    Some(out)
}

/// A stored file's contents within `budget`: inflated unless the package stores files as
/// they are. What inflated before any damage is kept.
fn contents(stored: &[u8], options: u16, budget: u64) -> (Vec<u8>, bool) {
    if options & OPT_NOT_COMPRESSED != 0 {
        return crate::unpacked::take_within(stored, budget);
    }
    crate::unpacked::read_within(flate2::read::ZlibDecoder::new(stored), budget)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clamav-testfiles' `clam.sis`: clam.exe in an EPOC 6 package (UCS-2 names, deflated).
    #[test]
    fn clamav_sample() {
        let sis = std::fs::read("/usr/share/clamav-testfiles/clam.sis")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
        let got = files(&sis, 10, u64::MAX).expect("a package");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "!:\\clam.exe");
        assert!(got[0].data == exe && !got[0].capped);
        let capped = files(&sis, 10, 100).expect("a package");
        assert!(capped[0].capped && capped[0].data.len() == 100);
        assert_eq!(files(b"not a package at all", 10, 100), None);
    }

    /// A package built here: EPOC 5 (no uncompressed lengths), two languages, an option
    /// record and a condition before a multi-language file record, files stored.
    #[test]
    fn records_of_every_kind_and_stored_files() {
        let mut v = vec![0u8; 0x40];
        v[4..8].copy_from_slice(&0x1000_006du32.to_le_bytes());
        v[8..12].copy_from_slice(&UID3.to_le_bytes());
        v[18..20].copy_from_slice(&2u16.to_le_bytes()); // languages
        v[20..22].copy_from_slice(&4u16.to_le_bytes()); // records
        v[36..38].copy_from_slice(&OPT_NOT_COMPRESSED.to_le_bytes());
        v[52..56].copy_from_slice(&0x40u32.to_le_bytes());
        let put = |v: &mut Vec<u8>, x: u32| v.extend(x.to_le_bytes());
        // Options: one option, two languages' names, selections.
        put(&mut v, 2);
        put(&mut v, 1);
        v.extend([0u8; 16]);
        v.extend([0u8; 16]);
        // if <3-octet expression>, endif
        put(&mut v, 3);
        put(&mut v, 3);
        v.extend(b"abc");
        put(&mut v, 6);
        // Multi-language file: type 0, details 0, source "s", destination "dst", then the
        // two languages' lengths and offsets. Names and files follow the records (header,
        // options 40, if 11, endif 4, this record 44).
        let names_at = 0x40 + 40 + 11 + 4 + 44;
        put(&mut v, 1);
        put(&mut v, 0);
        put(&mut v, 0);
        put(&mut v, 1);
        put(&mut v, names_at as u32);
        put(&mut v, 3);
        put(&mut v, names_at as u32 + 1);
        put(&mut v, 2);
        put(&mut v, 3);
        put(&mut v, names_at as u32 + 4);
        put(&mut v, names_at as u32 + 6);
        assert_eq!(v.len(), names_at);
        v.extend(b"sdstEN");
        v.extend(b"FR!");
        let got = files(&v, 10, u64::MAX).expect("a package");
        let summary: Vec<(&str, &[u8])> = got
            .iter()
            .map(|f| (f.name.as_str(), f.data.as_slice()))
            .collect();
        assert_eq!(summary, [("dst", &b"EN"[..]), ("dst", &b"FR!"[..])]);
        assert_eq!(files(&v, 1, u64::MAX).map(|f| f.len()), Some(1));
        for cut in 0..v.len() {
            let _ = files(&v[..cut], 10, u64::MAX);
        }
    }
}
