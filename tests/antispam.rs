//! The antispam check over real SMTP sessions: GTUBE refused at the deny threshold, a rule
//! file from the configuration flagging a message (`X-Spam: Yes`, score and symbols headers,
//! subject prefix, filed into Junk), a sender's own `X-Spam` headers stripped, thresholds
//! changed at run time, and `postcore filter check` on message files.

mod common;
use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const GTUBE: &str = "XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X";

fn message(subject: &str, body: &str, extra: &str) -> String {
    format!(
        "From: s@remote.test\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\
         Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{}@remote.test>\r\n{extra}\r\n{body}\r\n",
        subject.len()
    )
}

fn send(s: &TestServer, body: &str) -> (u16, String) {
    s.smtp()
        .send_mail("s@remote.test", &["alice@example.test"], body)
}

/// A rule file in SpamAssassin's syntax, one rule per type the issue names.
const RULES: &str = r#"
header   TEST_SUBJ_WIN   Subject =~ /\byou have won\b/i
body     TEST_BODY_PRIZE /claim your prize/i
rawbody  TEST_RAW_FONT   /<font\s+size="?7/i
uri      TEST_URI_RU     m{^https?://[^/]*\.example\.ru\b}i
meta     TEST_META_BOTH  TEST_SUBJ_WIN && TEST_BODY_PRIZE
score    TEST_SUBJ_WIN   2.0
score    TEST_BODY_PRIZE 2.0
score    TEST_RAW_FONT   0.5
score    TEST_URI_RU     0.5
score    TEST_META_BOTH  3.0
"#;

fn start_with_rules() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("local.cf");
    std::fs::write(&rules, RULES).unwrap();
    let s = TestServer::start_with(&format!(
        "[scanner]\nspam_rules = [\"{}\"]\n",
        rules.display()
    ));
    s.setup_basic();
    // The rules compile on a thread of their own; wait for the load line.
    let log = s.wait_log("antispam: rules loaded");
    assert!(log.contains("antispam: rules loaded"), "{log}");
    (s, dir)
}

#[test]
fn gtube_is_refused_at_the_deny_threshold_and_logged() {
    let s = TestServer::start();
    s.setup_basic();
    let (code, text) = send(&s, &message("test", GTUBE, ""));
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("5.7.1") && text.contains("spam"), "{text}");
    let log = s.wait_log("antispam: (reject)");
    assert!(log.contains("antispam: (reject) [1000."), "{log}");
    assert!(log.contains("GTUBE(1000.00)"), "{log}");
    assert!(s.messages("users/alice").is_empty());
    // A plain message passes untouched.
    let (code, _) = send(&s, &message("lunch", "at noon?", ""));
    assert_eq!(code, 250);
    let got = s.wait_messages("users/alice", 1);
    assert_eq!(got.len(), 1);
    assert!(!String::from_utf8_lossy(&got[0]).contains("X-Spam"));
}

