//! The filter's first two checks (Email > Filter): attachment blocking by type from content,
//! and the antivirus. One walk over the message's objects feeds both; the first object that
//! is blocked or infected decides.

use crate::access::{self, Access, AccessLists};
use crate::clamav::{Detection, Engine, LoadStats, RawScan, SignatureSet, Targets};
use crate::content::{self, LimitHit, Limits, Object};
use crate::filetype::{Class, FileType};
use crate::normalize;
use crate::verdict::{MessageAction, Reply, Symbol, Verdict};
use crate::{ScanInput, Scanner};
use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};
use std::ops::ControlFlow;
use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What the administrator set for this check (taken from the settings for each message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FilterPolicy {
    /// Block programs (PE, MSI/OLE2, ELF, Mach-O, scripts with `#!`, Java classes).
    pub block_executables: bool,
    /// Block archives (zip and docx/xlsx/odt/jar, gzip, bzip2, xz, tar, rar, 7z, cab, iso …).
    pub block_archives: bool,
    /// Further types to block, by name (`pdf`, `html`, `image`, … as [`FileType::name`]).
    pub block_types: Vec<String>,
    /// File-name extensions to block (secondary to content; without the dot).
    pub block_extensions: Vec<String>,
    /// Scan for viruses.
    pub antivirus: bool,
    /// An infected message is accepted and discarded (the reference's behaviour) instead of
    /// refused with 554.
    pub discard_infected: bool,
    /// A message past a walk limit (depth, size, files, ratio) is blocked.
    pub block_over_limit: bool,
    /// A message with an encrypted archive member is blocked.
    pub block_encrypted: bool,
    /// Recursion depth of messages and archives.
    pub max_depth: u32,
    /// MiB decoded and unpacked per message.
    pub max_unpacked_mb: u64,
    /// Archive members per message.
    pub max_files: u32,
    /// Unpacked-to-packed ratio of one member.
    pub max_ratio: u64,
    /// The antispam check.
    pub spam: crate::spam::SpamPolicy,
    /// Allow From / Allow To / Block From.
    #[serde(flatten)]
    pub access: AccessLists,
}

impl Default for FilterPolicy {
    fn default() -> Self {
        let l = Limits::default();
        FilterPolicy {
            block_executables: false,
            block_archives: false,
            block_types: Vec::new(),
            block_extensions: Vec::new(),
            antivirus: true,
            discard_infected: true,
            block_over_limit: false,
            block_encrypted: false,
            max_depth: l.max_depth,
            max_unpacked_mb: l.max_bytes >> 20,
            max_files: l.max_files,
            max_ratio: l.max_ratio,
            spam: crate::spam::SpamPolicy::default(),
            access: AccessLists::default(),
        }
    }
}

impl FilterPolicy {
    /// Checks values an administrator gives (names of types, extensions, limits).
    pub fn validate(&self) -> Result<(), String> {
        for t in &self.block_types {
            if type_by_name(t).is_none() {
                return Err(format!("unknown file type {t:?}"));
            }
        }
        for e in &self.block_extensions {
            if e.is_empty()
                || !e
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(format!("bad extension {e:?} (letters and digits, no dot)"));
            }
        }
        self.spam.validate()?;
        self.access.validate()?;
        if self.max_depth == 0
            || self.max_files == 0
            || self.max_unpacked_mb == 0
            || self.max_ratio == 0
        {
            return Err("filter limits must be above 0".into());
        }
        Ok(())
    }

    fn limits(&self) -> Limits {
        Limits {
            max_depth: self.max_depth,
            max_bytes: self.max_unpacked_mb << 20,
            max_files: self.max_files,
            max_ratio: self.max_ratio,
        }
    }

    /// Why `o` is blocked as an attachment, if it is (`executable`, `archive`, the type's
    /// name, or `extension .x`).
    fn blocked(&self, o: &Object<'_>) -> Option<String> {
        if o.mail {
            return None;
        }
        match o.kind.class() {
            Class::Executable if self.block_executables => return Some("executable".into()),
            Class::Archive if self.block_archives => return Some("archive".into()),
            _ => {}
        }
        if self.block_types.iter().any(|t| t == o.kind.name()) {
            return Some(o.kind.name().into());
        }
        let ext = o.name.as_deref()?.rsplit_once('.')?.1.to_ascii_lowercase();
        self.block_extensions
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&ext))
            .then(|| format!("extension .{ext}"))
    }
}

