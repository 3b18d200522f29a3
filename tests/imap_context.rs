//! Search contexts (RFC 5267 §4: CONTEXT=SEARCH and CONTEXT=SORT) over the real server:
//! RETURN (UPDATE) searches that report changes made by another session with unsolicited
//! ESEARCH ADDTO/REMOVEFROM (after EXISTS, before EXPUNGE, in IDLE too), CANCELUPDATE,
//! NOUPDATE, PARTIAL, a model check that replays the updates against fresh searches, and a
//! comparison with Dovecot 2.3 (which implements CONTEXT=SEARCH) on one session's script.

mod common;

use common::{Imap, TestServer};

/// The lines starting with `prefix`.
fn with<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l.starts_with(prefix))
        .map(String::as_str)
        .collect()
}

fn index_of(lines: &[String], prefix: &str) -> usize {
    lines
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {lines:?}"))
}

#[test]
fn updates_follow_another_sessions_changes() {
    let s = TestServer::start_basic();
    let mut other = Imap::login(s.imap, "alice", "alice-pw");
    let uids: Vec<u32> = (0..3)
        .map(|i| other.append_message("INBOX", &format!("m{i}"), ""))
        .collect();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let caps = c.ok("CAPABILITY");
    assert!(caps.contains(" CONTEXT=SEARCH") && caps.contains(" CONTEXT=SORT"));
    c.ok("SELECT INBOX");
    other.ok("SELECT INBOX");
    // RFC 5267 §4.3's example form: the count now, then updates as the result changes.
    c.send_raw(b"B01 UID SEARCH RETURN (UPDATE COUNT) UNSEEN\r\n");
    let (u, t) = c.until_tagged("B01");
    assert!(t.starts_with("OK"), "{t}");
    assert_eq!(u, vec!["* ESEARCH (TAG \"B01\") UID COUNT 3"]);
    // A sequence-number context alongside it.
    c.send_raw(b"B02 SEARCH RETURN (UPDATE) UNSEEN\r\n");
    let (u, _) = c.until_tagged("B02");
    assert_eq!(
        u,
        vec!["* ESEARCH (TAG \"B02\")"],
        "UPDATE alone: no data now"
    );
    // §4.3: a second UPDATE with a tag in use is a BAD.
    c.send_raw(b"B01 SEARCH RETURN (UPDATE) ALL\r\n");
    let (_, t) = c.until_tagged("B01");
    assert!(t.starts_with("BAD"), "{t}");

    // A flag change elsewhere: the message leaves both results.
    other.ok(&format!("UID STORE {} +FLAGS (\\Seen)", uids[0]));
    let (u, _) = c.cmd("NOOP");
    assert_eq!(
        with(&u, "* ESEARCH"),
        vec![
            format!("* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 {})", uids[0]),
            "* ESEARCH (TAG \"B02\") REMOVEFROM (0 1)".to_string(),
        ]
    );
    // A new message: ADDTO after the EXISTS that makes its number valid (§4.3.3).
    let new = other.append_message("INBOX", "m3", "");
    let (u, _) = c.cmd("NOOP");
    assert!(
        index_of(&u, "* 4 EXISTS") < index_of(&u, "* ESEARCH"),
        "{u:?}"
    );
    assert_eq!(
        with(&u, "* ESEARCH"),
        vec![
            format!("* ESEARCH (TAG \"B01\") UID ADDTO (0 {new})"),
            "* ESEARCH (TAG \"B02\") ADDTO (0 4)".to_string(),
        ]
    );
    // An expunge elsewhere: REMOVEFROM before the EXPUNGE, numbers still valid (§4.3.4).
    other.ok(&format!("UID STORE {} +FLAGS (\\Deleted)", uids[1]));
    other.ok(&format!("UID EXPUNGE {}", uids[1]));
    let (u, _) = c.cmd("NOOP");
    let removes = with(&u, "* ESEARCH");
    assert_eq!(
        removes.last().copied(),
        Some("* ESEARCH (TAG \"B02\") REMOVEFROM (0 2)"),
        "{u:?}"
    );
    assert!(
        removes
            .contains(&format!("* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 {})", uids[1]).as_str())
    );
    assert!(
        u.iter().rposition(|l| l.starts_with("* ESEARCH")) < Some(index_of(&u, "* 2 EXPUNGE")),
        "{u:?}"
    );
    // In IDLE the update arrives on its own.
    c.send_raw(b"I1 IDLE\r\n");
    assert!(c.read_line().starts_with("+ "));
    other.ok(&format!("UID STORE {new} +FLAGS (\\Seen)"));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let l = c.read_line();
        if l.starts_with("* ESEARCH") {
            seen.push(l);
        }
    }
    assert_eq!(
        seen,
        vec![
            format!("* ESEARCH (TAG \"B01\") UID REMOVEFROM (0 {new})"),
            "* ESEARCH (TAG \"B02\") REMOVEFROM (0 3)".to_string(),
        ]
    );
    c.send_raw(b"DONE\r\n");
    let (_, t) = c.until_tagged("I1");
    assert!(t.starts_with("OK"), "{t}");
    // §4.3.5 CANCELUPDATE: no more updates for B01; an unknown tag is refused.
    let (_, t) = c.cmd("CANCELUPDATE \"B01\"");
    assert!(t.starts_with("OK"), "{t}");
    let (_, t) = c.cmd("CANCELUPDATE \"B01\"");
    assert!(t.starts_with("NO"), "{t}");
    other.ok(&format!("UID STORE {} -FLAGS (\\Seen)", uids[0]));
    let (u, _) = c.cmd("NOOP");
    assert_eq!(
        with(&u, "* ESEARCH"),
        vec!["* ESEARCH (TAG \"B02\") ADDTO (0 1)"]
    );
    // The contexts end with the selection.
    c.ok("UNSELECT");
    c.ok("SELECT INBOX");
    other.ok(&format!("UID STORE {} -FLAGS (\\Seen)", uids[2]));
    let (u, _) = c.cmd("NOOP");
    assert!(with(&u, "* ESEARCH").is_empty(), "{u:?}");
}

