//! The spool: bodies of queued messages. Small bodies (up to [`INLINE_MAX`]) are stored in
//! RocksDB and committed in the same synced, group-committed batch as their queue record: no
//! file, no inode, no separate fsync. Larger bodies get a file per QID, written with io_uring
//! and fsynced (file and directory) before the record that refers to them is committed.

use crate::store::{CF_SPOOL, Op, Store};
use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// Bodies up to this size live in the database.
pub const INLINE_MAX: usize = 256 * 1024;

/// The spool directory and the database.
#[derive(Clone)]
pub struct Spool {
    dir: PathBuf,
    store: Store,
}

impl Spool {
    /// Opens (creating) the spool directory.
    pub fn open(dir: &Path, store: Store) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
            store,
        })
    }

    /// Path of a message's spool file (large messages only).
    pub fn path(&self, qid: &str) -> PathBuf {
        self.dir.join(qid)
    }

    /// Makes `data` durable for `qid` together with `ops` (the queue record): one synced
    /// batch for small bodies; for large ones the file is fsynced first.
    pub async fn store_with(&self, qid: &str, data: Bytes, mut ops: Vec<Op>) -> anyhow::Result<()> {
        if data.len() <= INLINE_MAX {
            ops.push(Op::Put(CF_SPOOL, qid.as_bytes().to_vec(), data.to_vec()));
        } else {
            self.write_file(qid, data)
                .await
                .map_err(|e| anyhow::anyhow!("spool file {qid}: {e}"))?;
        }
        self.store.commit(ops).await
    }

    async fn write_file(&self, qid: &str, data: Bytes) -> io::Result<()> {
        let tmp = self.dir.join(format!("{qid}.tmp"));
        let f = tokio_uring::fs::File::create(&tmp).await?;
        let (res, _) = f.write_all_at(data, 0).await;
        let res = match res {
            Ok(()) => f.sync_all().await,
            Err(e) => Err(e),
        };
        f.close().await?;
        res?;
        tokio_uring::fs::rename(&tmp, self.path(qid)).await?;
        let d = tokio_uring::fs::File::open(&self.dir).await?;
        d.sync_all().await?;
        d.close().await
    }

    /// Reads a queued message body: from the database, or, for a large one, through a memory
    /// map of its file (never read whole onto the heap).
    pub fn read(&self, qid: &str) -> io::Result<Bytes> {
        match self.store.get(CF_SPOOL, qid.as_bytes()) {
            Ok(Some(v)) => Ok(Bytes::from(v)),
            Ok(None) => {
                let f = std::fs::File::open(self.path(qid))?;
                if f.metadata()?.len() == 0 {
                    return Ok(Bytes::new());
                }
                // SAFETY: spool files are written once, before their record exists, and
                // never changed; a removal leaves the mapping valid.
                let m = unsafe { memmap2::Mmap::map(&f)? };
                Ok(Bytes::from_owner(m))
            }
            Err(e) => Err(io::Error::other(e)),
        }
    }

    /// The write that removes a body from the database (commit it with the record's deletion).
    pub fn delete_op(qid: &str) -> Op {
        Op::Delete(CF_SPOOL, qid.as_bytes().to_vec())
    }

    /// Removes a body's file, if it has one; a missing file is not an error.
    pub fn remove_file(&self, qid: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(qid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Removes a body entirely (database entry and file).
    pub fn remove(&self, qid: &str) -> anyhow::Result<()> {
        self.store.write_relaxed(vec![Self::delete_op(qid)])?;
        self.remove_file(qid)?;
        Ok(())
    }

    /// QIDs with a body (database or file; stale `.tmp` file names are returned as they are).
    pub fn list(&self) -> anyhow::Result<Vec<String>> {
        let mut out: Vec<String> = self
            .store
            .scan_prefix(CF_SPOOL, b"")?
            .into_iter()
            .map(|(k, _)| String::from_utf8_lossy(&k).into_owned())
            .collect();
        out.extend(
            std::fs::read_dir(&self.dir)?
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned()),
        );
        Ok(out)
    }
}
