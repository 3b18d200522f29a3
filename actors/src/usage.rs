//! Per-mailbox usage (octets and messages), for quotas. Kept in memory, persisted to the
//! `usage` column family, and computed from the Maildir on first use of a mailbox.

use postcore_storage::directory::Mailbox;
use postcore_storage::store::{CF_USAGE, Op, Store};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Octets and message count of a mailbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Octets stored.
    pub bytes: u64,
    /// Messages stored.
    pub messages: u64,
}

/// Usage of every mailbox, shared by all workers.
pub struct UsageTracker {
    store: Store,
    mail_root: PathBuf,
    cache: Mutex<HashMap<Mailbox, Usage>>,
}

/// The Maildir root of a mailbox under the mail root.
pub fn mailbox_path(mail_root: &Path, mb: &Mailbox) -> PathBuf {
    match mb {
        Mailbox::User(u) => mail_root.join("users").join(u),
        Mailbox::Public(p) => mail_root.join("public").join(p),
    }
}

fn scan(dir: &Path, acc: &mut Usage) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() && (name == "new" || name == "cur" || name.starts_with('.')) {
            scan(&e.path(), acc);
        } else if ft.is_file() && (dir.ends_with("new") || dir.ends_with("cur")) {
            acc.bytes += e.metadata().map(|m| m.len()).unwrap_or(0);
            acc.messages += 1;
        }
    }
}

impl UsageTracker {
    /// A tracker over `mail_root`.
    pub fn new(store: Store, mail_root: PathBuf) -> Self {
        UsageTracker {
            store,
            mail_root,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn key(mb: &Mailbox) -> Vec<u8> {
        mb.to_string().into_bytes()
    }

    /// Current usage of a mailbox.
    pub fn get(&self, mb: &Mailbox) -> Usage {
        self.load(mb).0
    }

    /// Usage from the cache, the store, or a scan of the Maildir (then `true`: the scan
    /// already counts whatever the Maildir holds right now).
    fn load(&self, mb: &Mailbox) -> (Usage, bool) {
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(u) = c.get(mb) {
            return (*u, false);
        }
        let (u, scanned) = match self.store.get(CF_USAGE, &Self::key(mb)).ok().flatten() {
            Some(v) => (serde_json::from_slice(&v).unwrap_or_default(), false),
            None => {
                let mut u = Usage::default();
                scan(&mailbox_path(&self.mail_root, mb), &mut u);
                (u, true)
            }
        };
        c.insert(mb.clone(), u);
        (u, scanned)
    }

    /// Adds one delivered message (already in the Maildir).
    pub fn add(&self, mb: &Mailbox, bytes: u64) {
        let (_, scanned) = self.load(mb);
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let u = c.entry(mb.clone()).or_default();
        if !scanned {
            u.bytes += bytes;
            u.messages += 1;
        }
        let v = serde_json::to_vec(u).unwrap_or_default();
        if let Err(e) = self
            .store
            .write_relaxed(vec![Op::Put(CF_USAGE, Self::key(mb), v)])
        {
            tracing::warn!(mailbox = %mb, "usage counter not saved: {e:#}");
        }
    }

    /// Removes one expunged message (already gone from the Maildir).
    pub fn remove(&self, mb: &Mailbox, bytes: u64) {
        if self.load(mb).1 {
            return;
        }
        let mut c = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let u = c.entry(mb.clone()).or_default();
        u.bytes = u.bytes.saturating_sub(bytes);
        u.messages = u.messages.saturating_sub(1);
        let v = serde_json::to_vec(u).unwrap_or_default();
        if let Err(e) = self
            .store
            .write_relaxed(vec![Op::Put(CF_USAGE, Self::key(mb), v)])
        {
            tracing::warn!(mailbox = %mb, "usage counter not saved: {e:#}");
        }
    }

    /// Drops the cached and stored usage so the next read rescans the Maildir (after a
    /// whole folder was removed).
    pub fn forget(&self, mb: &Mailbox) {
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(mb);
        let _ = self
            .store
            .write_relaxed(vec![Op::Delete(CF_USAGE, Self::key(mb))]);
    }

    /// True if `bytes` more would exceed `quota` (octets; `None` = unlimited).
    pub fn would_exceed(&self, mb: &Mailbox, bytes: u64, quota: Option<u64>) -> bool {
        quota.is_some_and(|q| self.get(mb).bytes + bytes > q)
    }
}
