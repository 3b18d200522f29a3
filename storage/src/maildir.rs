//! Maildir++ delivery on io_uring (<https://cr.yp.to/proto/maildir.html>).
//!
//! A message gets its name in `new/` (or `cur/`, with flags) in one step, so readers only ever
//! see complete files. How it is made durable is the caller's choice ([`Durability`]):
//! - [`Durability::Now`]: the classic path. Created in `tmp/`, written, fsynced, renamed into
//!   `new/`, and `new/` fsynced. A power cut leaves either nothing in `new/` or the whole
//!   file: never an empty or partial message a reader would see. (An `O_TMPFILE` fsynced
//!   before `linkat` is not durable after the link on ext4 without a journal — the link count
//!   of 0 is what was written — and one linked before its fsync can be seen half-written
//!   after a power cut.) Directory fsyncs are coalesced: deliveries into one directory that
//!   finish together share one.
//! - [`Durability::Deferred`]: created unnamed (`O_TMPFILE`) in `new/`, written and linked,
//!   with no flush at all (`tmp/` and rename where the file system lacks `O_TMPFILE`). Only
//!   for a caller that has already made the message durable elsewhere, with the file's name:
//!   the intake journal ([`crate::journal`]), which rewrites the file after a power cut and
//!   keeps its entry until a shared `syncfs` round has covered the file.
//!
//! File names are `<secs>.<QID>_<n>.<host>`: unique because the QID is, and deterministic so
//! that recovery can tell whether a delivery already happened before a crash.

use bytes::Bytes;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Per-thread Maildir writer (io_uring handles are per thread).
#[derive(Default)]
pub struct MaildirWriter {
    known_dirs: RefCell<HashSet<PathBuf>>,
    dir_sync: RefCell<HashMap<PathBuf, Rc<DirSync>>>,
    no_tmpfile: std::cell::Cell<bool>,
}

/// Whether a delivery is flushed before it returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// File (after it has its name) and directory fsynced before `deliver` returns.
    Now,
    /// Written to the page cache only; a later `syncfs` makes it durable.
    Deferred,
}

async fn write_sync_close(
    file: tokio_uring::fs::File,
    data: Bytes,
    durability: Durability,
) -> io::Result<()> {
    let (res, _) = file.write_all_at(data, 0).await;
    let synced = match res {
        Ok(()) if durability == Durability::Now => file.sync_all().await,
        other => other,
    };
    let closed = file.close().await;
    synced.and(closed)
}

/// Gives the open, unnamed (`O_TMPFILE`) file `fd` the name `target`. A metadata-only call
/// (no data is written), done synchronously.
fn link_fd(fd: i32, target: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).map_err(io::Error::other)?;
    let to = std::ffi::CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both paths are valid NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[derive(Default)]
struct DirSync {
    /// Generation counter: bumped by each fsync that starts.
    started: std::cell::Cell<u64>,
    /// Highest generation finished.
    finished: std::cell::Cell<u64>,
    running: std::cell::Cell<bool>,
    notify: tokio::sync::Notify,
}

/// The unique base name of a delivery (no `:2,` info part).
pub fn file_name(arrival_secs: u64, qid: &str, n: usize, host: &str) -> String {
    // Maildir spec: '/' and ':' must not appear in the host part.
    let host: String = host
        .chars()
        .map(|c| if c == '/' || c == ':' { '_' } else { c })
        .collect();
    format!("{arrival_secs}.{qid}_{n}.{host}")
}

impl MaildirWriter {
    /// A writer with empty caches.
    pub fn new() -> Self {
        Self::default()
    }

    async fn ensure_dirs(&self, root: &Path) -> io::Result<()> {
        if self.known_dirs.borrow().contains(root) {
            return Ok(());
        }
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        self.known_dirs.borrow_mut().insert(root.to_path_buf());
        Ok(())
    }

    /// Forgets cached directory existence (after an admin removed a Maildir, for example).
    pub fn forget(&self, root: &Path) {
        self.known_dirs.borrow_mut().remove(root);
    }

    /// Durably stores `data` as `<root>/new/<name>`; returns the size written.
    pub async fn deliver(&self, root: &Path, name: &str, data: Bytes) -> io::Result<u64> {
        self.deliver_with(root, name, None, data, Durability::Now)
            .await
    }

