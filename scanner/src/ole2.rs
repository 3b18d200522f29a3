//! OLE2 compound files (legacy Office documents, MSI installers), as ClamAV opens them
//! (`libclamav/ole2_extract.c`): every stream is scanned; an embedded object's
//! `\x01Ole10Native` stream also yields the file it wraps; a PowerPoint document's embedded
//! objects (`ExOleObjStg` records, usually zlib-compressed) are storages of their own.

use std::io::Read;

/// ClamAV's container type name.
pub const CONTAINER: &str = "CL_TYPE_MSOLE2";

/// The streams of the compound file `data` (path, bytes), in directory order; stops at
/// `max_streams` streams or when `max_bytes` have been read (a stream cut there is left
/// out). `None` when `data` is not a compound file.
pub fn streams(data: &[u8], max_bytes: u64, max_streams: usize) -> Option<Vec<(String, Vec<u8>)>> {
    let mut cf = cfb::CompoundFile::open(std::io::Cursor::new(data)).ok()?;
    let paths: Vec<(std::path::PathBuf, u64)> = cf
        .walk()
        .filter(|e| e.is_stream())
        .take(max_streams)
        .map(|e| (e.path().to_path_buf(), e.len()))
        .collect();
    let mut left = max_bytes;
    let mut out = Vec::new();
    for (path, len) in paths {
        if len > left {
            break;
        }
        let Ok(s) = cf.open_stream(&path) else {
            continue;
        };
        let mut buf = Vec::new();
        if s.take(len).read_to_end(&mut buf).is_err() {
            continue;
        }
        left -= buf.len() as u64;
        out.push((path.to_string_lossy().into_owned(), buf));
    }
    Some(out)
}

/// The file an `\x01Ole10Native` stream wraps: after its size, flags, label, file name, an
/// unknown word and the temporary path, a length and the bytes.
pub fn ole10native(s: &[u8]) -> Option<&[u8]> {
    let u32_at = |p: usize| -> Option<usize> {
        let b = s.get(p..p + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    let after_nul = |p: usize| -> Option<usize> { Some(p + memchr::memchr(0, s.get(p..)?)? + 1) };
    let p = 4 + 2;
    let p = after_nul(p)?; // label
    let p = after_nul(p)?; // file name
    let p = p + 4;
    let tmp = u32_at(p)?;
    let p = p.checked_add(4)?.checked_add(tmp)?;
    let len = u32_at(p)?;
    s.get(p + 4..(p + 4).checked_add(len)?)
}

/// The embedded objects of a PowerPoint document stream: each `ExOleObjStg` record's storage
/// (inflated when it is compressed: a 4-byte size, then zlib), at most `cap` bytes each.
pub fn ppt_objects(stream: &[u8], cap: u64) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut p = 0usize;
    while let Some(h) = stream.get(p..p + 8) {
        let ver_instance = u16::from_le_bytes([h[0], h[1]]);
        let kind = u16::from_le_bytes([h[2], h[3]]);
        let len = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
        let body_at = p + 8;
        if ver_instance & 0x000f == 0x000f {
            // A container record: its children follow its header.
            p = body_at;
            continue;
        }
        let Some(body) = stream.get(body_at..body_at.saturating_add(len)) else {
            break;
        };
        // ExOleObjStg (MS-PPT 2.10.34); instance 1: compressed.
        if kind == 0x1011 {
            let blob = if ver_instance >> 4 == 1 {
                inflate(body.get(4..).unwrap_or_default(), cap)
            } else {
                Some(body.to_vec())
            };
            out.extend(blob);
        }
        p = body_at + len;
    }
    out
}

fn inflate(z: &[u8], cap: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(z)
        .take(cap)
        .read_to_end(&mut out)
        .ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TESTFILES: &str = "/usr/share/clamav-testfiles";

    fn sample(name: &str) -> Option<Vec<u8>> {
        std::fs::read(std::path::Path::new(TESTFILES).join(name)).ok()
    }

    #[test]
    fn a_word_document_yields_its_embedded_program() {
        let Some(doc) = sample("clam.ole.doc") else {
            return;
        };
        let s = streams(&doc, 1 << 20, 100).expect("compound file");
        assert!(s.iter().any(|(n, _)| n.ends_with("WordDocument")));
        let (_, native) = s
            .iter()
            .find(|(n, _)| n.ends_with("Ole10Native"))
            .expect("an embedded object");
        let exe = ole10native(native).expect("wrapped file");
        assert!(exe.starts_with(b"MZ") && exe.len() == 544);
    }

    #[test]
    fn a_powerpoint_document_yields_its_embedded_storage() {
        let Some(ppt) = sample("clam.ppt") else {
            return;
        };
        let s = streams(&ppt, 1 << 20, 100).expect("compound file");
        let (_, doc) = s
            .iter()
            .find(|(n, _)| n.ends_with("PowerPoint Document"))
            .expect("the document stream");
        let objects = ppt_objects(doc, 1 << 20);
        let inner = objects
            .iter()
            .filter_map(|o| streams(o, 1 << 20, 100))
            .flatten()
            .find(|(n, _)| n.ends_with("Ole10Native"))
            .expect("an embedded object in an embedded storage");
        let exe = ole10native(&inner.1).expect("wrapped file");
        assert!(exe.starts_with(b"MZ"), "{:?}", &exe[..8.min(exe.len())]);
    }

    #[test]
    fn budgets_and_garbage() {
        assert!(streams(b"not a compound file", 100, 10).is_none());
        if let Some(doc) = sample("clam.ole.doc") {
            let few = streams(&doc, 1 << 20, 2).expect("compound file");
            assert_eq!(few.len(), 2);
            let small = streams(&doc, 100, 100).expect("compound file");
            assert!(small.iter().map(|(_, b)| b.len()).sum::<usize>() <= 100);
            for cut in (0..doc.len()).step_by(97) {
                let _ = streams(&doc[..cut], 1 << 20, 100);
            }
        }
        assert_eq!(ole10native(b"\x10\0\0\0\x02\0label"), None);
        assert!(ppt_objects(&[0x0f, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], 10).is_empty());
    }
}
