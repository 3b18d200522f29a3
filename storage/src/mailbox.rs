//! IMAP mailbox index over Maildir++ folders (RFC 9051 §2.3.1 unique identifiers).
//!
//! The Maildir files are the messages; this index (column family `mailbox`) holds what IMAP
//! needs without opening them: per mailbox UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscription
//! and special use; per message the Maildir base name, flags, keywords, size, internal date
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
//! `r<id:8>` → the lowest UID no session has been told about yet (\Recent, u32);
//! `i` → the next mailbox id (ids are never reused, so nothing left of a deleted mailbox can
//! be mistaken for a new one's). Column family `fts`: `<id:8><word>` → UIDs (u32 list).

use crate::store::{CF_FTS, Op, Store};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub use crate::store::CF_MAILBOX;

/// Postings of expunged messages are pruned in one pass once there are at least this many
/// of them and at least a quarter as many as live messages.
const FTS_PRUNE_MIN: u32 = 256;

/// Key of the next mailbox id.
const NEXT_ID_KEY: &[u8] = b"i";

/// Header blocks larger than this are not cached (the file is read instead).
const MAX_CACHED_HEADER: usize = 64 * 1024;

/// System flag bits kept in the record and in the Maildir info (`:2,` letters).
pub mod flag {
    /// \Seen — Maildir `S`.
    pub const SEEN: u8 = 1;
    /// \Answered — Maildir `R`.
    pub const ANSWERED: u8 = 2;
    /// \Flagged — Maildir `F`.
    pub const FLAGGED: u8 = 4;
    /// \Deleted — Maildir `T`.
    pub const DELETED: u8 = 8;
    /// \Draft — Maildir `D`.
    pub const DRAFT: u8 = 16;
    /// $Forwarded — Maildir `P` (passed).
    pub const FORWARDED: u8 = 32;

    /// IMAP name ↔ bit.
    pub const NAMES: [(&str, u8); 6] = [
        ("\\Seen", SEEN),
        ("\\Answered", ANSWERED),
        ("\\Flagged", FLAGGED),
        ("\\Deleted", DELETED),
        ("\\Draft", DRAFT),
        ("$Forwarded", FORWARDED),
    ];

    /// Maildir info letters in the required ASCII order.
    pub const LETTERS: [(char, u8); 6] = [
        ('D', DRAFT),
        ('F', FLAGGED),
        ('P', FORWARDED),
        ('R', ANSWERED),
        ('S', SEEN),
        ('T', DELETED),
    ];

    /// The bit for an IMAP flag name (case-insensitive), if it is a system flag.
    pub fn bit(name: &str) -> Option<u8> {
        NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, b)| *b)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Per-mailbox state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct MailboxMeta {
    /// Internal id (keys of the message records).
    pub id: u64,
    /// RFC 9051 §2.3.1.1 UIDVALIDITY.
    pub uidvalidity: u32,
    /// Next UID to assign.
    pub uidnext: u32,
    /// RFC 7162 HIGHESTMODSEQ.
    pub highestmodseq: u64,
    /// In the subscription list (LSUB / LIST (SUBSCRIBED)).
    #[serde(default)]
    pub subscribed: bool,
    /// RFC 6154 special use (`\Sent`, ...), if any.
    #[serde(default)]
    pub special_use: Option<String>,
    /// Every message of this mailbox is in the full-text index.
    #[serde(default)]
    pub fts: bool,
    /// Messages expunged since the full-text postings were last pruned of them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fts_dead: u32,
    /// RFC 4314 access control list: identifier (login or `anyone`) → rights letters.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub acl: std::collections::BTreeMap<String, String>,
}

/// One message of a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// Maildir base name (without `:2,` info).
    pub name: String,
    /// System flag bits ([`flag`]).
    pub flags: u8,
    /// Keywords (flags that are not system flags).
    pub keywords: Vec<String>,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE, Unix seconds.
    pub internal_date: i64,
    /// Modseq of the last change.
    pub modseq: u64,
    /// The file is in `new/` (not yet moved to `cur/`).
    pub in_new: bool,
}

