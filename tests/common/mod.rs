//! Test harness: starts the real `postcore` binary on free loopback ports with its own data
//! directory, and speaks SMTP to it over TCP. Used by every integration test.
#![allow(dead_code)]

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running server under test.
pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub cfg_path: PathBuf,
    pub smtp: u16,
    pub submission: u16,
    pub submissions: u16,
    pub admin: u16,
    pub pop3: u16,
    pub pop3s: u16,
    pub imap: u16,
    pub imaps: u16,
    pub managesieve: u16,
    child: Option<Child>,
}

/// `N` distinct free ports. Every port this test process has handed out is remembered, so two
/// servers started by parallel tests never get the same port (the kernel may give a port that
/// was just probed and closed to the next `bind(0)`).
pub fn free_ports<const N: usize>() -> [u16; N] {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
    let mut held = Vec::new();
    let mut out = Vec::new();
    while out.len() < N {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if !given.contains(&port) {
            given.push(port);
            out.push(port);
        }
        held.push(l);
    }
    std::array::from_fn(|i| out[i])
}

impl TestServer {
    /// Starts a server with the default test configuration.
    pub fn start() -> TestServer {
        Self::start_with("")
    }

    /// Starts a server; `extra` is TOML appended to the configuration (sections allowed).
    /// A started server with the basic domain and users, plain-text logins allowed (the
    /// usual set-up of the IMAP tests).
    pub fn start_basic() -> TestServer {
        let s = TestServer::start();
        s.setup_basic();
        s.allow_unencrypted();
        s
    }

    pub fn start_with(extra: &str) -> TestServer {
        Self::start_in(tempfile::tempdir().unwrap(), extra)
    }

    /// Starts a server in `dir`, whose `data` (the data directory) may already exist: a mount
    /// point, or a data directory recovered from an image.
    pub fn start_in(dir: tempfile::TempDir, extra: &str) -> TestServer {
        let cfg_path = dir.path().join("postcore.toml");
        let mut s = TestServer {
            dir,
            cfg_path,
            smtp: 0,
            submission: 0,
            submissions: 0,
            admin: 0,
            pop3: 0,
            pop3s: 0,
            imap: 0,
            imaps: 0,
            managesieve: 0,
            child: None,
        };
        // A port found free can be taken before the server binds it (another test's client
        // socket gets it as its ephemeral port): then again with new ports.
        for attempt in 1.. {
            s.write_config(extra);
            match s.try_spawn() {
                Ok(()) => break,
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("postcore did not start:\n{log}"),
            }
        }
        s
    }

