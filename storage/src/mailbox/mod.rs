//! IMAP mailbox index over Maildir++ folders (RFC 9051 §2.3.1 unique identifiers).
//!
//! The Maildir files are the messages; this index (column family `mailbox`) holds what IMAP
//! needs without opening them: per mailbox UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ and special
//! use; per user the subscribed names (apart from the mailboxes, see `subscriptions.rs`); per message the Maildir base name, flags, keywords, size, internal date
//! and modseq; the raw header block (so FETCH of header fields and header SEARCH never touch
//! the files); and the UIDs expunged at each modseq (RFC 7162 QRESYNC `VANISHED`).
//!
//! The Maildir stays authoritative and usable by other tools: flags are kept in the file
//! names (`:2,FRS`), and [`MailboxIndex::sync`] reconciles the index with the folder — files
//! that appeared (delivered by postcore or placed there by anything else) get the next UIDs,
//! files that vanished are expunged, and flags changed by renames are picked up.
//!
//! Keys: `b<user>\0<name>` → meta (JSON); `m<id:8><uid:4>` → message record (binary);
//! `h<id:8><uid:4>` → header block; `x<id:8><modseq:8>` → expunged UIDs (u32 list);
//! `s<id:8><user>\0<uid:4>` → (empty): the user has seen that message, when \Seen is private;
//! `u<user>\0<name>` → (empty): a subscription;
//! `r<id:8>` → the lowest UID no session has been told about yet (\Recent, u32);
//! `i` → the next mailbox id (ids are never reused, so nothing left of a deleted mailbox can
//! be mistaken for a new one's); `w<id:8><uid:4>` → a message added since the last inversion
//! waits for the full-text index: 0x01 and its folder (relative to the data directory), or,
//! written by earlier versions, its words (NUL-separated). Column family `fts`: `<id:8><word>` → UIDs (u32 list).

use crate::store::{CF_FTS, Op, Store};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use crate::store::CF_MAILBOX;
pub use fts::FTS_FORMAT;

mod fts;
mod keys;
mod live;
mod metadata;
mod recent;
mod record;
mod seen;
mod subscriptions;
mod sync;
mod urlauth;

use keys::*;
use live::Live;
pub use record::{
    HeaderSet, MailboxMeta, MessageRecord, flag, folder_path, header_block, info_letters,
    split_name,
};
use record::{mtime, parse_info, read_message};

/// Postings of expunged messages are pruned in one pass once there are at least this many
/// of them and at least a quarter as many as live messages.
const FTS_PRUNE_MIN: u32 = 256;

/// Header blocks larger than this are not cached (the file is read instead).
const MAX_CACHED_HEADER: usize = 64 * 1024;

/// What [`MailboxIndex::sync`] changed.
#[derive(Debug, Default, Clone)]
pub struct SyncReport {
    /// Messages added.
    pub added: usize,
    /// Messages removed (file gone).
    pub expunged: usize,
    /// Messages whose flags were changed outside.
    pub flag_changes: usize,
}

/// The index, shared by all workers.
#[derive(Clone)]
pub struct MailboxIndex {
    store: Store,
    live: Arc<Mutex<Live>>,
    next_id: Arc<Mutex<u64>>,
    /// Started with the first watcher; `None` inside when inotify is unavailable.
    dirwatch: Arc<std::sync::OnceLock<Option<crate::dirwatch::DirWatch>>>,
    /// Mailboxes' full-text vocabularies, for substring search (see `fts`).
    vocab: Arc<Mutex<fts::Vocabularies>>,
}

impl MailboxIndex {
    /// The index over `store`.
    pub fn new(store: Store) -> Result<MailboxIndex> {
        subscriptions::migrate(&store)?;
        let mut max = 0u64;
        for (_, v) in store.scan_prefix(CF_MAILBOX, b"b")? {
            if let Ok(m) = serde_json::from_slice::<MailboxMeta>(&v) {
                max = max.max(m.id);
            }
        }
        let stored = store
            .get(CF_MAILBOX, NEXT_ID_KEY)?
            .and_then(|v| v.as_slice().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0);
        Ok(MailboxIndex {
            store,
            live: Arc::new(Mutex::new(Live::default())),
            next_id: Arc::new(Mutex::new((max + 1).max(stored))),
            dirwatch: Arc::default(),
            vocab: Arc::default(),
        })
    }

