//! POP3 over the Maildir store with real clients: Python's poplib (STLS, implicit TLS) and
//! Debian's fetchmail; deletions at QUIT, maildrop lock, plaintext refusal, bad input.

mod common;
use common::*;
use serde_json::{Value, json};

fn deliver(s: &TestServer, to: &str, subject: &str) {
    let body =
        format!("From: x@remote.test\r\nSubject: {subject}\r\n\r\n.line one\r\nline two\r\n");
    assert_eq!(s.smtp().send_mail("x@remote.test", &[to], &body).0, 250);
}

fn session(port: u16, mode: &str, user: &str, pw: &str) -> Value {
    let (ok, out) = run_py(
        "pop3_client.py",
        &["session", &port.to_string(), mode, user, pw].map(String::from),
    );
    assert!(ok, "{out}");
    serde_json::from_str(out.lines().last().unwrap()).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn poplib_session_over_stls_and_implicit_tls_deletes_at_quit() {
    if python().is_none() {
        return;
    }
    let s = TestServer::start();
    s.setup_basic();
    deliver(&s, "alice@example.test", "first");
    deliver(&s, "alice@example.test", "second");
    let sizes: Vec<u64> = {
        let mut f: Vec<_> = std::fs::read_dir(s.maildir("users/alice/new"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        f.sort();
        f.iter()
            .map(|p| std::fs::metadata(p).unwrap().len())
            .collect()
    };
    let v = session(s.pop3, "stls", "alice", "alice-pw");
    assert!(
        v["capa"].as_array().unwrap().iter().any(|c| c == "UIDL"),
        "{v}"
    );
    assert_eq!(v["stat"], json!([2, sizes[0] + sizes[1]]));
    assert_eq!(
        v["list"],
        json!([format!("1 {}", sizes[0]), format!("2 {}", sizes[1])])
    );
    let uidl0 = v["uidl"][0]
        .as_str()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .to_string();
    assert!(
        uidl0.contains('_') && uidl0.ends_with("mx.example.test"),
        "{uidl0}"
    );
    let top = v["top"].as_array().unwrap();
    assert!(
        top.iter().any(|l| l == "Subject: first") && !top.iter().any(|l| l == ".line one"),
        "{v}"
    );
    let retr = v["retr"].as_array().unwrap();
    assert!(
        retr.iter().any(|l| l == ".line one"),
        "byte-stuffing undone by the client: {v}"
    );
    assert!(v["quit"].as_str().unwrap().contains("1 messages deleted"));
    assert_eq!(
        s.messages("users/alice").len(),
        1,
        "DELE takes effect at QUIT"
    );
    // UIDs are stable: the remaining message keeps its UIDL, now as message 1; implicit TLS.
    let v = session(s.pop3s, "implicit", "alice", "alice-pw");
    assert_eq!(v["stat"][0], 1);
    assert_eq!(
        v["uidl"][0].as_str().unwrap().split(' ').nth(1).unwrap(),
        v["uidl"][0].as_str().unwrap().split(' ').nth(1).unwrap()
    );
    assert_eq!(s.messages("users/alice").len(), 0);
    let users = s.api_ok("GET", "/users/alice", None);
    assert_eq!(users["usage"]["messages"], 0, "usage follows deletions");
    assert!(
        s.log()
            .contains("pop3 login: user=<alice>, rip=127.0.0.1, result=ok")
    );
}

#[test]
fn plaintext_login_refused_without_tls_unless_allowed() {
    if python().is_none() {
        return;
    }
    let s = TestServer::start();
    s.setup_basic();
    let (_, out) = run_py(
        "pop3_client.py",
        &[
            "plainlogin".into(),
            s.pop3.to_string(),
            "alice".into(),
            "alice-pw".into(),
        ],
    );
    assert!(
        out.contains("ERR") && out.contains("Plaintext authentication disallowed"),
        "{out}"
    );
    s.allow_unencrypted();
    let (_, out) = run_py(
        "pop3_client.py",
        &[
            "plainlogin".into(),
            s.pop3.to_string(),
            "alice".into(),
            "alice-pw".into(),
        ],
    );
    assert!(out.contains("LOGGED IN"), "{out}");
}

#[test]
fn raw_protocol_errors_lock_and_failures() {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    deliver(&s, "bob@example.test", "m");
    let mut c = raw(s.pop3);
    assert!(c.line().starts_with("+OK"));
    for (cmd, want) in [
        ("STAT", "-ERR not logged in"),
        ("RETR 1", "-ERR not logged in"),
        ("PASS x", "-ERR send USER first"),
        ("BOGUS", "-ERR unknown command"),
        ("RETR x", "-ERR"),
    ] {
        c.send(cmd);
        let l = c.line();
        assert!(l.starts_with(want), "{cmd}: {l}");
    }
    c.send("USER bob");
    assert!(c.line().starts_with("+OK"));
    c.send("PASS bob-pw");
    assert!(c.line().starts_with("+OK bob has 1 messages"));
    for (cmd, want) in [
        ("RETR 2", "-ERR no such message"),
        ("RETR 0", "-ERR no such message"),
        ("DELE 1", "+OK"),
        ("RETR 1", "-ERR message 1 already deleted"),
        ("RSET", "+OK"),
        ("LIST 1", "+OK 1 "),
    ] {
        c.send(cmd);
        let l = c.line();
        assert!(l.starts_with(want), "{cmd}: {l}");
    }
    // A second session for the same user finds the maildrop locked.
    let mut d = raw(s.pop3);
    d.line();
    d.send("USER bob");
    d.line();
    d.send("PASS bob-pw");
    assert!(d.line().starts_with("-ERR [IN-USE]"));
    // Dropping the connection without QUIT deletes nothing and releases the lock.
    c.send("DELE 1");
    c.line();
    drop(c);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(s.messages("users/bob").len(), 1);
    d.send("USER bob");
    d.line();
    d.send("PASS bob-pw");
    assert!(d.line().starts_with("+OK"));
    // Wrong passwords: three and the session is closed.
    let mut e = raw(s.pop3);
    e.line();
    for _ in 0..3 {
        e.send("USER carol");
        e.line();
        e.send("PASS wrong");
        assert!(e.line().starts_with("-ERR [AUTH]"));
    }
    assert!(e.line().contains("too many failed logins"));
}

#[test]
fn fetchmail_downloads_and_deletes() {
    if std::process::Command::new("fetchmail")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("fetchmail not installed: skipped");
        return;
    }
    let s = TestServer::start();
    s.setup_basic();
    deliver(&s, "carol@example.test", "for fetchmail 1");
    deliver(&s, "carol@example.test", "for fetchmail 2");
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("fetched.mbox");
    let rc = dir.path().join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll 127.0.0.1 service {} protocol pop3 user carol password \"carol-pw\" sslproto tls1.2+ no sslcertck mda \"/bin/sh -c 'cat >> {}'\"\n",
            s.pop3,
            out_file.display()
        ),
    )
    .unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&rc).unwrap().permissions(),
        0o600,
    );
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = std::process::Command::new("fetchmail")
        .args(["-f"])
        .arg(&rc)
        .args([
            "--nodetach",
            "--nosyslog",
            "--sslproto",
            "tls1.2+",
            "--fetchall",
            "--pidfile",
        ])
        .arg(dir.path().join("pid"))
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let got = std::fs::read_to_string(&out_file).unwrap_or_default();
    assert!(
        got.contains("Subject: for fetchmail 1") && got.contains("Subject: for fetchmail 2"),
        "{text}\n{got}"
    );
    assert_eq!(
        s.messages("users/carol").len(),
        0,
        "fetchmail deletes after download: {text}"
    );
}

struct Raw {
    r: std::io::BufReader<std::net::TcpStream>,
    w: std::net::TcpStream,
}

fn raw(port: u16) -> Raw {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    Raw {
        w: s.try_clone().unwrap(),
        r: std::io::BufReader::new(s),
    }
}

impl Raw {
    fn send(&mut self, l: &str) {
        std::io::Write::write_all(&mut self.w, format!("{l}\r\n").as_bytes()).unwrap();
    }
    fn line(&mut self) -> String {
        let mut s = String::new();
        std::io::BufRead::read_line(&mut self.r, &mut s).unwrap();
        s.trim_end().to_string()
    }
}
