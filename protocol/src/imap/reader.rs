//! Incremental assembly of one IMAP command from the byte stream, literals included.
//!
//! RFC 9051 §4.3 / RFC 3501 §4.3: a literal is `{N}` CRLF followed by N octets; the client waits
//! for a `+` continuation before sending them (synchronizing literal). RFC 7888 (LITERAL+):
//! `{N+}` literals are sent without waiting. The reader returns a whole command (every line
//! and literal, in order, final CRLF removed) so the parser never sees a partial command, and
//! enforces limits: line length, literal size (a bigger limit for APPEND), total size.

/// What [`CommandReader::ingest`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadEvent {
    /// A complete command: lines and literals inline, without the final CRLF.
    Command(Vec<u8>),
    /// A synchronizing literal was announced: answer `+ ...` and keep reading.
    Continue,
    /// The command broke a limit and was discarded; the tag, when one was read, is given so
    /// the session can answer `tag BAD`. `fatal` means the stream can no longer be followed
    /// (a non-synchronizing literal over the limit) and the session should close.
    TooBig {
        /// The command's tag, if it was read.
        tag: Option<String>,
        /// The session cannot continue.
        fatal: bool,
    },
    /// More bytes are needed.
    NeedMore,
}

/// Limits for one reader.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Longest line outside literals (octets).
    pub max_line: usize,
    /// Largest literal in an APPEND command (the message size limit).
    pub max_append_literal: usize,
    /// Largest literal in any other command.
    pub max_literal: usize,
}

#[derive(Debug)]
enum State {
    Line,
    Literal(usize),
    DiscardLine,
}

/// Reads commands from a growing buffer; see the module doc.
#[derive(Debug)]
pub struct CommandReader {
    limits: Limits,
    cmd: Vec<u8>,
    state: State,
    scanned: usize,
}

fn tag_of(line: &[u8]) -> Option<String> {
    let end = line.iter().position(|b| *b == b' ').unwrap_or(line.len());
    let t = &line[..end];
    (!t.is_empty() && t.len() <= 64 && t.iter().all(|b| b.is_ascii_graphic()))
        .then(|| String::from_utf8_lossy(t).into_owned())
}

/// If `line` ends with a literal announcement, its size and whether it is non-synchronizing.
fn literal_at_end(line: &[u8]) -> Option<Result<(usize, bool), ()>> {
    if line.last() != Some(&b'}') {
        return None;
    }
    let open = line.iter().rposition(|b| *b == b'{')?;
    let mut inner = &line[open + 1..line.len() - 1];
    let plus = matches!(inner.last(), Some(b'+') | Some(b'-'));
    if plus {
        inner = &inner[..inner.len() - 1];
    }
    if inner.is_empty() || !inner.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if inner.len() > 12 {
        return Some(Err(()));
    }
    let n: usize = std::str::from_utf8(inner).ok()?.parse().ok()?;
    Some(Ok((n, plus)))
}

impl CommandReader {
    /// A reader with the given limits.
    pub fn new(limits: Limits) -> Self {
        CommandReader {
            limits,
            cmd: Vec::new(),
            state: State::Line,
            scanned: 0,
        }
    }

    fn is_append(&self) -> bool {
        let mut words = self.cmd.split(|b| *b == b' ');
        let _tag = words.next();
        let mut verb = words.next().unwrap_or_default();
        if verb.eq_ignore_ascii_case(b"UID") {
            verb = words.next().unwrap_or_default();
        }
        verb.eq_ignore_ascii_case(b"APPEND")
    }

    fn reset(&mut self) -> Vec<u8> {
        self.state = State::Line;
        self.scanned = 0;
        std::mem::take(&mut self.cmd)
    }

    /// True while part of a command has been read (a literal, or lines before one).
    pub fn in_command(&self) -> bool {
        !self.cmd.is_empty() || matches!(self.state, State::Literal(_))
    }

