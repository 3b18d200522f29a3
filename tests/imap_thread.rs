//! THREAD (RFC 5256) against Dovecot: generated mailboxes — replies, missing parents,
//! duplicate and malformed Message-IDs, reference loops, In-Reply-To alone, subjects with
//! `Re:`/`Fwd:`/blobs/`(fwd)`, missing and unparsable dates, equal dates — are appended
//! (MULTIAPPEND, four messages a command) to postcore (real server, IMAP over TCP) and to
//! Dovecot 2.3's `imap` (Debian `dovecot-imapd`, run pre-authenticated on a pipe over a
//! Maildir), and every THREAD answer (REFERENCES, REFS, ORDEREDSUBJECT, with and without UID,
//! over all messages and over a search) and every SORT answer (plain and ESORT, RFC 5267)
//! must be the same. A difference fails unless tests/imap/thread_allow.txt lists it with the
//! RFC section that shows postcore right.

mod common;

use common::{Imap, TestServer};

/// One message to append: its text and its internal date.
struct Msg {
    data: String,
    internal: String,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n
    }
}

/// A date in both forms: RFC 5322 (Date field) and IMAP date-time (APPEND).
fn dates(day: usize, hour: usize, zone: &str) -> (String, String) {
    let (d, m) = (1 + day % 28, MONTHS[(day / 28) % 12]);
    (
        format!("Mon, {d} {m} 2026 {hour:02}:00:00 {zone}"),
        format!("{d:02}-{m}-2026 {hour:02}:30:00 +0000"),
    )
}

/// Mailbox `sc` of generated messages.
fn scenario(sc: usize, rng: &mut Rng) -> Vec<Msg> {
    let n = 4 + rng.below(22);
    let id = |k: usize| format!("<m{k}.s{sc}@ex.test>");
    let bases = [
        "Plans",
        "Lunch",
        "Budget 2027",
        "[list] Report",
        "",
        "plans",
    ];
    let mut out = Vec::new();
    for i in 0..n {
        let mut h = String::new();
        match rng.below(20) {
            0 if i > 0 => h.push_str(&format!("Message-ID: {}\r\n", id(rng.below(i)))),
            1 => {}
            2 => h.push_str("Message-ID: <no-at-sign>\r\n"),
            _ => h.push_str(&format!("Message-ID: {}\r\n", id(i))),
        }
        // References among earlier messages, later ones and ids no message has.
        let refs: Vec<String> = (0..rng.below(4)).map(|_| id(rng.below(n + 3))).collect();
        match rng.below(6) {
            0 | 1 if !refs.is_empty() => {
                h.push_str(&format!("References: {}\r\n", refs.join("\r\n ")))
            }
            2 if !refs.is_empty() => h.push_str(&format!("In-Reply-To: {}\r\n", refs[0])),
            3 if !refs.is_empty() => h.push_str(&format!(
                "References: {}\r\nIn-Reply-To: {}\r\n",
                refs.join(" "),
                id(rng.below(n))
            )),
            _ => {}
        }
        let base = bases[rng.below(bases.len())];
        let subject = match rng.below(8) {
            0 | 1 => format!("Re: {base}"),
            2 => format!("RE: re: {base}"),
            3 => format!("Fwd: {base}"),
            4 => format!("[fwd: {base}]"),
            5 => format!("{base} (fwd)"),
            _ => base.to_string(),
        };
        h.push_str(&format!("Subject: {subject}\r\n"));
        let zone = ["+0000", "+0200", "-0500"][rng.below(3)];
        // Equal dates happen often (a small range): ties go by sequence number.
        let (date, internal) = dates(rng.below(6), 8 + rng.below(4), zone);
        match rng.below(12) {
            0 => {}
            1 => h.push_str("Date: not a date\r\n"),
            _ => h.push_str(&format!("Date: {date}\r\n")),
        }
        h.push_str("From: someone@ex.test\r\nTo: alice@example.test\r\n");
        out.push(Msg {
            data: format!("{h}\r\nMessage {i} of mailbox {sc}.\r\n"),
            internal,
        });
    }
    out
}

/// The THREAD commands run on every mailbox (the search limits which messages thread).
const COMMANDS: &[&str] = &[
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD REFS UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "UID THREAD REFERENCES UTF-8 ALL",
    "THREAD REFERENCES UTF-8 NOT SUBJECT lunch",
    "UID THREAD ORDEREDSUBJECT US-ASCII SUBJECT plans",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (REVERSE DATE) UTF-8 ALL",
    "UID SORT RETURN (MIN MAX COUNT ALL) (SUBJECT REVERSE ARRIVAL) UTF-8 ALL",
    "SORT RETURN () (DATE) UTF-8 NOT SUBJECT plans",
];

