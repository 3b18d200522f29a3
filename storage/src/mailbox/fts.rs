//! The full-text index: posting lists per (mailbox, word), looked up by SEARCH BODY/TEXT and
//! pruned of expunged UIDs in a background pass.
//!
//! Substring search (RFC 9051 §6.4.4: `sdfghjk` finds `asdfghjkl`) looks for the piece in
//! the mailbox's vocabulary, then reads the posting lists of the words that contain it.
//! The vocabulary is read from the index once (one pass over the mailbox's keys) and kept in
//! memory, kept exact by every indexing write after that (inversion and rebuild are the only
//! writers of postings); a write during the pass makes that pass's result used once and not
//! kept. At most [`MAX_VOCAB_WORDS`] words are kept over all mailboxes, least recently used
//! mailboxes dropped first.
//!
//! Adding a message writes one small pending entry (`w<id><uid>` → its folder), not its
//! words: a lookup first reads the mailbox's pending messages and turns their words into
//! postings in bulk (one merge per word for the whole batch,
//! [`MailboxIndex::invert_pending`]), and a background pass does the same once
//! [`INVERT_AT`] messages wait and deliveries to the mailbox pause for [`INVERT_QUIET`]
//! (at once from [`INVERT_MAX`]), so the pending set stays bounded without a search and a
//! burst of mail is not slowed by indexing it — as Dovecot indexes on search or, with
//! `fts_autoindex`, in its indexer processes after delivery. Answers are the same as
//! indexing each message at once; a delivery into a mailbox IMAP knows neither parses nor
//! tokenizes its body (at 100 KiB that was about 15 % of the receive path's CPU) and
//! writes a few octets instead of its word list.
//!
//! Words are kept in their i;unicode-casemap form (RFC 5051; `text::tokens`). An index
//! written in an older form ([`FTS_FORMAT`]) is rebuilt in the background the first time
//! its mailbox is synced; searches read the messages meanwhile.

use super::*;
use std::collections::HashSet;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

/// The form of the index's words: 1 is i;unicode-casemap (titlecase, then NFKD).
pub const FTS_FORMAT: u8 = 1;

/// The most vocabulary words kept in memory over all mailboxes.
pub const MAX_VOCAB_WORDS: usize = 4_000_000;

/// First octet of a pending entry that holds the message's folder instead of its words
/// (word lists never start with a control character).
pub(super) const PENDING_FILE: u8 = 1;

/// The pending entry of a message delivered into `folder`: its words are read from the file
/// when the entry is inverted, not on the delivery's path. A folder under `base` (the
/// directory holding the database's directory: the data directory) is kept relative to it,
/// so that entries still lead to their files after the data directory was moved.
pub(super) fn pending_entry(folder: &Path, base: &Path) -> Vec<u8> {
    let mut v = vec![PENDING_FILE];
    let kept = folder.strip_prefix(base).unwrap_or(folder);
    v.extend_from_slice(kept.as_os_str().as_bytes());
    v
}

impl MailboxIndex {
    /// What relative folders in pending entries are relative to (see [`pending_entry`]).
    pub(super) fn entry_base(&self) -> PathBuf {
        let dir = self.store.dir();
        dir.parent().unwrap_or(dir).to_path_buf()
    }
}

/// Messages added to one mailbox whose words wait before a background pass inverts them...
pub const INVERT_AT: usize = 4096;

/// ...once no message has been added to it for this long (indexing yields to a burst of
/// deliveries, as Dovecot's indexer runs after them)...
pub const INVERT_QUIET: Duration = Duration::from_secs(1);

/// ...or at once when this many wait, however busy the mailbox (the first search of a
/// mailbox never has more to invert than this, about 3 s of work at 100 KiB a message).
pub const INVERT_MAX: usize = 4 * INVERT_AT;

/// Whether a background pass may start now: `waiting` messages wait and the last one was
/// added `since_last` ago.
pub fn pass_may_start(waiting: usize, since_last: Duration) -> bool {
    waiting >= INVERT_MAX || (waiting >= INVERT_AT && since_last >= INVERT_QUIET)
}

/// Pending messages taken per inversion step...
const INVERT_BATCH: usize = 1024;

/// ...and at most this many octets of their words (at least one message's): a step's memory
/// stays bounded however large the messages' vocabularies are (up to 50,000 words each).
const INVERT_BYTES: usize = 16 << 20;