fn type_by_name(n: &str) -> Option<FileType> {
    use FileType::*;
    [
        Pe, Ole2, Elf, MachO, Script, JavaClass, Zip, Gzip, Bzip2, Xz, Tar, Rar, SevenZip, Cab,
        Iso, Arj, Zstd, Cpio, Pdf, Html, Image, Flash, Mail,
    ]
    .into_iter()
    .find(|t| t.name() == n)
}

/// The state of the signature database, for `av status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AvStatus {
    /// Directory the signatures are read from.
    pub directory: String,
    /// What the loaded database holds.
    pub stats: LoadStats,
    /// When it was loaded (Unix seconds).
    pub loaded_at: u64,
    /// Milliseconds to read and compile it.
    pub compile_ms: u64,
    /// Size of the Hyperscan database.
    pub hyperscan_bytes: usize,
    /// Patterns confirmed without Hyperscan (it refused them).
    pub unfiltered_patterns: usize,
    /// The last reload attempt: `ok`, or why it failed (the old database stayed).
    pub last_reload: String,
    /// When it was attempted (Unix seconds).
    pub last_reload_at: u64,
}

/// What one scan found, for logs and metrics.
#[derive(Debug, Default, Clone)]
pub struct ScanReport {
    /// Objects looked at.
    pub objects: u32,
    /// Bytes decoded and unpacked.
    pub bytes: u64,
    /// Limits reached.
    pub limits: Vec<LimitHit>,
    /// The signature that fired, if any.
    pub virus: Option<String>,
    /// The attachment rule that fired, if any.
    pub blocked: Option<String>,
    /// The antispam judgement, when the message was judged.
    pub spam: Option<crate::spam::Judgement>,
    /// What the allow/block lists decided (`allowed: allow_from x`, `blocked sender: x`).
    pub access: Option<String>,
}

