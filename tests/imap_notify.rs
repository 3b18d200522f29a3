//! NOTIFY (RFC 5465) over the real server: events pushed to a client that sends nothing —
//! new mail by SMTP and by another client's APPEND, flag changes, expunges (at once and
//! SELECTED-DELAYED), other mailboxes' STATUS, mailbox names, subscriptions and metadata —
//! in IDLE too; the session's own changes are not echoed; the command's errors.

mod common;

use common::{Imap, TestServer};

/// Reads unsolicited lines until one starts with `prefix` (the client sends nothing).
fn wait_for(c: &mut Imap, prefix: &str) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let l = c.read_line();
        assert!(
            !l.is_empty(),
            "connection closed waiting for {prefix:?}: {got:?}"
        );
        let done = l.starts_with(prefix);
        got.push(l);
        if done {
            return got;
        }
    }
}

/// The untagged lines a NOOP brings (what was pending, nothing pushed).
fn noop(c: &mut Imap) -> Vec<String> {
    let (u, t) = c.cmd("NOOP");
    assert!(t.starts_with("OK"), "{t}");
    u
}

#[test]
fn selected_and_other_mailboxes_are_pushed() {
    let s = TestServer::start_basic();
    let mut b = Imap::login(s.imap, "alice", "alice-pw");
    b.ok("CREATE Lists");
    b.append_message("Lists", "first", "");
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    assert!(a.ok("CAPABILITY").contains(" NOTIFY"));
    // IMAP4rev2: no \Recent in the FETCH responses below.
    a.ok("ENABLE IMAP4rev2");
    a.ok("SELECT INBOX");
    // RFC 5465 §3.1's example, with the STATUS indicator.
    let u = a.ok(
        "NOTIFY SET STATUS (SELECTED (MessageNew (UID BODY.PEEK[HEADER.FIELDS (From Subject)]) \
         MessageExpunge FlagChange)) (PERSONAL (MessageNew MessageExpunge))",
    );
    assert!(
        u.contains("* STATUS Lists (MESSAGES 1 UIDNEXT 2 UIDVALIDITY "),
        "STATUS of the other watched mailboxes: {u}"
    );
    assert!(!u.contains("STATUS INBOX"), "not of the selected one: {u}");

    // New mail by SMTP: EXISTS, then the FETCH MessageNew asked for, with no command sent.
    let (code, _) = s.smtp().send_mail(
        "carol@example.org",
        &["alice@example.test"],
        "From: carol@example.org\r\nSubject: pushed\r\n\r\nbody\r\n",
    );
    assert_eq!(code, 250);
    let got = wait_for(&mut a, "* 1 FETCH");
    assert!(got.contains(&"* 1 EXISTS".to_string()), "{got:?}");
    let fetch = got.last().unwrap();
    assert!(
        fetch.contains("UID 1 BODY[HEADER.FIELDS (From Subject)]")
            && fetch.contains("Subject: pushed"),
        "{fetch}"
    );
    // Another client's APPEND to another mailbox: a STATUS (§5.2).
    b.append_message("Lists", "second", "");
    let got = wait_for(&mut a, "* STATUS");
    assert_eq!(
        got.last().unwrap(),
        "* STATUS Lists (MESSAGES 2 UIDNEXT 3 UNSEEN 2)",
        "{got:?}"
    );
    // A flag change in the selected mailbox: FETCH with UID and FLAGS (§5.1).
    b.ok("SELECT INBOX");
    b.ok("UID STORE 1 +FLAGS (\\Flagged)");
    let got = wait_for(&mut a, "* 1 FETCH");
    assert_eq!(got.last().unwrap(), "* 1 FETCH (UID 1 FLAGS (\\Flagged))");
    // An expunge: EXPUNGE at once with SELECTED (§5.3).
    b.ok("UID STORE 1 +FLAGS (\\Deleted)");
    wait_for(&mut a, "* 1 FETCH");
    b.ok("EXPUNGE");
    let got = wait_for(&mut a, "* 1 EXPUNGE");
    assert_eq!(got.len(), 1, "{got:?}");
    // In IDLE the same events arrive (§4).
    a.send_raw(b"I1 IDLE\r\n");
    assert!(a.read_line().starts_with("+ "));
    b.append_message("Lists", "third", "");
    let got = wait_for(&mut a, "* STATUS");
    assert_eq!(
        got.last().unwrap(),
        "* STATUS Lists (MESSAGES 3 UIDNEXT 4 UNSEEN 3)"
    );
    a.send_raw(b"DONE\r\n");
    let (_, t) = a.until_tagged("I1");
    assert!(t.starts_with("OK"), "{t}");
    // The client's own APPEND is not echoed back (§5); NOTIFY NONE stops the events.
    let (u, _) = a.cmd("APPEND Lists {7+}\r\nx: y\r\n\r\n");
    assert!(!u.iter().any(|l| l.starts_with("* STATUS")), "{u:?}");
    assert!(noop(&mut a).iter().all(|l| !l.starts_with("* STATUS")));
    a.ok("NOTIFY NONE");
    b.append_message("Lists", "fourth", "");
    b.ok("NOOP");
    assert!(noop(&mut a).iter().all(|l| !l.starts_with("* STATUS")));
}

