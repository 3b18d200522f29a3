//! Differential test of postcore's Sieve interpreter against Pigeonhole's `sieve-test`
//! (Debian `dovecot-sieve`): every (script, message) pair — the hand-written scripts in
//! tests/sieve/cases.sieve and generated ones — runs through both, and the actions each
//! reports must be the same. A difference fails unless tests/sieve/allow.txt lists the case
//! with the RFC section that shows postcore right.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use postcore_protocol::sieve::{self, Envelope, Host, Limits, dates::Moment, interp};

const FROM: &str = "sender+tag@example.org";
const TO: &str = "bob+box@example.com";
/// The spam score that means "certainly spam" for spamtest, as configured on both sides.
const SPAM_MAX: f64 = 15.0;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sieve")
}

/// The scripts of cases.sieve: (name, extension, source).
fn written_cases() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(root().join("cases.sieve")).expect("cases.sieve");
    let mut out: Vec<(String, String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(head) = line.strip_prefix("### ") {
            let mut words = head.split_whitespace();
            let name = words.next().unwrap_or("").to_string();
            let ext = words.next().unwrap_or("core").to_string();
            out.push((name, ext, String::new()));
        } else if let Some(last) = out.last_mut() {
            last.2.push_str(line);
        }
    }
    out
}

/// Generated scripts: each combines four tests of one kind with different match types,
/// comparators, address parts and keys, each test filing into its own folder, so one run
/// checks four decisions.
fn generated_cases() -> Vec<(String, String, String)> {
    let mut seed: u64 = 0x5EED_1234_ABCD;
    let mut rnd = move |n: usize| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((seed >> 33) as usize) % n
    };
    let keys = [
        "hello",
        "HELLO world*",
        "*example*",
        "bob",
        "example.com",
        "1",
        "a?ice*",
        "*order ? 1234*",
        "",
        "*",
        "dev",
        "alice+news@example.org",
        "3.5",
        "b*x",
        "*.example.*",
        "z",
    ];
    let regex_keys = [
        "^hello",
        "[0-9]+",
        "example\\.(org|com)$",
        "^$",
        ".*",
        "B.B",
        "(a|e)x",
    ];
    let headers = [
        "subject",
        "from",
        "to",
        "cc",
        "comments",
        "x-priority",
        "list-id",
        "date",
    ];
    let matches = [
        ":is",
        ":contains",
        ":matches",
        ":regex",
        ":value \"gt\"",
        ":value \"le\"",
        ":count \"ge\"",
        ":count \"eq\"",
    ];
    let comparators = [
        "",
        ":comparator \"i;octet\"",
        ":comparator \"i;ascii-casemap\"",
        ":comparator \"i;ascii-numeric\"",
    ];
    let parts = ["", ":all", ":localpart", ":domain", ":user", ":detail"];
    let kinds = ["header", "address", "envelope", "body", "string", "exists"];
    let mut out = Vec::new();
    for n in 0..150 {
        let kind = kinds[n % kinds.len()];
        let mut src = String::from(
            "require [\"fileinto\", \"relational\", \"comparator-i;ascii-numeric\", \"regex\", \"subaddress\", \
             \"envelope\", \"body\", \"variables\"];\n",
        );
        for t in 0..4 {
            let m = matches[rnd(matches.len())];
            let mut c = comparators[rnd(comparators.len())];
            if c.contains("numeric") && (m == ":contains" || m == ":matches" || m == ":regex") {
                c = "";
            }
            let key = if m == ":regex" {
                regex_keys[rnd(regex_keys.len())]
            } else {
                keys[rnd(keys.len())]
            };
            let key = key.replace('\\', "\\\\");
            let h = headers[rnd(headers.len())];
            let test = match kind {
                "header" => format!("header {m} {c} \"{h}\" \"{key}\""),
                "address" => {
                    let ah = ["from", "to", "cc", "reply-to", "sender"][rnd(5)];
                    format!(
                        "address {} {m} {c} \"{ah}\" \"{key}\"",
                        parts[rnd(parts.len())]
                    )
                }
                "envelope" => format!(
                    "envelope {} {m} {c} \"{}\" \"{key}\"",
                    parts[rnd(parts.len())],
                    ["from", "to"][rnd(2)]
                ),
                "body" => {
                    let tr = [
                        "",
                        ":text",
                        ":raw",
                        ":content \"text\"",
                        ":content \"text/plain\"",
                    ][rnd(5)];
                    let m = if m.contains(":count") { ":contains" } else { m };
                    let c = if c.contains("numeric") { "" } else { c };
                    format!("body {tr} {m} {c} \"{key}\"")
                }
                "string" => format!("string {m} {c} [\"{h}\", \"\"] \"{key}\""),
                _ => format!("exists [\"{h}\", \"{}\"]", headers[rnd(headers.len())]),
            };
            let _ = writeln!(src, "if {test} {{ fileinto \"g{t}\"; }}");
        }
        out.push((format!("gen-{n:03}-{kind}"), "generated".to_string(), src));
    }
    // set with modifiers on values from the message.
    let modifiers = [
        ":lower",
        ":upper",
        ":lowerfirst",
        ":upperfirst",
        ":quotewildcard",
        ":length",
        ":upper :length",
        ":lower :upperfirst",
    ];
    for (n, m) in modifiers.iter().enumerate() {
        let h = headers[n % headers.len()];
        let src = format!(
            "require [\"variables\", \"fileinto\"];\nif header :matches \"{h}\" \"*\" {{ set {m} \"v\" \"${{1}}\"; fileinto \"m/${{v}}\"; }}\n"
        );
        out.push((format!("gen-set-{n}"), "variables".to_string(), src));
    }
    out
}

