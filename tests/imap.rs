//! IMAP against the real server: concurrency and IDLE, TLS rules, sharing (ACL, public
//! mailboxes, shared/private \Seen), quota, master and migration logins, administration
//! switches, abuse, and real clients (imaplib, mbsync, mutt).

mod common;
use common::*;
use serde_json::json;
use std::time::Duration;

fn server() -> TestServer {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    s
}

fn deliver(s: &TestServer, to: &str, subject: &str) {
    let mut c = s.smtp();
    let (code, text) = c.send_mail("sender@remote.test", &[to], &message(subject));
    assert_eq!(code, 250, "{text}");
}

/// Reads untagged lines until one contains `needle` (IDLE pushes).
fn wait_for(c: &mut Imap, needle: &str) -> String {
    loop {
        let l = c.read_line();
        assert!(
            !l.is_empty(),
            "connection closed while waiting for {needle}"
        );
        if l.contains(needle) {
            return l;
        }
    }
}

/// Another program (procmail, a script) puts a message into the Maildir and later marks it
/// read by renaming it: an IDLE session hears of both at once (inotify), long before IDLE's
/// 30 s check, which the client's 20 s read timeout would not reach.
#[test]
fn idle_session_sees_changes_other_programs_make_to_the_maildir() {
    let s = server();
    deliver(&s, "alice@example.test", "first");
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    a.ok("SELECT INBOX");
    a.send_raw(b"i1 IDLE\r\n");
    assert!(a.read_line().starts_with("+ "));
    let md = s.maildir("users/alice");
    let name = "1796000000.outside.host";
    std::fs::write(md.join("tmp").join(name), message("dropped in")).unwrap();
    std::fs::rename(md.join("tmp").join(name), md.join("new").join(name)).unwrap();
    wait_for(&mut a, "* 2 EXISTS");
    std::fs::rename(
        md.join("new").join(name),
        md.join("cur").join(format!("{name}:2,S")),
    )
    .unwrap();
    let l = wait_for(&mut a, "* 2 FETCH");
    assert!(l.contains("\\Seen"), "{l}");
    a.send_raw(b"DONE\r\n");
    let (_, t) = a.until_tagged("i1");
    assert!(t.starts_with("OK"), "{t}");
}

