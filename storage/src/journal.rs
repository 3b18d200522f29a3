//! The intake journal: what makes a 250 durable without a flush per Maildir file.
//!
//! An accepted message whose local copies were just written to their Maildirs *without* a flush
//! ([`crate::maildir::Durability::Deferred`]) is recorded here — its body and the place of every
//! copy — in the same group-committed RocksDB write (one WAL fsync shared by every session
//! waiting at that moment) that holds its queue record, if it has one. Only then does the session
//! answer 250.
//!
//! The [`Syncer`] thread then makes the Maildir files themselves durable in rounds: one `syncfs`
//! per file system covers every file written since the previous round (data, inode with its link
//! count, directory entry), and only after it returns are the journal entries of those files
//! deleted. At start-up, [`replay`] rewrites every copy that a journal entry still lists and
//! whose file is missing or differs from the journal, at the same name (so nothing is delivered
//! twice), makes them durable and deletes the entries.
//!
//! Bodies above [`crate::spool::INLINE_MAX`] do not go through the journal: their Maildir copies
//! are fsynced one by one ([`crate::maildir::Durability::Now`]).

use crate::store::{Op, Store};
use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use crate::store::CF_JOURNAL;

/// How long a round waits for more files to release when nobody is waiting on it: with many
/// sessions one `syncfs` then covers many messages; a lone message is durable in its Maildir
/// about this long after its 250 (it already was, in the journal). Measured with 20 sessions
/// of 4 KiB messages: 10 ms gave 0.39 device flushes per message, 50 ms 0.31 and 10 % more
/// messages a second, 200 ms no better than 50 (the kernel's own writeback then runs first).
pub const RELEASE_LINGER: Duration = Duration::from_millis(50);

/// One Maildir copy of a journaled message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalFile {
    /// The Maildir folder (the directory holding `new/`, `cur/`, `tmp/`), relative to the
    /// root of all Maildirs, so that a data directory still replays after it was moved.
    pub dir: PathBuf,
    /// The file's base name (see [`crate::maildir::file_name`]).
    pub name: String,
    /// The info part (`2,FS`) when the copy was filed into `cur/` with flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub info: Option<String>,
}

/// What the journal holds for one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Queue id.
    pub qid: String,
    /// Its Maildir copies.
    pub files: Vec<JournalFile>,
}

/// The write that records `entry` with the message `body`: `<json length: u32 LE><json><body>`.
pub fn put_op(entry: &JournalEntry, body: &[u8]) -> Result<Op> {
    let json = serde_json::to_vec(entry)?;
    let len = u32::try_from(json.len()).context("journal entry too large")?;
    let mut v = Vec::with_capacity(4 + json.len() + body.len());
    v.extend_from_slice(&len.to_le_bytes());
    v.extend_from_slice(&json);
    v.extend_from_slice(body);
    Ok(Op::Put(CF_JOURNAL, entry.qid.as_bytes().to_vec(), v))
}

/// Splits a stored value into its entry and body.
pub fn decode(value: &[u8]) -> Result<(JournalEntry, &[u8])> {
    let len = value
        .get(..4)
        .context("journal value shorter than its header")?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let json = value
        .get(4..4 + len)
        .context("journal value shorter than its entry")?;
    let entry = serde_json::from_slice(json).context("journal entry")?;
    Ok((entry, &value[4 + len..]))
}

/// What [`replay`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplayReport {
    /// Entries found (messages accepted whose files were not yet known to be durable).
    pub entries: usize,
    /// Copies found intact.
    pub intact: usize,
    /// Copies written again (missing, or not the bytes accepted).
    pub rewritten: usize,
}

/// Makes every copy the journal lists durable and byte-identical, then empties the journal.
/// Idempotent: a copy is looked for under its name in `new/` and `cur/` (whatever flags a
/// reader gave it) and rewritten in place only if it is missing or differs.
/// `mail_root` is the root of all Maildirs, which entries' folders are relative to.
/// Runs at start-up, before any listener accepts.
pub fn replay(store: &Store, mail_root: &Path) -> Result<ReplayReport> {
    let mut report = ReplayReport::default();
    let mut done = Vec::new();
    let mut dirs = Vec::new();
    store.for_each_prefix(CF_JOURNAL, b"", |k, v| {
        let (entry, body) =
            decode(v).with_context(|| format!("journal entry {}", String::from_utf8_lossy(k)))?;
        report.entries += 1;
        for f in &entry.files {
            let dir = mail_root.join(&f.dir);
            if restore_copy(&dir, f, body)? {
                report.rewritten += 1;
            } else {
                report.intact += 1;
            }
            dirs.push(dir);
        }
        done.push(k.to_vec());
        Ok(())
    })?;
    if done.is_empty() {
        return Ok(report);
    }
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        syncfs(d).with_context(|| format!("syncfs {}", d.display()))?;
    }
    store.commit_blocking(
        done.into_iter()
            .map(|k| Op::Delete(CF_JOURNAL, k))
            .collect(),
    )?;
    Ok(report)
}