/// Our side's world: spamtest from X-Spam-Score on a scale to [`SPAM_MAX`], virustest from
/// X-Virus-Scan (clean, infected) — configured the same way for sieve-test.
struct TestHost {
    spam: Option<f64>,
    virus: Option<u8>,
}

impl Host for TestHost {
    fn spam_test(&self, percent: bool) -> String {
        match self.spam {
            Some(s) => interp::spamtest_value(s, SPAM_MAX, percent),
            None => "0".into(),
        }
    }
    fn virus_test(&self) -> String {
        self.virus.map_or("0".into(), |v| v.to_string())
    }
    fn now(&self) -> Moment {
        let utc = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Moment { utc, offset: 0 }
    }
    /// sieve-test runs without a mail store: no mailbox exists there.
    fn mailbox_exists(&self, _name: &str) -> bool {
        false
    }
    fn include(&self, name: &str, global: bool) -> Result<Option<Arc<sieve::Script>>, String> {
        let dir = root()
            .join("include")
            .join(if global { "global" } else { "personal" });
        match std::fs::read_to_string(dir.join(format!("{name}.sieve"))) {
            Ok(src) => sieve::compile(&src)
                .map(|s| Some(Arc::new(s)))
                .map_err(|e| e.to_string()),
            Err(_) => Ok(None),
        }
    }
}

fn header_value(msg: &[u8], name: &str) -> Option<String> {
    let m = sieve::mail::Mail::new(msg);
    m.named(name).next().map(|f| f.value())
}

fn ours(src: &str, msg: &[u8]) -> Vec<String> {
    let script = match sieve::compile(src) {
        Ok(s) => s,
        Err(_) => return vec!["compile-error".into()],
    };
    let host = TestHost {
        spam: header_value(msg, "x-spam-score").and_then(|v| v.trim().parse().ok()),
        virus: header_value(msg, "x-virus-scan").and_then(|v| match v.as_str() {
            "clean" => Some(1),
            "infected" => Some(5),
            _ => None,
        }),
    };
    let env = Envelope {
        from: FROM.into(),
        to: TO.into(),
    };
    let out = sieve::run(&script, msg, &env, &host, Limits::default());
    if out.error.is_some() {
        return vec!["runtime-error".into()];
    }
    normalize(&sieve::report(&out))
}

fn theirs(dir: &Path, script: &Path, msg: &Path) -> Vec<String> {
    let out = Command::new("sieve-test")
        .current_dir(dir)
        .args(["-o", "mail_uid=nobody", "-o", "mail_gid=nogroup"])
        .args([
            "-x",
            "+editheader +vacation-seconds +spamtest +spamtestplus +virustest",
        ])
        .args([
            "-o",
            "plugin/sieve_spamtest_status_type=score",
            "-o",
            "plugin/sieve_spamtest_status_header=X-Spam-Score",
        ])
        .args(["-o", &format!("plugin/sieve_spamtest_max_value={SPAM_MAX}")])
        .args([
            "-o",
            "plugin/sieve_virustest_status_type=text",
            "-o",
            "plugin/sieve_virustest_status_header=X-Virus-Scan",
        ])
        .args([
            "-o",
            "plugin/sieve_virustest_text_value1=clean",
            "-o",
            "plugin/sieve_virustest_text_value5=infected",
        ])
        .args([
            "-o",
            &format!("plugin/sieve=file:{}", dir.join("personal").display()),
        ])
        .args([
            "-o",
            &format!("plugin/sieve_global={}", dir.join("global").display()),
        ])
        .args(["-f", FROM, "-r", TO, "-a", TO])
        .arg(script)
        .arg(msg)
        .output()
        .expect("sieve-test runs (scripts/deps.sh test installs dovecot-sieve)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("failed to compile") {
        return vec!["compile-error".into()];
    }
    if stderr.contains("final result: failed") {
        return vec!["runtime-error".into()];
    }
    assert!(
        out.status.success(),
        "sieve-test failed on {}: {stderr}",
        script.display()
    );
    normalize(&String::from_utf8_lossy(&out.stdout))
}