#[test]
fn idle_session_sees_deliveries_flag_changes_and_expunges() {
    let s = server();
    deliver(&s, "alice@example.test", "first");
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    let sel = a.ok("SELECT INBOX");
    assert!(
        sel.contains("* 1 EXISTS") && sel.contains("* 1 RECENT"),
        "{sel}"
    );
    a.send_raw(b"i1 IDLE\r\n");
    assert!(a.read_line().starts_with("+ "));
    // A new delivery is pushed; this session is the first told, so it is \Recent here
    // (RFC 3501 §7.3.2: RECENT follows EXISTS).
    deliver(&s, "alice@example.test", "second");
    wait_for(&mut a, "* 2 EXISTS");
    wait_for(&mut a, "* 2 RECENT");
    // A second session changes a flag and expunges message 1; nothing is \Recent for it.
    let mut b = Imap::login(s.imap, "alice", "alice-pw");
    let sel = b.ok("SELECT INBOX");
    assert!(sel.contains("* 0 RECENT"), "{sel}");
    assert_eq!(b.ok("SEARCH RECENT"), "* SEARCH");
    b.ok("STORE 2 +FLAGS (\\Flagged)");
    let l = wait_for(&mut a, "FETCH");
    assert!(l.starts_with("* 2 FETCH") && l.contains("\\Flagged"), "{l}");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    let ex = b.ok("EXPUNGE");
    assert!(ex.contains("* 1 EXPUNGE"), "{ex}");
    wait_for(&mut a, "* 1 EXPUNGE");
    a.send_raw(b"DONE\r\n");
    let (_, t) = a.until_tagged("i1");
    assert!(t.starts_with("OK"), "{t}");
    // The views agree: one message, the flagged one, now number 1.
    let f = a.ok("FETCH 1:* (UID FLAGS)");
    assert!(
        f.contains("* 1 FETCH (UID 2 FLAGS (\\Flagged \\Recent))"),
        "{f}"
    );
    // Without IDLE, the next command reports what happened meanwhile.
    deliver(&s, "alice@example.test", "third");
    let n = a.ok("NOOP");
    assert!(n.contains("* 2 EXISTS") && n.contains("* 2 RECENT"), "{n}");
    assert_eq!(a.ok("SEARCH NEW"), "* SEARCH 1 2");
    assert_eq!(a.ok("SEARCH OLD"), "* SEARCH");
    // b learns of it second: EXISTS, but nothing recent.
    let n = b.ok("NOOP");
    assert!(n.contains("* 2 EXISTS") && n.contains("* 0 RECENT"), "{n}");
    let f = b.ok("FETCH 2 FLAGS");
    assert!(f.contains("* 2 FETCH (FLAGS ())"), "{f}");
    // EXAMINE and STATUS look without taking \Recent away (RFC 3501 §6.3.2); an
    // IMAP4rev2 session has no \Recent at all (RFC 9051 dropped it).
    deliver(&s, "alice@example.test", "fourth");
    let st = b.ok("STATUS INBOX (MESSAGES RECENT)");
    assert!(st.contains("(MESSAGES 3 RECENT 1)"), "{st}");
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let ex = c.ok("EXAMINE INBOX");
    assert!(
        ex.contains("* 3 EXISTS") && ex.contains("* 1 RECENT"),
        "{ex}"
    );
    let mut d = Imap::login(s.imap, "alice", "alice-pw");
    d.ok("ENABLE IMAP4rev2");
    let sel = d.ok("SELECT INBOX");
    assert!(!sel.contains("RECENT"), "{sel}");
    assert!(!d.ok("FETCH 1:* FLAGS").contains("Recent"));
    let mut e = Imap::login(s.imap, "alice", "alice-pw");
    assert!(e.ok("SELECT INBOX").contains("* 0 RECENT"));
    // The Maildir file carries the flag for other Maildir tools.
    let cur = std::fs::read_dir(s.maildir("users/alice").join("cur"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect::<Vec<_>>();
    assert!(cur.iter().any(|n| n.ends_with(":2,F")), "{cur:?}");
}

#[test]
fn tls_rules_starttls_injection_and_imaps() {
    let s = TestServer::start();
    s.setup_basic();
    let p = |x: u16| x.to_string();
    let (ok, out) = run_py(
        "imap_client.py",
        &[
            "starttls".into(),
            p(s.imap),
            "alice".into(),
            "alice-pw".into(),
        ],
    );
    assert!(ok && out.starts_with("OK 0"), "{out}");
    let (ok, out) = run_py(
        "imap_client.py",
        &[
            "implicit".into(),
            p(s.imaps),
            "alice".into(),
            "alice-pw".into(),
        ],
    );
    assert!(ok && out.starts_with("OK 0"), "{out}");
    // The LOGIN pipelined behind STARTTLS is dropped: inside TLS the first answer is NOOP's.
    let (ok, out) = run_py("imap_client.py", &["inject".into(), p(s.imap)]);
    assert!(ok && out.starts_with("c OK"), "{out}");
    assert_eq!(
        s.log()
            .matches("imap login: user=<alice>, rip=127.0.0.1, result=ok")
            .count(),
        2,
        "only the two real logins succeeded"
    );
    // AUTHENTICATE PLAIN with SASL-IR is refused in plain text too.
    let mut c = Imap::connect(s.imap);
    let (_, t) = c.cmd("AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXB3");
    assert!(t.starts_with("NO [PRIVACYREQUIRED]"), "{t}");
}

#[test]
fn authenticate_plain_and_login_mechanisms() {
    let s = server();
    let mut c = Imap::connect(s.imap);
    // SASL-IR: \0alice\0alice-pw
    let (_, t) = c.cmd("AUTHENTICATE PLAIN AGFsaWNlAGFsaWNlLXB3");
    assert!(t.starts_with("OK"), "{t}");
    let mut c = Imap::connect(s.imap);
    c.send_raw(b"x AUTHENTICATE LOGIN\r\n");
    assert_eq!(c.read_line(), "+ VXNlcm5hbWU6");
    c.send_raw(b"Ym9i\r\n");
    assert_eq!(c.read_line(), "+ UGFzc3dvcmQ6");
    c.send_raw(b"Ym9iLXB3\r\n");
    let (_, t) = c.until_tagged("x");
    assert!(t.starts_with("OK"), "{t}");
    let mut c = Imap::connect(s.imap);
    c.send_raw(b"y AUTHENTICATE PLAIN\r\n");
    assert_eq!(c.read_line(), "+ ");
    c.send_raw(b"*\r\n");
    let (_, t) = c.until_tagged("y");
    assert!(t.starts_with("BAD"), "cancelled: {t}");
}

#[test]
fn sharing_through_acl_and_private_seen() {
    let s = server();
    let mut alice = Imap::login(s.imap, "alice", "alice-pw");
    alice.ok("APPEND Archive {20+}\r\nSubject: shared\r\n\r\nx");
    // Nothing shared yet: bob does not see it.
    let mut bob = Imap::login(s.imap, "bob", "bob-pw");
    assert!(!bob.ok("LIST \"\" *").contains("Shared/alice/Archive"));
    let (_, t) = bob.cmd("SELECT Shared/alice/Archive");
    assert!(t.starts_with("NO [NONEXISTENT]"), "{t}");
    // Read access: lookup + read + seen.
    alice.ok("SETACL Archive bob lrs");
    assert!(bob.ok("LIST \"\" *").contains("\"/\" Shared/alice/Archive"));
    let sel = bob.ok("SELECT Shared/alice/Archive");
    assert!(sel.contains("* 1 EXISTS"), "{sel}");
    let r = bob.ok("MYRIGHTS Shared/alice/Archive");
    assert!(r.contains("\"lrs\""), "{r}");
    // Rights are enforced: no insert, no delete, no ACL admin.
    let (_, t) = bob.cmd("APPEND Shared/alice/Archive {10+}\r\nSubject: x");
    assert!(t.starts_with("NO [NOPERM]"), "{t}");
    let (_, t) = bob.cmd("STORE 1 +FLAGS (\\Deleted)");
    assert!(t.starts_with("OK"), "{t}");
    let f = bob.ok("FETCH 1 FLAGS");
    assert!(!f.contains("\\Deleted"), "no 't' right: flag not set: {f}");
    let (_, t) = bob.cmd("SETACL Shared/alice/Archive carol lr");
    assert!(t.starts_with("NO [NOPERM]"), "{t}");
    let (_, t) = bob.cmd("DELETE Shared/alice/Archive");
    assert!(t.starts_with("NO [NOPERM]"), "{t}");
    // "Shared seen" off (default): bob's \Seen is his own.
    bob.ok("STORE 1 +FLAGS (\\Seen)");
    let a = alice.ok("STATUS Archive (UNSEEN)");
    assert!(a.contains("UNSEEN 1"), "alice still has it unseen: {a}");
    let b = bob.ok("STATUS Shared/alice/Archive (UNSEEN)");
    assert!(b.contains("UNSEEN 0"), "{b}");
    bob.ok("STORE 1 -FLAGS (\\Seen)");
    let b = bob.ok("STATUS Shared/alice/Archive (UNSEEN)");
    assert!(b.contains("UNSEEN 1"), "bob's own \\Seen cleared: {b}");
    // bob's other session is told of his private \Seen changes; alice's session is not.
    let mut bob2 = Imap::login(s.imap, "bob", "bob-pw");
    bob2.ok("SELECT Shared/alice/Archive");
    alice.ok("SELECT Archive");
    bob.ok("STORE 1 +FLAGS (\\Seen)");
    let n = bob2.ok("NOOP");
    assert!(n.contains("* 1 FETCH (UID 1 FLAGS (\\Seen"), "{n}");
    let n = alice.ok("NOOP");
    assert!(!n.contains("FETCH"), "alice's \\Seen is her own: {n}");
    alice.ok("UNSELECT");
    // With "shared seen" on, \Seen is common.
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"imap": {"shared_seen": true}})),
    );
    bob.ok("UNSELECT");
    bob.ok("SELECT Shared/alice/Archive");
    bob.ok("STORE 1 +FLAGS (\\Seen)");
    let a = alice.ok("STATUS Archive (UNSEEN)");
    assert!(a.contains("UNSEEN 0"), "now common: {a}");
    // Granting insert lets bob file mail into alice's folder.
    alice.ok("SETACL Archive bob +i");
    bob.ok("APPEND Shared/alice/Archive {10+}\r\nSubject: y");
    let a = alice.ok("STATUS Archive (MESSAGES)");
    assert!(a.contains("MESSAGES 2"), "{a}");
    // Revoking removes it from bob's view.
    alice.ok("DELETEACL Archive bob");
    assert!(!bob.ok("LIST \"\" *").contains("Shared/alice"));
}

