//! Durability: quota deferral and retry, restart with a non-empty queue, SIGTERM with
//! sessions in flight, and SIGKILL at random moments under concurrent load — every message
//! that got its 250 must be delivered exactly once.

mod common;
use common::*;
use rand::Rng;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn big_message(subject: &str, kb: usize) -> String {
    let mut m = format!("Subject: {subject}\r\n\r\n");
    for _ in 0..kb * 1024 / 64 {
        m.push_str(&"q".repeat(62));
        m.push_str("\r\n");
    }
    m
}

#[test]
fn over_quota_stays_queued_and_is_retried_and_survives_restart() {
    let mut s = TestServer::start();
    s.setup_basic();
    s.api_ok("PATCH", "/users/alice", Some(json!({"quota_mb": 1})));
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "x@remote.test",
            &["alice@example.test"],
            &big_message("first", 600)
        )
        .0,
        250
    );
    let (code, text) = c.send_mail(
        "x@remote.test",
        &["alice@example.test", "bob@example.test"],
        &big_message("second", 600),
    );
    assert_eq!(code, 250, "over quota is accepted and queued: {text}");
    assert_eq!(s.messages("users/alice").len(), 1);
    assert_eq!(
        s.messages("users/bob").len(),
        1,
        "other recipients are not held back"
    );
    let q = s.api_ok("GET", "/queue", None);
    let rec = &q.as_array().unwrap()[0];
    assert_eq!(rec["qid"], qid(&text));
    assert_eq!(rec["rcpts"][0]["status"], "deferred");
    assert!(
        rec["rcpts"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("over quota")
    );
    let users = s.api_ok("GET", "/users/alice", None);
    assert!(users["usage"]["bytes"].as_u64().unwrap() > 600 * 1024);
    // Restart with the message still queued; then make room. Bodies left by a crash before
    // their record was committed (a body file, a half-written one) are removed at start-up,
    // before the listeners accept; the queued message's body file stays.
    s.kill9();
    let spool = s.data_dir().join("spool");
    assert!(
        spool.join(qid(&text)).exists(),
        "large body in a spool file"
    );
    for orphan in ["0000000000001000000", "0000000000001000001.tmp"] {
        std::fs::write(spool.join(orphan), "Subject: never acknowledged\r\n\r\n").unwrap();
    }
    s.spawn();
    for orphan in ["0000000000001000000", "0000000000001000001.tmp"] {
        assert!(!spool.join(orphan).exists(), "{orphan} removed at start-up");
    }
    assert!(spool.join(qid(&text)).exists(), "queued body kept");
    assert_eq!(s.api_ok("GET", "/queue", None).as_array().unwrap().len(), 1);
    s.api_ok("PATCH", "/users/alice", Some(json!({"quota_mb": 10})));
    let msgs = s.wait_messages("users/alice", 2);
    assert_eq!(msgs.len(), 2);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.messages("users/alice").len(), 2, "delivered exactly once");
    assert_eq!(s.api_ok("GET", "/queue", None), json!([]));
    assert!(
        !s.data_dir().join("spool").join(qid(&text)).exists(),
        "spool file removed"
    );
    assert!(s.log().contains(&format!("{}: removed", qid(&text))));
}

#[test]
fn sigterm_lets_sessions_in_flight_finish() {
    let mut s = TestServer::start();
    s.setup_basic();
    let mut c = s.smtp();
    c.ok("EHLO c.test", 250);
    c.ok("MAIL FROM:<x@remote.test>", 250);
    c.ok("RCPT TO:<alice@example.test>", 250);
    let pid_alive = s.data_dir();
    let _ = pid_alive;
    let t = std::thread::spawn({
        let mut c = c;
        move || {
            std::thread::sleep(Duration::from_millis(300));
            c.ok("DATA", 354);
            c.send(b"Subject: in flight\r\n\r\nx\r\n.\r\n");
            let r = c.reply();
            c.ok("QUIT", 221);
            r
        }
    });
    assert!(s.terminate(), "clean exit after SIGTERM:\n{}", s.log());
    let (code, text) = t.join().unwrap();
    assert_eq!(code, 250, "{text}");
    assert_eq!(s.messages("users/alice").len(), 1);
    assert!(s.log().contains("shutdown requested"));
}

