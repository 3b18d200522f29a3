//! The statistical filter through a running server: inactive below 200 spam and 200 ham and
//! active above (learned through `postcore admin bayes`), its symbol in the verdict of SMTP
//! mail (flagged into Junk, or left in INBOX), a message learned once, relearning as the
//! other class, training from IMAP (a real client's MOVE into Junk and back, `$Junk`), the
//! `spamtrainers` group, concurrent training from two sessions, a restart in the middle of a
//! training burst, and `postcore bayes` on a stopped server's data directory.

mod common;
use common::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// The two vocabularies, one string each.
const SPAM_WORDS: &str = "viagra winner prize casino mortgage refinance pills discount \
    guaranteed investment opportunity lottery bonus unclaimed";
const HAM_WORDS: &str = "meeting agenda report kernel patch review budget minutes \
    schedule deadline project release changelog thanks";

/// Message `i` of a class: mostly words of its own vocabulary, a distinct Message-ID.
fn message(spam: bool, i: usize) -> String {
    let (words, from) = if spam {
        (SPAM_WORDS, "offers@promo-deals.example")
    } else {
        (HAM_WORDS, "colleague@work.example")
    };
    let words: Vec<&str> = words.split_whitespace().collect();
    let mut x = (i as u64 + 1) * 0x9e37_79b9 + u64::from(spam);
    let mut body = String::new();
    for n in 0..50 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        body.push_str(words[(x % words.len() as u64) as usize]);
        body.push(if n % 10 == 9 { '\n' } else { ' ' });
    }
    let kind = if spam { "s" } else { "h" };
    format!(
        "From: {from}\r\nTo: alice@example.test\r\nSubject: {} {i}\r\n\
         Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{kind}{i}@gen.example>\r\n\r\n{}\r\n",
        words[i % words.len()],
        body.replace('\n', "\r\n")
    )
}

/// Writes messages `from..to` of a class as files into `dir`.
fn write_messages(dir: &Path, spam: bool, range: std::ops::Range<usize>) {
    std::fs::create_dir_all(dir).unwrap();
    for i in range {
        std::fs::write(dir.join(format!("{i:04}.eml")), message(spam, i)).unwrap();
    }
}

fn status(s: &TestServer) -> Value {
    s.api_ok("GET", "/bayes/status", None)
}

