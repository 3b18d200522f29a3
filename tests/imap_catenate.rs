//! CATENATE (RFC 4469): messages put together from text and IMAP URLs, compared with what
//! Dovecot 2.3 builds from the same commands, and the refusals.

mod common;

use common::{Imap, TestServer};

const MSG: &str = "From: a@x.test\r\nSubject: parts\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n\
first part\r\n--b\r\nContent-Type: text/plain\r\n\r\nsecond part\r\n--b--\r\n";

/// The script: the source message, then three CATENATE appends.
fn script() -> Vec<(String, Vec<u8>)> {
    let lit = |line: &str, data: &str| (line.to_string(), data.as_bytes().to_vec());
    vec![
        lit(&format!("APPEND INBOX {{{}+}}", MSG.len()), MSG),
        // RFC 4469 §5's pattern: the old header, a new body.
        lit(
            &format!(
                "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;SECTION=HEADER\" TEXT {{{}+}}",
                "A new body.\r\n".len()
            ),
            "A new body.\r\n)",
        ),
        // A new header around a part of the old message.
        lit(
            &format!(
                "APPEND INBOX CATENATE (TEXT {{{}+}}",
                "Subject: forwarded part\r\n\r\n".len()
            ),
            "Subject: forwarded part\r\n\r\n URL \"/INBOX/;UID=1/;SECTION=2\" TEXT {2+}\r\n\r\n)",
        ),
        // PARTIAL: the first 40 octets, then the whole message.
        lit(
            "APPEND INBOX CATENATE (URL \"/INBOX/;UID=1/;PARTIAL=0.40\" URL \"/INBOX/;UID=1\")",
            "",
        ),
        lit("SELECT INBOX", ""),
        lit("FETCH 2:4 BODY.PEEK[]", ""),
    ]
}

/// The BODY[] literals of a FETCH answer, in order.
fn bodies(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("BODY[] {") {
        let after = &rest[at + 8..];
        let close = after.find('}').unwrap_or(0);
        let n: usize = after[..close].parse().unwrap_or(0);
        let data = &after[close + 3..];
        out.push(data[..n.min(data.len())].to_string());
        rest = &data[n.min(data.len())..];
    }
    out
}

#[test]
fn built_like_dovecot_and_refused_with_badurl() {
    let cmds = script();
    let (theirs, tagged) = common::dovecot_session(&cmds, "");
    for ((line, _), t) in cmds.iter().zip(&tagged) {
        assert!(t.starts_with("OK"), "dovecot: {line}: {t}");
    }
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert!(c.ok("CAPABILITY").contains(" CATENATE"));
    let mut ours = String::new();
    for (i, (line, lit)) in cmds.iter().enumerate() {
        let tag = format!("p{i}");
        let mut raw = format!("{tag} {line}").into_bytes();
        if !lit.is_empty() {
            raw.extend_from_slice(b"\r\n");
            raw.extend_from_slice(lit);
        }
        raw.extend_from_slice(b"\r\n");
        c.send_raw(&raw);
        let (u, t) = c.until_tagged(&tag);
        assert!(t.starts_with("OK"), "postcore: {line}: {t}");
        ours.push_str(&u.join("\r\n"));
    }
    let (a, b) = (bodies(&ours), bodies(&theirs));
    assert_eq!(a.len(), 3, "{ours}");
    assert_eq!(a, b, "the same messages as Dovecot builds");
    assert!(
        a[0].starts_with("From: a@x.test\r\nSubject: parts\r\n")
            && a[0].ends_with("\r\n\r\nA new body.\r\n")
    );
    assert!(a[1].contains("second part") && !a[1].contains("first part"));
    assert_eq!(a[2].len(), 40 + MSG.len());
    // §6: a URL naming nothing readable is refused with BADURL, and nothing is stored.
    for bad in [
        "\"/INBOX/;UID=99\"",
        "\"/Nowhere/;UID=1\"",
        "\"/INBOX;UIDVALIDITY=1/;UID=1\"",
        "\"/INBOX/;UID=1/;SECTION=9\"",
        "\"not a url\"",
    ] {
        let (_, t) = c.cmd(&format!("APPEND INBOX CATENATE (URL {bad})"));
        assert!(t.starts_with("NO [BADURL "), "{bad}: {t}");
    }
    c.ok("NOOP");
    assert_eq!(c.ok("SEARCH ALL"), "* SEARCH 1 2 3 4");
}