/// Puts one copy back if it is missing or differs; true if it wrote.
fn restore_copy(dir: &Path, f: &JournalFile, body: &[u8]) -> Result<bool> {
    let at = crate::maildir::locate(dir, &f.name);
    if let Some(p) = &at
        && std::fs::read(p).map(|b| b == body).unwrap_or(false)
    {
        return Ok(false);
    }
    let target = at.unwrap_or_else(|| match &f.info {
        Some(i) => dir.join("cur").join(format!("{}:{i}", f.name)),
        None => dir.join("new").join(&f.name),
    });
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(dir.join(sub))
            .with_context(|| format!("creating {}", dir.join(sub).display()))?;
    }
    let tmp = dir.join("tmp").join(format!("{}.replay", f.name));
    let mut file =
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(body)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &target).with_context(|| format!("renaming to {}", target.display()))?;
    tracing::warn!(file = %target.display(), "journal replay: Maildir copy restored");
    Ok(true)
}

/// Flushes the file system holding `path` (data, inodes, directories, then a device flush).
pub fn syncfs(path: &Path) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: the descriptor is open for the duration of the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// One path per file system among `roots` (the first seen of each device; roots that cannot be
/// read are kept, so that their error shows at the first round): one `syncfs` each covers them
/// all, and a data directory holding the Maildirs costs one device flush per round, not two.
pub fn distinct_filesystems(roots: Vec<PathBuf>) -> Vec<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mut seen = std::collections::HashSet::new();
    roots
        .into_iter()
        .filter(|r| std::fs::metadata(r).map_or(true, |m| seen.insert(m.dev())))
        .collect()
}

/// The thread that makes deferred Maildir writes durable in shared rounds.
#[derive(Clone)]
pub struct Syncer {
    tx: crate::handoff::Sender<String>,
}

/// Counts kept by the syncer thread, for metrics and tests.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// `syncfs` rounds run.
    pub rounds: std::sync::atomic::AtomicU64,
    /// Journal entries released.
    pub released: std::sync::atomic::AtomicU64,
}

impl Syncer {
    /// Starts the thread; each round flushes the file systems holding `roots`.
    pub fn start(store: Store, roots: Vec<PathBuf>) -> Result<(Syncer, std::sync::Arc<SyncStats>)> {
        let roots = distinct_filesystems(roots);
        let (tx, rx) = crate::handoff::handoff();
        let stats = std::sync::Arc::new(SyncStats::default());
        let st = stats.clone();
        std::thread::Builder::new()
            .name("maildir-sync".into())
            .spawn(move || sync_loop(&store, &roots, rx, &st))
            .context("spawning maildir-sync thread")?;
        Ok((Syncer { tx }, stats))
    }

    /// Hands over a journaled message whose Maildir files are written: its entry goes once
    /// they are durable.
    pub fn release(&self, qid: &str) {
        if self.tx.send(qid.to_string()).is_err() {
            tracing::warn!(
                qid,
                "maildir-sync thread has stopped: entry stays for replay"
            );
        }
    }
}

/// Counter: `syncfs` rounds of the maildir-sync thread.
pub const SYNC_ROUNDS: &str = "postcore_journal_sync_rounds_total";
/// Counter: journal entries released after a round made their Maildir copies durable.
pub const RELEASED: &str = "postcore_journal_released_total";

