//! Outbound delivery against real peers on loopback: a DNS server (dnsmasq) answering MX/A,
//! a second postcore instance, and a scriptable SMTP peer (tests/py/smtp_peer.py).

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn free_port() -> u16 {
    common::free_ports::<1>()[0]
}

/// The scriptable SMTP peer on 127.0.0.1.
fn peer(dir: &Path, mode: &str, creds: Option<&str>) -> (Bg, u16) {
    let port = free_port();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/smtp_peer.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .args(["127.0.0.1", &port.to_string()])
        .arg(dir)
        .arg(mode);
    if let Some(c) = creds {
        cmd.arg(c);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut bg = Bg(child);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(bg.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "ready");
    (bg, port)
}

fn sender_config(dns_port: u16, mx_port: u16) -> String {
    format!(
        "[dns]\nresolvers = [\"127.0.0.1:{dns_port}\"]\n[outbound]\nmx_port = {mx_port}\nconnect_timeout_secs = 2\ncommand_timeout_secs = 3\n\
         [queue]\nscan_interval_secs = 1\nretry_min_secs = 1\nretry_max_secs = 1\n"
    )
}

fn relay_client(s: &TestServer) {
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"relay": {"allow_relay_from": ["127.0.0.1/32"]}})),
    );
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn peer_messages(dir: &Path) -> Vec<String> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "eml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.into_iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

fn queue(s: &TestServer) -> Vec<Value> {
    s.api_ok("GET", "/queue", None).as_array().unwrap().clone()
}

#[test]
fn mx_delivery_to_a_second_postcore_is_byte_exact() {
    let receiver = TestServer::start();
    receiver.api_ok("POST", "/domains", Some(json!({"name": "remote.test"})));
    receiver.api_ok(
        "POST",
        "/users",
        Some(json!({"login": "bob", "password": "bob-pw"})),
    );
    let Some((_dns, dns_port)) = dns(&[
        "--mx-host=remote.test,mx.remote.test,10",
        "--address=/mx.remote.test/127.0.0.1",
    ]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, receiver.smtp));
    relay_client(&s);
    let body = "From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: across\r\n\r\n.dotted line\r\nUTF-8: h\u{e9}llo\r\n";
    let (code, text) = s
        .smtp()
        .send_mail("alice@example.test", &["bob@remote.test"], body);
    assert_eq!(code, 250, "{text}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.messages("users/bob").len() != 1 {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for delivery at the receiver\nsender log:\n{}\nreceiver log:\n{}",
            s.log(),
            receiver.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = String::from_utf8(receiver.messages("users/bob")[0].clone()).unwrap();
    // Two Received headers were added (ours and the receiver's); the rest is identical.
    let original = got
        .split_once("Received: from client.test")
        .map(|(_, rest)| rest)
        .unwrap();
    assert!(original.ends_with(body), "{got}");
    assert!(
        got.starts_with("Received: from mx.example.test ([127.0.0.1])"),
        "the peer saw our host name in EHLO: {got}"
    );
    wait_until("queue to empty", || queue(&s).is_empty());
    let log = s.log();
    assert!(
        log.contains(&format!(
            "{}: to=<bob@remote.test>, relay=mx.remote.test[127.0.0.1]:{}",
            qid(&text),
            receiver.smtp
        )),
        "{log}"
    );
    assert!(
        log.contains("status=sent (250 2.0.0 Ok: queued as"),
        "{log}"
    );
    assert!(
        receiver.log().contains("TLS established"),
        "opportunistic STARTTLS was used"
    );
}