/// The answer lines compared: THREAD, SORT and ESEARCH (its TAG, which differs, removed).
fn answers(lines: impl Iterator<Item = String>) -> Vec<String> {
    lines
        .filter(|l| {
            l.starts_with("* THREAD") || l.starts_with("* SORT") || l.starts_with("* ESEARCH")
        })
        .map(|l| {
            let l = l.trim_end().to_string();
            match (l.find("(TAG "), l.find(')')) {
                (Some(a), Some(b)) if b > a => format!("{}{}", &l[..a], l[b + 1..].trim_start()),
                _ => l,
            }
        })
        .collect()
}

/// The IMAP script both servers run: per mailbox CREATE, APPENDs, SELECT and the commands.
fn script(boxes: &[Vec<Msg>]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (b, msgs) in boxes.iter().enumerate() {
        out.push((format!("CREATE t{b}"), Vec::new()));
        // MULTIAPPEND (RFC 3502), up to four messages a command, on both servers.
        for chunk in msgs.chunks(4) {
            let mut lit = chunk[0].data.as_bytes().to_vec();
            for m in &chunk[1..] {
                lit.extend_from_slice(
                    format!(" () \"{}\" {{{}+}}\r\n", m.internal, m.data.len()).as_bytes(),
                );
                lit.extend_from_slice(m.data.as_bytes());
            }
            out.push((
                format!(
                    "APPEND t{b} () \"{}\" {{{}+}}",
                    chunk[0].internal,
                    chunk[0].data.len()
                ),
                lit,
            ));
        }
        out.push((format!("SELECT t{b}"), Vec::new()));
        for c in COMMANDS {
            out.push((c.to_string(), Vec::new()));
        }
    }
    out
}

/// Dovecot's answers: the THREAD/SORT/ESEARCH lines of the script, in order.
fn dovecot_threads(cmds: &[(String, Vec<u8>)]) -> Vec<String> {
    let (text, tagged) = common::dovecot_session(cmds, "");
    for ((line, _), t) in cmds.iter().zip(&tagged) {
        assert!(t.starts_with("OK"), "dovecot: {line}: {t}\n{text}");
    }
    answers(text.lines().map(str::to_string))
}

/// postcore's answers to the same script, over IMAP on the real server.
fn postcore_threads(s: &TestServer, cmds: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let mut threads = Vec::new();
    for (i, (line, lit)) in cmds.iter().enumerate() {
        let tag = format!("p{i}");
        let (untagged, tagged) = c.script_step(&tag, line, lit);
        assert!(tagged.starts_with("OK"), "postcore: {line}: {tagged}");
        threads.extend(answers(untagged.into_iter()));
    }
    threads
}

/// The allowed differences: `mailbox command` keys (lines starting with `#` explain).
fn allowed() -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/imap/thread_allow.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(" | ").next().unwrap_or("").trim().to_string())
        .collect()
}

#[test]
fn thread_answers_match_dovecot() {
    // THREAD_SEED explores other mailboxes; the default is the one the suite checks.
    let seed = std::env::var("THREAD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x7423_5256);
    let mut rng = Rng(seed);
    let boxes: Vec<Vec<Msg>> = (0..60).map(|sc| scenario(sc, &mut rng)).collect();
    let cmds = script(&boxes);
    let theirs = dovecot_threads(&cmds);
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    let ours = postcore_threads(&s, &cmds);
    assert_eq!(ours.len(), boxes.len() * COMMANDS.len());
    assert_eq!(theirs.len(), ours.len(), "dovecot answered every THREAD");
    let allow = allowed();
    let mut differ = Vec::new();
    let mut allowed_seen = Vec::new();
    let mut threaded = 0;
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        let key = format!("t{} {}", i / COMMANDS.len(), COMMANDS[i % COMMANDS.len()]);
        threaded += a.matches('(').count();
        if a == b {
            continue;
        }
        if allow.contains(&key) {
            allowed_seen.push(key);
            continue;
        }
        let mbox = &boxes[i / COMMANDS.len()];
        let heads: Vec<String> = mbox
            .iter()
            .enumerate()
            .map(|(n, m)| {
                format!(
                    "  {}: {}",
                    n + 1,
                    m.data
                        .split("\r\n\r\n")
                        .next()
                        .unwrap_or("")
                        .replace("\r\n", " | ")
                )
            })
            .collect();
        differ.push(format!(
            "{key}\n  postcore: {a}\n  dovecot:  {b}\n{}",
            heads.join("\n")
        ));
    }
    assert!(threaded > 500, "the mailboxes make threads ({threaded})");
    assert!(
        ours.iter().any(|l| l.contains("ESEARCH UID MIN")),
        "ESORT answers compared"
    );
    assert!(
        differ.is_empty(),
        "{} of {} THREAD answers differ from Dovecot's:\n{}",
        differ.len(),
        ours.len(),
        differ.join("\n")
    );
    // An allowed case that agrees again comes off the list.
    for k in &allow {
        assert!(
            allowed_seen.contains(k),
            "{k} agrees now: remove it from thread_allow.txt"
        );
    }
}