impl MessageRecord {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(40 + self.name.len());
        v.push(self.flags);
        v.push(self.in_new as u8);
        v.extend_from_slice(&self.size.to_be_bytes());
        v.extend_from_slice(&self.internal_date.to_be_bytes());
        v.extend_from_slice(&self.modseq.to_be_bytes());
        let kws: Vec<&String> = self.keywords.iter().take(255).collect();
        v.push(kws.len() as u8);
        for k in kws {
            let b = &k.as_bytes()[..k.len().min(255)];
            v.push(b.len() as u8);
            v.extend_from_slice(b);
        }
        v.extend_from_slice(self.name.as_bytes());
        v
    }

    fn decode(v: &[u8]) -> Option<MessageRecord> {
        let flags = *v.first()?;
        let in_new = *v.get(1)? != 0;
        let n8 = |o: usize| -> Option<[u8; 8]> { v.get(o..o + 8)?.try_into().ok() };
        let size = u64::from_be_bytes(n8(2)?);
        let internal_date = i64::from_be_bytes(n8(10)?);
        let modseq = u64::from_be_bytes(n8(18)?);
        let nk = *v.get(26)? as usize;
        let mut p = 27;
        let mut keywords = Vec::with_capacity(nk);
        for _ in 0..nk {
            let l = *v.get(p)? as usize;
            keywords.push(String::from_utf8_lossy(v.get(p + 1..p + 1 + l)?).into_owned());
            p += 1 + l;
        }
        let name = String::from_utf8_lossy(v.get(p..)?).into_owned();
        Some(MessageRecord {
            name,
            flags,
            keywords,
            size,
            internal_date,
            modseq,
            in_new,
        })
    }

    /// The file's current name: `new/<base>` or `cur/<base>:2,<letters>`.
    pub fn relative_path(&self) -> String {
        if self.in_new {
            format!("new/{}", self.name)
        } else {
            format!("cur/{}:2,{}", self.name, info_letters(self.flags))
        }
    }
}

/// The Maildir info letters for `flags`.
pub fn info_letters(flags: u8) -> String {
    flag::LETTERS
        .iter()
        .filter(|(_, b)| flags & b != 0)
        .map(|(c, _)| *c)
        .collect()
}

fn parse_info(info: &str) -> u8 {
    info.chars().fold(0, |acc, c| {
        acc | flag::LETTERS
            .iter()
            .find(|(l, _)| *l == c)
            .map(|(_, b)| *b)
            .unwrap_or(0)
    })
}

/// Splits a Maildir file name into base and flag bits.
pub fn split_name(file: &str) -> (&str, u8) {
    match file.split_once(":2,") {
        Some((base, info)) => (base, parse_info(info)),
        None => (file.split(':').next().unwrap_or(file), 0),
    }
}

/// The Maildir++ folder of mailbox `name` under the user's Maildir `root`: INBOX is the root,
/// `a/b` is `.a.b` (dots inside a name part are escaped as `%2E`, `%` as `%25`).
pub fn folder_path(root: &Path, name: &str) -> PathBuf {
    if name == "INBOX" {
        return root.to_path_buf();
    }
    let parts: Vec<String> = name
        .split('/')
        .map(|p| p.replace('%', "%25").replace('.', "%2E"))
        .collect();
    root.join(format!(".{}", parts.join(".")))
}

/// Cached header blocks of several messages, stored back to back in one buffer.
#[derive(Debug, Default)]
pub struct HeaderSet {
    buf: Vec<u8>,
    index: HashMap<u32, (usize, usize)>,
}

impl HeaderSet {
    fn push(&mut self, uid: u32, h: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(h);
        self.index.insert(uid, (start, self.buf.len()));
    }

    /// The header block of `uid`, if it was cached.
    pub fn get(&self, uid: u32) -> Option<&[u8]> {
        self.index.get(&uid).map(|(a, b)| &self.buf[*a..*b])
    }

    /// True if `uid`'s header is here.
    pub fn contains(&self, uid: u32) -> bool {
        self.index.contains_key(&uid)
    }
}

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

