//! The antispam check (Email > Filter > Antispam): SpamAssassin-syntax rules compiled to
//! Hyperscan, built-in checks, symbols with scores, and the three thresholds (greylist,
//! spam flag, deny). Pure analysis: message and context in, symbols and an action out.

pub mod ascii_tags;
pub mod confirm;
pub mod engine;
pub mod evals;
pub mod message;
pub mod meta;
pub mod native;
pub mod perl_re;
pub mod possessive;
pub mod rules;
pub mod superset;

use crate::bayes::Bayes;
use crate::greylist::{GreylistStore, Outcome};
use crate::network::DmarcDemand;
use crate::verdict::{Disposition, HeaderEdit, Reply, Symbol, Verdict};
use crate::{ScanContext, ScanInput};
use arc_swap::ArcSwap;
use engine::{Engine, Hit, LoadReport};
use rules::RuleSet;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// The rules postcore writes itself and always loads first: GTUBE and header and MIME
/// heuristics. A directory's rule of the same name replaces one of these.
pub const DEFAULT_RULES: &str = include_str!("default_rules.cf");

/// What the administrator set for the antispam check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SpamPolicy {
    /// Judge mail at all.
    pub enabled: bool,
    /// At or above this score a first delivery attempt is greylisted (`None`: never).
    pub greylist_score: Option<f64>,
    /// At or above this score the message is flagged (`X-Spam: Yes`) and filed into Junk
    /// where wanted (`None`: never).
    pub flag_score: Option<f64>,
    /// At or above this score the message is refused with `554 5.7.1` (`None`: never).
    pub deny_score: Option<f64>,
    /// Put in front of the Subject of flagged mail (empty: leave the Subject alone).
    pub subject_prefix: String,
    /// File flagged mail into the recipient's Junk folder (a user's own setting wins).
    pub move_to_junk: bool,
    /// Act on mail from authenticated clients (otherwise it is judged and logged only).
    pub act_on_authenticated: bool,
    /// Greylisting of mail at or above the greylist threshold (and below deny).
    pub greylist: crate::greylist::GreylistPolicy,
    /// Quarantine mode: mail at or above the deny threshold is accepted and delivered to this
    /// address (a user's or a public mailbox) instead of being refused; mail to it is not
    /// judged.
    pub quarantine_to: Option<String>,
    /// Send a notice to [`Self::quarantine_notice_to`] for each message put in quarantine.
    pub quarantine_notice: bool,
    /// Where quarantine notices go: an address, or a local part (`postmaster`, the default)
    /// at the first local domain.
    pub quarantine_notice_to: String,
    /// Add the statistical classifier's verdict (`BAYES_SPAM`/`BAYES_HAM`) once it has
    /// learned enough.
    pub bayes: bool,
    /// Learn from what users do over IMAP: into Junk (or `$Junk`) is spam, out of Junk to
    /// anywhere but Trash (or `$NotJunk`) is ham. Members of the group `spamtrainers` only,
    /// when that group exists.
    pub bayes_learn_from_imap: bool,
    /// The model keeps at most about this many tokens: past it by a tenth, the least
    /// recently learned (and among those the rarest) are dropped after a round of learning
    /// (SpamAssassin's `bayes_expiry_max_db_size`; 0: never).
    pub bayes_max_tokens: u64,
    /// Check the client and the sender on port 25: SPF, DKIM, DMARC, ARC, reverse DNS, HELO.
    pub network_checks: bool,
    /// The time all of a message's DNS lookups share, in milliseconds; what has not answered
    /// by then is left out (its symbol dropped), never waited for.
    pub dns_budget_ms: u64,
    /// DNS block lists asked about the client address.
    pub dnsbl: Vec<crate::network::DnsList>,
    /// URI block lists asked about the registered domains of the message's links.
    pub uribl: Vec<crate::network::DnsList>,
    /// Follow the `From:` domain's DMARC policy for failing mail: `p=reject` refuses it with
    /// `550 5.7.1`, `p=quarantine` flags it as spam (into Junk). Off: the symbols only.
    pub dmarc_enforce: bool,
    /// Scores for the built-in network symbols by name (`R_SPF_FAIL`, `RDNS_NONE`, …),
    /// replacing their defaults.
    pub symbol_scores: std::collections::BTreeMap<String, f64>,
}

