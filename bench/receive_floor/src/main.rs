//! receive-floor: the least work a durable Maildir receiver does for one message, and nothing
//! else, to tell how close any server can come to the no-disk ceiling (smtp-source ->
//! smtp-sink) on this machine. `bench/smtp_throughput.sh FLOOR=…` runs it beside postcore.
//!
//! Per message it does what postcore cannot avoid doing: the SMTP dialogue of a client that
//! does not pipeline (one reply a command, RFC 5321 §4.1), the message read up to `CRLF.CRLF`
//! and dot-unstuffed (§4.5.2), one file written unnamed in `new/` and linked under its name,
//! and the 250 only once the message is durable, by one of the flush modes of [`Sync`]
//! (FLOOR_SYNC=journal, the default and postcore's design, twice, syncfs, or nothing). Every flush is shared by all
//! the messages that arrived while the previous one ran (group commit). No parsing, no
//! recipient lookup, no queue, no mailbox index, no log line, no metrics: a lower bound, not a
//! mail server.
//!
//! Only `journal` and `twice` also keep Maildir's promise that a power cut never leaves a
//! partial file under a name (`syncfs` may write a file's name before its octets; an
//! unacknowledged message could then be found partial), as postcore must.
//!
//! usage: receive-floor ADDR MAILDIR [THREADS]   (THREADS 2: one listener each, SO_REUSEPORT)

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// How a message is made durable before its 250.
#[derive(Clone, Copy, PartialEq)]
enum Sync {
    /// A shared `syncfs` covers the Maildir files themselves (their names may reach the disk
    /// before their octets: not enough for Maildir's promise, see the top of this file).
    Syncfs,
    /// The message is also appended to a journal (a ring file written once at start, so an
    /// append overwrites blocks and `fdatasync` writes no size); one `fdatasync` covers every
    /// message appended while the previous one ran; a `syncfs` every 100 ms covers the Maildir
    /// files, after which their journal space may be reused. postcore's design.
    Journal,
    /// No flush at all: not durable, only to tell the file's cost from the flush's.
    Nothing,
    /// The unnamed file covered by one shared `syncfs`, then linked and covered by another:
    /// never a partial file under a name, without a journal; two flushes in a 250's path.
    Twice,
}

/// The journal ring's size: more than 100 ms of messages at any rate seen here.
const RING: u64 = 256 << 20;

/// Messages waiting for the next flush, and the thread that runs it.
struct GroupCommit {
    waiting: Mutex<Vec<(Vec<u8>, oneshot::Sender<()>)>>,
    wake: Condvar,
    mode: Sync,
}

fn check(rc: libc::c_int, what: &str) {
    if rc != 0 {
        eprintln!("{what}: {}", std::io::Error::last_os_error());
        std::process::exit(1);
    }
}

impl GroupCommit {
    /// Flushes whenever messages wait, then releases them.
    fn run(&self, dir: std::fs::File, journal: Option<std::fs::File>) {
        use std::os::unix::fs::FileExt;
        let mut at = 0u64;
        loop {
            let batch = {
                let mut w = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                while w.is_empty() {
                    w = self.wake.wait(w).unwrap_or_else(|e| e.into_inner());
                }
                std::mem::take(&mut *w)
            };
            match &journal {
                None if self.mode == Sync::Nothing => {}
                None => {
                    // SAFETY: a valid open descriptor.
                    check(unsafe { libc::syncfs(dir.as_raw_fd()) }, "syncfs");
                }
                Some(j) => {
                    for (data, _) in &batch {
                        if at + data.len() as u64 > RING {
                            at = 0;
                        }
                        if let Err(e) = j.write_all_at(data, at) {
                            eprintln!("journal: {e}");
                            std::process::exit(1);
                        }
                        at += data.len() as u64;
                    }
                    // SAFETY: a valid open descriptor.
                    check(unsafe { libc::fdatasync(j.as_raw_fd()) }, "fdatasync");
                }
            }
            for (_, tx) in batch {
                let _ = tx.send(());
            }
        }
    }

    /// Resolves once a flush that started after this call has covered `data`.
    async fn durable(&self, data: Vec<u8>) {
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((
                if self.mode == Sync::Journal {
                    data
                } else {
                    Vec::new()
                },
                tx,
            ));
        self.wake.notify_one();
        let _ = rx.await;
    }
}

/// Journal mode's background round: `syncfs` every 100 ms.
fn sync_rounds(dir: std::fs::File) {
    loop {
        std::thread::sleep(std::time::Duration::from_millis(100));
        // SAFETY: a valid open descriptor.
        check(unsafe { libc::syncfs(dir.as_raw_fd()) }, "syncfs");
    }
}

/// What every session of one thread shares.
struct Worker {
    new_dir: PathBuf,
    new_dir_c: CString,
    commit: Arc<GroupCommit>,
    thread: usize,
    count: AtomicU64,
}

impl Worker {
    /// Writes `data` unnamed in `new/` and links it under a unique name (no flush).
    fn store(&self, data: &[u8]) -> std::io::Result<()> {
        let f = self.create(data)?;
        self.link(&f)
    }

