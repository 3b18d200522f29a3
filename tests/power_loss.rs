//! Power-loss harness: postcore runs with its data directory on a loop-mounted image while
//! several sessions send mail; the image's backing file is copied at random moments and right
//! after 250 replies. A copy keeps exactly what the file system had sent to the device — a
//! power cut with the device's cache intact. Each copy is then checked (e2fsck, or XFS log
//! recovery at mount), mounted, and postcore is started on it (journal replay and queue
//! recovery run); every message acknowledged before the copy was taken must be in each of its
//! recipients' Maildirs exactly once and byte for byte as sent, IMAP must list it, and queued
//! (remote) messages must still be queued.
//!
//! Needs root and loop devices (CI runs as root); it fails, rather than skips, when it cannot
//! mount. bench/power_loss.sh runs the same harness with hundreds of copies.

mod common;
use common::*;
use rand::Rng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A file system the harness runs on.
#[derive(Clone, Copy, Debug)]
enum Fs {
    Ext4NoJournal,
    Ext4Journal,
    Xfs,
}

impl Fs {
    /// Image size in MiB (XFS refuses less than 300; postcore refuses new mail with less free
    /// space than 1.5 x the message size limit, 25 MiB by default, and RocksDB preallocates).
    fn size_mb(self) -> u64 {
        match self {
            Fs::Xfs => 320,
            _ => 256,
        }
    }