impl Default for SpamPolicy {
    fn default() -> Self {
        SpamPolicy {
            enabled: true,
            greylist_score: Some(4.0),
            flag_score: Some(6.0),
            deny_score: Some(15.0),
            subject_prefix: String::new(),
            move_to_junk: true,
            act_on_authenticated: false,
            greylist: crate::greylist::GreylistPolicy::default(),
            quarantine_to: None,
            quarantine_notice: false,
            quarantine_notice_to: "postmaster".into(),
            bayes: true,
            bayes_learn_from_imap: true,
            bayes_max_tokens: 1_000_000,
            network_checks: true,
            dns_budget_ms: 2000,
            dnsbl: Vec::new(),
            uribl: Vec::new(),
            dmarc_enforce: true,
            symbol_scores: std::collections::BTreeMap::new(),
        }
    }
}

impl SpamPolicy {
    /// Checks values an administrator gives.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("greylist_score", self.greylist_score),
            ("flag_score", self.flag_score),
            ("deny_score", self.deny_score),
        ] {
            if v.is_some_and(|v| !v.is_finite()) {
                return Err(format!("{name} must be a number"));
            }
        }
        if let Some(q) = &self.quarantine_to
            && (q.matches('@').count() != 1
                || q.starts_with('@')
                || q.ends_with('@')
                || q.contains(char::is_whitespace))
        {
            return Err(format!("quarantine_to {q:?} must be an address"));
        }
        let to = &self.quarantine_notice_to;
        if to.is_empty() || to.matches('@').count() > 1 || to.contains(char::is_whitespace) {
            return Err(format!(
                "quarantine_notice_to {to:?} must be an address or a local part"
            ));
        }
        if self.subject_prefix.chars().any(char::is_control) {
            return Err("subject_prefix must not hold control characters".into());
        }
        for l in self.dnsbl.iter().chain(&self.uribl) {
            l.validate()?;
        }
        if !(100..=30_000).contains(&self.dns_budget_ms) {
            return Err("dns_budget_ms must be between 100 and 30000".into());
        }
        if self.symbol_scores.values().any(|v| !v.is_finite()) {
            return Err("symbol_scores must be numbers".into());
        }
        Ok(())
    }
}

/// What the thresholds make of a score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpamAction {
    /// Below every threshold.
    NoAction,
    /// Greylist (a temporary reject unless the triplet has waited long enough).
    Greylist,
    /// Flag as spam.
    AddHeader,
    /// Refuse.
    Reject,
}

impl SpamAction {
    /// The name, as in logs (`no action`, `greylist`, `add header`, `reject`, as Rspamd).
    pub fn name(self) -> &'static str {
        match self {
            SpamAction::NoAction => "no action",
            SpamAction::Greylist => "greylist",
            SpamAction::AddHeader => "add header",
            SpamAction::Reject => "reject",
        }
    }
}

/// The antispam judgement of one message.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// The sum of the symbols' scores.
    pub score: f64,
    /// The action the thresholds give (before any exemption for authenticated mail).
    pub action: SpamAction,
    /// The threshold the action came from (or the flag threshold for no action).
    pub threshold: Option<f64>,
    /// Rules that hit.
    pub symbols: Vec<Hit>,
    /// Microseconds spent.
    pub micros: u64,
}

impl Judgement {
    /// Symbols in the verdict's form.
    pub fn verdict_symbols(&self) -> Vec<Symbol> {
        self.symbols
            .iter()
            .map(|h| Symbol {
                name: h.name.clone(),
                score: h.score,
                detail: h
                    .detail
                    .clone()
                    .or_else(|| (h.count > 1).then(|| format!("{} hits", h.count))),
            })
            .collect()
    }

    /// `NAME(score)` list, for headers and logs (the verdict's own format).
    pub fn symbols_text(&self) -> String {
        Verdict {
            symbols: self.verdict_symbols(),
            ..Verdict::default()
        }
        .symbols_text()
    }
}

/// The header fields postcore writes, removed from incoming mail first so that a sender
/// cannot pre-flag its own message (RFC 8601 §5 for the same reason on A-R).
pub const OWN_HEADERS: &[&str] = &[
    "X-Spam",
    "X-Spam-Flag",
    "X-Spam-Score",
    "X-Spam-Symbols",
    "X-Spam-Status",
    "X-Spam-Level",
];

