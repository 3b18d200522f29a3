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
