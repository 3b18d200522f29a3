//! Notices when other programs change a Maildir folder (inotify(7)), so that IMAP IDLE
//! reports a file dropped into `new/` or renamed in `cur/` by another tool at once, not at
//! its next poll. postcore's own changes wake sessions directly; this covers the rest.

use std::collections::{HashMap, HashSet};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Entries created, moved in or out, or removed: a message arrived, changed flags or went.
const MASK: u32 =
    libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_MOVED_FROM | libc::IN_DELETE | libc::IN_ONLYDIR;

#[derive(Default)]
struct Watches {
    /// Watch descriptor → mailbox id.
    by_wd: HashMap<i32, u64>,
    /// Mailboxes whose `new/` and `cur/` are watched.
    ids: HashSet<u64>,
}

/// How long the reader lets events gather after each batch. postcore's own deliveries are
/// events too (thousands a second under load; their sessions were woken directly already):
/// reading them one at a time cost a thread wake-up per message (perf `sched:sched_switch`,
/// 20 SMTP sessions: 2,923 switches for 5,000 messages). Another program's change is seen
/// at most this much later.
const BATCH_LINGER: std::time::Duration = std::time::Duration::from_millis(20);

/// One inotify instance and the thread that reads it.
pub struct DirWatch {
    fd: OwnedFd,
    watches: Arc<Mutex<Watches>>,
}

impl DirWatch {
    /// Starts watching; `changed(id)` is called (on the reader thread) for every batch of
    /// events that touches mailbox `id`. The thread ends when `changed` returns false.
    pub fn start(changed: impl Fn(u64) -> bool + Send + 'static) -> io::Result<DirWatch> {
        // SAFETY: inotify_init1 takes flags only and returns a new descriptor or -1.
        let raw = unsafe { libc::inotify_init1(libc::IN_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let reader = fd.try_clone()?;
        let watches: Arc<Mutex<Watches>> = Arc::default();
        let w = watches.clone();
        std::thread::Builder::new()
            .name("maildir-inotify".into())
            .spawn(move || read_events(reader, w, changed))?;
        Ok(DirWatch { fd, watches })
    }

    /// Watches the `new/` and `cur/` directories of the Maildir folder `path`, reported as
    /// mailbox `id`. Does nothing if that mailbox is watched already. Fails when the kernel's
    /// watch limit is reached (`fs.inotify.max_user_watches`): callers then rely on polling.
    pub fn add(&self, id: u64, path: &Path) -> io::Result<()> {
        let mut w = self.watches.lock().unwrap_or_else(|p| p.into_inner());
        if w.ids.contains(&id) {
            return Ok(());
        }
        for sub in ["new", "cur"] {
            let dir = path.join(sub);
            let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
                .map_err(|_| io::Error::other("NUL in a mailbox path"))?;
            // SAFETY: a valid descriptor and a NUL-terminated path.
            let wd = unsafe { libc::inotify_add_watch(self.fd.as_raw_fd(), c.as_ptr(), MASK) };
            if wd < 0 {
                return Err(io::Error::last_os_error());
            }
            w.by_wd.insert(wd, id);
        }
        w.ids.insert(id);
        Ok(())
    }
}

/// The reader thread: blocks on the inotify descriptor and reports the mailboxes touched.
fn read_events(fd: OwnedFd, watches: Arc<Mutex<Watches>>, changed: impl Fn(u64) -> bool) {
    let mut buf = vec![0u8; 16 * 1024];
    let head = std::mem::size_of::<libc::inotify_event>();
    loop {
        // SAFETY: reading into a buffer we own, of the length given.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            tracing::warn!("inotify read failed: {}", io::Error::last_os_error());
            return;
        }
        let n = n as usize;
        let mut touched = Vec::new();
        {
            let mut w = watches.lock().unwrap_or_else(|p| p.into_inner());
            let mut off = 0;
            while off + head <= n {
                // inotify(7): struct inotify_event { int wd; u32 mask, cookie, len; char name[len]; }
                let field = |at: usize| -> [u8; 4] {
                    let mut b = [0u8; 4];
                    b.copy_from_slice(&buf[off + at..off + at + 4]);
                    b
                };
                let wd = i32::from_ne_bytes(field(0));
                let mask = u32::from_ne_bytes(field(4));
                let len = u32::from_ne_bytes(field(12)) as usize;
                off += head + len;
                if mask & libc::IN_IGNORED != 0 {
                    // The directory went (mailbox deleted): forget the watch.
                    if let Some(id) = w.by_wd.remove(&wd) {
                        w.ids.remove(&id);
                    }
                    continue;
                }
                if let Some(id) = w.by_wd.get(&wd)
                    && !touched.contains(id)
                {
                    touched.push(*id);
                }
            }
        }
        for id in touched {
            if !changed(id) {
                return;
            }
        }
        std::thread::sleep(BATCH_LINGER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn reports_files_created_and_renamed_by_others() {
        let d = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(d.path().join(sub)).unwrap();
        }
        let (tx, rx) = mpsc::channel();
        let w = DirWatch::start(move |id| tx.send(id).is_ok()).unwrap();
        w.add(7, d.path()).unwrap();
        w.add(7, d.path()).unwrap();
        // Writing in tmp/ is not a change of the mailbox; the rename into new/ is.
        std::fs::write(d.path().join("tmp/1.x"), "Subject: a\r\n\r\n").unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        std::fs::rename(d.path().join("tmp/1.x"), d.path().join("new/1.x")).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        // A flag change (rename into cur/ with an info suffix).
        while rx.try_recv().is_ok() {}
        std::fs::rename(d.path().join("new/1.x"), d.path().join("cur/1.x:2,S")).unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 7);
        // A folder that is not a Maildir cannot be watched.
        assert!(w.add(8, &d.path().join("missing")).is_err());
    }
}