/// RFC 5465 §7 (with NOTIFY): `UPDATE (fetch-att …)` — a new message joining the result
/// is announced by EXISTS, then a FETCH of those items, then the ADDTO; a message joining
/// through a flag change gets no FETCH.
#[test]
fn update_with_fetch_items() {
    let s = TestServer::start_basic();
    let mut other = Imap::login(s.imap, "alice", "alice-pw");
    let first = other.append_message("INBOX", "first", "\\Seen");
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("ENABLE IMAP4rev2");
    c.ok("SELECT INBOX");
    c.send_raw(
        b"U1 UID SEARCH RETURN (UPDATE (UID FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])) UNSEEN\r\n",
    );
    let (_, t) = c.until_tagged("U1");
    assert!(t.starts_with("OK"), "{t}");
    let new = other.append_message("INBOX", "second", "");
    let (u, _) = c.cmd("NOOP");
    let exists = index_of(&u, "* 2 EXISTS");
    let fetch = index_of(&u, "* 2 FETCH");
    let add = index_of(&u, "* ESEARCH");
    assert!(exists < fetch && fetch < add, "{u:?}");
    assert!(
        u[fetch].contains(&format!("UID {new} FLAGS ()")) && u[fetch].contains("Subject: second"),
        "{}",
        u[fetch]
    );
    assert_eq!(
        u[add],
        format!("* ESEARCH (TAG \"U1\") UID ADDTO (0 {new})")
    );
    other.ok("SELECT INBOX");
    other.ok(&format!("UID STORE {first} -FLAGS (\\Seen)"));
    let (u, _) = c.cmd("NOOP");
    assert!(!u.iter().any(|l| l.contains("BODY[HEADER")), "{u:?}");
    assert_eq!(
        with(&u, "* ESEARCH"),
        vec![format!("* ESEARCH (TAG \"U1\") UID ADDTO (0 {first})")]
    );
    // An expunge and a new message together, seen during a FETCH (RFC 9051 §7.4.1: no
    // EXPUNGE then): the new message's FETCH must not bring the expunge forward either.
    other.ok(&format!("UID STORE {first} +FLAGS (\\Deleted)"));
    other.ok(&format!("UID EXPUNGE {first}"));
    let third = other.append_message("INBOX", "third", "");
    let (u, t) = c.cmd("FETCH 1 (FLAGS)");
    assert!(t.starts_with("OK"), "{t}");
    assert!(!u.iter().any(|l| l.contains("EXPUNGE")), "{u:?}");
    assert!(
        u.iter()
            .any(|l| l.contains(&format!("UID {third} FLAGS ()"))),
        "{u:?}"
    );
    let (u, _) = c.cmd("NOOP");
    assert!(u.contains(&"* 1 EXPUNGE".to_string()), "{u:?}");
}