    /// All mailboxes of `user`, by name.
    pub fn list(&self, user: &str) -> Result<Vec<(String, MailboxMeta)>> {
        let mut prefix = vec![b'b'];
        prefix.extend_from_slice(user.as_bytes());
        prefix.push(0);
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(CF_MAILBOX, &prefix)? {
            let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let meta: MailboxMeta = serde_json::from_slice(&v).context("mailbox meta")?;
            out.push((name, meta));
        }
        Ok(out)
    }

    /// One mailbox's meta.
    pub fn get(&self, user: &str, name: &str) -> Result<Option<MailboxMeta>> {
        match self.store.get(CF_MAILBOX, &meta_key(user, name))? {
            Some(v) => Ok(Some(serde_json::from_slice(&v).context("mailbox meta")?)),
            None => Ok(None),
        }
    }

    /// Writes a mailbox's meta.
    pub fn put_meta(&self, user: &str, name: &str, meta: &MailboxMeta) -> Result<()> {
        self.store.write_relaxed(vec![Op::Put(
            CF_MAILBOX,
            meta_key(user, name),
            serde_json::to_vec(meta)?,
        )])
    }

    /// Creates mailbox `name` (its Maildir folder `path` too); error if it exists.
    pub fn create(
        &self,
        user: &str,
        name: &str,
        path: &Path,
        special_use: Option<String>,
    ) -> Result<MailboxMeta> {
        if self.get(user, name)?.is_some() {
            anyhow::bail!("mailbox exists");
        }
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(path.join(sub))
                .with_context(|| format!("creating {}", path.display()))?;
        }
        if name != "INBOX" {
            // Maildir++: a `maildirfolder` file marks a subfolder.
            let _ = std::fs::write(path.join("maildirfolder"), b"");
        }
        let id = {
            let mut n = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            let id = *n;
            *n += 1;
            self.store.write_relaxed(vec![Op::Put(
                CF_MAILBOX,
                NEXT_ID_KEY.to_vec(),
                n.to_be_bytes().to_vec(),
            )])?;
            id
        };
        let uidvalidity = (SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1) as u32)
            .wrapping_add(id as u32)
            .max(1);
        let meta = MailboxMeta {
            id,
            uidvalidity,
            uidnext: 1,
            highestmodseq: 1,
            // Subscriptions live apart (`subscriptions.rs`); the flag is only read once, to
            // carry over indexes written before.
            subscribed: false,
            special_use,
            fts: true,
            fts_format: FTS_FORMAT,
            fts_dead: 0,
            acl: Default::default(),
        };
        self.put_meta(user, name, &meta)?;
        self.touch_tree(user);
        Ok(meta)
    }

    /// Deletes mailbox `name` and its index entries (the caller removes the folder).
    pub fn delete(&self, user: &str, name: &str) -> Result<()> {
        let Some(meta) = self.get(user, name)? else {
            anyhow::bail!("no such mailbox");
        };
        let (id, next) = (meta.id, meta.id.saturating_add(1));
        let mut ops = vec![Op::Delete(CF_MAILBOX, meta_key(user, name))];
        for kind in [b'm', b'h', b'n', b'x', b's', b'r', b'M', b'K', b'w'] {
            ops.push(Op::DeleteRange(
                CF_MAILBOX,
                id_prefix(kind, id),
                id_prefix(kind, next),
            ));
        }
        ops.push(Op::DeleteRange(
            CF_FTS,
            id.to_be_bytes().to_vec(),
            next.to_be_bytes().to_vec(),
        ));
        self.store.write_relaxed(ops)?;
        self.vocabulary_forget(id);
        {
            let mut live = self.live();
            live.scanned.remove(&meta.id);
            live.seen_gen.retain(|(m, _), _| *m != id);
        }
        self.touch_tree(user);
        Ok(())
    }

    /// Renames a mailbox entry (the caller renames the folder); UIDs stay valid.
    pub fn rename(&self, user: &str, from: &str, to: &str, meta: &MailboxMeta) -> Result<()> {
        self.store.write_relaxed(vec![
            Op::Delete(CF_MAILBOX, meta_key(user, from)),
            Op::Put(CF_MAILBOX, meta_key(user, to), serde_json::to_vec(meta)?),
        ])?;
        self.live().scanned.remove(&meta.id);
        self.touch_tree(user);
        Ok(())
    }

    /// Every message record of mailbox `id`, by ascending UID.
    pub fn messages(&self, id: u64) -> Result<Vec<(u32, MessageRecord)>> {
        let prefix = id_prefix(b'm', id);
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(CF_MAILBOX, &prefix)? {
            let Some(uid) = k.get(9..13).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            if let Some(r) = MessageRecord::decode(&v) {
                out.push((u32::from_be_bytes(uid), r));
            }
        }
        Ok(out)
    }

    /// Message records of mailbox `id` with UIDs in `lo..=hi`, ascending.
    pub fn messages_range(&self, id: u64, lo: u32, hi: u32) -> Result<Vec<(u32, MessageRecord)>> {
        let mut out = Vec::new();
        self.scan_uids(b'm', id, lo, hi, |uid, v| {
            if let Some(r) = MessageRecord::decode(v) {
                out.push((uid, r));
            }
        })?;
        Ok(out)
    }

    /// Calls `f` for every `kind` entry of mailbox `id` with a UID in `lo..=hi`, in UID
    /// order, with the value borrowed from the iterator (no copy).
    fn scan_uids(
        &self,
        kind: u8,
        id: u64,
        lo: u32,
        hi: u32,
        mut f: impl FnMut(u32, &[u8]),
    ) -> Result<()> {
        let h = self
            .store
            .db()
            .cf_handle(CF_MAILBOX)
            .context("no mailbox column family")?;
        let prefix = id_prefix(kind, id);
        let mut it = self.store.db().raw_iterator_cf(&h);
        it.seek(msg_key(kind, id, lo));
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            let Some(uid) = k
                .strip_prefix(prefix.as_slice())
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
            else {
                break;
            };
            if uid > hi {
                break;
            }
            f(uid, v);
            it.next();
        }
        it.status()?;
        Ok(())
    }

    /// One message record.
    pub fn message(&self, id: u64, uid: u32) -> Result<Option<MessageRecord>> {
        Ok(self
            .store
            .get(CF_MAILBOX, &msg_key(b'm', id, uid))?
            .and_then(|v| MessageRecord::decode(&v)))
    }

    /// The cached header block of a message, if cached.
    pub fn header(&self, id: u64, uid: u32) -> Result<Option<Vec<u8>>> {
        self.store.get(CF_MAILBOX, &msg_key(b'h', id, uid))
    }

    /// Header blocks of many messages of one mailbox (FETCH 1:*): one ordered pass over
    /// the cached headers (copied into one buffer) for large sets, point reads for small.
    pub fn headers(&self, id: u64, uids: &[u32]) -> Result<HeaderSet> {
        let h = self
            .store
            .db()
            .cf_handle(CF_MAILBOX)
            .context("no mailbox column family")?;
        let mut out = HeaderSet::default();
        if uids.len() <= 64 {
            let keys: Vec<Vec<u8>> = uids.iter().map(|u| msg_key(b'h', id, *u)).collect();
            let res = self.store.db().batched_multi_get_cf(&h, keys.iter(), false);
            for (uid, r) in uids.iter().zip(res) {
                if let Ok(Some(v)) = r {
                    out.push(*uid, &v);
                }
            }
            return Ok(out);
        }
        let (Some(lo), Some(hi)) = (uids.iter().min(), uids.iter().max()) else {
            return Ok(out);
        };
        let wanted: std::collections::HashSet<u32> = uids.iter().copied().collect();
        self.scan_uids(b'h', id, *lo, *hi, |uid, v| {
            if wanted.contains(&uid) {
                out.push(uid, v);
            }
        })?;
        Ok(out)
    }

    /// Adds a message file already in the Maildir folder `folder` (`new/` or `cur/`) under
    /// the next UID, with its header cached and its text waiting for the full-text index
    /// (read from the file then); `data` is the message. Call with the mailbox lock held.
    /// Returns the UID.
    pub fn add(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        rec: MessageRecord,
        data: &[u8],
        folder: &Path,
    ) -> Result<u32> {
        let uid = meta.uidnext;
        meta.uidnext += 1;
        meta.highestmodseq += 1;
        // RFC 8514: the save date is when the message entered this mailbox (delivery,
        // APPEND, COPY, MOVE, or a file found in the folder).
        let rec = MessageRecord {
            modseq: meta.highestmodseq,
            saved: Some(now_secs()),
            ..rec
        };
        let header = header_block(data);
        let mut ops = vec![
            Op::Put(CF_MAILBOX, msg_key(b'm', meta.id, uid), rec.encode()),
            Op::Put(
                CF_MAILBOX,
                name_key(meta.id, &rec.name),
                uid.to_be_bytes().to_vec(),
            ),
            Op::Put(CF_MAILBOX, meta_key(user, name), serde_json::to_vec(meta)?),
        ];
        if header.len() <= MAX_CACHED_HEADER {
            ops.push(Op::Put(
                CF_MAILBOX,
                msg_key(b'h', meta.id, uid),
                header.to_vec(),
            ));
        }
        // Indexed whenever the words are in the current form: also while a rebuild of the
        // mailbox's index runs (`fts` is false until it ends). Only a pending entry is
        // written here; the next full-text lookup or the background pass reads the file and
        // turns its words into postings in bulk (`MailboxIndex::invert_pending`).
        if meta.fts_format == FTS_FORMAT {
            ops.push(Op::Put(
                CF_MAILBOX,
                msg_key(b'w', meta.id, uid),
                fts::pending_entry(folder, &self.entry_base()),
            ));
        }
        self.store.write_relaxed(ops)?;
        self.note_pending_words(meta.id);
        Ok(uid)
    }

    /// The UID of the message whose Maildir base name is `base`, if indexed.
    pub fn uid_by_name(&self, id: u64, base: &str) -> Result<Option<u32>> {
        Ok(self
            .store
            .get(CF_MAILBOX, &name_key(id, base))?
            .and_then(|v| v.as_slice().try_into().ok())
            .map(u32::from_be_bytes))
    }

    /// Indexes a message just delivered into the folder `path` of mailbox `name` (if the
    /// mailbox has been opened over IMAP; otherwise the next folder scan does it). Returns
    /// the UID.
    pub fn index_delivered(
        &self,
        user: &str,
        name: &str,
        path: &Path,
        file: &Delivered<'_>,
    ) -> Result<Option<u32>> {
        let Delivered {
            base,
            info,
            keywords,
            data,
        } = *file;
        let Some(meta) = self.get(user, name)? else {
            return Ok(None);
        };
        let lock = self.lock(meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut meta) = self.get(user, name)? else {
            return Ok(None);
        };
        if let Some(uid) = self.uid_by_name(meta.id, base)? {
            return Ok(Some(uid));
        }
        // A delivery with flags was written to cur/ with its info part (already "seen" by
        // a Maildir reader); without, it is in new/.
        let file = match info {
            Some(i) => path.join("cur").join(format!("{base}:{i}")),
            None => path.join("new").join(base),
        };
        let internal_date = std::fs::metadata(&file)
            .ok()
            .and_then(|m| m.modified().ok())
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let rec = MessageRecord {
            name: base.to_string(),
            flags: info.map_or(0, parse_info),
            keywords: keywords.to_vec(),
            size: data.len() as u64,
            internal_date,
            modseq: 0,
            in_new: info.is_none(),
            saved: None,
        };
        let uid = self.add(user, name, &mut meta, rec, data, path)?;
        drop(_g);
        self.notify(meta.id);
        Ok(Some(uid))
    }

    /// Writes changed records (flags) with new modseqs; call with the mailbox lock held.
    pub fn update(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        changes: &mut [(u32, MessageRecord)],
    ) -> Result<()> {
        let mut ops = Vec::with_capacity(changes.len() + 1);
        for (uid, rec) in changes.iter_mut() {
            meta.highestmodseq += 1;
            rec.modseq = meta.highestmodseq;
            ops.push(Op::Put(
                CF_MAILBOX,
                msg_key(b'm', meta.id, *uid),
                rec.encode(),
            ));
        }
        ops.push(Op::Put(
            CF_MAILBOX,
            meta_key(user, name),
            serde_json::to_vec(meta)?,
        ));
        self.store.write_relaxed(ops)
    }
}

/// A file just delivered into a folder, for [`MailboxIndex::index_delivered`].
#[derive(Clone, Copy)]
pub struct Delivered<'a> {
    /// Maildir base name.
    pub base: &'a str,
    /// The info part (`2,FS`) when it was written to `cur/` with flags.
    pub info: Option<&'a str>,
    /// IMAP keywords it carries.
    pub keywords: &'a [String],
    /// Its octets.
    pub data: &'a [u8],
}

#[cfg(test)]
mod tests;

/// The time now, Unix seconds.
fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