    /// Writes `data` to a new unnamed file in `new/` (no flush).
    fn create(&self, data: &[u8]) -> std::io::Result<std::fs::File> {
        // SAFETY: a valid NUL-terminated path.
        let fd = unsafe {
            libc::open(
                self.new_dir_c.as_ptr(),
                libc::O_TMPFILE | libc::O_WRONLY | libc::O_CLOEXEC,
                0o600,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened and is owned by this File.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        f.write_all(data)?;
        Ok(f)
    }

    /// Gives the unnamed file `f` a unique name in `new/` (no flush).
    fn link(&self, f: &std::fs::File) -> std::io::Result<()> {
        let fd = f.as_raw_fd();
        let n = self.count.fetch_add(1, Ordering::Relaxed);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let name = format!("{secs}.F{}_{n}.floor", self.thread);
        let from = CString::new(format!("/proc/self/fd/{fd}")).map_err(std::io::Error::other)?;
        let to = CString::new(
            self.new_dir
                .join(name)
                .into_os_string()
                .into_encoded_bytes(),
        )
        .map_err(std::io::Error::other)?;
        // SAFETY: both paths are valid NUL-terminated strings.
        let rc = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Removes the dot-stuffing of the lines of `data` (RFC 5321 §4.5.2).
fn unstuff(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut at_line_start = true;
    for &b in data {
        if at_line_start && b == b'.' {
            at_line_start = false;
            continue;
        }
        at_line_start = b == b'\n';
        out.push(b);
    }
    out
}

/// Reads from `s` into `buf` until it holds `needle` at or after `from`; returns where.
async fn read_until(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    from: usize,
    needle: &[u8],
) -> std::io::Result<Option<usize>> {
    let mut searched = from;
    loop {
        if let Some(i) = buf[searched..]
            .windows(needle.len())
            .position(|w| w == needle)
        {
            return Ok(Some(searched + i));
        }
        searched = buf.len().saturating_sub(needle.len() - 1).max(from);
        let len = buf.len();
        buf.resize(len + 16384, 0);
        let n = s.read(&mut buf[len..]).await?;
        buf.truncate(len + n);
        if n == 0 {
            return Ok(None);
        }
    }
}

async fn session(mut s: TcpStream, w: Rc<Worker>) -> std::io::Result<()> {
    s.write_all(b"220 floor ESMTP\r\n").await?;
    let mut buf = Vec::with_capacity(32768);
    loop {
        let Some(eol) = read_until(&mut s, &mut buf, 0, b"\r\n").await? else {
            return Ok(());
        };
        let verb: Vec<u8> = buf[..eol.min(4)].to_ascii_uppercase();
        buf.drain(..eol + 2);
        match &verb[..] {
            b"EHLO" => {
                s.write_all(b"250-floor\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
                    .await?
            }
            b"DATA" => {
                s.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                // The terminator may follow the reply's CRLF at once: search from a CRLF.
                buf.splice(0..0, *b"\r\n");
                let Some(end) = read_until(&mut s, &mut buf, 0, b"\r\n.\r\n").await? else {
                    return Ok(());
                };
                let data = unstuff(&buf[2..end + 2]);
                buf.drain(..end + 5);
                if w.commit.mode == Sync::Twice {
                    // Whole before it has a name, named before the 250: a power cut leaves
                    // either no file or the whole message, without a journal.
                    let f = w.create(&data)?;
                    w.commit.durable(Vec::new()).await;
                    w.link(&f)?;
                    drop(f);
                    w.commit.durable(Vec::new()).await;
                } else {
                    w.store(&data)?;
                    w.commit.durable(data).await;
                }
                s.write_all(b"250 2.0.0 Ok: queued\r\n").await?;
            }
            b"QUIT" => {
                s.write_all(b"221 2.0.0 Bye\r\n").await?;
                return Ok(());
            }
            _ => s.write_all(b"250 2.0.0 Ok\r\n").await?,
        }
    }
}

fn listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    Ok(sock.into())
}

fn serve(addr: std::net::SocketAddr, w: Worker) -> std::io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let local = tokio::task::LocalSet::new();
    let w = Rc::new(w);
    local.block_on(&rt, async move {
        let l = tokio::net::TcpListener::from_std(listener(addr)?)?;
        loop {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            let w = w.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = session(s, w).await {
                    eprintln!("session: {e}");
                }
            });
        }
    })
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: receive-floor ADDR MAILDIR [THREADS]");
        std::process::exit(2);
    }
    let addr: std::net::SocketAddr = args[1].parse().map_err(std::io::Error::other)?;
    let root = Path::new(&args[2]);
    let threads: usize = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(2);
    for d in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    let mode = match std::env::var("FLOOR_SYNC").as_deref() {
        Ok("syncfs") => Sync::Syncfs,
        Ok("nothing") => Sync::Nothing,
        Ok("twice") => Sync::Twice,
        _ => Sync::Journal,
    };
    let new_dir = root.join("new");
    let commit = Arc::new(GroupCommit {
        waiting: Mutex::new(Vec::new()),
        wake: Condvar::new(),
        mode,
    });
    let dir = std::fs::File::open(&new_dir)?;
    let journal = if mode == Sync::Journal {
        let path = root.join("journal");
        let mut j = std::fs::File::create(&path)?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..(RING >> 20) {
            j.write_all(&zeros)?;
        }
        j.sync_all()?;
        let d = std::fs::File::open(&new_dir)?;
        std::thread::spawn(move || sync_rounds(d));
        Some(std::fs::OpenOptions::new().write(true).open(&path)?)
    } else {
        None
    };
    let c = commit.clone();
    std::thread::spawn(move || c.run(dir, journal));
    let mut handles = Vec::new();
    for thread in 0..threads {
        let w = Worker {
            new_dir_c: CString::new(new_dir.clone().into_os_string().into_encoded_bytes())
                .map_err(std::io::Error::other)?,
            new_dir: new_dir.clone(),
            commit: commit.clone(),
            thread,
            count: AtomicU64::new(0),
        };
        handles.push(std::thread::spawn(move || serve(addr, w)));
    }
    println!("receive-floor ready on {addr}");
    for h in handles {
        match h.join() {
            Ok(r) => r?,
            Err(_) => std::process::exit(1),
        }
    }
    Ok(())
}
