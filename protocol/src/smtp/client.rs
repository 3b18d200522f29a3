//! The client side of SMTP (RFC 5321 §4.2, §4.5.2): an incremental reply parser and the
//! dot-stuffing encoder for DATA. Used by outbound delivery; free of I/O so it can be fuzzed.

/// A complete reply from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerReply {
    /// Three-digit code.
    pub code: u16,
    /// Text of every line (without code and separator), joined with `\n`.
    pub text: String,
}

impl ServerReply {
    /// 2xx.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: permanent failure.
    pub fn is_permanent(&self) -> bool {
        self.code >= 500
    }

    /// The text's lines (EHLO keywords).
    pub fn lines(&self) -> impl Iterator<Item = &str> {
        self.text.split('\n')
    }

    /// One-line form for logs and DSNs: `550 5.1.1 text`.
    pub fn one_line(&self) -> String {
        format!("{} {}", self.code, self.text.replace('\n', " "))
    }
}

/// A reply that cannot be parsed: the peer is broken or hostile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line that does not start with three digits and a separator.
    Malformed(String),
    /// Continuation lines with different codes (RFC 5321 §4.2.1).
    CodeMismatch,
    /// Too many lines or a line too long.
    TooLong,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReplyError::Malformed(l) => write!(f, "malformed reply line {l:?}"),
            ReplyError::CodeMismatch => f.write_str("reply lines with different codes"),
            ReplyError::TooLong => f.write_str("reply too long"),
        }
    }
}

const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 200;

/// Takes one complete reply off the front of `buf`: `Ok(None)` if more bytes are needed.
pub fn parse_reply(buf: &mut Vec<u8>) -> Result<Option<ServerReply>, ReplyError> {
    let mut pos = 0;
    let mut code = None;
    let mut lines = Vec::new();
    loop {
        let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) else {
            if buf.len() - pos > MAX_LINE {
                return Err(ReplyError::TooLong);
            }
            return Ok(None);
        };
        let raw = &buf[pos..pos + nl];
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        pos += nl + 1;
        if line.len() > MAX_LINE || lines.len() >= MAX_LINES {
            return Err(ReplyError::TooLong);
        }
        let text = String::from_utf8_lossy(line);
        let valid = line.len() >= 3
            && line[..3].iter().all(u8::is_ascii_digit)
            && matches!(line.get(3), None | Some(b' ') | Some(b'-'));
        if !valid {
            return Err(ReplyError::Malformed(text.chars().take(80).collect()));
        }
        let c: u16 = text[..3]
            .parse()
            .map_err(|_| ReplyError::Malformed(text.to_string()))?;
        if !(200..600).contains(&c) {
            return Err(ReplyError::Malformed(text.chars().take(80).collect()));
        }
        if *code.get_or_insert(c) != c {
            return Err(ReplyError::CodeMismatch);
        }
        lines.push(text.get(4..).unwrap_or("").to_string());
        if line.get(3) != Some(&b'-') {
            buf.drain(..pos);
            return Ok(Some(ServerReply {
                code: c,
                text: lines.join("\n"),
            }));
        }
    }
}

/// Encodes message content for DATA: lines starting with `.` get another `.` (RFC 5321
/// §4.5.2), the content ends with CRLF, and the terminating `.<CRLF>` is appended. Bare CR or
/// LF (which postcore never stores) are written as CRLF so no peer can misread the end.
pub fn dot_stuff(content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + content.len() / 512 + 8);
    let mut i = 0;
    let mut at_line_start = true;
    while i < content.len() {
        if at_line_start && content[i] == b'.' {
            out.push(b'.');
        }
        match memchr::memchr2(b'\r', b'\n', &content[i..]) {
            None => {
                out.extend_from_slice(&content[i..]);
                at_line_start = false;
                i = content.len();
            }
            Some(p) => {
                let j = i + p;
                out.extend_from_slice(&content[i..j]);
                out.extend_from_slice(b"\r\n");
                i = if content[j] == b'\r' && content.get(j + 1) == Some(&b'\n') {
                    j + 2
                } else {
                    j + 1
                };
                at_line_start = true;
            }
        }
    }
    if !at_line_start {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiline_and_partial() {
        let mut b = b"250-mx.test\r\n250-PIPELINING\r\n250 SIZE 100\r\n220 next".to_vec();
        let r = parse_reply(&mut b).unwrap().unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.lines().collect::<Vec<_>>(),
            vec!["mx.test", "PIPELINING", "SIZE 100"]
        );
        assert_eq!(parse_reply(&mut b), Ok(None));
        b.extend_from_slice(b"\r\n");
        assert_eq!(parse_reply(&mut b).unwrap().unwrap().code, 220);
        let mut b = b"250\r\n".to_vec();
        assert_eq!(parse_reply(&mut b).unwrap().unwrap().text, "");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(parse_reply(&mut b"hello\r\n".to_vec()).is_err());
        assert!(parse_reply(&mut b"250-a\r\n251 b\r\n".to_vec()).is_err());
        assert!(parse_reply(&mut b"099 x\r\n".to_vec()).is_err());
        assert!(parse_reply(&mut vec![b'2'; 10_000]).is_err());
    }

    #[test]
    fn stuffing_round_trips_through_the_receiver() {
        let content = b"Subject: x\r\n\r\n.hidden\r\n..two\r\nend";
        let wire = dot_stuff(content);
        assert_eq!(
            wire,
            b"Subject: x\r\n\r\n..hidden\r\n...two\r\nend\r\n.\r\n"
        );
        let mut rx = super::super::DataReceiver::for_data(1000);
        assert!(matches!(
            rx.ingest(&wire),
            super::super::DataEvent::End { .. }
        ));
        assert_eq!(
            rx.content(),
            b"Subject: x\r\n\r\n.hidden\r\n..two\r\nend\r\n"
        );
    }
}
