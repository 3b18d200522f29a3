//! URLAUTH (RFC 4467), URL-PARTIAL and BURL (RFC 4468) over the real server: a client
//! saves a draft over IMAP, GENURLAUTH signs a URL for it, and Python's smtplib submits the
//! message with BURL (alone, and after a BDAT chunk, taking one part); URLFETCH answers
//! only the party a URL was issued for; RESETKEY, expiry and a tampered token revoke it.

mod common;

use common::{Imap, TestServer, python, run_py};

const HOST: &str = "mx.example.test";

const DRAFT: &str = "From: alice@example.test\r\nTo: bob@example.test\r\nSubject: draft\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain\r\n\r\nthe report\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
the appendix\r\n--b--\r\n";

/// GENURLAUTH for `rump`; the full URL it returns.
fn sign(c: &mut Imap, rump: &str) -> String {
    let u = c.ok(&format!("GENURLAUTH \"{rump}\" INTERNAL"));
    let full = u
        .strip_prefix("* GENURLAUTH \"")
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{u}"));
    assert!(full.starts_with(rump), "{full}");
    assert!(full[rump.len()..].starts_with(":INTERNAL:"), "{full}");
    full.to_string()
}

/// URLFETCH of one URL: the literal's content, or None for NIL.
fn fetch(c: &mut Imap, url: &str) -> Option<String> {
    let u = c.ok(&format!("URLFETCH \"{url}\""));
    let rest = u
        .strip_prefix(&format!("* URLFETCH \"{url}\" "))
        .unwrap_or_else(|| panic!("{u}"));
    if rest == "NIL" {
        return None;
    }
    let open = rest.find("}\r\n").unwrap_or_else(|| panic!("{rest}"));
    let n: usize = rest[1..open].parse().expect("literal length");
    // The test client's line reader drops the CRLF that ends the response (and so a
    // literal's own trailing CRLF): put it back from the literal's length.
    let mut data = rest[open + 3..].to_string();
    while data.len() < n {
        data.push_str(if data.len() + 2 <= n { "\r\n" } else { "\n" });
    }
    assert_eq!(data.len(), n, "{rest}");
    Some(data)
}

#[test]
fn urls_are_signed_fetched_and_revoked() {
    let s = TestServer::start_basic();
    let mut alice = Imap::login(s.imap, "alice", "alice-pw");
    assert!(alice.ok("CAPABILITY").contains(" URLAUTH URL-PARTIAL"));
    let (_, t) = alice.cmd(&format!("APPEND Drafts {{{}+}}\r\n{DRAFT}", DRAFT.len()));
    assert!(t.starts_with("OK"), "{t}");
    let base = format!("imap://alice@{HOST}/Drafts/;uid=1");
    // RFC 4467 §7.3: only the party named by the access identifier gets the content.
    let mine = sign(&mut alice, &format!("{base};urlauth=user+alice"));
    assert_eq!(fetch(&mut alice, &mine).as_deref(), Some(DRAFT));
    let mut bob = Imap::login(s.imap, "bob", "bob-pw");
    assert_eq!(fetch(&mut bob, &mine), None, "issued for alice only");
    let any = sign(&mut alice, &format!("{base};urlauth=authuser"));
    assert_eq!(fetch(&mut bob, &any).as_deref(), Some(DRAFT));
    // URL-PARTIAL and sections.
    let part = sign(&mut alice, &format!("{base}/;section=2;urlauth=authuser"));
    assert_eq!(fetch(&mut bob, &part).as_deref(), Some("the appendix"));
    let partial = sign(&mut alice, &format!("{base}/;partial=6.5;urlauth=authuser"));
    assert_eq!(fetch(&mut bob, &partial).as_deref(), Some("alice"));
    // A submit+ URL is for the submission server, not for an IMAP login.
    let submit = sign(&mut alice, &format!("{base};urlauth=submit+alice"));
    assert_eq!(fetch(&mut alice, &submit), None);
    // A changed token, an expired URL, another server: NIL.
    let tampered = format!("{}0", &any[..any.len() - 1]);
    let tampered = if tampered == any {
        format!("{}1", &any[..any.len() - 1])
    } else {
        tampered
    };
    assert_eq!(fetch(&mut bob, &tampered), None);
    let expired = sign(
        &mut alice,
        &format!("{base};expire=2001-01-01T00:00:00Z;urlauth=authuser"),
    );
    assert_eq!(fetch(&mut bob, &expired), None);
    let future = sign(
        &mut alice,
        &format!("{base};expire=2999-01-01T00:00:00+02:00;urlauth=authuser"),
    );
    assert!(fetch(&mut bob, &future).is_some());
    // GENURLAUTH's refusals: a full URL is a BAD; another user's mailbox, another host,
    // a missing message and an unknown mechanism are NO.
    let (_, t) = alice.cmd(&format!("GENURLAUTH \"{any}\" INTERNAL"));
    assert!(t.starts_with("BAD"), "{t}");
    for (rump, mech) in [
        (
            format!("imap://bob@{HOST}/INBOX/;uid=1;urlauth=authuser"),
            "INTERNAL",
        ),
        (
            "imap://alice@elsewhere.test/Drafts/;uid=1;urlauth=authuser".to_string(),
            "INTERNAL",
        ),
        (
            format!("imap://alice@{HOST}/Drafts/;uid=9;urlauth=authuser"),
            "INTERNAL",
        ),
        (format!("{base};urlauth=authuser"), "XSHA1"),
    ] {
        let (_, t) = alice.cmd(&format!("GENURLAUTH \"{rump}\" {mech}"));
        assert!(t.starts_with("NO"), "{rump} {mech}: {t}");
    }
    // RESETKEY revokes every URL of the mailbox; new ones work.
    let (_, t) = alice.cmd("RESETKEY Drafts INTERNAL");
    assert!(t.starts_with("OK [URLMECH INTERNAL]"), "{t}");
    assert_eq!(fetch(&mut bob, &any), None);
    let again = sign(&mut alice, &format!("{base};urlauth=authuser"));
    assert_ne!(again, any);
    assert!(fetch(&mut bob, &again).is_some());
    alice.ok("RESETKEY");
    assert_eq!(fetch(&mut bob, &again), None);
}