#[test]
fn public_mailboxes_appear_for_group_members() {
    let s = server();
    s.api_ok(
        "POST",
        "/groups",
        Some(json!({"name": "staff", "members": ["carol"]})),
    );
    s.api_ok(
        "POST",
        "/public",
        Some(json!({"name": "info", "owners": ["staff"]})),
    );
    s.api_ok(
        "POST",
        "/addresses",
        Some(json!({"local": "info", "domain": "example.test", "destinations": ["public:info"]})),
    );
    deliver(&s, "info@example.test", "to the team");
    s.wait_messages("public/info", 1);
    let mut carol = Imap::login(s.imap, "carol", "carol-pw");
    let l = carol.ok("LIST \"\" Public/*");
    assert!(l.contains("Public/info"), "{l}");
    let sel = carol.ok("SELECT Public/info");
    assert!(sel.contains("* 1 EXISTS"), "{sel}");
    let f = carol.ok("FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(f.contains("Subject: to the team"), "{f}");
    carol.ok("CREATE Public/info/2024");
    let mut alice = Imap::login(s.imap, "alice", "alice-pw");
    assert!(!alice.ok("LIST \"\" *").contains("Public/"));
    let (_, t) = alice.cmd("SELECT Public/info");
    assert!(t.starts_with("NO"), "{t}");
}

#[test]
fn quota_refuses_append_and_copy_over_the_limit() {
    let s = server();
    s.api_ok("PATCH", "/users/alice", Some(json!({"quota_mb": 1})));
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "x".repeat(700 * 1024));
    c.send_raw(format!("a1 APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes());
    let (_, t) = c.until_tagged("a1");
    assert!(t.starts_with("OK [APPENDUID"), "{t}");
    c.send_raw(format!("a2 APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes());
    let (_, t) = c.until_tagged("a2");
    assert!(t.starts_with("NO [OVERQUOTA]"), "{t}");
    c.ok("SELECT INBOX");
    let (_, t) = c.cmd("COPY 1 Archive");
    assert!(t.starts_with("NO [OVERQUOTA]"), "{t}");
    let q = c.ok("GETQUOTAROOT INBOX");
    assert!(q.contains("* QUOTAROOT INBOX \"\""), "{q}");
    assert!(q.contains("(STORAGE 7"), "{q}");
    assert!(q.contains(" 1024)"), "{q}");
    // Usage per mailbox for the administrator.
    let v = s.api_ok("GET", "/users/alice/mailboxes", None);
    let inbox = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "INBOX")
        .unwrap();
    assert_eq!(inbox["messages"], 1);
    assert!(inbox["bytes"].as_u64().unwrap() > 700 * 1024);
}

/// MULTIAPPEND (RFC 3502): several messages in one APPEND, stored in order under
/// consecutive UIDs with their own flags and dates, or none of them.
#[test]
fn multiappend_stores_all_or_none() {
    let s = server();
    s.api_ok("PATCH", "/users/alice", Some(json!({"quota_mb": 1})));
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert!(c.ok("CAPABILITY").contains(" MULTIAPPEND"));
    let (m1, m2, m3) = (
        "Subject: one\r\n\r\n1\r\n",
        "Subject: two\r\n\r\n2\r\n",
        "Subject: three\r\n\r\n3\r\n",
    );
    let cmd = format!(
        "a1 APPEND INBOX {{{}+}}\r\n{m1} (\\Seen $Work) \"02-Jan-2026 10:00:00 +0000\" {{{}+}}\r\n{m2} {{{}+}}\r\n{m3}\r\n",
        m1.len(),
        m2.len(),
        m3.len()
    );
    c.send_raw(cmd.as_bytes());
    let (_, t) = c.until_tagged("a1");
    assert!(t.starts_with("OK [APPENDUID "), "{t}");
    assert!(t.contains(" 1:3]"), "one uid-set for the three: {t}");
    c.ok("SELECT INBOX");
    let f = c.ok("FETCH 1:3 (FLAGS INTERNALDATE BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    let lines: Vec<&str> = f.lines().filter(|l| l.starts_with("* ")).collect();
    assert_eq!(lines.len(), 3, "{f}");
    assert!(f.find("Subject: one") < f.find("Subject: two"), "{f}");
    assert!(f.find("Subject: two") < f.find("Subject: three"), "{f}");
    assert!(
        lines[1].contains("\\Seen") && lines[1].contains("$Work"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("02-Jan-2026 10:00:00 +0000"),
        "{}",
        lines[1]
    );
    // One message of three is empty: none is stored.
    let cmd = format!("a2 APPEND INBOX {{{}+}}\r\n{m1} {{0+}}\r\n\r\n", m1.len());
    c.send_raw(cmd.as_bytes());
    let (_, t) = c.until_tagged("a2");
    assert!(t.starts_with("NO"), "{t}");
    // Over the quota together (each alone would fit): none is stored.
    let half = format!("Subject: half\r\n\r\n{}\r\n", "x".repeat(600 * 1024));
    let cmd = format!(
        "a3 APPEND INBOX {{{n}+}}\r\n{half} {{{n}+}}\r\n{half}\r\n",
        n = half.len()
    );
    c.send_raw(cmd.as_bytes());
    let (_, t) = c.until_tagged("a3");
    assert!(t.starts_with("NO [OVERQUOTA]"), "{t}");
    c.ok("NOOP");
    assert_eq!(c.ok("SEARCH ALL"), "* SEARCH 1 2 3");
    assert_eq!(s.messages("users/alice").len(), 3, "nothing else on disk");
    let tmp = s.maildir("users/alice").join("tmp");
    let left = std::fs::read_dir(&tmp).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "no staged file left in tmp/");
}

/// SAVEDATE (RFC 8514): when a message entered the mailbox, apart from its internal date;
/// kept in the index across a restart.
#[test]
fn savedate_fetch_and_search() {
    let mut s = server();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert!(c.ok("CAPABILITY").contains(" SAVEDATE"));
    let m = "Subject: old\r\n\r\nfrom 2020\r\n";
    c.send_raw(
        format!(
            "a1 APPEND INBOX \"05-Mar-2020 10:00:00 +0000\" {{{}+}}\r\n{m}\r\n",
            m.len()
        )
        .as_bytes(),
    );
    let (_, t) = c.until_tagged("a1");
    assert!(t.starts_with("OK"), "{t}");
    c.ok("CREATE Keep");
    c.ok("SELECT INBOX");
    c.ok("COPY 1 Keep");
    let today = common::imap_day(std::time::SystemTime::now());
    // FETCH writes the day with two digits (RFC 9051 date-day-fixed).
    let fixed = if today.find('-') == Some(1) {
        format!("0{today}")
    } else {
        today.clone()
    };
    let f = c.ok("FETCH 1 (INTERNALDATE SAVEDATE)");
    assert!(
        f.contains("INTERNALDATE \"05-Mar-2020 10:00:00 +0000\""),
        "{f}"
    );
    assert!(f.contains(&format!("SAVEDATE \"{fixed}")), "{f}");
    assert_eq!(c.ok("SEARCH BEFORE 1-Jan-2021"), "* SEARCH 1");
    assert_eq!(c.ok("SEARCH SAVEDBEFORE 1-Jan-2021"), "* SEARCH");
    assert_eq!(c.ok(&format!("SEARCH SAVEDON {today}")), "* SEARCH 1");
    assert_eq!(c.ok(&format!("SEARCH SAVEDSINCE {today}")), "* SEARCH 1");
    assert_eq!(c.ok("SEARCH SAVEDATESUPPORTED"), "* SEARCH 1");
    c.ok("SELECT Keep");
    let f = c.ok("FETCH 1 SAVEDATE");
    assert!(
        f.contains(&format!("SAVEDATE \"{fixed}")),
        "the copy's own: {f}"
    );
    drop(c);
    assert!(s.terminate(), "{}", s.log());
    s.spawn();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("SELECT INBOX");
    let f = c.ok("FETCH 1 SAVEDATE");
    assert!(
        f.contains(&format!("SAVEDATE \"{fixed}")),
        "after a restart: {f}"
    );
}

/// Four clients APPEND, STORE, EXPUNGE and FETCH on one INBOX for 20 s; a checker written
/// apart from postcore's IMAP code (tests/py/imap_stress.py) holds each session's model of
/// the mailbox and fails on any untagged response that contradicts it (issue 13's stress
/// test): EXISTS/EXPUNGE/FETCH sequence numbers, UIDs, keywords announced by FLAGS first.
#[test]
fn concurrent_sessions_stay_consistent_under_load() {
    let s = server();
    deliver(&s, "alice@example.test", "seed");
    let args: Vec<String> = [s.imap.to_string(), "alice".into(), "alice-pw".into()]
        .into_iter()
        .chain(["4", "20", "7"].map(String::from))
        .collect();
    let (ok, out) = common::run_py("imap_stress.py", &args);
    assert!(ok, "{out}");
    assert!(out.contains("consistent: 4 clients"), "{out}");
    eprintln!("{out}");
}

#[test]
fn master_and_migration_logins() {
    let s = server();
    deliver(&s, "alice@example.test", "for alice");
    let mut c = Imap::connect(s.imap);
    let (_, t) = c.cmd("LOGIN alice*root whatever");
    assert!(t.starts_with("NO"), "no master password set: {t}");
    let (ok, out, err) = s.cli(
        &[
            "settings",
            "set",
            "imap.master_password=master-secret",
            "imap.migration_user=vmail",
            "imap.migration_password=mig-secret",
        ],
        None,
    );
    assert!(ok, "{out}{err}");
    let v = s.api_ok("GET", "/settings", None);
    assert!(
        v["imap"]["master_password_hash"]
            .as_str()
            .unwrap()
            .starts_with("$argon2")
    );
    let mut c = Imap::login(s.imap, "alice*root", "master-secret");
    assert!(c.ok("SELECT INBOX").contains("* 1 EXISTS"));
    assert!(c.ok("MYRIGHTS INBOX").contains("lrswipkxtea"));
    let mut c = Imap::login(s.imap, "alice*vmail", "mig-secret");
    assert!(c.ok("SELECT INBOX").contains("* 1 EXISTS"));
    let mut c = Imap::connect(s.imap);
    let (_, t) = c.cmd("LOGIN alice*vmail master-secret");
    assert!(t.starts_with("NO"), "{t}");
    // SASL PLAIN with authorization identity alice and master credentials.
    let mut c = Imap::connect(s.imap);
    use base64::Engine;
    let ir = base64::engine::general_purpose::STANDARD.encode(b"alice\0root\0master-secret");
    let (_, t) = c.cmd(&format!("AUTHENTICATE PLAIN {ir}"));
    assert!(t.starts_with("OK"), "{t}");
    assert!(s.log().contains("master=<root>"));
}

#[test]
fn mail_access_off_and_connections_per_user_and_ip() {
    let s = server();
    s.api_ok("PATCH", "/users/bob", Some(json!({"mail_access": false})));
    let mut c = Imap::connect(s.imap);
    let (_, t) = c.cmd("LOGIN bob bob-pw");
    assert!(t.starts_with("NO [AUTHENTICATIONFAILED]"), "{t}");
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"imap": {"max_connections_per_user_ip": 2}})),
    );
    let a = Imap::login(s.imap, "alice", "alice-pw");
    let _b = Imap::login(s.imap, "alice", "alice-pw");
    let mut c = Imap::connect(s.imap);
    let (_, t) = c.cmd("LOGIN alice alice-pw");
    assert!(t.starts_with("NO [LIMIT]"), "{t}");
    // Another user from the same IP is not affected.
    Imap::login(s.imap, "carol", "carol-pw");
    // A password change takes effect at once (verified passwords are cached).
    s.api_ok(
        "PATCH",
        "/users/carol",
        Some(json!({"password": "carol-new"})),
    );
    let mut c = Imap::connect(s.imap);
    let (_, t) = c.cmd("LOGIN carol carol-pw");
    assert!(t.starts_with("NO"), "old password after the change: {t}");
    Imap::login(s.imap, "carol", "carol-new");
    drop(a);
    std::thread::sleep(Duration::from_millis(300));
    Imap::login(s.imap, "alice", "alice-pw");
}