    /// Writes the configuration with fresh ports, and `extra` appended.
    fn write_config(&mut self, extra: &str) {
        let p = free_ports::<9>();
        [
            self.smtp,
            self.submission,
            self.submissions,
            self.admin,
            self.pop3,
            self.pop3s,
            self.imap,
            self.imaps,
            self.managesieve,
        ] = p;
        let (smtp, submission, submissions, admin) = (p[0], p[1], p[2], p[3]);
        let (pop3, pop3s, imap, imaps) = (p[4], p[5], p[6], p[7]);
        let mut cfg = format!(
            "data_dir = \"data\"\nhostname = \"mx.example.test\"\nworkers = 2\n\
             [listeners]\nsmtp = \"127.0.0.1:{smtp}\"\nsubmission = \"127.0.0.1:{submission}\"\n\
             submissions = \"127.0.0.1:{submissions}\"\nadmin = \"127.0.0.1:{admin}\"\n\
             pop3 = \"127.0.0.1:{pop3}\"\npop3s = \"127.0.0.1:{pop3s}\"\n\
             imap = \"127.0.0.1:{imap}\"\nimaps = \"127.0.0.1:{imaps}\"\n\
             managesieve = \"127.0.0.1:{}\"\n",
            p[8]
        );
        if !extra.contains("[dns]") {
            // Never the system resolver: a loopback server that refuses every query at once,
            // so lookups fail without waiting and remote mail stays queued.
            cfg.push_str(&format!(
                "[dns]\nresolvers = [\"127.0.0.1:{}\"]\n",
                refusing_dns()
            ));
        }
        if !extra.contains("[queue]") {
            cfg.push_str(
                "[queue]\nscan_interval_secs = 1\nretry_min_secs = 1\nretry_max_secs = 2\n",
            );
        }
        cfg.push_str(extra);
        std::fs::write(&self.cfg_path, cfg).unwrap();
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// The log once it contains `needle`, or after ten seconds whatever it holds.
    pub fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the binary and waits until it is ready (every listener bound).
    pub fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("postcore did not start:\n{log}");
        }
    }

    /// Starts the binary and waits until it is ready; the log when it exits early or does
    /// not get ready in time.
    pub fn try_spawn(&mut self) -> Result<(), String> {
        // The log is appended to across restarts: only what this start writes counts.
        let logged_before = self.log().len();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_postcore"))
            .args(["serve", "--config"])
            .arg(&self.cfg_path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting postcore");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        // Ready when the admin API answers and the server has logged "postcore ready", which
        // it does after every listener is bound (connections queue in the backlog until the
        // workers accept them). No session listener is probed: a probe would be a session
        // holding a per-IP slot while the test starts.
        loop {
            let up = TcpStream::connect(("127.0.0.1", self.admin)).is_ok()
                && self
                    .log()
                    .get(logged_before..)
                    .is_some_and(|l| l.contains("postcore ready"));
            if up {
                break;
            }
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                let log = self.log().get(logged_before..).unwrap_or("").to_string();
                return Err(format!("postcore exited early ({st}):\n{log}"));
            }
            if Instant::now() > deadline {
                let log = self.log().get(logged_before..).unwrap_or("").to_string();
                return Err(format!("postcore not ready in 20 s:\n{log}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL, as in a crash or power loss of the process.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status success.
    pub fn terminate(&mut self) -> bool {
        let Some(mut c) = self.child.take() else {
            return false;
        };
        unsafe_kill(c.id() as i32, 15);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(st)) = c.try_wait() {
                return st.success();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Calls the admin API; returns HTTP status and JSON body.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("http://127.0.0.1:{}/api{path}", self.admin);
        let req =
            ureq::request(method, &url).set("Authorization", &format!("Bearer {}", self.token()));
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
            Err(e) => panic!("admin API unreachable: {e}"),
        }
    }

    /// Calls the admin API and asserts success.
    pub fn api_ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (code, v) = self.api(method, path, body);
        assert_eq!(code, 200, "{method} {path}: {v}");
        v
    }

    /// Runs `postcore admin --config <cfg> args…`; returns (success, stdout, stderr).
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_postcore"));
        cmd.args(["admin", "--config"])
            .arg(&self.cfg_path)
            .args(args);
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(s) = stdin {
            child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// Domain example.test with users alice, bob, carol (passwords `<login>-pw`).
    pub fn setup_basic(&self) {
        self.api_ok("POST", "/domains", Some(json!({"name": "example.test"})));
        for u in ["alice", "bob", "carol"] {
            self.api_ok(
                "POST",
                "/users",
                Some(json!({"login": u, "password": format!("{u}-pw")})),
            );
        }
    }

    /// Allows LOGIN/USER without TLS (clients here speak plain text on loopback).
    pub fn allow_unencrypted(&self) {
        self.api_ok(
            "PATCH",
            "/settings",
            Some(json!({"allow_unencrypted": true})),
        );
    }

    /// Maildir root of a mailbox, e.g. `users/alice` or `public/info`.
    pub fn maildir(&self, mailbox: &str) -> PathBuf {
        self.data_dir().join("mail").join(mailbox)
    }

    /// Messages in a mailbox's new/ and cur/.
    pub fn messages(&self, mailbox: &str) -> Vec<Vec<u8>> {
        maildir_messages(&self.maildir(mailbox))
    }

    /// Waits until `mailbox` holds `n` messages (the queue may deliver asynchronously).
    pub fn wait_messages(&self, mailbox: &str, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let m = self.messages(mailbox);
            if m.len() >= n || Instant::now() > deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn smtp(&self) -> Smtp {
        Smtp::connect(self.smtp)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn unsafe_kill(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status();
}

/// Messages in `root/new` and `root/cur`, sorted by file name.
pub fn maildir_messages(root: &Path) -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(root.join(sub)) {
            for e in rd.flatten() {
                files.push(e.path());
            }
        }
    }
    files.sort();
    files
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

/// A minimal SMTP client over plain TCP that reads whole (multi-line) replies.
pub struct Smtp {
    r: BufReader<TcpStream>,
    w: TcpStream,
    /// The greeting.
    pub banner: String,
}

impl Smtp {
    pub fn connect(port: u16) -> Smtp {
        Smtp::over(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    /// A client over an open connection (see [`connect_from`]); reads the greeting.
    pub fn over(s: TcpStream) -> Smtp {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Smtp {
            r: BufReader::new(s),
            w,
            banner: String::new(),
        };
        let (code, text) = c.reply();
        c.banner = format!("{code} {text}");
        c
    }

    /// Reads one reply: (code, text of all lines joined by '\n').
    pub fn reply(&mut self) -> (u16, String) {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            let n = self.r.read_line(&mut line).unwrap_or(0);
            if n == 0 {
                return (0, text.join("\n"));
            }
            let line = line.trim_end_matches(['\r', '\n']);
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().unwrap_or(0);
            text.push(line.get(4..).unwrap_or("").to_string());
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text.join("\n"));
            }
        }
    }

    pub fn send(&mut self, raw: &[u8]) {
        self.w.write_all(raw).unwrap();
    }

    /// Sends one command line and reads its reply.
    pub fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Sends a command and asserts the reply code.
    pub fn ok(&mut self, line: &str, code: u16) -> String {
        let (c, t) = self.cmd(line);
        assert_eq!(c, code, "{line} -> {c} {t}");
        t
    }

    /// EHLO, MAIL, RCPT…, DATA with `body`; returns the final reply.
    pub fn send_mail(&mut self, from: &str, to: &[&str], body: &str) -> (u16, String) {
        self.ok("EHLO client.test", 250);
        self.ok(&format!("MAIL FROM:<{from}>"), 250);
        for t in to {
            self.ok(&format!("RCPT TO:<{t}>"), 250);
        }
        self.ok("DATA", 354);
        let mut data = body.replace("\r\n", "\n").replace('\n', "\r\n");
        // RFC 5321 §4.5.2: a client doubles a leading dot.
        data = data
            .split("\r\n")
            .map(|l| {
                if l.starts_with('.') {
                    format!(".{l}")
                } else {
                    l.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\r\n");
        if !data.ends_with("\r\n") {
            data.push_str("\r\n");
        }
        data.push_str(".\r\n");
        self.send(data.as_bytes());
        self.reply()
    }

    /// True if the server closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }
}

/// A message with the given subject.
pub fn message(subject: &str) -> String {
    format!(
        "From: sender@remote.test\r\nTo: someone@example.test\r\nSubject: {subject}\r\n\r\nBody of {subject}.\r\n"
    )
}

/// Extracts the QID from `Ok: queued as QID`.
pub fn qid(reply: &str) -> String {
    reply.rsplit(' ').next().unwrap().to_string()
}

/// True if python3 is available (the TLS client tests use smtplib).
pub fn python() -> Option<&'static str> {
    Command::new("python3")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| "python3")
}

/// Runs a Python script from tests/py with arguments; returns (success, stdout+stderr).
pub fn run_py(script: &str, args: &[String]) -> (bool, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .expect("python3");
    let mut s = String::from_utf8_lossy(&out.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), s)
}

/// Sends one message on a new connection without panicking on I/O errors (for crash tests):
/// returns the reply to the data, or an error if the connection failed anywhere.
pub fn try_send(port: u16, from: &str, to: &str, body: &str) -> std::io::Result<(u16, String)> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let reply = |r: &mut BufReader<TcpStream>| -> std::io::Result<(u16, String)> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            if line.len() < 4 {
                return Err(std::io::Error::other("short reply"));
            }
            if line.as_bytes()[3] != b'-' {
                return Ok((
                    line[..3].parse().unwrap_or(0),
                    line[4..].trim_end().to_string(),
                ));
            }
        }
    };
    let expect = |got: (u16, String), want: u16| {
        if got.0 == want {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "unexpected {} {}",
                got.0, got.1
            )))
        }
    };
    expect(reply(&mut r)?, 220)?;
    for (line, want) in [
        ("EHLO load.test".to_string(), 250),
        (format!("MAIL FROM:<{from}>"), 250),
        (format!("RCPT TO:<{to}>"), 250),
        ("DATA".into(), 354),
    ] {
        w.write_all(format!("{line}\r\n").as_bytes())?;
        expect(reply(&mut r)?, want)?;
    }
    w.write_all(body.as_bytes())?;
    w.write_all(b".\r\n")?;
    reply(&mut r)
}