#[test]
fn selected_delayed_holds_expunges_until_a_command() {
    let s = TestServer::start_basic();
    let mut b = Imap::login(s.imap, "alice", "alice-pw");
    b.append_message("INBOX", "one", "");
    b.append_message("INBOX", "two", "");
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    a.ok("ENABLE IMAP4rev2");
    a.ok("SELECT INBOX");
    a.ok("NOTIFY SET (SELECTED-DELAYED (MessageNew MessageExpunge FlagChange))");
    b.ok("SELECT INBOX");
    b.ok("STORE 1 +FLAGS (\\Deleted)");
    let got = wait_for(&mut a, "* 1 FETCH");
    assert_eq!(got.last().unwrap(), "* 1 FETCH (UID 1 FLAGS (\\Deleted))");
    b.ok("EXPUNGE");
    // A new message after the expunge: its EXISTS comes at once, the EXPUNGE does not
    // (§6.1.2: the message numbers stay as the client knows them).
    b.append_message("INBOX", "three", "");
    let got = wait_for(&mut a, "* 3 EXISTS");
    assert!(!got.iter().any(|l| l.contains("EXPUNGE")), "{got:?}");
    let u = noop(&mut a);
    assert!(u.contains(&"* 1 EXPUNGE".to_string()), "{u:?}");
}

#[test]
fn mailbox_names_subscriptions_and_metadata() {
    let s = TestServer::start_basic();
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    let mut b = Imap::login(s.imap, "alice", "alice-pw");
    a.ok(
        "NOTIFY SET (PERSONAL (MailboxName SubscriptionChange MailboxMetadataChange)) \
         (MAILBOXES Projects (MessageNew MessageExpunge)) (SUBTREE Archive NONE)",
    );
    // §5.4: created, renamed (OLDNAME), deleted (\NonExistent).
    b.ok("CREATE Projects");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST (\\HasNoChildren) \"/\" Projects"
    );
    b.ok("CREATE Projects/2027");
    let got = wait_for(&mut a, "* LIST");
    assert_eq!(
        got.last().unwrap(),
        "* LIST (\\HasNoChildren) \"/\" Projects/2027"
    );
    b.ok("RENAME Projects/2027 Projects/2028");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST (\\HasNoChildren) \"/\" Projects/2028 (\"OLDNAME\" (Projects/2027))"
    );
    b.ok("DELETE Projects/2028");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST (\\NonExistent) \"/\" Projects/2028"
    );
    // §5.5: subscription changes, with \Subscribed when subscribed.
    b.ok("SUBSCRIBE Projects");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST (\\Subscribed) \"/\" Projects"
    );
    b.ok("UNSUBSCRIBE Projects");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST () \"/\" Projects"
    );
    // §5.6: the entries that changed, RFC 5464's unsolicited METADATA.
    b.ok("SETMETADATA Projects (/private/comment \"weekly\")");
    assert_eq!(
        wait_for(&mut a, "* METADATA").last().unwrap(),
        "* METADATA Projects /private/comment"
    );
    // The MAILBOXES group: Projects' new messages as STATUS.
    b.append_message("Projects", "plan", "");
    assert_eq!(
        wait_for(&mut a, "* STATUS").last().unwrap(),
        "* STATUS Projects (MESSAGES 1 UIDNEXT 2 UNSEEN 1)"
    );
    // The client's own CREATE is not echoed.
    let (u, t) = a.cmd("CREATE Mine");
    assert!(t.starts_with("OK") && u.is_empty(), "{u:?}");
    assert!(noop(&mut a).is_empty());
}