#[test]
fn move_deleted_to_trash_keep_spam_days_and_action_log() {
    let s = server();
    s.api_ok(
        "PATCH",
        "/settings",
        Some(json!({"imap": {"move_deleted_to_trash": true, "log_actions": true}})),
    );
    deliver(&s, "alice@example.test", "to be deleted");
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("SELECT INBOX");
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    let n = c.ok("NOOP");
    assert!(n.contains("* 1 EXPUNGE"), "{n}");
    let t = c.ok("STATUS Trash (MESSAGES)");
    assert!(t.contains("MESSAGES 1"), "{t}");
    c.ok("SELECT Trash");
    let f = c.ok("FETCH 1 (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(
        f.contains("to be deleted") && !f.contains("\\Deleted"),
        "{f}"
    );
    assert!(
        s.log().contains("imap(alice): select"),
        "actions are logged"
    );
    // Keep spam 3 days: an old message in Junk goes at the next login, a new one stays.
    let (ok, out, err) = s.cli(&["user", "set", "alice", "--keep-spam-days", "3"], None);
    assert!(ok, "{out}{err}");
    assert_eq!(s.api_ok("GET", "/users/alice", None)["keep_spam_days"], 3);
    let junk = s.maildir("users/alice").join(".Junk/cur");
    std::fs::create_dir_all(&junk).unwrap();
    let now = std::time::SystemTime::now();
    for (name, age_days) in [("100.old.x:2,", 10u64), ("200.new.x:2,", 1)] {
        let p = junk.join(name);
        std::fs::write(&p, b"Subject: spam\r\n\r\nbuy\r\n").unwrap();
        let f = std::fs::File::options().write(true).open(&p).unwrap();
        f.set_modified(now - Duration::from_secs(age_days * 86_400))
            .unwrap();
    }
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let j = c.ok("STATUS Junk (MESSAGES)");
    assert!(j.contains("MESSAGES 1"), "{j}");
    assert!(!junk.join("100.old.x:2,").exists());
    assert!(s.log().contains("junk expiry"));
    // The administrator sees usage per mailbox.
    let (ok, out, err) = s.cli(&["user", "mailboxes", "alice"], None);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let junk = v
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Junk")
        .unwrap();
    assert_eq!(junk["messages"], 1);
}