#[test]
fn a_failed_local_write_is_queued_and_retried_while_others_are_delivered() {
    let s = TestServer::start();
    s.setup_basic();
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "x@remote.test",
            &["alice@example.test"],
            "Subject: one\r\n\r\n1\r\n"
        )
        .0,
        250
    );
    // alice's new/ becomes a plain file: writing her copy fails (ENOTDIR), bob's succeeds.
    let md = s.maildir("users/alice");
    std::fs::rename(md.join("new"), md.join("new.away")).unwrap();
    std::fs::write(md.join("new"), "not a directory").unwrap();
    let (code, text) = c.send_mail(
        "x@remote.test",
        &["alice@example.test", "bob@example.test"],
        "Subject: two\r\n\r\n2\r\n",
    );
    assert_eq!(
        code, 250,
        "accepted: the failed copy is queued durably: {text}"
    );
    assert_eq!(
        s.messages("users/bob").len(),
        1,
        "bob's copy is delivered at once"
    );
    assert!(
        s.log().contains("dsn=4.3.0, status=deferred"),
        "{}",
        s.log()
    );
    let q = s.api_ok("GET", "/queue", None);
    let rec = &q.as_array().unwrap()[0];
    assert_eq!(rec["qid"], qid(&text));
    assert_eq!(rec["rcpts"].as_array().unwrap().len(), 1, "{q}");
    assert_eq!(rec["rcpts"][0]["orig_to"], "alice@example.test");
    // Repaired: the retry delivers alice's copy, once, and the queue empties.
    std::fs::remove_file(md.join("new")).unwrap();
    std::fs::rename(md.join("new.away"), md.join("new")).unwrap();
    let msgs = s.wait_messages("users/alice", 2);
    assert_eq!(msgs.len(), 2);
    assert!(String::from_utf8_lossy(&msgs.concat()).contains("Subject: two"));
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(s.messages("users/alice").len(), 2, "delivered exactly once");
    assert_eq!(s.messages("users/bob").len(), 1, "bob not delivered again");
    assert_eq!(s.api_ok("GET", "/queue", None), json!([]));
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing_acknowledged() {
    let mut s = TestServer::start();
    s.setup_basic();
    for i in 0..4 {
        s.api_ok(
            "POST",
            "/users",
            Some(json!({"login": format!("u{i}"), "password": "pw-pw"})),
        );
    }
    // A fan-out address with a remote destination takes the spool + queue-record path.
    s.api_ok(
        "POST",
        "/addresses",
        Some(json!({"local": "mixed", "destinations": ["user:u3", "far@remote.test"]})),
    );
    // And a mailbox over quota keeps messages queued until the quota is raised.
    assert_eq!(
        s.smtp()
            .send_mail(
                "x@remote.test",
                &["u2@example.test"],
                &big_message("filler", 1100)
            )
            .0,
        250
    );
    s.api_ok("PATCH", "/users/u2", Some(json!({"quota_mb": 1})));
    let port = s.smtp;
    let acked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let unacked: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let port_cell = Arc::new(Mutex::new(port));
    let mut senders = Vec::new();
    for t in 0..8 {
        let (acked, unacked, stop, port_cell) = (
            acked.clone(),
            unacked.clone(),
            stop.clone(),
            port_cell.clone(),
        );
        senders.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let token = format!("tok-{t}-{i}");
                let (rcpt, mailbox) = match i % 4 {
                    0 => ("mixed@example.test", "users/u3"),
                    n => (
                        ["", "u0@example.test", "u1@example.test", "u2@example.test"][n as usize],
                        ["", "users/u0", "users/u1", "users/u2"][n as usize],
                    ),
                };
                i += 1;
                let port = *port_cell.lock().unwrap();
                let body = format!(
                    "Subject: {token}\r\nMessage-ID: <{token}@load.test>\r\n\r\n{token}\r\n"
                );
                match try_send(port, "load@remote.test", rcpt, &body) {
                    Ok((250, _)) => acked.lock().unwrap().push((token.clone(), mailbox.into())),
                    _ => {
                        unacked.lock().unwrap().push((token, mailbox.into()));
                        std::thread::sleep(Duration::from_millis(30));
                    }
                }
            }
        }));
    }
    let mut rng = rand::thread_rng();
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..600)));
        s.kill9();
        std::thread::sleep(Duration::from_millis(50));
        s.spawn();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for h in senders {
        let _ = h.join();
    }
    assert!(
        s.log().contains("status=deferred (mailbox over quota)"),
        "the quota path was exercised"
    );
    // Let the quota-held messages through, restart once more, and let the queue settle.
    s.api_ok("PATCH", "/users/u2", Some(json!({"quota_mb": 1000})));
    s.kill9();
    s.spawn();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut settled = false;
    loop {
        let q = s.api_ok("GET", "/queue", None);
        let local_waiting = q
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["rcpts"].as_array().unwrap().clone())
            .any(|r| r["status"] == "deferred" && r["target"]["kind"] == "local");
        if !local_waiting {
            settled = true;
            break;
        }
        if std::time::Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut counts: HashMap<String, usize> = HashMap::new();
    for mb in ["users/u0", "users/u1", "users/u2", "users/u3"] {
        for m in s.messages(mb) {
            let text = String::from_utf8_lossy(&m).into_owned();
            let tok = text
                .lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string();
            if tok == "filler" {
                continue;
            }
            *counts.entry(format!("{mb}/{tok}")).or_default() += 1;
        }
    }
    let acked = acked.lock().unwrap();
    assert!(
        acked.len() > 20,
        "too little load got through: {}",
        acked.len()
    );
    for (tok, mb) in acked.iter() {
        assert_eq!(
            counts.get(&format!("{mb}/{tok}")).copied().unwrap_or(0),
            1,
            "{tok} in {mb} (acknowledged); queue settled: {settled}; queue: {}; its log:\n{}",
            s.api_ok("GET", "/queue", None),
            trace(&s.log(), tok)
        );
    }
    for (tok, mb) in unacked.lock().unwrap().iter() {
        assert!(
            counts.get(&format!("{mb}/{tok}")).copied().unwrap_or(0) <= 1,
            "{tok} duplicated"
        );
    }
    eprintln!(
        "acknowledged {} messages across 5 SIGKILLs, all delivered exactly once",
        acked.len()
    );
}

#[test]
fn a_second_server_on_the_same_port_refuses_to_start() {
    let s = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("second.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = \"d\"\n[listeners]\nsmtp = \"127.0.0.1:{}\"\nsubmission = \"\"\nsubmissions = \"\"\nadmin = \"\"\n", s.smtp),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("smtp listener 127.0.0.1:") && err.contains("in use"),
        "{err}"
    );
}

/// The server's log lines about the message whose Message-ID holds `token`.
fn trace(log: &str, token: &str) -> String {
    let needle = format!("message-id=<{token}@load.test>");
    let Some(qid) = log.lines().find(|l| l.contains(&needle)).and_then(|l| {
        let before = &l[..l.find(": message-id=")?];
        before.split_whitespace().last().map(str::to_string)
    }) else {
        return format!("(no log line has {needle})");
    };
    log.lines()
        .filter(|l| l.contains(&qid))
        .collect::<Vec<_>>()
        .join("\n")
}
