//! Delivery into Maildirs: users, addresses fanning out, groups, public mailboxes, catch-all,
//! hidden copies and forwarding — over real SMTP, checked in the real Maildir files.

mod common;
use common::*;
use serde_json::json;

fn contains(hay: &[u8], needle: &str) -> bool {
    String::from_utf8_lossy(hay).contains(needle)
}

#[test]
fn delivers_to_a_user_with_received_header_and_qid() {
    let s = TestServer::start();
    s.setup_basic();
    let mut c = s.smtp();
    assert!(
        c.banner.starts_with("220 mx.example.test ESMTP"),
        "{}",
        c.banner
    );
    let (code, text) = c.send_mail(
        "sender@remote.test",
        &["Alice@Example.TEST"],
        &message("one"),
    );
    assert_eq!(code, 250, "{text}");
    assert!(text.starts_with("2.0.0 Ok: queued as "), "{text}");
    let q = qid(&text);
    c.ok("QUIT", 221);
    let msgs = s.messages("users/alice");
    assert_eq!(msgs.len(), 1);
    let m = String::from_utf8_lossy(&msgs[0]);
    assert!(m.starts_with("Received: from client.test ([127.0.0.1])\r\n\tby mx.example.test (postcore) with ESMTP id "), "{m}");
    assert!(
        m.contains(&format!("id {q}\r\n\tfor <Alice@example.test>; ")),
        "{m}"
    );
    assert!(m.ends_with("Subject: one\r\n\r\nBody of one.\r\n"), "{m}");
    // Maildir names carry the QID; tmp/ is empty after delivery.
    let names: Vec<_> = std::fs::read_dir(s.maildir("users/alice/new"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert!(names[0].contains(&q), "{names:?}");
    assert_eq!(
        std::fs::read_dir(s.maildir("users/alice/tmp"))
            .unwrap()
            .count(),
        0
    );
    // Logs: one line per event keyed by QID.
    let log = s.log();
    assert!(
        log.contains(&format!("{q}: from=<sender@remote.test>, size=")),
        "{log}"
    );
    assert!(
        log.contains(&format!(
            "{q}: to=<user:alice>, orig_to=<Alice@example.test>, relay=local"
        )),
        "{log}"
    );
    assert!(log.contains(&format!("{q}: removed")));
    assert!(
        !log.contains('\u{1b}'),
        "no terminal colour codes in a log file"
    );
}

#[test]
fn users_exist_in_every_local_domain_and_postmaster_without_domain() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok("POST", "/domains", Some(json!({"name": "second.test"})));
    s.api_ok(
        "POST",
        "/users",
        Some(json!({"login": "postmaster", "password": "pm-pw"})),
    );
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail("x@remote.test", &["bob@second.test"], &message("b"))
            .0,
        250
    );
    c.ok("MAIL FROM:<x@remote.test>", 250);
    c.ok("RCPT TO:<Postmaster>", 250);
    c.ok("DATA", 354);
    c.send(b"Subject: pm\r\n\r\nhi\r\n.\r\n");
    assert_eq!(c.reply().0, 250);
    assert_eq!(s.messages("users/bob").len(), 1);
    assert_eq!(s.messages("users/postmaster").len(), 1);
}

#[test]
fn address_fans_out_to_user_group_public_and_external() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "POST",
        "/groups",
        Some(json!({"name": "sales", "members": ["bob", "carol"]})),
    );
    s.api_ok(
        "POST",
        "/public",
        Some(json!({"name": "info", "owners": ["sales"]})),
    );
    s.api_ok(
        "POST",
        "/addresses",
        Some(json!({"local": "team", "domain": "example.test",
                    "destinations": ["user:alice", "group:sales", "public:info", "partner@remote.test"]})),
    );
    let mut c = s.smtp();
    let (code, text) = c.send_mail("x@remote.test", &["team@example.test"], &message("fanout"));
    assert_eq!(code, 250, "{text}");
    for mb in ["users/alice", "users/bob", "users/carol", "public/info"] {
        let m = s.messages(mb);
        assert_eq!(m.len(), 1, "{mb}");
        assert!(contains(&m[0], "Subject: fanout"));
    }
    // The external destination waits in the queue for outbound delivery, as its own message
    // with the sender rewritten by SRS (the log ties it to the received one).
    let q = s.api_ok("GET", "/queue", None);
    let log = s.wait_log(&format!("{}: forwarded as ", qid(&text)));
    let fwd_qid = log
        .split(&format!("{}: forwarded as ", qid(&text)))
        .nth(1)
        .and_then(|r| r.split(',').next())
        .expect("forward logged")
        .to_string();
    let rec = q
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["qid"] == fwd_qid.as_str())
        .expect("queued record");
    assert_eq!(rec["rcpts"][0]["target"]["address"], "partner@remote.test");
    assert_eq!(rec["rcpts"][0]["status"], "deferred");
    assert!(rec["from"].as_str().unwrap().starts_with("SRS0="), "{rec}");
    // Bound to one domain only.
    s.api_ok("POST", "/domains", Some(json!({"name": "other.test"})));
    assert_eq!(c.cmd("MAIL FROM:<x@remote.test>").0, 250);
    assert_eq!(c.cmd("RCPT TO:<team@other.test>").0, 550);
}