#[test]
fn abuse_is_answered_and_others_keep_being_served() {
    // The per-account failure limit (tested in smtp_refusals.rs) is off here: this test is
    // about the per-address limit, which must not keep alice out from another address.
    let s = TestServer::start_with(
        "[limits]\nmax_connections_per_ip = 200\nmax_auth_failures_per_account = 0\n",
    );
    s.setup_basic();
    s.allow_unencrypted();
    // 100 parallel logins with wrong passwords: each answered, none crashes the server.
    let port = s.imap;
    let handles: Vec<_> = (0..100)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Imap::connect(port);
                let (_, t) = c.cmd(&format!("LOGIN alice wrong{i}"));
                t
            })
        })
        .collect();
    for h in handles {
        let t = h.join().unwrap();
        assert!(
            t.starts_with("NO [AUTHENTICATIONFAILED]") || t.starts_with("NO [UNAVAILABLE]"),
            "{t}"
        );
    }
    // 127.0.0.1 is now rate limited; another client address still logs in.
    let mut c = Imap::connect(port);
    let (_, t) = c.cmd("LOGIN alice alice-pw");
    assert!(t.starts_with("NO [UNAVAILABLE]"), "rate limited: {t}");
    let mut other = Imap::over(connect_from("127.0.0.2", port));
    let (_, t) = other.cmd("LOGIN alice alice-pw");
    assert!(t.starts_with("OK"), "{t}");
    // A non-synchronizing literal beyond the limit closes the session cleanly.
    let mut c = Imap::connect(port);
    c.send_raw(b"z APPEND INBOX {999999999+}\r\n");
    let l = c.read_line();
    assert!(l.starts_with("* BYE [TOOBIG]"), "{l}");
    // An overlong line is refused and the session goes on.
    let mut c = Imap::connect(port);
    let long = format!("q1 NOOP {}\r\nq2 NOOP\r\n", "x".repeat(100_000));
    c.send_raw(long.as_bytes());
    let (_, t) = c.until_tagged("q1");
    assert!(t.starts_with("BAD [TOOBIG]"), "{t}");
    let (_, t) = c.until_tagged("q2");
    assert!(t.starts_with("OK"), "{t}");
    // SMTP is unaffected.
    assert!(s.smtp().banner.starts_with("220"));
}