/// The state of the rule set, for `spam status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpamStatus {
    /// Rule directories read after the built-in rules.
    pub directories: Vec<String>,
    /// How the rules loaded.
    pub report: LoadReport,
    /// The last load: `ok`, or why it failed (the previous rules stayed).
    pub last_load: String,
}

/// Counts since start, for the statistics page: messages judged, by action, and hits by
/// symbol.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SpamStats {
    /// Messages judged.
    pub messages: u64,
    /// Messages by action (before greylisting and exemptions).
    pub actions: std::collections::BTreeMap<String, u64>,
    /// Hits by symbol.
    pub symbols: std::collections::BTreeMap<String, u64>,
    /// Microseconds spent judging, in all.
    pub micros: u64,
}

/// The antispam check over a swappable rule set.
pub struct Antispam {
    engine: ArcSwap<Engine>,
    status: ArcSwap<SpamStatus>,
    stats: std::sync::Mutex<SpamStats>,
}

impl Default for Antispam {
    fn default() -> Self {
        Self::new()
    }
}

impl Antispam {
    /// The built-in rules only.
    pub fn new() -> Antispam {
        let mut set = builtin_set();
        set.finish();
        let engine = Engine::compile(set);
        let status = SpamStatus {
            report: engine.report.clone(),
            last_load: "ok".into(),
            ..SpamStatus::default()
        };
        Antispam {
            engine: ArcSwap::from_pointee(engine),
            status: ArcSwap::from_pointee(status),
            stats: std::sync::Mutex::new(SpamStats::default()),
        }
    }

    /// Reads the built-in rules and then every `*.cf` of `dirs` (or the file itself), compiles
    /// them (compiled databases kept in `cache`) and swaps them in. On failure the current
    /// rules stay.
    pub fn load(&self, dirs: &[PathBuf], cache: Option<&Path>) -> Result<LoadReport, String> {
        let result = load_set(dirs);
        let mut status = (**self.status.load()).clone();
        status.directories = dirs.iter().map(|d| d.display().to_string()).collect();
        match result {
            Ok(set) => {
                let engine = Engine::compile_cached(set, cache);
                let report = engine.report.clone();
                status.report = report.clone();
                status.last_load = "ok".into();
                self.engine.store(Arc::new(engine));
                self.status.store(Arc::new(status));
                Ok(report)
            }
            Err(e) => {
                status.last_load = format!("failed: {e}");
                self.status.store(Arc::new(status));
                Err(e)
            }
        }
    }

    /// The rule set's state.
    pub fn status(&self) -> SpamStatus {
        (**self.status.load()).clone()
    }

    /// The counts since start.
    pub fn stats(&self) -> SpamStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn count(&self, j: &Judgement) {
        if let Ok(mut s) = self.stats.lock() {
            s.messages += 1;
            s.micros += j.micros;
            *s.actions.entry(j.action.name().to_string()).or_default() += 1;
            for h in &j.symbols {
                *s.symbols.entry(h.name.clone()).or_default() += 1;
            }
        }
    }

    /// Judges one message by the rules alone (score set 0: no Bayes, no network rules).
    pub fn judge(&self, input: &ScanInput<'_>) -> Judgement {
        self.judge_with(input, None)
    }

    /// Judges one message by the rules and, when it is given and active, the Bayes
    /// classifier (its `BAYES_SPAM`/`BAYES_HAM` symbol with the probability).
    pub fn judge_with(&self, input: &ScanInput<'_>, bayes: Option<&Bayes>) -> Judgement {
        let started = Instant::now();
        let engine = self.engine.load();
        let view = message::View::new(input.raw, input.parsed(), &input.context.mail_from);
        let mut symbols = engine.run(&view, input.raw, 0);
        if let Some(b) = bayes {
            symbols.extend(bayes_hit(b, &view, &input.context.qid));
        }
        symbols.extend(network_hits(input.context));
        symbols.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.name.cmp(&b.name)));
        let score = symbols.iter().map(|h| h.score).sum::<f64>();
        let policy = &input.context.policy.spam;
        let (action, threshold) = action_for(score, policy);
        let j = Judgement {
            score: (score * 100.0).round() / 100.0,
            action,
            threshold,
            symbols,
            micros: started.elapsed().as_micros() as u64,
        };
        self.count(&j);
        j
    }
}