#[test]
fn rules_from_the_configuration_flag_and_file_into_junk() {
    let (s, _rules) = start_with_rules();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"subject_prefix": "[SPAM]", "greylist": {"enabled": false}}}})),
    );
    // A sender cannot pre-flag its own mail: its X-Spam headers go.
    let body = message(
        "You have won",
        "<html><font size=7>Claim your prize</font> at <a href=\"http://win.example.ru/x\">here</a></html>",
        "X-Spam: No\r\nX-Spam-Score: -100\r\nContent-Type: text/html\r\n",
    );
    let (code, text) = send(&s, &body);
    assert_eq!(code, 250, "{text}");
    let junk = s.wait_messages("users/alice/.Junk", 1);
    assert_eq!(junk.len(), 1, "flagged mail is filed into Junk");
    let m = String::from_utf8_lossy(&junk[0]).into_owned();
    assert!(m.contains("X-Spam: Yes\r\n"), "{m}");
    assert!(!m.contains("X-Spam: No"), "{m}");
    assert!(!m.contains("-100"), "{m}");
    assert!(m.contains("X-Spam-Score: 8.70 / 6.00"), "{m}");
    for sym in [
        "TEST_SUBJ_WIN(2.00)",
        "TEST_BODY_PRIZE(2.00)",
        "TEST_META_BOTH(3.00)",
        "TEST_RAW_FONT(0.50)",
        "TEST_URI_RU(0.50)",
    ] {
        assert!(m.contains(sym), "{sym} in {m}");
    }
    assert!(m.contains("Subject: [SPAM] You have won"), "{m}");
    assert!(s.messages("users/alice").is_empty(), "nothing in INBOX");
    let log = s.wait_log("antispam: (add header)");
    assert!(log.contains("antispam: (add header) [8.70/6.00]"), "{log}");
    // Rules and statistics through the API and the CLI.
    let st = s.api_ok("GET", "/spam/status", None);
    assert_eq!(st["rules"]["last_load"], "ok", "{st}");
    assert_eq!(st["rules"]["report"]["loaded"]["uri"], 1, "{st}");
    assert!(
        st["rules"]["report"]["hyperscan"].as_u64().unwrap() >= 4,
        "{st}"
    );
    assert_eq!(st["stats"]["actions"]["add header"], 1, "{st}");
    assert_eq!(st["stats"]["symbols"]["TEST_META_BOTH"], 1, "{st}");
    let (ok, out, err) = s.cli(&["spam", "status"], None);
    assert!(ok, "{err}");
    assert!(out.contains("TEST_META_BOTH"), "{out}");

    // Thresholds are settings: with the flag threshold raised the same mail is kept in
    // INBOX without the headers; with deny lowered it is refused.
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"flag_score": 9.0}}})),
    );
    let (code, _) = send(&s, &body);
    assert_eq!(code, 250);
    let inbox = s.wait_messages("users/alice", 1);
    assert_eq!(inbox.len(), 1);
    assert!(!String::from_utf8_lossy(&inbox[0]).contains("X-Spam"));
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"deny_score": 7.5}}})),
    );
    let (code, text) = send(&s, &body);
    assert_eq!(code, 554, "{text}");
}

#[test]
fn filter_check_prints_the_verdict_of_message_files() {
    let dir = tempfile::tempdir().unwrap();
    let gtube = dir.path().join("gtube.eml");
    std::fs::write(&gtube, message("test", GTUBE, "")).unwrap();
    let ham = dir.path().join("ham.eml");
    std::fs::write(&ham, message("lunch", "at noon?", "")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["filter", "check", "--json"])
        .arg(&gtube)
        .arg(&ham)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "exit 1 when a message is spam");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let g = lines
        .iter()
        .find(|v| v["file"].as_str().unwrap().ends_with("gtube.eml"))
        .unwrap();
    assert_eq!(g["action"], "reject");
    assert_eq!(g["spam"], true);
    assert_eq!(g["symbols"][0]["name"], "GTUBE");
    let h = lines
        .iter()
        .find(|v| v["file"].as_str().unwrap().ends_with("ham.eml"))
        .unwrap();
    assert_eq!(h["action"], "no action");
    assert_eq!(h["spam"], false);
    // Text form, as rspamc prints it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["filter", "check"])
        .arg(&gtube)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Action: reject\n"), "{text}");
    assert!(text.contains("Score: 1000.00 / 6.00"), "{text}");
    assert!(text.contains("Symbol: GTUBE (1000.00)"), "{text}");
}

const EICAR: &str = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

