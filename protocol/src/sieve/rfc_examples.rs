//! The RFCs' own examples, run through the compiler and the interpreter, with the outcome the
//! RFC text gives.

use super::dates::Moment;
use super::interp::{Action, Envelope, Host, Limits, Outcome};
use super::{compile, run};

struct World {
    seen: Vec<String>,
}

impl Host for World {
    fn now(&self) -> Moment {
        // 2026-12-03T12:00:00Z.
        Moment {
            utc: 1_796_299_200,
            offset: 0,
        }
    }
    fn duplicate_seen(&self, id: &str) -> bool {
        self.seen.iter().any(|s| s == id)
    }
    fn spam_test(&self, percent: bool) -> String {
        super::interp::spamtest_value(12.0, 15.0, percent)
    }
}

const MSG: &[u8] = b"Date: Tue, 1 Apr 1997 09:06:31 -0800\r\nFrom: coyote@desert.example.org\r\n\
To: roadrunner@acme.example.com\r\nSubject: I have a present for you\r\nX-Caffeine: C8H10N4O2\r\n\
Message-ID: <1@desert.example.org>\r\nList-Id: <coyotes.example.org>\r\n\r\nLook, I'm sorry about the whole anvil thing.\r\n";

fn outcome(src: &str) -> Outcome {
    outcome_seen(src, Vec::new())
}

fn outcome_seen(src: &str, seen: Vec<String>) -> Outcome {
    let script = compile(src).unwrap_or_else(|e| panic!("{e}\n{src}"));
    let env = Envelope {
        from: "coyote@desert.example.org".into(),
        to: "roadrunner+tv@acme.example.com".into(),
    };
    run(&script, MSG, &env, &World { seen }, Limits::default())
}

