//! Live state of the index: per-mailbox locks, watch channels that wake IDLE sessions, and
//! the inotify reader that reports changes other programs make to a Maildir.

use super::*;

#[derive(Default)]
pub(super) struct Live {
    pub(super) locks: HashMap<u64, Arc<Mutex<()>>>,
    pub(super) scanned: HashMap<u64, (Option<SystemTime>, Option<SystemTime>)>,
    pub(super) watchers: HashMap<u64, tokio::sync::watch::Sender<u64>>,
    pub(super) paths: HashMap<PathBuf, u64>,
    /// Per mailbox, the `fts_dead` count at which pruning is considered next.
    pub(super) fts_check: HashMap<u64, u32>,
    /// Per (mailbox, user), how many times that user's private \Seen set has changed since
    /// start-up: sessions compare it to know when to re-read the set.
    pub(super) seen_gen: HashMap<(u64, String), u64>,
    /// Per owner, a counter bumped when the owner's mailboxes are created, deleted or
    /// renamed, subscriptions change, or metadata is written (IMAP NOTIFY waits on it).
    pub(super) trees: HashMap<String, tokio::sync::watch::Sender<u64>>,
    /// Mailboxes whose full-text index is being rebuilt.
    pub(super) fts_rebuilding: std::collections::HashSet<u64>,
    /// Per mailbox, messages added since its pending entries were last turned into
    /// postings (counted since start-up), and when the last one was added.
    pub(super) fts_pending: HashMap<u64, (usize, std::time::Instant)>,
    /// Mailboxes whose pending entries a background pass is turning into postings.
    pub(super) fts_inverting: std::collections::HashSet<u64>,
}

impl Live {
    /// Wakes the sessions watching mailbox `id`, if any.
    pub(super) fn wake(&self, id: u64) {
        if let Some(w) = self.watchers.get(&id) {
            w.send_modify(|v| *v += 1);
        }
    }
}

impl MailboxIndex {
    pub(super) fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock that serialises changes to mailbox `id` (UID assignment, expunge, flags).
    pub fn lock(&self, id: u64) -> Arc<Mutex<()>> {
        self.live().locks.entry(id).or_default().clone()
    }

    /// Runs `f` under mailbox `id`'s lock with the mailbox's current meta, read after the lock
    /// was taken; an error when the mailbox no longer exists.
    pub fn with_locked_meta<T>(
        &self,
        id: u64,
        user: &str,
        name: &str,
        f: impl FnOnce(&mut MailboxMeta) -> Result<T>,
    ) -> Result<T> {
        let lock = self.lock(id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut meta = self
            .get(user, name)?
            .ok_or_else(|| anyhow::anyhow!("mailbox vanished"))?;
        f(&mut meta)
    }

    /// A receiver that changes whenever mailbox `id` changes; `path` is its folder, so that
    /// deliveries into it ([`MailboxIndex::touch_path`]) wake the watchers too.
    /// Other programs' changes to the folder's `new/` and `cur/` wake them too (inotify; where
    /// that is unavailable, IDLE's periodic check finds them).
    pub fn watch(&self, id: u64, path: &Path) -> tokio::sync::watch::Receiver<u64> {
        let rx = {
            let mut live = self.live();
            live.paths.insert(path.to_path_buf(), id);
            live.watchers
                .entry(id)
                .or_insert_with(|| tokio::sync::watch::channel(0).0)
                .subscribe()
        };
        if let Some(dw) = self.dirwatch()
            && let Err(e) = dw.add(id, path)
        {
            tracing::debug!(path = %path.display(), "no inotify watch, IDLE polls: {e}");
        }
        rx
    }

    /// The inotify watcher, started on first use; it wakes a mailbox's watchers as
    /// [`Self::notify`] does, and stops once this index is dropped.
    pub(super) fn dirwatch(&self) -> Option<&crate::dirwatch::DirWatch> {
        self.dirwatch
            .get_or_init(|| {
                let live = Arc::downgrade(&self.live);
                crate::dirwatch::DirWatch::start(move |id| {
                    let Some(live) = live.upgrade() else {
                        return false;
                    };
                    live.lock().unwrap_or_else(|p| p.into_inner()).wake(id);
                    true
                })
                .map_err(|e| tracing::warn!("inotify unavailable, IDLE polls instead: {e}"))
                .ok()
            })
            .as_ref()
    }

    /// A receiver that changes whenever `owner`'s mailbox tree, subscriptions or metadata
    /// change (see [`Self::touch_tree`]).
    pub fn watch_tree(&self, owner: &str) -> tokio::sync::watch::Receiver<u64> {
        self.live()
            .trees
            .entry(owner.to_string())
            .or_insert_with(|| tokio::sync::watch::channel(0).0)
            .subscribe()
    }

    /// Wakes whoever watches `owner`'s tree. The index calls it for create, delete, rename
    /// and subscriptions; writers of metadata call it themselves (the index keys metadata by
    /// mailbox id, not owner).
    pub fn touch_tree(&self, owner: &str) {
        let mut live = self.live();
        if let Some(w) = live.trees.get(owner) {
            if w.receiver_count() == 0 {
                live.trees.remove(owner);
            } else {
                w.send_modify(|v| *v += 1);
            }
        }
    }

    /// Wakes the sessions watching mailbox `id`.
    pub fn notify(&self, id: u64) {
        self.live().wake(id);
    }

    /// Called after a delivery into the Maildir folder `path`: wakes its watchers, if any.
    pub fn touch_path(&self, path: &Path) {
        let live = self.live();
        if let Some(id) = live.paths.get(path) {
            live.wake(*id);
        }
    }
}
