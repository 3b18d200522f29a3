//! The message-content receiver for DATA (RFC 5321 §4.1.1.4, §4.5.2) and BDAT (RFC 3030).
//!
//! SMTP smuggling defence: the end of DATA is recognised **only** as `<CRLF>.<CRLF>`, where
//! the CRLF before the dot is a real CR LF pair (RFC 5321 §2.3.8, §4.1.1.4). `<LF>.<LF>`,
//! `<LF>.<CRLF>`, `<CR>.<CR>`, `<CRLF>.<LF>` and the like never end the message. Bare CR and
//! bare LF are either normalised to CRLF in the stored content (so that no later hop can read
//! them as line ends in a different way) or reported so the session can refuse the message.
//! Dot-unstuffing (RFC 5321 §4.5.2) applies only to lines that began after a real CRLF.
//!
//! The receiver never holds more than `max_size` octets of output: once the limit is passed it
//! keeps parsing (to find the real end) but stores nothing more. A session may move the output
//! out as it grows ([`DataReceiver::take_output`], to stream a large body to disk); the limit
//! counts every octet emitted, taken or not.

/// A bare CR or bare LF was seen in the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NewlineIssue {
    /// A LF not preceded by CR.
    pub bare_lf: bool,
    /// A CR not followed by LF.
    pub bare_cr: bool,
}

/// Result of one [`DataReceiver::ingest`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataEvent {
    /// All input was consumed; the message continues.
    NeedMore,
    /// `<CRLF>.<CRLF>` was found; `consumed` octets of the input belong to the message,
    /// the rest are the next commands (pipelining).
    End {
        /// Octets of the input consumed, including the terminating `.<CRLF>`.
        consumed: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line that followed a real CRLF (or the start of DATA).
    LineStart,
    /// Inside a line (including lines that followed a bare LF).
    Mid,
    /// Saw CR; its meaning depends on the next octet.
    Cr,
    /// Saw `.` at a real line start.
    Dot,
    /// Saw `.` CR at a real line start.
    DotCr,
}

/// Incremental receiver for message content.
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    dot_transparency: bool,
    max_size: usize,
    out: Vec<u8>,
    /// Octets emitted in all, including those already taken out.
    emitted: usize,
    overflow: bool,
    issue: NewlineIssue,
}

impl DataReceiver {
    /// Receiver for DATA: dot-stuffing and `<CRLF>.<CRLF>` end.
    pub fn for_data(max_size: usize) -> Self {
        Self::new(max_size, true)
    }

    /// Receiver for BDAT chunks: raw octets, only newline normalisation.
    pub fn for_bdat(max_size: usize) -> Self {
        Self::new(max_size, false)
    }

    fn new(max_size: usize, dot_transparency: bool) -> Self {
        Self {
            state: State::LineStart,
            dot_transparency,
            max_size,
            out: Vec::with_capacity(max_size.min(64 * 1024)),
            emitted: 0,
            overflow: false,
            issue: NewlineIssue::default(),
        }
    }

    /// Content received so far, with CRLF line ends.
    pub fn content(&self) -> &[u8] {
        &self.out
    }

    /// Takes the content out of the receiver.
    pub fn into_content(self) -> Vec<u8> {
        self.out
    }

    /// Takes the output held so far (the session writes it elsewhere); later output starts a
    /// new buffer.
    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Octets held in the output buffer now.
    pub fn buffered(&self) -> usize {
        self.out.len()
    }

    /// Octets of content in all (taken out or still held).
    pub fn size(&self) -> usize {
        self.emitted
    }

    /// True if the content passed `max_size` (the message must be refused with 552).
    pub fn overflowed(&self) -> bool {
        self.overflow
    }

    /// Bare CR / LF seen so far.
    pub fn newline_issue(&self) -> NewlineIssue {
        self.issue
    }

    fn emit(&mut self, b: &[u8]) {
        if self.overflow {
            return;
        }
        if self.emitted + b.len() > self.max_size {
            self.overflow = true;
            self.out = Vec::new();
            return;
        }
        self.emitted += b.len();
        self.out.extend_from_slice(b);
    }

    /// Feeds octets. For DATA, returns [`DataEvent::End`] when the terminator is found;
    /// for BDAT it always consumes everything (the session counts chunk sizes).
    pub fn ingest(&mut self, input: &[u8]) -> DataEvent {
        let mut i = 0;
        while i < input.len() {
            // Fast path: copy a run of ordinary octets inside a line.
            if self.state == State::Mid {
                let run_end =
                    memchr::memchr2(b'\r', b'\n', &input[i..]).map_or(input.len(), |p| i + p);
                if run_end > i {
                    self.emit(&input[i..run_end]);
                    i = run_end;
                    continue;
                }
            }
            let b = input[i];
            i += 1;
            match (self.state, b) {
                (State::LineStart, b'.') if self.dot_transparency => self.state = State::Dot,
                (State::LineStart | State::Mid, b'\r') => self.state = State::Cr,
                (State::LineStart | State::Mid, b'\n') => self.bare_lf(),
                (State::LineStart | State::Mid, _) => {
                    self.emit(&[b]);
                    self.state = State::Mid;
                }
                (State::Cr, b'\n') => {
                    self.emit(b"\r\n");
                    self.state = State::LineStart;
                }
                (State::Cr, b'\r') => {
                    self.bare_cr();
                    self.state = State::Cr;
                }
                (State::Cr, _) => {
                    self.bare_cr();
                    i -= 1; // reprocess this octet inside the new line
                    self.state = State::Mid;
                }
                (State::Dot, b'\r') => self.state = State::DotCr,
                (State::Dot, _) => {
                    // RFC 5321 §4.5.2: the leading (stuffed) dot is dropped.
                    self.state = State::Mid;
                    i -= 1;
                }
                (State::DotCr, b'\n') => {
                    self.state = State::LineStart;
                    return DataEvent::End { consumed: i };
                }
                (State::DotCr, _) => {
                    // ".<CR>x": not an end. The dot was stuffing; the CR is bare.
                    self.bare_cr();
                    self.state = State::Mid;
                    i -= 1;
                }
            }
        }
        DataEvent::NeedMore
    }

