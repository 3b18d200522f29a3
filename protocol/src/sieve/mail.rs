//! The message as a Sieve script sees it: header fields (editable by editheader, RFC 5293),
//! their decoded values (RFC 5228 §2.7.2), addresses (§2.7.4) and the body parts the body
//! test reads (RFC 5173 §5).

use crate::imap::{mime, text};

/// One header field: its name as written and its value as written (after the colon, line
/// ends of continuation lines kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Name as written.
    pub name: String,
    /// Raw value, folded as written, without the final line end.
    pub raw: String,
}

impl Field {
    /// Unfolded value, trimmed, RFC 2047 words decoded (RFC 5228 §5.7).
    pub fn value(&self) -> String {
        text::decode_words(unfold(&self.raw).trim().as_bytes())
    }
}

/// Unfolds a field value (RFC 5322 §2.2.3): CRLF before white space removed.
pub fn unfold(raw: &str) -> String {
    raw.replace("\r\n", "").replace('\n', "")
}

/// The message under evaluation.
pub struct Mail<'a> {
    /// The whole message as received.
    pub raw: &'a [u8],
    /// The body (after the empty line).
    pub body: &'a [u8],
    /// Header fields in order, as edited so far.
    pub fields: Vec<Field>,
    /// Whether editheader changed anything.
    pub edited: bool,
}

impl<'a> Mail<'a> {
    /// Splits `raw` into its header fields and body.
    pub fn new(raw: &'a [u8]) -> Self {
        let (head, body) = mime::split(raw);
        let mut fields: Vec<Field> = Vec::new();
        let head = String::from_utf8_lossy(head);
        for line in head.split_inclusive('\n') {
            let bare = line.trim_end_matches(['\r', '\n']);
            if bare.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some(last) = fields.last_mut() {
                    last.raw.push_str("\r\n");
                    last.raw.push_str(bare);
                }
                continue;
            }
            if let Some((name, value)) = bare.split_once(':') {
                fields.push(Field {
                    name: name.trim_end().to_string(),
                    raw: value.to_string(),
                });
            }
        }
        Mail {
            raw,
            body,
            fields,
            edited: false,
        }
    }

    /// Fields named `name` (case-insensitively), in order.
    pub fn named<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s Field> + 's {
        self.fields
            .iter()
            .filter(move |f| f.name.eq_ignore_ascii_case(name))
    }

    /// The header section as it now stands, for delivery after editheader.
    pub fn header_section(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in &self.fields {
            out.extend_from_slice(f.name.as_bytes());
            out.push(b':');
            out.extend_from_slice(f.raw.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The body test's texts (RFC 5173 §5): `None` types is `:raw` (the body undecoded);
    /// otherwise every leaf part whose type matches one of `types` (`""` all, `"text"` a
    /// main type, `"text/plain"` exact), decoded from its transfer encoding and charset.
    pub fn body_texts(&self, types: Option<&[String]>) -> Vec<String> {
        let Some(types) = types else {
            return vec![String::from_utf8_lossy(self.body).into_owned()];
        };
        let mut out = Vec::new();
        let top = mime::parse(self.raw);
        leaves(&top, types, &mut out);
        out
    }
}

fn leaves(p: &mime::Part<'_>, types: &[String], out: &mut Vec<String>) {
    if !p.children.is_empty() {
        for c in &p.children {
            leaves(c, types, out);
        }
        return;
    }
    if let Some(m) = &p.message {
        // RFC 5173 §5.3: a message/rfc822 part is searched through its own parts.
        leaves(m, types, out);
        return;
    }
    let (main, sub) = &p.ctype;
    let wanted = types.iter().any(|t| {
        let t = t.to_ascii_lowercase();
        match t.split_once('/') {
            _ if t.is_empty() => true,
            Some((m, s)) => m == main && s == sub,
            None => t == *main,
        }
    });
    if !wanted {
        return;
    }
    let enc = mime::field(p.header, "content-transfer-encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let bytes = text::decode_transfer(p.body, &enc).unwrap_or_else(|| p.body.to_vec());
    let charset = p
        .params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    out.push(text::to_text(&bytes, &charset));
}

/// An address split for the address-part tags (RFC 5228 §2.7.4, RFC 5233).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressParts {
    /// Local part.
    pub local: String,
    /// Domain (may be empty for a local address).
    pub domain: String,
}

impl AddressParts {
    /// Splits `local@domain` at its last `@`.
    pub fn of(addr: &str) -> AddressParts {
        match addr.rsplit_once('@') {
            Some((l, d)) => AddressParts {
                local: l.to_string(),
                domain: d.to_string(),
            },
            None => AddressParts {
                local: addr.to_string(),
                domain: String::new(),
            },
        }
    }

    /// The part a tag selects; `None` where it does not exist (`:detail` without a `+`).
    pub fn part(&self, part: super::program::AddressPart) -> Option<String> {
        use super::program::AddressPart::*;
        // RFC 5233 §4: the separator is "+", the first one splits user and detail.
        let sep = self.local.split_once('+');
        Some(match part {
            All if self.domain.is_empty() => self.local.clone(),
            All => format!("{}@{}", self.local, self.domain),
            LocalPart => self.local.clone(),
            Domain => self.domain.clone(),
            User => sep.map_or(self.local.as_str(), |(u, _)| u).to_string(),
            Detail => sep?.1.to_string(),
        })
    }
}

/// The addresses in a header value (groups opened, display names dropped).
pub fn addresses(raw: &str) -> Vec<AddressParts> {
    mime::addresses(unfold(raw).as_bytes())
        .into_iter()
        .filter_map(|(_, _, mailbox, host)| {
            let local = mailbox?;
            // A group's name comes with no host and no mailbox route; its end marker too.
            let domain = host?;
            Some(AddressParts { local, domain })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sieve::program::AddressPart;

    const MSG: &[u8] = b"From: \"A\" <a+x@Ex.org>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n  more\r\n\
To: g: b@c.d, e@f.g;\r\nContent-Type: multipart/alternative; boundary=B\r\n\r\n--B\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nh=C3=A9llo\r\n\
--B\r\nContent-Type: text/html\r\n\r\n<p>x</p>\r\n--B--\r\n";

    #[test]
    fn header_and_body() {
        let m = Mail::new(MSG);
        assert_eq!(m.named("subject").next().unwrap().value(), "café  more");
        let to = addresses(&m.named("to").next().unwrap().raw);
        assert_eq!(to.len(), 2);
        let from = &addresses(&m.named("from").next().unwrap().raw)[0];
        assert_eq!(from.part(AddressPart::User).unwrap(), "a");
        assert_eq!(from.part(AddressPart::Detail).unwrap(), "x");
        assert_eq!(from.part(AddressPart::Domain).unwrap(), "Ex.org");
        assert_eq!(m.body_texts(Some(&["text/plain".into()])), vec!["héllo"]);
        assert_eq!(m.body_texts(Some(&["text".into()])).len(), 2);
        assert!(m.body_texts(None)[0].contains("=C3=A9"));
        assert!(
            m.header_section()
                .starts_with(b"From: \"A\" <a+x@Ex.org>\r\nSubject:")
        );
    }
}