/// Puts the IMAP fixture messages (tests/data/imap/messages/N.eml) straight into a user's
/// Maildir `new/`, as another Maildir tool would, with fixed arrival times (internal dates).
pub fn seed_imap_fixtures(s: &TestServer, user: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/imap/messages");
    let new = s.maildir(&format!("users/{user}")).join("new");
    std::fs::create_dir_all(&new).unwrap();
    for i in 1..=3 {
        let data = std::fs::read(dir.join(format!("{i}.eml"))).unwrap();
        let secs = 1_704_100_000 + i * 86_400;
        let p = new.join(format!("{secs}.fixture{i}.example"));
        std::fs::write(&p, data).unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(std::time::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }
}

/// A small IMAP client for tests: sends tagged commands and collects every line of the
/// answer (literals are read as raw octets and kept inline).
pub struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
    n: u32,
    /// The greeting line.
    pub greeting: String,
}

impl Imap {
    /// Connects to `port` and reads the greeting.
    pub fn connect(port: u16) -> Imap {
        Imap::over(TcpStream::connect(("127.0.0.1", port)).unwrap())
    }

    /// A client on an already connected stream (e.g. from a chosen source address).
    pub fn over(s: TcpStream) -> Imap {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let w = s.try_clone().unwrap();
        let mut c = Imap {
            r: BufReader::new(s),
            w,
            n: 0,
            greeting: String::new(),
        };
        c.greeting = c.read_line();
        c
    }