#[derive(Default)]
struct Live {
    locks: HashMap<u64, Arc<Mutex<()>>>,
    scanned: HashMap<u64, (Option<SystemTime>, Option<SystemTime>)>,
    watchers: HashMap<u64, tokio::sync::watch::Sender<u64>>,
    paths: HashMap<PathBuf, u64>,
    /// Per mailbox, the `fts_dead` count at which pruning is considered next.
    fts_check: HashMap<u64, u32>,
    /// Per (mailbox, user), how many times that user's private \Seen set has changed since
    /// start-up: sessions compare it to know when to re-read the set.
    seen_gen: HashMap<(u64, String), u64>,
}

impl Live {
    /// Wakes the sessions watching mailbox `id`, if any.
    fn wake(&self, id: u64) {
        if let Some(w) = self.watchers.get(&id) {
            w.send_modify(|v| *v += 1);
        }
    }
}

/// The index, shared by all workers.
#[derive(Clone)]
pub struct MailboxIndex {
    store: Store,
    live: Arc<Mutex<Live>>,
    next_id: Arc<Mutex<u64>>,
    /// Started with the first watcher; `None` inside when inotify is unavailable.
    dirwatch: Arc<std::sync::OnceLock<Option<crate::dirwatch::DirWatch>>>,
}

fn meta_key(user: &str, name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(2 + user.len() + name.len());
    k.push(b'b');
    k.extend_from_slice(user.as_bytes());
    k.push(0);
    k.extend_from_slice(name.as_bytes());
    k
}

