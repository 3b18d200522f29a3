//! Zip records inside other files — self-extracting archives, a zip appended to a program or
//! an image, one hidden in an unpacked program — found the way ClamAV's "ZIP-SFX" typing
//! finds them: every local file header (`PK\3\4`, APPNOTE.TXT §4.3.7) past the first octet
//! whose record is whole (name, extra field and data inside the file, no data descriptor,
//! neither size zero) is one archive of one member; records are taken in order, never
//! overlapping.

use crate::le::{le16, le32};
use std::io::Read;
use std::ops::Range;

/// Local file header signature (APPNOTE.TXT §4.3.7).
const LOCAL_HEADER: &[u8] = b"PK\x03\x04";
/// Fixed part of a local file header.
const HEADER_LEN: usize = 30;
/// General purpose flag bit 3: sizes follow the data (unknown from the header alone).
const FLAG_DATA_DESCRIPTOR: u16 = 1 << 3;
/// Flag bit 13: the local header's values are masked (central directory encryption).
const FLAG_MASKED: u16 = 1 << 13;
/// Flag bit 0: encrypted.
const FLAG_ENCRYPTED: u16 = 1 << 0;

/// The records, as ranges of `data`, at most `max` of them.
pub fn zips(data: &[u8], max: usize) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut next = 1;
    while out.len() < max && next < data.len() {
        let Some(found) = memchr::memmem::find(&data[next..], LOCAL_HEADER) else {
            break;
        };
        let at = next + found;
        match record_len(&data[at..]) {
            Some(len) => {
                out.push(at..at + len);
                next = at + len;
            }
            None => next = at + 1,
        }
    }
    out
}

/// One record's member.
#[derive(Debug)]
pub struct Entry<'a> {
    /// The name it was stored under.
    pub name: String,
    /// Its compressed size.
    pub packed: u64,
    /// Whether it is encrypted (then not readable).
    pub encrypted: bool,
    /// The record, to read the member from with [`read`].
    pub record: &'a [u8],
}

/// The member a record (one range [`zips`] returned) holds.
pub fn entry(record: &[u8]) -> Option<Entry<'_>> {
    let flags = le16(record, 6)?;
    let name_len = usize::from(le16(record, 26)?);
    let name = record.get(HEADER_LEN..HEADER_LEN + name_len)?;
    Some(Entry {
        name: String::from_utf8_lossy(name).into_owned(),
        packed: u64::from(le32(record, 18)?),
        encrypted: flags & FLAG_ENCRYPTED != 0,
        record,
    })
}

/// Reads the member's content through `consume`, which gets a reader of the decompressed
/// octets (zip's own decoders: stored, deflate, bzip2, lzma, implode …).
pub fn read<T>(e: &Entry<'_>, consume: impl FnOnce(&mut dyn Read) -> T) -> Option<T> {
    let mut cursor = std::io::Cursor::new(e.record);
    let mut file = zip::read::read_zipfile_from_stream(&mut cursor).ok()??;
    Some(consume(&mut file))
}

/// The length of a whole record at the start of `d`.
fn record_len(d: &[u8]) -> Option<usize> {
    if !d.starts_with(LOCAL_HEADER) || d.len() < HEADER_LEN {
        return None;
    }
    let flags = le16(d, 6)?;
    let packed = le32(d, 18)? as usize;
    let unpacked = le32(d, 22)?;
    let name_len = usize::from(le16(d, 26)?);
    let extra_len = usize::from(le16(d, 28)?);
    let mut left = d.len() - HEADER_LEN;
    if left <= name_len {
        return None;
    }
    left -= name_len;
    if flags & (FLAG_MASKED | FLAG_DATA_DESCRIPTOR) != 0 || left <= extra_len {
        return None;
    }
    left -= extra_len;
    if left < packed || packed == 0 || unpacked == 0 {
        return None;
    }
    Some(HEADER_LEN + name_len + extra_len + packed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(name: &str, data: &[u8], method: zip::CompressionMethod) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let opts = zip::write::SimpleFileOptions::default().compression_method(method);
        w.start_file(name, opts).expect("start");
        w.write_all(data).expect("write");
        w.finish().expect("finish").into_inner()
    }

    fn content(e: &Entry<'_>) -> Vec<u8> {
        read(e, |r| {
            let mut v = Vec::new();
            r.read_to_end(&mut v).map(|_| v).unwrap_or_default()
        })
        .unwrap_or_default()
    }

    #[test]
    fn finds_records_after_the_first_octet_in_order() {
        let a = zip_of(
            "a.txt",
            b"first member, deflated twice over",
            zip::CompressionMethod::Deflated,
        );
        let b = zip_of(
            "b.bin",
            b"second member, stored",
            zip::CompressionMethod::Stored,
        );
        let mut f = b"MZ stub of a self-extracting program ".to_vec();
        f.extend_from_slice(&a);
        f.extend_from_slice(b"more program");
        f.extend_from_slice(&b);
        let found = zips(&f, 10);
        let entries: Vec<_> = found.iter().filter_map(|r| entry(&f[r.clone()])).collect();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a.txt", "b.bin"]);
        assert_eq!(content(&entries[0]), b"first member, deflated twice over");
        assert_eq!(content(&entries[1]), b"second member, stored");
        assert_eq!(zips(&f, 1).len(), 1, "the bound");
    }

    #[test]
    fn a_zip_at_offset_zero_and_broken_records_are_not_records() {
        let a = zip_of("a.txt", b"content", zip::CompressionMethod::Stored);
        assert!(zips(&a, 10).is_empty(), "offset 0 is the file's own type");
        let mut f = b"xx".to_vec();
        f.extend_from_slice(&a[..a.len().min(40)]);
        assert!(zips(&f, 10).is_empty(), "data cut short");
        let mut g = b"xx".to_vec();
        g.extend_from_slice(b"PK\x03\x04");
        assert!(zips(&g, 10).is_empty(), "header cut short");
    }
}