    /// Takes what it can from the front of `buf` (consumed bytes are drained).
    pub fn ingest(&mut self, buf: &mut Vec<u8>) -> ReadEvent {
        loop {
            match self.state {
                State::Literal(n) => {
                    let take = n.min(buf.len());
                    self.cmd.extend(buf.drain(..take));
                    if take < n {
                        self.state = State::Literal(n - take);
                        return ReadEvent::NeedMore;
                    }
                    self.state = State::Line;
                    self.scanned = self.cmd.len();
                }
                State::DiscardLine => match memchr::memchr(b'\n', buf) {
                    Some(p) => {
                        buf.drain(..=p);
                        let tag = tag_of(&self.cmd);
                        self.reset();
                        return ReadEvent::TooBig { tag, fatal: false };
                    }
                    None => {
                        buf.clear();
                        return ReadEvent::NeedMore;
                    }
                },
                State::Line => {
                    let line_start = self.scanned;
                    let Some(p) = memchr::memchr(b'\n', buf) else {
                        if self.cmd.len() - line_start + buf.len() > self.limits.max_line {
                            // Keep the first bytes (for the tag), drop the rest of the line.
                            if self.cmd.len() < 64 {
                                let keep = (64 - self.cmd.len()).min(buf.len());
                                self.cmd.extend_from_slice(&buf[..keep]);
                            }
                            buf.clear();
                            self.state = State::DiscardLine;
                        }
                        return ReadEvent::NeedMore;
                    };
                    let mut line: Vec<u8> = buf.drain(..=p).collect();
                    line.pop();
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.len() > self.limits.max_line {
                        self.cmd.extend_from_slice(&line[..line.len().min(64)]);
                        let tag = tag_of(&self.cmd);
                        self.reset();
                        return ReadEvent::TooBig { tag, fatal: false };
                    }
                    self.cmd.extend_from_slice(&line);
                    match literal_at_end(&line) {
                        None => return ReadEvent::Command(self.reset()),
                        Some(lit) => {
                            let max = if self.is_append() {
                                self.limits.max_append_literal
                            } else {
                                self.limits.max_literal
                            };
                            let total_max = self.limits.max_append_literal + 65536;
                            match lit {
                                Ok((n, nonsync)) if n <= max && self.cmd.len() + n <= total_max => {
                                    self.cmd.extend_from_slice(b"\r\n");
                                    self.state = State::Literal(n);
                                    self.scanned = self.cmd.len() + n;
                                    if !nonsync {
                                        return ReadEvent::Continue;
                                    }
                                }
                                Ok((_, nonsync)) => {
                                    let tag = tag_of(&self.cmd);
                                    self.reset();
                                    return ReadEvent::TooBig {
                                        tag,
                                        fatal: nonsync,
                                    };
                                }
                                Err(()) => {
                                    let tag = tag_of(&self.cmd);
                                    self.reset();
                                    return ReadEvent::TooBig { tag, fatal: true };
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader() -> CommandReader {
        CommandReader::new(Limits {
            max_line: 100,
            max_append_literal: 1000,
            max_literal: 10,
        })
    }

    #[test]
    fn plain_and_pipelined() {
        let mut r = reader();
        let mut b = b"a NOOP\r\nb CAPABILITY\r\nc".to_vec();
        assert_eq!(r.ingest(&mut b), ReadEvent::Command(b"a NOOP".to_vec()));
        assert_eq!(
            r.ingest(&mut b),
            ReadEvent::Command(b"b CAPABILITY".to_vec())
        );
        assert_eq!(r.ingest(&mut b), ReadEvent::NeedMore);
    }

    #[test]
    fn synchronizing_and_nonsync_literals() {
        let mut r = reader();
        let mut b = b"a LOGIN {5}\r\n".to_vec();
        assert_eq!(r.ingest(&mut b), ReadEvent::Continue);
        assert_eq!(r.ingest(&mut b), ReadEvent::NeedMore);
        b.extend_from_slice(b"alice {3+}\r\npw!\r\n");
        assert_eq!(
            r.ingest(&mut b),
            ReadEvent::Command(b"a LOGIN {5}\r\nalice {3+}\r\npw!".to_vec())
        );
    }

    #[test]
    fn limits() {
        let mut r = reader();
        let mut b = b"a LOGIN {11}\r\n".to_vec();
        assert_eq!(
            r.ingest(&mut b),
            ReadEvent::TooBig {
                tag: Some("a".into()),
                fatal: false
            }
        );
        let mut b = b"b APPEND x {900}\r\n".to_vec();
        assert_eq!(r.ingest(&mut b), ReadEvent::Continue);
        let mut r = reader();
        let mut b = b"c LOGIN {11+}\r\n".to_vec();
        assert_eq!(
            r.ingest(&mut b),
            ReadEvent::TooBig {
                tag: Some("c".into()),
                fatal: true
            }
        );
        let mut r = reader();
        let mut b = vec![b'x'; 150];
        assert_eq!(r.ingest(&mut b), ReadEvent::NeedMore);
        assert!(b.is_empty());
        b.extend_from_slice(b"yyy\r\nd NOOP\r\n");
        assert!(matches!(
            r.ingest(&mut b),
            ReadEvent::TooBig { fatal: false, .. }
        ));
        assert_eq!(r.ingest(&mut b), ReadEvent::Command(b"d NOOP".to_vec()));
    }
}