    /// Reads one response line (a literal announced at its end is appended raw).
    pub fn read_line(&mut self) -> String {
        let mut buf = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.r.read_until(b'\n', &mut line).unwrap_or(0);
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&line);
            let t = String::from_utf8_lossy(&line).trim_end().to_string();
            if let Some(open) = t.rfind('{')
                && t.ends_with('}')
                && let Ok(len) = t[open + 1..t.len() - 1].parse::<usize>()
            {
                let mut lit = vec![0u8; len];
                std::io::Read::read_exact(&mut self.r, &mut lit).unwrap();
                buf.extend_from_slice(&lit);
                continue;
            }
            break;
        }
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, data: &[u8]) {
        self.w.write_all(data).unwrap();
    }

    /// Sends without asserting: false if the server has already closed the connection.
    pub fn try_send_raw(&mut self, data: &[u8]) -> bool {
        self.w.write_all(data).is_ok()
    }

    /// Every line until the server closes the connection (or the read times out).
    pub fn read_rest(&mut self) -> String {
        let mut all = String::new();
        loop {
            let l = self.read_line();
            if l.is_empty() {
                return all;
            }
            all.push_str(&l);
            all.push('\n');
        }
    }

    /// Runs `cmd` with a fresh tag: (untagged and continuation lines, tagged line without tag).
    pub fn cmd(&mut self, cmd: &str) -> (Vec<String>, String) {
        self.n += 1;
        let tag = format!("t{}", self.n);
        self.send_raw(format!("{tag} {cmd}\r\n").as_bytes());
        self.until_tagged(&tag)
    }

    /// Sends `tag line`, then `data` as the literal the line announces (if any), and reads
    /// the answer: the form of the scripts the Dovecot comparisons replay.
    pub fn script_step(&mut self, tag: &str, line: &str, data: &[u8]) -> (Vec<String>, String) {
        let mut raw = format!("{tag} {line}\r\n").into_bytes();
        if !data.is_empty() {
            raw.extend_from_slice(data);
            raw.extend_from_slice(b"\r\n");
        }
        self.send_raw(&raw);
        self.until_tagged(tag)
    }

    /// Reads until the line tagged `tag`.
    pub fn until_tagged(&mut self, tag: &str) -> (Vec<String>, String) {
        let mut lines = Vec::new();
        loop {
            let l = self.read_line();
            if l.is_empty() {
                return (lines, "(connection closed)".into());
            }
            if let Some(rest) = l.strip_prefix(&format!("{tag} ")) {
                return (lines, rest.to_string());
            }
            lines.push(l);
        }
    }

    /// Runs `cmd` and asserts a tagged OK; returns the untagged lines joined by '\n'.
    pub fn ok(&mut self, cmd: &str) -> String {
        let (u, t) = self.cmd(cmd);
        assert!(t.starts_with("OK"), "{cmd}: {t}\n{}", u.join("\n"));
        u.join("\n")
    }

    /// The connection itself, for a test that takes over the byte stream (after COMPRESS);
    /// nothing may be left unread.
    pub fn into_stream(self) -> TcpStream {
        assert!(self.r.buffer().is_empty(), "unread input");
        self.w
    }

    /// APPENDs a small message with `subject` and `flags` (e.g. `\\Seen`) to `mailbox`;
    /// returns its UID (from APPENDUID).
    pub fn append_message(&mut self, mailbox: &str, subject: &str, flags: &str) -> u32 {
        let msg = format!("From: bob@example.test\r\nSubject: {subject}\r\n\r\nbody {subject}\r\n");
        let (_, t) = self.cmd(&format!(
            "APPEND {mailbox} ({flags}) {{{}+}}\r\n{msg}",
            msg.len()
        ));
        assert!(t.starts_with("OK [APPENDUID "), "{t}");
        t.split(' ')
            .nth(3)
            .and_then(|u| u.trim_end_matches(']').parse().ok())
            .unwrap_or_else(|| panic!("no UID in {t}"))
    }

    /// Logs in with LOGIN.
    pub fn login(port: u16, user: &str, pw: &str) -> Imap {
        let mut c = Imap::connect(port);
        c.ok(&format!("LOGIN {user} {pw}"));
        c
    }
}