#[test]
fn allow_and_block_lists_act_before_the_checks() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {
            "discard_infected": false,
            "allow_from": ["partner.test"],
            "allow_to": ["carol@example.test"],
            "block_from": ["spammer.test", "partner.test"],
        }})),
    );
    // Block From matches a subdomain, by envelope sender or by From: address.
    let (code, text) = s.smtp().send_mail(
        "x@mx.spammer.test",
        &["alice@example.test"],
        &message("hello", "plain text", ""),
    );
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("sender blocked"), "{text}");
    let from_header =
        message("hello", "plain text", "").replace("From: s@remote.test", "From: <x@spammer.test>");
    let (code, _) = s
        .smtp()
        .send_mail("bounce@bulk.test", &["alice@example.test"], &from_header);
    assert_eq!(code, 554);
    let log = s.wait_log("blocked sender: block_from spammer.test");
    assert!(
        log.contains("blocked sender: block_from spammer.test"),
        "{log}"
    );

    // Allow From wins over Block From and skips the antivirus and the antispam.
    let (code, text) = s.smtp().send_mail(
        "billing@partner.test",
        &["alice@example.test"],
        &message("invoice", &format!("{EICAR}\r\n{GTUBE}"), ""),
    );
    assert_eq!(code, 250, "{text}");
    let got = s.wait_messages("users/alice", 1);
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0]).contains("EICAR-STANDARD"));
    let log = s.wait_log("allowed: allow_from partner.test");
    assert!(log.contains("allowed: allow_from partner.test"), "{log}");

    // Allow To: carol's copy is delivered unchecked; bob's copy of the same spam is not.
    let (code, text) = s.smtp().send_mail(
        "s@remote.test",
        &["bob@example.test", "carol@example.test"],
        &message("test", GTUBE, ""),
    );
    assert_eq!(code, 250, "{text}");
    let carol = s.wait_messages("users/carol", 1);
    assert_eq!(carol.len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(s.messages("users/bob").is_empty());
    // Only carol as recipient: nothing is checked at all.
    let (code, _) = s.smtp().send_mail(
        "s@remote.test",
        &["carol@example.test"],
        &message("virus", EICAR, ""),
    );
    assert_eq!(code, 250);
    assert_eq!(s.wait_messages("users/carol", 2).len(), 2);
    // A bad entry is refused by the API.
    let (status, _) = s.api(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"block_from": ["a b"]}})),
    );
    assert_eq!(status, 400);
}

#[test]
fn greylisting_defers_a_first_attempt_and_passes_the_retry() {
    let (s, rules) = start_with_rules();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"greylist": {"delay_secs": 2}}}})),
    );
    // A rule added to the file is used after `spam reload`.
    let file = rules.path().join("local.cf");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("body TEST_NEW_RULE /brand new phrase/\nscore TEST_NEW_RULE 0.25\n");
    std::fs::write(&file, text).unwrap();
    let (ok, out, err) = s.cli(&["spam", "reload"], None);
    assert!(ok, "{err}");
    assert!(
        out.contains("\"last_load\": \"ok\"") || out.contains("\"last_load\":\"ok\""),
        "{out}"
    );
    let (code, _) = send(&s, &message("hello", "a brand new phrase", ""));
    assert_eq!(code, 250);
    let log = s.wait_log("TEST_NEW_RULE(0.25)");
    assert!(log.contains("TEST_NEW_RULE(0.25)"), "{log}");
    assert_eq!(s.wait_messages("users/alice", 1).len(), 1);
    // The subject and body rules and their meta give 7: with the flag threshold moved out
    // of the way, only greylisting acts on it.
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"flag_score": 100.0}}})),
    );
    let body = message("You have won", "claim your prize", "");
    let (code, text) = send(&s, &body);
    assert_eq!(code, 451, "{text}");
    assert!(
        text.contains("4.7.1") && text.contains("Greylisted"),
        "{text}"
    );
    let (code, _) = send(&s, &body);
    assert_eq!(code, 451, "a retry before the delay is deferred too");
    std::thread::sleep(Duration::from_millis(2_200));
    let (code, text) = send(&s, &body);
    assert_eq!(code, 250, "{text}");
    // The triplet now passes at once.
    let (code, _) = send(&s, &body);
    assert_eq!(code, 250);
    assert_eq!(s.wait_messages("users/alice", 3).len(), 3);
    // Another recipient is another triplet; ham is never greylisted.
    let (code, _) = s
        .smtp()
        .send_mail("s@remote.test", &["bob@example.test"], &body);
    assert_eq!(code, 451);
    let (code, _) = s.smtp().send_mail(
        "s@remote.test",
        &["bob@example.test"],
        &message("lunch", "at noon?", ""),
    );
    assert_eq!(code, 250);
    let log = s.wait_log("greylist: passed");
    assert!(log.contains("greylist: deferred 2 s"), "{log}");
    assert!(log.contains("greylist: passed"), "{log}");
}

