//! Searchable text of a message (RFC 9051 §6.4.4 BODY/TEXT): content transfer decoding
//! (RFC 2045 §6), RFC 2047 encoded words, HTML reduced to text, and the word tokens the
//! full-text index stores.

use super::mime;

/// Removes a content transfer encoding (RFC 2045 §6); `None` for unknown encodings.
pub fn decode_transfer(body: &[u8], enc: &str) -> Option<Vec<u8>> {
    match enc {
        "7bit" | "8bit" | "binary" | "" => Some(body.to_vec()),
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
                .collect();
            use base64::Engine;
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&clean)
                .ok()
                .or_else(|| Some(Vec::new()))
        }
        "quoted-printable" => Some(decode_qp(body, false)),
        _ => None,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable (RFC 2045 §6.7); `q` is the RFC 2047 Q variant (`_` = space).
pub fn decode_qp(s: &[u8], q: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'=' => {
                if let (Some(a), Some(b)) = (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(a * 16 + b);
                    i += 3;
                } else if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') {
                    i += 3;
                } else if s.get(i + 1) == Some(&b'\n') {
                    i += 2;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b'_' if q => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

pub fn to_text(bytes: &[u8], charset: &str) -> String {
    match charset {
        "iso-8859-1" | "latin1" | "windows-1252" | "us-ascii" if !bytes.is_ascii() => {
            bytes.iter().map(|b| *b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes RFC 2047 encoded words in a header value.
pub fn decode_words(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    if !s.contains("=?") {
        return s.into_owned();
    }
    let mut out = String::new();
    let mut rest: &str = &s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let parsed = (|| {
            let inner = &rest[start + 2..];
            let (charset, r) = inner.split_once('?')?;
            let (enc, r) = r.split_once('?')?;
            let end = r.find("?=")?;
            let text = &r[..end];
            let bytes = match enc.to_ascii_uppercase().as_str() {
                "B" => decode_transfer(text.as_bytes(), "base64")?,
                "Q" => decode_qp(text.as_bytes(), true),
                _ => return None,
            };
            let consumed = start + 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
            let cs = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
            Some((to_text(&bytes, &cs), consumed))
        })();
        match parsed {
            Some((text, consumed)) => {
                // RFC 2047 §6.2: whitespace between adjacent encoded words is dropped.
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[consumed..];
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text of an HTML part without tags, scripts and styles; common entities decoded.
pub fn html_to_text(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    let lower = h.to_ascii_lowercase();
    let mut i = 0;
    let b = h.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            for skip in ["<script", "<style"] {
                if lower[i..].starts_with(skip) {
                    let close = format!("</{}", &skip[1..]);
                    i = lower[i..].find(&close).map(|p| i + p).unwrap_or(b.len());
                }
            }
            match h[i..].find('>') {
                Some(p) => i += p + 1,
                None => break,
            }
            out.push(' ');
        } else {
            let next = h[i..].find('<').map(|p| i + p).unwrap_or(b.len());
            out.push_str(&h[i..next]);
            i = next;
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The searchable text of a message body: every text part, decoded.
pub fn body_text(data: &[u8]) -> String {
    let top = mime::parse(data);
    let mut out = String::new();
    collect_text(&top, &mut out);
    out
}

fn collect_text(p: &mime::Part, out: &mut String) {
    if !p.children.is_empty() {
        for c in &p.children {
            collect_text(c, out);
        }
        return;
    }
    if let Some(m) = &p.message {
        out.push_str(&decode_words(p.header));
        collect_text(m, out);
        return;
    }
    if p.ctype.0 != "text" {
        return;
    }
    let enc = mime::field(p.header, "Content-Transfer-Encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let Some(bytes) = decode_transfer(p.body, &enc) else {
        return;
    };
    let cs = p
        .params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let text = to_text(&bytes, &cs);
    if p.ctype.1 == "html" {
        out.push_str(&html_to_text(&text));
    } else {
        out.push_str(&text);
    }
    out.push('\n');
}

/// Lower-case word tokens of `text` (letters and digits), 2 to 40 characters, each once.
pub fn tokens(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for w in text.split(|c: char| !c.is_alphanumeric()) {
        let n = w.chars().count();
        if !(2..=40).contains(&n) {
            continue;
        }
        let w = w.to_lowercase();
        if seen.insert(w.clone()) {
            out.push(w);
            if out.len() >= 50_000 {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_and_subjects() {
        assert_eq!(
            decode_words(b"=?UTF-8?B?w6R4?= =?ISO-8859-1?Q?caf=E9_au?= lait"),
            "äxcafé au lait"
        );
    }

    #[test]
    fn body_text_decodes_parts() {
        let m = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naMOkbGxv\r\n--b\r\n\
Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>zan=\r\nzibar &amp; co</p><script>x</script>\r\n--b--\r\n";
        let t = body_text(m);
        assert!(t.contains("hällo"), "{t}");
        assert!(t.contains("zanzibar & co"), "{t}");
        assert!(!t.contains("script"), "{t}");
    }

    #[test]
    fn word_tokens() {
        assert_eq!(tokens("Crème brûlée, a crème!"), vec!["crème", "brûlée"]);
    }
}
