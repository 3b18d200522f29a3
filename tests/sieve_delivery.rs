//! Sieve at delivery through the real server: scripts uploaded with the CLI and the admin API,
//! mail over SMTP, the results read from the Maildirs (issue 17).

mod common;

use common::TestServer;
use serde_json::json;
use std::path::Path;

fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for sub in ["new", "cur"] {
        if let Ok(rd) = std::fs::read_dir(dir.join(sub)) {
            for e in rd.flatten() {
                out.push((
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    out
}

/// Uploads `src` as `owner`'s script `name` over the admin API and makes it active.
fn activate_script(s: &TestServer, owner: &str, name: &str, src: &str) {
    let url = format!("http://127.0.0.1:{}/api/sieve/{owner}/{name}", s.admin);
    ureq::put(&url)
        .set("Authorization", &format!("Bearer {}", s.token()))
        .send_string(src)
        .unwrap_or_else(|e| panic!("upload {owner}/{name}: {e}"));
    s.api_ok("POST", &format!("/sieve/{owner}/{name}/activate"), None);
}

/// The messages in the Maildir folder `dir`, once there is at least one (or after 10 s).
fn wait_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while files_in(dir).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    files_in(dir)
}

fn has_subject(msgs: &[Vec<u8>], subject: &str) -> bool {
    msgs.iter()
        .any(|m| String::from_utf8_lossy(m).contains(&format!("Subject: {subject}\r\n")))
}

fn mail(from: &str, subject: &str, extra: &str) -> String {
    format!(
        "From: {from}\r\nTo: alice@example.test, bob@example.test\r\nSubject: {subject}\r\nMessage-ID: <{}@remote.test>\r\n{extra}\r\nBody of {subject}.\r\n",
        subject.replace(' ', ".")
    )
}

const RULES: &str = r#"require ["fileinto", "imap4flags", "reject", "editheader", "copy", "mailbox"];
if header :contains "subject" "[work]" { addflag "\\Flagged"; fileinto :create "Work"; stop; }
if header :contains "subject" "drop me" { discard; stop; }
if header :contains "subject" "forward me" { redirect "bob@example.test"; stop; }
if header :contains "subject" "copy me" { redirect :copy "bob@example.test"; }
if header :contains "subject" "go away" { reject "Not interested."; stop; }
if header :contains "subject" "tag me" { addheader "X-Sieved" "yes"; }
if header :contains "subject" "missing folder" { fileinto "Nope"; }
"#;

#[test]
fn scripts_act_at_delivery() {
    let s = TestServer::start();
    s.setup_basic();
    let (ok, out, err) = s.cli(&["sieve", "put", "alice", "rules", "-"], Some(RULES));
    assert!(ok, "{out}{err}");
    let (ok, out, err) = s.cli(&["sieve", "activate", "alice", "rules"], None);
    assert!(ok, "{out}{err}");
    let (ok, out, _) = s.cli(&["sieve", "list", "alice"], None);
    assert!(ok && out.contains("\"active\": true"), "{out}");

    let send = |subject: &str, to: &[&str]| {
        let mut c = s.smtp();
        c.send_mail(
            "sender@remote.test",
            to,
            &mail("sender@remote.test", subject, ""),
        )
    };
    let alice = s.maildir("users/alice");
    // fileinto :create with a flag: the folder's cur/ with the F flag.
    assert_eq!(send("[work] report", &["alice@example.test"]).0, 250);
    let work = files_in(&alice.join(".Work"));
    assert_eq!(work.len(), 1, "{work:?}");
    assert!(work[0].0.ends_with(":2,F"), "{}", work[0].0);
    // discard: nothing stored.
    assert_eq!(send("drop me", &["alice@example.test"]).0, 250);
    // redirect: bob's copy, none for alice.
    assert_eq!(send("forward me", &["alice@example.test"]).0, 250);
    // redirect :copy: both.
    assert_eq!(send("copy me", &["alice@example.test"]).0, 250);
    // editheader: the stored copy has the field on top.
    assert_eq!(send("tag me", &["alice@example.test"]).0, 250);
    // fileinto a folder that does not exist, without :create: INBOX.
    assert_eq!(send("missing folder", &["alice@example.test"]).0, 250);
    let inbox = s.wait_messages("users/alice", 3);
    assert!(!has_subject(&inbox, "drop me"));
    assert!(!has_subject(&inbox, "forward me"));
    assert!(has_subject(&inbox, "copy me"));
    assert!(has_subject(&inbox, "missing folder"));
    let tagged = inbox
        .iter()
        .find(|m| has_subject(std::slice::from_ref(m), "tag me"))
        .expect("tag me stored");
    assert!(
        tagged.starts_with(b"X-Sieved: yes\r\n"),
        "{}",
        String::from_utf8_lossy(tagged)
    );
    assert!(!alice.join(".Nope").exists());
    let bob = s.wait_messages("users/bob", 2);
    assert!(has_subject(&bob, "forward me") && has_subject(&bob, "copy me"));
    // reject with one recipient: the SMTP reply.
    let (code, text) = send("go away", &["alice@example.test"]);
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("5.7.1") && text.contains("Not interested."),
        "{text}"
    );
    // reject with two recipients: bob gets it, the sender (carol, local) gets a notice — mail
    // the server makes goes through carol's own script too, which files it.
    let notices = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"Rejected:\" { fileinto :create \"Notices\"; }\n";
    let (ok, out, err) = s.cli(&["sieve", "put", "carol", "notices", "-"], Some(notices));
    assert!(ok, "{out}{err}");
    assert!(s.cli(&["sieve", "activate", "carol", "notices"], None).0);
    let mut c = s.smtp();
    let (code, _) = c.send_mail(
        "carol@example.test",
        &["alice@example.test", "bob@example.test"],
        &mail("carol@example.test", "go away too", ""),
    );
    assert_eq!(code, 250);
    let notices_dir = s.maildir("users/carol").join(".Notices");
    let carol = wait_files(&notices_dir);
    assert_eq!(carol.len(), 1, "the notice is filed by carol's script");
    let notice = String::from_utf8_lossy(&carol[0].1).into_owned();
    assert!(
        notice.contains("Subject: Rejected: go away too") && notice.contains("Not interested."),
        "{notice}"
    );
    assert!(
        notice.contains("report-type=disposition-notification"),
        "{notice}"
    );
    assert!(has_subject(&s.wait_messages("users/bob", 3), "go away too"));
    let log = s.wait_log("sieve: user=alice");
    assert!(log.contains("actions: fileinto Work"), "{log}");
    assert!(log.contains("actions: discard"), "{log}");
}

#[test]
fn vacation_replies_once_and_never_to_lists() {
    let s = TestServer::start();
    s.setup_basic();
    let (ok, out, err) = s.cli(
        &[
            "user",
            "vacation",
            "bob",
            "--subject",
            "Out of office",
            "--body",
            "I am away until Monday.",
            "--days",
            "3",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let send = |subject: &str, extra: &str| {
        let mut c = s.smtp();
        let body = format!(
            "From: carol@example.test\r\nTo: bob@example.test\r\nSubject: {subject}\r\nMessage-ID: <{}@example.test>\r\n{extra}\r\nHello.\r\n",
            subject.replace(' ', ".")
        );
        c.send_mail("carol@example.test", &["bob@example.test"], &body)
    };
    assert_eq!(send("first", "").0, 250);
    let carol = s.wait_messages("users/carol", 1);
    assert_eq!(carol.len(), 1);
    let reply = String::from_utf8_lossy(&carol[0]).into_owned();
    assert!(reply.contains("Subject: Out of office\r\n"), "{reply}");
    assert!(reply.contains("Auto-Submitted: auto-replied"), "{reply}");
    assert!(
        reply.contains("In-Reply-To: <first@example.test>"),
        "{reply}"
    );
    assert!(reply.contains("I am away until Monday."), "{reply}");
    assert!(
        reply.starts_with("Return-Path: <>") || !reply.contains("Return-Path: <carol"),
        "{reply}"
    );
    // Once per sender per period; never to a list.
    assert_eq!(send("second", "").0, 250);
    assert_eq!(send("list post", "List-Id: <dev.lists.test>\r\n").0, 250);
    let bob = s.wait_messages("users/bob", 3);
    assert_eq!(bob.len(), 3, "bob keeps every message");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(s.messages("users/carol").len(), 1, "one reply only");
    let log = s.log();
    assert!(
        log.contains("vacation (not sent: already replied in this period)"),
        "{log}"
    );
    assert!(
        log.contains("vacation (not sent: message is from a mailing list)"),
        "{log}"
    );
    // Off: the script is gone.
    let (ok, out, err) = s.cli(&["user", "vacation", "bob", "--off"], None);
    assert!(ok, "{out}{err}");
    let v = s.api_ok("GET", "/sieve/bob", None);
    assert_eq!(v["scripts"].as_array().map(Vec::len), Some(0), "{v}");
}

#[test]
fn global_scripts_limits_and_api_errors() {
    let s = TestServer::start();
    s.setup_basic();
    // A global "before" script applies to users without a script of their own.
    let global = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"GLOBALTAG\" { fileinto :create \"Global\"; stop; }\n";
    let url = |p: &str| format!("http://127.0.0.1:{}/api{p}", s.admin);
    let put = |path: &str, body: &str| match ureq::put(&url(path))
        .set("Authorization", &format!("Bearer {}", s.token()))
        .send_string(body)
    {
        Ok(r) => (
            r.status(),
            r.into_json::<serde_json::Value>().unwrap_or_default(),
        ),
        Err(ureq::Error::Status(c, r)) => (c, r.into_json().unwrap_or_default()),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(put("/sieve/@global/tagging", global).0, 200);
    s.api_ok(
        "POST",
        "/sieve/@global/tagging/activate",
        Some(json!({"slot": "before"})),
    );
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "sender@remote.test",
            &["carol@example.test"],
            &mail("sender@remote.test", "GLOBALTAG x", "")
        )
        .0,
        250
    );
    assert_eq!(files_in(&s.maildir("users/carol").join(".Global")).len(), 1);
    // `stop` in the global script ends the chain: carol's own script does not run for it;
    // for other mail it does, and a store into INBOX plus the implicit keep is one copy.
    let own = "require [\"fileinto\", \"mailbox\", \"copy\"];\nfileinto :copy \"INBOX\";\nif header :contains \"subject\" \"GLOBALTAG\" { fileinto :create \"User\"; }\n";
    assert_eq!(put("/sieve/carol/own", own).0, 200);
    s.api_ok("POST", "/sieve/carol/own/activate", None);
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "sender@remote.test",
            &["carol@example.test"],
            &mail("sender@remote.test", "GLOBALTAG y", "")
        )
        .0,
        250
    );
    assert_eq!(
        c.send_mail(
            "sender@remote.test",
            &["carol@example.test"],
            &mail("sender@remote.test", "plain one", "")
        )
        .0,
        250
    );
    assert_eq!(files_in(&s.maildir("users/carol").join(".Global")).len(), 2);
    assert!(!s.maildir("users/carol").join(".User").exists());
    let inbox = s.wait_messages("users/carol", 1);
    assert_eq!(inbox.len(), 1, "one INBOX copy");
    // Errors: a script that does not compile says where; the active script cannot go.
    let (code, v) = put("/sieve/alice/broken", "require \"fileinto\";\nfileinto;\n");
    assert_eq!(code, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("line 2"),
        "{v}"
    );
    let (code, v) = s.api("DELETE", "/sieve/@global/tagging", None);
    assert_eq!(code, 409, "{v}");
    let (code, _) = put("/sieve/nosuchuser/x", "keep;");
    assert_eq!(code, 404);
    // A runaway script (too many redirects) keeps the message and logs why.
    let many: String = (0..8)
        .map(|i| format!("redirect \"r{i}@remote.test\";\n"))
        .collect();
    assert_eq!(put("/sieve/alice/many", &many).0, 200);
    s.api_ok("POST", "/sieve/alice/many/activate", None);
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "sender@remote.test",
            &["alice@example.test"],
            &mail("sender@remote.test", "loop", "")
        )
        .0,
        250
    );
    assert!(has_subject(&s.wait_messages("users/alice", 1), "loop"));
    let log = s.wait_log("too many redirects");
    assert!(
        log.contains("error: too many redirects; message kept"),
        "{log}"
    );
    let metrics = ureq::get(&format!("http://127.0.0.1:{}/metrics", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(metrics.contains("postcore_sieve_errors_total"), "{metrics}");
    assert!(
        metrics.contains("postcore_sieve_actions_total{action=\"fileinto\"}"),
        "{metrics}"
    );
}

/// Forwards and Sieve redirects to other domains leave with an SRS sender, once per message
/// even when it is sent again, and bounces to the SRS address go back to the original sender.
#[test]
fn forwards_use_srs_and_bounces_come_back() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/users/bob",
        Some(json!({"forward": ["bob@far.test"], "keep_copy": true})),
    );
    activate_script(
        &s,
        "alice",
        "fwd",
        "require \"copy\";\nredirect :copy \"alice-elsewhere@far.test\";\n",
    );
    let body = "From: origin@remote.test\r\nTo: alice@example.test\r\nSubject: pass it on\r\nMessage-ID: <fwd-1@remote.test>\r\n\r\nhi\r\n";
    for _ in 0..2 {
        let mut c = s.smtp();
        let (code, text) = c.send_mail(
            "origin@remote.test",
            &["alice@example.test", "bob@example.test"],
            body,
        );
        assert_eq!(code, 250, "{text}");
    }
    // The local copies arrive (twice: the message was sent twice); the forwards go once each.
    assert_eq!(s.wait_messages("users/alice", 2).len(), 2);
    assert_eq!(s.wait_messages("users/bob", 2).len(), 2);
    let q = s.api_ok("GET", "/queue", None);
    let records = q.as_array().cloned().unwrap_or_default();
    let forwarded: Vec<&serde_json::Value> = records
        .iter()
        .filter(|r| r["from"].as_str().unwrap_or("").starts_with("SRS0="))
        .collect();
    let targets: Vec<String> = forwarded
        .iter()
        .flat_map(|r| r["rcpts"].as_array().cloned().unwrap_or_default())
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        targets
            .iter()
            .filter(|t| t.contains("bob@far.test"))
            .count(),
        1,
        "{q}"
    );
    assert_eq!(
        targets
            .iter()
            .filter(|t| t.contains("alice-elsewhere@far.test"))
            .count(),
        1,
        "{q}"
    );
    let srs = forwarded[0]["from"].as_str().unwrap().to_string();
    assert!(srs.ends_with("=remote.test=origin@example.test"), "{srs}");
    assert!(s.log().contains("status=skipped (already forwarded)"));
    // A bounce to the SRS address is accepted and sent on to the original sender.
    let mut c = s.smtp();
    c.ok("EHLO far.test", 250);
    c.ok("MAIL FROM:<>", 250);
    let (code, text) = c.cmd(&format!("RCPT TO:<{srs}>"));
    assert_eq!(code, 250, "{text}");
    c.ok("DATA", 354);
    c.send(b"From: MAILER-DAEMON@far.test\r\nSubject: Undelivered\r\n\r\nbounce\r\n.\r\n");
    assert_eq!(c.reply().0, 250);
    let q = s.api_ok("GET", "/queue", None);
    assert!(q.to_string().contains("origin@remote.test"), "{q}");
    // A forged or altered SRS address is unknown.
    let forged = srs.replace("origin", "victim");
    let mut c = s.smtp();
    c.ok("EHLO far.test", 250);
    c.ok("MAIL FROM:<>", 250);
    assert_eq!(c.cmd(&format!("RCPT TO:<{forged}>")).0, 550);
}