fn stores(o: &Outcome) -> Vec<String> {
    o.actions
        .iter()
        .filter_map(|a| match a {
            Action::Store { mailbox, .. } => Some(mailbox.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn rfc5228_section_2_example_and_header_tests() {
    // RFC 5228 §4.1 / §5.7.
    let o = outcome(
        "require \"fileinto\";\nif header :contains \"from\" \"coyote\" { fileinto \"INBOX.harassment\"; }",
    );
    assert_eq!(stores(&o), ["INBOX.harassment"]);
    assert!(!o.implicit_keep);
    // §5.7: header :is matches the whole (trimmed) value, case-insensitively by default.
    let o = outcome("if header :is \"X-Caffeine\" \"c8h10n4o2\" { discard; }");
    assert_eq!(o.actions, [Action::Discard]);
    // §5.9: size is exact: :over and :under never both hold.
    let o = outcome("if allof (size :over 100, size :under 100) { discard; }");
    assert!(o.actions.is_empty() && o.implicit_keep);
}

#[test]
fn rfc5228_section_9_example() {
    // RFC 5228 §9 (second example, trimmed to its tests).
    let src = r#"require "fileinto";
if header :is "Sender" "owner-ietf-mta-filters@imc.org" { fileinto "filter"; }
elsif address :DOMAIN :is ["From", "To"] "example.com" { keep; }
elsif anyof (not address :all :contains ["To", "Cc", "Bcc"] "me@example.com",
             header :matches "subject" ["*make*money*fast*", "*university*dipl*mas*"]) {
    fileinto "spam";
} else { fileinto "personal"; }"#;
    assert_eq!(stores(&outcome(src)), ["spam"]);
}

#[test]
fn rfc5229_variables_examples() {
    // RFC 5229 §3.2: match variables from :matches.
    let src = r#"require ["fileinto", "variables"];
if header :matches "Subject" "* have *" { fileinto "${2}"; }"#;
    assert_eq!(stores(&outcome(src)), ["a present for you"]);
    // §4.1: modifiers.
    let src = r#"require ["variables", "fileinto"];
set "a" "juMBlEd lETteRS"; set :length "b" "${a}"; set :lower "c" "${a}";
set :upperfirst "d" "${c}"; set :upperfirst :lower "e" "${a}"; set :quotewildcard "f" "a*b";
fileinto "${b}|${c}|${d}|${e}|${f}";"#;
    assert_eq!(
        stores(&outcome(src)),
        ["15|jumbled letters|Jumbled letters|Jumbled letters|a\\*b"]
    );
    // §3: an unknown variable is empty; "${" that names nothing stays as written.
    let src = "require [\"variables\", \"fileinto\"]; fileinto \"x${nosuch}y${}z${1a}\";";
    assert_eq!(stores(&outcome(src)), ["xy${}z${1a}"]);
}

#[test]
fn rfc5232_imap4flags_examples() {
    // RFC 5232 §5: the internal variable applies to the implicit keep.
    let o = outcome(
        "require \"imap4flags\"; addflag \"\\\\Flagged\"; addflag [\"A\", \"\\\\flagged B\"];",
    );
    assert!(o.implicit_keep);
    assert_eq!(o.keep_flags, ["\\Flagged", "A", "B"]);
    let o = outcome(
        "require [\"imap4flags\", \"fileinto\"]; setflag \"x\"; fileinto :flags \"y z\" \"F\"; removeflag \"x\";",
    );
    assert!(matches!(&o.actions[0], Action::Store { flags, .. } if flags == &["y", "z"]));
}

#[test]
fn rfc5230_vacation_example() {
    let o = outcome(
        "require \"vacation\";\nvacation :days 23 :addresses [\"tjs@example.edu\"] \"I'm away until October 19.\";",
    );
    match &o.actions[0] {
        Action::Vacation(v) => {
            assert_eq!(v.period, 23 * 86400);
            assert_eq!(v.addresses, ["tjs@example.edu"]);
        }
        a => panic!("{a:?}"),
    }
    assert!(
        o.implicit_keep,
        "vacation keeps the message (RFC 5230 §4.7)"
    );
}

#[test]
fn rfc5233_subaddress_and_envelope() {
    let o = outcome(
        "require [\"envelope\", \"subaddress\", \"fileinto\"];\nif envelope :detail \"to\" \"tv\" { fileinto \"tv\"; }\n\
         if envelope :user \"to\" \"roadrunner\" { fileinto \"rr\"; }",
    );
    assert_eq!(stores(&o), ["tv", "rr"]);
}

#[test]
fn rfc5260_date_examples() {
    // §4: the Date field's parts in its own zone and in another.
    let src = r#"require ["date", "relational", "fileinto"];
if date :originalzone :is "date" "hour" "09" { fileinto "nine"; }
if date :zone "+0000" :is "date" "hour" "17" { fileinto "utc17"; }
if currentdate :value "ge" "date" "2026-12-03" { fileinto "now"; }"#;
    assert_eq!(stores(&outcome(src)), ["nine", "utc17", "now"]);
}

#[test]
fn rfc5231_relational_examples() {
    // RFC 5231 §5: :count of the addresses in To and Cc.
    let src = r#"require ["relational", "comparator-i;ascii-numeric", "fileinto"];
if address :count "ge" :comparator "i;ascii-numeric" ["to", "cc"] ["1"] { fileinto "one"; }
if header :value "lt" :comparator "i;ascii-numeric" "x-nothere" "3" { fileinto "never"; }"#;
    assert_eq!(stores(&outcome(src)), ["one"]);
}

#[test]
fn rfc7352_duplicate_examples() {
    let src = "require \"duplicate\"; if duplicate { discard; }";
    let first = outcome(src);
    let Some(Action::TrackDuplicate(mark)) = first.actions.first().cloned() else {
        panic!("{first:?}")
    };
    assert!(first.implicit_keep);
    let again = outcome_seen(src, vec![mark.id]);
    assert!(again.actions.contains(&Action::Discard));
}

#[test]
fn rfc5293_editheader_examples() {
    let o = outcome(
        "require \"editheader\";\naddheader \"X-Source\" \"sieve\";\ndeleteheader :matches \"X-Caffeine\" \"C8*\";\n\
         deleteheader \"Received\";",
    );
    let h = String::from_utf8(o.header.expect("edited")).expect("utf-8");
    assert!(h.starts_with("X-Source: sieve\r\n"), "{h}");
    assert!(!h.contains("X-Caffeine"), "{h}");
}

#[test]
fn rfc5235_spamtest_examples() {
    // 12 of 15 → 1 + 9 × 0.8 = 8; 80 %.
    let src = r#"require ["spamtestplus", "relational", "comparator-i;ascii-numeric", "fileinto"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "8" { fileinto "spam"; }
if spamtest :percent :value "eq" :comparator "i;ascii-numeric" "80" { fileinto "pct"; }"#;
    assert_eq!(stores(&outcome(src)), ["spam", "pct"]);
}

#[test]
fn rfc5429_reject_conflicts() {
    let o = outcome("require [\"reject\", \"fileinto\"]; fileinto \"x\"; reject \"no\";");
    assert!(o.error.is_some() && o.implicit_keep && o.actions.is_empty());
    let o = outcome("require \"reject\"; reject \"Not wanted.\";");
    assert!(matches!(&o.actions[0], Action::Reject { reason, .. } if reason == "Not wanted."));
    assert!(!o.implicit_keep);
}

#[test]
fn limits_stop_runaway_scripts() {
    // Many redirects: the fifth is refused, the run ends in the implicit keep.
    let src: String = (0..6)
        .map(|i| format!("redirect \"r{i}@example.net\";\n"))
        .collect();
    let o = outcome(&src);
    assert!(o.error.is_some() && o.implicit_keep && o.actions.is_empty());
    // A costly :matches over a long value hits the step limit.
    let script = compile(&format!(
        "require \"variables\"; set \"v\" \"{}\"; if string :matches \"${{v}}\" \"{}\" {{ discard; }}",
        "a".repeat(4000),
        "*a".repeat(60) + "b"
    ))
    .expect("compiles");
    let env = Envelope::default();
    let limits = Limits {
        max_steps: 5_000,
        ..Limits::default()
    };
    let o = run(&script, MSG, &env, &World { seen: vec![] }, limits);
    assert!(
        o.error.as_deref().is_some_and(|e| e.contains("step limit")),
        "{o:?}"
    );
}

#[test]
fn error_cases_report_positions() {
    for (src, line, col, what) in [
        (
            "if true {\n  fileinto \"x\";\n}",
            2,
            3,
            "require \"fileinto\"",
        ),
        (
            "require \"fileinto\";\nfileinto \"a\" \"b\";",
            2,
            14,
            "too many",
        ),
        ("if header :is \"a\"\n  { keep; }", 1, 4, "missing its keys"),
        ("keep;\nif\n", 2, 1, "missing ';'"),
        ("require \"nosuch\";", 1, 1, "unknown capability"),
    ] {
        let e = compile(src).expect_err(src);
        assert!(e.message.contains(what), "{src}: {e}");
        assert_eq!((e.pos.line, e.pos.col), (line, col), "{src}: {e}");
    }
}