#[test]
fn partial_windows_and_the_context_limit() {
    let s = TestServer::start_basic();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let subjects = ["delta", "alpha", "echo", "charlie", "bravo"];
    let uids: Vec<u32> = subjects
        .iter()
        .map(|s| c.append_message("INBOX", s, ""))
        .collect();
    c.ok("SELECT INBOX");
    // §4.4: positions in the result, the range as given (reversed ranges normalized).
    assert_eq!(
        c.ok("UID SEARCH RETURN (PARTIAL 2:3) ALL"),
        format!(
            "* ESEARCH (TAG \"t8\") UID PARTIAL (2:3 {}:{})",
            uids[1], uids[2]
        )
    );
    assert_eq!(
        c.ok("SEARCH RETURN (PARTIAL 4:2 COUNT) ALL"),
        "* ESEARCH (TAG \"t9\") PARTIAL (2:4 2:4) COUNT 5"
    );
    assert_eq!(
        c.ok("SEARCH RETURN (PARTIAL 9:20) ALL"),
        "* ESEARCH (TAG \"t10\") PARTIAL (9:20 NIL)"
    );
    // Over SORT, the window is taken in the sorted order (alpha bravo charlie delta echo).
    assert_eq!(
        c.ok("SORT RETURN (PARTIAL 1:3) (SUBJECT) UTF-8 ALL"),
        "* ESEARCH (TAG \"t11\") PARTIAL (1:3 2,5,4)"
    );
    for bad in [
        "PARTIAL 1:2 ALL",
        "PARTIAL 0:3",
        "PARTIAL 1:*",
        "PARTIAL 1:2 PARTIAL 3:4",
    ] {
        let (_, t) = c.cmd(&format!("SEARCH RETURN ({bad}) ALL"));
        assert!(t.starts_with("BAD"), "{bad}: {t}");
    }
    // §4.3.1: past the limit, NOUPDATE; the other return options are still answered.
    for i in 0..10 {
        c.ok(&format!("SEARCH RETURN (UPDATE) KEYWORD k{i}"));
    }
    c.send_raw(b"N1 SEARCH RETURN (UPDATE COUNT) ALL\r\n");
    let (u, t) = c.until_tagged("N1");
    assert!(t.starts_with("OK"), "{t}");
    assert!(
        u.contains(
            &"* NO [NOUPDATE \"N1\"] Too many updating searches; this one will not be updated"
                .to_string()
        ),
        "{u:?}"
    );
    assert!(
        u.contains(&"* ESEARCH (TAG \"N1\") COUNT 5".to_string()),
        "{u:?}"
    );
}

/// Applies ADDTO/REMOVEFROM pairs of one update line to `list` (§4.3.2: in order).
fn apply_update(list: &mut Vec<u32>, line: &str) {
    let mut rest = line;
    while let Some(at) = rest.find(['A', 'R']) {
        let item = &rest[at..];
        let (add, body) = if let Some(b) = item.strip_prefix("ADDTO (") {
            (true, b)
        } else if let Some(b) = item.strip_prefix("REMOVEFROM (") {
            (false, b)
        } else {
            rest = &rest[at + 1..];
            continue;
        };
        let end = body.find(')').unwrap();
        let toks: Vec<&str> = body[..end].split(' ').collect();
        for pair in toks.chunks(2) {
            let pos: usize = pair[0].parse().unwrap();
            let nums: Vec<u32> = pair[1]
                .split(',')
                .flat_map(|r| match r.split_once(':') {
                    Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse().unwrap()).collect(),
                    None => vec![r.parse().unwrap()],
                })
                .collect();
            for (k, n) in nums.into_iter().enumerate() {
                match (add, pos) {
                    (true, 0) => {
                        let at = list.partition_point(|x| *x < n);
                        list.insert(at, n);
                    }
                    (true, p) => list.insert(p - 1 + k, n),
                    (false, 0) => list.retain(|x| *x != n),
                    (false, p) => {
                        assert_eq!(list[p - 1], n, "REMOVEFROM position wrong: {line}");
                        list.remove(p - 1);
                    }
                }
            }
        }
        rest = &body[end..];
    }
}

/// The numbers of `* ESEARCH (TAG "x") UID ALL set` or `* SORT …` style answers.
fn numbers(set: &str) -> Vec<u32> {
    set.split(',')
        .filter(|x| !x.is_empty())
        .flat_map(|r| match r.split_once(':') {
            Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse().unwrap()).collect(),
            None => vec![r.parse().unwrap()],
        })
        .collect()
}