/// One mailbox's vocabulary: its words once read, a count of indexing writes (to tell a
/// pass that raced one), and when it was last used.
#[derive(Default)]
struct Vocab {
    words: Option<Arc<HashSet<Box<str>>>>,
    writes: u64,
    used: Option<Instant>,
}

/// The vocabularies of mailboxes, by id.
#[derive(Default)]
pub(super) struct Vocabularies(HashMap<u64, Vocab>);

impl MailboxIndex {
    /// UIDs of mailbox `id` whose text has a word starting with `word` (in its casemap form,
    /// `text::casemap`). Takes the mailbox lock (to invert pending words): not to be called
    /// with it held.
    pub fn fts_lookup(&self, id: u64, word: &str) -> Result<std::collections::HashSet<u32>> {
        self.invert_pending(id)?;
        let mut out = std::collections::HashSet::new();
        for (_, v) in self.store.scan_prefix(CF_FTS, &fts_key(id, word))? {
            out.extend(
                v.chunks_exact(4)
                    .filter_map(|c| c.try_into().ok())
                    .map(u32::from_be_bytes),
            );
        }
        Ok(out)
    }

    /// The UIDs of messages with an indexed word that contains `piece` (casemap form): the
    /// substring form of [`MailboxIndex::fts_lookup`], over the mailbox's whole vocabulary
    /// (RFC 9051 §6.4.4: BODY and TEXT match substrings, `sdfghjk` in `asdfghjkl`). Takes
    /// the mailbox lock, as [`MailboxIndex::fts_lookup`] does.
    pub fn fts_lookup_containing(
        &self,
        id: u64,
        piece: &str,
    ) -> Result<std::collections::HashSet<u32>> {
        self.invert_pending(id)?;
        let words = self.vocabulary(id)?;
        let finder = memchr::memmem::Finder::new(piece.as_bytes());
        let mut out = std::collections::HashSet::new();
        for w in words.iter().filter(|w| finder.find(w.as_bytes()).is_some()) {
            if let Some(v) = self.store.get(CF_FTS, &fts_key(id, w))? {
                out.extend(
                    v.chunks_exact(4)
                        .filter_map(|c| c.try_into().ok())
                        .map(u32::from_be_bytes),
                );
            }
        }
        Ok(out)
    }

    /// The words of mailbox `id`'s full-text index (see the module comment).
    fn vocabulary(&self, id: u64) -> Result<Arc<HashSet<Box<str>>>> {
        let writes = {
            let mut v = self.vocab.lock().unwrap_or_else(|p| p.into_inner());
            let e = v.0.entry(id).or_default();
            e.used = Some(Instant::now());
            if let Some(w) = &e.words {
                return Ok(w.clone());
            }
            e.writes
        };
        let prefix = id.to_be_bytes();
        let mut words = HashSet::new();
        self.store.for_each_prefix(CF_FTS, &prefix, |k, _| {
            words.insert(String::from_utf8_lossy(&k[prefix.len()..]).into());
            Ok(())
        })?;
        let words = Arc::new(words);
        let mut v = self.vocab.lock().unwrap_or_else(|p| p.into_inner());
        let fits = words.len() <= MAX_VOCAB_WORDS;
        if fits
            && v.0
                .get(&id)
                .is_some_and(|e| e.writes == writes && e.words.is_none())
        {
            v.make_room(words.len());
            if let Some(e) = v.0.get_mut(&id) {
                e.words = Some(words.clone());
            }
        }
        Ok(words)
    }

    /// Forgets a deleted mailbox's vocabulary.
    pub(super) fn vocabulary_forget(&self, id: u64) {
        let mut v = self.vocab.lock().unwrap_or_else(|p| p.into_inner());
        v.0.remove(&id);
    }

    /// Keeps a mailbox's vocabulary exact after an indexing write of `words`.
    pub(super) fn vocabulary_add(&self, id: u64, words: Vec<String>) {
        let mut v = self.vocab.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = v.0.get_mut(&id) else {
            return;
        };
        e.writes += 1;
        if let Some(set) = e.words.as_mut() {
            let set = Arc::make_mut(set);
            set.extend(words.into_iter().map(String::into_boxed_str));
        }
    }

