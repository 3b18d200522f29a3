//! The network checks of port-25 mail against a DNS server on loopback (dnsmasq): SPF,
//! DKIM (messages signed by dkimpy, an independent implementation), DMARC `p=reject` and
//! `p=quarantine`, reverse DNS, HELO, a DNSBL-listed client and a URIBL-listed link domain,
//! the `Authentication-Results` field (RFC 8601) with forged ones of ours removed, and a DNS
//! server that never answers (the message is judged within the budget). A client in the
//! trusted networks (loopback by default) gets only the content's checks.

mod common;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

/// Sends `body` from `from` after `EHLO helo`; the reply to the data.
fn send_as(s: &TestServer, helo: &str, from: &str, body: &str) -> (u16, String) {
    let mut c = s.smtp();
    c.ok(&format!("EHLO {helo}"), 250);
    c.ok(&format!("MAIL FROM:<{from}>"), 250);
    c.ok("RCPT TO:<alice@example.test>", 250);
    c.ok("DATA", 354);
    let mut data = body.replace("\r\n", "\n").replace('\n', "\r\n");
    if !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    c.send(data.as_bytes());
    c.reply()
}

fn mail(from: &str, subject: &str, extra: &str, body: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Date: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{subject}@{}>\r\n{extra}\r\n{body}\r\n",
        from.rsplit_once('@').map_or("x", |(_, d)| d)
    )
}

fn spam_settings(s: &TestServer, spam: serde_json::Value) {
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": spam}})),
    );
}

/// The newest message in a mailbox, as text.
fn newest(s: &TestServer, mailbox: &str, n: usize) -> String {
    let got = s.wait_messages(mailbox, n);
    assert_eq!(got.len(), n, "{mailbox} should hold {n}: {}", s.log());
    let mut files: Vec<_> = ["new", "cur"]
        .iter()
        .flat_map(|d| {
            std::fs::read_dir(s.maildir(mailbox).join(d))
                .into_iter()
                .flatten()
        })
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    String::from_utf8_lossy(&std::fs::read(files.last().unwrap()).unwrap()).into_owned()
}

/// Runs tests/py/dkim_sign.py with Debian's python3 (where python3-dkim is).
fn dkim_py(args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/dkim_sign.py");
    let out = std::process::Command::new("/usr/bin/python3")
        .arg(script)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn keys() -> Option<(String, String)> {
    let probe = std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import dkim, nacl"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        return None;
    }
    let out = dkim_py(&["keygen"]);
    let mut it = out.split_whitespace();
    Some((it.next()?.to_string(), it.next()?.to_string()))
}

fn sign(dir: &std::path::Path, msg: &str, private: &str) -> String {
    let path = dir.join("to-sign.eml");
    std::fs::write(&path, msg).unwrap();
    dkim_py(&[
        "sign",
        path.to_str().unwrap(),
        "signed.test",
        "sel",
        private,
    ])
}

/// A server asking the DNS server on `dns_port`, with loopback not trusted: the test client
/// (127.0.0.1) stands for a server on the Internet.
fn start(dns_port: u16) -> TestServer {
    let s = start_trusting_loopback(dns_port);
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"relay": {"trusted_networks": []}})),
    );
    s
}

/// A server asking the DNS server on `dns_port`, with the default trusted networks.
fn start_trusting_loopback(dns_port: u16) -> TestServer {
    let s = TestServer::start_with(&format!("[dns]\nresolvers = [\"127.0.0.1:{dns_port}\"]\n"));
    s.setup_basic();
    spam_settings(&s, json!({"greylist": {"enabled": false}}));
    s
}