#[test]
fn group_addresses_follow_global_and_per_group_switches() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "POST",
        "/groups",
        Some(json!({"name": "staff", "members": ["alice", "bob"]})),
    );
    let mut c = s.smtp();
    c.ok("EHLO c.test", 250);
    c.ok("MAIL FROM:<x@remote.test>", 250);
    assert_eq!(
        c.cmd("RCPT TO:<staff@example.test>").0,
        550,
        "group addresses start disabled"
    );
    c.ok("RSET", 250);
    s.api_ok("PATCH", "/settings", Some(json!({"group_addresses": true})));
    assert_eq!(
        c.send_mail("x@remote.test", &["staff@example.test"], &message("g"))
            .0,
        250
    );
    assert_eq!(s.messages("users/alice").len(), 1);
    assert_eq!(s.messages("users/bob").len(), 1);
    assert_eq!(s.messages("users/carol").len(), 0);
    s.api_ok(
        "PATCH",
        "/groups/staff",
        Some(json!({"address_enabled": false})),
    );
    c.ok("MAIL FROM:<x@remote.test>", 250);
    assert_eq!(c.cmd("RCPT TO:<staff@example.test>").0, 550);
}

#[test]
fn catch_all_accepts_unknown_recipients() {
    let s = TestServer::start();
    s.setup_basic();
    let mut c = s.smtp();
    c.ok("EHLO c.test", 250);
    c.ok("MAIL FROM:<x@remote.test>", 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@example.test>").0, 550);
    c.ok("RSET", 250);
    s.api_ok(
        "PATCH",
        "/domains/example.test",
        Some(json!({"accept_unknown": true, "catch_all": "user:carol"})),
    );
    assert_eq!(
        c.send_mail("x@remote.test", &["nobody@example.test"], &message("lost"))
            .0,
        250
    );
    assert_eq!(s.messages("users/carol").len(), 1);
}

#[test]
fn hidden_copies_per_domain_and_global() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "POST",
        "/users",
        Some(json!({"login": "archive", "password": "archive-pw"})),
    );
    s.api_ok(
        "POST",
        "/users",
        Some(json!({"login": "audit", "password": "audit-pw"})),
    );
    s.api_ok(
        "PATCH",
        "/domains/example.test",
        Some(json!({"bcc": "archive@example.test"})),
    );
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "x@remote.test",
            &["alice@example.test", "bob@example.test"],
            &message("h1")
        )
        .0,
        250
    );
    assert_eq!(
        s.messages("users/archive").len(),
        1,
        "one hidden copy per message, not per recipient"
    );
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"always_bcc": "audit@example.test"})),
    );
    assert_eq!(
        c.send_mail("x@remote.test", &["carol@example.test"], &message("h2"))
            .0,
        250
    );
    assert_eq!(s.messages("users/archive").len(), 2);
    assert_eq!(s.messages("users/audit").len(), 1);
    // The hidden copy is not visible in the message itself.
    assert!(!contains(&s.messages("users/carol")[0], "archive@"));
}

