//! Unit tests of the command parser.

use super::*;

fn p(s: &str) -> CommandBody {
    parse(s.as_bytes())
        .unwrap_or_else(|e| panic!("{s}: {e:?}"))
        .body
}

fn bad(s: &str) -> String {
    parse(s.as_bytes()).unwrap_err().message
}

#[test]
fn login_forms() {
    assert_eq!(
        p("a LOGIN alice \"p\\\"w\""),
        CommandBody::Login {
            user: "alice".into(),
            password: "p\"w".into()
        }
    );
    assert_eq!(
        p("a LOGIN {5}\r\nalice {2+}\r\npw"),
        CommandBody::Login {
            user: "alice".into(),
            password: "pw".into()
        }
    );
    assert!(bad("a LOGIN alice").contains("expected"));
}

#[test]
fn sequence_sets() {
    let CommandBody::Fetch { set, atts, .. } = p("1 FETCH 1:3,5,7:* (FLAGS UID)") else {
        panic!()
    };
    assert_eq!(set.resolve_seq(8), vec![1, 2, 3, 5, 7, 8]);
    assert_eq!(atts, vec![FetchAtt::Flags, FetchAtt::Uid]);
    let CommandBody::Fetch { set, .. } = p("1 UID FETCH *:4 FLAGS") else {
        panic!()
    };
    assert!(set.contains(9, 9) && set.contains(4, 9) && !set.contains(3, 9));
    assert!(bad("1 FETCH 0 FLAGS").contains("sequence"));
    assert!(bad("1 FETCH 1:x FLAGS").contains("sequence"));
    assert!(bad("1 FETCH , FLAGS").contains("sequence"));
}

#[test]
fn fetch_sections() {
    let CommandBody::Fetch { atts, .. } =
        p("1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)] BODY[1.2.MIME] BODY[]<0.100>)")
    else {
        panic!()
    };
    assert_eq!(
        atts[0],
        FetchAtt::Section {
            section: Section {
                part: vec![],
                text: SectionText::HeaderFields(vec!["FROM".into(), "SUBJECT".into()])
            },
            partial: None,
            peek: true,
            binary: false,
            size_only: false
        }
    );
    assert!(
        matches!(&atts[1], FetchAtt::Section { section, .. } if section.part == vec![1,2] && section.text == SectionText::Mime)
    );
    assert!(matches!(
        &atts[2],
        FetchAtt::Section {
            partial: Some((0, 100)),
            ..
        }
    ));
    assert_eq!(p("1 FETCH 1 FAST"), {
        let CommandBody::Fetch { set, .. } = p("1 FETCH 1 FLAGS") else {
            panic!()
        };
        CommandBody::Fetch {
            uid: false,
            set,
            atts: vec![FetchAtt::Flags, FetchAtt::InternalDate, FetchAtt::Size],
            changed_since: None,
            vanished: false,
        }
    });
    assert!(bad("1 FETCH 1 BODY[MIME]").contains("section"));
}

#[test]
fn search_nesting_is_bounded() {
    let deep = format!("a SEARCH {}ALL{}", "(".repeat(40), ")".repeat(40));
    assert!(bad(&deep).contains("deeply"));
    let CommandBody::Search { key, ret, .. } = p(
        "a UID SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR FROM x (SUBJECT \"y z\") SINCE 1-Feb-2024",
    ) else {
        panic!()
    };
    assert!(ret.extended && ret.min && ret.count && !ret.all);
    let SearchKey::And(v) = key else { panic!() };
    assert_eq!(v.len(), 2);
    assert_eq!(v[1], SearchKey::Since(days_from_civil(2024, 2, 1)));
}