#[test]
fn imaplib_session_like_a_mail_client() {
    let s = server();
    seed_imap_fixtures(&s, "alice");
    let (ok, out) = run_py(
        "imap_client.py",
        &[
            "session".into(),
            s.imap.to_string(),
            "alice".into(),
            "alice-pw".into(),
        ],
    );
    assert!(ok, "{out}");
    for want in [
        "LIST OK 6",
        "SELECT OK 3",
        "FETCH OK =?UTF-8?B?UmU6IE1lbnUgZsO8ciBoZXV0ZQ==?=|Fwd: travel plans|Hello",
        "SEARCH OK 3",
        "APPEND OK [APPENDUID",
        "COPY OK [COPYUID",
        "EXPUNGE OK [b'1']",
        "STATUS OK Archive (MESSAGES 1 UNSEEN 1)",
        "LOGOUT ok",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
    // The appended message is a Maildir file with its flag in the name.
    let sent = s.maildir("users/alice").join(".Sent/cur");
    let names: Vec<String> = std::fs::read_dir(&sent)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() == 1 && names[0].ends_with(":2,S"), "{names:?}");
}

#[test]
fn mbsync_syncs_a_mailbox_both_ways() {
    if std::process::Command::new("mbsync")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("mbsync not installed: skipped");
        return;
    }
    let s = server();
    deliver(&s, "alice@example.test", "from the server");
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("mail");
    std::fs::create_dir_all(local.join("INBOX/cur")).unwrap();
    std::fs::create_dir_all(local.join("INBOX/new")).unwrap();
    std::fs::create_dir_all(local.join("INBOX/tmp")).unwrap();
    std::fs::write(
        local.join("INBOX/cur/1700000000.local1.host:2,S"),
        "Subject: written locally\r\nFrom: alice@example.test\r\n\r\nlocal body\r\n",
    )
    .unwrap();
    let rc = dir.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "IMAPAccount pc\nHost 127.0.0.1\nPort {}\nUser alice\nPass alice-pw\nSSLType None\n\
             AuthMechs LOGIN\n\nIMAPStore remote\nAccount pc\n\nMaildirStore local\n\
             Path {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\nChannel c\nFar :remote:\nNear :local:\n\
             Patterns INBOX\nCreate Both\nSync All\nExpunge Both\nSyncState *\n",
            s.imap,
            local.display(),
            local.display()
        ),
    )
    .unwrap();
    let run = || {
        let out = std::process::Command::new("mbsync")
            .args(["-c", rc.to_str().unwrap(), "-a"])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "mbsync failed:\n{text}");
    };
    run();
    // Server → local.
    let local_msgs = maildir_messages(&local.join("INBOX"));
    assert_eq!(local_msgs.len(), 2, "both messages locally");
    assert!(
        local_msgs
            .iter()
            .any(|m| String::from_utf8_lossy(m).contains("from the server"))
    );
    // Local → server, with its \Seen flag.
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("SELECT INBOX");
    let f = c.ok("FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
    assert!(f.contains("written locally"), "{f}");
    let seen_line = f
        .lines()
        .position(|l| l.contains("written locally"))
        .unwrap();
    assert!(
        f.lines()
            .nth(seen_line.saturating_sub(1))
            .unwrap_or("")
            .contains("\\Seen")
            || f.contains("\\Seen"),
        "{f}"
    );
    // A flag set on the server reaches the local copy at the next sync.
    c.ok("STORE 1:* +FLAGS (\\Flagged)");
    drop(c);
    run();
    let flagged = std::fs::read_dir(local.join("INBOX/cur"))
        .unwrap()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.split(":2,").nth(1).is_some_and(|f| f.contains('F'))
        })
        .count();
    assert_eq!(flagged, 2, "flags synced to the local Maildir");
}

