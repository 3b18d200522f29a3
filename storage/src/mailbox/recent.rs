//! \Recent (RFC 3501 §2.3.2): the lowest UID no session has been told about yet.

use super::*;

impl MailboxIndex {
    /// RFC 3501 §2.3.2 \Recent: the lowest UID of mailbox `id` that no session has been
    /// told about yet (1 for a mailbox no session has selected read-write).
    pub fn first_recent(&self, id: u64) -> Result<u32> {
        Ok(self
            .store
            .get(CF_MAILBOX, &id_prefix(b'r', id))?
            .and_then(|v| v.as_slice().try_into().ok())
            .map(u32::from_be_bytes)
            .unwrap_or(1))
    }

    /// Claims the messages of mailbox `id` below `uidnext` for the calling session (RFC 3501
    /// §2.3.2: the first session told about a message sees it \Recent, later ones do not).
    /// Returns the first UID claimed: the session's recent messages are those from it up to
    /// `uidnext`, none when it is not below `uidnext` (another session was first).
    pub fn claim_recent(&self, id: u64, uidnext: u32) -> Result<u32> {
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let first = self.first_recent(id)?;
        if first < uidnext {
            self.store.write_relaxed(vec![Op::Put(
                CF_MAILBOX,
                id_prefix(b'r', id),
                uidnext.to_be_bytes().to_vec(),
            )])?;
        }
        Ok(first)
    }
}