/// A user's Pigeonhole scripts imported with the CLI (the active one by its link), and the
/// offline `postcore sieve-test`.
#[test]
fn pigeonhole_import_and_offline_test() {
    let s = TestServer::start();
    s.setup_basic();
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("sieve");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("lists.sieve"),
        "require \"fileinto\";\nif exists \"list-id\" { fileinto \"Lists\"; }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("spam.sieve"),
        "require \"fileinto\";\nif header :is \"x-spam\" \"yes\" { fileinto \"Junk\"; }\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a script").unwrap();
    std::os::unix::fs::symlink("sieve/lists.sieve", home.path().join(".dovecot.sieve")).unwrap();
    let (ok, out, err) = s.cli(&["sieve", "import", "carol", dir.to_str().unwrap()], None);
    assert!(ok, "{out}{err}");
    let v = s.api_ok("GET", "/sieve/carol", None);
    let names: Vec<(String, bool)> = v["scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                x["active"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [("lists".to_string(), true), ("spam".to_string(), false)],
        "{v}"
    );
    // Offline: the same report layout as Pigeonhole's sieve-test.
    let msg = home.path().join("m.eml");
    std::fs::write(
        &msg,
        "From: a@b.test\r\nList-Id: <l.b.test>\r\nSubject: x\r\n\r\nhi\r\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["sieve-test"])
        .arg(dir.join("lists.sieve"))
        .arg(&msg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(" * store message in folder: Lists")
            && text.contains("Implicit keep:\n\n  (none)"),
        "{text}"
    );
    let bad = home.path().join("bad.sieve");
    std::fs::write(&bad, "keep;\nfrob;\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_postcore"))
        .args(["sieve-test"])
        .arg(&bad)
        .arg(&msg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2, column 1: unknown command 'frob'")
    );
}

