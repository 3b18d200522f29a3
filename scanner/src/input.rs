//! What a scanner is given: the message octets (parsed on first use, once) and the context
//! it arrived in.

use std::cell::OnceCell;
use std::net::IpAddr;

/// Where and how a message arrived: the SMTP session's facts at end of data.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanContext {
    /// Queue id given to the message, for logs.
    pub qid: String,
    /// Listener name (`smtp`, `submission`, `submissions`).
    pub listener: String,
    /// The client's address.
    pub client_ip: IpAddr,
    /// The HELO/EHLO name the client gave.
    pub helo: Option<String>,
    /// TLS version and cipher, when the session was encrypted.
    pub tls: Option<String>,
    /// The authenticated login, when the client authenticated.
    pub auth: Option<String>,
    /// Envelope sender (empty for the null sender).
    pub mail_from: String,
    /// Envelope recipients in RCPT order; a [`crate::RecipientVerdict`] refers to them by index.
    pub rcpts: Vec<String>,
    /// The client is in the "Allow relay from IP addresses" networks, which the filter
    /// leaves alone (the reference excludes them from all checks).
    pub exempt: bool,
    /// The filter's settings at the time the message arrived.
    pub policy: crate::filter::FilterPolicy,
    /// What the DNS and authentication checks found (`None`: not checked).
    pub net: Option<crate::network::NetFacts>,
}

impl ScanContext {
    /// A context for tests: an unauthenticated port-25 session from 127.0.0.1.
    pub fn for_test(rcpts: &[&str]) -> ScanContext {
        ScanContext {
            qid: "TEST".into(),
            listener: "smtp".into(),
            client_ip: IpAddr::from([127, 0, 0, 1]),
            helo: Some("client.test".into()),
            tls: None,
            auth: None,
            mail_from: "sender@example.test".into(),
            rcpts: rcpts.iter().map(|r| r.to_string()).collect(),
            exempt: false,
            policy: crate::filter::FilterPolicy::default(),
            net: None,
        }
    }
}

/// One message to judge.
pub struct ScanInput<'a> {
    /// The context it arrived in.
    pub context: &'a ScanContext,
    /// The message octets as received (CRLF line ends, no dot-stuffing).
    pub raw: &'a [u8],
    parsed: OnceCell<Option<mail_parser::Message<'a>>>,
}

impl<'a> ScanInput<'a> {
    /// A message and its context.
    pub fn new(context: &'a ScanContext, raw: &'a [u8]) -> ScanInput<'a> {
        ScanInput {
            context,
            raw,
            parsed: OnceCell::new(),
        }
    }

    /// The message parsed by mail-parser (MIME structure, decoded headers and text in every
    /// charset it knows), parsed on the first call and kept. `None` when it has no headers
    /// at all.
    pub fn parsed(&self) -> Option<&mail_parser::Message<'a>> {
        self.parsed
            .get_or_init(|| mail_parser::MessageParser::default().parse(self.raw))
            .as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_once_and_decodes_charsets() {
        let ctx = ScanContext::for_test(&["a@example.test"]);
        // KOI8-R "Привет" in an RFC 2047 encoded word.
        let raw = b"Subject: =?koi8-r?B?8NLJ18XU?=\r\n\r\nbody\r\n";
        let input = ScanInput::new(&ctx, raw);
        let first = input.parsed().map(|m| m as *const _);
        assert_eq!(input.parsed().and_then(|m| m.subject()), Some("Привет"));
        assert_eq!(first, input.parsed().map(|m| m as *const _));
    }
}