/// Waits until the learned counts are (spam, ham) and the queue is empty; fails if they
/// never are.
fn wait_learned(s: &TestServer, spam: u64, ham: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let st = status(s);
        let done =
            st["spam"] == json!(spam) && st["ham"] == json!(ham) && st["pending"] == json!(0);
        if done {
            return st;
        }
        assert!(
            Instant::now() < deadline,
            "not ({spam}, {ham}) learned: {st}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn cli_ok(s: &TestServer, args: &[&str]) -> Value {
    let (ok, out, err) = s.cli(args, None);
    assert!(ok, "{args:?}: {out} {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The antispam log line of the message queued as `qid`.
fn spam_line(s: &TestServer, qid: &str) -> String {
    let needle = format!("{qid}: antispam:");
    let log = s.wait_log(&needle);
    log.lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no {needle} in {log}"))
        .to_string()
}

fn send(s: &TestServer, body: &str) -> String {
    let (code, text) =
        s.smtp()
            .send_mail("offers@promo-deals.example", &["alice@example.test"], body);
    assert_eq!(code, 250, "{text}");
    qid(&text)
}

#[test]
fn inactive_below_two_hundred_then_judges_smtp_mail() {
    let s = TestServer::start();
    s.setup_basic();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"filter": {"spam": {"flag_score": 4.0, "greylist": {"enabled": false}}}})),
    );
    let dir = tempfile::tempdir().unwrap();
    let (spam_dir, ham_dir) = (dir.path().join("spam"), dir.path().join("ham"));
    write_messages(&spam_dir, true, 0..199);
    write_messages(&ham_dir, false, 0..200);
    let r = cli_ok(&s, &["bayes", "learn-spam", spam_dir.to_str().unwrap()]);
    assert_eq!(r["messages"], 199, "{r}");
    assert_eq!(r["outcomes"]["learned"], 199, "{r}");
    cli_ok(&s, &["bayes", "learn-ham", ham_dir.to_str().unwrap()]);
    let st = cli_ok(&s, &["bayes", "status"]);
    assert_eq!(
        (st["spam"].clone(), st["ham"].clone()),
        (json!(199), json!(200))
    );
    assert_eq!(st["active"], false);
    assert_eq!(st["progress_percent"], 99);
    assert!(st["tokens"].as_u64().unwrap() > 20, "{st}");

    // Inactive: no Bayes symbol, the spam-like message stays in INBOX.
    let q = send(&s, &message(true, 1000));
    let line = spam_line(&s, &q);
    assert!(!line.contains("BAYES"), "{line}");
    assert_eq!(s.wait_messages("users/alice", 1).len(), 1);

    // The 200th spam activates it; the same message again counts once.
    let one = dir.path().join("one.eml");
    std::fs::write(&one, message(true, 199)).unwrap();
    let r = cli_ok(&s, &["bayes", "learn-spam", one.to_str().unwrap()]);
    assert_eq!(r["outcomes"]["learned"], 1, "{r}");
    let r = cli_ok(&s, &["bayes", "learn-spam", one.to_str().unwrap()]);
    assert_eq!(r["outcomes"]["already_learned"], 1, "{r}");
    let st = status(&s);
    assert_eq!(
        (st["spam"].clone(), st["active"].clone()),
        (json!(200), json!(true))
    );

    // Active: spam-like mail gets BAYES_SPAM (about 5 points) and, over the flag threshold
    // of 4, is flagged and filed into Junk; ham-like mail gets BAYES_HAM and stays.
    let q = send(&s, &message(true, 1001));
    let line = spam_line(&s, &q);
    assert!(line.contains("BAYES_SPAM("), "{line}");
    let junk = s.wait_messages("users/alice/.Junk", 1);
    assert_eq!(junk.len(), 1);
    let text = String::from_utf8_lossy(&junk[0]);
    assert!(
        text.contains("X-Spam: Yes") && text.contains("BAYES_SPAM"),
        "{text}"
    );
    let q = send(&s, &message(false, 1002));
    let line = spam_line(&s, &q);
    assert!(line.contains("BAYES_HAM(-"), "{line}");
    assert_eq!(s.wait_messages("users/alice", 2).len(), 2);

    // Relearning a spam as ham moves it.
    let r = cli_ok(&s, &["bayes", "learn-ham", one.to_str().unwrap()]);
    assert_eq!(r["outcomes"]["relearned"], 1, "{r}");
    let st = status(&s);
    assert_eq!(
        (st["spam"].clone(), st["ham"].clone()),
        (json!(199), json!(201))
    );
    let r = cli_ok(&s, &["bayes", "forget", one.to_str().unwrap()]);
    assert_eq!(r["outcomes"]["forgotten"], 1, "{r}");
    assert_eq!(status(&s)["ham"], 200);
    let metrics = ureq::get(&format!("http://127.0.0.1:{}/metrics", s.admin))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(
        metrics.contains(
            "postcore_bayes_learns_total{class=\"spam\",source=\"admin\",outcome=\"learned\"} 200"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("postcore_spam_symbol_hits_total{symbol=\"BAYES_SPAM\"}"));
    let st = cli_ok(&s, &["bayes", "clear"]);
    assert_eq!(
        (st["spam"].clone(), st["active"].clone()),
        (json!(0), json!(false))
    );
}

/// Delivers `n` numbered messages (spam-like) to `user`'s INBOX over SMTP.
fn deliver(s: &TestServer, user: &str, n: usize, first: usize) {
    let have = s.messages(&format!("users/{user}")).len();
    for i in first..first + n {
        let (code, text) = s.smtp().send_mail(
            "offers@promo-deals.example",
            &[&format!("{user}@example.test")],
            &message(true, i),
        );
        assert_eq!(code, 250, "{text}");
    }
    assert_eq!(
        s.wait_messages(&format!("users/{user}"), have + n).len(),
        have + n
    );
}

fn imaplib(args: &[&str]) -> String {
    let (ok, out) = run_py(
        "imap_client.py",
        &args.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
    );
    assert!(ok, "{args:?}: {out}");
    out
}

/// A server whose IMAP allows LOGIN without TLS (the clients here speak plain text).
fn imap_server() -> TestServer {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    s
}

#[test]
fn imap_moves_and_keywords_train_but_only_trainers() {
    if python().is_none() {
        panic!("python3 is needed (scripts/deps.sh installs it)");
    }
    let s = imap_server();
    deliver(&s, "alice", 6, 0);
    let port = s.imap.to_string();
    let imap = |args: &[&str]| {
        let mut a = vec![args[0], &port, "alice", "alice-pw"];
        a.extend_from_slice(&args[1..]);
        imaplib(&a)
    };
    // Thunderbird's "move to Junk": three messages learned as spam.
    let out = imap(&["move", "INBOX", "Junk", "1:3"]);
    assert!(out.contains("MOVE OK"), "{out}");
    wait_learned(&s, 3, 0);
    let log = s.wait_log("bayes: learned as spam from IMAP: user=alice");
    assert!(log.contains("message_id=<s0@gen.example>"), "{log}");
    // "Not junk": moved back to INBOX, relearned as ham (the model counts it once).
    let out = imap(&["move", "Junk", "INBOX", "1"]);
    assert!(out.contains("MOVE OK"), "{out}");
    wait_learned(&s, 2, 1);
    // Out of Junk into Trash teaches nothing.
    imap(&["move", "Junk", "Trash", "2"]);
    // The $Junk keyword teaches spam (UID 4 in INBOX).
    let out = imap(&["keyword", "INBOX", "4", "$Junk"]);
    assert!(out.contains("STORE OK"), "{out}");
    wait_learned(&s, 3, 1);

    // With a group `spamtrainers`, only its members train.
    s.api_ok(
        "POST",
        "/groups",
        Some(json!({"name": "spamtrainers", "members": ["bob"]})),
    );
    imap(&["move", "INBOX", "Junk", "5"]);
    std::thread::sleep(Duration::from_millis(500));
    wait_learned(&s, 3, 1);
    deliver(&s, "bob", 1, 100);
    imaplib(&["move", &port, "bob", "bob-pw", "INBOX", "Junk", "1"]);
    wait_learned(&s, 4, 1);
}

