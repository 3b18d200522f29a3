//! I18NLEVEL=1 (RFC 5255 §4): SEARCH, SORT and THREAD compare strings with i;unicode-casemap
//! (RFC 5051: titlecase, then NFKD). The same messages and searches go to Dovecot 2.3, which
//! implements the same comparator, and every answer must agree; a few cases are also
//! checked against the RFC directly.

mod common;

use common::{Imap, TestServer};

/// (Subject, body) of the messages: case, precomposed and decomposed accents, compatibility
/// forms (fullwidth, ligature, superscript), Greek final sigma, a digraph, ß.
const MESSAGES: &[(&str, &str)] = &[
    ("École", "La rentrée à l'école"),
    ("ecole", "Le cours de l'e\u{301}cole"),
    ("ＦＵＬＬ width", "ｆｕｌｌｗｉｄｔｈ text ｆｉｌｅ"),
    ("ﬁle", "the ﬁle ligature and x² squared"),
    ("ΣΟΦΟΣ", "σοφός και ΣΟΦΙΑ"),
    ("Straße", "Die straße und die STRASSE"),
    ("Ǆemal", "ǆemal džemal"),
    ("plain", "nothing special here"),
];

const NEEDLES: &[&str] = &[
    "école",
    "ÉCOLE",
    "e\u{301}cole",
    "ecole",
    "full",
    "ＦＵＬＬ",
    "fi",
    "ﬁle",
    "file",
    "x2",
    "σοφος",
    "ΣΟΦΟΣ",
    "σοφός",
    "straße",
    "STRASSE",
    "ǅemal",
    "džemal",
    "DŽEMAL",
    "rentr",
];

/// The commands: the messages appended, then SEARCH BODY/SUBJECT/TEXT for each needle
/// (as UTF-8 literals), then SORT by subject.
fn script() -> Vec<(String, Vec<u8>)> {
    let mut cmds = Vec::new();
    for (subject, body) in MESSAGES {
        let m = format!(
            "Subject: =?utf-8?b?{}?=\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: 8bit\r\n\r\n{body}\r\n",
            b64(subject.as_bytes())
        );
        cmds.push((format!("APPEND INBOX {{{}+}}", m.len()), m.into_bytes()));
    }
    cmds.push(("SELECT INBOX".into(), Vec::new()));
    for n in NEEDLES {
        for key in ["BODY", "SUBJECT", "TEXT"] {
            cmds.push((
                format!("UID SEARCH CHARSET UTF-8 {key} {{{}+}}", n.len()),
                n.as_bytes().to_vec(),
            ));
        }
    }
    cmds.push(("UID SORT (SUBJECT) UTF-8 ALL".into(), Vec::new()));
    cmds.push(("UID SORT (REVERSE SUBJECT) UTF-8 ALL".into(), Vec::new()));
    cmds.push(("UID THREAD ORDEREDSUBJECT UTF-8 ALL".into(), Vec::new()));
    cmds
}

fn b64(data: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = c
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (*b as u32) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

/// The one known difference: RFC 5051 decomposes the digraph ǅ (NFKD: `D` + `ž`), so
/// "Ǆemal" (UID 7) sorts with the Ds; Dovecot's tables keep it whole and sort it after the
/// Latin letters. Sort answers are compared without UID 7 (its place is checked apart).
fn without_digraph(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            l.split(' ')
                .filter(|t| t.trim_matches(|c| c == '(' || c == ')') != "7")
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// The answer lines (SEARCH, SORT, THREAD) of one command.
fn answer(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| {
            l.starts_with("* SEARCH") || l.starts_with("* SORT") || l.starts_with("* THREAD")
        })
        .map(|l| l.trim_end().to_string())
        .collect()
}

#[test]
fn searches_and_sorts_compare_like_dovecot() {
    let cmds = script();
    let theirs = common::dovecot_steps(&cmds);
    let s = TestServer::start_basic();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    assert!(c.ok("CAPABILITY").contains(" I18NLEVEL=1"));
    let mut compared = 0;
    for (i, (line, data)) in cmds.iter().enumerate() {
        let tag = format!("d{i}");
        let (u, t) = c.script_step(&tag, line, data);
        let (their_u, their_t) = &theirs[i];
        assert!(t.starts_with("OK"), "{line}: {t}");
        assert!(their_t.starts_with("OK"), "dovecot: {line}: {their_t}");
        let shown = String::from_utf8_lossy(data);
        let (ours, theirs) = if line.starts_with("UID SORT") || line.starts_with("UID THREAD") {
            (
                without_digraph(&answer(&u)),
                without_digraph(&answer(their_u)),
            )
        } else {
            (answer(&u), answer(their_u))
        };
        assert_eq!(ours, theirs, "{line} {shown}");
        compared += ours.len();
    }
    assert!(compared >= NEEDLES.len() * 3 + 3, "{compared}");
    // RFC 5051 directly: accents fold across NFC and NFD, case folds, ß is not SS.
    let search = |c: &mut Imap, key: &str, n: &str| -> String {
        c.send_raw(
            format!(
                "x UID SEARCH CHARSET UTF-8 {key} {{{}+}}\r\n{n}\r\n",
                n.len()
            )
            .as_bytes(),
        );
        let (u, _) = c.until_tagged("x");
        answer(&u).join(" ")
    };
    assert_eq!(search(&mut c, "BODY", "ÉCOLE"), "* SEARCH 1 2");
    assert_eq!(search(&mut c, "BODY", "full"), "* SEARCH 3");
    assert_eq!(search(&mut c, "BODY", "ΣΟΦΌΣ"), "* SEARCH 5", "final sigma");
    assert_eq!(
        search(&mut c, "BODY", "σοφοσ"),
        "* SEARCH",
        "the accent stays"
    );
    assert_eq!(search(&mut c, "BODY", "STRASSE"), "* SEARCH 6");
    // "Ǆemal" is "Dz\u{30C}EMAL" under RFC 5051: before "ECOLE".
    let (u, _) = c.cmd("UID SORT (SUBJECT) UTF-8 ALL");
    assert!(answer(&u)[0].starts_with("* SORT 7 "), "{u:?}");
}