#[test]
fn notify_errors() {
    let s = TestServer::start_basic();
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    for bad in [
        "NOTIFY SET (SELECTED (MessageNew))",
        "NOTIFY SET (SELECTED (FlagChange))",
        "NOTIFY SET (SELECTED (MessageNew MessageExpunge MailboxName))",
        "NOTIFY SET (SELECTED NONE) (SELECTED-DELAYED (MessageNew MessageExpunge))",
        "NOTIFY SET (INBOXES (MessageNew (UID) MessageExpunge))",
        "NOTIFY SET (NOWHERE (MessageNew MessageExpunge))",
        "NOTIFY SET",
        "NOTIFY MAYBE",
    ] {
        let (_, t) = a.cmd(bad);
        assert!(t.starts_with("BAD"), "{bad}: {t}");
    }
    // §3.1: unsupported events are a NO naming the supported ones.
    for unsupported in [
        "NOTIFY SET (PERSONAL (MessageNew MessageExpunge AnnotationChange))",
        "NOTIFY SET (PERSONAL (Foo))",
    ] {
        let (_, t) = a.cmd(unsupported);
        assert!(
            t.starts_with("NO [BADEVENT (MessageNew MessageExpunge FlagChange MailboxName "),
            "{t}"
        );
    }
    let (_, t) = Imap::connect(s.imap).cmd("NOTIFY NONE");
    assert!(t.starts_with("BAD"), "only once logged in: {t}");
    // A named mailbox that does not exist is ignored (§6.6).
    a.ok("NOTIFY SET STATUS (MAILBOXES (nosuch INBOX) (MessageNew MessageExpunge))");
}

/// RFC 5465 §3.1 and §5.8: past 1,000 watched mailboxes NOTIFY SET is refused, and a set
/// that grows past it turns notifications off with an untagged NOTIFICATIONOVERFLOW. (A user
/// holds at most 1,000 mailboxes; the one more is a mailbox another user shares.)
#[test]
fn too_many_mailboxes_overflow() {
    let s = TestServer::start_basic();
    let mut bob = Imap::login(s.imap, "bob", "bob-pw");
    bob.ok("CREATE shared");
    bob.ok("SETACL shared alice lr");
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    // As many mailboxes as a user may have: CREATE until the limit answers.
    let mut batch = String::new();
    for i in 0..1000 {
        batch.push_str(&format!("c{i} CREATE box{i}\r\n"));
    }
    a.send_raw(batch.as_bytes());
    let mut refused = 0;
    for i in 0..1000 {
        let (_, t) = a.until_tagged(&format!("c{i}"));
        refused += usize::from(t.starts_with("NO [LIMIT]"));
    }
    assert!(refused > 0, "the per-user limit was reached");
    a.ok("NOTIFY SET (PERSONAL (MessageNew MessageExpunge)) (SUBSCRIBED (MessageNew MessageExpunge))");
    let mut b = Imap::login(s.imap, "alice", "alice-pw");
    b.ok("SUBSCRIBE Shared/bob/shared");
    wait_for(&mut a, "* OK [NOTIFICATIONOVERFLOW]");
    // Off now: nothing more is pushed; a new NOTIFY SET over them all is refused.
    bob.ok("APPEND shared {7+}\r\nx: y\r\n\r\n");
    assert!(noop(&mut a).is_empty());
    let (_, t) = a.cmd("NOTIFY SET (PERSONAL (MessageNew MessageExpunge)) (SUBSCRIBED (MessageNew MessageExpunge))");
    assert!(t.starts_with("NO [NOTIFICATIONOVERFLOW]"), "{t}");
    a.ok("NOTIFY SET (MAILBOXES Shared/bob/shared (MessageNew MessageExpunge))");
}

/// §6.4: the SUBSCRIBED filter follows the subscriptions — a mailbox subscribed elsewhere
/// (here another user's, shared) is announced and then watched.
#[test]
fn subscribed_filter_follows_subscriptions() {
    let s = TestServer::start_basic();
    let mut bob = Imap::login(s.imap, "bob", "bob-pw");
    bob.ok("CREATE shared");
    bob.ok("SETACL shared alice lr");
    let mut a = Imap::login(s.imap, "alice", "alice-pw");
    a.ok("NOTIFY SET (SUBSCRIBED (MessageNew MessageExpunge SubscriptionChange))");
    let mut b = Imap::login(s.imap, "alice", "alice-pw");
    b.ok("SUBSCRIBE Shared/bob/shared");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST (\\Subscribed) \"/\" Shared/bob/shared"
    );
    bob.ok("APPEND shared {7+}\r\nx: y\r\n\r\n");
    assert_eq!(
        wait_for(&mut a, "* STATUS").last().unwrap(),
        "* STATUS Shared/bob/shared (MESSAGES 1 UIDNEXT 2 UNSEEN 1)"
    );
    b.ok("UNSUBSCRIBE Shared/bob/shared");
    assert_eq!(
        wait_for(&mut a, "* LIST").last().unwrap(),
        "* LIST () \"/\" Shared/bob/shared"
    );
    bob.ok("APPEND shared {7+}\r\nx: y\r\n\r\n");
    assert!(noop(&mut a).is_empty(), "no longer watched");
}