/// Moves every INBOX message of `user` into Junk over a raw IMAP session.
fn move_all_to_junk(port: u16, user: &str) {
    let mut c = Imap::login(port, user, &format!("{user}-pw"));
    c.ok("SELECT INBOX");
    c.ok("UID MOVE 1:* Junk");
}

#[test]
fn two_sessions_train_at_once_and_a_restart_keeps_the_queue() {
    let mut s = imap_server();
    deliver(&s, "alice", 15, 0);
    deliver(&s, "bob", 15, 15);
    let port = s.imap;
    let a = std::thread::spawn(move || move_all_to_junk(port, "alice"));
    let b = std::thread::spawn(move || move_all_to_junk(port, "bob"));
    a.join().unwrap();
    b.join().unwrap();
    wait_learned(&s, 30, 0);

    // A burst of ham, then kill -9 at once: what was handed over is learned after the
    // restart, each message once.
    deliver(&s, "carol", 25, 100);
    move_all_to_junk(port, "carol");
    s.kill9();
    s.spawn();
    wait_learned(&s, 55, 0);
    // Queued again by hand (a crash between the learning and the removal): still once.
    let junk = s.maildir("users/carol/.Junk").join("cur");
    let any = std::fs::read_dir(&junk)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let queue = s.data_dir().join("bayes-queue");
    std::fs::copy(&any, queue.join("000000000001.000000000.00000000.spam.")).unwrap();
    s.kill9();
    s.spawn();
    wait_learned(&s, 55, 0);
    let log = s.wait_log("already learned as spam");
    assert!(log.contains("already learned as spam"), "{log}");
}

#[test]
fn offline_bayes_commands_on_a_stopped_server() {
    let mut s = TestServer::start();
    s.setup_basic();
    let dir = tempfile::tempdir().unwrap();
    write_messages(&dir.path().join("spam"), true, 0..3);
    // An mbox of two ham messages.
    let mbox = format!(
        "From a@b Mon Jan  1 00:00:00 2024\n{}\nFrom a@b Mon Jan  1 00:00:01 2024\n{}\n",
        message(false, 0).replace("\r\n", "\n"),
        message(false, 1).replace("\r\n", "\n")
    );
    std::fs::write(dir.path().join("ham.mbox"), mbox).unwrap();
    assert!(s.terminate());
    let bin = env!("CARGO_BIN_EXE_postcore");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .arg("bayes")
            .arg("--config")
            .arg(&s.cfg_path)
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {text}");
        text
    };
    let out = run(&["learn-spam", dir.path().join("spam").to_str().unwrap()]);
    assert!(out.contains("3 messages: 3 learned"), "{out}");
    let out = run(&["learn-ham", dir.path().join("ham.mbox").to_str().unwrap()]);
    assert!(out.contains("2 messages: 2 learned"), "{out}");
    let out = run(&["status"]);
    assert!(out.contains("learned: 3 spam, 2 ham"), "{out}");
    assert!(out.contains("active: no (training 1%"), "{out}");
    let out = run(&[
        "explain",
        dir.path().join("spam").join("0000.eml").to_str().unwrap(),
    ]);
    assert!(
        out.contains("H*F:offers@promo-deals.example=") && out.contains("(3/0)"),
        "{out}"
    );
    // A reader that stops early (`classify DIR | head -1`): the tool ends quietly, no panic.
    write_messages(&dir.path().join("many"), false, 0..1000);
    let mut child = std::process::Command::new(bin)
        .args(["bayes", "--config"])
        .arg(&s.cfg_path)
        .arg("classify")
        .arg(dir.path().join("many"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(first.contains(": inactive"), "{first}");
    assert!(!err.contains("panicked"), "{err}");
    {
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(libc::SIGPIPE),
            "{:?} {err}",
            out.status
        );
    }
    // What was learned offline is there when the server runs again.
    s.spawn();
    let st = status(&s);
    assert_eq!(
        (st["spam"].clone(), st["ham"].clone()),
        (json!(3), json!(2)),
        "{st}"
    );
}