/// Attachment blocking and antivirus over a swappable signature database.
pub struct Filter {
    /// The antispam check (its rules load apart from the signatures).
    pub antispam: crate::spam::Antispam,
    /// Where greylisting keeps its triplets (none: no greylisting).
    pub greylist: std::sync::OnceLock<Arc<dyn crate::greylist::GreylistStore>>,
    /// The statistical classifier (none: no Bayes symbol).
    pub bayes: std::sync::OnceLock<Arc<crate::bayes::Bayes>>,
    engine: ArcSwap<Engine>,
    status: ArcSwap<AvStatus>,
    cache: Option<std::path::PathBuf>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Filter {
    /// A filter with the signatures of `dir` (the built-in EICAR signature only, if `dir`
    /// is empty or missing). A directory that does not load leaves the built-in signature
    /// alone and says why in the status.
    pub fn new(dir: &Path) -> Filter {
        Self::with_cache(dir, None)
    }

    /// As [`Filter::new`], keeping compiled databases in `cache` between loads.
    pub fn with_cache(dir: &Path, cache: Option<&Path>) -> Filter {
        let f = Filter {
            antispam: crate::spam::Antispam::new(),
            greylist: std::sync::OnceLock::new(),
            bayes: std::sync::OnceLock::new(),
            cache: cache.map(Path::to_path_buf),
            engine: ArcSwap::from_pointee(Engine::compile(SignatureSet::default())),
            status: ArcSwap::from_pointee(AvStatus {
                directory: dir.display().to_string(),
                ..AvStatus::default()
            }),
        };
        // The file-type patterns are compiled on first use: here, not in the first message's
        // scan, and beside the signatures' load.
        std::thread::scope(|s| {
            s.spawn(|| crate::filetype::detect(b""));
            let _ = f.reload(dir);
        });
        f
    }

    /// Reads and compiles the signatures of `dir` and swaps them in; scans in progress finish
    /// on the database they started with. On failure the current database stays.
    pub fn reload(&self, dir: &Path) -> Result<LoadStats, String> {
        let started = Instant::now();
        let result = SignatureSet::load_dir(dir).map_err(|e| e.to_string());
        let mut status = (**self.status.load()).clone();
        status.directory = dir.display().to_string();
        status.last_reload_at = now();
        match result {
            Ok(set) => {
                let mut stats = set.stats.clone();
                let since = SystemTime::now();
                let engine = Engine::compile_cached(set, self.cache.as_deref());
                if let Some(c) = &self.cache {
                    crate::hs_cache::prune(c, since);
                }
                if engine.refused > 0 {
                    stats.skipped.insert(
                        "refused by hyperscan (confirmed by regex on every object)".into(),
                        engine.refused,
                    );
                }
                status.stats = stats.clone();
                status.loaded_at = now();
                status.compile_ms = started.elapsed().as_millis() as u64;
                status.hyperscan_bytes = engine.hyperscan_bytes();
                status.unfiltered_patterns = engine.pattern_counts().1;
                status.last_reload = "ok".into();
                self.engine.store(Arc::new(engine));
                self.status.store(Arc::new(status));
                Ok(stats)
            }
            Err(e) => {
                status.last_reload = format!("failed: {e}");
                self.status.store(Arc::new(status));
                Err(e)
            }
        }
    }

    /// The database's state.
    pub fn status(&self) -> AvStatus {
        (**self.status.load()).clone()
    }

    /// The signature that fires in one object, if any (the antivirus alone).
    pub fn scan_object(&self, o: &Object<'_>) -> Option<String> {
        av_scan(&self.engine.load(), o).map(|d| d.name)
    }

    /// Scans a message and reports what was found.
    pub fn scan_report(&self, input: &ScanInput<'_>) -> (Verdict, ScanReport) {
        let policy = &input.context.policy;
        let mut report = ScanReport::default();
        if input.context.exempt {
            return (Verdict::accept(), report);
        }
        let n = input.context.rcpts.len();
        let allowed = match policy.access.check(input) {
            Access::Allowed(why) => {
                report.access = Some(format!("allowed: {why}"));
                return (access::allowed_verdict(&why), report);
            }
            Access::Blocked(entry, allowed) => {
                report.access = Some(format!("blocked sender: block_from {entry}"));
                let v = access::blocked_verdict(&entry);
                return (access::spare_allowed(v, &allowed, n), report);
            }
            Access::Check(allowed) => allowed,
        };
        let verdict = self.av_and_attachments(input, &mut report);
        if verdict.action != MessageAction::Accept || !policy.spam.enabled {
            return (access::spare_allowed(verdict, &allowed, n), report);
        }
        // The quarantine mailbox's own mail is not judged (an administrator forwarding or
        // releasing from it must not be quarantined again).
        let mut spared = allowed;
        if let Some(q) = &policy.spam.quarantine_to {
            let rcpts = input.context.rcpts.iter().enumerate();
            spared.extend(
                rcpts
                    .filter(|(_, r)| r.eq_ignore_ascii_case(q))
                    .map(|(i, _)| i),
            );
            if spared.len() == n {
                return (verdict, report);
            }
        }
        let bayes = self.bayes.get().filter(|_| policy.spam.bayes);
        let j = self.antispam.judge_with(input, bayes.map(|b| &**b));
        let store = self.greylist.get().map(|s| &**s);
        let verdict = crate::spam::apply(verdict, &j, input, store);
        report.spam = Some(j);
        (access::spare_allowed(verdict, &spared, n), report)
    }

    /// The attachment rules and the antivirus: the first object blocked or infected decides.
    fn av_and_attachments(&self, input: &ScanInput<'_>, report: &mut ScanReport) -> Verdict {
        let policy = &input.context.policy;
        if !policy.antivirus && !attachments_on(policy) {
            return Verdict::accept();
        }
        let engine = self.engine.load();
        let mut found: Option<(Symbol, Reply, bool)> = None;
        let summary = content::walk_parsed(input.raw, input.parsed(), policy.limits(), &mut |o| {
            if let Some(why) = policy.blocked(o) {
                let what = o.name.clone().unwrap_or_else(|| o.path.clone());
                found = Some(blocked_verdict(&why, &what));
                report.blocked = Some(format!("{why} ({what})"));
                return ControlFlow::Break(());
            }
            if policy.antivirus
                && let Some(Detection { name }) = av_scan(&engine, o)
            {
                found = Some(virus_verdict(&name, &o.path, policy.discard_infected));
                report.virus = Some(name);
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        });
        report.objects = summary.objects;
        report.bytes = summary.bytes;
        report.limits = summary.limits.iter().map(|(h, _)| *h).collect();
        if found.is_none()
            && let Some((hit, at)) = summary.limits.iter().find(|(h, _)| match h {
                LimitHit::Encrypted => policy.block_encrypted,
                _ => policy.block_over_limit,
            })
        {
            found = Some(limit_verdict(*hit, at));
        }
        match found {
            None => Verdict::accept(),
            Some((symbol, reply, discard)) => {
                let mut v = if discard {
                    Verdict {
                        action: MessageAction::Discard,
                        ..Verdict::accept()
                    }
                } else {
                    Verdict::refuse(reply)
                };
                v.score = symbol.score;
                v.symbols.push(symbol);
                v
            }
        }
    }
}

impl FilterPolicy {
    /// Whether a scan can find anything: some check is on or some access list has an entry.
    /// When not, a message needs no trip to a scanner (its verdict is "accept").
    pub fn checks_anything(&self) -> bool {
        self.antivirus || attachments_on(self) || self.spam.enabled || !self.access.is_empty()
    }
}

fn attachments_on(p: &FilterPolicy) -> bool {
    p.block_executables
        || p.block_archives
        || !p.block_types.is_empty()
        || !p.block_extensions.is_empty()
}

/// Runs the antivirus over an object as ClamAV would: the raw bytes (hashes, and body and
/// logical signatures for its own type), then its normalised HTML form (target types 0 and
/// 3) when it is HTML, or its normalised text form (0 and 7) when it is text.
fn av_scan(engine: &Engine, o: &Object<'_>) -> Option<Detection> {
    let mut raw = Targets::default().with(o.kind.clamav_target());
    if o.mail {
        raw = raw.with(4);
    }
    let raw = raw.inside(o.container);
    if o.mail {
        // The message as it arrived: patterns only. A hash of a whole message in transit
        // cannot name it (every hop adds trace fields); its parts and attachments are hashed.
        return engine.scan_patterns(&o.data, raw);
    }
    match engine.scan_raw(&o.data, raw) {
        RawScan::Allowed => return None,
        RawScan::Infected(d) => return Some(d),
        RawScan::Clean => {}
    }
    if o.kind == FileType::Html {
        let t = Targets::default().with(3).inside(o.container);
        return engine.scan_patterns(&normalize::html(&o.data), t);
    }
    if o.kind == FileType::Other && normalize::is_text(&o.data) {
        let t = Targets::default().with(7).inside(o.container);
        return engine.scan_patterns(&normalize::text(&o.data), t);
    }
    None
}

fn blocked_verdict(why: &str, what: &str) -> (Symbol, Reply, bool) {
    let symbol = Symbol {
        name: "ATTACHMENT_BLOCKED".into(),
        score: 100.0,
        detail: Some(format!("{why}: {what}")),
    };
    let text = format!("Error: attachment blocked: {why} ({})", printable(what));
    (symbol, Reply::new(554, "5.7.1", &text), false)
}

fn virus_verdict(name: &str, at: &str, discard: bool) -> (Symbol, Reply, bool) {
    let symbol = Symbol {
        name: "VIRUS_FOUND".into(),
        score: 100.0,
        detail: Some(format!("{name} in {at}")),
    };
    let text = format!("Error: message infected: {}", printable(name));
    (symbol, Reply::new(554, "5.7.1", &text), discard)
}

fn limit_verdict(hit: LimitHit, at: &str) -> (Symbol, Reply, bool) {
    let symbol = Symbol {
        name: "SCAN_LIMIT".into(),
        score: 100.0,
        detail: Some(format!("{} at {at}", hit.name())),
    };
    let text = match hit {
        LimitHit::Encrypted => "Error: encrypted archive refused".to_string(),
        _ => format!("Error: content over the scan limit ({})", hit.name()),
    };
    (symbol, Reply::new(554, "5.7.1", &text), false)
}

/// Text safe for a reply line: printable ASCII only, at most 100 characters (a name comes
/// from the message and must not inject a line).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(100)
        .collect()
}

impl Scanner for Filter {
    fn name(&self) -> &'static str {
        "filter"
    }

