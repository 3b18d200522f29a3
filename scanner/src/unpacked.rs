//! What the archive readers that unpack within a byte budget give the content walk.

/// One member an archive reader unpacked (ARJ, SIS, CHM).
#[derive(Debug, PartialEq, Eq)]
pub struct Member {
    /// Its name in the archive.
    pub name: String,
    /// Its octets: at most what the budget allowed (see [`Member::capped`]).
    pub data: Vec<u8>,
    /// True when it would unpack past the budget it was given.
    pub capped: bool,
    /// True when it is encrypted (`data` is then empty).
    pub encrypted: bool,
}

/// A reader: the members of `data`, at most `max`, with at most `budget` octets unpacked in
/// all; `None` when `data` is not of its format.
pub type Reader = fn(data: &[u8], max: usize, budget: u64) -> Option<Vec<Member>>;

/// At most `budget` octets of `stored`, and whether it held more.
pub fn take_within(stored: &[u8], budget: u64) -> (Vec<u8>, bool) {
    let cap = usize::try_from(budget).unwrap_or(usize::MAX);
    (stored[..stored.len().min(cap)].to_vec(), stored.len() > cap)
}

/// What a decoder gives, to its end or to `budget` octets, and whether it had more. What it
/// gave before any damage is kept.
pub fn read_within(decoder: impl std::io::Read, budget: u64) -> (Vec<u8>, bool) {
    use std::io::Read;
    let cap = usize::try_from(budget).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let _ = decoder.take(budget.saturating_add(1)).read_to_end(&mut out);
    let capped = out.len() > cap;
    out.truncate(cap);
    (out, capped)
}

/// A writer for decoders that write instead of being read (lzma-rs): keeps at most `cap`
/// octets and fails past them, which ends the decoder; `hit` tells a stream that went past
/// the cap from one that failed for another reason.
pub struct CappedWriter {
    /// What was written, at most `cap` octets.
    pub out: Vec<u8>,
    cap: usize,
    /// True once a write went past the cap.
    pub hit: bool,
}

impl CappedWriter {
    /// An empty writer that keeps at most `cap` octets.
    pub fn new(cap: usize) -> CappedWriter {
        CappedWriter {
            out: Vec::new(),
            cap,
            hit: false,
        }
    }
}

impl std::io::Write for CappedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let room = self.cap - self.out.len();
        if buf.len() > room {
            self.out.extend_from_slice(&buf[..room]);
            self.hit = true;
            return Err(std::io::Error::other("unpacking budget reached"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