/// imap4flags at delivery: system flags in the Maildir name, keywords in the mailbox index,
/// both seen over IMAP — also for a user who never logged in before the delivery.
#[test]
fn flags_and_keywords_reach_imap() {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    // A message from before the script: it must stay visible once keywords make the index.
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "a@remote.test",
            &["bob@example.test"],
            &mail("a@remote.test", "earlier", "")
        )
        .0,
        250
    );
    activate_script(
        &s,
        "bob",
        "flags",
        "require \"imap4flags\";\naddflag [\"$Work\", \"\\\\Flagged\", \"bad(keyword\"];\n",
    );
    let mut c = s.smtp();
    assert_eq!(
        c.send_mail(
            "a@remote.test",
            &["bob@example.test"],
            &mail("a@remote.test", "flag me", "")
        )
        .0,
        250
    );
    let mut imap = common::Imap::login(s.imap, "bob", "bob-pw");
    let sel = imap.ok("SELECT INBOX");
    assert!(sel.contains("* 2 EXISTS"), "{sel}");
    let out = imap.ok("SEARCH KEYWORD $Work");
    assert!(
        out.contains("* SEARCH") && out.split_whitespace().count() == 3,
        "{out}"
    );
    let n = out.split_whitespace().nth(2).unwrap().to_string();
    let out = imap.ok(&format!(
        "FETCH {n} (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
    ));
    assert!(
        out.contains("$Work") && out.contains("\\Flagged") && out.contains("flag me"),
        "{out}"
    );
    assert!(!out.contains("bad(keyword"), "{out}");
}

