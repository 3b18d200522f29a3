//! Nullsoft (NSIS) installers: the files an installer program carries, read as ClamAV's
//! `nulsft.c` reads them. The installer's data starts with its "first header" (flags,
//! `0xDEADBEEF`, `NullsoftInst`, header size, archive size); then either blocks of their own
//! (a 32-bit size, its top bit set when the block is compressed) or one compressed stream of
//! such blocks ("solid"). The first block is the installer's script header ("headers"), the
//! others the files ("content.001", …). LZMA and deflate are read; NSIS's bzip2 variant (no
//! stream header, no block magic) is not yet: such an installer is not opened.

use crate::le::le32;
use crate::unpacked::{CappedWriter, Member};

/// The first header's signature, 4 octets into it.
pub const SIGNATURE: &[u8] = b"\xef\xbe\xad\xdeNullsoftInst";

/// Length of the first header.
const FIRST_HEADER: usize = 0x1c;

/// The top bit of a block size: the block is compressed.
const COMPRESSED: u32 = 0x8000_0000;

/// Largest LZMA dictionary allowed (NSIS's `/DICTSIZE` goes to 64 MiB by default).
const LZMA_MEMLIMIT: usize = 64 << 20;

/// How the installer's data is compressed (ClamAV's guess from the first octets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Bzip2,
    Lzma,
    Deflate,
}

/// The method a compressed stream starting with `b` uses.
fn method_of(b: &[u8]) -> Method {
    match b {
        [b'1', ..] => Method::Bzip2,
        [_, _, _, _, ..] if le32(b, 0).is_some_and(|v| v & !COMPRESSED == 0x5d) => Method::Lzma,
        _ => Method::Deflate,
    }
}

/// The files of the installer whose first header starts `data` (at most `max` of them, at
/// most `budget` octets unpacked in all); `None` when `data` is no NSIS data this reads.
pub fn members(data: &[u8], max: usize, budget: u64) -> Option<Vec<Member>> {
    if data.get(4..4 + SIGNATURE.len())? != SIGNATURE {
        return None;
    }
    let declared = le32(data, 0x18)? as usize;
    let end = declared.min(data.len());
    let body = data.get(FIRST_HEADER..end)?;
    if body.len() < 4 {
        return None;
    }
    let (solid, method) = layout(body);
    if method == Method::Bzip2 {
        return None;
    }
    let mut out = Vec::new();
    let mut left = budget;
    if solid {
        let (stream, capped) = decompress(method, body, left)?;
        items(&stream, capped, max, &mut out);
    } else {
        blocks(body, method, max, &mut left, &mut out);
    }
    Some(out)
}

/// Whether the data is one solid stream, and its method: ClamAV walks the blocks from the
/// start; when one would end past the data, it is solid. Otherwise the method most blocks
/// start with wins.
fn layout(body: &[u8]) -> (bool, Method) {
    let mut counts = [0usize; 3];
    let mut pos = 0usize;
    while pos + 4 < body.len() {
        let Some(size) = le32(body, pos) else { break };
        if size & COMPRESSED != 0 {
            let m = method_of(body.get(pos + 4..).unwrap_or(&[]));
            counts[m as usize] += 1;
        }
        pos = pos.saturating_add(4 + (size & !COMPRESSED) as usize);
        if pos > body.len() {
            // A solid stream's method comes from its own first octets.
            return (true, method_of(body));
        }
    }
    let [bz, lz, de] = counts;
    let m = if bz < lz {
        if lz < de {
            Method::Deflate
        } else {
            Method::Lzma
        }
    } else if bz < de {
        Method::Deflate
    } else {
        Method::Bzip2
    };
    (false, m)
}

/// Non-solid data: blocks of their own, each stored or compressed.
fn blocks(body: &[u8], method: Method, max: usize, left: &mut u64, out: &mut Vec<Member>) {
    let mut pos = 0;
    let mut number = 0usize;
    while out.len() < max && *left > 0 {
        // The last four octets are the installer's CRC.
        let Some(size) = le32(body, pos).filter(|_| body.len() - pos > 4) else {
            break;
        };
        pos += 4;
        let name = name_of(number);
        number += 1;
        let len = (size & !COMPRESSED) as usize;
        if len == 0 {
            continue;
        }
        let Some(block) = body.get(pos..pos + len) else {
            break;
        };
        pos += len;
        let (data, capped) = if size & COMPRESSED == 0 {
            crate::unpacked::take_within(block, *left)
        } else {
            match decompress(method, block, *left) {
                Some(d) => d,
                None => continue,
            }
        };
        *left = left.saturating_sub(data.len() as u64);
        out.push(Member {
            name,
            data,
            capped,
            encrypted: false,
        });
    }
}