#[test]
fn permanent_failure_bounces_and_null_sender_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let (_peer, pport) = peer(tmp.path(), "reject", None);
    let Some((_dns, dns_port)) = dns(&[
        "--mx-host=remote.test,mx.remote.test,10",
        "--address=/mx.remote.test/127.0.0.1",
    ]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, pport));
    relay_client(&s);
    let (code, text) = s.smtp().send_mail(
        "alice@example.test",
        &["nobody@remote.test"],
        "Subject: doomed\r\nX-Original: yes\r\n\r\nsecret\r\n",
    );
    assert_eq!(code, 250);
    let bounces = s.wait_messages("users/alice", 1);
    assert_eq!(bounces.len(), 1);
    let b = String::from_utf8_lossy(&bounces[0]).into_owned();
    assert!(
        b.contains("Subject: Undelivered Mail Returned to Sender"),
        "{b}"
    );
    assert!(
        b.contains("Content-Type: multipart/report; report-type=delivery-status"),
        "{b}"
    );
    assert!(
        b.contains(
            "Final-Recipient: rfc822; nobody@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ),
        "{b}"
    );
    assert!(
        b.contains("Diagnostic-Code: smtp; 550 5.1.1 <nobody@remote.test>: no such user here"),
        "{b}"
    );
    assert!(
        b.contains("Content-Type: text/rfc822-headers") && b.contains("X-Original: yes"),
        "{b}"
    );
    assert!(!b.contains("secret"), "only the headers come back");
    assert!(s.log().contains(&format!(
        "{}: to=<nobody@remote.test>, relay=mx.remote.test[127.0.0.1]:{pport}, delay=",
        qid(&text)
    )));
    assert!(s.log().contains("dsn=5.1.1, status=bounced"));
    // A null-sender message that fails is dropped, never bounced.
    let (code, text) = s.smtp().send_mail(
        "",
        &["nobody@remote.test"],
        "Subject: a bounce itself\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250);
    wait_until("null-sender failure handled", || {
        s.log()
            .contains(&format!("{}: no bounce for the null sender", qid(&text)))
    });
    wait_until("queue to empty", || queue(&s).is_empty());
    assert_eq!(s.messages("users/alice").len(), 1);
}

#[test]
fn temporary_failure_is_retried_and_custom_helo_is_used() {
    let tmp = tempfile::tempdir().unwrap();
    let (_peer, pport) = peer(tmp.path(), "tempfail:1", None);
    let Some((_dns, dns_port)) = dns(&["--host-record=remote.test,127.0.0.1"]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, pport));
    relay_client(&s);
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"outbound": {"helo_name": "custom-helo.example.test"}})),
    );
    let (code, _) = s.smtp().send_mail(
        "alice@example.test",
        &["carol@remote.test"],
        "Subject: eventually\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250);
    wait_until("delivery after a retry", || {
        peer_messages(tmp.path()).len() == 1
    });
    let log = std::fs::read_to_string(tmp.path().join("log")).unwrap();
    assert!(log.contains("C: EHLO custom-helo.example.test"), "{log}");
    assert!(
        s.log()
            .contains("status=deferred (451 4.3.0 try again later)")
    );
    assert!(s.log().contains("status=sent"));
    wait_until("queue to empty", || queue(&s).is_empty());
    assert_eq!(s.messages("users/alice").len(), 0, "no bounce");
}

#[test]
fn smarthost_with_auth_and_relay_host_by_sender() {
    let tmp_smart = tempfile::tempdir().unwrap();
    let tmp_route = tempfile::tempdir().unwrap();
    let (_smart, smart_port) = peer(tmp_smart.path(), "accept", Some("relayuser:relaypass"));
    let (_route, route_port) = peer(tmp_route.path(), "accept", None);
    let Some((_dns, dns_port)) = dns(&[]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, 1));
    relay_client(&s);
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"outbound": {
            "smarthost": {"host": "127.0.0.1", "port": smart_port, "username": "relayuser", "password": "relaypass", "tls": "none"},
            "sender_routes": [{"sender": "bob@example.test", "relay": {"host": "127.0.0.1", "port": route_port, "tls": "none"}}]
        }})),
    );
    assert_eq!(
        s.smtp()
            .send_mail(
                "alice@example.test",
                &["x@anywhere.test"],
                "Subject: via smarthost\r\n\r\nx\r\n"
            )
            .0,
        250
    );
    assert_eq!(
        s.smtp()
            .send_mail(
                "bob@example.test",
                &["y@anywhere.test"],
                "Subject: via route\r\n\r\ny\r\n"
            )
            .0,
        250
    );
    wait_until("smarthost delivery", || {
        peer_messages(tmp_smart.path()).len() == 1
    });
    wait_until("sender-route delivery", || {
        peer_messages(tmp_route.path()).len() == 1
    });
    assert!(peer_messages(tmp_smart.path())[0].contains("Subject: via smarthost"));
    assert!(peer_messages(tmp_route.path())[0].contains("Subject: via route"));
    let log = std::fs::read_to_string(tmp_smart.path().join("log")).unwrap();
    assert!(log.contains("C: AUTH PLAIN"), "{log}");
    // Wrong credentials: the smarthost refuses MAIL; the message stays queued (5xx at AUTH is
    // a configuration problem, retried until the lifetime).
    s.api_ok("PATCH", "/settings", Some(json!({"outbound": {"smarthost": {"host": "127.0.0.1", "port": smart_port, "username": "relayuser", "password": "wrong", "tls": "none"}}})));
    let (code, text) = s.smtp().send_mail(
        "alice@example.test",
        &["z@anywhere.test"],
        "Subject: refused\r\n\r\nz\r\n",
    );
    assert_eq!(code, 250);
    wait_until("auth failure logged", || {
        s.log().contains("535 5.7.8 bad credentials")
    });
    let _ = text;
}

