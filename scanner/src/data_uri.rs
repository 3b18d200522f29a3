//! `data:` URIs (RFC 2397) in HTML: `data:[<mediatype>][;base64],<data>`. A program can ride
//! in one (`<a href="data:application/octet-stream;base64,TVqQ…">`); ClamAV's HTML
//! normaliser decodes the base64 ones and scans what they carry, and so does the content walk.

/// The container type ClamAV reports for what an HTML file carries.
pub const CONTAINER: &str = "CL_TYPE_HTML";

/// The longest media type and parameters read before the comma.
const MAX_MEDIATYPE: usize = 256;

/// The decoded contents of the base64 `data:` URIs in `html`, at most `max` of them and at
/// most `budget` octets in all (3/4 of the encoded length, counted before decoding).
/// `data:` URIs without `;base64` carry percent-encoded text and are left alone.
pub fn base64_payloads(html: &[u8], max: usize, budget: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut spent = 0usize;
    let mut from = 0;
    while out.len() < max {
        let Some(at) = find_caseless(html, from) else {
            break;
        };
        from = at + 5;
        let rest = &html[from..];
        let Some(comma) = rest
            .iter()
            .take(MAX_MEDIATYPE)
            .position(|&b| b == b',' || b == b'"' || b == b'\'' || b == b'>' || b <= b' ')
            .filter(|&p| rest[p] == b',')
        else {
            continue;
        };
        if !rest[..comma].to_ascii_lowercase().ends_with(b";base64") {
            continue;
        }
        let data = &rest[comma + 1..];
        let len = data
            .iter()
            .position(|&b| {
                !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'\r' | b'\n'))
            })
            .unwrap_or(data.len());
        from += comma + 1 + len;
        // Base64 decodes to at most 3 octets for every 4 characters.
        if spent + (len * 3).div_ceil(4) > budget {
            break;
        }
        if let Some(d) = mail_parser::decoders::base64::base64_decode(&data[..len])
            && !d.is_empty()
        {
            spent += d.len();
            out.push(d);
        }
    }
    out
}

/// The next `data:` from `from` on, in any case.
fn find_caseless(html: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(p) = memchr::memchr2(b'd', b'D', html.get(i..)?) {
        let at = i + p;
        if html
            .get(at..at + 5)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"data:"))
        {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_uris_decoded_others_left() {
        let html = b"<a href=\"data:application/octet-stream;base64,TVpQAAIA\">x</a>\
            <img src='DATA:image/png;BASE64,aGVs\r\nbG8='>\
            <a href=\"data:text/plain,plain%20text\">y</a> data: not a uri";
        let p = base64_payloads(html, 10, 1 << 20);
        assert_eq!(p, vec![b"MZP\0\x02\0".to_vec(), b"hello".to_vec()]);
        assert_eq!(
            base64_payloads(html, 1, 1 << 20).len(),
            1,
            "capped in number"
        );
        assert!(base64_payloads(html, 10, 2).is_empty(), "capped in octets");
    }

    #[test]
    fn clamav_test_file() {
        let html = std::fs::read("/usr/share/clamav-testfiles/clam.exe.html")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let p = base64_payloads(&html, 10, 1 << 20);
        assert!(p.iter().any(|d| d.starts_with(b"MZ")));
    }
}