/// A model check: a SORT context and a SEARCH context kept by replaying every update, while
/// another session flags, unflags, appends and expunges at random; after each step the
/// replayed lists must equal fresh SORT and SEARCH answers.
#[test]
fn replayed_updates_equal_fresh_answers() {
    let s = TestServer::start_basic();
    let mut other = Imap::login(s.imap, "alice", "alice-pw");
    let words = [
        "kilo", "alpha", "mike", "bravo", "lima", "echo", "golf", "hotel",
    ];
    for (i, w) in words.iter().enumerate() {
        let flags = if i % 3 == 0 { "\\Flagged" } else { "" };
        other.append_message("INBOX", w, flags);
    }
    other.ok("SELECT INBOX");
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    c.ok("SELECT INBOX");
    const SORT: &str = "(REVERSE SUBJECT) UTF-8 FLAGGED";
    c.send_raw(format!("S1 UID SORT RETURN (UPDATE ALL) {SORT}\r\n").as_bytes());
    let (u, _) = c.until_tagged("S1");
    let mut sorted = numbers(u[0].rsplit(' ').next().unwrap());
    c.send_raw(b"S2 UID SEARCH RETURN (UPDATE ALL) FLAGGED\r\n");
    let (u, _) = c.until_tagged("S2");
    let mut found = numbers(u[0].rsplit(' ').next().unwrap());
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for step in 0..40 {
        let all: Vec<u32> = {
            let l = other.ok("UID SEARCH ALL");
            l.split(' ').skip(2).map(|x| x.parse().unwrap()).collect()
        };
        let pick = all[next(all.len() as u64) as usize];
        match next(5) {
            0 | 1 => other.ok(&format!("UID STORE {pick} +FLAGS (\\Flagged)")),
            2 => other.ok(&format!("UID STORE {pick} -FLAGS (\\Flagged)")),
            3 => {
                let w = words[next(words.len() as u64) as usize];
                other.append_message("INBOX", &format!("{w} {step}"), "\\Flagged");
                String::new()
            }
            _ if all.len() > 3 => {
                other.ok(&format!("UID STORE {pick} +FLAGS (\\Deleted)"));
                other.ok(&format!("UID EXPUNGE {pick}"))
            }
            _ => String::new(),
        };
        let (u, _) = c.cmd("NOOP");
        for l in with(&u, "* ESEARCH (TAG \"S1\")") {
            apply_update(&mut sorted, l);
        }
        for l in with(&u, "* ESEARCH (TAG \"S2\")") {
            apply_update(&mut found, l);
        }
        let fresh_sort = c.ok(&format!("UID SORT {SORT}"));
        let fresh_sort: Vec<u32> = fresh_sort
            .split(' ')
            .skip(2)
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(sorted, fresh_sort, "step {step}: {u:?}");
        let fresh = c.ok("UID SEARCH FLAGGED");
        let fresh: Vec<u32> = fresh
            .split(' ')
            .skip(2)
            .map(|x| x.parse().unwrap())
            .collect();
        assert_eq!(found, fresh, "step {step}: {u:?}");
    }
}

/// One session's script run by Dovecot and by postcore, a command at a time: the same
/// ESEARCH answers and updates after each command (both send an update at the end of the
/// command that caused it).
#[test]
fn one_session_script_answers_like_dovecot() {
    let lit = |l: &str| (l.to_string(), Vec::new());
    let msg = |subject: &str, flags: &str| {
        let m = format!("Subject: {subject}\r\n\r\nx\r\n");
        (
            format!("APPEND INBOX ({flags}) {{{}+}}", m.len()),
            m.into_bytes(),
        )
    };
    let cmds = vec![
        msg("one", ""),
        msg("two", "\\Seen"),
        msg("three", ""),
        lit("SELECT INBOX"),
        lit("SEARCH RETURN (UPDATE) ALL"),
        lit("SEARCH RETURN (CONTEXT) ALL"),
        lit("SEARCH RETURN (PARTIAL 1:2) ALL"),
        lit("SEARCH RETURN (PARTIAL 2:1 COUNT) ALL"),
        lit("SEARCH RETURN (PARTIAL 5:9) ALL"),
        lit("UID SEARCH RETURN (UPDATE COUNT) UNSEEN"),
        lit("SEARCH RETURN (UPDATE MIN) UNSEEN"),
        lit("STORE 1 +FLAGS (\\Seen)"),
        lit("NOOP"),
        lit("STORE 2 -FLAGS (\\Seen)"),
        lit("CANCELUPDATE \"d9\""),
        lit("STORE 3 +FLAGS (\\Seen)"),
        lit("SEARCH RETURN (SAVE UPDATE) ALL"),
        lit("STORE 1:3 +FLAGS (\\Deleted)"),
        lit("EXPUNGE"),
    ];
    let theirs = common::dovecot_steps(&cmds);
    let s = TestServer::start_basic();
    let mut c = Imap::login(s.imap, "alice", "alice-pw");
    let esearch = |u: &[String]| -> Vec<String> {
        u.iter()
            .filter(|l| l.starts_with("* ESEARCH"))
            .cloned()
            .collect()
    };
    let mut ours = Vec::new();
    for (i, (line, data)) in cmds.iter().enumerate() {
        let tag = format!("d{i}");
        let (u, t) = c.script_step(&tag, line, data);
        let status = |t: &str| t.split(' ').next().unwrap_or("").to_string();
        let (their_u, their_t) = &theirs[i];
        assert_eq!(status(&t), status(their_t), "{line}: {t} vs {their_t}");
        assert_eq!(esearch(&u), esearch(their_u), "{line}");
        ours.extend(esearch(&u));
    }
    assert!(ours.len() >= 10, "{ours:?}");
}