#[test]
fn spf_dkim_dmarc_iprev_and_helo_decide_and_are_recorded() {
    let Some((private, public)) = keys() else {
        eprintln!("python3-dkim/python3-nacl not installed: skipped");
        return;
    };
    let dkim_key =
        format!("--txt-record=sel._domainkey.signed.test,v=DKIM1; k=ed25519; p={public}");
    let Some((_dns, port)) = dns(&[
        "--host-record=client.test,127.0.0.1",
        "--txt-record=good.test,v=spf1 ip4:127.0.0.1 -all",
        "--txt-record=_dmarc.good.test,v=DMARC1; p=reject",
        "--txt-record=spoof.test,v=spf1 ip4:192.0.2.1 -all",
        "--txt-record=_dmarc.spoof.test,v=DMARC1; p=reject",
        "--txt-record=quar.test,v=spf1 -all",
        "--txt-record=_dmarc.quar.test,v=DMARC1; p=quarantine",
        "--txt-record=_dmarc.signed.test,v=DMARC1; p=reject",
        &dkim_key,
    ]) else {
        return;
    };
    let s = start(port);

    // Aligned SPF: delivered, with our results on top and a forged field of ours removed.
    let forged = "Authentication-Results: mx.example.test; dkim=pass header.d=forged.test\r\n\
                  Authentication-Results: other.test; spf=pass smtp.mailfrom=x@other.test\r\n";
    let body = mail("bob@good.test", "good", forged, "Hello.");
    let (code, text) = send_as(&s, "client.test", "bob@good.test", &body);
    assert_eq!(code, 250, "{text}");
    let m = newest(&s, "users/alice", 1);
    let ar_start = m
        .find("Authentication-Results: mx.example.test;")
        .expect(&m);
    let ar = field_at(&m, ar_start);
    for want in [
        "spf=pass",
        "smtp.mailfrom=bob@good.test",
        "dmarc=pass",
        "header.from=good.test",
        "iprev=pass",
    ] {
        assert!(ar.contains(want), "{want} missing from:\n{m}");
    }
    assert!(
        !m.contains("forged.test"),
        "a forged field of ours is removed:\n{m}"
    );
    assert!(
        m.contains("Authentication-Results: other.test; spf=pass"),
        "{m}"
    );
    assert!(m.find("Received: from client.test").unwrap() < ar_start);
    let log = s.wait_log("checks: spf=pass (good.test)");
    assert!(log.contains("dmarc=pass (good.test p=reject)"), "{log}");
    assert!(log.contains("iprev=pass ("), "{log}");

    // SPF fails and the From: domain publishes p=reject: refused.
    let body = mail("ceo@spoof.test", "spoof", "", "Wire the money.");
    let (code, text) = send_as(&s, "client.test", "ceo@spoof.test", &body);
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("5.7.1") && text.contains("DMARC") && text.contains("spoof.test"),
        "{text}"
    );
    let log = s.wait_log("checks: spf=fail (spoof.test)");
    assert!(log.contains("dmarc=fail (spoof.test p=reject)"), "{log}");

    // With the policy not enforced, the same message is only scored.
    spam_settings(&s, json!({"dmarc_enforce": false}));
    let (code, text) = send_as(&s, "client.test", "ceo@spoof.test", &body);
    assert_eq!(code, 250, "{text}");
    let log = s.wait_log("DMARC_POLICY_REJECT(2.00)[spoof.test]");
    assert!(log.contains("R_SPF_FAIL(1.00)[spoof.test]"), "{log}");
    spam_settings(&s, json!({"dmarc_enforce": true}));

    // p=quarantine: filed as spam.
    let body = mail("news@quar.test", "quar", "", "Newsletter.");
    let (code, text) = send_as(&s, "client.test", "news@quar.test", &body);
    assert_eq!(code, 250, "{text}");
    let junk = newest(&s, "users/alice/.Junk", 1);
    assert!(junk.contains("X-Spam: Yes\r\n"), "{junk}");
    assert!(junk.contains("DMARC_POLICY_QUARANTINE(1.50)"), "{junk}");

    // A valid DKIM signature aligns DMARC without SPF; a changed body breaks it.
    let signed = sign(
        s.dir.path(),
        &mail("info@signed.test", "signed", "", "Signed body."),
        &private,
    );
    let (code, text) = send_as(&s, "client.test", "bounce@elsewhere.test", &signed);
    assert_eq!(code, 250, "{text}");
    let m = newest(&s, "users/alice", 3);
    assert!(
        m.contains("dkim=pass header.i=@signed.test header.s=sel"),
        "{m}"
    );
    assert!(m.contains("dmarc=pass header.from=signed.test"), "{m}");
    s.wait_log("dkim=pass (signed.test)");
    let tampered = signed.replace("Signed body.", "Signed body, changed.");
    let (code, text) = send_as(&s, "client.test", "bounce@elsewhere.test", &tampered);
    assert_eq!(code, 550, "a broken signature fails DMARC: {text}");
    s.wait_log("dkim=fail (signed.test)");

    // A HELO name that does not resolve is scored.
    let body = mail("bob@good.test", "helo", "", "Hello again.");
    let (code, text) = send_as(&s, "nowhere.test", "bob@good.test", &body);
    assert_eq!(code, 250, "{text}");
    s.wait_log("HFILTER_HELO_NORES_A_OR_MX(0.30)");
    let metrics = ureq::get(&format!("http://127.0.0.1:{}/metrics", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    for want in [
        "postcore_auth_results_total{method=\"spf\",result=\"fail\"} 3",
        "postcore_auth_results_total{method=\"dkim\",result=\"pass\"} 1",
        "postcore_auth_results_total{method=\"dmarc\",result=\"fail\"} 4",
    ] {
        assert!(metrics.contains(want), "{want} missing:\n{metrics}");
    }
}

/// The header field starting at `at`, with its continuation lines.
fn field_at(m: &str, at: usize) -> &str {
    let rest = &m[at..];
    let mut end = 0;
    for line in rest.split_inclusive("\r\n") {
        if end > 0 && !line.starts_with([' ', '\t']) {
            break;
        }
        end += line.len();
    }
    &rest[..end]
}

#[test]
fn listed_client_and_link_domains_score_by_return_code() {
    let Some((_dns, port)) = dns(&[
        "--host-record=client.test,127.0.0.1",
        "--address=/1.0.0.127.zen.test/127.0.0.2",
        "--address=/evil.test.dbl.test/127.0.1.2",
    ]) else {
        return;
    };
    let s = start(port);
    spam_settings(
        &s,
        json!({"dnsbl": [{"zone": "zen.test", "symbol": "RBL_ZEN", "score": 20.0}]}),
    );
    let body = mail("bob@good.test", "listed", "", "Hello.");
    let (code, text) = send_as(&s, "client.test", "bob@good.test", &body);
    assert_eq!(code, 554, "a listed client over the deny threshold: {text}");
    s.wait_log("listed=zen.test:127.0.0.1:127.0.0.2");

    // A score per return code: the code given scores, and only the codes listed count.
    spam_settings(
        &s,
        json!({
            "dnsbl": [{"zone": "zen.test", "symbol": "RBL_ZEN", "codes": {"127.0.0.2": 3.5, "127.0.0.4": 9.0}}],
            "uribl": [{"zone": "dbl.test", "symbol": "URIBL_DBL", "score": 4.0}],
        }),
    );
    let body = mail(
        "bob@good.test",
        "links",
        "Content-Type: text/html\r\n",
        "<p>See <a href=\"https://www.evil.test/offer\">this</a> and http://fine.test/x</p>",
    );
    let (code, text) = send_as(&s, "client.test", "bob@good.test", &body);
    assert_eq!(code, 250, "{text}");
    let junk = newest(&s, "users/alice/.Junk", 1);
    assert!(
        junk.contains("RBL_ZEN(3.50)[127.0.0.1:127.0.0.2]"),
        "{junk}"
    );
    assert!(
        junk.contains("URIBL_DBL(4.00)[evil.test:127.0.1.2]"),
        "{junk}"
    );
    assert!(!junk.contains("fine.test:"), "{junk}");

    // A list entry that is not a domain name is refused by the settings API.
    let (status, _) = s.api(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"dnsbl": [{"zone": "bad zone", "symbol": "X"}]}}})),
    );
    assert_eq!(status, 400);
}