    /// Ends a BDAT LAST transfer: a CR left pending at the very end is a bare CR.
    pub fn finish_chunks(&mut self) {
        if self.state == State::Cr {
            self.bare_cr();
            self.state = State::LineStart;
        }
    }

    fn bare_lf(&mut self) {
        self.issue.bare_lf = true;
        self.emit(b"\r\n");
        // Not a real line start: a dot after a bare LF is content, never a terminator.
        self.state = State::Mid;
    }

    fn bare_cr(&mut self) {
        self.issue.bare_cr = true;
        self.emit(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Output taken out part by part adds up to the content, and the size limit counts it.
    #[test]
    fn taken_output_counts_towards_the_limit() {
        let mut r = DataReceiver::for_data(20);
        assert_eq!(r.ingest(b"0123456789\r\n"), DataEvent::NeedMore);
        let first = r.take_output();
        assert_eq!(first, b"0123456789\r\n");
        assert_eq!((r.buffered(), r.size()), (0, 12));
        assert_eq!(r.ingest(b"..ab\r\n"), DataEvent::NeedMore);
        assert_eq!(r.content(), b".ab\r\n");
        assert!(!r.overflowed());
        r.ingest(b"0123456789\r\n.\r\n");
        assert!(r.overflowed(), "12 + 5 + 12 octets is over 20");
    }

    fn run(input: &[u8]) -> (Vec<u8>, Option<usize>, NewlineIssue) {
        let mut r = DataReceiver::for_data(1 << 20);
        let ev = r.ingest(input);
        let consumed = match ev {
            DataEvent::End { consumed } => Some(consumed),
            DataEvent::NeedMore => None,
        };
        let issue = r.newline_issue();
        (r.into_content(), consumed, issue)
    }

    #[test]
    fn simple_end_and_pipelined_rest() {
        let input = b"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n";
        let (out, consumed, issue) = run(input);
        assert_eq!(out, b"Subject: x\r\n\r\nbody\r\n");
        assert_eq!(&input[consumed.unwrap()..], b"QUIT\r\n");
        assert_eq!(issue, NewlineIssue::default());
    }

    #[test]
    fn dot_unstuffing() {
        let (out, c, _) = run(b"..leading\r\n.x\r\n...\r\n.\r\n");
        assert!(c.is_some());
        assert_eq!(out, b".leading\r\nx\r\n..\r\n");
    }

    #[test]
    fn empty_message() {
        let (out, c, _) = run(b".\r\n");
        assert_eq!((out.as_slice(), c), (&b""[..], Some(3)));
    }

    #[test]
    fn smuggling_variants_never_end_data() {
        let variants: &[&[u8]] = &[
            b"a\n.\nMAIL FROM:<x@evil.test>\r\n",
            b"a\n.\r\nMAIL FROM:<x@evil.test>\r\n",
            b"a\r\n.\nMAIL FROM:<x@evil.test>\r\n",
            b"a\r.\rMAIL FROM:<x@evil.test>\r\n",
            b"a\r.\r\nMAIL FROM:<x@evil.test>\r\n",
            b"a\r\n.\rMAIL FROM:<x@evil.test>\r\n",
            b"a\n.\rMAIL FROM:<x@evil.test>\r\n",
        ];
        for v in variants {
            let (out, consumed, issue) = run(v);
            assert_eq!(
                consumed,
                None,
                "{:?} ended data",
                String::from_utf8_lossy(v)
            );
            assert!(
                issue.bare_lf || issue.bare_cr,
                "{:?} not flagged",
                String::from_utf8_lossy(v)
            );
            // Stored content only ever has CRLF line ends.
            let s = String::from_utf8(out).unwrap();
            assert!(!s.replace("\r\n", "").contains(['\r', '\n']), "{s:?}");
        }
    }

    #[test]
    fn byte_at_a_time_matches_whole() {
        let input = b"H: v\r\n..x\r\nline\nbare\r\r\n.\r\nNEXT";
        let mut r = DataReceiver::for_data(1 << 20);
        let mut end = None;
        for (n, b) in input.iter().enumerate() {
            if let DataEvent::End { consumed } = r.ingest(&[*b]) {
                assert_eq!(consumed, 1);
                end = Some(n + 1);
                break;
            }
        }
        let (whole, c, _) = run(input);
        assert_eq!(end, c);
        assert_eq!(r.content(), whole.as_slice());
    }

    #[test]
    fn size_limit_keeps_parsing_but_stores_nothing() {
        let mut r = DataReceiver::for_data(10);
        assert_eq!(r.ingest(b"0123456789abcdef\r\n"), DataEvent::NeedMore);
        assert!(r.overflowed());
        assert!(r.content().is_empty());
        assert_eq!(r.ingest(b".\r\n"), DataEvent::End { consumed: 3 });
    }

    #[test]
    fn bdat_is_raw_but_normalised() {
        let mut r = DataReceiver::for_bdat(100);
        assert_eq!(r.ingest(b".\r\nx\r"), DataEvent::NeedMore);
        r.ingest(b"\ny\n");
        r.ingest(b"z\r");
        r.finish_chunks();
        assert_eq!(r.content(), b".\r\nx\r\ny\r\nz\r\n");
    }
}
