//! ManageSieve (RFC 5804) without I/O: an incremental command reader (atoms, quoted strings,
//! literals `{n+}` and `{n}`, numbers) and the response forms (`OK`/`NO`/`BYE` with response
//! codes, strings quoted or as literals).

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A quoted string or a literal (RFC 5804 §4 `string`).
    Str(Vec<u8>),
    /// A number (HAVESPACE's size).
    Number(u64),
    /// A bare word (the command name, or a client's unquoted argument).
    Atom(String),
}

impl Arg {
    /// The argument as text, if it is a string (or an atom) in UTF-8.
    pub fn text(&self) -> Option<&str> {
        match self {
            Arg::Str(s) => std::str::from_utf8(s).ok(),
            Arg::Atom(a) => Some(a),
            Arg::Number(_) => None,
        }
    }
}

/// What the reader found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadEvent {
    /// A whole command: its name (upper case) and arguments.
    Command(String, Vec<Arg>),
    /// A line that is not a command (a client's answer to an AUTHENTICATE challenge is read
    /// as a command with no name: see [`CommandReader::ingest`]).
    Invalid(String),
    /// A line (outside literals) longer than the limit; the rest of it was skipped.
    TooLong,
    /// A literal larger than the limit: the session must end (its octets would follow).
    LiteralTooLarge(u64),
    /// More input is needed.
    NeedMore,
}

/// Incremental command reader.
#[derive(Debug, Clone)]
pub struct CommandReader {
    max_line: usize,
    max_literal: u64,
    skipping: bool,
}

impl CommandReader {
    /// A reader with limits on a line (without its literals) and on one literal.
    pub fn new(max_line: usize, max_literal: u64) -> Self {
        CommandReader {
            max_line,
            max_literal,
            skipping: false,
        }
    }

    /// Takes one command out of `buf` when a whole one is there. The first token is the
    /// command name, except for a line whose first token is a string (an AUTHENTICATE
    /// response, RFC 5804 §2.1): that is a command named "".
    pub fn ingest(&mut self, buf: &mut Vec<u8>) -> ReadEvent {
        if self.skipping {
            match memchr::memchr(b'\n', buf) {
                Some(p) => {
                    buf.drain(..=p);
                    self.skipping = false;
                }
                None => {
                    buf.clear();
                    return ReadEvent::NeedMore;
                }
            }
        }
        match parse(buf, self.max_literal) {
            Parsed::Done(used, ev) => {
                buf.drain(..used);
                ev
            }
            Parsed::More { line_len } => {
                if line_len > self.max_line {
                    self.skipping = true;
                    buf.clear();
                    ReadEvent::TooLong
                } else {
                    ReadEvent::NeedMore
                }
            }
        }
    }
}

enum Parsed {
    Done(usize, ReadEvent),
    More { line_len: usize },
}

fn parse(buf: &[u8], max_literal: u64) -> Parsed {
    let mut i = 0;
    let mut args = Vec::new();
    // Octets of the line seen so far, literals not counted.
    let mut line_len = 0;
    loop {
        while buf.get(i) == Some(&b' ') {
            i += 1;
            line_len += 1;
        }
        let Some(&c) = buf.get(i) else {
            return Parsed::More { line_len };
        };
        match c {
            b'\r' | b'\n' => {
                let end = if c == b'\r' {
                    match buf.get(i + 1) {
                        Some(b'\n') => i + 2,
                        Some(_) => i + 1,
                        None => return Parsed::More { line_len },
                    }
                } else {
                    i + 1
                };
                return Parsed::Done(end, finish(args));
            }
            b'"' => match quoted(&buf[i..]) {
                Some(Ok((s, used))) => {
                    args.push(Arg::Str(s));
                    i += used;
                    line_len += used;
                }
                Some(Err(e)) => return skip_line(buf, i, e),
                None => {
                    return Parsed::More {
                        line_len: line_len + buf.len() - i,
                    };
                }
            },
            b'{' => {
                let Some(close) = memchr::memchr(b'}', &buf[i..]) else {
                    return Parsed::More {
                        line_len: line_len + buf.len() - i,
                    };
                };
                let inner = &buf[i + 1..i + close];
                let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                let Some(n) = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<u64>().ok())
                else {
                    return skip_line(buf, i, "malformed literal".into());
                };
                if n > max_literal {
                    return Parsed::Done(buf.len(), ReadEvent::LiteralTooLarge(n));
                }
                let mut j = i + close + 1;
                match (buf.get(j), buf.get(j + 1)) {
                    (Some(b'\r'), Some(b'\n')) => j += 2,
                    (Some(b'\n'), _) => j += 1,
                    (None, _) | (Some(b'\r'), None) => {
                        return Parsed::More {
                            line_len: line_len + close + 1,
                        };
                    }
                    _ => return skip_line(buf, i, "a literal's length must end its line".into()),
                }
                let n = n as usize;
                if buf.len() < j + n {
                    return Parsed::More {
                        line_len: line_len + close + 1,
                    };
                }
                args.push(Arg::Str(buf[j..j + n].to_vec()));
                line_len += close + 1;
                i = j + n;
            }
            _ => {
                let start = i;
                while buf
                    .get(i)
                    .is_some_and(|b| !matches!(b, b' ' | b'\r' | b'\n' | b'"' | b'{'))
                {
                    i += 1;
                }
                if i == buf.len() {
                    return Parsed::More {
                        line_len: line_len + i - start,
                    };
                }
                line_len += i - start;
                let word = String::from_utf8_lossy(&buf[start..i]).into_owned();
                match word.parse::<u64>() {
                    Ok(n) if !args.is_empty() => args.push(Arg::Number(n)),
                    _ => args.push(Arg::Atom(word)),
                }
            }
        }
    }
}