    /// Turns the pending entries of the messages added to mailbox `id` since the last call
    /// into postings: per step, up to [`INVERT_BATCH`] messages and [`INVERT_BYTES`] octets
    /// of their words, each word's UIDs appended in one merge, the entries deleted in the
    /// same atomic write. Reading and tokenizing happen without the mailbox lock (so that
    /// deliveries into the mailbox never wait on them); the write takes it (not to be called
    /// with it held) and leaves out the messages whose entries went meanwhile (expunged, or
    /// taken by a rebuild or a concurrent pass). Returns how many messages were inverted.
    pub fn invert_pending(&self, id: u64) -> Result<usize> {
        self.invert_pending_in_steps(id, INVERT_BATCH, INVERT_BYTES)
            .map(|(n, _)| n)
    }

    /// [`MailboxIndex::invert_pending`] with its step limits; also returns the steps taken.
    pub(super) fn invert_pending_in_steps(
        &self,
        id: u64,
        max_lists: usize,
        max_bytes: usize,
    ) -> Result<(usize, usize)> {
        let lock = self.lock(id);
        let prefix = id_prefix(b'w', id);
        let base = self.entry_base();
        let (mut total, mut steps) = (0, 0);
        loop {
            let entries = self
                .store
                .first_with_prefix(CF_MAILBOX, &prefix, max_lists + 1)?;
            let mut more = entries.len() > max_lists;
            let mut lists: Vec<(Vec<u8>, [u8; 4], Vec<String>)> = Vec::new();
            let mut bytes = 0usize;
            for (k, v) in entries.into_iter().take(max_lists) {
                if !lists.is_empty() && bytes >= max_bytes {
                    more = true;
                    break;
                }
                let Some(uid) = k.get(9..13).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
                    continue;
                };
                let words = self.pending_words(&base, id, u32::from_be_bytes(uid), &v)?;
                bytes += words.iter().map(|w| w.len() + 1).sum::<usize>();
                lists.push((k, uid, words));
            }
            if lists.is_empty() {
                self.live().fts_pending.remove(&id);
                return Ok((total, steps));
            }
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut postings: HashMap<&str, Vec<u8>> = HashMap::new();
            let mut ops = Vec::with_capacity(lists.len());
            for (k, uid, words) in &lists {
                if self.store.get(CF_MAILBOX, k)?.is_none() {
                    continue;
                }
                for w in words {
                    postings.entry(w).or_default().extend_from_slice(uid);
                }
                ops.push(Op::Delete(CF_MAILBOX, k.clone()));
                total += 1;
            }
            let words: Vec<String> = postings.keys().map(|w| w.to_string()).collect();
            for (w, uids) in postings {
                ops.push(Op::Merge(CF_FTS, fts_key(id, w), uids));
            }
            self.store.write_relaxed(ops)?;
            drop(_g);
            self.vocabulary_add(id, words);
            steps += 1;
            if !more {
                self.live().fts_pending.remove(&id);
                return Ok((total, steps));
            }
        }
    }

    /// The words of message `uid` from its pending entry `value`: a word list (entries
    /// written before words were read lazily), or [`PENDING_FILE`] and the folder, whose
    /// message file is read now (a relative folder from `base`, [`MailboxIndex::entry_base`]).
    /// A message whose record or file is gone has none.
    fn pending_words(&self, base: &Path, id: u64, uid: u32, value: &[u8]) -> Result<Vec<String>> {
        let Some(folder) = value.strip_prefix(&[PENDING_FILE]) else {
            return Ok(std::str::from_utf8(value)
                .unwrap_or("")
                .split('\0')
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect());
        };
        let folder = base.join(std::ffi::OsStr::from_bytes(folder));
        let Some(rec) = self.message(id, uid)? else {
            return Ok(Vec::new());
        };
        // The content only (`read_message` also stats the file for its date).
        Ok(std::fs::read(folder.join(rec.relative_path()))
            .map(|data| message_words(&data))
            .unwrap_or_default())
    }

    /// Counts a message added to mailbox `id`; once [`INVERT_AT`] wait, starts a background
    /// pass that inverts them (unless one runs) when [`pass_may_start`] says so. The caller
    /// may hold the mailbox lock.
    pub(super) fn note_pending_words(&self, id: u64) {
        {
            let mut live = self.live();
            let now = Instant::now();
            let n = live.fts_pending.entry(id).or_insert((0, now));
            n.0 += 1;
            n.1 = now;
            if n.0 < INVERT_AT || !live.fts_inverting.insert(id) {
                return;
            }
        }
        let idx = self.clone();
        let spawned = std::thread::Builder::new()
            .name("fts-invert".into())
            .spawn(move || {
                if idx.wait_for_quiet(id) {
                    let t = Instant::now();
                    match idx.invert_pending(id) {
                        Ok(n) => tracing::info!(
                            mailbox = id,
                            messages = n,
                            ms = t.elapsed().as_millis() as u64,
                            "full-text index: waiting messages' words inverted"
                        ),
                        Err(e) => tracing::warn!(mailbox = id, "full-text inversion: {e:#}"),
                    }
                }
                idx.live().fts_inverting.remove(&id);
            });
        if spawned.is_err() {
            self.live().fts_inverting.remove(&id);
        }
    }

    /// Waits until a background pass over mailbox `id` may start ([`pass_may_start`]) and
    /// says whether it should: not when a lookup inverted the waiting messages meanwhile
    /// (which resets the count; the next [`INVERT_AT`] start a new pass). The count is
    /// reset by the pass itself, so messages added while it waits are counted in.
    fn wait_for_quiet(&self, id: u64) -> bool {
        loop {
            let (waiting, since) = match self.live().fts_pending.get(&id) {
                Some(&(n, at)) => (n, at.elapsed()),
                None => return false,
            };
            if waiting < INVERT_AT {
                return false;
            }
            if pass_may_start(waiting, since) {
                return true;
            }
            std::thread::sleep(INVERT_QUIET.saturating_sub(since).max(INVERT_QUIET / 8));
        }
    }

    /// Removes the UIDs of expunged messages from the full-text postings of mailbox `name`
    /// (and postings left empty), under the mailbox lock. Unless `force`, only when the
    /// expunged messages since the last prune are at least a quarter of the live ones.
    /// Returns how many UIDs were removed.
    pub fn prune_fts(&self, user: &str, name: &str, force: bool) -> Result<usize> {
        let Some(meta) = self.get(user, name)? else {
            return Ok(0);
        };
        let lock = self.lock(meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut meta) = self.get(user, name)? else {
            return Ok(0);
        };
        let mut live = Vec::new();
        self.store
            .for_each_prefix(CF_MAILBOX, &id_prefix(b'm', meta.id), |k, _| {
                if let Some(uid) = k.get(9..13).and_then(|b| b.try_into().ok()) {
                    live.push(u32::from_be_bytes(uid));
                }
                Ok(())
            })?;
        if !force && (meta.fts_dead as usize) * 4 < live.len() {
            // Not yet worth a pass: look again once a quarter of them are gone.
            let at = (live.len() / 4).min(u32::MAX as usize) as u32;
            self.live().fts_check.insert(meta.id, at.max(FTS_PRUNE_MIN));
            return Ok(0);
        }
        let mut removed = 0;
        let mut ops = Vec::new();
        self.store
            .for_each_prefix(CF_FTS, &meta.id.to_be_bytes(), |k, v| {
                let kept: Vec<u8> = v
                    .chunks_exact(4)
                    .filter(|c| {
                        <[u8; 4]>::try_from(*c)
                            .map(u32::from_be_bytes)
                            .is_ok_and(|u| live.binary_search(&u).is_ok())
                    })
                    .flatten()
                    .copied()
                    .collect();
                if kept.len() < v.len() {
                    removed += (v.len() - kept.len()) / 4;
                    ops.push(if kept.is_empty() {
                        Op::Delete(CF_FTS, k.to_vec())
                    } else {
                        Op::Put(CF_FTS, k.to_vec(), kept)
                    });
                }
                if ops.len() >= 1024 {
                    self.store.write_relaxed(std::mem::take(&mut ops))?;
                }
                Ok(())
            })?;
        meta.fts_dead = 0;
        ops.push(Op::Put(
            CF_MAILBOX,
            meta_key(user, name),
            serde_json::to_vec(&meta)?,
        ));
        self.store.write_relaxed(ops)?;
        self.live().fts_check.remove(&meta.id);
        tracing::info!(
            user,
            mailbox = name,
            removed,
            "full-text index pruned of expunged messages"
        );
        Ok(removed)
    }
}

