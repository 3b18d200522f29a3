//! POP3 (RFC 1939) with CAPA (RFC 2449), STLS (RFC 2595), UIDL, TOP and AUTH PLAIN (RFC 5034):
//! command parsing and response formatting, free of I/O.

/// One POP3 command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `USER name`.
    User(String),
    /// `PASS secret` (the rest of the line, spaces included).
    Pass(String),
    /// `AUTH mechanism [initial-response]` (RFC 5034); `AUTH` alone lists mechanisms.
    Auth(Option<String>, Option<String>),
    /// `STAT`.
    Stat,
    /// `LIST [msg]`.
    List(Option<usize>),
    /// `RETR msg`.
    Retr(usize),
    /// `DELE msg`.
    Dele(usize),
    /// `NOOP`.
    Noop,
    /// `RSET`.
    Rset,
    /// `QUIT`.
    Quit,
    /// `TOP msg n`.
    Top(usize, usize),
    /// `UIDL [msg]`.
    Uidl(Option<usize>),
    /// `CAPA`.
    Capa,
    /// `STLS`.
    Stls,
}

/// Why a line is not a command we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Unknown keyword.
    Unknown,
    /// Missing or malformed argument.
    Syntax(&'static str),
}

fn number(s: Option<&str>) -> Result<usize, CommandError> {
    let s = s.ok_or(CommandError::Syntax("message number required"))?;
    // RFC 1939: message numbers start at 1; no signs, no leading '+'.
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::Syntax("invalid message number"));
    }
    s.parse()
        .map_err(|_| CommandError::Syntax("invalid message number"))
}

fn tag(line: &[u8]) -> (u32, &[u8]) {
    let end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
    if end != 4 {
        return (0, &line[end..]);
    }
    let mut t = [0u8; 4];
    for (d, s) in t.iter_mut().zip(line) {
        *d = s.to_ascii_uppercase();
    }
    (u32::from_be_bytes(t), line.get(5..).unwrap_or(&[]))
}

const fn t(s: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*s)
}

impl Command {
    /// Parses one line (without CRLF). Keywords are case-insensitive (RFC 1939 §3).
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let (kw, rest) = tag(line);
        let rest = std::str::from_utf8(rest).map_err(|_| CommandError::Syntax("invalid UTF-8"))?;
        let mut args = rest.split(' ').filter(|a| !a.is_empty());
        let none = |c: Command, rest: &str| {
            if rest.trim().is_empty() {
                Ok(c)
            } else {
                Err(CommandError::Syntax("no argument expected"))
            }
        };
        match kw {
            k if k == t(b"USER") => {
                let u = rest.trim();
                if u.is_empty() {
                    Err(CommandError::Syntax("user name required"))
                } else {
                    Ok(Command::User(u.to_string()))
                }
            }
            k if k == t(b"PASS") => Ok(Command::Pass(rest.to_string())),
            k if k == t(b"AUTH") => Ok(Command::Auth(
                args.next().map(|m| m.to_ascii_uppercase()),
                args.next().map(str::to_string),
            )),
            k if k == t(b"STAT") => none(Command::Stat, rest),
            k if k == t(b"LIST") => Ok(Command::List(
                args.next().map(|a| number(Some(a))).transpose()?,
            )),
            k if k == t(b"RETR") => Ok(Command::Retr(number(args.next())?)),
            k if k == t(b"DELE") => Ok(Command::Dele(number(args.next())?)),
            k if k == t(b"NOOP") => none(Command::Noop, rest),
            k if k == t(b"RSET") => none(Command::Rset, rest),
            k if k == t(b"QUIT") => none(Command::Quit, rest),
            k if k == t(b"UIDL") => Ok(Command::Uidl(
                args.next().map(|a| number(Some(a))).transpose()?,
            )),
            k if k == t(b"CAPA") => none(Command::Capa, rest),
            k if k == t(b"STLS") => none(Command::Stls, rest),
            _ => {
                // TOP is the one three-letter keyword.
                let s = std::str::from_utf8(line).unwrap_or("");
                let mut parts = s.split(' ').filter(|a| !a.is_empty());
                if parts.next().is_some_and(|k| k.eq_ignore_ascii_case("TOP")) {
                    let m = number(parts.next())?;
                    let n = number(parts.next())?;
                    return Ok(Command::Top(m, n));
                }
                Err(CommandError::Unknown)
            }
        }
    }
}

/// `+OK text\r\n`.
pub fn ok(text: &str) -> Vec<u8> {
    format!("+OK {}\r\n", text.replace(['\r', '\n'], " ")).into_bytes()
}

/// `-ERR text\r\n`.
pub fn err(text: &str) -> Vec<u8> {
    format!("-ERR {}\r\n", text.replace(['\r', '\n'], " ")).into_bytes()
}

/// A multi-line response body: byte-stuffed, CRLF line ends, terminated by `.CRLF`
/// (RFC 1939 §3).
pub fn multiline(body: &[u8]) -> Vec<u8> {
    crate::smtp::client::dot_stuff(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(
            Command::parse(b"user alice"),
            Ok(Command::User("alice".into()))
        );
        assert_eq!(
            Command::parse(b"PASS with spaces "),
            Ok(Command::Pass("with spaces ".into()))
        );
        assert_eq!(Command::parse(b"LIST"), Ok(Command::List(None)));
        assert_eq!(Command::parse(b"LIST 2"), Ok(Command::List(Some(2))));
        assert_eq!(Command::parse(b"top 1 10"), Ok(Command::Top(1, 10)));
        assert_eq!(Command::parse(b"RETR 1"), Ok(Command::Retr(1)));
        assert!(Command::parse(b"RETR").is_err());
        assert!(Command::parse(b"RETR -1").is_err());
        assert!(Command::parse(b"RETR 99999999999999").is_err());
        assert!(Command::parse(b"TOP 1").is_err());
        assert_eq!(
            Command::parse(b"AUTH plain AGFAYg=="),
            Ok(Command::Auth(Some("PLAIN".into()), Some("AGFAYg==".into())))
        );
        assert_eq!(Command::parse(b"XYZZ"), Err(CommandError::Unknown));
        assert_eq!(
            Command::parse(b"STAT x"),
            Err(CommandError::Syntax("no argument expected"))
        );
    }

    #[test]
    fn responses() {
        assert_eq!(ok("2 320"), b"+OK 2 320\r\n");
        assert_eq!(err("no\r\nX: y"), b"-ERR no  X: y\r\n");
        assert_eq!(multiline(b".a\r\nb"), b"..a\r\nb\r\n.\r\n");
    }
}