/// mutt (in a terminal made by script(1)) opens the INBOX over IMAP with `extra` settings,
/// saves the first message to an mbox file and quits: what it saved, or `None` when mutt is
/// not installed.
fn mutt_saves_first_message(s: &TestServer, extra: &str) -> Option<String> {
    let have = |c: &str| {
        std::process::Command::new("sh")
            .args(["-c", &format!("command -v {c}")])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("mutt") || !have("script") {
        eprintln!("mutt or script not installed: skipped");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let rc = dir.path().join("muttrc");
    let saved = dir.path().join("saved.mbox");
    std::fs::write(
        &rc,
        format!(
            "set folder=imap://alice:alice-pw@127.0.0.1:{}/\nset spoolfile=+INBOX\n\
         set ssl_starttls=no\nset ssl_force_tls=no\nset imap_passive=no\nset mbox_type=mbox\n\
         set confirmcreate=no\nset confirmappend=no\nset quit=yes\nset move=no\nset delete=no\n\
         set wait_key=no\n{extra}",
            s.imap
        ),
    )
    .unwrap();
    let cmd = format!(
        "mutt -n -F {} -f imap://alice:alice-pw@127.0.0.1:{}/INBOX -e 'push \"<save-message>{}<enter><quit>\"'",
        rc.display(),
        s.imap,
        saved.display()
    );
    let out = std::process::Command::new("timeout")
        .args(["30", "script", "-qec", &cmd, "/dev/null"])
        .env("TERM", "xterm")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let got = std::fs::read_to_string(&saved).unwrap_or_default();
    if got.is_empty() {
        eprintln!(
            "mutt saved nothing (status {}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Some(got)
}

#[test]
fn mutt_reads_the_inbox_non_interactively() {
    let s = server();
    deliver(&s, "alice@example.test", "read by mutt");
    if let Some(got) = mutt_saves_first_message(&s, "") {
        assert!(got.contains("Subject: read by mutt"), "{got}");
    }
}

/// mutt 2.x speaks COMPRESS=DEFLATE (RFC 4978) when `imap_deflate` is set.
#[test]
fn mutt_reads_through_compress_deflate() {
    let s = server();
    deliver(&s, "alice@example.test", "read compressed");
    if let Some(got) = mutt_saves_first_message(&s, "set imap_deflate=yes\n") {
        assert!(got.contains("Subject: read compressed"), "{got}");
        let log = s.wait_log("imap: COMPRESS=DEFLATE on");
        let line = log
            .lines()
            .find(|l| l.contains("COMPRESS=DEFLATE on"))
            .unwrap_or_default();
        assert!(line.contains("alice"), "{line}");
    }
}

#[test]
fn body_search_answers_from_the_full_text_index() {
    let s = server();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("SELECT INBOX");
    // Indexed at delivery (the mailbox is known to IMAP), HTML and QP decoded.
    let mut smtp = s.smtp();
    let body = "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\
                Subject: html\r\n\r\n<p>The <b>zanzi=\r\nbar</b> needle &amp; more</p>\r\n";
    let (code, t) = smtp.send_mail("x@remote.test", &["alice@example.test"], body);
    assert_eq!(code, 250, "{t}");
    deliver(&s, "alice@example.test", "plain one");
    c.ok("NOOP");
    let r = c.ok("UID SEARCH BODY \"zanzibar needle\"");
    assert_eq!(r, "* SEARCH 1");
    let r = c.ok("SEARCH TEXT zanzi");
    assert_eq!(r, "* SEARCH 1", "word prefixes match");
    // RFC 9051 §6.4.4: substrings anywhere in a word, and across the rendered HTML.
    assert_eq!(c.ok("SEARCH BODY anzib"), "* SEARCH 1");
    assert_eq!(c.ok("SEARCH BODY \"bar needle &\""), "* SEARCH 1");
    assert_eq!(c.ok("SEARCH BODY \"bar  needles\""), "* SEARCH");
    // Proof the index answers: the file no longer says it, the index still does.
    let file = std::fs::read_dir(s.maildir("users/alice").join("new"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains("zanzi"))
        .unwrap();
    std::fs::write(&file, b"Subject: html\r\n\r\nnothing here\r\n").unwrap();
    let r = c.ok("SEARCH BODY zanzibar");
    assert_eq!(r, "* SEARCH 1");
    // Expunged messages are never returned.
    c.ok("STORE 1 +FLAGS (\\Deleted)");
    c.ok("EXPUNGE");
    let r = c.ok("SEARCH BODY zanzibar");
    assert_eq!(r, "* SEARCH");
    // APPEND and COPY are indexed too.
    c.ok("APPEND INBOX {33+}\r\nSubject: a\r\n\r\nappended kumquat\r\n");
    c.ok("NOOP");
    let r = c.ok("UID SEARCH BODY kumquat");
    assert_eq!(r, "* SEARCH 3");
    c.ok("UID COPY 3 Archive");
    c.ok("SELECT Archive");
    assert_eq!(c.ok("SEARCH BODY kumquat"), "* SEARCH 1");
}

/// RFC 9051 §7.3.5: ten clients add keywords to the same messages at once; each checks, with
/// its own parsing of the untagged responses (not postcore's codec), that every keyword a
/// FETCH shows was named by a FLAGS response it received before.
#[test]
fn concurrent_keywords_always_come_after_flags() {
    let s = server();
    for i in 0..3 {
        deliver(&s, "alice@example.test", &format!("kw {i}"));
    }
    assert_eq!(s.wait_messages("users/alice", 3).len(), 3);
    let port = s.imap;
    let clients: Vec<_> = (0..10)
        .map(|n| {
            std::thread::spawn(move || {
                let mut c = Imap::login(port, "alice", "alice-pw");
                let mut flags: std::collections::BTreeSet<String> = Default::default();
                let mut shown = 0usize;
                let mut check = |lines: &[String]| {
                    for l in lines {
                        if let Some(rest) = l.strip_prefix("* FLAGS (") {
                            flags.extend(rest.trim_end_matches(')').split(' ').map(String::from));
                        } else if l.contains(" FETCH (") {
                            let Some(start) = l.find("FLAGS (") else {
                                continue;
                            };
                            let list = &l[start + 7..];
                            let list = &list[..list.find(')').unwrap()];
                            // Keywords only: system flags (\Recent among them) are not listed.
                            for k in list
                                .split(' ')
                                .filter(|k| !k.is_empty() && !k.starts_with('\\'))
                            {
                                assert!(
                                    flags.contains(k),
                                    "client {n}: {k} in {l:?} before FLAGS named it ({flags:?})"
                                );
                                shown += 1;
                            }
                        }
                    }
                };
                let (u, t) = c.cmd("SELECT INBOX");
                assert!(t.starts_with("OK"), "{t}");
                check(&u);
                for round in 0..15 {
                    let msg = 1 + (round + n) % 3;
                    let (u, t) = c.cmd(&format!("STORE {msg} +FLAGS (kw{n}x{round})"));
                    assert!(t.starts_with("OK"), "{t}");
                    check(&u);
                    let (u, _) = c.cmd("NOOP");
                    check(&u);
                }
                let (u, _) = c.cmd("FETCH 1:3 (FLAGS)");
                check(&u);
                shown
            })
        })
        .collect();
    let shown: usize = clients.into_iter().map(|h| h.join().unwrap()).sum();
    assert!(
        shown > 150,
        "the clients saw keywords in FETCH responses: {shown}"
    );
}

/// RFC 3516 and RFC 9051 §4.3: a part with a NUL octet (appended as a literal8) comes back
/// whole as a literal8 only for BINARY; BODY[] and RFC822 use a normal literal, which may not
/// carry NUL.
#[test]
fn literals_never_carry_nul_outside_binary() {
    use std::io::{Read, Write};
    let s = server();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let msg = b"Subject: nul\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\na\0b\r\n";
    c.send_raw(format!("a1 APPEND INBOX ~{{{}+}}\r\n", msg.len()).as_bytes());
    c.send_raw(msg);
    c.send_raw(b"\r\n");
    let (_, t) = c.until_tagged("a1");
    assert!(t.starts_with("OK"), "{t}");
    c.ok("SELECT INBOX");
    drop(c);
    // Raw octets from here: the answers hold 0x80 and NUL, which are not UTF-8.
    let mut sock = std::net::TcpStream::connect(("127.0.0.1", s.imap)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let cmds = b"b1 LOGIN alice alice-pw\r\nb2 SELECT INBOX\r\nb3 FETCH 1 (BODY.PEEK[1] BINARY.PEEK[1] RFC822)\r\nb4 LOGOUT\r\n";
    sock.write_all(cmds).unwrap();
    let mut got = Vec::new();
    let _ = sock.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got);
    assert!(text.contains("b3 OK"), "{text}");
    let has = |needle: &[u8]| got.windows(needle.len()).any(|w| w == needle);
    let body = has(b"BODY[1] {5}\r\na\x80b\r");
    assert!(
        body,
        "BODY[1] is a normal literal with 0x80 for NUL: {text}"
    );
    let binary = has(b"BINARY[1] ~{5}\r\na\0b");
    assert!(binary, "BINARY[1] is a literal8 with the NUL: {text}");
    let fetch_start = got.windows(9).position(|w| w == b"* 1 FETCH").unwrap();
    let fetch_end = got.windows(5).position(|w| w == b"b3 OK").unwrap();
    let nuls = got[fetch_start..fetch_end]
        .iter()
        .filter(|&&b| b == 0)
        .count();
    assert_eq!(nuls, 1, "only the literal8 carries a NUL: {text}");
}