#[test]
fn quarantine_mode_delivers_denied_mail_to_the_quarantine_mailbox() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"quarantine_to": "carol@example.test"}}})),
    );
    let (code, text) = send(&s, &message("test", GTUBE, ""));
    assert_eq!(code, 250, "accepted instead of refused: {text}");
    let q = s.wait_messages("users/carol", 1);
    assert_eq!(q.len(), 1);
    let m = String::from_utf8_lossy(&q[0]).into_owned();
    assert!(
        m.contains("X-Spam: Yes") && m.contains("GTUBE(1000.00)"),
        "{m}"
    );
    assert!(s.messages("users/alice").is_empty());
    // Mail to the quarantine mailbox itself is not judged (a release does not loop).
    let (code, _) = s.smtp().send_mail(
        "s@remote.test",
        &["carol@example.test"],
        &message("test", GTUBE, ""),
    );
    assert_eq!(code, 250);
    let q = s.wait_messages("users/carol", 2);
    assert_eq!(q.len(), 2);
    assert!(
        q.iter()
            .any(|m| !String::from_utf8_lossy(m).contains("X-Spam"))
    );
    let (status, _) = s.api(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"quarantine_to": "not an address"}}})),
    );
    assert_eq!(status, 400);
}

/// Sends `body` as alice through the submission port with STARTTLS and AUTH, by swaks.
fn submit_as_alice(s: &TestServer, body: &str) -> String {
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            &format!("127.0.0.1:{}", s.submission),
            "--tls",
            "--auth",
            "PLAIN",
            "--auth-user",
            "alice",
            "--auth-password",
            "alice-pw",
            "--from",
            "alice@example.test",
            "--to",
            "bob@example.test",
            "--header",
            "Subject: test",
            "--body",
            body,
        ])
        .output()
        .expect("swaks (scripts/deps.sh test installs it)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn authenticated_mail_is_judged_and_logged_but_not_acted_on() {
    let s = TestServer::start();
    s.setup_basic();
    let text = submit_as_alice(&s, GTUBE);
    assert!(text.contains("250 2.0.0"), "{text}");
    assert_eq!(s.wait_messages("users/bob", 1).len(), 1);
    let log = s.wait_log("not acted on: authenticated");
    assert!(
        log.contains("antispam: (reject, not acted on: authenticated) [1000."),
        "{log}"
    );
    // The administrator may have it acted on (a compromised account then cannot send spam).
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"act_on_authenticated": true}}})),
    );
    let text = submit_as_alice(&s, GTUBE);
    assert!(text.contains("554 5.7.1"), "{text}");
}

#[test]
fn move_to_junk_follows_each_users_choice_then_the_global_setting() {
    let (s, _rules) = start_with_rules();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"greylist": {"enabled": false}}}})),
    );
    // alice opts out; bob follows the global setting (on); with the global setting off,
    // carol opts in.
    let (ok, _, err) = s.cli(&["user", "set", "alice", "--spam-to-junk", "off"], None);
    assert!(ok, "{err}");
    s.api_ok("PATCH", "/users/carol", Some(json!({"spam_to_junk": true})));
    let spam = message("You have won", "claim your prize", "");
    let rcpts = ["alice@example.test", "bob@example.test"];
    let (code, _) = s.smtp().send_mail("s@remote.test", &rcpts, &spam);
    assert_eq!(code, 250);
    let inbox = s.wait_messages("users/alice", 1);
    assert!(String::from_utf8_lossy(&inbox[0]).contains("X-Spam: Yes"));
    assert!(s.messages("users/alice/.Junk").is_empty());
    assert_eq!(s.wait_messages("users/bob/.Junk", 1).len(), 1);
    assert!(s.messages("users/bob").is_empty());
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"move_to_junk": false}}})),
    );
    let rcpts = ["bob@example.test", "carol@example.test"];
    let (code, _) = s.smtp().send_mail("s@remote.test", &rcpts, &spam);
    assert_eq!(code, 250);
    assert_eq!(s.wait_messages("users/carol/.Junk", 1).len(), 1);
    assert_eq!(s.wait_messages("users/bob", 1).len(), 1, "bob: INBOX now");
    let u = s.api_ok("GET", "/users/alice", None);
    assert_eq!(u["spam_to_junk"], false, "{u}");
}