/// A solid stream's items: a 32-bit size, then that many octets, one after another.
fn items(stream: &[u8], capped: bool, max: usize, out: &mut Vec<Member>) {
    let mut pos = 0;
    let mut number = 0usize;
    while out.len() < max {
        let Some(size) = le32(stream, pos) else { break };
        pos += 4;
        let name = name_of(number);
        number += 1;
        if size == 0 {
            continue;
        }
        let end = pos.saturating_add(size as usize);
        let cut = end > stream.len();
        let data = stream[pos..end.min(stream.len())].to_vec();
        if data.is_empty() {
            break;
        }
        out.push(Member {
            name,
            data,
            capped: cut && capped,
            encrypted: false,
        });
        pos = end;
    }
}

/// ClamAV's names: the script header, then the files by number.
fn name_of(number: usize) -> String {
    if number == 0 {
        "headers".into()
    } else {
        format!("content.{number:03}")
    }
}

/// Octets after an LZMA stream's end marker tried away (a CRC and a little slack).
const LZMA_TRAILER: usize = 8;

/// An LZMA stream as NSIS writes it: properties (1 octet) and dictionary size (4), no size;
/// framed as a `.lzma` stream of unknown size, which ends at its end marker or its input.
/// `Err(true)` when octets follow the end marker.
fn lzma(stream: &[u8], cap: usize) -> Result<(Vec<u8>, bool), bool> {
    let head = stream.get(..5).ok_or(false)?;
    let mut framed = Vec::with_capacity(stream.len() + 8);
    framed.extend_from_slice(head);
    framed.extend_from_slice(&[0xff; 8]);
    framed.extend_from_slice(&stream[5..]);
    let opts = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::ReadFromHeader,
        memlimit: Some(LZMA_MEMLIMIT),
        allow_incomplete: true,
    };
    let mut w = CappedWriter::new(cap);
    match lzma_rs::lzma_decompress_with_options(&mut std::io::Cursor::new(framed), &mut w, &opts) {
        Ok(()) => Ok((w.out, w.hit)),
        Err(_) if w.hit => Ok((w.out, true)),
        Err(lzma_rs::error::Error::LzmaError(e)) if e.contains("more bytes") => Err(true),
        Err(_) => Ok((w.out, false)),
    }
}

