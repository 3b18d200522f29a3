//! METADATA (RFC 5464) over the real server: the RFC's GETMETADATA/SETMETADATA forms,
//! private and shared scopes, DEPTH and MAXSIZE, the limits, binary values, RENAME and
//! DELETE, and a value that survives a restart.

mod common;

use common::{Imap, TestServer};

fn server() -> TestServer {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    s
}

/// Sends raw octets as command `tag` and returns (untagged, tagged).
fn raw(c: &mut Imap, tag: &str, data: &[u8]) -> (String, String) {
    c.send_raw(data);
    let (u, t) = c.until_tagged(tag);
    (u.join("\n"), t)
}

#[test]
fn entries_scopes_depth_and_sizes() {
    let s = server();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert!(c.ok("CAPABILITY").contains(" METADATA"));
    // §4.3 / §4.2: set and read back, one entry or a list; missing entries are NIL.
    c.ok("SETMETADATA INBOX (/private/comment \"My own comment\")");
    assert_eq!(
        c.ok("GETMETADATA INBOX /private/comment"),
        "* METADATA INBOX (\"/private/comment\" \"My own comment\")"
    );
    assert_eq!(
        c.ok("GETMETADATA INBOX (/private/Comment /shared/comment)"),
        "* METADATA INBOX (\"/private/comment\" \"My own comment\" \"/shared/comment\" NIL)",
        "names compare without case"
    );
    // Server entries: /shared/admin names the postmaster; server shared entries are read-only.
    let admin = c.ok("GETMETADATA \"\" /shared/admin");
    assert!(
        admin.contains("\"/shared/admin\" \"mailto:postmaster@"),
        "{admin}"
    );
    let (_, t) = c.cmd("SETMETADATA \"\" (/shared/comment \"x\")");
    assert!(t.starts_with("NO [NOPERM]"), "{t}");
    c.ok("SETMETADATA \"\" (/private/vendor/example/theme \"dark\")");
    assert!(
        c.ok("GETMETADATA \"\" /private/vendor/example/theme")
            .contains("\"dark\"")
    );
    // §4.2.2 DEPTH.
    c.ok("SETMETADATA INBOX (/private/v/a \"1\" /private/v/b/c \"2\")");
    assert_eq!(
        c.ok("GETMETADATA (DEPTH 1) INBOX /private/v"),
        "* METADATA INBOX (\"/private/v\" NIL \"/private/v/a\" \"1\")"
    );
    let all = c.ok("GETMETADATA (DEPTH infinity) INBOX /private/v");
    assert!(all.contains("\"/private/v/a\" \"1\"") && all.contains("\"/private/v/b/c\" \"2\""));
    // §4.2.1 MAXSIZE: a longer value is left out and its length reported.
    let big = "b".repeat(2000);
    let (_, t) = raw(
        &mut c,
        "m1",
        format!(
            "m1 SETMETADATA INBOX (/private/big {{{}+}}\r\n{big})\r\n",
            big.len()
        )
        .as_bytes(),
    );
    assert!(t.starts_with("OK"), "{t}");
    let (u, t) = c.cmd("GETMETADATA (MAXSIZE 100) INBOX /private/big");
    assert!(u.is_empty(), "{u:?}");
    assert_eq!(t, "OK [METADATA LONGENTRIES 2000] GETMETADATA completed");
    assert!(c.ok("GETMETADATA INBOX /private/big").contains(&big));
    // §4.3 limits: a value over 16 KiB, and more than 100 entries in one scope.
    let huge = "h".repeat(20 * 1024);
    let (_, t) = raw(
        &mut c,
        "m2",
        format!(
            "m2 SETMETADATA INBOX (/private/huge {{{}+}}\r\n{huge})\r\n",
            huge.len()
        )
        .as_bytes(),
    );
    assert!(t.starts_with("NO [METADATA MAXSIZE 16384]"), "{t}");
    // Four private entries so far (comment, v/a, v/b/c, big): 96 more make 100.
    let many: Vec<String> = (0..96).map(|i| format!("/private/n/{i} \"x\"")).collect();
    c.ok(&format!("SETMETADATA INBOX ({})", many.join(" ")));
    let (_, t) = c.cmd("SETMETADATA INBOX (/private/n/96 \"x\")");
    assert!(t.starts_with("NO [METADATA TOOMANY]"), "{t}");
    c.ok("SETMETADATA INBOX (/shared/fine \"x\")");
    let (_, t) = c.cmd("SETMETADATA INBOX (/private/n/0 NIL /private/n/96 \"x\")");
    assert!(
        t.starts_with("OK"),
        "a removal makes room in the same command: {t}"
    );
    // NIL removes; bad names are refused.
    c.ok("SETMETADATA INBOX (/private/comment NIL)");
    assert_eq!(
        c.ok("GETMETADATA INBOX /private/comment"),
        "* METADATA INBOX (\"/private/comment\" NIL)"
    );
    for bad in ["/bogus", "/private/a//b", "/private/a/", "/private/*"] {
        let (_, t) = c.cmd(&format!("SETMETADATA INBOX ({bad} \"x\")"));
        assert!(t.starts_with("BAD"), "{bad}: {t}");
    }
    // A binary value (RFC 3516 literal8) comes back as one.
    let (_, t) = raw(
        &mut c,
        "m3",
        b"m3 SETMETADATA INBOX (/private/bin ~{3+}\r\na\0b)\r\n",
    );
    assert!(t.starts_with("OK"), "{t}");
    assert!(
        c.ok("GETMETADATA INBOX /private/bin")
            .ends_with("~{3}\r\na\0b)")
    );
    let (_, t) = c.cmd("GETMETADATA Nowhere /private/comment");
    assert!(t.starts_with("NO [NONEXISTENT]"), "{t}");
}

#[test]
fn entries_follow_rename_go_with_delete_and_survive_a_restart() {
    let mut s = server();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("CREATE Projects");
    c.ok("SETMETADATA Projects (/private/comment \"work\" /shared/comment \"team\")");
    c.ok("RENAME Projects Work");
    assert!(
        c.ok("GETMETADATA Work /shared/comment")
            .contains("\"team\"")
    );
    drop(c);
    assert!(s.terminate(), "{}", s.log());
    s.spawn();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert_eq!(
        c.ok("GETMETADATA Work (/private/comment /shared/comment)"),
        "* METADATA Work (\"/private/comment\" \"work\" \"/shared/comment\" \"team\")"
    );
    c.ok("DELETE Work");
    c.ok("CREATE Work");
    assert_eq!(
        c.ok("GETMETADATA Work /private/comment"),
        "* METADATA Work (\"/private/comment\" NIL)",
        "a new mailbox of that name starts empty"
    );
}
