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
    // §4.2.2 DEPTH: the entry "if it exists", and those below it (Dovecot answers the same).
    c.ok("SETMETADATA INBOX (/private/v/a \"1\" /private/v/b/c \"2\")");
    assert_eq!(
        c.ok("GETMETADATA (DEPTH 1) INBOX /private/v"),
        "* METADATA INBOX (\"/private/v/a\" \"1\")"
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

/// The entries of a `* METADATA mailbox (entry value …)` line as sorted `entry=value`
/// (quoted strings, literals and atoms read alike; `NIL` kept), so two servers' spellings
/// compare.
fn entries(line: &str) -> Vec<String> {
    let Some(open) = line.find('(') else {
        return vec![line.to_string()];
    };
    let b = &line.as_bytes()[open + 1..line.len().saturating_sub(1)];
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b' ' => i += 1,
            b'"' => {
                let mut t = Vec::new();
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    t.push(b[i]);
                    i += 1;
                }
                i += 1;
                tokens.push(String::from_utf8_lossy(&t).into_owned());
            }
            b'~' | b'{' => {
                let close = i + line[open + 1 + i..].find('}').unwrap_or(0);
                let start = if b[i] == b'~' { i + 2 } else { i + 1 };
                let n: usize = line[open + 1 + start..open + 1 + close]
                    .parse()
                    .unwrap_or(0);
                let from = close + 3;
                tokens.push(String::from_utf8_lossy(&b[from..from + n]).into_owned());
                i = from + n;
            }
            _ => {
                let end = b[i..]
                    .iter()
                    .position(|c| *c == b' ')
                    .map_or(b.len(), |p| i + p);
                tokens.push(String::from_utf8_lossy(&b[i..end]).into_owned());
                i = end;
            }
        }
    }
    // The order of entries in a response is not specified (Dovecot's varies from run to run).
    let mut out: Vec<String> = tokens.chunks(2).map(|c| c.join("=")).collect();
    out.sort();
    out
}

/// The same METADATA commands through Dovecot 2.3 (`imap_metadata = yes`) and postcore:
/// the same entries and values, the same status and response code. Two differences are
/// deliberate and left out: `/shared/admin` (postcore names the postmaster, Dovecot has no
/// value unless configured) and setting a server `/shared/` entry (both refuse: Dovecot
/// with `[CANNOT]`, postcore with `[NOPERM]`).
#[test]
fn answers_match_dovecot() {
    let cmds: Vec<(String, Vec<u8>)> = [
        "SETMETADATA INBOX (/private/comment \"My own comment\")",
        "GETMETADATA INBOX (/private/comment /shared/comment)",
        "GETMETADATA INBOX /private/Comment",
        "SETMETADATA INBOX (/private/v/a \"1\" /private/v/b/c \"2\" /shared/v/d \"3\")",
        "GETMETADATA (DEPTH 1) INBOX /private/v",
        "GETMETADATA (DEPTH infinity) INBOX (/private/v /shared/v)",
        "GETMETADATA (DEPTH 0) INBOX /private/v/a",
        "SETMETADATA INBOX (/private/big \"0123456789012345678901234567890123456789\")",
        "GETMETADATA (MAXSIZE 10) INBOX /private/big",
        "GETMETADATA (MAXSIZE 10) INBOX (/private/big /private/v/a)",
        "GETMETADATA (MAXSIZE 100 DEPTH infinity) INBOX /private/v",
        "SETMETADATA INBOX (/private/comment NIL)",
        "GETMETADATA INBOX /private/comment",
        "SETMETADATA \"\" (/private/vendor/x/theme \"dark\")",
        "GETMETADATA \"\" /private/vendor/x/theme",
        "CREATE Work",
        "SETMETADATA Work (/private/comment \"w\")",
        "RENAME Work Job",
        "GETMETADATA Job /private/comment",
    ]
    .into_iter()
    .map(|c| (c.to_string(), Vec::new()))
    .collect();
    let (theirs_text, theirs_tagged) = common::dovecot_session(
        &cmds,
        "imap_metadata = yes\nmail_attribute_dict = file:%h/attributes",
    );
    let s = server();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    for (i, (cmd, _)) in cmds.iter().enumerate() {
        let (ours_untagged, ours_tagged) = c.cmd(cmd);
        let ours: Vec<Vec<String>> = ours_untagged
            .iter()
            .filter(|l| l.starts_with("* METADATA"))
            .map(|l| entries(l))
            .collect();
        // Dovecot's untagged lines of command i: between the previous tagged line and its own.
        let start = if i == 0 {
            0
        } else {
            theirs_text.find(&format!("\nd{} ", i - 1)).unwrap_or(0)
        };
        let end = theirs_text
            .find(&format!("\nd{i} "))
            .unwrap_or(theirs_text.len());
        let region = &theirs_text[start..end];
        // A literal's line break splits a METADATA line: join the region's lines first.
        let joined = region.replace("}\r\n", "}\u{0}");
        let theirs: Vec<Vec<String>> = joined
            .lines()
            .filter(|l| l.starts_with("* METADATA"))
            .map(|l| entries(&l.trim_end().replace("}\u{0}", "}\r\n")))
            .collect();
        assert_eq!(ours, theirs, "{cmd}");
        let code = |t: &str| -> String {
            let status = t.split(' ').next().unwrap_or("").to_string();
            match (t.find('['), t.find(']')) {
                (Some(a), Some(b)) => format!("{status} {}", &t[a..=b]),
                _ => status,
            }
        };
        assert_eq!(code(&ours_tagged), code(&theirs_tagged[i]), "{cmd}");
    }
}