    fn mkfs(self, img: &Path) {
        let mut c = match self {
            Fs::Ext4NoJournal => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F", "-O", "^has_journal"]);
                c
            }
            Fs::Ext4Journal => {
                let mut c = Command::new("mkfs.ext4");
                c.args(["-q", "-F"]);
                c
            }
            Fs::Xfs => {
                let mut c = Command::new("mkfs.xfs");
                c.args(["-q", "-f"]);
                c
            }
        };
        run_ok(c.arg(img));
    }

    /// What a machine does at boot after a power cut: e2fsck for ext4 (which also replays
    /// the journal); XFS replays its log when mounted.
    fn check(self, img: &Path) {
        if let Fs::Xfs = self {
            return;
        }
        let out = Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(img)
            .output()
            .expect("e2fsck (e2fsprogs) must be installed");
        // 0: clean, 1: errors corrected, 2: corrected, reboot advised. 4 and up: not fixed.
        let code = out.status.code().unwrap_or(8);
        assert!(
            code < 4,
            "e2fsck could not repair {}: {}{}",
            img.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn run_ok(c: &mut Command) {
    let out = c
        .output()
        .unwrap_or_else(|e| panic!("{c:?}: {e} (is the tool installed?)"));
    assert!(
        out.status.success(),
        "{c:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Mounts `img` at `at` on a loop device; panics (the test fails) when that is not possible.
fn mount(img: &Path, at: &Path) {
    std::fs::create_dir_all(at).unwrap();
    let out = Command::new("mount")
        .args(["-o", "loop"])
        .arg(img)
        .arg(at)
        .output()
        .expect("mount");
    assert!(
        out.status.success(),
        "cannot loop-mount {} (the power-loss harness needs root and loop devices): {}",
        img.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn umount(at: &Path) {
    for _ in 0..50 {
        if Command::new("umount")
            .arg(at)
            .status()
            .is_ok_and(|s| s.success())
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot unmount {}", at.display());
}

/// Unmounts when dropped, so a failing test does not leave mounts behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .stderr(std::process::Stdio::null())
            .status();
    }
}

/// Who a message is for.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// alice only.
    One,
    /// alice and bob.
    Two,
    /// A remote address: stays in the queue (no resolver answers in tests).
    Remote,
}

#[derive(Clone, Debug)]
struct Acked {
    token: String,
    kind: Kind,
    qid: String,
    /// The message as sent (before dot-stuffing); the stored copy ends with exactly this.
    body: Vec<u8>,
}

fn body(token: &str, size: usize) -> String {
    let mut m = format!(
        "From: sender@remote.test\r\nTo: alice@example.test\r\nSubject: power {token}\r\nX-Token: {token}\r\n\r\n"
    );
    let line = format!("{token} {}\r\n", "p".repeat(60));
    while m.len() < size {
        m.push_str(&line);
    }
    m
}

/// One sending session: messages until `stop`, each acknowledged one recorded.
fn sender(
    port: u16,
    id: usize,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<Acked>>>,
    sent: Arc<Mutex<HashMap<String, Vec<u8>>>>,
) {
    let mut rng = rand::thread_rng();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let token = format!("T{id}x{n}");
        let kind = match n % 5 {
            0 => Kind::Remote,
            1 | 3 => Kind::Two,
            _ => Kind::One,
        };
        // Mostly small (journaled); now and then larger than the journal takes (written once
        // and fsynced): held in memory (below 256 KiB) or streamed to disk as it arrives.
        let size = match rng.gen_range(0..24) {
            0 => 300 * 1024,
            1 => 100 * 1024,
            _ => rng.gen_range(600..6000),
        };
        let text = body(&token, size);
        sent.lock()
            .unwrap()
            .insert(token.clone(), text.clone().into_bytes());
        let to: &[&str] = match kind {
            Kind::One => &["alice@example.test"],
            Kind::Two => &["alice@example.test", "bob@example.test"],
            Kind::Remote => &["far@remote.test"],
        };
        let Ok((code, reply)) = try_session(port, to, &text) else {
            continue;
        };
        if code == 250 {
            acked.lock().unwrap().push(Acked {
                token,
                kind,
                qid: qid(&reply),
                body: text.into_bytes(),
            });
        }
    }
}

/// One message on a new connection, tolerating the server being paused or gone.
fn try_session(port: u16, to: &[&str], text: &str) -> std::io::Result<(u16, String)> {
    use std::io::{BufRead, BufReader, Write};
    let s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut reply = || -> std::io::Result<(u16, String)> {
        let mut last;
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            last = line.trim_end().to_string();
            if last.as_bytes().get(3) != Some(&b'-') {
                break;
            }
        }
        let code = last.get(..3).and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok((code, last))
    };
    reply()?;
    let mut cmds = vec![
        "EHLO client.test".to_string(),
        "MAIL FROM:<s@remote.test>".into(),
    ];
    cmds.extend(to.iter().map(|t| format!("RCPT TO:<{t}>")));
    cmds.push("DATA".into());
    for c in cmds {
        w.write_all(format!("{c}\r\n").as_bytes())?;
        let (code, _) = reply()?;
        if code >= 400 {
            return Ok((code, String::new()));
        }
    }
    // No line of these messages starts with a dot: no stuffing needed.
    w.write_all(text.as_bytes())?;
    w.write_all(b".\r\n")?;
    let res = reply()?;
    let _ = w.write_all(b"QUIT\r\n");
    Ok(res)
}

/// A copy of the image and what had been acknowledged when it was taken.
struct Copy {
    img: PathBuf,
    acked: Vec<Acked>,
    after_250: bool,
}

/// Runs the harness on `fs`: `copies` copies, half at random moments, half right after a 250.
fn harness(fs: Fs, copies: usize) {
    let work = tempfile::tempdir().unwrap();
    let img = work.path().join("fs.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(fs.size_mb() << 20)
        .unwrap();
    fs.mkfs(&img);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    mount(&img, &data);
    let guard = Mounted(data.clone());
    let mut s = TestServer::start_in(dir, "");
    s.setup_basic();
    // Plain-text IMAP login on loopback, for the index check (stored on the image).
    s.api_ok(
        "PATCH",
        "/settings",
        Some(serde_json::json!({"allow_unencrypted": true})),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let sent = Arc::new(Mutex::new(HashMap::new()));
    let senders: Vec<_> = (0..4)
        .map(|id| {
            let (stop, acked, sent, port) = (stop.clone(), acked.clone(), sent.clone(), s.smtp);
            std::thread::spawn(move || sender(port, id, stop, acked, sent))
        })
        .collect();
    let pid = s.pid().expect("running") as i32;
    let mut rng = rand::thread_rng();
    let mut taken = Vec::new();
    for k in 0..copies {
        let after_250 = k % 2 == 1;
        if after_250 {
            // Right after a 250: wait for the next acknowledgement, then copy at once.
            let before = acked.lock().unwrap().len();
            let deadline = Instant::now() + Duration::from_secs(20);
            while acked.lock().unwrap().len() == before {
                assert!(Instant::now() < deadline, "no message acknowledged in 20 s");
                std::thread::sleep(Duration::from_micros(200));
            }
        } else {
            std::thread::sleep(Duration::from_millis(rng.gen_range(5..120)));
        }
        // The server is paused while the copy is made, so the copy is one moment.
        signal(pid, "STOP");
        let snapshot = acked.lock().unwrap().clone();
        let copy = work.path().join(format!("copy{k}.img"));
        run_ok(
            Command::new("cp")
                .arg("--sparse=always")
                .arg(&img)
                .arg(&copy),
        );
        signal(pid, "CONT");
        taken.push(Copy {
            img: copy,
            acked: snapshot,
            after_250,
        });
    }
    stop.store(true, Ordering::SeqCst);
    for t in senders {
        t.join().unwrap();
    }
    let total = acked.lock().unwrap().len();
    s.kill9();
    umount(&data);
    drop(guard);
    drop(s);
    assert!(
        total >= copies,
        "{fs:?}: only {total} messages acknowledged"
    );
    let sent = sent.lock().unwrap().clone();
    for c in &taken {
        check_copy(fs, c, &sent);
        let _ = std::fs::remove_file(&c.img);
    }
    eprintln!(
        "{fs:?}: {} copies checked ({} right after a 250), {total} messages acknowledged in all",
        taken.len(),
        taken.iter().filter(|c| c.after_250).count()
    );
}

fn signal(pid: i32, sig: &str) {
    run_ok(
        Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string()),
    );
}

/// Recovers one copy and checks every message acknowledged before it was taken.
fn check_copy(fs: Fs, c: &Copy, sent: &HashMap<String, Vec<u8>>) {
    fs.check(&c.img);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    mount(&c.img, &data);
    let _guard = Mounted(data.clone());
    let s = TestServer::start_in(dir, "");
    let what = format!(
        "{fs:?} copy {} ({} acknowledged{})",
        c.img.display(),
        c.acked.len(),
        if c.after_250 {
            ", right after a 250"
        } else {
            ""
        }
    );
    for user in ["alice", "bob"] {
        let files = tokens_in(&s.maildir(&format!("users/{user}")));
        for a in &c.acked {
            let wanted = match a.kind {
                Kind::One => user == "alice",
                Kind::Two => true,
                Kind::Remote => false,
            };
            let found = files.get(&a.token).map(Vec::as_slice).unwrap_or(&[]);
            if !wanted {
                assert!(found.is_empty(), "{what}: {} in {user}'s Maildir", a.token);
                continue;
            }
            assert_eq!(
                found.len(),
                1,
                "{what}: {} (qid {}, {} octets) is in {user}'s Maildir {} times; recovery log:\n{}",
                a.token,
                a.qid,
                a.body.len(),
                found.len(),
                recovery_log(&s)
            );
            assert!(
                found[0].ends_with(&a.body) && found[0].starts_with(b"Received: "),
                "{what}: {}'s copy in {user}'s Maildir is not the message sent ({} octets, sent {})",
                a.token,
                found[0].len(),
                a.body.len()
            );
        }
        // Acknowledged or not, a message a reader can see is whole, and there once: no
        // empty or partial files.
        for (t, v) in &files {
            assert!(
                v.len() <= 1,
                "{what}: {t} is in {user}'s Maildir {} times",
                v.len()
            );
            let whole = sent.get(t).is_some_and(|b| v[0].ends_with(b));
            assert!(
                whole,
                "{what}: {user}'s Maildir holds a damaged message ({t}, {} octets)",
                v[0].len()
            );
        }
        // The IMAP index knows every message (rebuilt from the Maildir where it lost any).
        let mut imap = Imap::login(s.imap, user, &format!("{user}-pw"));
        let sel = imap.ok("SELECT INBOX");
        let exists = files.values().map(Vec::len).sum::<usize>();
        assert!(
            sel.contains(&format!("* {exists} EXISTS")),
            "{what}: {user}'s INBOX has {exists} messages; SELECT said {sel}"
        );
    }
    let queue = s.api_ok("GET", "/queue", None);
    let queued: HashMap<String, u64> = queue
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["qid"].as_str().unwrap_or("").to_string(),
                r["size"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for a in c.acked.iter().filter(|a| a.kind == Kind::Remote) {
        let size = queued.get(&a.qid).copied();
        assert!(
            size.is_some_and(|n| n > a.body.len() as u64),
            "{what}: remote message {} (qid {}) is not queued: {size:?}",
            a.token,
            a.qid
        );
    }
    let mut s = s;
    s.kill9();
    umount(&data);
}

/// What the server logged about recovery, for failure messages.
fn recovery_log(s: &TestServer) -> String {
    s.log()
        .lines()
        .filter(|l| {
            ["journal", "queue loaded", "WARN", "ERROR", "spool"]
                .iter()
                .any(|k| l.contains(k))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The token of each message file in a Maildir's `new/` and `cur/`, with its contents.
fn tokens_in(root: &Path) -> HashMap<String, Vec<Vec<u8>>> {
    let mut out: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
    for m in maildir_messages(root) {
        let text = String::from_utf8_lossy(&m);
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("X-Token: "))
            .unwrap_or("(none)")
            .trim()
            .to_string();
        out.entry(token).or_default().push(m);
    }
    out
}

/// Copies per file system: 8 in the test suite; `POWER_LOSS_COPIES` (bench/power_loss.sh)
/// for more.
fn copies() -> usize {
    std::env::var("POWER_LOSS_COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8)
}

#[test]
fn power_loss_ext4_without_journal() {
    harness(Fs::Ext4NoJournal, copies());
}

#[test]
fn power_loss_ext4_with_journal() {
    harness(Fs::Ext4Journal, copies());
}

#[test]
fn power_loss_xfs() {
    harness(Fs::Xfs, copies());
}
