//! Per-domain legal notice (disclaimer) appended to submitted mail without breaking its MIME
//! structure (RFC 2045/2046): a `multipart/mixed` message gets one more `text/plain` part; any
//! other message becomes the first part of a new `multipart/mixed` whose second part is the
//! notice. Signed or alternative bodies are kept whole inside the wrapper.

use crate::headers::Headers;
use crate::util::header_section;

/// Headers that describe the body and move into the wrapped first part.
const CONTENT_HEADERS: [&str; 5] = [
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "content-description",
];

fn notice_part(notice: &str) -> String {
    let text = notice.replace("\r\n", "\n").replace('\n', "\r\n");
    let cte = if text.is_ascii() { "7bit" } else { "8bit" };
    format!(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\nContent-Disposition: inline\r\n\r\n{}\r\n",
        text.trim_end()
    )
}

/// Returns `message` with `notice` attached.
pub fn append(message: &[u8], notice: &str, unique: &str) -> Vec<u8> {
    let headers = header_section(message);
    let body = &message[headers.len()..];
    let parsed = Headers::parse(message);
    let (ctype, boundary) = parsed.content_type();
    if ctype == "multipart/mixed"
        && let Some(b) = boundary
    {
        let close = format!("\r\n--{b}--");
        if let Some(pos) = find_last(message, close.as_bytes()) {
            let mut out = Vec::with_capacity(message.len() + notice.len() + 200);
            out.extend_from_slice(&message[..pos]);
            out.extend_from_slice(format!("\r\n--{b}\r\n{}", notice_part(notice)).as_bytes());
            out.extend_from_slice(&message[pos..]);
            return out;
        }
    }
    // Wrap: split the top-level header into body-describing fields and the rest.
    let text = String::from_utf8_lossy(headers);
    let (mut outer, mut inner) = (String::new(), String::new());
    let mut to_inner = false;
    for line in text.split_inclusive("\r\n") {
        if !line.starts_with([' ', '\t']) {
            let name = line
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            to_inner = CONTENT_HEADERS.contains(&name.as_str());
        }
        if to_inner {
            inner.push_str(line)
        } else {
            outer.push_str(line)
        }
    }
    if !parsed.has(mail_parser::HeaderName::MimeVersion) {
        outer.push_str("MIME-Version: 1.0\r\n");
    }
    let b = format!("=_postcore_notice_{unique}");
    let mut out = Vec::with_capacity(message.len() + notice.len() + 300);
    out.extend_from_slice(outer.as_bytes());
    out.extend_from_slice(format!("Content-Type: multipart/mixed; boundary=\"{b}\"\r\n\r\nThis is a multi-part message in MIME format.\r\n\r\n--{b}\r\n").as_bytes());
    out.extend_from_slice(inner.as_bytes());
    if inner.is_empty() {
        out.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii\r\n");
    }
    out.extend_from_slice(b"\r\n");
    // `body` starts after the header section; skip the empty separator line.
    out.extend_from_slice(body.strip_prefix(b"\r\n").unwrap_or(body));
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{b}\r\n{}--{b}--\r\n", notice_part(notice)).as_bytes());
    out
}

fn find_last(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).rposition(|w| w == n)
}

#[cfg(test)]
mod tests {
    use super::append;

    #[test]
    fn plain_message_is_wrapped() {
        let m = b"From: a@x.test\r\nSubject: s\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nhello\r\n";
        let out = String::from_utf8(append(m, "**Confidential.**", "Q1")).unwrap();
        assert!(out.starts_with("From: a@x.test\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"=_postcore_notice_Q1\"\r\n"), "{out}");
        assert!(out.contains("--=_postcore_notice_Q1\r\nContent-Type: text/plain;\r\n charset=utf-8\r\n\r\nhello\r\n--=_postcore_notice_Q1\r\nContent-Type: text/plain; charset=utf-8"), "{out}");
        assert!(
            out.ends_with("**Confidential.**\r\n--=_postcore_notice_Q1--\r\n"),
            "{out}"
        );
    }

    #[test]
    fn mixed_gets_one_more_part() {
        let m = b"Subject: s\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nbody\r\n--XX--\r\n";
        let out = String::from_utf8(append(m, "Notice", "Q")).unwrap();
        assert!(out.contains("body\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\nContent-Disposition: inline\r\n\r\nNotice\r\n\r\n--XX--\r\n"), "{out}");
        assert_eq!(out.matches("--XX--").count(), 1);
    }
}
