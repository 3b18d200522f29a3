//! The antispam check over rule files written for the test, and over Debian's SpamAssassin
//! rules when they are installed.

use super::*;
use crate::{MessageAction, ScanContext};

/// An engine of the built-in rules plus `text`.
fn engine_with(text: &str) -> Engine {
    let mut set = builtin_set();
    set.add_text("test.cf", text, None).expect("loads");
    set.finish();
    Engine::compile(set)
}

fn hits(e: &Engine, raw: &[u8]) -> Vec<String> {
    let msg = mail_parser::MessageParser::default().parse(raw);
    let view = message::View::new(raw, msg.as_ref(), "sender@example.test");
    let mut v: Vec<String> = e.run(&view, raw, 0).into_iter().map(|h| h.name).collect();
    v.sort();
    v
}

const RULES: &str = r#"
header   T_SUBJ      Subject =~ /\bcheap\b/i
header   T_NOT_XM    X-Mailer !~ /^Mutt/
header   T_XM_EXISTS exists:X-Mailer
header   T_FROM_ADDR From:addr =~ /\@bulk\.test$/
body     T_BODY      /limited offer/i
rawbody  T_RAW       /<font\s+size="?7/i
full     T_FULL      /^X-Campaign-Id: \d+$/m
uri      T_URI       m{^https?://[^/]*\.example\.ru\b}i
mimeheader T_MIME    Content-Type =~ /name="?invoice\.zip/i
body     __T_A       /alpha/
body     __T_B       /beta/
meta     T_META      __T_A && !__T_B
body     T_MULTI     /buy/i
tflags   T_MULTI     multiple maxhits=3
body     T_LOOK      /(?!viagra)v[i1]agra/i
body     T_BACKREF   /\b(\w+) \1\b/
score    T_SUBJ      1.5
score    T_MULTI     0.5
score    T_META      2
"#;

#[test]
fn each_rule_type_hits_what_it_reads() {
    let e = engine_with(RULES);
    let spam = b"From: Deals <offers@bulk.test>\r\nTo: a@example.test\r\n\
        Subject: Cheap watches\r\nX-Campaign-Id: 4711\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
        Message-ID: <1@bulk.test>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/html\r\n\r\n<p><font size=7>Limited offer</font> alpha \
        <a href=\"http://shop.example.ru/x\">buy buy buy buy</a> v1agra the the</p>\r\n\
        --b\r\nContent-Type: application/zip; name=\"invoice.zip\"\r\n\r\nUEsDBA==\r\n--b--\r\n";
    let got = hits(&e, spam);
    for want in [
        "T_SUBJ",
        "T_NOT_XM",
        "T_FROM_ADDR",
        "T_BODY",
        "T_RAW",
        "T_FULL",
        "T_URI",
        "T_MIME",
        "T_META",
        "T_MULTI",
        "T_LOOK",
        "T_BACKREF",
    ] {
        assert!(
            got.contains(&want.to_string()),
            "{want} missing from {got:?}"
        );
    }
    assert!(!got.contains(&"T_XM_EXISTS".to_string()));
    assert!(
        !got.iter().any(|n| n.starts_with("__")),
        "sub-rules are not reported"
    );
    // `multiple` counts matches up to maxhits: 3 × 0.5.
    let msg = mail_parser::MessageParser::default().parse(&spam[..]);
    let view = message::View::new(spam, msg.as_ref(), "s@x.test");
    let multi = e
        .run(&view, spam, 0)
        .into_iter()
        .find(|h| h.name == "T_MULTI")
        .expect("hit");
    assert_eq!(multi.count, 3);
    assert!((multi.score - 1.5).abs() < 1e-9);

    let ham = b"From: Bob <bob@example.test>\r\nTo: a@example.test\r\nSubject: lunch\r\n\
        X-Mailer: Mutt 2.2\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <2@example.test>\r\n\r\n\
        alpha and beta at noon? viagra is not here.\r\n";
    let got = hits(&e, ham);
    assert_eq!(got, vec!["T_XM_EXISTS".to_string()], "ham: {got:?}");
}

#[test]
fn regexes_run_on_hyperscan_prefilter_or_fallback() {
    let e = engine_with(RULES);
    let r = &e.report;
    assert!(r.hyperscan >= 8, "{r:?}");
    // The look-ahead runs as a prefilter confirmed by fancy-regex; the back-reference on
    // fancy-regex alone (Hyperscan's prefilter mode cannot take it either) or prefiltered.
    assert!(r.prefiltered + r.fallback >= 2, "{r:?}");
    assert_eq!(r.loaded.get("meta"), Some(&(1 + 7)), "{r:?}");
}

#[test]
fn gtube_scores_above_deny_and_thresholds_pick_actions() {
    let a = Antispam::new();
    let ctx = ScanContext::for_test(&["a@example.test"]);
    let raw = b"From: a@example.test\r\nSubject: test\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
        Message-ID: <g@example.test>\r\n\r\n\
        XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    let j = a.judge(&ScanInput::new(&ctx, raw));
    assert!(j.score >= 1000.0, "{j:?}");
    assert_eq!(j.action, SpamAction::Reject);
    assert_eq!(j.threshold, Some(15.0));
    let p = SpamPolicy::default();
    assert_eq!(action_for(3.99, &p).0, SpamAction::NoAction);
    assert_eq!(action_for(4.0, &p).0, SpamAction::Greylist);
    assert_eq!(action_for(6.0, &p).0, SpamAction::AddHeader);
    assert_eq!(action_for(15.0, &p).0, SpamAction::Reject);
    let off = SpamPolicy {
        deny_score: None,
        ..SpamPolicy::default()
    };
    assert_eq!(action_for(100.0, &off).0, SpamAction::AddHeader);
}

#[test]
fn built_in_heuristics_fire() {
    let a = Antispam::new();
    let ctx = ScanContext::for_test(&["a@example.test"]);
    let raw = b"From: \"service@bank.test\" <x@phish.test>\r\nSubject: =?utf-8?B?VVJHRU5UIEFDQ09VTlQgTk9USUNF?=\r\n\
        Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n<b>hi</b>\r\n\
        --b\r\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\n\r\nTVqQ\r\n--b--\r\n";
    let j = a.judge(&ScanInput::new(&ctx, raw));
    let names: Vec<&str> = j.symbols.iter().map(|h| h.name.as_str()).collect();
    for want in [
        "PC_MISSING_DATE",
        "PC_MISSING_MID",
        "PC_FROM_NAME_SPOOF",
        "PC_SUBJ_EXCESS_B64",
        "PC_SUBJ_ALL_CAPS",
        "PC_HTML_ONLY",
        "PC_ATTACH_DOUBLE_EXT",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    assert!(j.score >= 6.0, "{j:?}");
}

#[test]
fn flag_headers_remove_ours_and_prefix_the_subject() {
    let j = Judgement {
        score: 7.5,
        action: SpamAction::AddHeader,
        threshold: Some(6.0),
        symbols: vec![Hit {
            name: "A".into(),
            score: 7.5,
            count: 1,
            detail: None,
        }],
        micros: 1,
    };
    let p = SpamPolicy {
        subject_prefix: "[SPAM]".into(),
        ..SpamPolicy::default()
    };
    let edits = flag_headers(&j, &p, Some("hello"));
    assert!(edits.contains(&HeaderEdit::Remove {
        name: "X-Spam".into()
    }));
    assert!(edits.contains(&HeaderEdit::Add {
        name: "X-Spam".into(),
        value: "Yes".into()
    }));
    assert!(edits.contains(&HeaderEdit::Add {
        name: "X-Spam-Score".into(),
        value: "7.50 / 6.00".into()
    }));
    assert!(edits.contains(&HeaderEdit::Add {
        name: "Subject".into(),
        value: "[SPAM] hello".into()
    }));
}

/// Debian's SpamAssassin rules (package `spamassassin`), compiled once for every test that
/// needs them.
pub(crate) fn debian_engine() -> &'static Engine {
    static ENGINE: std::sync::OnceLock<Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(|| {
        let dir = std::path::Path::new("/usr/share/spamassassin");
        assert!(
            dir.is_dir(),
            "install Debian's spamassassin package (scripts/deps.sh test)"
        );
        let set = load_set(&[dir.to_path_buf()]).expect("Debian's rules load");
        let cache = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/spam-cache");
        Engine::compile_cached(set, Some(&cache))
    })
}

#[test]
fn debian_rules_load_and_every_rule_is_accounted_for() {
    let dir = std::path::Path::new("/usr/share/spamassassin");
    let mut set = RuleSet::default();
    set.load_dir(dir).expect("loads");
    set.finish();
    let mut names: std::collections::BTreeSet<String> = set.rules.keys().cloned().collect();
    let mut b = builtin_set();
    b.finish();
    names.extend(b.rules.keys().cloned());
    let e = debian_engine();
    let r = &e.report;
    // Every rule read (Debian's and the built-in ones, a name counted once) is compiled or
    // skipped with a reason, none silently dropped.
    let skipped_after_read: usize = r
        .skipped
        .iter()
        .filter(|(k, _)| {
            k.starts_with("eval:")
                || k.starts_with("reads a")
                || k.starts_with("regex neither")
                || k.starts_with("meta ")
                || k.as_str() == crate::spam::engine::UNUSED
                || k.as_str() == crate::spam::engine::FIXED
        })
        .map(|(_, v)| v)
        .sum();
    assert_eq!(r.total_loaded() + skipped_after_read, names.len(), "{r:?}");
    // Nearly every regex rule runs on Hyperscan (exactly, or as a prefilter confirmed by
    // fancy-regex), most of them exactly.
    let regexes = r.hyperscan + r.prefiltered + r.fallback;
    assert!((r.hyperscan + r.prefiltered) * 100 >= regexes * 95, "{r:?}");
    assert!(r.hyperscan * 100 >= regexes * 70, "{r:?}");
    // The rules built from 25_replace.cf's tags read plain texts narrowed; those too large for
    // Hyperscan to run exactly whole (the sextortion phrases) are exact narrowed.
    assert!(r.narrowed >= 40, "{r:?}");
    let exact = e.ascii_exact_rules();
    assert!(
        exact.contains(&"__YOUR_WEBCAM") && exact.contains(&"__PAY_ME"),
        "{exact:?}"
    );
    assert!(r.total_loaded() > 1500, "{r:?}");
    assert!(r.loaded.get("header").is_some_and(|n| *n > 300), "{r:?}");
    assert!(r.loaded.get("body").is_some_and(|n| *n > 300), "{r:?}");
    assert!(r.loaded.get("meta").is_some_and(|n| *n > 300), "{r:?}");
}

#[test]
fn debian_rules_judge_gtube_and_plain_mail() {
    let e = debian_engine();
    let gtube = b"Subject: test\r\n\r\nXJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X\r\n";
    assert!(hits(e, gtube).contains(&"GTUBE".to_string()));
    let spam = b"From: \"Pharmacy\" <sales@pills.test>\r\nSubject: V1AGRA 80% OFF!!!\r\n\
        Date: Tue, 1 Dec 2026 10:00:00 +0000\r\nMessage-ID: <x@pills.test>\r\n\r\n\
        Dear friend, buy VIAGRA online now! 100% satisfaction guaranteed. \
        Click here to be removed from our mailing list.\r\n";
    let got = hits(e, spam);
    assert!(got.len() >= 2, "{got:?}");
}

#[test]
fn dmarc_policy_refuses_quarantines_or_only_scores() {
    use crate::network::{AuthResult, DmarcFact, DmarcPolicy, NetFacts};
    let a = Antispam::new();
    let raw = b"From: ceo@spoof.test\r\nSubject: pay\r\nDate: Tue, 1 Dec 2026 10:00:00 +0000\r\n\
        Message-ID: <d@spoof.test>\r\n\r\nWire it.\r\n";
    let verdict_for = |policy: DmarcPolicy, edit: &dyn Fn(&mut SpamPolicy)| {
        let mut ctx = ScanContext::for_test(&["a@example.test"]);
        ctx.net = Some(NetFacts {
            dmarc: Some(DmarcFact {
                result: AuthResult::Fail,
                policy,
                domain: "spoof.test".into(),
            }),
            ..NetFacts::default()
        });
        edit(&mut ctx.policy.spam);
        let input = ScanInput::new(&ctx, raw);
        let j = a.judge(&input);
        apply(Verdict::accept(), &j, &input, None)
    };
    let v = verdict_for(DmarcPolicy::Reject, &|_| {});
    assert!(
        matches!(&v.action, MessageAction::Reject(r) if r.code == 550 && r.text.contains("spoof.test")),
        "{v:?}"
    );
    assert!(v.symbols.iter().any(|s| s.name == "DMARC_POLICY_REJECT"));
    // In quarantine mode it is held, not refused.
    let v = verdict_for(DmarcPolicy::Reject, &|p| {
        p.quarantine_to = Some("quarantine@example.test".into())
    });
    assert_eq!(v.action, MessageAction::Accept);
    assert!(v.symbols.iter().any(|s| s.name == "QUARANTINED"), "{v:?}");
    // p=quarantine flags the message whatever its score.
    let v = verdict_for(DmarcPolicy::Quarantine, &|_| {});
    assert_eq!(v.action, MessageAction::Accept);
    assert_eq!(v.disposition(0), &Disposition::Junk);
    // Not enforced: the symbol only.
    let v = verdict_for(DmarcPolicy::Reject, &|p| p.dmarc_enforce = false);
    assert_eq!(v.action, MessageAction::Accept);
    assert_eq!(v.disposition(0), &Disposition::Keep);
    assert!(v.symbols.iter().any(|s| s.name == "DMARC_POLICY_REJECT"));
}

/// The test rules (`T_…`) of `e` that hit a short message holding "alpha beta gamma".
fn test_rules_hit(e: &Engine) -> Vec<String> {
    let got = hits(e, b"Subject: x\r\n\r\nalpha beta gamma\r\n");
    got.into_iter().filter(|n| n.starts_with("T_")).collect()
}

#[test]
fn a_pattern_with_an_end_anchor_inside_is_prefiltered_by_hyperscan() {
    // Hyperscan refuses `$` inside a pattern even as a prefilter; without the assertion it
    // takes it, and the confirming engine keeps the matches exact.
    let base = engine_with("").report;
    let e = engine_with("body T_ANCHOR /(?:$|\\W)(?!opt-in)opt[-\\s]?out(?:$|\\W)/i\n");
    assert_eq!(e.report.prefiltered, base.prefiltered + 1, "{:?}", e.report);
    assert_eq!(e.report.fallback, base.fallback, "{:?}", e.report);
    let hit = |body: &str| {
        let raw = format!("Subject: x\r\n\r\n{body}\r\n");
        hits(&e, raw.as_bytes()).contains(&"T_ANCHOR".to_string())
    };
    assert!(hit("please opt-out."));
    assert!(hit("Click to OPT OUT"));
    assert!(!hit("adopt out"));
    assert!(!hit("optout2"));
}

#[test]
fn rules_behind_a_meta_fixed_by_a_missing_rule_are_not_run() {
    // __T_NOPE is an eval postcore does not have (read as 0, as SpamAssassin reads a rule
    // its plugins lack), so T_NEVER is 0 whatever __T_GAMMA is: __T_GAMMA need not run.
    // __T_ALWAYS (!__T_NOPE) is fixed at 1 and must still run for T_BETA, which reads it.
    let e = engine_with(
        r#"
body   __T_GAMMA  /gamma/
header __T_NOPE   eval:check_postcore_does_not_have()
meta   T_NEVER    __T_GAMMA && __T_NOPE
meta   __T_ALWAYS !__T_NOPE
body   __T_BETA   /beta/
meta   T_BETA     __T_BETA && __T_ALWAYS
meta   T_EITHER   __T_GAMMA || T_NEVER
score  T_EITHER   0
"#,
    );
    let fixed = e.report.skipped.get(engine::FIXED).copied().unwrap_or(0);
    assert_eq!(fixed, 1, "{:?}", e.report.skipped);
    assert_eq!(test_rules_hit(&e), ["T_BETA"]);
}

#[test]
fn rules_that_cannot_change_a_score_are_not_run() {
    // SpamAssassin runs no rule scored 0; a sub-rule no meta reads counts for nothing.
    let e = engine_with(
        r#"
body  T_ON        /alpha/
body  T_OFF       /alpha/
score T_OFF       0
body  T_READ      /beta/
score T_READ      0
body  __T_SUB     /gamma/
body  __T_DEEP    /delta/
meta  __T_MID     __T_DEEP || T_READ
meta  T_META      __T_SUB && __T_MID
body  __T_ALONE   /alpha/
"#,
    );
    let skipped = e.report.skipped.get(engine::UNUSED).copied().unwrap_or(0);
    assert_eq!(skipped, 2, "{:?}", e.report.skipped);
    // The two skipped are T_OFF and __T_ALONE: T_META needs T_READ (scored 0, but read
    // through __T_MID) and __T_SUB, and still hits.
    assert_eq!(test_rules_hit(&e), ["T_META", "T_ON"]);
}

/// An engine of `rules` in which Hyperscan alone decides plain texts for `rule` only.
fn exact_narrowed(rules: &str, rule: &str) -> Engine {
    let e = engine_with(rules);
    assert_eq!(e.ascii_exact_rules(), [rule], "{:?}", e.report);
    e
}

/// Asserts for each body whether `rule` hits a UTF-8 text message holding it.
fn hits_in_utf8_texts(e: &Engine, rule: &str, cases: &[(&[u8], bool)]) {
    for (body, want) in cases {
        let got = hits(e, &utf8_text(body)).iter().any(|h| h == rule);
        assert_eq!(got, *want, "{rule} on {:?}", String::from_utf8_lossy(body));
    }
}

/// A plain-text UTF-8 message with `body`.
fn utf8_text(body: &[u8]) -> Vec<u8> {
    let mut m = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: s\r\n\
        Content-Type: text/plain; charset=utf-8\r\n\r\n"
        .to_vec();
    m.extend_from_slice(body);
    m.extend_from_slice(b"\r\n");
    m
}

/// A rule built from ReplaceTags with non-ASCII look-alikes reads ASCII-only texts through its
/// narrowed form and every other text through the whole one: both find what SpamAssassin's
/// pattern finds, and a text that only the non-ASCII look-alikes match still hits.
#[test]
fn replace_tags_read_ascii_texts_narrowed_and_others_whole() {
    let e = engine_with(
        "replace_tag V (?:[vV\\xc5]|[\\xd1][\\xb5])\nreplace_tag I (?:[iI1!\\xcc]|[\\xc3][\\xac\\xad])\n\
         body T_LOOKALIKE /<V><I>agra/\nbody __T_SUB /<V><I>c/\nmeta T_SUB_META __T_SUB\n\
         replace_rules T_LOOKALIKE __T_SUB\nscore T_LOOKALIKE 2\nscore T_SUB_META 1\n",
    );
    assert_eq!(e.report.narrowed, 2, "{:?}", e.report);
    let has = |body: &[u8], rule: &str| hits(&e, &utf8_text(body)).iter().any(|h| h == rule);
    // ASCII texts (the narrowed form).
    assert!(has(b"buy V1agra now", "T_LOOKALIKE"));
    assert!(has(b"a v!c here", "T_SUB_META"));
    assert!(!has(b"buy vegetables", "T_LOOKALIKE"));
    // Texts with octets above 0x7f (the whole form): a UTF-8 look-alike (U+0475), and an ASCII
    // match in a paragraph that also holds other octets.
    assert!(has(b"buy \xd1\xb5iagra now", "T_LOOKALIKE"));
    assert!(has(b"caf\xc3\xa9 v\xc3\xacagra", "T_LOOKALIKE"));
    assert!(has(b"caf\xc3\xa9 viagra", "T_LOOKALIKE"));
    assert!(!has(b"caf\xc3\xa9 vegetables", "T_LOOKALIKE"));
}

/// A rule whose whole form Hyperscan can only prefilter (its look-alikes repeated make it too
/// costly) while the narrowed form is exact: on ASCII texts Hyperscan's flag decides without a
/// confirming pass, other texts are still confirmed, and both agree with the rule.
#[test]
fn narrowed_exact_form_decides_ascii_texts_alone() {
    // Tags of forty UTF-8 look-alikes each, as 25_replace.cf writes them.
    let tag = |ascii: &str| {
        let mut v = format!("(?:[{ascii}]");
        for b in 0x80..0xa8u8 {
            v.push_str(&format!("|[\\xd0][\\x{b:02x}]"));
        }
        v + ")"
    };
    let rules = format!(
        "replace_tag V {}\nreplace_tag I {}\nreplace_tag A {}\nreplace_post P3 {{1,3}}\n\
         body T_HEAVY /<post P3><V><I><A>gra/\nreplace_rules T_HEAVY\nscore T_HEAVY 2\n",
        tag("vV"),
        tag("iI1"),
        tag("aA@")
    );
    let e = exact_narrowed(&rules, "T_HEAVY");
    assert!(e.report.prefiltered >= 1, "{:?}", e.report);
    hits_in_utf8_texts(
        &e,
        "T_HEAVY",
        &[
            (b"cheap vvi1@@gra here", true),
            (b"cheap vvi1@@ here", false),
            // Not ASCII: a look-alike (U+0410) confirmed from the relaxed prefilter's candidates.
            (b"cheap vi\xd0\x90gra here", true),
            (b"caf\xc3\xa9 viagra", true),
            (b"caf\xc3\xa9 vi\xd0\x90 gra", false),
        ],
    );
}

/// A ReplaceTags rule too large for Hyperscan whole (as SpamAssassin's longest ones are) still
/// has Hyperscan decide plain texts through its narrowed form; other texts go to the
/// confirming engine, which reads the whole pattern.
#[test]
fn rule_too_large_whole_is_decided_narrowed_on_plain_texts() {
    let tag = |ascii: &str| {
        let mut v = format!("(?:[{ascii}]");
        for hi in 0x90..0xb0u8 {
            for lo in 0x80..0x90u8 {
                v.push_str(&format!("|[\\xe1][\\x{hi:02x}][\\x{lo:02x}]"));
            }
        }
        v + ")"
    };
    let letters = ["wW", "eE3", "bB8", "cCk", "aA@", "mM"];
    let mut rules = String::new();
    for (i, l) in letters.iter().enumerate() {
        rules.push_str(&format!("replace_tag L{i} {}\n", tag(l)));
    }
    rules.push_str(
        "body T_HUGE /your\\s<L0><L1><L2><L3><L4><L5>/\nreplace_rules T_HUGE\nscore T_HUGE 2\n",
    );
    let e = exact_narrowed(&rules, "T_HUGE");
    assert!(e.report.fallback >= 1, "too large whole: {:?}", e.report);
    hits_in_utf8_texts(
        &e,
        "T_HUGE",
        &[
            (b"from your w3bc@m now", true),
            (b"from your webcan now", false),
            // Not plain: a three-octet look-alike, and a character reference in the text.
            (b"from your \xe1\x90\x80ebcam now", true),
            (b"your webcam &#169; 2026", true),
            (b"your web cam &#169; 2026", false),
        ],
    );
}

/// A `full` rule's bounded repeat runs exactly on Hyperscan up to a larger weight than other
/// rules' (confirming one would read the whole message): SpamAssassin's `__LONGLINE` is exact
/// as a `full` rule and prefiltered as a `rawbody` one, and both find the long line.
#[test]
fn full_rules_run_heavier_repeats_exactly() {
    let base = engine_with("").report;
    let e = engine_with(
        "full T_LONG_FULL /^[^\\r\\n]{998}/m\nrawbody T_LONG_RAW /^[^\\r\\n]{998}/m\n\
         score T_LONG_FULL 1\nscore T_LONG_RAW 1\n",
    );
    assert_eq!(e.report.hyperscan, base.hyperscan + 1, "{:?}", e.report);
    assert_eq!(e.report.prefiltered, base.prefiltered + 1, "{:?}", e.report);
    for (len, want) in [(1_000, true), (997, false)] {
        let got = hits(&e, &utf8_text("x".repeat(len).as_bytes()));
        let expected: Vec<String> = if want {
            vec!["T_LONG_FULL".into(), "T_LONG_RAW".into()]
        } else {
            Vec::new()
        };
        let long: Vec<String> = got
            .into_iter()
            .filter(|h| h.starts_with("T_LONG"))
            .collect();
        assert_eq!(long, expected, "line of {len}");
    }
}

/// Sub-rules that need confirming (back-references run on fancy-regex, look-arounds
/// prefiltered), read by metas through `&&`, `||`, `!` and sums, over other metas.
const ON_DEMAND: &str = r#"
body     __D_REPEAT    /\b(\w+) \1\b/
body     __D_NOT_BAD   /(?<!not )bad/
header   __D_SUBJ_TWICE Subject =~ /(\w{3}).*\1/
header   __D_NO_ECHO   Subject !~ /(\w)\1/
body     __D_CHEAP     /cheap/
body     __D_FREE      /free/
body     __D_MANY      /(?=mon)money/
tflags   __D_MANY      multiple maxhits=3
meta     __D_EITHER    __D_REPEAT || __D_NOT_BAD
meta     T_D_AND       __D_CHEAP && __D_REPEAT
meta     T_D_OR        __D_FREE || __D_SUBJ_TWICE
meta     T_D_NOT       !__D_CHEAP && !__D_NO_ECHO
meta     T_D_SUM       __D_CHEAP + __D_FREE + __D_EITHER + __D_MANY >= 3
meta     T_D_DEEP      __D_EITHER && (__D_FREE || __D_SUBJ_TWICE)
meta     T_D_LATE      __D_SUBJ_TWICE && __D_NOT_BAD && __D_FREE
score    T_D_LATE 1
score    T_D_AND 1
score    T_D_OR 1
score    T_D_NOT 1
score    T_D_SUM 1
score    T_D_DEEP 1
"#;

/// Worked out on demand, the rules that score get the same hits as when every sub-rule and
/// meta runs, while sub-rules behind a failing condition are not confirmed.
#[test]
fn sub_rules_on_demand_score_as_running_every_rule() {
    let mut e = engine_with(ON_DEMAND);
    const WORDS: &[&str] = &[
        "cheap", "free", "bad", "not", "money", "mon", "the", "the", "abc", "aab", "x",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m as u64) as usize
    };
    let (mut skipped, mut seen) = (0, std::collections::BTreeSet::new());
    for _ in 0..300 {
        let mut words = |n: usize| -> String {
            let picked: Vec<&str> = (0..n).map(|_| WORDS[next(WORDS.len())]).collect();
            picked.join(" ")
        };
        let subject = words(3);
        let body = words(8);
        let raw = format!(
            "From: a@example.test\r\nTo: b@example.test\r\nSubject: {subject}\r\n\r\n{body}\r\n"
        );
        let msg = mail_parser::MessageParser::default().parse(raw.as_bytes());
        let view = message::View::new(raw.as_bytes(), msg.as_ref(), "s@example.test");
        e.set_on_demand(true);
        let (lazy, confirmed) = e.run_counted(&view, raw.as_bytes(), 0);
        e.set_on_demand(false);
        let (eager, all) = e.run_counted(&view, raw.as_bytes(), 0);
        assert_eq!(lazy, eager, "subject {subject:?} body {body:?}");
        assert!(confirmed <= all);
        skipped += all - confirmed;
        seen.extend(
            eager
                .into_iter()
                .map(|h| h.name)
                .filter(|n| n.starts_with("T_D_")),
        );
    }
    assert!(skipped > 0, "no sub-rule was left unconfirmed");
    let all: Vec<&str> = vec![
        "T_D_AND", "T_D_DEEP", "T_D_LATE", "T_D_NOT", "T_D_OR", "T_D_SUM",
    ];
    assert_eq!(seen.iter().map(String::as_str).collect::<Vec<_>>(), all);
}