    fn scan(&self, input: &ScanInput<'_>) -> Verdict {
        self.scan_report(input).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanContext;
    use crate::clamav::engine::tests::{engine, h};
    use md5::Digest;

    #[test]
    fn a_policy_with_every_check_off_and_no_list_entry_checks_nothing() {
        let mut p = FilterPolicy::default();
        assert!(p.checks_anything(), "the defaults scan");
        p.antivirus = false;
        p.spam.enabled = false;
        assert!(!p.checks_anything());
        p.access.block_from.push("spammer@example.test".into());
        assert!(
            p.checks_anything(),
            "a block list entry still needs the scan"
        );
        // ... and is applied with every check off.
        let raw = b"From: spammer@example.test\r\nSubject: x\r\n\r\nhi\r\n";
        let v = scan(p.clone(), raw);
        assert_ne!(v.action, MessageAction::Accept);
        p.access.block_from.clear();
        p.block_archives = true;
        assert!(p.checks_anything());
    }

    fn scan(policy: FilterPolicy, raw: &[u8]) -> Verdict {
        let f = Filter::new(Path::new("/nonexistent"));
        let mut ctx = ScanContext::for_test(&["a@example.test"]);
        ctx.policy = policy;
        f.scan(&ScanInput::new(&ctx, raw))
    }

    #[test]
    fn eicar_discarded_by_default_or_refused() {
        let mut raw = b"Subject: t\r\n\r\n".to_vec();
        raw.extend_from_slice(crate::clamav::EICAR);
        raw.extend_from_slice(b"\r\n");
        let v = scan(FilterPolicy::default(), &raw);
        assert_eq!(v.action, MessageAction::Discard);
        let reject = FilterPolicy {
            discard_infected: false,
            ..FilterPolicy::default()
        };
        match scan(reject, &raw).action {
            MessageAction::Reject(r) => assert!(r.text.contains("Eicar-Test-Signature"), "{r:?}"),
            other => panic!("{other:?}"),
        }
    }

    fn object<'a>(data: &'a [u8], kind: FileType, container: Option<&'static str>) -> Object<'a> {
        Object {
            data: std::borrow::Cow::Borrowed(data),
            kind,
            path: "t".into(),
            name: None,
            depth: 1,
            container,
            mail: false,
        }
    }

    #[test]
    fn normalised_text_and_html_layers_and_containers() {
        let e = engine(&[
            (
                "t.ndb",
                &format!(
                    "T.Text:7:*:{}\nT.Html:3:*:{}\nT.Any:0:*:{}",
                    h("mxc text norm"),
                    h("<iframe src=\"http://x.test/"),
                    h("any norm phrase")
                ),
            ),
            (
                "t.ldb",
                &format!(
                    "T.Zip;Engine:81-255,Container:CL_TYPE_ZIP,Target:0;0&1;{};{}",
                    h("CZ-ONE"),
                    h("CZ-TWO")
                ),
            ),
        ]);
        let hit = |o: &Object<'_>| av_scan(&e, o).map(|d| d.name);
        assert_eq!(
            hit(&object(b"MXC  Text\n\tNORM", FileType::Other, None)),
            Some("T.Text".into())
        );
        assert_eq!(
            hit(&object(b"\x00MXC TEXT NORM", FileType::Other, None)),
            None,
            "binary is not text"
        );
        let html = b"<p>hi</p><IFRAME   SRC=\"http://X.test/a\">";
        assert_eq!(
            hit(&object(html, FileType::Html, None)),
            Some("T.Html".into())
        );
        assert_eq!(
            hit(&object(b"ANY   Norm\nPhrase", FileType::Other, None)),
            Some("T.Any".into())
        );
        let zipped = b"\x01CZ-ONE\x00CZ-TWO\x02";
        assert_eq!(
            hit(&object(zipped, FileType::Other, Some("CL_TYPE_ZIP"))),
            Some("T.Zip".into())
        );
        assert_eq!(
            hit(&object(zipped, FileType::Other, Some("CL_TYPE_POSIX_TAR"))),
            None
        );
    }

    #[test]
    fn ign2_entries_with_a_digest_name_one_exact_line() {
        let line = format!("T.Kept:0:*:{}", h("IGN-STALE"));
        let exact = format!("T.Gone:0:*:{}", h("IGN-EXACT"));
        let md5: String = md5::Md5::digest(exact.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let e = engine(&[
            (
                "a.ign2",
                &format!("T.Kept:{}\nT.Gone:{md5}\n", "0".repeat(32)),
            ),
            ("b.ndb", &format!("{line}\n{exact}\n")),
        ]);
        assert!(
            e.scan(b"IGN-STALE", Targets::default()).is_some(),
            "digest mismatch: kept"
        );
        assert!(
            e.scan(b"IGN-EXACT", Targets::default()).is_none(),
            "digest matches: ignored"
        );
    }

    #[test]
    fn attachment_classes_from_content() {
        let raw = b"Subject: t\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain; name=\"notes.txt\"\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\nf0VMRgIBAQA=\r\n--b--\r\n";
        assert_eq!(
            scan(FilterPolicy::default(), raw).action,
            MessageAction::Accept
        );
        let exe = FilterPolicy {
            block_executables: true,
            ..FilterPolicy::default()
        };
        match scan(exe, raw).action {
            MessageAction::Reject(r) => assert!(r.text.contains("executable"), "{r:?}"),
            other => panic!("{other:?}"),
        }
        let ext = FilterPolicy {
            block_extensions: vec!["txt".into()],
            ..FilterPolicy::default()
        };
        assert!(matches!(scan(ext, raw).action, MessageAction::Reject(_)));
    }
}
