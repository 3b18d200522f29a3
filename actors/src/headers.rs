//! The one way the server reads header fields of a message it handles (end-of-data pipeline,
//! DKIM signing domain, legal notices): mail-parser's header parse, so every stage sees the
//! same decoded values (RFC 5322 unfolding, RFC 2047, RFC 2231, addresses). IMAP's ENVELOPE
//! and BODYSTRUCTURE keep their raw path (`postcore_protocol::imap::mime`): RFC 9051 wants
//! those values as written, not decoded.

use mail_parser::{HeaderName, MessageParser, MimeHeaders};

/// The header section of a message, parsed once.
pub struct Headers<'a> {
    msg: Option<mail_parser::Message<'a>>,
}

impl<'a> Headers<'a> {
    /// Parses the header section of `message` (the body is not looked at).
    pub fn parse(message: &'a [u8]) -> Headers<'a> {
        Headers {
            msg: MessageParser::default().parse_headers(message),
        }
    }

    /// True if the message has a field called `name`.
    pub fn has(&self, name: HeaderName<'_>) -> bool {
        self.msg
            .as_ref()
            .is_some_and(|m| m.root_part().headers.iter().any(|h| h.name == name))
    }

    /// The Message-ID (RFC 5322 §3.6.4) as `<id-left@id-right>`; a field that does not
    /// parse as one is returned as written (trimmed), so its presence is never missed.
    pub fn message_id(&self) -> Option<String> {
        let m = self.msg.as_ref()?;
        if let Some(id) = m.message_id() {
            return Some(format!("<{id}>"));
        }
        let raw = m.header_raw(HeaderName::MessageId)?;
        let v = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        (!v.is_empty()).then_some(v)
    }

    /// The domain of the first address in `From:` (lower case, no trailing dot).
    pub fn from_domain(&self) -> Option<String> {
        let addr = self.msg.as_ref()?.from()?.first()?.address()?;
        let (_, d) = addr.trim().rsplit_once('@')?;
        let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
        (!d.is_empty()).then_some(d)
    }

    /// The top-level Content-Type as (`type/subtype` lower case, boundary parameter);
    /// `text/plain` when absent (RFC 2045 §5.2).
    pub fn content_type(&self) -> (String, Option<String>) {
        let Some(ct) = self.msg.as_ref().and_then(|m| m.content_type()) else {
            return ("text/plain".into(), None);
        };
        let full = match ct.subtype() {
            Some(s) => format!("{}/{}", ct.ctype(), s),
            None => ct.ctype().to_string(),
        };
        (
            full.to_ascii_lowercase(),
            ct.attribute("boundary").map(str::to_string),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_read_decoded_and_unfolded() {
        let m = b"Subject: a\r\nMessage-ID:\r\n <x@y>\r\nFrom: \"A, B\" <a@Example.TEST.>\r\n\
Content-Type: multipart/MIXED;\r\n boundary=\"b 1\"\r\n\r\nMessage-ID: <body@z>\r\nDate: x\r\n";
        let h = Headers::parse(m);
        assert_eq!(h.message_id().as_deref(), Some("<x@y>"));
        assert!(!h.has(HeaderName::Date), "fields in the body do not count");
        assert!(h.has(HeaderName::Subject));
        assert_eq!(h.from_domain().as_deref(), Some("example.test"));
        assert_eq!(
            h.content_type(),
            ("multipart/mixed".into(), Some("b 1".into()))
        );
    }

    #[test]
    fn missing_fields() {
        let h = Headers::parse(b"Subject: none\r\n\r\nbody\r\n");
        assert_eq!(h.message_id(), None);
        assert_eq!(h.from_domain(), None);
        assert_eq!(h.content_type(), ("text/plain".into(), None));
        let h = Headers::parse(b"From: a@x.test\r\n\r\n");
        assert_eq!(h.from_domain().as_deref(), Some("x.test"));
        // A malformed Message-ID is still seen (submission must not add a second one).
        let h = Headers::parse(b"Message-ID: not an id\r\n\r\n");
        assert!(h.message_id().is_some_and(|id| id.contains("not an id")));
    }
}