#[test]
fn forwarding_with_and_without_local_copy() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/users/alice",
        Some(json!({"forward": ["alice@elsewhere.test", "bob@example.test"], "keep_copy": true})),
    );
    s.api_ok(
        "PATCH",
        "/users/carol",
        Some(json!({"forward": ["carol@elsewhere.test"], "keep_copy": false})),
    );
    let mut c = s.smtp();
    let (_, t1) = c.send_mail("x@remote.test", &["alice@example.test"], &message("f1"));
    let (_, t2) = c.send_mail("x@remote.test", &["carol@example.test"], &message("f2"));
    assert_eq!(s.messages("users/alice").len(), 1);
    assert_eq!(
        s.messages("users/bob").len(),
        1,
        "local forward target gets its copy"
    );
    assert_eq!(s.messages("users/carol").len(), 0, "no local copy");
    let q = s.api_ok("GET", "/queue", None);
    // Forwards to other domains are queued as their own messages, SRS-rewritten, and logged
    // against the received message's QID.
    let remote_for = |id: String| -> Vec<String> {
        let log = s.wait_log(&format!("{id}: forwarded as "));
        let fwd = log
            .split(&format!("{id}: forwarded as "))
            .nth(1)
            .and_then(|r| r.split(',').next())
            .unwrap_or_default()
            .to_string();
        q.as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["qid"] == fwd.as_str() && r["from"].as_str().unwrap_or("").starts_with("SRS0=")
            })
            .flat_map(|r| r["rcpts"].as_array().unwrap().clone())
            .map(|r| r["target"]["address"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(remote_for(qid(&t1)), vec!["alice@elsewhere.test"]);
    assert_eq!(remote_for(qid(&t2)), vec!["carol@elsewhere.test"]);
    assert!(
        q.as_array()
            .unwrap()
            .iter()
            .all(|r| r["qid"] != qid(&t2).as_str()),
        "nothing else left of f2"
    );
}

#[test]
fn bdat_chunking_and_pipelining() {
    let s = TestServer::start();
    s.setup_basic();
    let mut c = s.smtp();
    let ehlo = c.ok("EHLO c.test", 250);
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
        "STARTTLS",
    ] {
        assert!(ehlo.lines().any(|l| l == ext), "{ext} missing in {ehlo}");
    }
    assert!(!ehlo.contains("AUTH"), "no AUTH on port 25 without TLS");
    // RFC 3030: two chunks, binary-safe, no dot-stuffing.
    let part1 = b"Subject: chunked\r\n\r\n.line starting with a dot\r\n";
    let part2 = b"end\r\n";
    c.send(
        format!(
            "MAIL FROM:<x@remote.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT {}\r\n",
            part1.len()
        )
        .as_bytes(),
    );
    c.send(part1);
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes());
    c.send(part2);
    assert_eq!(c.reply().0, 250);
    assert_eq!(c.reply().0, 250);
    assert_eq!(c.reply().0, 250);
    let (code, text) = c.reply();
    assert_eq!(code, 250, "{text}");
    assert!(text.contains("queued as"));
    let m = &s.messages("users/alice")[0];
    assert!(
        String::from_utf8_lossy(m)
            .ends_with("Subject: chunked\r\n\r\n.line starting with a dot\r\nend\r\n")
    );
    // RFC 2920: a whole pipelined transaction in one write, replies in order.
    c.send(b"MAIL FROM:<x@remote.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\n");
    let codes: Vec<u16> = (0..5).map(|_| c.reply().0).collect();
    assert_eq!(codes, vec![250, 250, 550, 250, 354]);
    c.send(b"Subject: piped\r\n\r\n..dot\r\n.\r\nNOOP\r\n");
    assert_eq!(c.reply().0, 250);
    assert_eq!(c.reply().0, 250, "NOOP pipelined after the data");
    assert!(String::from_utf8_lossy(&s.messages("users/bob")[0]).ends_with("\r\n.dot\r\n"));
    assert_eq!(s.messages("users/carol").len(), 1);
}

#[test]
fn swaks_delivers_as_a_real_client() {
    if std::process::Command::new("swaks")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("swaks not installed; skipped");
        return;
    }
    let s = TestServer::start();
    s.setup_basic();
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{}", s.smtp),
            "--to",
            "alice@example.test",
            "--from",
            "peer@remote.test",
            "--header",
            "Subject: via swaks",
            "--body",
            "hello from swaks",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    let m = String::from_utf8_lossy(&s.messages("users/alice")[0]).into_owned();
    assert!(
        m.contains("Subject: via swaks") && m.contains("hello from swaks"),
        "{m}"
    );
}