#[test]
fn lifetime_expiry_bounces_with_4_4_7() {
    let tmp = tempfile::tempdir().unwrap();
    let (_peer, pport) = peer(tmp.path(), "tempfail:100000", None);
    let Some((_dns, dns_port)) = dns(&["--host-record=remote.test,127.0.0.1"]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, pport));
    relay_client(&s);
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"queue_lifetime_secs": 2})),
    );
    assert_eq!(
        s.smtp()
            .send_mail(
                "alice@example.test",
                &["late@remote.test"],
                "Subject: too late\r\n\r\nx\r\n"
            )
            .0,
        250
    );
    let b = s.wait_messages("users/alice", 1);
    assert_eq!(b.len(), 1, "{}", s.log());
    let b = String::from_utf8_lossy(&b[0]).into_owned();
    assert!(b.contains("Status: 4.4.7"), "{b}");
    assert!(
        b.contains("message queue lifetime expired; last error: 451 4.3.0 try again later"),
        "{b}"
    );
    wait_until("queue to empty", || queue(&s).is_empty());
}

#[test]
fn broken_peers_fail_cleanly_and_stay_queued() {
    let Some((_dns, dns_port)) = dns(&["--host-record=remote.test,127.0.0.1"]) else {
        return;
    };
    for mode in ["hang", "close", "garbage"] {
        let tmp = tempfile::tempdir().unwrap();
        let (_peer, pport) = peer(tmp.path(), mode, None);
        let s = TestServer::start_with(&sender_config(dns_port, pport));
        relay_client(&s);
        let (code, text) = s.smtp().send_mail(
            "alice@example.test",
            &["x@remote.test"],
            "Subject: broken peer\r\n\r\nx\r\n",
        );
        assert_eq!(code, 250);
        let q = qid(&text);
        wait_until("a failed attempt", || {
            queue(&s)
                .iter()
                .any(|r| r["qid"] == q && r["attempts"].as_u64().unwrap_or(0) >= 1)
        });
        let rec = queue(&s).into_iter().find(|r| r["qid"] == q).unwrap();
        assert_eq!(rec["rcpts"][0]["status"], "deferred", "{mode}: {rec}");
        let err = rec["rcpts"][0]["last_error"].as_str().unwrap().to_string();
        assert!(err.contains("127.0.0.1"), "{mode}: {err}");
        assert_eq!(
            s.messages("users/alice").len(),
            0,
            "{mode}: no bounce for a temporary failure"
        );
        // The server keeps serving.
        assert_eq!(
            s.smtp()
                .send_mail(
                    "x@remote.test",
                    &["bob@example.test"],
                    "Subject: still fine\r\n\r\nx\r\n"
                )
                .0,
            250
        );
    }
}