/// A copy that has to wait (mailbox over quota) keeps what Sieve did to it: its own header
/// edits (queued as a record of its own) and its keywords, delivered later.
#[test]
fn a_waiting_copy_keeps_its_header_edits_and_keywords() {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    s.api_ok("PATCH", "/users/bob", Some(json!({"quota_mb": 1})));
    activate_script(
        &s,
        "bob",
        "late",
        "require [\"editheader\", \"imap4flags\"];\naddheader \"X-Sieved\" \"late\";\naddflag \"$Later\";\n",
    );
    let big = "x".repeat(76) + "\r\n";
    let body = mail("a@remote.test", "big one", "") + &big.repeat(20_000);
    let mut c = s.smtp();
    let (code, text) = c.send_mail("a@remote.test", &["bob@example.test"], &body);
    assert_eq!(code, 250, "{text}");
    let log = s.wait_log("(its own header)");
    assert!(log.contains("(its own header)"), "{log}");
    assert!(s.messages("users/bob").is_empty(), "over quota: waits");
    s.api_ok("PATCH", "/users/bob", Some(json!({"quota_mb": 0})));
    s.api_ok("POST", "/queue/resend", Some(json!({})));
    let got = s.wait_messages("users/bob", 1);
    assert_eq!(got.len(), 1);
    assert!(
        got[0].starts_with(b"X-Sieved: late\r\n"),
        "{}",
        String::from_utf8_lossy(&got[0][..200])
    );
    let mut imap = common::Imap::login(s.imap, "bob", "bob-pw");
    imap.ok("SELECT INBOX");
    let out = imap.ok("FETCH 1 FLAGS");
    assert!(out.contains("$Later"), "{out}");
}