/// The symbols of the DNS and authentication checks, when they were made.
fn network_hits(ctx: &ScanContext) -> Vec<Hit> {
    let Some(facts) = &ctx.net else {
        return Vec::new();
    };
    let p = &ctx.policy.spam;
    crate::network::symbols(facts, &p.dnsbl, &p.uribl, &p.symbol_scores)
        .into_iter()
        .map(|(name, score, detail)| Hit {
            name,
            score,
            count: 1,
            detail,
        })
        .collect()
}

/// The Bayes symbol of a message, if the classifier is active and sure enough either way.
fn bayes_hit(b: &Bayes, view: &message::View, qid: &str) -> Option<Hit> {
    let c = match b.classify_view(view) {
        Ok(c) => c?,
        Err(e) => {
            tracing::warn!("{qid}: bayes: {e}");
            return None;
        }
    };
    let (name, score) = crate::bayes::symbol(&c, &b.params)?;
    Some(Hit {
        name: name.into(),
        score,
        count: 1,
        detail: Some(format!("{:.2}%", c.probability * 100.0)),
    })
}

/// The action for `score` under `policy`'s thresholds (a score at or above a threshold
/// triggers it; the highest one wins).
pub fn action_for(score: f64, policy: &SpamPolicy) -> (SpamAction, Option<f64>) {
    let reached = |t: Option<f64>| t.filter(|t| score >= *t);
    if let Some(t) = reached(policy.deny_score) {
        (SpamAction::Reject, Some(t))
    } else if let Some(t) = reached(policy.flag_score) {
        (SpamAction::AddHeader, Some(t))
    } else if let Some(t) = reached(policy.greylist_score) {
        (SpamAction::Greylist, Some(t))
    } else {
        (SpamAction::NoAction, policy.flag_score)
    }
}

/// Whether the thresholds apply to mail in `ctx` (authenticated mail is judged and logged
/// only, unless the administrator says otherwise).
pub fn acts_on(ctx: &ScanContext) -> bool {
    ctx.auth.is_none() || ctx.policy.spam.act_on_authenticated
}

/// The header edits for a flagged message: our own headers removed from what arrived,
/// `X-Spam: Yes` with the score and the symbols, and the Subject prefix.
pub fn flag_headers(j: &Judgement, policy: &SpamPolicy, subject: Option<&str>) -> Vec<HeaderEdit> {
    let mut edits = remove_own_headers();
    edits.push(HeaderEdit::Add {
        name: "X-Spam-Symbols".into(),
        value: j.symbols_text(),
    });
    edits.push(HeaderEdit::Add {
        name: "X-Spam-Score".into(),
        value: format!("{:.2} / {:.2}", j.score, j.threshold.unwrap_or(0.0)),
    });
    edits.push(HeaderEdit::Add {
        name: "X-Spam".into(),
        value: "Yes".into(),
    });
    if !policy.subject_prefix.is_empty() {
        let old = subject.unwrap_or("");
        if !old.starts_with(&policy.subject_prefix) {
            edits.push(HeaderEdit::Remove {
                name: "Subject".into(),
            });
            edits.push(HeaderEdit::Add {
                name: "Subject".into(),
                value: format!("{} {}", policy.subject_prefix, old.trim())
                    .trim_end()
                    .to_string(),
            });
        }
    }
    edits
}

/// Removes every header postcore writes, whatever the sender put there.
pub fn remove_own_headers() -> Vec<HeaderEdit> {
    OWN_HEADERS
        .iter()
        .map(|n| HeaderEdit::Remove {
            name: (*n).to_string(),
        })
        .collect()
}