#[test]
fn queue_list_resend_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let (_peer, pport) = peer(tmp.path(), "tempfail:100000", None);
    let Some((_dns, dns_port)) = dns(&["--host-record=remote.test,127.0.0.1"]) else {
        return;
    };
    let s = TestServer::start_with(&format!(
        "[dns]\nresolvers = [\"127.0.0.1:{dns_port}\"]\n[outbound]\nmx_port = {pport}\n[queue]\nscan_interval_secs = 1\nretry_min_secs = 3600\nretry_max_secs = 3600\n"
    ));
    relay_client(&s);
    let (_, t1) = s.smtp().send_mail(
        "alice@example.test",
        &["a@remote.test"],
        "Subject: one\r\n\r\nx\r\n",
    );
    let (_, t2) = s.smtp().send_mail(
        "alice@example.test",
        &["b@remote.test"],
        "Subject: two\r\n\r\nx\r\n",
    );
    let (q1, q2) = (qid(&t1), qid(&t2));
    wait_until("first attempts", || {
        queue(&s)
            .iter()
            .all(|r| r["attempts"].as_u64().unwrap_or(0) >= 1)
            && queue(&s).len() == 2
    });
    let (ok, out, err) = s.cli(&["queue", "list"], None);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let r1 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["qid"] == q1)
        .unwrap();
    assert_eq!(r1["from"], "alice@example.test");
    assert!(
        r1["size"].as_u64().unwrap() > 0
            && r1["next_attempt"].as_u64().unwrap() > r1["arrival"].as_u64().unwrap()
    );
    assert!(
        r1["rcpts"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("451")
    );
    // Resend one: its attempts grow now, not in an hour.
    let (ok, _, err) = s.cli(&["queue", "resend", &q1], None);
    assert!(ok, "{err}");
    wait_until("resent", || {
        queue(&s)
            .iter()
            .any(|r| r["qid"] == q1 && r["attempts"].as_u64().unwrap_or(0) >= 2)
    });
    assert_eq!(
        queue(&s).iter().find(|r| r["qid"] == q2).unwrap()["attempts"],
        1
    );
    let (ok, _, err) = s.cli(&["queue", "resend"], None);
    assert!(ok, "{err}");
    wait_until("all resent", || {
        queue(&s)
            .iter()
            .all(|r| r["attempts"].as_u64().unwrap_or(0) >= 2)
    });
    let (ok, _, err) = s.cli(&["queue", "resend", "NOSUCHQID"], None);
    assert!(!ok && err.contains("not found"), "{err}");
    // Delete one, then all.
    let (ok, _, err) = s.cli(&["queue", "delete", &q1], None);
    assert!(ok, "{err}");
    assert!(queue(&s).iter().all(|r| r["qid"] != q1));
    assert!(!s.data_dir().join("spool").join(&q1).exists());
    let (ok, _, err) = s.cli(&["queue", "delete"], None);
    assert!(ok, "{err}");
    assert!(queue(&s).is_empty());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        queue(&s).is_empty(),
        "deleted records are not written back by a queue run"
    );
    assert_eq!(
        s.messages("users/alice").len(),
        0,
        "deleting does not bounce"
    );
}

#[test]
fn relay_domain_goes_to_its_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (_peer, pport) = peer(tmp.path(), "accept", None);
    let Some((_dns, dns_port)) = dns(&[]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, 1));
    s.setup_basic();
    s.api_ok("POST", "/domains", Some(json!({"name": "branch.test", "kind": "relay", "relay_host": format!("127.0.0.1:{pport}")})));
    // Accepted from anyone (it is our domain to relay), delivered to the configured host.
    let (code, text) = s.smtp().send_mail(
        "x@remote.test",
        &["anyone@branch.test"],
        "Subject: for the branch\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250, "{text}");
    wait_until("relay-domain delivery", || {
        peer_messages(tmp.path()).len() == 1
    });
    let log = std::fs::read_to_string(tmp.path().join("log")).unwrap();
    // RFC 1870: the SIZE we declare is the message as sent; its length varies with the
    // Received date (a one-digit day is one octet shorter), so compare with what arrived.
    let sent = std::fs::read(tmp.path().join("1.eml")).unwrap().len();
    let want = format!("MSG 1 from=<x@remote.test> SIZE={sent} rcpts=<anyone@branch.test>");
    assert!(log.contains(&want), "{want} not in {log}");
}

