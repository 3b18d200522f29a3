//! Spool files: the bodies of queued messages, one file per QID, written with io_uring and
//! fsynced before the queue record that refers to them is committed.

use bytes::Bytes;
use std::io;
use std::path::{Path, PathBuf};

/// The spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
}

impl Spool {
    /// Opens (creating) the spool directory.
    pub fn open(dir: &Path) -> io::Result<Spool> {
        std::fs::create_dir_all(dir)?;
        Ok(Spool {
            dir: dir.to_path_buf(),
        })
    }

    /// Path of a message's spool file.
    pub fn path(&self, qid: &str) -> PathBuf {
        self.dir.join(qid)
    }

    /// Durably writes a message (file and directory entry).
    pub async fn write(&self, qid: &str, data: Bytes) -> io::Result<()> {
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

    /// Reads a spooled message (memory-mapped would pay off only for large files; spool files
    /// are read once per attempt).
    pub fn read(&self, qid: &str) -> io::Result<Bytes> {
        std::fs::read(self.path(qid)).map(Bytes::from)
    }

    /// Removes a spool file; a missing file is not an error.
    pub fn remove(&self, qid: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(qid)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// QIDs of all spool files (including stale `.tmp` names, returned as-is).
    pub fn list(&self) -> io::Result<Vec<String>> {
        Ok(std::fs::read_dir(&self.dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }
}
