//! Mailbox access keys for IMAP URLAUTH (RFC 4467 §5): one random 256-bit key per mailbox,
//! made on first use; an authorized URL's token is a MAC of the URL under it, so resetting
//! the key (RESETKEY) revokes every URL issued for the mailbox. Key: `K<id:8>`; DELETE
//! drops it with the mailbox's other keys.

use super::MailboxIndex;
use super::keys::id_prefix;
use crate::store::{CF_MAILBOX, Op};
use anyhow::Result;
use rand::RngCore;

/// Octets of a mailbox access key.
pub const KEY_LEN: usize = 32;

impl MailboxIndex {
    /// The access key of mailbox `id`, made (and stored durably) if it has none yet.
    pub fn urlauth_key(&self, id: u64) -> Result<[u8; KEY_LEN]> {
        let key = id_prefix(b'K', id);
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = self.store.get(CF_MAILBOX, &key)?
            && let Ok(k) = <[u8; KEY_LEN]>::try_from(v.as_slice())
        {
            return Ok(k);
        }
        let mut k = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        self.store
            .commit_blocking(vec![Op::Put(CF_MAILBOX, key, k.to_vec())])?;
        Ok(k)
    }

    /// The access key of mailbox `id` if it has one (URLs are only checked, never made).
    pub fn urlauth_key_if_any(&self, id: u64) -> Result<Option<[u8; KEY_LEN]>> {
        Ok(self
            .store
            .get(CF_MAILBOX, &id_prefix(b'K', id))?
            .and_then(|v| <[u8; KEY_LEN]>::try_from(v.as_slice()).ok()))
    }

    /// Forgets mailbox `id`'s access key: the URLs made with it stop working (RESETKEY).
    pub fn urlauth_reset(&self, id: u64) -> Result<()> {
        self.store
            .commit_blocking(vec![Op::Delete(CF_MAILBOX, id_prefix(b'K', id))])
    }
}

#[cfg(test)]
mod tests {
    use crate::store::Store;

    #[test]
    fn keys_are_made_once_and_reset() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db")).expect("open");
        let idx = super::MailboxIndex::new(store).expect("index");
        assert_eq!(idx.urlauth_key_if_any(7).expect("read"), None);
        let k = idx.urlauth_key(7).expect("key");
        assert_eq!(idx.urlauth_key(7).expect("again"), k, "kept");
        assert_ne!(idx.urlauth_key(8).expect("other"), k, "one per mailbox");
        idx.urlauth_reset(7).expect("reset");
        assert_eq!(idx.urlauth_key_if_any(7).expect("read"), None);
        assert_ne!(idx.urlauth_key(7).expect("new"), k);
    }
}