#[test]
fn smarthost_over_implicit_tls_and_required_starttls_with_auth_to_a_second_postcore() {
    let receiver = TestServer::start();
    receiver.setup_basic();
    receiver.api_ok("POST", "/domains", Some(json!({"name": "far.test"})));
    receiver.api_ok(
        "POST",
        "/users",
        Some(json!({"login": "dest", "password": "dest-pw"})),
    );
    let Some((_dns, dns_port)) = dns(&[]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, 1));
    relay_client(&s);
    for (port, tls, n) in [
        (receiver.submissions, "implicit", 1),
        (receiver.submission, "starttls", 2),
    ] {
        s.api_ok(
            "PATCH",
            "/settings",
            Some(json!({"outbound": {"smarthost": {"host": "127.0.0.1", "port": port, "username": "alice", "password": "alice-pw", "tls": tls}}})),
        );
        assert_eq!(
            s.smtp()
                .send_mail(
                    "alice@example.test",
                    &["dest@far.test"],
                    &format!("Subject: via {tls}\r\n\r\nx\r\n")
                )
                .0,
            250
        );
        wait_until(tls, || receiver.messages("users/dest").len() == n);
        let m = String::from_utf8_lossy(&receiver.messages("users/dest")[n - 1]).into_owned();
        assert!(
            m.contains("with ESMTPSA id"),
            "{tls}: TLS and AUTH were used: {m}"
        );
    }
}

#[test]
fn delay_warning_is_sent_once_and_the_message_stays_queued() {
    let tmp = tempfile::tempdir().unwrap();
    let (_peer, pport) = peer(tmp.path(), "tempfail:100000", None);
    let Some((_dns, dns_port)) = dns(&["--host-record=remote.test,127.0.0.1"]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, pport));
    relay_client(&s);
    s.api_ok("PATCH", "/settings", Some(json!({"delay_warning_secs": 1})));
    let (code, text) = s.smtp().send_mail(
        "alice@example.test",
        &["slow@remote.test"],
        "Subject: slow one\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250);
    let w = s.wait_messages("users/alice", 1);
    let w = String::from_utf8_lossy(&w[0]).into_owned();
    assert!(
        w.contains("Subject: Delayed Mail (still being retried)"),
        "{w}"
    );
    assert!(
        w.contains(
            "Final-Recipient: rfc822; slow@remote.test\r\nAction: delayed\r\nStatus: 4.3.0\r\n"
        ),
        "{w}"
    );
    // More attempts follow, but no second warning; the message is still queued.
    let q = qid(&text);
    wait_until("more attempts", || {
        queue(&s)
            .iter()
            .any(|r| r["qid"] == q && r["attempts"].as_u64().unwrap_or(0) >= 4)
    });
    assert_eq!(s.messages("users/alice").len(), 1);
    assert_eq!(
        queue(&s).iter().find(|r| r["qid"] == q).unwrap()["warned"],
        true
    );
}

#[test]
fn a_hanging_destination_does_not_hold_back_others() {
    let slow_dir = tempfile::tempdir().unwrap();
    let fast_dir = tempfile::tempdir().unwrap();
    let (_slow, slow_port) = peer(slow_dir.path(), "hang", None);
    let (_fast, fast_port) = peer(fast_dir.path(), "accept", None);
    let Some((_dns, dns_port)) = dns(&[]) else {
        return;
    };
    // Replies are awaited for 20 s: long enough to tell "held back" from "not held back".
    let s = TestServer::start_with(&format!(
        "[dns]\nresolvers = [\"127.0.0.1:{dns_port}\"]\n[outbound]\nconnect_timeout_secs = 2\ncommand_timeout_secs = 20\n\
         [queue]\nscan_interval_secs = 1\nretry_min_secs = 1\nretry_max_secs = 1\n"
    ));
    s.setup_basic();
    s.api_ok("POST", "/domains", Some(json!({"name": "slow.test", "kind": "relay", "relay_host": format!("127.0.0.1:{slow_port}")})));
    s.api_ok("POST", "/domains", Some(json!({"name": "fast.test", "kind": "relay", "relay_host": format!("127.0.0.1:{fast_port}")})));
    assert_eq!(
        s.smtp()
            .send_mail(
                "x@remote.test",
                &["a@slow.test"],
                "Subject: to the slow one\r\n\r\nx\r\n"
            )
            .0,
        250
    );
    std::thread::sleep(Duration::from_millis(1500));
    let t0 = Instant::now();
    assert_eq!(
        s.smtp()
            .send_mail(
                "x@remote.test",
                &["b@fast.test"],
                "Subject: to the fast one\r\n\r\nx\r\n"
            )
            .0,
        250
    );
    wait_until("fast delivery", || {
        peer_messages(fast_dir.path()).len() == 1
    });
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "held back for {:?}",
        t0.elapsed()
    );
}

