//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034).

/// One reply: a code, an optional enhanced status code, and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code such as `5.1.1`, without the class repeated elsewhere.
    pub status: Option<&'static str>,
    /// Text lines; never contain CR or LF (they are replaced on construction).
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        let status = if status.is_empty() {
            None
        } else {
            Some(status)
        };
        Reply {
            code,
            status,
            lines: vec![sanitize(text.into())],
        }
    }

    /// A multi-line reply without enhanced status (EHLO, HELP).
    pub fn multi(code: u16, lines: Vec<String>) -> Self {
        Reply {
            code,
            status: None,
            lines: lines.into_iter().map(sanitize).collect(),
        }
    }

    /// True for 4xx/5xx.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Serialises to wire format (RFC 5321 §4.2.1: `code-text` continuation lines,
    /// `code text` on the last).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.write_to(&mut out);
        out
    }

    /// Appends the wire format to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let n = self.lines.len().max(1);
        for i in 0..n {
            let sep = if i + 1 == n { ' ' } else { '-' };
            let text = self.lines.get(i).map(String::as_str).unwrap_or("");
            match self.status {
                Some(st) => out.extend_from_slice(
                    format!("{}{}{} {}\r\n", self.code, sep, st, text).as_bytes(),
                ),
                None => {
                    out.extend_from_slice(format!("{}{}{}\r\n", self.code, sep, text).as_bytes())
                }
            }
        }
    }
}

fn sanitize(s: String) -> String {
    if s.contains(['\r', '\n']) {
        s.replace(['\r', '\n'], " ")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi() {
        assert_eq!(
            Reply::new(250, "2.1.0", "Ok").to_bytes(),
            b"250 2.1.0 Ok\r\n"
        );
        assert_eq!(
            Reply::multi(250, vec!["host".into(), "SIZE 10".into()]).to_bytes(),
            b"250-host\r\n250 SIZE 10\r\n"
        );
        assert_eq!(
            Reply::new(550, "5.1.1", "a\r\nb").to_bytes(),
            b"550 5.1.1 a  b\r\n"
        );
    }
}
