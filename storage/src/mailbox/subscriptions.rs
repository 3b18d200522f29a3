//! Subscriptions (RFC 9051 §6.3.7, §6.3.8): each user's set of mailbox names, kept apart from
//! the mailboxes themselves. Creating a mailbox does not subscribe it, deleting it does not
//! unsubscribe it, and a name can be subscribed that does not exist (yet, or any more).
//!
//! Keys: `u<user>\0<name>` → (empty). Indexes written before this set existed kept a
//! `subscribed` flag in each mailbox's meta; [`MailboxIndex::new`] carries those flags over
//! once (marker key `U1`).

use super::{CF_MAILBOX, MailboxIndex, MailboxMeta};
use crate::store::{Op, Store};
use anyhow::{Context, Result};
use std::collections::BTreeSet;

/// Set once the meta flags have been carried over.
const MIGRATED: &[u8] = b"U1";

fn user_prefix(user: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(user.len() + 2);
    k.push(b'u');
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k
}

fn sub_key(user: &str, name: &str) -> Vec<u8> {
    let mut k = user_prefix(user);
    k.extend_from_slice(name.as_bytes());
    k
}

/// Carries the `subscribed` flags of mailboxes indexed before the set existed into it, once.
pub(super) fn migrate(store: &Store) -> Result<()> {
    if store.get(CF_MAILBOX, MIGRATED)?.is_some() {
        return Ok(());
    }
    let mut ops = Vec::new();
    for (k, v) in store.scan_prefix(CF_MAILBOX, b"b")? {
        let Ok(meta) = serde_json::from_slice::<MailboxMeta>(&v) else {
            continue;
        };
        // `b<user>\0<name>`: the user is up to the first NUL (logins hold none).
        let rest = &k[1..];
        if meta.subscribed && rest.contains(&0) {
            let mut key = vec![b'u'];
            key.extend_from_slice(rest);
            ops.push(Op::Put(CF_MAILBOX, key, Vec::new()));
        }
    }
    ops.push(Op::Put(CF_MAILBOX, MIGRATED.to_vec(), Vec::new()));
    store
        .write_relaxed(ops)
        .context("carrying subscriptions over")
}

impl MailboxIndex {
    /// The names `user` is subscribed to, sorted.
    pub fn subscriptions(&self, user: &str) -> Result<BTreeSet<String>> {
        let prefix = user_prefix(user);
        Ok(self
            .store
            .scan_prefix(CF_MAILBOX, &prefix)?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k[prefix.len()..]).into_owned())
            .collect())
    }

    /// Subscribes `user` to `name` (`on`) or unsubscribes it.
    pub fn set_subscribed(&self, user: &str, name: &str, on: bool) -> Result<()> {
        let key = sub_key(user, name);
        let op = if on {
            Op::Put(CF_MAILBOX, key, Vec::new())
        } else {
            Op::Delete(CF_MAILBOX, key)
        };
        self.store.write_relaxed(vec![op])?;
        self.touch_tree(user);
        Ok(())
    }
}