fn sync_loop(
    store: &Store,
    roots: &[PathBuf],
    mut rx: crate::handoff::Receiver<String>,
    stats: &SyncStats,
) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut pending: Vec<String> = Vec::new();
    while let Some(first) = rx.recv_batch() {
        // Let the round gather what is released within RELEASE_LINGER.
        pending.extend(first);
        pending.extend(rx.gather_for(RELEASE_LINGER));
        let result = roots
            .iter()
            .try_for_each(|r| syncfs(r).map_err(|e| format!("{}: {e}", r.display())));
        stats.rounds.fetch_add(1, Relaxed);
        metrics::counter!(SYNC_ROUNDS).increment(1);
        if let Err(e) = &result {
            // Kept for the next round (and for replay at start-up if none succeeds).
            tracing::error!("syncfs failed: {e}; journal entries kept");
            continue;
        }
        // Not synced itself: if this deletion is lost, replay finds the files intact.
        let ops: Vec<Op> = pending
            .drain(..)
            .map(|q| Op::Delete(CF_JOURNAL, q.into_bytes()))
            .collect();
        let n = ops.len() as u64;
        match store.write_relaxed(ops) {
            Ok(()) => {
                stats.released.fetch_add(n, Relaxed);
                metrics::counter!(RELEASED).increment(n);
            }
            Err(e) => tracing::warn!("releasing journal entries: {e:#} (replayed at start)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> JournalEntry {
        JournalEntry {
            qid: "Q1".into(),
            files: vec![
                JournalFile {
                    dir: "alice".into(),
                    name: "1.Q1_0.h".into(),
                    info: None,
                },
                JournalFile {
                    dir: "bob/.Junk".into(),
                    name: "1.Q1_1.h".into(),
                    info: Some("2,S".into()),
                },
            ],
        }
    }

    /// A data directory holding the Maildirs is one file system: one `syncfs` per round.
    #[test]
    fn roots_on_one_file_system_are_synced_once() {
        let d = tempfile::tempdir().unwrap();
        let mail = d.path().join("mail");
        std::fs::create_dir_all(&mail).unwrap();
        let missing = d.path().join("missing");
        let roots =
            distinct_filesystems(vec![mail.clone(), d.path().to_path_buf(), missing.clone()]);
        assert_eq!(roots, vec![mail, missing]);
    }

    #[test]
    fn values_round_trip() {
        let e = entry();
        let Op::Put(_, _, v) = put_op(&e, b"body\r\n").unwrap() else {
            panic!("not a put")
        };
        let (back, body) = decode(&v).unwrap();
        assert_eq!(back, e);
        assert_eq!(body, b"body\r\n");
        assert!(decode(&v[..3]).is_err());
        assert!(decode(&v[..10]).is_err());
    }

    /// Replay restores a missing copy, repairs a truncated one where a reader moved it (to
    /// `cur/` with flags), leaves an intact one alone, and empties the journal.
    #[test]
    fn replay_restores_missing_and_damaged_copies_once() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("db")).unwrap();
        let e = entry();
        let body = b"Subject: x\r\n\r\nhello\r\n";
        store
            .commit_blocking(vec![put_op(&e, body).unwrap()])
            .unwrap();
        // alice: a reader already moved it to cur/ and flagged it, but its data was lost.
        std::fs::create_dir_all(tmp.path().join("alice/cur")).unwrap();
        let moved = tmp.path().join("alice/cur/1.Q1_0.h:2,S");
        std::fs::write(&moved, b"").unwrap();
        let r = replay(&store, tmp.path()).unwrap();
        assert_eq!((r.entries, r.rewritten, r.intact), (1, 2, 0));
        assert_eq!(std::fs::read(&moved).unwrap(), body);
        assert_eq!(
            std::fs::read(tmp.path().join("bob/.Junk/cur/1.Q1_1.h:2,S")).unwrap(),
            body
        );
        assert!(!tmp.path().join("alice/new/1.Q1_0.h").exists());
        assert!(store.scan_prefix(CF_JOURNAL, b"").unwrap().is_empty());
        // Again with intact copies: nothing written.
        store
            .commit_blocking(vec![put_op(&e, body).unwrap()])
            .unwrap();
        let r = replay(&store, tmp.path()).unwrap();
        assert_eq!((r.entries, r.rewritten, r.intact), (1, 0, 2));
        assert_eq!(
            std::fs::read_dir(tmp.path().join("alice/tmp"))
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn released_entries_go_after_a_round() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("db")).unwrap();
        let e = entry();
        store
            .commit_blocking(vec![put_op(&e, b"x").unwrap()])
            .unwrap();
        let (syncer, stats) = Syncer::start(store.clone(), vec![tmp.path().to_path_buf()]).unwrap();
        syncer.release("Q1");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while stats.released.load(std::sync::atomic::Ordering::Relaxed) < 1 {
            assert!(
                std::time::Instant::now() < deadline,
                "no round released the entry"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(stats.rounds.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        assert!(store.scan_prefix(CF_JOURNAL, b"").unwrap().is_empty());
    }
}
