//! RocksDB store with one column family per kind of state, and a group-commit writer.
//!
//! Durable writes (`sync = true`) go through [`Committer`]: a dedicated thread takes every
//! write request that is waiting, puts them in one `WriteBatch` and writes it with one WAL
//! fsync, then answers each requester. Concurrent SMTP sessions thus share fsyncs instead of
//! queueing behind each other, and no event loop ever blocks on the disk.

use crate::handoff;
use anyhow::{Context, Result};
use rocksdb::{ColumnFamilyDescriptor, DB, Options, WriteBatch, WriteOptions};
use std::path::Path;
use std::sync::Arc;
use std::thread;

/// Column family for domains, users, groups, public mailboxes, addresses and settings.
pub const CF_DIRECTORY: &str = "directory";
/// Column family for queue records (envelope + per-recipient status), key = QID.
pub const CF_QUEUE: &str = "queue";
/// Column family for per-mailbox usage counters (bytes, messages).
pub const CF_USAGE: &str = "usage";
/// Column family for bodies of small queued messages, key = QID.
pub const CF_SPOOL: &str = "spool";

/// Column family of the full-text index: `<mailbox id:8><token>` → UIDs (u32 BE, appended
/// with the merge operator).
pub const CF_FTS: &str = "fts";
/// Column family of the IMAP mailbox index.
pub const CF_MAILBOX: &str = "mailbox";
/// Column family of the intake journal (see `journal.rs`), key = QID.
pub const CF_JOURNAL: &str = "journal";
/// Column family of greylisting triplets (see `greylist.rs`).
pub const CF_GREYLIST: &str = "greylist";
/// Column family of the Bayes model (see `bayes.rs`).
pub const CF_BAYES: &str = "bayes";

/// Column family of Sieve scripts, vacation replies sent and duplicate ids (see `sieve.rs`).
pub const CF_SIEVE: &str = "sieve";

const ALL_CFS: [&str; 10] = [
    CF_DIRECTORY,
    CF_QUEUE,
    CF_USAGE,
    CF_SPOOL,
    CF_MAILBOX,
    CF_FTS,
    CF_JOURNAL,
    CF_GREYLIST,
    CF_BAYES,
    CF_SIEVE,
];

/// Merge operator of [`CF_FTS`]: posting lists are concatenated.
fn concat_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    let mut out = existing.map(<[u8]>::to_vec).unwrap_or_default();
    for op in operands {
        out.extend_from_slice(op);
    }
    Some(out)
}