/// The queue gauges read from `/metrics`: (messages, bytes).
fn queue_gauges(s: &TestServer) -> (f64, f64) {
    let body = ureq::get(&format!("http://127.0.0.1:{}/metrics", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let value = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing in\n{body}"))
    };
    (
        value("postcore_queue_messages"),
        value("postcore_queue_bytes"),
    )
}

#[test]
fn a_domain_without_dns_bounces_with_a_log_line_and_the_gauges_follow_the_queue() {
    // dnsmasq answers NXDOMAIN for every .test name it has no record for.
    let Some((_dns, dns_port)) = dns(&[]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, 25));
    relay_client(&s);
    let (code, text) = s.smtp().send_mail(
        "alice@example.test",
        &["someone@nowhere.test"],
        "Subject: to nowhere\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250, "{text}");
    let q = qid(&text);
    let bounces = s.wait_messages("users/alice", 1);
    let b = String::from_utf8_lossy(&bounces[0]).into_owned();
    assert!(
        b.contains(
            "Final-Recipient: rfc822; someone@nowhere.test\r\nAction: failed\r\nStatus: 5.1.2\r\n"
        ),
        "{b}"
    );
    wait_until("message removed", || {
        s.log().contains(&format!("{q}: removed"))
    });
    // Exactly one line tells what happened to the recipient, and why.
    let log = s.log();
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&format!("{q}: to=<someone@nowhere.test>")))
        .collect();
    assert_eq!(lines.len(), 1, "{log}");
    assert!(
        lines[0].contains("relay=none") && lines[0].contains("dsn=5.1.2, status=bounced ("),
        "{}",
        lines[0]
    );
    // The queue is empty and the gauges say so, without waiting for another queue run.
    assert!(queue(&s).is_empty());
    assert_eq!(queue_gauges(&s), (0.0, 0.0));
}

#[test]
fn queue_gauges_follow_deferral_and_administrator_deletion() {
    // The domain's MX refuses connections: the message stays queued.
    let Some((_dns, dns_port)) = dns(&[
        "--mx-host=later.test,mx.later.test,10",
        "--address=/mx.later.test/127.0.0.1",
    ]) else {
        return;
    };
    let s = TestServer::start_with(&sender_config(dns_port, free_port()));
    relay_client(&s);
    let (code, text) = s.smtp().send_mail(
        "alice@example.test",
        &["someone@later.test"],
        "Subject: later\r\n\r\nx\r\n",
    );
    assert_eq!(code, 250, "{text}");
    let q = qid(&text);
    wait_until("deferred attempt logged", || {
        s.log().lines().any(|l| {
            l.contains(&format!("{q}: to=<someone@later.test>")) && l.contains("status=deferred")
        })
    });
    let size = queue(&s)[0]["size"].as_f64().unwrap();
    assert_eq!(queue_gauges(&s), (1.0, size));
    s.api_ok("DELETE", &format!("/queue/{q}"), None);
    assert!(queue(&s).is_empty());
    assert_eq!(queue_gauges(&s), (0.0, 0.0));
    assert!(s.log().contains(&format!("{q}: removed by administrator")));
}