#[test]
fn thread_esort_capability_errors_and_empty_answers() {
    let s = TestServer::start();
    s.setup_basic();
    s.allow_unencrypted();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let caps = c.ok("CAPABILITY");
    for alg in ["THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "THREAD=REFS"] {
        assert!(caps.contains(alg), "{caps}");
    }
    let (_, t) = c.cmd("THREAD REFERENCES UTF-8 ALL");
    assert!(t.starts_with("BAD"), "no mailbox selected: {t}");
    c.ok("SELECT INBOX");
    // RFC 5256 §4: no matching message → `* THREAD` with nothing after it.
    assert_eq!(c.ok("THREAD REFERENCES UTF-8 ALL"), "* THREAD");
    let (_, t) = c.cmd("THREAD SUBJECTS UTF-8 ALL");
    assert!(t.starts_with("BAD"), "unknown algorithm: {t}");
    let (_, t) = c.cmd("THREAD REFS ISO-2022-JP ALL");
    assert!(t.starts_with("NO [BADCHARSET"), "{t}");
    let msg = "Message-ID: <a@x.test>\r\nSubject: hi\r\n\r\nx\r\n";
    for day in ["01", "02"] {
        c.send_raw(
            format!(
                "a APPEND INBOX \"{day}-Jan-2026 10:00:00 +0000\" {{{}+}}\r\n{msg}\r\n",
                msg.len()
            )
            .as_bytes(),
        );
        let (_, t) = c.until_tagged("a");
        assert!(t.starts_with("OK"), "{t}");
    }
    c.ok("NOOP");
    // The second copy repeats the first's Message-ID: it is threaded as if it had none
    // (RFC 5256 step 1), then joins the first by subject.
    assert_eq!(c.ok("THREAD REFERENCES UTF-8 ALL"), "* THREAD ((1)(2))");
    assert_eq!(c.ok("UID THREAD REFS UTF-8 ALL"), "* THREAD (1)(2)");
    assert_eq!(
        c.ok("THREAD ORDEREDSUBJECT UTF-8 SUBJECT nothing"),
        "* THREAD"
    );
    // ESORT (RFC 5267 §3.1): MIN and MAX are the first and last in sort order, ALL keeps it.
    assert!(caps.contains(" ESORT"), "{caps}");
    let (u, t) = c.cmd("SORT RETURN (MIN MAX COUNT ALL) (REVERSE ARRIVAL) UTF-8 ALL");
    assert!(t.starts_with("OK"), "{t}");
    assert!(
        u.len() == 1 && u[0].ends_with(") MIN 2 MAX 1 ALL 2,1 COUNT 2"),
        "{u:?}"
    );
    // RETURN (SAVE): nothing answered, the result usable as `$` (RFC 5182).
    let (u, t) = c.cmd("SORT RETURN (SAVE) (ARRIVAL) UTF-8 SUBJECT hi");
    assert!(t.starts_with("OK") && u.is_empty(), "{t} {u:?}");
    assert_eq!(c.ok("SEARCH $"), "* SEARCH 1 2");
    // A header too large for the header cache (over 64 KB): its keys come from the file.
    let big = format!(
        "X-Pad: {}\r\nSubject: zebra\r\n\r\nx\r\n",
        "p".repeat(70_000)
    );
    c.send_raw(format!("b APPEND INBOX {{{}+}}\r\n{big}\r\n", big.len()).as_bytes());
    let (_, t) = c.until_tagged("b");
    assert!(t.starts_with("OK"), "{t}");
    c.ok("NOOP");
    assert_eq!(c.ok("SORT (SUBJECT) UTF-8 ALL"), "* SORT 1 2 3");
}
