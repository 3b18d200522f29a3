//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 3463, RFC 2034).

/// One reply: a code, an optional enhanced status code, and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code such as `5.1.1`, without the class repeated elsewhere.
    pub status: Option<std::borrow::Cow<'static, str>>,
    /// Text lines; never contain CR or LF (they are replaced on construction).
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Self {
        let status = if status.is_empty() {
            None
        } else {
            Some(std::borrow::Cow::Borrowed(status))
        };
        Reply {
            code,
            status,
            lines: vec![sanitize(text.into())],
        }
    }

    /// A single-line reply whose code and enhanced status come from elsewhere (a scanner's
    /// verdict, a remote server). `None` unless the code is a 4xx or 5xx code and the status
    /// is a valid RFC 3463 code of the same class (`5.7.1` with 554).
    pub fn error_from(code: u16, status: &str, text: &str) -> Option<Self> {
        let class = code / 100;
        let mut parts = status.split('.');
        let valid_status = parts.next() == Some(&class.to_string())
            && parts.clone().count() == 2
            && parts
                .all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
        ((class == 4 || class == 5) && code < 600 && valid_status).then(|| Reply {
            code,
            status: Some(std::borrow::Cow::Owned(status.to_string())),
            lines: vec![sanitize(text.to_string())],
        })
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
            match &self.status {
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

    #[test]
    fn error_from_checks_code_and_status_class() {
        assert_eq!(
            Reply::error_from(554, "5.7.1", "spam\r\n250 ok")
                .unwrap()
                .to_bytes(),
            b"554 5.7.1 spam  250 ok\r\n"
        );
        assert!(Reply::error_from(451, "4.7.1", "later").is_some());
        assert!(Reply::error_from(250, "2.0.0", "ok").is_none());
        assert!(Reply::error_from(554, "4.7.1", "mismatch").is_none());
        assert!(Reply::error_from(554, "5.7", "short").is_none());
        assert!(Reply::error_from(654, "6.0.0", "class").is_none());
    }
}