fn msg_key(kind: u8, id: u64, uid: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(13);
    k.push(kind);
    k.extend_from_slice(&id.to_be_bytes());
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

fn name_key(id: u64, base: &str) -> Vec<u8> {
    let mut k = id_prefix(b'n', id);
    k.extend_from_slice(base.as_bytes());
    k
}

fn id_prefix(kind: u8, id: u64) -> Vec<u8> {
    let mut k = vec![kind];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// `s<id:8><user>`: where earlier versions kept a user's private \Seen set as one value.
fn seen_user_prefix(id: u64, user: &str) -> Vec<u8> {
    let mut k = id_prefix(b's', id);
    k.extend_from_slice(user.as_bytes());
    k
}

/// `s<id:8><user>\0`: the prefix of a user's private \Seen keys (logins hold no NUL, so one
/// user's keys never run into another's whose login starts the same).
fn seen_key_prefix(id: u64, user: &str) -> Vec<u8> {
    let mut k = seen_user_prefix(id, user);
    k.push(0);
    k
}

/// `s<id:8><user>\0<uid:4>`: `user` has seen message `uid` of mailbox `id`.
fn seen_key(id: u64, user: &str, uid: u32) -> Vec<u8> {
    let mut k = seen_key_prefix(id, user);
    k.extend_from_slice(&uid.to_be_bytes());
    k
}

/// The header block of a message (up to and including the empty line).
pub fn header_block(data: &[u8]) -> &[u8] {
    let end = memchr::memmem::find(data, b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| memchr::memmem::find(data, b"\n\n").map(|p| p + 2))
        .unwrap_or(data.len());
    &data[..end]
}

fn read_message(path: &Path) -> std::io::Result<(Vec<u8>, u64, i64)> {
    let data = std::fs::read(path)?;
    let mtime = std::fs::metadata(path)
        .ok()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let len = data.len() as u64;
    Ok((data, len, mtime))
}

/// The full-text index key of `token` in mailbox `id`.
fn fts_key(id: u64, token: &str) -> Vec<u8> {
    let mut k = id.to_be_bytes().to_vec();
    k.extend_from_slice(token.as_bytes());
    k
}

fn mtime(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

impl MailboxIndex {
    /// The index over `store`.
    pub fn new(store: Store) -> Result<MailboxIndex> {
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
        })
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The lock that serialises changes to mailbox `id` (UID assignment, expunge, flags).
    pub fn lock(&self, id: u64) -> Arc<Mutex<()>> {
        self.live().locks.entry(id).or_default().clone()
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
    fn dirwatch(&self) -> Option<&crate::dirwatch::DirWatch> {
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
            subscribed: true,
            special_use,
            fts: true,
            fts_dead: 0,
            acl: Default::default(),
        };
        self.put_meta(user, name, &meta)?;
        Ok(meta)
    }

    /// Deletes mailbox `name` and its index entries (the caller removes the folder).
    pub fn delete(&self, user: &str, name: &str) -> Result<()> {
        let Some(meta) = self.get(user, name)? else {
            anyhow::bail!("no such mailbox");
        };
        let (id, next) = (meta.id, meta.id.saturating_add(1));
        let mut ops = vec![Op::Delete(CF_MAILBOX, meta_key(user, name))];
        for kind in [b'm', b'h', b'n', b'x', b's', b'r'] {
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
        let mut live = self.live();
        live.scanned.remove(&meta.id);
        live.seen_gen.retain(|(m, _), _| *m != id);
        Ok(())
    }

    /// Renames a mailbox entry (the caller renames the folder); UIDs stay valid.
    pub fn rename(&self, user: &str, from: &str, to: &str, meta: &MailboxMeta) -> Result<()> {
        self.store.write_relaxed(vec![
            Op::Delete(CF_MAILBOX, meta_key(user, from)),
            Op::Put(CF_MAILBOX, meta_key(user, to), serde_json::to_vec(meta)?),
        ])?;
        self.live().scanned.remove(&meta.id);
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

    /// The UIDs `user` has seen in mailbox `id`, when \Seen is kept per user (shared
    /// mailboxes with "shared seen" off). A set written whole by an earlier version is
    /// converted to one key per UID on first read.
    pub fn private_seen(&self, id: u64, user: &str) -> Result<std::collections::HashSet<u32>> {
        let legacy = seen_user_prefix(id, user);
        if let Some(v) = self.store.get(CF_MAILBOX, &legacy)? {
            let uids: Vec<u32> = v
                .chunks_exact(4)
                .filter_map(|c| c.try_into().ok())
                .map(u32::from_be_bytes)
                .collect();
            let mut ops = vec![Op::Delete(CF_MAILBOX, legacy)];
            ops.extend(
                uids.iter()
                    .map(|u| Op::Put(CF_MAILBOX, seen_key(id, user, *u), vec![])),
            );
            self.store.write_relaxed(ops)?;
        }
        let prefix = seen_key_prefix(id, user);
        let mut out = std::collections::HashSet::new();
        self.store.for_each_prefix(CF_MAILBOX, &prefix, |k, _| {
            if let Some(u) = k[prefix.len()..].try_into().ok().map(u32::from_be_bytes) {
                out.insert(u);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Records that `user` has seen (`seen` true) or not seen the messages `uids` of mailbox
    /// `id`, when \Seen is kept per user: one key per UID, so a change costs the UIDs it
    /// touches, not the size of the set.
    /// The user's other sessions on the mailbox are woken to report the change. Returns the
    /// set's generation after the change (see [`Self::private_seen_generation`]).
    pub fn set_private_seen(&self, id: u64, user: &str, uids: &[u32], seen: bool) -> Result<u64> {
        if uids.is_empty() {
            return Ok(self.private_seen_generation(id, user));
        }
        let ops = uids
            .iter()
            .map(|u| {
                let k = seen_key(id, user, *u);
                if seen {
                    Op::Put(CF_MAILBOX, k, vec![])
                } else {
                    Op::Delete(CF_MAILBOX, k)
                }
            })
            .collect();
        self.store.write_relaxed(ops)?;
        let generation = {
            let mut live = self.live();
            let g = live.seen_gen.entry((id, user.to_string())).or_default();
            *g += 1;
            *g
        };
        self.notify(id);
        Ok(generation)
    }

    /// How many times `user`'s private \Seen set of mailbox `id` has changed since start-up.
    pub fn private_seen_generation(&self, id: u64, user: &str) -> u64 {
        self.live()
            .seen_gen
            .get(&(id, user.to_string()))
            .copied()
            .unwrap_or(0)
    }

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

    /// UIDs expunged in mailbox `id` after `modseq` (RFC 7162 VANISHED (EARLIER)).
    pub fn vanished_since(&self, id: u64, modseq: u64) -> Result<Vec<u32>> {
        let prefix = id_prefix(b'x', id);
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(CF_MAILBOX, &prefix)? {
            let Some(ms) = k.get(9..17).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            if u64::from_be_bytes(ms) > modseq {
                out.extend(
                    v.chunks_exact(4)
                        .filter_map(|c| c.try_into().ok())
                        .map(u32::from_be_bytes),
                );
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Adds a message file already in the folder (`new/` or `cur/`) under the next UID,
    /// with its header cached and its text in the full-text index; `data` is the message.
    /// Call with the mailbox lock held. Returns the UID.
    pub fn add(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        rec: MessageRecord,
        data: &[u8],
    ) -> Result<u32> {
        let uid = meta.uidnext;
        meta.uidnext += 1;
        meta.highestmodseq += 1;
        let rec = MessageRecord {
            modseq: meta.highestmodseq,
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
        if meta.fts {
            let text = postcore_protocol::imap::text::body_text(data);
            for t in postcore_protocol::imap::text::tokens(&text) {
                ops.push(Op::Merge(
                    CF_FTS,
                    fts_key(meta.id, &t),
                    uid.to_be_bytes().to_vec(),
                ));
            }
        }
        self.store.write_relaxed(ops)?;
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
        base: &str,
        info: Option<&str>,
        data: &[u8],
    ) -> Result<Option<u32>> {
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
            keywords: Vec::new(),
            size: data.len() as u64,
            internal_date,
            modseq: 0,
            in_new: info.is_none(),
        };
        let uid = self.add(user, name, &mut meta, rec, data)?;
        drop(_g);
        self.notify(meta.id);
        Ok(Some(uid))
    }

    /// UIDs of mailbox `id` whose text has a word starting with `word` (lower case).
    pub fn fts_lookup(&self, id: u64, word: &str) -> Result<std::collections::HashSet<u32>> {
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

    /// Removes records (after their files were removed); logs them for VANISHED.
    pub fn expunge(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        uids: &[u32],
    ) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        meta.highestmodseq += 1;
        let mut ops = Vec::with_capacity(uids.len() * 2 + 2);
        let mut log = Vec::with_capacity(uids.len() * 4);
        for uid in uids {
            if let Some(rec) = self.message(meta.id, *uid)? {
                ops.push(Op::Delete(CF_MAILBOX, name_key(meta.id, &rec.name)));
            }
            ops.push(Op::Delete(CF_MAILBOX, msg_key(b'm', meta.id, *uid)));
            ops.push(Op::Delete(CF_MAILBOX, msg_key(b'h', meta.id, *uid)));
            log.extend_from_slice(&uid.to_be_bytes());
        }
        // Postings of expunged UIDs are harmless (UIDs are never reused and searches only
        // consider messages that exist) and are pruned in batches: see `prune_fts`.
        meta.fts_dead = meta.fts_dead.saturating_add(uids.len() as u32);
        let mut xk = id_prefix(b'x', meta.id);
        xk.extend_from_slice(&meta.highestmodseq.to_be_bytes());
        ops.push(Op::Put(CF_MAILBOX, xk, log));
        ops.push(Op::Put(
            CF_MAILBOX,
            meta_key(user, name),
            serde_json::to_vec(meta)?,
        ));
        self.store.write_relaxed(ops)?;
        if meta.fts_dead >= FTS_PRUNE_MIN {
            let due = {
                let mut live = self.live();
                let at = live.fts_check.entry(meta.id).or_insert(FTS_PRUNE_MIN);
                let due = meta.fts_dead >= *at;
                if due {
                    *at = u32::MAX;
                }
                due
            };
            if due {
                // In the background: the caller holds the mailbox lock, which pruning takes.
                let (idx, user, name) = (self.clone(), user.to_string(), name.to_string());
                let _ = std::thread::Builder::new()
                    .name("fts-prune".into())
                    .spawn(move || {
                        if let Err(e) = idx.prune_fts(&user, &name, false) {
                            tracing::warn!(user, mailbox = name, "full-text prune: {e:#}");
                        }
                    });
            }
        }
        Ok(())
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

    /// Reconciles mailbox `name` with its Maildir folder `path` (see the module doc). Skips
    /// the directory scan when neither `new/` nor `cur/` changed since the last one. Call
    /// with the mailbox lock held.
    pub fn sync(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        path: &Path,
    ) -> Result<SyncReport> {
        let stamp = (mtime(&path.join("new")), mtime(&path.join("cur")));
        if self.live().scanned.get(&meta.id) == Some(&stamp) && stamp.0.is_some() {
            return Ok(SyncReport::default());
        }
        let mut on_disk: HashMap<String, (bool, u8)> = HashMap::new();
        for (sub, in_new) in [("new", true), ("cur", false)] {
            let Ok(rd) = std::fs::read_dir(path.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let f = e.file_name();
                let f = f.to_string_lossy();
                if f.starts_with('.') {
                    continue;
                }
                let (base, flags) = split_name(&f);
                on_disk.insert(base.to_string(), (in_new, flags));
            }
        }
        let mut report = SyncReport::default();
        let mut gone = Vec::new();
        let mut changed = Vec::new();
        for (uid, mut rec) in self.messages(meta.id)? {
            match on_disk.remove(&rec.name) {
                None => gone.push(uid),
                Some((in_new, flags)) => {
                    if in_new != rec.in_new || (!in_new && flags != rec.flags) {
                        rec.in_new = in_new;
                        if !in_new {
                            rec.flags = flags;
                        }
                        changed.push((uid, rec));
                    }
                }
            }
        }
        report.expunged = gone.len();
        report.flag_changes = changed.len();
        self.expunge(user, name, meta, &gone)?;
        if !changed.is_empty() {
            self.update(user, name, meta, &mut changed)?;
        }
        // New files, in arrival order (Maildir names start with the delivery time).
        let mut fresh: Vec<(String, bool, u8)> =
            on_disk.into_iter().map(|(b, (n, f))| (b, n, f)).collect();
        fresh.sort_by(|a, b| natural_key(&a.0).cmp(&natural_key(&b.0)));
        for (base, in_new, flags) in fresh {
            let rec = MessageRecord {
                name: base,
                flags,
                keywords: Vec::new(),
                size: 0,
                internal_date: 0,
                modseq: 0,
                in_new,
            };
            let file = path.join(rec.relative_path());
            let Ok((data, size, date)) = read_message(&file) else {
                continue;
            };
            let rec = MessageRecord {
                size,
                internal_date: date,
                ..rec
            };
            self.add(user, name, meta, rec, &data)?;
            report.added += 1;
        }
        // Re-read the stamps: our own renames above may have changed them.
        let stamp = (mtime(&path.join("new")), mtime(&path.join("cur")));
        self.live().scanned.insert(meta.id, stamp);
        Ok(report)
    }
}

/// Sort key for Maildir names: the leading seconds numerically, then the rest.
fn natural_key(name: &str) -> (u64, &str) {
    let (secs, rest) = name.split_once('.').unwrap_or(("", name));
    (secs.parse().unwrap_or(u64::MAX), rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh index over a temporary store, and mailbox `name` of user `u` in `<tmp>/mail`.
    fn fixture(name: &str) -> (tempfile::TempDir, Store, MailboxIndex, PathBuf, MailboxMeta) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db")).unwrap();
        let idx = MailboxIndex::new(store.clone()).unwrap();
        let root = dir.path().join("mail");
        let meta = idx.create("u", name, &root, None).unwrap();
        (dir, store, idx, root, meta)
    }

    #[test]
    fn record_roundtrip_and_names() {
        let r = MessageRecord {
            name: "1700000000.ABC_0.host".into(),
            flags: flag::SEEN | flag::FLAGGED,
            keywords: vec!["$Junk".into()],
            size: 1234,
            internal_date: 1_700_000_000,
            modseq: 7,
            in_new: false,
        };
        assert_eq!(MessageRecord::decode(&r.encode()), Some(r.clone()));
        assert_eq!(r.relative_path(), "cur/1700000000.ABC_0.host:2,FS");
        assert_eq!(split_name("x.y:2,RS"), ("x.y", flag::ANSWERED | flag::SEEN));
        assert_eq!(
            folder_path(Path::new("/m"), "Archive/2024.1"),
            Path::new("/m/.Archive.2024%2E1")
        );
    }

    #[test]
    fn sync_picks_up_outside_changes() {
        let (_dir, _store, idx, root, mut meta) = fixture("INBOX");
        std::fs::write(root.join("new/100.a.h"), b"Subject: a\r\n\r\nbody").unwrap();
        std::fs::write(root.join("cur/200.b.h:2,S"), b"Subject: b\r\n\r\nbody").unwrap();
        let r = idx.sync("u", "INBOX", &mut meta, &root).unwrap();
        assert_eq!(r.added, 2);
        let msgs = idx.messages(meta.id).unwrap();
        assert_eq!(msgs[0].0, 1);
        assert_eq!(msgs[1].1.flags, flag::SEEN);
        assert_eq!(
            idx.header(meta.id, 1).unwrap().unwrap(),
            b"Subject: a\r\n\r\n"
        );
        // Another tool marks b answered and deletes a.
        std::fs::rename(root.join("cur/200.b.h:2,S"), root.join("cur/200.b.h:2,RS")).unwrap();
        std::fs::remove_file(root.join("new/100.a.h")).unwrap();
        let r = idx.sync("u", "INBOX", &mut meta, &root).unwrap();
        assert_eq!((r.expunged, r.flag_changes), (1, 1));
        assert_eq!(idx.vanished_since(meta.id, 0).unwrap(), vec![1]);
        assert_eq!(meta.uidnext, 3);
        // Full-text index: words by prefix.
        assert_eq!(
            idx.fts_lookup(meta.id, "bod").unwrap(),
            [1, 2].into_iter().collect()
        );
        assert_eq!(idx.uid_by_name(meta.id, "200.b.h").unwrap(), Some(2));
        assert_eq!(idx.uid_by_name(meta.id, "100.a.h").unwrap(), None);
    }

    #[test]
    fn recent_is_claimed_once() {
        let (_dir, store, idx, _root, meta) = fixture("INBOX");
        assert_eq!(idx.first_recent(meta.id).unwrap(), 1);
        // The first session gets UIDs 1..4, the second none, a later one the new 4..6.
        assert_eq!(idx.claim_recent(meta.id, 4).unwrap(), 1);
        assert_eq!(idx.claim_recent(meta.id, 4).unwrap(), 4);
        assert_eq!(idx.claim_recent(meta.id, 6).unwrap(), 4);
        assert_eq!(idx.first_recent(meta.id).unwrap(), 6);
        // Kept across a restart; removed with the mailbox.
        drop(idx);
        let idx = MailboxIndex::new(store).unwrap();
        assert_eq!(idx.first_recent(meta.id).unwrap(), 6);
        idx.delete("u", "INBOX").unwrap();
        assert_eq!(idx.first_recent(meta.id).unwrap(), 1);
    }

    #[test]
    fn expunged_postings_are_pruned_and_deleted_mailboxes_leave_nothing() {
        let (_dir, store, idx, root, mut meta) = fixture("INBOX");
        for (n, body) in ["alpha common", "beta common", "gamma common"]
            .iter()
            .enumerate()
        {
            let file = format!("10{n}.x.h");
            let data = format!("Subject: s\r\n\r\n{body}\r\n");
            std::fs::write(root.join("new").join(&file), &data).unwrap();
        }
        idx.sync("u", "INBOX", &mut meta, &root).unwrap();
        let id = meta.id;
        let postings = |word: &str| -> Vec<u8> {
            let mut k = id.to_be_bytes().to_vec();
            k.extend_from_slice(word.as_bytes());
            store.get(CF_FTS, &k).unwrap().unwrap_or_default()
        };
        assert_eq!(postings("common").len(), 12);
        idx.expunge("u", "INBOX", &mut meta, &[1, 2]).unwrap();
        assert_eq!(meta.fts_dead, 2);
        // Two dead of one live is worth a pass even unforced.
        assert_eq!(idx.prune_fts("u", "INBOX", false).unwrap(), 4);
        assert_eq!(postings("common"), 3u32.to_be_bytes());
        assert!(postings("alpha").is_empty() && postings("beta").is_empty());
        assert_eq!(idx.get("u", "INBOX").unwrap().unwrap().fts_dead, 0);
        assert_eq!(
            idx.fts_lookup(meta.id, "gamma").unwrap(),
            [3].into_iter().collect()
        );
        // Deleting the mailbox removes its postings and records; its id is never reused,
        // not even after a restart.
        idx.delete("u", "INBOX").unwrap();
        assert!(postings("common").is_empty());
        assert!(idx.messages(meta.id).unwrap().is_empty());
        assert_eq!(idx.uid_by_name(meta.id, "102.x.h").unwrap(), None);
        drop(idx);
        let idx = MailboxIndex::new(store).unwrap();
        let again = idx.create("u", "INBOX", &root, None).unwrap();
        assert!(again.id > meta.id, "{} reused", again.id);
    }

    #[test]
    fn prune_runs_by_itself_once_enough_messages_are_expunged() {
        let (_dir, store, idx, root, mut meta) = fixture("Trash");
        let n = FTS_PRUNE_MIN + 10;
        for i in 0..n {
            let data = format!("Subject: s\r\n\r\nword{i} shared\r\n");
            std::fs::write(root.join("new").join(format!("{i}.x.h")), data).unwrap();
        }
        idx.sync("u", "Trash", &mut meta, &root).unwrap();
        // Below the threshold nothing happens; at it, a background pass prunes.
        let uids: Vec<u32> = (1..FTS_PRUNE_MIN).collect();
        idx.expunge("u", "Trash", &mut meta, &uids).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(meta.fts_dead, FTS_PRUNE_MIN - 1);
        assert_eq!(
            idx.get("u", "Trash").unwrap().unwrap().fts_dead,
            FTS_PRUNE_MIN - 1
        );
        idx.expunge("u", "Trash", &mut meta, &[FTS_PRUNE_MIN])
            .unwrap();
        let mut k = meta.id.to_be_bytes().to_vec();
        k.extend_from_slice(b"shared");
        for _ in 0..100 {
            if idx.get("u", "Trash").unwrap().unwrap().fts_dead == 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert_eq!(idx.get("u", "Trash").unwrap().unwrap().fts_dead, 0);
        let left = store.get(CF_FTS, &k).unwrap().unwrap();
        assert_eq!(
            left.len(),
            10 * 4,
            "postings of the 10 live messages remain"
        );
    }

    #[test]
    fn private_seen_is_kept_per_uid_and_per_user() {
        let (_d, store, idx, _root, meta) = fixture("INBOX");
        idx.set_private_seen(meta.id, "al", &[1, 2, 3], true)
            .unwrap();
        idx.set_private_seen(meta.id, "alice", &[7], true).unwrap();
        idx.set_private_seen(meta.id, "al", &[2], false).unwrap();
        let al = idx.private_seen(meta.id, "al").unwrap();
        assert_eq!(al, [1, 3].into_iter().collect());
        // Each change moves the user's generation on; an empty one does not.
        assert_eq!(idx.private_seen_generation(meta.id, "al"), 2);
        assert_eq!(idx.set_private_seen(meta.id, "al", &[], true).unwrap(), 2);
        assert_eq!(idx.private_seen_generation(meta.id, "alice"), 1);
        // A login that starts another's does not see its keys.
        assert_eq!(
            idx.private_seen(meta.id, "alice").unwrap(),
            [7].into_iter().collect()
        );
        assert!(idx.private_seen(meta.id, "bob").unwrap().is_empty());
        // A set written whole by an earlier version is read, then converted to per-UID keys.
        let legacy: Vec<u8> = [4u32, 9].iter().flat_map(|u| u.to_be_bytes()).collect();
        store
            .write_relaxed(vec![Op::Put(
                CF_MAILBOX,
                seen_user_prefix(meta.id, "bob"),
                legacy,
            )])
            .unwrap();
        assert_eq!(
            idx.private_seen(meta.id, "bob").unwrap(),
            [4, 9].into_iter().collect()
        );
        assert!(
            store
                .get(CF_MAILBOX, &seen_user_prefix(meta.id, "bob"))
                .unwrap()
                .is_none()
        );
        idx.set_private_seen(meta.id, "bob", &[4], false).unwrap();
        assert_eq!(
            idx.private_seen(meta.id, "bob").unwrap(),
            [9].into_iter().collect()
        );
        // Deleting the mailbox removes every user's set.
        idx.delete("u", "INBOX").unwrap();
        let mut left = 0;
        store
            .for_each_prefix(CF_MAILBOX, &id_prefix(b's', meta.id), |_, _| {
                left += 1;
                Ok(())
            })
            .unwrap();
        assert_eq!(left, 0);
    }
}