/// Carries a judgement into the verdict of a message the antivirus accepted: symbols and
/// score always, our own headers stripped from what arrived; under the thresholds (unless
/// the mail is authenticated and the policy says to leave it alone) a reject with
/// `554 5.7.1`, or the spam headers and filing into Junk.
pub fn apply(
    mut v: Verdict,
    j: &Judgement,
    input: &ScanInput<'_>,
    greylist: Option<&dyn GreylistStore>,
) -> Verdict {
    let ctx = input.context;
    let policy = &ctx.policy.spam;
    v.symbols.extend(j.verdict_symbols());
    v.score += j.score;
    let has_own = input.parsed().is_some_and(|m| {
        m.headers().iter().any(|h| {
            OWN_HEADERS
                .iter()
                .any(|o| h.name.as_str().eq_ignore_ascii_case(o))
        })
    });
    if has_own {
        v.headers.extend(remove_own_headers());
    }
    if !acts_on(ctx) {
        return v;
    }
    // A refusal keeps the symbols and score found so far (for the log and the queue).
    let refuse = |v: Verdict, reply: Reply| {
        let mut r = Verdict::refuse(reply);
        r.symbols = v.symbols;
        r.score = v.score;
        r
    };
    // The spam headers; our own were already removed above when the message had some.
    let flag = |v: &mut Verdict| {
        let subject = input.parsed().and_then(|m| m.subject());
        let skip = if has_own { OWN_HEADERS.len() } else { 0 };
        v.headers
            .extend(flag_headers(j, policy, subject).into_iter().skip(skip));
    };
    // RFC 7489 §6.6.4: the receiver applies the domain's policy to failing mail.
    let mut action = j.action;
    if policy.dmarc_enforce
        && let Some((demand, domain)) = ctx.net.as_ref().and_then(crate::network::dmarc_demand)
    {
        match demand {
            // In quarantine mode it is held like any other refused message.
            DmarcDemand::Reject if policy.quarantine_to.is_some() => action = SpamAction::Reject,
            DmarcDemand::Reject => {
                let text = format!("Rejected by the DMARC policy of {domain}");
                return refuse(v, Reply::new(550, "5.7.1", &text));
            }
            DmarcDemand::Quarantine if action != SpamAction::Reject => {
                action = SpamAction::AddHeader;
            }
            DmarcDemand::Quarantine => {}
        }
    }
    // Greylisting: at or above its threshold and below deny (flagged mail too: the spammiest
    // senders are the ones least likely to retry).
    if let (Some(store), SpamAction::Greylist | SpamAction::AddHeader) = (greylist, j.action)
        && policy.greylist.enabled
    {
        match crate::greylist::check(store, ctx, &policy.greylist) {
            Outcome::Defer(secs) => {
                let text = format!("Greylisted, please try again in {secs} seconds");
                let mut r = refuse(v, Reply::new(451, "4.7.1", &text));
                r.add_symbol("GREYLIST", 0.0, Some(format!("deferred {secs} s")));
                return r;
            }
            Outcome::Pass => v.add_symbol("GREYLIST", 0.0, Some("passed".into())),
        }
    }
    match (action, &policy.quarantine_to) {
        (SpamAction::Reject, Some(to)) => {
            flag(&mut v);
            for i in 0..ctx.rcpts.len() {
                v.set_disposition(i, Disposition::Redirect(vec![to.clone()]));
            }
            v.add_symbol("QUARANTINED", 0.0, Some(to.clone()));
            v
        }
        (SpamAction::Reject, None) => {
            let text = format!("Rejected as spam (score {:.1})", j.score);
            refuse(v, Reply::new(554, "5.7.1", &text))
        }
        (SpamAction::AddHeader, _) => {
            flag(&mut v);
            // Where each copy goes (Junk or INBOX) is the delivery's decision: the global
            // `move_to_junk` setting, unless the mailbox's owner chose otherwise.
            for i in 0..ctx.rcpts.len() {
                v.set_disposition(i, Disposition::Junk);
            }
            v
        }
        (SpamAction::Greylist | SpamAction::NoAction, _) => v,
    }
}

fn builtin_set() -> RuleSet {
    let mut set = RuleSet::default();
    // The built-in text is part of the binary and tested; it always parses.
    let _ = set.add_text("built-in", DEFAULT_RULES, None);
    set
}

fn load_set(dirs: &[PathBuf]) -> Result<RuleSet, String> {
    let mut set = builtin_set();
    for d in dirs {
        if d.is_dir() {
            set.load_dir(d).map_err(|e| e.to_string())?;
        } else {
            set.load_file(d).map_err(|e| e.to_string())?;
        }
    }
    set.finish();
    Ok(set)
}

#[cfg(test)]
mod tests;