/// One key-value change inside a group commit.
#[derive(Debug, Clone)]
pub enum Op {
    /// Put `value` at `key` in column family `cf`.
    Put(&'static str, Vec<u8>, Vec<u8>),
    /// Delete `key` in column family `cf`.
    Delete(&'static str, Vec<u8>),
    /// Merge `value` into `key` (column families with a merge operator).
    Merge(&'static str, Vec<u8>, Vec<u8>),
    /// Delete every key in `[from, to)`.
    DeleteRange(&'static str, Vec<u8>, Vec<u8>),
}

struct CommitRequest {
    ops: Vec<Op>,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// Shared handle to the database and its group-commit thread.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    commits: Arc<Committer>,
    /// The directory the database was opened in.
    dir: Arc<std::path::PathBuf>,
}

/// The commit thread's queue. When the last handle goes, the queue closes and the thread is
/// joined, so the thread's reference to the database never outlives the handles (a process
/// leaving with the thread still running crashed in RocksDB's exit-time destructors: the
/// storage tests' SIGSEGV at exit).
struct Committer {
    tx: Option<handoff::Sender<CommitRequest>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database under `path` and starts the commit thread.
    pub fn open(path: &Path) -> Result<Store> {
        std::fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(2);
        let cfs = ALL_CFS.iter().map(|n| {
            let mut o = Options::default();
            if *n == CF_FTS {
                o.set_merge_operator_associative("concat", concat_merge);
            }
            if *n == CF_BAYES {
                // Counts are merged deltas; reads are point look-ups of a message's tokens,
                // most of them absent: a Bloom filter answers those without a disk read.
                o.set_merge_operator_associative("bayes-add", crate::counts::add_merge);
                let mut t = rocksdb::BlockBasedOptions::default();
                t.set_bloom_filter(10.0, false);
                // Hash index inside data blocks: a look-up finds its key without a binary
                // search over the block (measured: the binary search was the largest
                // share of a classification).
                t.set_data_block_index_type(rocksdb::DataBlockIndexType::BinaryAndHash);
                t.set_block_cache(&rocksdb::Cache::new_lru_cache(32 << 20));
                o.set_block_based_table_factory(&t);
            }
            if *n == CF_JOURNAL {
                // Entries hold whole bodies and live for tens of milliseconds: a small
                // memtable keeps them from holding 64 MiB (the default) of memory; its flushes
                // write little more than tombstones.
                o.set_write_buffer_size(8 << 20);
            }
            ColumnFamilyDescriptor::new(*n, o)
        });
        let db = DB::open_cf_descriptors(&opts, path, cfs)
            .with_context(|| format!("opening RocksDB at {}", path.display()))?;
        let db = Arc::new(db);
        let (tx, rx) = handoff::handoff::<CommitRequest>();
        let cdb = db.clone();
        let thread = thread::Builder::new()
            .name("store-commit".into())
            .spawn(move || commit_loop(cdb, rx))
            .context("spawning commit thread")?;
        let commits = Arc::new(Committer {
            tx: Some(tx),
            thread: Some(thread),
        });
        Ok(Store {
            db,
            commits,
            dir: Arc::new(path.to_path_buf()),
        })
    }

    /// The directory the database was opened in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The raw database, for reads.
    pub fn db(&self) -> &DB {
        &self.db
    }

    /// Reads a value.
    pub fn get(&self, cf: &str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let h = self
            .db
            .cf_handle(cf)
            .with_context(|| format!("no column family {cf}"))?;
        Ok(self.db.get_cf(&h, key)?)
    }

    /// All key-value pairs of a column family whose key starts with `prefix`.
    pub fn scan_prefix(&self, cf: &str, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.for_each_prefix(cf, prefix, |k, v| {
            out.push((k.to_vec(), v.to_vec()));
            Ok(())
        })?;
        Ok(out)
    }

    /// The first `n` key-value pairs (in key order) of column family `cf` whose key starts
    /// with `prefix`.
    pub fn first_with_prefix(
        &self,
        cf: &str,
        prefix: &[u8],
        n: usize,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let mut out = Vec::new();
        self.walk_prefix(cf, prefix, |k, v| {
            if out.len() >= n {
                return Ok(false);
            }
            out.push((k.to_vec(), v.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Calls `f` with each key-value pair of column family `cf` whose key starts with
    /// `prefix`, in key order, without collecting them.
    pub fn for_each_prefix(
        &self,
        cf: &str,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<()>,
    ) -> Result<()> {
        self.walk_prefix(cf, prefix, |k, v| f(k, v).map(|()| true))
    }

    /// Walks the pairs under `prefix` in key order while `f` returns true.
    fn walk_prefix(
        &self,
        cf: &str,
        prefix: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let h = self
            .db
            .cf_handle(cf)
            .with_context(|| format!("no column family {cf}"))?;
        let it = self.db.iterator_cf(
            &h,
            rocksdb::IteratorMode::From(prefix, rocksdb::Direction::Forward),
        );
        for item in it {
            let (k, v) = item?;
            if !k.starts_with(prefix) || !f(&k, &v)? {
                break;
            }
        }
        Ok(())
    }

    /// Applies `ops` atomically and durably (fsynced WAL), sharing the fsync with every other
    /// commit waiting at the same moment. Safe to await from any runtime.
    pub async fn commit(&self, ops: Vec<Op>) -> Result<()> {
        let (done, wait) = tokio::sync::oneshot::channel();
        self.commits
            .tx
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("commit thread has stopped"))?
            .send(CommitRequest { ops, done })
            .map_err(|_| anyhow::anyhow!("commit thread has stopped"))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(anyhow::anyhow!("durable write failed: {e}")),
            Err(_) => Err(anyhow::anyhow!("commit thread dropped the request")),
        }
    }

    /// Blocking variant of [`Store::commit`] for admin and start-up code.
    pub fn commit_blocking(&self, ops: Vec<Op>) -> Result<()> {
        let mut batch = WriteBatch::default();
        add_ops(&self.db, &mut batch, &ops).map_err(|e| anyhow::anyhow!(e))?;
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).context("durable write")
    }

    /// Non-durable write (counters that can be recomputed); still atomic.
    pub fn write_relaxed(&self, ops: Vec<Op>) -> Result<()> {
        let mut batch = WriteBatch::default();
        add_ops(&self.db, &mut batch, &ops).map_err(|e| anyhow::anyhow!(e))?;
        self.db.write(batch).context("write")
    }

    /// Compacts a column family in the background (drops the tombstones of deleted keys, which
    /// otherwise make every scan slower). Returns at once.
    pub fn compact_in_background(&self, cf: &'static str) {
        let db = self.db.clone();
        let _ = thread::Builder::new()
            .name("store-compact".into())
            .spawn(move || {
                if let Some(h) = db.cf_handle(cf) {
                    db.compact_range_cf(&h, None::<&[u8]>, None::<&[u8]>);
                }
            });
    }

    /// Compacts a column family now, on the calling thread (callers already off the event
    /// loops, where a thread of its own could outlive the process's exit).
    pub fn compact(&self, cf: &str) {
        if let Some(h) = self.db.cf_handle(cf) {
            self.db.compact_range_cf(&h, None::<&[u8]>, None::<&[u8]>);
        }
    }

    /// Flushes the WAL to disk (used at shutdown).
    pub fn flush(&self) -> Result<()> {
        self.db.flush_wal(true).context("flushing WAL")
    }
}

fn add_ops(db: &DB, batch: &mut WriteBatch, ops: &[Op]) -> Result<(), String> {
    for op in ops {
        match op {
            Op::Put(cf, k, v) => {
                let h = db
                    .cf_handle(cf)
                    .ok_or_else(|| format!("no column family {cf}"))?;
                batch.put_cf(&h, k, v);
            }
            Op::Delete(cf, k) => {
                let h = db
                    .cf_handle(cf)
                    .ok_or_else(|| format!("no column family {cf}"))?;
                batch.delete_cf(&h, k);
            }
            Op::Merge(cf, k, v) => {
                let h = db
                    .cf_handle(cf)
                    .ok_or_else(|| format!("no column family {cf}"))?;
                batch.merge_cf(&h, k, v);
            }
            Op::DeleteRange(cf, a, b) => {
                let h = db
                    .cf_handle(cf)
                    .ok_or_else(|| format!("no column family {cf}"))?;
                batch.delete_range_cf(&h, a, b);
            }
        }
    }
    Ok(())
}

fn commit_loop(db: Arc<DB>, mut rx: handoff::Receiver<CommitRequest>) {
    // Written without `sync`, then one `SyncWAL`: RocksDB fsyncs the WAL outside its write
    // queue, so writes from other threads (usage counters, the mailbox index) go on during
    // the fsync instead of joining a synced write group and waiting for it.
    let wo = WriteOptions::default();
    let mut last_group = 0;
    while let Some(mut group) = rx.recv_batch() {
        // Group commit: everything that queued up while the previous fsync ran, and, when
        // the previous group was shared (sessions are committing concurrently), whatever
        // arrives within COMMIT_LINGER more. A lone session never waits. A group is bounded
        // by the requests waiting: each requester waits for its answer before the next.
        if last_group > 1 {
            group.extend(rx.gather_for(COMMIT_LINGER));
        }
        last_group = group.len();
        let mut batch = WriteBatch::default();
        let mut result = Ok(());
        for r in &group {
            if let Err(e) = add_ops(&db, &mut batch, &r.ops) {
                result = Err(e);
                break;
            }
        }
        if result.is_ok() {
            result = db
                .write_opt(batch, &wo)
                .and_then(|()| db.flush_wal(true))
                .map_err(|e| e.to_string());
        }
        metrics::counter!(COMMIT_GROUPS).increment(1);
        metrics::histogram!(COMMIT_GROUP_SIZE).record(group.len() as f64);
        for r in group {
            let _ = r.done.send(result.clone());
        }
    }
}

/// How long a group commit waits for more writes when the previous group was shared.
const COMMIT_LINGER: std::time::Duration = std::time::Duration::from_micros(300);

/// Counter: group commits (each one WAL fsync).
pub const COMMIT_GROUPS: &str = "postcore_store_commit_groups_total";
/// Histogram: durable writes per group commit.
pub const COMMIT_GROUP_SIZE: &str = "postcore_store_commit_group_size";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut waits = Vec::new();
            for i in 0..50u32 {
                let s = store.clone();
                waits.push(tokio::spawn(async move {
                    s.commit(vec![Op::Put(
                        CF_QUEUE,
                        i.to_be_bytes().to_vec(),
                        b"v".to_vec(),
                    )])
                    .await
                }));
            }
            for w in waits {
                w.await.unwrap().unwrap();
            }
        });
        assert_eq!(store.scan_prefix(CF_QUEUE, b"").unwrap().len(), 50);
        store
            .commit_blocking(vec![Op::Delete(CF_QUEUE, 0u32.to_be_bytes().to_vec())])
            .unwrap();
        assert_eq!(store.get(CF_QUEUE, &0u32.to_be_bytes()).unwrap(), None);
    }
}