fn skip_line(buf: &[u8], from: usize, why: String) -> Parsed {
    match memchr::memchr(b'\n', &buf[from..]) {
        Some(p) => Parsed::Done(from + p + 1, ReadEvent::Invalid(why)),
        None => Parsed::More {
            line_len: buf.len(),
        },
    }
}

fn finish(mut args: Vec<Arg>) -> ReadEvent {
    if args.is_empty() {
        return ReadEvent::Invalid("empty line".into());
    }
    match args.remove(0) {
        Arg::Atom(name) => ReadEvent::Command(name.to_ascii_uppercase(), args),
        first @ Arg::Str(_) => {
            args.insert(0, first);
            ReadEvent::Command(String::new(), args)
        }
        Arg::Number(_) => ReadEvent::Invalid("a command starts with its name".into()),
    }
}

/// A quoted string (RFC 5804 §4: `\"` and `\\` the only escapes; no CR or LF inside):
/// `None` when incomplete, the string and octets used, or why it is malformed.
fn quoted(b: &[u8]) -> Option<Result<(Vec<u8>, usize), String>> {
    let mut out = Vec::new();
    let mut i = 1;
    loop {
        match *b.get(i)? {
            b'"' => return Some(Ok((out, i + 1))),
            b'\\' => match *b.get(i + 1)? {
                c @ (b'"' | b'\\') => {
                    out.push(c);
                    i += 2;
                }
                _ => return Some(Err("invalid escape in a quoted string".into())),
            },
            b'\r' | b'\n' => return Some(Err("line end in a quoted string".into())),
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// A string in a response: quoted when it can be (no line ends, quotes or backslashes, and
/// short), otherwise a literal `{n}` (RFC 5804 §4).
pub fn string(s: &[u8]) -> Vec<u8> {
    if s.len() <= 1024
        && !s
            .iter()
            .any(|c| matches!(c, b'\r' | b'\n' | b'"' | b'\\' | 0))
    {
        let mut out = Vec::with_capacity(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s);
        out.push(b'"');
        out
    } else {
        let mut out = format!("{{{}}}\r\n", s.len()).into_bytes();
        out.extend_from_slice(s);
        out
    }
}

/// A response line: `OK`, `NO` or `BYE`, an optional response code (`(QUOTA/MAXSIZE)`), an
/// optional human-readable string (RFC 5804 §1.2, §1.3).
pub fn response(kind: &str, code: Option<&str>, text: &str) -> Vec<u8> {
    let mut out = kind.as_bytes().to_vec();
    if let Some(c) = code {
        out.extend_from_slice(b" (");
        out.extend_from_slice(c.as_bytes());
        out.push(b')');
    }
    if !text.is_empty() {
        out.push(b' ');
        out.extend_from_slice(&string(text.as_bytes()));
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(input: &[u8]) -> (ReadEvent, Vec<u8>) {
        let mut r = CommandReader::new(1024, 1 << 20);
        let mut b = input.to_vec();
        let e = r.ingest(&mut b);
        (e, b)
    }

    #[test]
    fn commands_strings_literals() {
        assert_eq!(
            read(b"capability\r\n").0,
            ReadEvent::Command("CAPABILITY".into(), vec![])
        );
        assert_eq!(
            read(b"HAVESPACE \"a b\" 120\r\n").0,
            ReadEvent::Command(
                "HAVESPACE".into(),
                vec![Arg::Str(b"a b".to_vec()), Arg::Number(120)]
            )
        );
        let (e, rest) = read(b"PUTSCRIPT \"s\" {6+}\r\nkeep;\n\r\nNOOP\r\n");
        assert_eq!(
            e,
            ReadEvent::Command(
                "PUTSCRIPT".into(),
                vec![Arg::Str(b"s".to_vec()), Arg::Str(b"keep;\n".to_vec())]
            )
        );
        assert_eq!(rest, b"NOOP\r\n");
        assert_eq!(read(b"PUTSCRIPT \"s\" {6+}\r\nkee").0, ReadEvent::NeedMore);
        assert_eq!(
            read(b"\"AGFsaWNlAHB3\"\r\n").0,
            ReadEvent::Command(String::new(), vec![Arg::Str(b"AGFsaWNlAHB3".to_vec())])
        );
        assert_eq!(
            read(b"X \"a\\\"b\\\\\"\r\n").0,
            ReadEvent::Command("X".into(), vec![Arg::Str(b"a\"b\\".to_vec())])
        );
    }

    #[test]
    fn errors_and_limits() {
        assert!(
            matches!(read(b"X \"a\\qb\"\r\nNOOP\r\n"), (ReadEvent::Invalid(_), rest) if rest == b"NOOP\r\n")
        );
        assert_eq!(
            read(b"PUTSCRIPT \"s\" {99999999+}\r\n").0,
            ReadEvent::LiteralTooLarge(99999999)
        );
        let mut r = CommandReader::new(16, 100);
        let mut b = vec![b'A'; 40];
        assert_eq!(r.ingest(&mut b), ReadEvent::TooLong);
        let mut b = b"AAAA\r\nNOOP\r\n".to_vec();
        assert_eq!(r.ingest(&mut b), ReadEvent::Command("NOOP".into(), vec![]));
        assert!(matches!(read(b"{x}\r\n").0, ReadEvent::Invalid(_)));
    }

    #[test]
    fn responses() {
        assert_eq!(response("OK", None, ""), b"OK\r\n");
        assert_eq!(
            response("NO", Some("QUOTA/MAXSIZE"), "too big"),
            b"NO (QUOTA/MAXSIZE) \"too big\"\r\n"
        );
        assert_eq!(string(b"line 1\r\nline 2"), b"{14}\r\nline 1\r\nline 2");
    }
}