/// Writes `ops` into the stopped server's store (the sieve column family).
fn edit_store(s: &TestServer, ops: Vec<postcore_storage::store::Op>) {
    let store = postcore_storage::store::Store::open(&s.data_dir().join("db")).expect("open db");
    store.commit_blocking(ops).expect("write");
}

#[test]
fn delivery_runs_the_form_compiled_at_upload() {
    use postcore_storage::store::{CF_SIEVE, Op};
    let mut s = TestServer::start();
    s.setup_basic();
    let to_work = "require [\"fileinto\", \"mailbox\"];\nif header :contains \"subject\" \"[w]\" { fileinto :create \"Work\"; }\n";
    activate_script(&s, "alice", "rules", to_work);
    assert!(s.terminate(), "{}", s.log());
    // The source is replaced by text that does not parse; the compiled form stays. Delivery
    // files by the compiled form, so it never parsed the source.
    edit_store(
        &s,
        vec![Op::Put(
            CF_SIEVE,
            b"s\0alice\0rules".to_vec(),
            b"if broken {".to_vec(),
        )],
    );
    s.spawn();
    let send = |s: &TestServer, subject: &str| {
        s.smtp()
            .send_mail(
                "sender@remote.test",
                &["alice@example.test"],
                &mail("sender@remote.test", subject, ""),
            )
            .0
    };
    assert_eq!(send(&s, "[w] one"), 250);
    let work = s.maildir("users/alice").join(".Work");
    assert_eq!(wait_files(&work).len(), 1, "filed by the compiled form");
    assert!(s.terminate(), "{}", s.log());
    // An upgrade that changes the stored format (simulated: the format mark says 0 and the
    // compiled form is gone) compiles every script again from its source at start.
    let to_other = to_work.replace("Work", "Other");
    edit_store(
        &s,
        vec![
            Op::Put(CF_SIEVE, b"s\0alice\0rules".to_vec(), to_other.into_bytes()),
            Op::Delete(CF_SIEVE, b"c\0alice\0rules".to_vec()),
            Op::Put(CF_SIEVE, b"F".to_vec(), vec![0, 0]),
        ],
    );
    s.spawn();
    s.wait_log("1 stored scripts compiled for format");
    assert_eq!(send(&s, "[w] two"), 250);
    let other = s.maildir("users/alice").join(".Other");
    assert_eq!(wait_files(&other).len(), 1, "filed by the recompiled form");
    assert!(s.terminate(), "{}", s.log());
    let store = postcore_storage::store::Store::open(&s.data_dir().join("db")).expect("open");
    let sieve = postcore_storage::sieve::SieveStore::new(store);
    let form = sieve
        .get_compiled("alice", "rules")
        .expect("read")
        .expect("stored again");
    assert!(form.starts_with(b"PCSV"));
    assert_eq!(
        sieve.compiled_format().expect("read"),
        Some(postcore_protocol::sieve::stored::FORMAT)
    );
}