/// The resident memory of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A connection to 127.0.0.1:`port` from the loopback source address `src` (all of 127/8 is
/// local), for tests of per-address limits.
pub fn connect_from(src: &str, port: u16) -> TcpStream {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let src: std::net::SocketAddr = format!("{src}:0").parse().unwrap();
    sock.bind(&src.into()).unwrap();
    let dst: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    sock.connect(&dst.into()).unwrap();
    let s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// A background process, killed when dropped.
pub struct Bg(pub Child);
impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// dnsmasq on 127.0.0.1 answering for the .test zone and reverse names only (nothing is
/// forwarded anywhere).
pub fn dns(records: &[&str]) -> Option<(Bg, u16)> {
    if Command::new("dnsmasq").arg("--version").output().is_err() {
        eprintln!("dnsmasq not installed: skipped");
        return None;
    }
    let port = free_ports::<1>()[0];
    let mut args = vec![
        "--keep-in-foreground".to_string(),
        "--no-resolv".into(),
        "--no-hosts".into(),
        "--conf-file=/dev/null".into(),
        "--listen-address=127.0.0.1".into(),
        "--bind-interfaces".into(),
        format!("--port={port}"),
        "--local=/test/".into(),
        "--local=/arpa/".into(),
        "--pid-file=".into(),
    ];
    args.extend(records.iter().map(|r| r.to_string()));
    let child = Command::new("dnsmasq")
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    Some((Bg(child), port))
}

/// The port of a DNS server on 127.0.0.1 (UDP) that answers every query at once with REFUSED
/// (RFC 1035 §4.1.1 RCODE 5): one per test process, started on first use.
pub fn refusing_dns() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = sock.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok((n, from)) = sock.recv_from(&mut buf) {
                if let Some(answer) = refused(&buf[..n]) {
                    let _ = sock.send_to(&answer, from);
                }
            }
        });
        port
    })
}