impl MailboxIndex {
    /// Starts rebuilding mailbox `id`'s full-text index in the background, unless it is
    /// already being rebuilt.
    pub(super) fn start_fts_rebuild(&self, user: &str, name: &str, id: u64, path: &Path) {
        if !self.live().fts_rebuilding.insert(id) {
            return;
        }
        let (idx, user, name, path) = (
            self.clone(),
            user.to_string(),
            name.to_string(),
            path.to_path_buf(),
        );
        // In the background: the caller may hold the mailbox lock, which the rebuild takes.
        let spawned = std::thread::Builder::new()
            .name("fts-rebuild".into())
            .spawn(move || {
                match idx.rebuild_fts(&user, &name, &path) {
                    Ok(n) => tracing::info!(
                        user,
                        mailbox = name,
                        messages = n,
                        "full-text index rebuilt"
                    ),
                    Err(e) => tracing::warn!(user, mailbox = name, "full-text rebuild: {e:#}"),
                }
                idx.live().fts_rebuilding.remove(&id);
            });
        if spawned.is_err() {
            self.live().fts_rebuilding.remove(&id);
        }
    }

    /// Rebuilds mailbox `name`'s full-text index in the current word form from its message
    /// files in `path`. Messages delivered meanwhile leave their words for inversion as
    /// usual (the form is current from the start); searches read the messages until it ends.
    /// Returns how many messages were indexed.
    pub fn rebuild_fts(&self, user: &str, name: &str, path: &Path) -> Result<usize> {
        let Some(meta) = self.get(user, name)? else {
            return Ok(0);
        };
        let (id, lock) = (meta.id, self.lock(meta.id));
        let records = {
            let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
            let Some(mut meta) = self.get(user, name)? else {
                return Ok(0);
            };
            if meta.fts_format == FTS_FORMAT && meta.fts {
                return Ok(0);
            }
            meta.fts = false;
            meta.fts_format = FTS_FORMAT;
            meta.fts_dead = 0;
            let next = id.saturating_add(1);
            self.store.write_relaxed(vec![
                Op::DeleteRange(
                    CF_FTS,
                    id.to_be_bytes().to_vec(),
                    next.to_be_bytes().to_vec(),
                ),
                // Words waiting for inversion belong to messages this rebuild reads.
                Op::DeleteRange(CF_MAILBOX, id_prefix(b'w', id), id_prefix(b'w', next)),
                Op::Put(CF_MAILBOX, meta_key(user, name), serde_json::to_vec(&meta)?),
            ])?;
            self.vocabulary_forget(id);
            self.messages(id)?
        };
        let mut ops = Vec::new();
        let mut done = 0;
        for (uid, rec) in records {
            // A message whose flags changed meanwhile was renamed: look it up again.
            let data = match read_message(&path.join(rec.relative_path())) {
                Ok((d, _, _)) => Some(d),
                Err(_) => self
                    .message(id, uid)?
                    .and_then(|r| read_message(&path.join(r.relative_path())).ok())
                    .map(|(d, _, _)| d),
            };
            let Some(data) = data else {
                continue;
            };
            for t in message_words(&data) {
                ops.push(Op::Merge(
                    CF_FTS,
                    fts_key(id, &t),
                    uid.to_be_bytes().to_vec(),
                ));
            }
            done += 1;
            if ops.len() >= 4096 {
                self.store.write_relaxed(std::mem::take(&mut ops))?;
            }
        }
        self.store.write_relaxed(ops)?;
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(mut meta) = self.get(user, name)?
            && meta.id == id
            && meta.fts_format == FTS_FORMAT
        {
            meta.fts = true;
            self.put_meta(user, name, &meta)?;
        }
        self.vocabulary_forget(id);
        Ok(done)
    }
}

/// The words of a message as the index keeps them: the decoded text of every part, in the
/// current form ([`FTS_FORMAT`]).
pub(super) fn message_words(data: &[u8]) -> Vec<String> {
    postcore_protocol::imap::text::tokens(&postcore_protocol::imap::text::body_text(data))
}

impl Vocabularies {
    /// Drops the least recently used vocabularies until `more` words fit.
    fn make_room(&mut self, more: usize) {
        loop {
            let total: usize = self
                .0
                .values()
                .filter_map(|e| e.words.as_ref().map(|w| w.len()))
                .sum();
            if total + more <= MAX_VOCAB_WORDS {
                return;
            }
            let oldest = self
                .0
                .iter()
                .filter(|(_, e)| e.words.is_some())
                .min_by_key(|(_, e)| e.used)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    self.0.remove(&id);
                }
                None => return,
            }
        }
    }
}
