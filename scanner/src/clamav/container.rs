//! ClamAV signature containers (`.cvd`, `.cld`, `.cud`; ClamAV manual, "CVD file"): a
//! 512-byte header `ClamAV-VDB:time:version:sigs:flevel:md5:dsig:builder:stime`, padded with
//! spaces, then a tar archive (gzip-compressed in a `.cvd`). The header's fields are checked
//! and the MD5 of a compressed archive must match; the RSA digital signature is not verified.

use md5::{Digest, Md5};
use std::io::Read;

/// An unpacked container.
#[derive(Debug)]
pub struct Container {
    /// Database version (third header field).
    pub version: u64,
    /// Signatures it says it holds.
    pub signatures: u64,
    /// Minimum functionality level it needs.
    pub flevel: u32,
    /// Member files (`main.ndb`, `daily.hdb`, …) and their bytes.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Largest archive member read (a signature file; containers of the real databases hold
/// members of a few hundred MB at most).
const MAX_MEMBER: u64 = 1 << 30;

/// Unpacks a container after checking its header.
pub fn unpack(bytes: &[u8]) -> Result<Container, String> {
    if bytes.len() < 512 {
        return Err("shorter than the 512-byte header".into());
    }
    let header = std::str::from_utf8(&bytes[..512]).map_err(|_| "header is not text")?;
    let fields: Vec<&str> = header.trim_end_matches([' ', '\0']).split(':').collect();
    if fields.first() != Some(&"ClamAV-VDB") || fields.len() < 6 {
        return Err("not a ClamAV-VDB header".into());
    }
    let num = |i: usize, what: &str| {
        fields
            .get(i)
            .and_then(|f| f.trim().parse::<u64>().ok())
            .ok_or_else(|| format!("header {what} is not a number"))
    };
    let version = num(2, "version")?;
    let signatures = num(3, "signature count")?;
    let flevel = num(4, "functionality level")? as u32;
    let body = &bytes[512..];
    let gz = body.starts_with(&[0x1f, 0x8b]);
    if gz {
        let want = fields[5].to_ascii_lowercase();
        let got: String = Md5::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if want != got {
            return Err(format!("MD5 {got} does not match the header's {want}"));
        }
    }
    let reader: Box<dyn Read> = if gz {
        Box::new(flate2::read::GzDecoder::new(body))
    } else {
        Box::new(body)
    };
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(|e| format!("archive: {e}"))? {
        let mut entry = entry.map_err(|e| format!("archive: {e}"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry
            .path()
            .map_err(|e| format!("archive member name: {e}"))?
            .to_string_lossy()
            .into_owned();
        if entry.size() > MAX_MEMBER {
            return Err(format!("member {name} is over {MAX_MEMBER} bytes"));
        }
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("member {name}: {e}"))?;
        files.push((name, data));
    }
    Ok(Container {
        version,
        signatures,
        flevel,
        files,
    })
}

/// Builds a `.cvd` from member files (for tests and tools): gzip'd tar behind a header.
pub fn build(version: u64, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        let _ = tar.append_data(&mut h, name, *data);
    }
    let tar = tar.into_inner().unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = std::io::Write::write_all(&mut gz, &tar);
    let body = gz.finish().unwrap_or_default();
    let md5: String = Md5::digest(&body)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sigs = files
        .iter()
        .map(|(_, d)| d.split(|&b| b == b'\n').filter(|l| !l.is_empty()).count())
        .sum::<usize>();
    let mut header = format!(
        "ClamAV-VDB:02 Dec 2026 00-00 +0000:{version}:{sigs}:90:{md5}:postcore-test:postcore:0"
    )
    .into_bytes();
    header.resize(512, b' ');
    header.extend_from_slice(&body);
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checks() {
        let cvd = build(7, &[("test.ndb", b"T:0:*:41424344\n")]);
        let c = unpack(&cvd).expect("valid");
        assert_eq!((c.version, c.signatures), (7, 1));
        assert_eq!(c.files[0].0, "test.ndb");
        let mut bad = cvd.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(unpack(&bad).expect_err("corrupt").contains("MD5"));
        assert!(unpack(b"ClamAV-VDB:x").is_err());
    }
}
