//! Private \Seen (per-user read state on shared mailboxes, `imap.shared_seen` off).

use postcore_storage::mailbox::flag;

/// The flags a user sees: with a private \Seen set, its membership replaces the shared bit.
pub(super) fn overlay(uid: u32, flags: u8, private: Option<&std::collections::HashSet<u32>>) -> u8 {
    match private {
        Some(set) if set.contains(&uid) => flags | flag::SEEN,
        Some(_) => flags & !flag::SEEN,
        None => flags,
    }
}