/// The quarantine as an administrator works it: held mail sealed with its envelope, a notice
/// to the postmaster, listing, release to the original recipients (spam fields off, the other
/// recipients not revealed), deletion — by the CLI and the API — and a message someone put
/// into the quarantine mailbox with a forged seal, which is listed but never released.
#[test]
fn quarantine_lists_releases_and_deletes_and_tells_the_postmaster() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "POST",
        "/users",
        Some(json!({"login": "postmaster", "password": "pm-pw"})),
    );
    s.api_ok(
        "POST",
        "/groups",
        Some(json!({"name": "admins", "members": ["carol"]})),
    );
    s.api_ok(
        "POST",
        "/public",
        Some(json!({"name": "spam", "owners": ["admins"]})),
    );
    s.api_ok(
        "POST",
        "/addresses",
        Some(json!({"local": "spam", "domain": "example.test", "destinations": ["public:spam"]})),
    );
    // Off: no listing.
    assert_eq!(s.api("GET", "/quarantine", None).0, 409);
    s.api_ok(
        "PATCH",
        "/settings",
        Some(
            json!({"filter": {"spam": {"quarantine_to": "spam@example.test",
                                        "quarantine_notice": true,
                                        "subject_prefix": "[SPAM]"}}}),
        ),
    );
    let (code, text) = s.smtp().send_mail(
        "s@remote.test",
        &["alice@example.test", "bob@example.test"],
        &message("cheap pills", GTUBE, ""),
    );
    assert_eq!(code, 250, "{text}");
    let qid = common::qid(&text);
    // One sealed copy in the quarantine mailbox, nothing for the recipients.
    let held = s.wait_messages("public/spam", 1);
    assert_eq!(held.len(), 1);
    let m = String::from_utf8_lossy(&held[0]).into_owned();
    assert!(m.starts_with("X-Postcore-Quarantine: qid="), "{m}");
    assert!(m.contains(&qid) && m.contains("<alice@example.test>,") && m.contains("mac="));
    assert!(m.contains("Subject: [SPAM] cheap pills"), "{m}");
    assert!(s.messages("users/alice").is_empty() && s.messages("users/bob").is_empty());
    // The postmaster's notice names the message and how to release it.
    let notice = String::from_utf8_lossy(&s.wait_messages("users/postmaster", 1)[0]).into_owned();
    assert!(
        notice.contains("Subject: Quarantined: [SPAM] cheap pills"),
        "{notice}"
    );
    assert!(
        notice.contains("Auto-Submitted: auto-generated"),
        "{notice}"
    );
    assert!(
        notice.contains(&format!("postcore admin quarantine release {qid}"))
            && notice.contains("<alice@example.test>, <bob@example.test>")
            && notice.contains("GTUBE(1000.00)"),
        "{notice}"
    );
    s.wait_log("quarantine notice to <postmaster@example.test> queued");

    // A message with a forged seal, sent to the quarantine address (mail to it is not judged).
    let forged = format!(
        "X-Postcore-Quarantine: qid={qid}; score=0.00; from=<x@remote.test>;\r\n \
         to=<victim@elsewhere.test>; mac=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n{}",
        message("forged", "hello", "")
    );
    let (code, _) = s
        .smtp()
        .send_mail("x@remote.test", &["spam@example.test"], &forged);
    assert_eq!(code, 250);
    s.wait_messages("public/spam", 2);

    // The listing (CLI): ours verified with its envelope; the forged one not.
    let (ok, out, err) = s.cli(&["quarantine", "list"], None);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["mailbox"], "spam@example.test");
    let msgs = list["messages"].as_array().unwrap();
    assert_eq!(msgs.len(), 2, "{list}");
    let ours = msgs.iter().find(|m| m["verified"] == true).unwrap();
    assert_eq!(ours["id"], qid.as_str());
    assert_eq!(ours["envelope_from"], "s@remote.test");
    assert_eq!(
        ours["recipients"],
        json!(["alice@example.test", "bob@example.test"])
    );
    assert_eq!(ours["subject"], "[SPAM] cheap pills");
    assert!(ours["score"].as_f64().unwrap() >= 1000.0);
    let fake = msgs.iter().find(|m| m["verified"] == false).unwrap();
    let fake_id = fake["id"].as_str().unwrap().to_string();
    assert!(fake_id.starts_with("uid"), "{fake}");
    assert_eq!(fake["recipients"], Value::Null);
    // The forged one is never released; it can be deleted.
    let (status, body) = s.api(
        "POST",
        &format!("/quarantine/{fake_id}/release"),
        Some(json!({})),
    );
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        s.api("POST", "/quarantine/NOSUCHID/release", Some(json!({})))
            .0,
        404
    );
    s.api_ok("DELETE", &format!("/quarantine/{fake_id}"), None);
    assert_eq!(s.messages("public/spam").len(), 1);

    // Release (CLI): each recipient gets the message, without our fields and prefix.
    let (ok, out, err) = s.cli(&["quarantine", "release", &qid], None);
    assert!(ok, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["released"], qid.as_str());
    assert_eq!(r["skipped"], json!([]));
    for user in ["users/alice", "users/bob"] {
        let got = s.wait_messages(user, 1);
        let m = String::from_utf8_lossy(&got[0]).into_owned();
        assert!(
            !m.contains("X-Postcore-Quarantine") && !m.contains("X-Spam"),
            "{m}"
        );
        assert!(
            !m.contains("bob@example.test>,") && m.contains("Subject: cheap pills"),
            "{m}"
        );
        assert!(m.contains(GTUBE));
    }
    assert!(s.messages("public/spam").is_empty());
    assert_eq!(s.api_ok("GET", "/quarantine", None)["messages"], json!([]));
    s.wait_log("released from quarantine");

    // GTUBE for carol, held in the (empty) quarantine mailbox; its queue id.
    let hold = |subject: &str| {
        let to = ["carol@example.test"];
        let (code, text) = s
            .smtp()
            .send_mail("s@remote.test", &to, &message(subject, GTUBE, ""));
        assert_eq!(code, 250, "{text}");
        s.wait_messages("public/spam", 1);
        common::qid(&text)
    };
    // Delete (API) of a second held message.
    let qid2 = hold("more");
    let (ok, _, err) = s.cli(&["quarantine", "delete", &qid2], None);
    assert!(ok, "{err}");
    assert!(s.messages("public/spam").is_empty());
    assert!(s.messages("users/carol").is_empty());
    assert_eq!(s.api("DELETE", &format!("/quarantine/{qid2}"), None).0, 404);

    // Two releases of one message at once (a double click): one delivers, the other finds
    // nothing; the recipient has one copy.
    let qid3 = hold("twice");
    let path = format!("/quarantine/{qid3}/release");
    let codes: Vec<u16> = std::thread::scope(|sc| {
        let a = sc.spawn(|| s.api("POST", &path, Some(json!({}))).0);
        let b = sc.spawn(|| s.api("POST", &path, Some(json!({}))).0);
        vec![a.join().unwrap(), b.join().unwrap()]
    });
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, [200, 404], "{codes:?}");
    assert_eq!(s.wait_messages("users/carol", 1).len(), 1);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.messages("users/carol").len(), 1);
}