#[test]
fn a_dns_server_that_never_answers_costs_at_most_the_budget() {
    // A UDP socket that is never read: every query goes unanswered.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let s = start(port);
    spam_settings(
        &s,
        json!({"dns_budget_ms": 400, "dnsbl": [{"zone": "zen.test", "symbol": "RBL_ZEN"}]}),
    );
    let body = mail("bob@good.test", "silent", "", "Hello.");
    let started = Instant::now();
    let (code, text) = send_as(&s, "client.test", "bob@good.test", &body);
    let took = started.elapsed();
    assert_eq!(code, 250, "{text}");
    let log = s.wait_log("timed_out=[");
    let line = log.lines().find(|l| l.contains("timed_out=[")).unwrap();
    for check in ["spf", "iprev", "helo", "zen.test 127.0.0.1"] {
        assert!(line.contains(check), "{check} should be cut off: {line}");
    }
    // The resolver's own timeout is 5 s: the message did not wait for it.
    assert!(took < Duration::from_secs(4), "took {took:?}");
    assert_eq!(s.wait_messages("users/alice", 1).len(), 1);
    drop(silent);
}

#[test]
fn a_client_in_the_trusted_networks_gets_only_the_content_checks() {
    let Some((private, public)) = keys() else {
        eprintln!("python3-dkim/python3-nacl not installed: skipped");
        return;
    };
    let dkim_key =
        format!("--txt-record=sel._domainkey.signed.test,v=DKIM1; k=ed25519; p={public}");
    let Some((_dns, port)) = dns(&[
        "--txt-record=spoof.test,v=spf1 ip4:192.0.2.1 -all",
        "--txt-record=_dmarc.spoof.test,v=DMARC1; p=reject",
        "--address=/1.0.0.127.zen.test/127.0.0.2",
        "--address=/evil.test.dbl.test/127.0.1.2",
        &dkim_key,
    ]) else {
        return;
    };
    // 127.0.0.1 is in the default trusted networks (as in SpamAssassin and Rspamd).
    let s = start_trusting_loopback(port);
    spam_settings(
        &s,
        json!({
            "dnsbl": [{"zone": "zen.test", "symbol": "RBL_ZEN", "score": 20.0}],
            "uribl": [{"zone": "dbl.test", "symbol": "URIBL_DBL", "score": 4.0}],
        }),
    );
    // SPF would fail and DMARC reject, the HELO does not resolve and the client is listed:
    // none of that is asked for a trusted client, so the message is delivered unscored by it.
    let body = mail(
        "ceo@spoof.test",
        "inside",
        "Content-Type: text/html\r\n",
        "<p>See <a href=\"https://www.evil.test/offer\">this</a></p>",
    );
    let (code, text) = send_as(&s, "nowhere.test", "ceo@spoof.test", &body);
    assert_eq!(code, 250, "{text}");
    let log = s.wait_log("checks: client=trusted");
    let line = log
        .lines()
        .find(|l| l.contains("checks: client=trusted"))
        .unwrap();
    for absent in ["spf=", "dmarc=", "iprev=", "helo=", "zen.test"] {
        assert!(!line.contains(absent), "{absent} asked: {line}");
    }
    // The content's checks still run: the link's domain is looked up and scores.
    assert!(
        line.contains("listed=dbl.test:evil.test:127.0.1.2"),
        "{line}"
    );
    let m = newest(&s, "users/alice", 1);
    assert!(!m.contains("HFILTER_HELO_NORES"), "{m}");
    assert!(!m.contains("spf="), "{m}");

    // A DKIM signature is still verified.
    let signed = sign(
        s.dir.path(),
        &mail("info@signed.test", "signed", "", "Signed body."),
        &private,
    );
    let (code, text) = send_as(&s, "client.test", "bounce@elsewhere.test", &signed);
    assert_eq!(code, 250, "{text}");
    s.wait_log("client=trusted dkim=pass (signed.test)");

    // Out of the trusted networks, the same client is checked again: SPF fails, DMARC rejects.
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"relay": {"trusted_networks": ["10.0.0.0/8"]}})),
    );
    let body = mail("ceo@spoof.test", "outside", "", "Wire the money.");
    let (code, text) = send_as(&s, "client.test", "ceo@spoof.test", &body);
    assert!(
        code == 550 || code == 554,
        "refused (DMARC, the listing): {text}"
    );
    s.wait_log("checks: spf=fail (spoof.test)");
}