/// The action lines of a sieve-test style report, flags sorted and lower-cased, vacation
/// attributes and text folded into their action.
fn normalize(report: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut section = "";
    let mut in_message = false;
    for line in report.lines() {
        if in_message {
            if line == "END MESSAGE" {
                in_message = false;
            } else if let Some(last) = out.last_mut() {
                let _ = write!(last, " | {}", line.trim_end());
            }
            continue;
        }
        let t = line.trim();
        if t == "Performed actions:" {
            section = "action";
        } else if t == "Implicit keep:" {
            section = "implicit";
        } else if let Some(rest) = line.strip_prefix(" * ") {
            out.push(format!("{section}: {}", rest.trim_end()));
        } else if let Some(flags) = t.strip_prefix("+ add IMAP flags:") {
            let mut f: Vec<String> = flags
                .split_whitespace()
                .map(str::to_ascii_lowercase)
                .collect();
            f.sort();
            if let Some(last) = out.last_mut() {
                let _ = write!(last, " flags=[{}]", f.join(" "));
            }
        } else if let Some(attr) = t.strip_prefix("=> ") {
            if let Some(last) = out.last_mut() {
                let (k, v) = attr.split_once(':').unwrap_or((attr, ""));
                let _ = write!(last, " {}={}", k.trim(), v.trim());
            }
        } else if t == "START MESSAGE" {
            in_message = true;
        }
    }
    out
}

#[test]
fn sieve_matches_pigeonhole() {
    let dir = tempfile::tempdir().expect("tempdir");
    // sieve-test, run as root, drops to nobody and writes the compiled script beside it.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    let mut messages: Vec<(String, PathBuf, Vec<u8>)> = std::fs::read_dir(root().join("messages"))
        .expect("messages")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .map(|p| {
            let name = p
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&p).expect("message");
            let copy = dir.path().join(format!("{name}.eml"));
            std::fs::write(&copy, &bytes).expect("copy");
            (name, copy, bytes)
        })
        .collect();
    messages.sort();
    for kind in ["personal", "global"] {
        let to = dir.path().join(kind);
        std::fs::create_dir_all(&to).expect("include dir");
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .expect("chmod");
        for e in std::fs::read_dir(root().join("include").join(kind))
            .expect("include scripts")
            .flatten()
        {
            let target = to.join(e.file_name());
            std::fs::copy(e.path(), &target).expect("copy include");
            std::fs::set_permissions(&target, std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .expect("chmod");
        }
    }
    assert!(messages.len() >= 5, "test messages missing");
    let allow = std::fs::read_to_string(root().join("allow.txt")).unwrap_or_default();
    let allowed: Vec<&str> = allow
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let cases: Vec<(String, String, String)> = written_cases()
        .into_iter()
        .chain(generated_cases())
        .collect();
    let mut per_ext: BTreeMap<String, usize> = BTreeMap::new();
    let mut differences = Vec::new();
    let mut pairs = 0;
    let mut agreed_actions = 0;
    for (name, ext, src) in &cases {
        let script = dir.path().join(format!("{name}.sieve"));
        // Pigeonhole 2.3 has no ereject; its actions are reject's (RFC 5429 §2.1: they differ
        // only in how the refusal reaches the sender), so Pigeonhole runs reject in its place.
        let theirs_src = if ext == "ereject" {
            src.replace("ereject", "reject")
        } else {
            src.clone()
        };
        std::fs::write(&script, theirs_src).expect("script");
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .expect("chmod");
        for (mname, mpath, bytes) in &messages {
            pairs += 1;
            *per_ext.entry(ext.clone()).or_default() += 1;
            let id = format!("{name}/{mname}");
            let a = ours(src, bytes);
            let b = theirs(dir.path(), &script, mpath);
            if a == b {
                agreed_actions += a.len();
                assert!(
                    !allowed.contains(&id.as_str()),
                    "{id} agrees now: take it off allow.txt"
                );
            } else if !allowed.contains(&id.as_str()) {
                differences.push(format!(
                    "{id}\n  postcore: {a:?}\n  sieve-test: {b:?}\n--- script:\n{src}"
                ));
            }
        }
    }
    println!(
        "{pairs} pairs, {agreed_actions} agreeing action lines; pairs per extension: {per_ext:?}"
    );
    assert!(
        differences.is_empty(),
        "{} of {pairs} pairs differ from Pigeonhole:\n{}",
        differences.len(),
        differences.join("\n")
    );
    assert!(pairs >= 200, "fewer than 200 pairs");
    for (ext, n) in &per_ext {
        assert!(*n >= 10, "extension {ext} has {n} pairs, fewer than ten");
    }
}