    /// Like [`MaildirWriter::deliver`], with flags: when `info` (`2,FS`) is given the message
    /// goes to `<root>/cur/<name>:<info>`, where a reader sees it as already known with
    /// those flags (Maildir: only `cur/` names carry an info part).
    pub async fn deliver_with(
        &self,
        root: &Path,
        name: &str,
        info: Option<&str>,
        data: Bytes,
        durability: Durability,
    ) -> io::Result<u64> {
        if let Err(e) = self.ensure_dirs(root).await {
            // The cache may be stale (directory removed meanwhile): retry once from scratch.
            self.forget(root);
            return Err(e);
        }
        let (new_dir, new) = match info {
            Some(i) => (
                root.join("cur"),
                root.join("cur").join(format!("{name}:{i}")),
            ),
            None => (root.join("new"), root.join("new").join(name)),
        };
        let len = data.len() as u64;
        if durability == Durability::Deferred && !self.no_tmpfile.get() {
            match self.deliver_tmpfile(&new, data.clone()).await {
                Ok(()) => return Ok(len),
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EOPNOTSUPP | libc::EISDIR | libc::EINVAL)
                    ) =>
                {
                    tracing::info!(
                        "O_TMPFILE not supported under {}: using tmp/ and rename",
                        root.display()
                    );
                    self.no_tmpfile.set(true);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.forget(root);
                    self.ensure_dirs(root).await?;
                    self.deliver_tmpfile(&new, data).await?;
                    return Ok(len);
                }
                Err(e) => return Err(e),
            }
        }
        let tmp = root.join("tmp").join(name);
        let file = match tokio_uring::fs::File::create(&tmp).await {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.forget(root);
                self.ensure_dirs(root).await?;
                tokio_uring::fs::File::create(&tmp).await?
            }
            Err(e) => return Err(e),
        };
        // fsynced before the rename, which does not change its link count (1).
        if let Err(e) = write_sync_close(file, data, durability).await {
            let _ = tokio_uring::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio_uring::fs::rename(&tmp, &new).await?;
        self.sync_dir_if(&new_dir, durability).await?;
        Ok(len)
    }

    async fn sync_dir_if(&self, dir: &Path, durability: Durability) -> io::Result<()> {
        match durability {
            Durability::Now => self.sync_dir(dir).await,
            Durability::Deferred => Ok(()),
        }
    }

    /// Writes `data` to an unnamed file in `target`'s directory and links it as `target`,
    /// without a flush (see [`Durability::Deferred`]).
    async fn deliver_tmpfile(&self, target: &Path, data: Bytes) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let dir = target
            .parent()
            .ok_or_else(|| io::Error::other("target has no directory"))?;
        let file = tokio_uring::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(dir)
            .await?;
        let fd = file.as_raw_fd();
        let (res, _) = file.write_all_at(data, 0).await;
        // Linking needs the descriptor open; an unlinked file vanishes when it is closed.
        let res = res.and_then(|()| link_fd(fd, target));
        let closed = file.close().await;
        res.and(closed)
    }

    /// fsyncs a directory, sharing the call with concurrent requests for the same directory:
    /// a request is satisfied by any fsync that *started* after the request was made.
    pub async fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let st = self
            .dir_sync
            .borrow_mut()
            .entry(dir.to_path_buf())
            .or_default()
            .clone();
        let need = st.started.get() + 1;
        loop {
            if st.finished.get() >= need {
                return Ok(());
            }
            if !st.running.get() {
                st.running.set(true);
                let gen_ = st.started.get() + 1;
                st.started.set(gen_);
                let res = async {
                    let f = tokio_uring::fs::File::open(dir).await?;
                    f.sync_all().await?;
                    f.close().await
                }
                .await;
                st.running.set(false);
                if res.is_ok() {
                    st.finished.set(gen_);
                }
                st.notify.notify_waiters();
                res?;
                continue;
            }
            st.notify.notified().await;
        }
    }
}

/// True if a delivery with base name `name` exists in `new/` or `cur/` (any flags).
pub fn delivered(root: &Path, name: &str) -> bool {
    locate(root, name).is_some()
}

/// Where the delivery with base name `name` is now: `new/<name>`, or `cur/<name>` with
/// whatever info part (flags) a reader gave it.
pub fn locate(root: &Path, name: &str) -> Option<PathBuf> {
    let new = root.join("new").join(name);
    if new.exists() {
        return Some(new);
    }
    let prefix = format!("{name}:");
    std::fs::read_dir(root.join("cur"))
        .ok()?
        .flatten()
        .find_map(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            (n == name || n.starts_with(&prefix)).then(|| e.path())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliver_and_detect() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("alice");
        tokio_uring::start(async {
            let w = MaildirWriter::new();
            let mut tasks = Vec::new();
            let w = Rc::new(w);
            for i in 0..20 {
                let (w, root) = (w.clone(), root.clone());
                tasks.push(tokio_uring::spawn(async move {
                    let name = file_name(1, "QID", i, "host/x:y");
                    w.deliver(
                        &root,
                        &name,
                        Bytes::from_static(b"Subject: t\r\n\r\nhi\r\n"),
                    )
                    .await
                    .unwrap()
                }));
            }
            for t in tasks {
                assert_eq!(t.await.unwrap(), 18);
            }
        });
        assert_eq!(std::fs::read_dir(root.join("new")).unwrap().count(), 20);
        assert_eq!(std::fs::read_dir(root.join("tmp")).unwrap().count(), 0);
        assert!(delivered(&root, "1.QID_3.host_x_y"));
        std::fs::rename(
            root.join("new/1.QID_3.host_x_y"),
            root.join("cur/1.QID_3.host_x_y:2,S"),
        )
        .unwrap();
        assert!(delivered(&root, "1.QID_3.host_x_y"));
        assert!(!delivered(&root, "1.QID_99.host_x_y"));
    }

    #[test]
    fn deliver_with_flags_goes_to_cur_with_its_info() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".Junk");
        tokio_uring::start(async {
            let w = MaildirWriter::new();
            let n = w
                .deliver_with(
                    &root,
                    "1.Q_0.h",
                    Some("2,S"),
                    Bytes::from_static(b"x\r\n"),
                    Durability::Deferred,
                )
                .await
                .unwrap();
            assert_eq!(n, 3);
        });
        assert_eq!(
            std::fs::read(root.join("cur/1.Q_0.h:2,S")).unwrap(),
            b"x\r\n"
        );
        assert_eq!(std::fs::read_dir(root.join("new")).unwrap().count(), 0);
        assert!(delivered(&root, "1.Q_0.h"));
    }
}
