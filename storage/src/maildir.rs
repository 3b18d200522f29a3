//! Maildir++ delivery on io_uring (<https://cr.yp.to/proto/maildir.html>).
//!
//! A message is created in `tmp/`, written, fsynced, renamed into `new/`, and the `new/`
//! directory is fsynced so the rename itself is durable. Directory fsyncs are coalesced: when
//! several deliveries into the same directory finish together, one fsync covers them all.
//! File names are `<secs>.<QID>_<n>.<host>`: unique because the QID is, and deterministic so
//! that queue recovery can tell whether a delivery already happened before a crash.

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

async fn write_sync_close(file: tokio_uring::fs::File, data: Bytes) -> io::Result<()> {
    let (res, _) = file.write_all_at(data, 0).await;
    let synced = match res {
        Ok(()) => file.sync_all().await,
        Err(e) => Err(e),
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
    ///
    /// Where the file system supports it (ext4, XFS, btrfs, tmpfs), the file is created
    /// unnamed with `O_TMPFILE` in `new/`, written, fsynced and then linked under its name:
    /// readers still only ever see complete files (the Maildir guarantee), but the inode is
    /// allocated outside the directory lock and one directory operation replaces the
    /// create-in-`tmp/` + rename pair. Elsewhere the classic `tmp/` + rename path is used.
    pub async fn deliver(&self, root: &Path, name: &str, data: Bytes) -> io::Result<u64> {
        self.deliver_with(root, name, None, data).await
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
        if !self.no_tmpfile.get() {
            match self.deliver_tmpfile(&new_dir, &new, data.clone()).await {
                Ok(()) => {
                    self.sync_dir(&new_dir).await?;
                    return Ok(len);
                }
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
                    self.deliver_tmpfile(&new_dir, &new, data).await?;
                    self.sync_dir(&new_dir).await?;
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
        if let Err(e) = write_sync_close(file, data).await {
            let _ = tokio_uring::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio_uring::fs::rename(&tmp, &new).await?;
        self.sync_dir(&new_dir).await?;
        Ok(len)
    }

    async fn deliver_tmpfile(&self, dir: &Path, target: &Path, data: Bytes) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let file = tokio_uring::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .mode(0o600)
            .open(dir)
            .await?;
        let fd = file.as_raw_fd();
        let (res, _) = file.write_all_at(data, 0).await;
        let res = match res {
            Ok(()) => file.sync_all().await,
            Err(e) => Err(e),
        };
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
    if root.join("new").join(name).exists() {
        return true;
    }
    let prefix = format!("{name}:");
    match std::fs::read_dir(root.join("cur")) {
        Ok(rd) => rd.flatten().any(|e| {
            let n = e.file_name();
            let n = n.to_string_lossy();
            n == name || n.starts_with(&prefix)
        }),
        Err(_) => false,
    }
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
                .deliver_with(&root, "1.Q_0.h", Some("2,S"), Bytes::from_static(b"x\r\n"))
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