/// One compressed stream, at most `budget` octets of it (and whether it had more); what a
/// damaged stream gave before the damage is kept, as ClamAV keeps it.
fn decompress(method: Method, stream: &[u8], budget: u64) -> Option<(Vec<u8>, bool)> {
    let cap = usize::try_from(budget).unwrap_or(usize::MAX);
    match method {
        Method::Lzma => {
            // What follows the stream (the installer's CRC) makes lzma-rs refuse it whole:
            // the input is cut by up to `LZMA_TRAILER` octets until it ends at the marker.
            for trim in 0..=LZMA_TRAILER.min(stream.len().saturating_sub(5)) {
                match lzma(&stream[..stream.len() - trim], cap) {
                    Err(true) => continue,
                    Err(false) => return None,
                    Ok(r) => return (!r.0.is_empty()).then_some(r),
                }
            }
            None
        }
        Method::Deflate => {
            let (out, hit) =
                crate::unpacked::read_within(flate2::read::DeflateDecoder::new(stream), budget);
            (!out.is_empty()).then_some((out, hit))
        }
        Method::Bzip2 => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5::{Digest, Md5};
    use std::io::Write;

    fn md5_hex(d: &[u8]) -> String {
        Md5::digest(d).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/nsis/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// clamav-testfiles' clam.exe (scripts/deps.sh installs the package).
    const CLAM_EXE_MD5: &str = "aa15bcf478d165efd2065190eb473bcb";

    #[test]
    fn installers_give_the_files_clamav_extracts() {
        // (fixture, MD5 of "headers" as clamscan --leave-temps wrote it)
        for (name, headers) in [
            ("lzma.nsis", "4070ea657d8ed0fa92940feab1c7704e"),
            ("lzma-solid.nsis", "d37f9c07dd064e48e77f2c90cd7c0a36"),
            ("zlib.nsis", "0d6ec206cc31e08e57cd2222984c09c2"),
            // ClamAV 1.4 extracts nothing from this one; its files are those of the others.
            ("zlib-solid.nsis", ""),
        ] {
            let m = members(&fixture(name), 10, 1 << 20).unwrap_or_else(|| panic!("{name}"));
            let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
            assert_eq!(names, ["headers", "content.001", "content.002"], "{name}");
            if !headers.is_empty() {
                assert_eq!(md5_hex(&m[0].data), headers, "{name}");
            }
            assert_eq!(m[0].data.len(), 3938, "{name}");
            assert_eq!(md5_hex(&m[1].data), CLAM_EXE_MD5, "{name}");
            assert_eq!(m[2].data, fixture("readme.txt"), "{name}");
        }
        // NSIS's bzip2 (no stream header, no block magic) is not read yet.
        assert!(members(&fixture("bzip2.nsis"), 10, 1 << 20).is_none());
    }

    #[test]
    fn clamav_testfiles_installer() {
        let path = "/usr/share/clamav-testfiles/clam-nsis.exe";
        let d = std::fs::read(path).unwrap_or_else(|e| panic!("{path} (scripts/deps.sh): {e}"));
        let at = memchr::memmem::find(&d, SIGNATURE).expect("first header") - 4;
        let m = members(&d[at..], 10, 1 << 20).expect("installer");
        assert_eq!(m.len(), 2);
        assert_eq!(
            (m[0].name.as_str(), md5_hex(&m[0].data).as_str()),
            ("headers", "fbbef13e31677aecd3dfef7da9a3c43a")
        );
        assert_eq!(
            (m[1].name.as_str(), md5_hex(&m[1].data).as_str()),
            ("content.001", CLAM_EXE_MD5)
        );
    }

    /// A first header for `body` (flags 0, header size 0 as it is not used here).
    fn installer(body: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 4];
        d.extend_from_slice(SIGNATURE);
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&((FIRST_HEADER + body.len()) as u32).to_le_bytes());
        d.extend_from_slice(body);
        d
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(data).expect("in memory");
        e.finish().expect("in memory")
    }

    fn block(data: &[u8], compressed: bool) -> Vec<u8> {
        let mut b = (data.len() as u32 | if compressed { COMPRESSED } else { 0 })
            .to_le_bytes()
            .to_vec();
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn non_solid_blocks_stored_and_deflated() {
        let mut body = block(&deflate(b"script header script header"), true);
        body.extend(block(b"a stored file", false));
        body.extend(block(&[], false));
        body.extend(block(&deflate(&[b'x'; 5000]), true));
        body.extend_from_slice(&[1, 2, 3, 4]); // the CRC
        let m = members(&installer(&body), 10, 1 << 20).expect("nsis");
        let got: Vec<(&str, usize)> = m.iter().map(|m| (m.name.as_str(), m.data.len())).collect();
        assert_eq!(
            got,
            [("headers", 27), ("content.001", 13), ("content.003", 5000)]
        );
        assert_eq!(m[1].data, b"a stored file");
        // The budget cuts the last file and says so.
        let m = members(&installer(&body), 10, 27 + 13 + 100).expect("nsis");
        assert_eq!((m[2].data.len(), m[2].capped), (100, true));
        // And the member count.
        assert_eq!(
            members(&installer(&body), 2, 1 << 20).map(|m| m.len()),
            Some(2)
        );
    }

    #[test]
    fn solid_deflate_stream_of_items() {
        let mut items = Vec::new();
        for part in [&b"the header"[..], b"", b"file one", b"file two, longer"] {
            items.extend_from_slice(&(part.len() as u32).to_le_bytes());
            items.extend_from_slice(part);
        }
        let mut body = deflate(&items);
        body.extend_from_slice(&[9, 9, 9, 9]);
        let m = members(&installer(&body), 10, 1 << 20).expect("nsis");
        let got: Vec<(&str, &[u8])> = m.iter().map(|m| (m.name.as_str(), &m.data[..])).collect();
        assert_eq!(
            got,
            [
                ("headers", &b"the header"[..]),
                ("content.002", b"file one"),
                ("content.003", b"file two, longer")
            ]
        );
    }

    #[test]
    fn damage_and_other_data_are_refused_or_cut() {
        assert!(members(b"MZ not an installer", 10, 100).is_none());
        let mut d = installer(&block(&deflate(b"abc"), true));
        assert!(members(&d[..10], 10, 100).is_none());
        // Declared longer than it is: read to the end of the data.
        d[0x18] = 0xff;
        assert!(members(&d, 10, 100).is_some());
        // bzip2 is not read yet.
        assert!(members(&installer(&block(b"1\x00\x05\x9b junk", true)), 10, 100).is_none());
        // Blocks whose sizes run past the end: nothing decodes, no panic.
        let junk = installer(&[0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
        assert!(members(&junk, 10, 100).is_none_or(|m| m.is_empty()));
    }
}