#[test]
fn burl_submits_the_draft() {
    if python().is_none() {
        eprintln!("python3 missing: BURL test skipped");
        return;
    }
    let s = TestServer::start_basic();
    let mut alice = Imap::login(s.imap, "alice", "alice-pw");
    let (_, t) = alice.cmd(&format!("APPEND Drafts {{{}+}}\r\n{DRAFT}", DRAFT.len()));
    assert!(t.starts_with("OK"), "{t}");
    let base = format!("imap://alice@{HOST}/Drafts/;uid=1");
    let whole = sign(&mut alice, &format!("{base};urlauth=submit+alice"));
    let port = s.submissions.to_string();
    let send = |user: &str, pw: &str, chunks: &[String]| {
        let mut args: Vec<String> = [port.as_str(), user, pw, "alice@example.test"]
            .map(String::from)
            .to_vec();
        args.push("bob@example.test".into());
        args.extend(chunks.iter().cloned());
        run_py("burl_client.py", &args)
    };
    // The whole draft by URL (RFC 4468 §5's first example).
    let (ok, out) = send("alice", "alice-pw", &[format!("burl:{whole}")]);
    assert!(ok, "{out}");
    assert!(
        out.contains("EHLO-before (none)") || out.contains("EHLO-before \n"),
        "{out}"
    );
    assert!(out.contains("EHLO-after imap"), "{out}");
    assert!(out.contains("BURL 250"), "{out}");
    let got = s.wait_messages("users/bob", 1);
    let text = String::from_utf8_lossy(&got[0]).into_owned();
    assert!(text.ends_with(DRAFT), "{text}");
    // A new header by BDAT, then one part of the draft by BURL (§5's second example).
    let part = sign(
        &mut alice,
        &format!("{base}/;section=1;urlauth=submit+alice"),
    );
    let (ok, out) = send(
        "alice",
        "alice-pw",
        &[
            "bdat:From: alice@example.test\\r\\nSubject: just the report\\r\\n\\r\\n".into(),
            format!("burl:{part}"),
        ],
    );
    assert!(
        ok && out.contains("BDAT 250") && out.contains("BURL 250"),
        "{out}"
    );
    let got = s.wait_messages("users/bob", 2);
    let text = got
        .iter()
        .map(|m| String::from_utf8_lossy(m).into_owned())
        .find(|m| m.contains("just the report"))
        .expect("second message");
    assert!(
        text.ends_with("Subject: just the report\r\n\r\nthe report"),
        "{text}"
    );
    // Another user's submission cannot use alice's submit+alice URL; nor after RESETKEY.
    let (_, out) = send("bob", "bob-pw", &[format!("burl:{whole}")]);
    assert!(out.contains("BURL 554 5.6.6"), "{out}");
    alice.ok("RESETKEY");
    let (_, out) = send("alice", "alice-pw", &[format!("burl:{whole}")]);
    assert!(out.contains("BURL 554 5.6.6"), "{out}");
    assert_eq!(s.messages("users/bob").len(), 2, "nothing more delivered");
}
