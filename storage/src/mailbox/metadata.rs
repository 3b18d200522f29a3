//! IMAP METADATA (RFC 5464) entries, kept per mailbox id (so RENAME keeps them and DELETE
//! drops them with the mailbox's other keys) — id 0 holds the server entries.
//!
//! Keys: `M<id:8>p<user>\0<entry>` for `/private/…` entries (each user's own), and
//! `M<id:8>s\0<entry>` for `/shared/…` entries; entry names lower-case.

use super::MailboxIndex;
use super::keys::id_prefix;
use crate::store::{CF_MAILBOX, Op};
use anyhow::Result;

/// The key prefix of one scope: the user's private entries of mailbox `id`, or (`None`)
/// its shared ones.
fn scope_prefix(id: u64, user: Option<&str>) -> Vec<u8> {
    let mut k = id_prefix(b'M', id);
    match user {
        Some(u) => {
            k.push(b'p');
            k.extend_from_slice(u.as_bytes());
        }
        None => k.push(b's'),
    }
    k.push(0);
    k
}

/// The scope of an entry name: `Some(user)` for `/private/…`, `None` for `/shared/…`.
fn scope_of<'u>(entry: &str, user: &'u str) -> Option<&'u str> {
    entry.starts_with("/private/").then_some(user)
}

impl MailboxIndex {
    /// Every entry of `user`'s view of mailbox `id` in the scope of `entry` (private or
    /// shared), as (entry name, value), by name.
    pub fn metadata_scope(
        &self,
        id: u64,
        user: &str,
        entry: &str,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        let prefix = scope_prefix(id, scope_of(entry, user));
        Ok(self
            .store
            .scan_prefix(CF_MAILBOX, &prefix)?
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k[prefix.len()..]).into_owned(), v))
            .collect())
    }

    /// Sets (`Some`) or removes (`None`) entries of mailbox `id` for `user`, in one durable
    /// write.
    pub fn metadata_set(
        &self,
        id: u64,
        user: &str,
        entries: &[(String, Option<Vec<u8>>)],
    ) -> Result<()> {
        let ops = entries
            .iter()
            .map(|(entry, value)| {
                let mut k = scope_prefix(id, scope_of(entry, user));
                k.extend_from_slice(entry.as_bytes());
                match value {
                    Some(v) => Op::Put(CF_MAILBOX, k, v.clone()),
                    None => Op::Delete(CF_MAILBOX, k),
                }
            })
            .collect();
        self.store.commit_blocking(ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[test]
    fn scopes_are_kept_apart_and_go_with_the_mailbox() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("db")).expect("open");
        let idx = MailboxIndex::new(store).expect("index");
        let root = dir.path().join("mail");
        let meta = idx.create("u", "Box", &root, None).expect("create");
        let set = |user: &str, e: &str, v: Option<&str>| {
            idx.metadata_set(
                meta.id,
                user,
                &[(e.into(), v.map(|v| v.as_bytes().to_vec()))],
            )
            .expect("set")
        };
        set("u", "/private/comment", Some("mine"));
        set("u", "/shared/comment", Some("ours"));
        set("v", "/private/comment", Some("theirs"));
        let mine = idx.metadata_scope(meta.id, "u", "/private/x").expect("get");
        assert_eq!(mine, [("/private/comment".to_string(), b"mine".to_vec())]);
        let shared = idx.metadata_scope(meta.id, "v", "/shared/x").expect("get");
        assert_eq!(shared, [("/shared/comment".to_string(), b"ours".to_vec())]);
        set("u", "/private/comment", None);
        assert!(
            idx.metadata_scope(meta.id, "u", "/private/x")
                .expect("get")
                .is_empty()
        );
        assert!(
            idx.metadata_scope(0, "u", "/shared/x")
                .expect("server")
                .is_empty()
        );
        idx.delete("u", "Box").expect("delete");
        assert!(
            idx.metadata_scope(meta.id, "v", "/private/x")
                .expect("get")
                .is_empty()
        );
    }
}