#[test]
fn store_append_select() {
    assert_eq!(
        p("a UID STORE 1:* (UNCHANGEDSINCE 5) +FLAGS.SILENT (\\Seen foo)"),
        CommandBody::Store {
            uid: true,
            set: SeqSet(vec![(SeqNum::Value(1), SeqNum::Star)]),
            unchanged_since: Some(5),
            mode: StoreMode::Add,
            silent: true,
            flags: vec!["\\Seen".into(), "foo".into()]
        }
    );
    let CommandBody::Append {
        mailbox,
        mut messages,
    } = p("a APPEND inbox (\\Seen) \"05-Jan-2024 10:00:00 +0100\" {3}\r\nabc")
    else {
        panic!()
    };
    assert_eq!(messages.len(), 1);
    let message = messages.remove(0);
    assert_eq!(mailbox, "INBOX");
    assert_eq!(message.data, b"abc");
    assert_eq!(
        message.date,
        Some(days_from_civil(2024, 1, 5) * 86400 + 9 * 3600)
    );
    assert!(matches!(
        p("a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
        CommandBody::Select {
            qresync: Some(QResync {
                uidvalidity: 67890007,
                ..
            }),
            ..
        }
    ));
    assert!(bad("a STORE 1 FLAGS (\\Recent)").contains("Recent"));
}

#[test]
fn list_extended() {
    let CommandBody::List {
        patterns, options, ..
    } = p("a LIST (SUBSCRIBED) \"\" (INBOX \"Sent*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))")
    else {
        panic!()
    };
    assert_eq!(patterns, vec!["INBOX", "Sent*"]);
    assert!(options.subscribed && options.return_children);
    assert_eq!(options.status, vec![StatusItem::Messages, StatusItem::Size]);
    assert!(matches!(p("a LSUB \"\" *"), CommandBody::List { options, .. } if options.lsub));
}

/// RFC 5182 §4: `$` is a sequence set on its own, and SAVE a RETURN option.
#[test]
fn saved_results() {
    let CommandBody::Search { ret, key, .. } = p("a SEARCH RETURN (SAVE) $ UID $") else {
        panic!()
    };
    assert!(ret.save && !ret.all && !ret.min);
    assert_eq!(
        key,
        SearchKey::And(vec![
            SearchKey::Seq(SeqSet::saved()),
            SearchKey::Uid(SeqSet::saved())
        ])
    );
    let CommandBody::Fetch { set, .. } = p("a FETCH $ (FLAGS)") else {
        panic!()
    };
    assert!(set.is_saved());
    assert!(!bad("a FETCH $,1 (FLAGS)").is_empty());
    assert_eq!(
        SeqSet::of(&[1, 2, 3, 7, 9, 10]),
        SeqSet(vec![
            (SeqNum::Value(1), SeqNum::Value(3)),
            (SeqNum::Value(7), SeqNum::Value(7)),
            (SeqNum::Value(9), SeqNum::Value(10)),
        ])
    );
}

#[test]
fn thread_commands() {
    use crate::imap::thread::Algorithm;
    assert_eq!(
        p("a THREAD REFERENCES UTF-8 ALL"),
        CommandBody::Thread {
            uid: false,
            algorithm: Algorithm::References,
            key: SearchKey::All,
        }
    );
    assert!(matches!(
        p("a UID THREAD orderedsubject US-ASCII SINCE 1-Feb-1994"),
        CommandBody::Thread {
            uid: true,
            algorithm: Algorithm::OrderedSubject,
            ..
        }
    ));
    assert!(matches!(
        p("a THREAD REFS UTF-8 ALL"),
        CommandBody::Thread {
            algorithm: Algorithm::Refs,
            ..
        }
    ));
    assert!(bad("a THREAD NOSUCH UTF-8 ALL").contains("algorithm"));
    let e = parse(b"a THREAD REFERENCES KOI8-R ALL").unwrap_err();
    assert!(matches!(e.code, Some(Code::BadCharset(_))), "{e:?}");
    bad("a THREAD REFERENCES UTF-8");
    bad("a THREAD");
}

#[test]
fn esort_return_options() {
    match p("a UID SORT RETURN (MIN COUNT) (REVERSE DATE) UTF-8 ALL") {
        CommandBody::Sort {
            uid, ret, criteria, ..
        } => {
            assert!(uid && ret.extended && ret.min && ret.count && !ret.all);
            assert_eq!(criteria, vec![(true, SortKey::Date)]);
        }
        other => panic!("{other:?}"),
    }
    match p("a SORT RETURN () (SUBJECT) UTF-8 ALL") {
        CommandBody::Sort { ret, .. } => assert!(ret.extended && ret.all, "() is ALL"),
        other => panic!("{other:?}"),
    }
    match p("a SORT (SUBJECT) UTF-8 ALL") {
        CommandBody::Sort { ret, .. } => assert!(!ret.extended),
        other => panic!("{other:?}"),
    }
    bad("a SORT RETURN (BOGUS) (SUBJECT) UTF-8 ALL");
}

/// RFC 5267 §4: CONTEXT, UPDATE and PARTIAL return options, and CANCELUPDATE.
#[test]
fn context_return_options() {
    let ret = |s: &str| match p(s) {
        CommandBody::Search { ret, .. } | CommandBody::Sort { ret, .. } => ret,
        other => panic!("{other:?}"),
    };
    let r = ret("a SEARCH RETURN (UPDATE COUNT) UNSEEN");
    assert!(r.update && r.count && !r.all);
    let r = ret("a SEARCH RETURN (UPDATE) ALL");
    assert!(r.update && !r.all, "UPDATE alone asks for no data now");
    let r = ret("a SEARCH RETURN (CONTEXT) ALL");
    assert!(r.context && r.all, "CONTEXT is only a hint");
    assert_eq!(
        ret("a SEARCH RETURN (PARTIAL 500:400) ALL").partial,
        Some((400, 500))
    );
    // RFC 5465 §7: UPDATE with FETCH items, spaced as the RFC's example or not.
    let r = ret("a SEARCH RETURN (COUNT UPDATE (UID BODY[HEADER.FIELDS (TO FROM)])) ALL");
    assert!(r.update && r.count && r.update_fetch.len() == 2);
    assert_eq!(
        ret("a SEARCH RETURN (UPDATE(FLAGS)) ALL")
            .update_fetch
            .len(),
        1
    );
    let r = ret("a UID SORT RETURN (PARTIAL 1:10 COUNT UPDATE) (DATE) UTF-8 ALL");
    assert!(r.partial == Some((1, 10)) && r.count && r.update && !r.all);
    assert!(bad("a SEARCH RETURN (PARTIAL 1:2 ALL) ALL").contains("PARTIAL conflicts with ALL"));
    for b in [
        "a SEARCH RETURN (PARTIAL 0:2) ALL",
        "a SEARCH RETURN (PARTIAL 1:*) ALL",
        "a SEARCH RETURN (PARTIAL -1:-5) ALL",
        "a SEARCH RETURN (PARTIAL 1:2 PARTIAL 3:4) ALL",
        "a SEARCH RETURN (PARTIAL) ALL",
    ] {
        bad(b);
    }
    assert_eq!(
        p("a CANCELUPDATE \"B01\" \"B\\\\2\""),
        CommandBody::CancelUpdate(vec!["B01".into(), "B\\2".into()])
    );
    bad("a CANCELUPDATE");
    bad("a CANCELUPDATE B01");
}

/// RFC 5465 §3.1, §8: NOTIFY's forms and its composition rules (§5, §6.1).
#[test]
fn notify_commands() {
    assert_eq!(p("a NOTIFY NONE"), CommandBody::Notify(None));
    let CommandBody::Notify(Some(set)) = p(
        "a NOTIFY SET STATUS (selected (MessageNew (uid body.peek[header.fields (from)]) \
         messageexpunge)) (subtree Lists (MailboxName)) (mailboxes (\"a b\" INBOX) NONE)",
    ) else {
        panic!("not NOTIFY SET")
    };
    assert!(set.status);
    assert_eq!(set.groups.len(), 3);
    assert_eq!(set.groups[0].filter, NotifyFilter::Selected);
    assert!(
        matches!(&set.groups[0].events[0], NotifyEvent::MessageNew(a) if a.len() == 2),
        "{:?}",
        set.groups[0].events
    );
    assert_eq!(
        set.groups[1].filter,
        NotifyFilter::Subtree(vec!["Lists".into()])
    );
    assert_eq!(
        set.groups[2].filter,
        NotifyFilter::Mailboxes(vec!["a b".into(), "INBOX".into()])
    );
    assert!(set.groups[2].events.is_empty(), "NONE");
    let CommandBody::Notify(Some(set)) = p("a NOTIFY SET (PERSONAL (Foo))") else {
        panic!()
    };
    assert_eq!(set.groups[0].events, vec![NotifyEvent::Other("Foo".into())]);
    for b in [
        "a NOTIFY SET (SELECTED (MessageNew))",
        "a NOTIFY SET (PERSONAL (MessageExpunge FlagChange))",
        "a NOTIFY SET (PERSONAL (FlagChange))",
        "a NOTIFY SET (SELECTED (MessageNew MessageExpunge SubscriptionChange))",
        "a NOTIFY SET (SELECTED NONE) (SELECTED-DELAYED NONE)",
        "a NOTIFY SET (PERSONAL (MessageNew (UID) MessageExpunge))",
        "a NOTIFY SET (ELSEWHERE NONE)",
        "a NOTIFY SET STATUS",
        "a NOTIFY SET (PERSONAL ())",
        "a NOTIFY NONE extra",
    ] {
        bad(b);
    }
}

#[test]
fn compress_command() {
    assert_eq!(
        p("a COMPRESS DEFLATE"),
        CommandBody::Compress("DEFLATE".into())
    );
    assert_eq!(
        p("a compress deflate"),
        CommandBody::Compress("DEFLATE".into())
    );
    bad("a COMPRESS");
    bad("a COMPRESS DEFLATE extra");
}

#[test]
fn multiappend() {
    let CommandBody::Append { messages, .. } =
        p("a APPEND box {3}\r\nabc (\\Flagged) {2}\r\nde \"05-Jan-2024 10:00:00 +0000\" ~{1}\r\nf")
    else {
        panic!()
    };
    let parts: Vec<(&[u8], usize, bool)> = messages
        .iter()
        .map(|m| (m.data.as_slice(), m.flags.len(), m.date.is_some()))
        .collect();
    assert_eq!(
        parts,
        [
            (&b"abc"[..], 0, false),
            (&b"de"[..], 1, false),
            (&b"f"[..], 0, true)
        ]
    );
    bad("a APPEND box {3}\r\nabc ");
    bad("a APPEND box {3}\r\nabc (\\Seen)");
}

#[test]
fn savedate_items_and_keys() {
    let CommandBody::Fetch { atts, .. } = p("a FETCH 1 (SAVEDATE INTERNALDATE)") else {
        panic!()
    };
    assert_eq!(atts, vec![FetchAtt::SaveDate, FetchAtt::InternalDate]);
    let CommandBody::Search { key, .. } = p(
        "a SEARCH SAVEDBEFORE 1-Feb-2024 SAVEDON 2-Feb-2024 SAVEDSINCE 3-Feb-2024 SAVEDATESUPPORTED",
    ) else {
        panic!()
    };
    let SearchKey::And(v) = key else { panic!() };
    assert_eq!(
        v,
        vec![
            SearchKey::SavedBefore(days_from_civil(2024, 2, 1)),
            SearchKey::SavedOn(days_from_civil(2024, 2, 2)),
            SearchKey::SavedSince(days_from_civil(2024, 2, 3)),
            SearchKey::SaveDateSupported,
        ]
    );
}

#[test]
fn metadata_commands() {
    assert_eq!(
        p("a GETMETADATA (MAXSIZE 1024 DEPTH infinity) INBOX (/private/A /shared/b)"),
        CommandBody::GetMetadata {
            mailbox: "INBOX".into(),
            entries: vec!["/private/a".into(), "/shared/b".into()],
            max_size: Some(1024),
            depth: u32::MAX,
        }
    );
    assert_eq!(
        p("a GETMETADATA \"\" /shared/admin"),
        CommandBody::GetMetadata {
            mailbox: String::new(),
            entries: vec!["/shared/admin".into()],
            max_size: None,
            depth: 0,
        }
    );
    assert_eq!(
        p("a SETMETADATA box (/private/x \"v\" /shared/y NIL /private/z {2}\r\nab)"),
        CommandBody::SetMetadata {
            mailbox: "box".into(),
            entries: vec![
                ("/private/x".into(), Some(b"v".to_vec())),
                ("/shared/y".into(), None),
                ("/private/z".into(), Some(b"ab".to_vec())),
            ],
        }
    );
    for bad_cmd in [
        "a GETMETADATA INBOX /other/x",
        "a GETMETADATA (DEPTH 2) INBOX /private/x",
        "a SETMETADATA INBOX (/private/x)",
        "a SETMETADATA INBOX (/private/x/ \"v\")",
    ] {
        bad(bad_cmd);
    }
    let many: Vec<String> = (0..101).map(|i| format!("/private/{i}")).collect();
    bad(&format!("a GETMETADATA INBOX ({})", many.join(" ")));
}

#[test]
fn catenate_parts() {
    let CommandBody::Append { messages, .. } = p(
        "a APPEND Drafts (\\Seen) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER\" TEXT {4}\r\nbody URL /INBOX/;UID=3 TEXT ~{1}\r\nx)",
    ) else {
        panic!()
    };
    assert_eq!(messages.len(), 1);
    assert!(messages[0].data.is_empty());
    assert_eq!(
        messages[0].catenate,
        vec![
            CatPart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER".into()),
            CatPart::Text(b"body".to_vec()),
            CatPart::Url("/INBOX/;UID=3".into()),
            CatPart::Text(b"x".to_vec()),
        ]
    );
    bad("a APPEND Drafts CATENATE (BOGUS x)");
    bad("a APPEND Drafts CATENATE ()");
    assert_eq!(
        parse_section("1.2.MIME"),
        Some(Section {
            part: vec![1, 2],
            text: SectionText::Mime
        })
    );
    assert_eq!(parse_section("1.2]"), None);
}

#[test]
fn preview_forms() {
    let atts = |s: &str| match p(s) {
        CommandBody::Fetch { atts, .. } => atts,
        other => panic!("{other:?}"),
    };
    assert_eq!(atts("a FETCH 1 (PREVIEW (LAZY))"), vec![FetchAtt::Preview]);
    assert_eq!(atts("a FETCH 1 PREVIEW"), vec![FetchAtt::Preview]);
    assert_eq!(
        atts("a FETCH 1 (PREVIEW (FUZZY) SNIPPET (LAZY=FUZZY) SNIPPET)"),
        vec![
            FetchAtt::PreviewFuzzy(false),
            FetchAtt::PreviewFuzzy(true),
            FetchAtt::PreviewFuzzy(true)
        ]
    );
}
