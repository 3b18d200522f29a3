//! cpio archives (POSIX.1-1988 `odc`, SVR4 `newc`/`crc`, and the old binary format in either
//! byte order), as ClamAV opens them (`libclamav/cpio.c`): the member files, in order, until
//! the `TRAILER!!!` entry or the first header that does not parse. Sans-IO: members are
//! borrowed from the archive's bytes.

/// Which cpio header a member had (ClamAV's container type names, for `Container:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Old binary headers (either byte order).
    Binary,
    /// POSIX `odc` (octal ASCII).
    Odc,
    /// SVR4 `newc` (hex ASCII).
    Newc,
    /// SVR4 `crc`: `newc` with a checksum.
    Crc,
}

impl Format {
    /// ClamAV's name of the container type.
    pub fn container(self) -> &'static str {
        match self {
            Format::Binary => "CL_TYPE_CPIO_OLD",
            Format::Odc => "CL_TYPE_CPIO_ODC",
            Format::Newc => "CL_TYPE_CPIO_NEWC",
            Format::Crc => "CL_TYPE_CPIO_CRC",
        }
    }
}

/// One member: its name and contents (regular files only; directories, links and devices
/// are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member<'a> {
    /// The path as stored.
    pub name: String,
    /// The file's bytes.
    pub data: &'a [u8],
}

/// The archive's format and regular-file members (at most `max` of them).
pub fn members(data: &[u8], max: usize) -> Option<(Format, Vec<Member<'_>>)> {
    let format = format_of(data)?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while out.len() < max {
        let Some(h) = header(data.get(at..)?, format) else {
            break;
        };
        let name_end = at.checked_add(h.header_len)?.checked_add(h.name_len)?;
        let raw_name = data.get(at + h.header_len..name_end)?;
        let name =
            String::from_utf8_lossy(raw_name.split(|&b| b == 0).next().unwrap_or(&[])).into_owned();
        if name == "TRAILER!!!" {
            break;
        }
        let start = align(name_end, h.align);
        let end = start.checked_add(h.size)?;
        let Some(body) = data.get(start..end) else {
            break;
        };
        // S_IFREG (0o100000) under S_IFMT (0o170000): a regular file.
        if h.mode & 0o170000 == 0o100000 {
            out.push(Member { name, data: body });
        }
        at = align(end, h.align);
    }
    Some((format, out))
}

/// What a header says.
struct Header {
    header_len: usize,
    name_len: usize,
    size: usize,
    mode: u32,
    /// Alignment of the name's end and of the data's end (1 for none).
    align: usize,
}

fn align(n: usize, a: usize) -> usize {
    n.div_ceil(a) * a
}

fn format_of(data: &[u8]) -> Option<Format> {
    match data.get(..6)? {
        b"070707" => Some(Format::Odc),
        b"070701" => Some(Format::Newc),
        b"070702" => Some(Format::Crc),
        [0xc7, 0x71, ..] | [0x71, 0xc7, ..] => Some(Format::Binary),
        _ => None,
    }
}

fn header(h: &[u8], format: Format) -> Option<Header> {
    match format {
        Format::Newc | Format::Crc => {
            if !matches!(h.get(..6)?, b"070701" | b"070702") {
                return None;
            }
            let field = |i: usize| -> Option<usize> {
                let s = std::str::from_utf8(h.get(6 + 8 * i..14 + 8 * i)?).ok()?;
                usize::from_str_radix(s, 16).ok()
            };
            Some(Header {
                header_len: 110,
                mode: u32::try_from(field(1)?).ok()?,
                size: field(6)?,
                name_len: field(11)?,
                align: 4,
            })
        }
        Format::Odc => {
            if h.get(..6)? != b"070707" {
                return None;
            }
            let field = |from: usize, len: usize| -> Option<usize> {
                let s = std::str::from_utf8(h.get(from..from + len)?).ok()?;
                usize::from_str_radix(s, 8).ok()
            };
            Some(Header {
                header_len: 76,
                mode: u32::try_from(field(18, 6)?).ok()?,
                name_len: field(59, 6)?,
                size: field(65, 11)?,
                align: 1,
            })
        }
        Format::Binary => {
            let le = match h.get(..2)? {
                [0xc7, 0x71] => true,
                [0x71, 0xc7] => false,
                _ => return None,
            };
            let word = |i: usize| -> Option<usize> {
                let b = h.get(2 * i..2 * i + 2)?;
                Some(usize::from(if le {
                    u16::from_le_bytes([b[0], b[1]])
                } else {
                    u16::from_be_bytes([b[0], b[1]])
                }))
            };
            // Words: magic dev ino mode uid gid nlink rdev mtime[2] namesize filesize[2];
            // the 32-bit values are stored most significant word first.
            Some(Header {
                header_len: 26,
                mode: u32::try_from(word(3)?).ok()?,
                name_len: word(10)?,
                size: (word(11)? << 16) | word(12)?,
                align: 2,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn newc(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let entry = |out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]| {
            out.extend_from_slice(
                format!(
                    "070701{:08X}{mode:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                    1, 0, 0, 1, 0, data.len(), 0, 0, 0, 0, name.len() + 1, 0
                )
                .as_bytes(),
            );
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
            out.extend_from_slice(data);
            while !out.len().is_multiple_of(4) {
                out.push(0);
            }
        };
        entry(&mut out, "dir", 0o040755, b"");
        for (n, d) in files {
            entry(&mut out, n, 0o100644, d);
        }
        entry(&mut out, "TRAILER!!!", 0, b"");
        out
    }

    #[test]
    fn newc_members_in_order_without_directories() {
        let a = newc(&[("a.txt", b"hello"), ("b/c.bin", b"\x00\x01\x02")]);
        let (f, m) = members(&a, 100).expect("cpio");
        assert_eq!(f, Format::Newc);
        assert_eq!(
            m,
            vec![
                Member {
                    name: "a.txt".into(),
                    data: b"hello"
                },
                Member {
                    name: "b/c.bin".into(),
                    data: b"\x00\x01\x02"
                },
            ]
        );
        assert_eq!(members(&a, 1).expect("cpio").1.len(), 1);
    }

    #[test]
    fn truncated_or_foreign_input_stops_cleanly() {
        let a = newc(&[("a.txt", b"hello world")]);
        for cut in 0..a.len() {
            let _ = members(&a[..cut], 100);
        }
        assert!(members(b"not a cpio archive", 10).is_none());
        // A member claiming more bytes than there are ends the walk.
        let mut bad = a.clone();
        bad[54..62].copy_from_slice(b"7FFFFFFF");
        assert_eq!(members(&bad, 10).map(|(_, m)| m.len()), Some(0));
    }

    #[test]
    fn clamav_testfiles_in_all_four_formats() {
        let dir = std::path::Path::new("/usr/share/clamav-testfiles");
        if !dir.exists() {
            return;
        }
        for (file, format) in [
            ("clam.newc.cpio", Format::Newc),
            ("clam.odc.cpio", Format::Odc),
            ("clam.bin-le.cpio", Format::Binary),
            ("clam.bin-be.cpio", Format::Binary),
        ] {
            let data = std::fs::read(dir.join(file)).expect("sample");
            let (f, m) = members(&data, 100).expect(file);
            assert_eq!(f, format, "{file}");
            let exe = m.iter().find(|m| m.name.ends_with("clam.exe")).expect(file);
            assert!(exe.data.starts_with(b"MZ"), "{file}");
            assert_eq!(exe.data.len(), 544, "{file}");
        }
    }
}
