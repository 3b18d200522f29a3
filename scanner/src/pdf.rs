//! The streams of a PDF file (ISO 32000-1 §7.3.8), as ClamAV scans them: each stream's bytes
//! found by its `stream` keyword and the dictionary before it, cut to its `/Length` when that
//! is a direct number and `endstream` follows it, otherwise up to `endstream`; whether it is
//! `/FlateDecode`d (then the caller inflates it). Objects are not resolved and the
//! cross-reference table is not read: a damaged or incrementally updated file still yields
//! every stream in it. Sans-IO: streams are borrowed from the file's bytes.

use memchr::memmem;

/// ClamAV's container type name.
pub const CONTAINER: &str = "CL_TYPE_PDF";

/// One stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream<'a> {
    /// Its bytes as stored.
    pub raw: &'a [u8],
    /// Its only filter is `/FlateDecode` (zlib).
    pub flate: bool,
}

/// The streams of `data`, at most `max`.
pub fn streams(data: &[u8], max: usize) -> Vec<Stream<'_>> {
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < max {
        let Some(k) = memmem::find(&data[from..], b"stream").map(|i| from + i) else {
            break;
        };
        from = k + 6;
        // `endstream` contains `stream`; a stream keyword follows a dictionary's `>>`.
        let before = data[..k].trim_ascii_end();
        if !before.ends_with(b">>") {
            continue;
        }
        let start = match data.get(from..from + 2) {
            Some([b'\r', b'\n']) => from + 2,
            Some([b'\n', _]) | Some([b'\r', _]) => from + 1,
            _ => continue,
        };
        let Some(dict) = dictionary(before) else {
            continue;
        };
        let Some(end) = memmem::find(&data[start..], b"endstream").map(|i| start + i) else {
            break;
        };
        let raw = match length(dict) {
            Some(n)
                if start.checked_add(n).is_some_and(|e| {
                    e <= end && data[e..end].iter().all(u8::is_ascii_whitespace)
                }) =>
            {
                &data[start..start + n]
            }
            _ => trim_eol(&data[start..end]),
        };
        out.push(Stream {
            raw,
            flate: flate_only(dict),
        });
        from = end + 9;
    }
    out
}

/// The dictionary that ends `before` (which ends with `>>`): from its matching `<<`.
fn dictionary(before: &[u8]) -> Option<&[u8]> {
    let mut depth = 0usize;
    let mut i = before.len();
    while i >= 2 {
        match &before[i - 2..i] {
            b">>" => {
                depth += 1;
                i -= 2;
            }
            b"<<" => {
                depth -= 1;
                i -= 2;
                if depth == 0 {
                    return Some(&before[i..]);
                }
            }
            _ => i -= 1,
        }
    }
    None
}

/// The end-of-line marker before `endstream` is not part of the data (§7.3.8.1).
fn trim_eol(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\r\n")
        .or_else(|| b.strip_suffix(b"\n"))
        .or_else(|| b.strip_suffix(b"\r"))
        .unwrap_or(b)
}

/// `/Length n` when it is a direct number (an indirect `n 0 R` is not resolved).
fn length(dict: &[u8]) -> Option<usize> {
    let at = memmem::find(dict, b"/Length")? + 7;
    let rest = dict[at..].trim_ascii_start();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let after = rest[digits..].trim_ascii_start();
    // `12 0 R` is a reference, not a length.
    if after.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// Whether the stream's filters are exactly `/FlateDecode` (alone or in a one-element array).
fn flate_only(dict: &[u8]) -> bool {
    let Some(at) = memmem::find(dict, b"/Filter") else {
        return false;
    };
    let rest = dict[at + 7..].trim_ascii_start();
    match rest.strip_prefix(b"[") {
        // An array: its one element.
        Some(arr) => arr
            .trim_ascii_start()
            .strip_prefix(b"/FlateDecode")
            .is_some_and(|r| r.trim_ascii_start().starts_with(b"]")),
        None => rest.strip_prefix(b"/FlateDecode").is_some_and(|r| {
            // The name ends there (not `/FlateDecodeX`).
            r.first().is_none_or(|b| !b.is_ascii_alphanumeric())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_by_length_or_endstream_and_their_filter() {
        let pdf = b"%PDF-1.4\n1 0 obj\n<< /Length 5 >>\nstream\r\nhello\r\nendstream\nendobj\n\
            2 0 obj\n<< /Filter /FlateDecode /Length 9 0 R /DecodeParms << /K 1 >> >>\nstream\nxyz\nendstream\n\
            3 0 obj\n<< /Filter [/FlateDecode /ASCII85Decode] >>\nstream\nabc\nendstream\n";
        let s = streams(pdf, 10);
        assert_eq!(s.len(), 3);
        assert_eq!(
            s[0],
            Stream {
                raw: b"hello",
                flate: false
            }
        );
        assert_eq!(
            s[1],
            Stream {
                raw: b"xyz",
                flate: true
            }
        );
        assert_eq!(
            s[2],
            Stream {
                raw: b"abc",
                flate: false
            }
        );
        assert_eq!(streams(pdf, 1).len(), 1);
        // A lying /Length is not trusted.
        let lie = b"<< /Length 999 >>\nstream\nshort\nendstream";
        assert_eq!(streams(lie, 10)[0].raw, b"short");
        for cut in 0..pdf.len() {
            let _ = streams(&pdf[..cut], 10);
        }
    }

    #[test]
    fn the_clamav_sample_yields_its_embedded_program() {
        let pdf = std::fs::read("/usr/share/clamav-testfiles/clam.pdf")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
        assert!(streams(&pdf, 100).iter().any(|s| s.raw == exe.as_slice()));
    }
}