/// The REFUSED answer to a query: its id and question, QR and RA set, opcode and RD kept.
fn refused(q: &[u8]) -> Option<Vec<u8>> {
    if q.len() < 12 {
        return None;
    }
    let mut i = 12;
    while *q.get(i)? != 0 {
        i += usize::from(q[i]) + 1;
    }
    let question = q.get(12..i + 5)?;
    let mut a = vec![
        q[0],
        q[1],
        0x80 | (q[2] & 0x79),
        0x80 | 5,
        0,
        1,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    a.extend_from_slice(question);
    Some(a)
}

/// The IMAP date (`4-Dec-2026`, RFC 9051 `date`) of `t` in UTC, day without a leading zero.
pub fn imap_day(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let days = secs.div_euclid(86400);
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!("{d}-{}-{y}", MONTHS[(m - 1) as usize])
}

/// Runs `cmds` (command line, then its literal octets, if any) through Dovecot 2.3's `imap`
/// (Debian `dovecot-imapd`), pre-authenticated on a pipe over a fresh Maildir, with
/// `extra_conf` added to its configuration: its whole output, and each command's tagged
/// status line (tag removed), in order.
pub fn dovecot_session(cmds: &[(String, Vec<u8>)], extra_conf: &str) -> (String, Vec<String>) {
    let (dir, mut child) = dovecot_imap(extra_conf);
    let mut input = Vec::new();
    for (i, (line, lit)) in cmds.iter().enumerate() {
        input.extend_from_slice(format!("d{i} {line}\r\n").as_bytes());
        if !lit.is_empty() {
            input.extend_from_slice(lit);
            input.extend_from_slice(b"\r\n");
        }
    }
    input.extend_from_slice(b"z LOGOUT\r\n");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("dovecot imap runs");
    writer.join().expect("writer").expect("write to dovecot");
    drop(dir);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let tagged = (0..cmds.len())
        .map(|i| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("d{i} ")))
                .unwrap_or("(no answer)")
                .to_string()
        })
        .collect();
    (text, tagged)
}

/// Like [`dovecot_session`], but one command at a time: each is sent only after the
/// previous one's tagged answer (no pipelining), and every command's answer is returned
/// apart: (untagged lines, tagged line without the tag `d<i>`).
pub fn dovecot_steps(cmds: &[(String, Vec<u8>)]) -> Vec<(Vec<String>, String)> {
    let (dir, mut child) = dovecot_imap("");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("greeting");
    let mut answers = Vec::new();
    for (i, (cmd, lit)) in cmds.iter().enumerate() {
        let mut raw = format!("d{i} {cmd}\r\n").into_bytes();
        if !lit.is_empty() {
            raw.extend_from_slice(lit);
            raw.extend_from_slice(b"\r\n");
        }
        stdin.write_all(&raw).expect("write to dovecot");
        let mut untagged = Vec::new();
        loop {
            line.clear();
            if out.read_line(&mut line).expect("read from dovecot") == 0 {
                panic!("dovecot closed the session at {cmd}");
            }
            let l = line.trim_end().to_string();
            if let Some(t) = l.strip_prefix(&format!("d{i} ")) {
                answers.push((untagged, t.to_string()));
                break;
            }
            if !l.starts_with('+') {
                untagged.push(l);
            }
        }
    }
    drop(stdin);
    let _ = child.wait();
    drop(dir);
    answers
}

/// Dovecot's `imap` binary started preauthenticated on a pipe over a fresh Maildir
/// (the directory must live as long as the process).
fn dovecot_imap(extra_conf: &str) -> (tempfile::TempDir, std::process::Child) {
    let imap = "/usr/lib/dovecot/imap";
    assert!(
        Path::new(imap).exists(),
        "{imap} missing: scripts/deps.sh test installs dovecot-imapd"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let maildir = dir.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("maildir");
    }
    let mut conf = format!(
        "mail_location = maildir:{}\nlog_path = /dev/null\nssl = no\n{extra_conf}\n",
        maildir.display()
    );
    // As root, Dovecot drops to an unprivileged user that must own the store.
    if unsafe { libc::geteuid() } == 0 {
        conf.push_str("mail_uid = nobody\nmail_gid = nogroup\n");
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            out.push(p.to_path_buf());
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    walk(&e.path(), out);
                }
            }
        }
        let mut all = Vec::new();
        walk(dir.path(), &mut all);
        for e in all {
            std::os::unix::fs::chown(&e, Some(65534), Some(65534)).expect("chown");
        }
    }
    let conf_path = dir.path().join("dovecot.conf");
    std::fs::write(&conf_path, conf).expect("conf");
    let child = Command::new(imap)
        .arg("-c")
        .arg(&conf_path)
        .env_clear()
        .env("HOME", dir.path())
        .env("USER", "alice")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dovecot imap starts");
    (dir, child)
}
