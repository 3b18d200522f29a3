//! Incremental command-line reader with a hard length limit.
//!
//! RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF; extensions
//! (SIZE, AUTH=, SMTPUTF8 addresses) make longer lines legitimate, so the limit is a
//! parameter (postcore uses 2,048 like Postfix's `line_length_limit`). A line that is too
//! long is consumed up to its end and reported once, so the session can answer 500 and go on
//! without ever buffering more than the limit.

/// What [`LineReader::ingest`] found at the front of the buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A complete line, without its line ending.
    Line(Vec<u8>),
    /// A line longer than the limit was skipped up to and including its end.
    TooLong,
    /// No complete line yet: more bytes are needed.
    NeedMore,
}

/// Reads CRLF (or, leniently, bare LF) terminated lines from a growing byte buffer.
#[derive(Debug)]
pub struct LineReader {
    max: usize,
    discarding: bool,
}

impl LineReader {
    /// A reader that accepts lines of at most `max` octets (line ending excluded).
    pub fn new(max: usize) -> Self {
        Self {
            max,
            discarding: false,
        }
    }

    /// True while the reader is skipping the rest of an overlong line.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// Takes at most one line (or one overlong-line event) off the front of `buf`.
    /// Consumed bytes are drained from `buf`; the rest stays for the next call.
    pub fn ingest(&mut self, buf: &mut Vec<u8>) -> LineEvent {
        match memchr::memchr(b'\n', buf) {
            Some(pos) => {
                let mut line: Vec<u8> = buf.drain(..=pos).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if self.discarding {
                    self.discarding = false;
                    return LineEvent::TooLong;
                }
                if line.len() > self.max {
                    return LineEvent::TooLong;
                }
                LineEvent::Line(line)
            }
            None => {
                if buf.len() > self.max + 1 {
                    // Keep memory bounded: drop what we have and skip to the line's end.
                    buf.clear();
                    self.discarding = true;
                }
                LineEvent::NeedMore
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pipelined_lines() {
        let mut r = LineReader::new(100);
        let mut b = b"EHLO a\r\nMAIL FROM:<>\r\nRC".to_vec();
        assert_eq!(r.ingest(&mut b), LineEvent::Line(b"EHLO a".to_vec()));
        assert_eq!(r.ingest(&mut b), LineEvent::Line(b"MAIL FROM:<>".to_vec()));
        assert_eq!(r.ingest(&mut b), LineEvent::NeedMore);
        assert_eq!(b, b"RC");
    }

    #[test]
    fn overlong_line_is_skipped_with_bounded_memory() {
        let mut r = LineReader::new(10);
        let mut b = vec![b'x'; 50];
        assert_eq!(r.ingest(&mut b), LineEvent::NeedMore);
        assert!(b.is_empty());
        b.extend_from_slice(b"yyyy\r\nNOOP\r\n");
        assert_eq!(r.ingest(&mut b), LineEvent::TooLong);
        assert_eq!(r.ingest(&mut b), LineEvent::Line(b"NOOP".to_vec()));
    }

    #[test]
    fn overlong_complete_line() {
        let mut r = LineReader::new(4);
        let mut b = b"ABCDEFG\r\nNOOP\r\n".to_vec();
        assert_eq!(r.ingest(&mut b), LineEvent::TooLong);
        assert_eq!(r.ingest(&mut b), LineEvent::Line(b"NOOP".to_vec()));
    }
}
