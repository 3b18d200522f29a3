//! A rule set compiled for matching: the regular expressions of each rule type (and, for
//! header rules, of each header they read) in one Hyperscan database; patterns Hyperscan
//! cannot express exactly run in its prefilter mode and are confirmed by fancy-regex, and
//! those it cannot take at all run on fancy-regex alone. Meta rules are evaluated in
//! dependency order after every other rule.

use super::ascii_tags;
use super::confirm::Confirm;
use super::evals::{self, Eval};
use super::message::{self, View};
use super::meta::{self, Expr, Program, Values};
use super::perl_re::PerlRegex;
use super::rules::{HeaderTarget, Kind, RuleSet, Test};
use super::superset;
use crate::scratch::ScratchPool;
use hyperscan::prelude::*;
use hyperscan::{BlockMode, HsError};
use serde::Serialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Pseudo-headers SpamAssassin derives from the Received chain, which postcore does not
/// build: rules reading them are skipped (counted), not run against nothing.
const PSEUDO_HEADERS: &[&str] = &[
    "x-spam-relays-external",
    "x-spam-relays-untrusted",
    "x-spam-relays-trusted",
    "x-spam-relays-internal",
];

/// How a rule set loaded: every rule accounted for.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadReport {
    /// Rules compiled, by type.
    pub loaded: BTreeMap<String, usize>,
    /// Regular expressions Hyperscan matches exactly.
    pub hyperscan: usize,
    /// Regular expressions Hyperscan prefilters and fancy-regex confirms.
    pub prefiltered: usize,
    /// Regular expressions only fancy-regex runs.
    pub fallback: usize,
    /// Regular expressions on Hyperscan that read plain texts (ASCII, no `&#`) in a narrowed
    /// form (ReplaceTags' other look-alikes left out: [`crate::spam::ascii_tags`]).
    pub narrowed: usize,
    /// Built-in checks (`eval:`) run.
    pub evals: usize,
    /// Rule lines not run, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Meta rules that read rules postcore does not have (those read as 0).
    pub metas_with_missing: usize,
    /// Milliseconds to compile.
    pub compile_ms: u64,
}

impl LoadReport {
    /// Rules compiled in all.
    pub fn total_loaded(&self) -> usize {
        self.loaded.values().sum()
    }

    /// Rule lines skipped in all.
    pub fn total_skipped(&self) -> usize {
        self.skipped.values().sum()
    }

    fn skip(&mut self, why: &str) {
        *self.skipped.entry(why.to_string()).or_default() += 1;
    }
}

/// Which text a group of rules reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Source {
    Header(HeaderTarget),
    MimeHeader(HeaderTarget),
    Body,
    RawBody,
    Full,
    Uri,
}

/// A pattern whose bounded repeats weigh more than this ([`PerlRegex::repeat_cost`]) is
/// prefiltered in its relaxed form (bounded repeats unbounded) and confirmed by
/// fancy-regex: compiled exactly, a handful of SpamAssassin's rules (`[^>]{0,2048}`, groups
/// repeated `{0,99}`) take Hyperscan tens of seconds each.
const HEAVY_REPEATS: u64 = 200;

/// The same limit for `full` rules: confirming one reads the whole message (tens of
/// kilobytes, every message the relaxed prefilter lets through), so an exact compile is worth
/// more there. Covers `__LONGLINE` (`^[^\r\n]{998}`, 0.1 s to compile exactly), whose
/// confirming was 52 ms per 1,000 messages of the anchors' corpus.
const FULL_HEAVY_REPEATS: u64 = 1_000;

/// Patterns per Hyperscan database: compile time grows faster than the number of patterns,
/// so a large group is split (each part one more pass over the text). Measured with Debian's
/// rules (1,000 messages, two threads): 32 → 256 judges 10 % faster (575 → 634 msg/s) for
/// 24 MB more resident memory and about the same cold compile; 1,024 gained nothing more.
const PATTERNS_PER_DB: usize = 256;

/// How one regex rule of a group runs.
struct Runner {
    rule: usize,
    negate: bool,
    /// Hyperscan alone decides (no `multiple` count needed, expressed exactly).
    exact: bool,
    /// In a Hyperscan database (exactly or as a prefilter).
    in_hyperscan: bool,
    /// Confirms candidates (and runs what Hyperscan could not take).
    confirm: Option<Confirm>,
    /// Confirms candidates in plain texts, from the narrowed pattern (the same matches there,
    /// a smaller automaton), when the rule has one and needs confirming.
    ascii_confirm: Option<Confirm>,
    /// In plain texts Hyperscan alone decides: the narrowed pattern is in the ASCII databases
    /// exactly and no count is needed. It matters where the whole form is only a prefilter,
    /// or was refused when its database was built (SpamAssassin's longest ReplaceTags rules).
    ascii_exact: bool,
    /// A sub-rule that needs confirming: confirmed only when a meta reads it (see
    /// [`Resolver`]).
    lazy: bool,
}

struct Group {
    source: Source,
    /// Indexes into [`Engine::dbs`].
    dbs: Vec<usize>,
    /// The databases for plain texts (ASCII octets only, no `&#`: [`ascii_tags::is_plain`]):
    /// the same patterns, those with ReplaceTags look-alikes narrowed to the ones plain text
    /// can hold (see [`crate::spam::ascii_tags`]); the same as `dbs` when none was narrowed.
    ascii_dbs: Vec<usize>,
    /// How many of its patterns are narrowed in `ascii_dbs`.
    narrowed: usize,
    runners: Vec<Runner>,
}

/// A compiled rule set.
pub struct Engine {
    names: Vec<String>,
    scores: Vec<[f64; 4]>,
    maxhits: Vec<u32>,
    groups: Vec<Group>,
    exists: Vec<(usize, String)>,
    evals: Vec<(usize, Eval)>,
    metas: Vec<(usize, Program)>,
    /// Sub-rules and metas are worked out only when a rule that scores reads them; off,
    /// every rule runs (for tests comparing the two).
    on_demand: bool,
    describe: HashMap<String, String>,
    dbs: Vec<BlockDatabase>,
    scratch: ScratchPool,
    /// How the set loaded.
    pub report: LoadReport,
}

/// One rule that hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hit {
    /// Rule name.
    pub name: String,
    /// Score in the chosen score set.
    pub score: f64,
    /// Times it matched (1 unless `tflags multiple`).
    pub count: u32,
    /// What the check found, where it says more than a count (the Bayes probability).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Engine {
    /// Compiles `set`.
    pub fn compile(set: RuleSet) -> Engine {
        Self::compile_cached(set, None)
    }

    /// Compiles `set`, keeping compiled databases in `cache` (a directory) between loads:
    /// the first compile of SpamAssassin's rules takes Hyperscan about a minute, a load from
    /// the cache well under a second.
    pub fn compile_cached(set: RuleSet, cache: Option<&Path>) -> Engine {
        let started = std::time::Instant::now();
        let mut report = LoadReport {
            skipped: set.skipped.clone(),
            ..LoadReport::default()
        };
        let mut names = Vec::new();
        let mut scores = Vec::new();
        let mut maxhits = Vec::new();
        let mut index = HashMap::new();
        let mut grouped: BTreeMap<Source, Vec<GroupRule>> = BTreeMap::new();
        let mut exists = Vec::new();
        let mut evals_run = Vec::new();
        let mut meta_src = Vec::new();
        let needed = needed_rules(&set);
        let live = live_rules(&set);
        for rule in set.rules.values() {
            if !needed.contains(rule.name.as_str()) {
                report.skip(UNUSED);
                continue;
            }
            if reads_pseudo_header(rule) {
                report.skip("reads a Received-chain pseudo-header postcore does not build");
                continue;
            }
            let eval = match &rule.test {
                Test::Eval { func, args } => match evals::resolve(func, args) {
                    Some(e) => Some(e),
                    None => {
                        report.skip(&format!("eval:{func} not built in"));
                        continue;
                    }
                },
                _ => None,
            };
            if !live.contains(rule.name.as_str()) {
                report.skip(FIXED);
                continue;
            }
            let i = names.len();
            names.push(rule.name.clone());
            scores.push([0, 1, 2, 3].map(|s| set.score(&rule.name, s)));
            maxhits.push(if rule.multiple {
                if rule.maxhits == 0 {
                    u32::MAX
                } else {
                    rule.maxhits
                }
            } else {
                1
            });
            index.insert(rule.name.clone(), i);
            *report
                .loaded
                .entry(rule.kind.name().to_string())
                .or_default() += 1;
            match &rule.test {
                Test::Regex { re, negate, ascii } => {
                    let source = match (rule.kind, &rule.target) {
                        (Kind::Header, Some(t)) => Source::Header(t.clone()),
                        (Kind::MimeHeader, Some(t)) => Source::MimeHeader(t.clone()),
                        (Kind::Body, _) => Source::Body,
                        (Kind::RawBody, _) => Source::RawBody,
                        (Kind::Full, _) => Source::Full,
                        _ => Source::Uri,
                    };
                    grouped.entry(source).or_default().push(GroupRule {
                        rule: i,
                        re: re.clone(),
                        ascii: ascii.clone(),
                        negate: *negate,
                        multiple: rule.multiple,
                        sub: rule.name.starts_with("__"),
                    });
                }
                Test::Exists(h) => exists.push((i, h.clone())),
                Test::Eval { .. } => {
                    if let Some(e) = eval {
                        evals_run.push((i, e));
                    }
                }
                Test::Meta(src) => meta_src.push((i, src.clone())),
            }
        }
        report.evals = evals_run.len();
        let mut groups = Vec::new();
        let mut pending = Vec::new();
        for (source, rules) in grouped {
            let (g, chunks) = compile_group(source, rules, &mut report);
            pending.extend(chunks.into_iter().map(|(a, c)| (groups.len(), a, c)));
            groups.push(g);
        }
        let dbs = build_all(&mut groups, pending, cache, &mut report);
        // The cost of reading a rule: a lazy sub-rule's confirming (on every unit when
        // Hyperscan cannot flag the units for it), a meta's reads.
        let mut cost = vec![0.0; names.len()];
        for r in groups.iter().flat_map(|g| &g.runners) {
            if r.lazy {
                cost[r.rule] = if r.in_hyperscan { 1.0 } else { 10.0 };
            }
        }
        let mut metas = Vec::new();
        for (i, e) in order_metas(meta_src, &index, &names, &mut report) {
            let (e, c) = meta::cheapest_first(e, &|j| cost[j]);
            cost[i] = c;
            metas.push((i, Program::new(&e)));
        }
        report.compile_ms = started.elapsed().as_millis() as u64;
        Engine {
            names,
            scores,
            maxhits,
            groups,
            exists,
            evals: evals_run,
            metas,
            on_demand: true,
            describe: set.describe,
            dbs,
            scratch: ScratchPool::default(),
            report,
        }
    }

    /// The rules that Hyperscan alone decides in plain texts though their whole pattern is
    /// only a prefilter, or not on Hyperscan at all (for tests).
    #[cfg(test)]
    pub(crate) fn ascii_exact_rules(&self) -> Vec<&str> {
        let runners = self.groups.iter().flat_map(|g| &g.runners);
        runners
            .filter(|r| r.ascii_exact)
            .map(|r| self.names[r.rule].as_str())
            .collect()
    }

    /// Works every rule out, not only those a rule that scores reads (for tests).
    #[cfg(test)]
    pub(crate) fn set_on_demand(&mut self, on: bool) {
        self.on_demand = on;
    }

    /// The description of rule `name`.
    pub fn describe(&self, name: &str) -> Option<&str> {
        self.describe.get(name).map(String::as_str)
    }

    /// Runs the rules over `view` and `full` (the message as received); returns the rules
    /// that hit with their scores in score set `set` (sub-rules and zero scores left out).
    /// Sub-rules and metas are worked out as far as the rules that score read them (see
    /// [`Resolver`]).
    pub fn run(&self, view: &View, full: &[u8], set: usize) -> Vec<Hit> {
        self.run_counted(view, full, set).0
    }

    /// [`Engine::run`], and how many lazy sub-rules it confirmed.
    pub(crate) fn run_counted(&self, view: &View, full: &[u8], set: usize) -> (Vec<Hit>, usize) {
        let mut hits = vec![0u32; self.names.len()];
        let mut state = vec![State::Known; self.names.len()];
        let mut pending = Vec::new();
        let mut texts: Vec<Option<GroupText>> = Vec::new();
        let mut scan_all = |scratch: Option<&Scratch>| {
            texts.clear();
            pending.clear();
            for (gi, g) in self.groups.iter().enumerate() {
                let units = units(&g.source, view, full);
                let mut out = GroupOut {
                    group: gi,
                    hits: &mut hits,
                    state: &mut state,
                    pending: &mut pending,
                };
                texts.push(self.scan_group(g, units, scratch, &mut out));
            }
        };
        let hs = if self.dbs.is_empty() {
            scan_all(None);
            false
        } else if self
            .scratch
            .with(&self.dbs, |s| scan_all(Some(s)))
            .is_none()
        {
            tracing::warn!("no Hyperscan scratch space: antispam patterns run on fancy-regex");
            scan_all(None);
            false
        } else {
            true
        };
        for (i, h) in &self.exists {
            hits[*i] = u32::from(view.exists(h));
        }
        for (i, e) in &self.evals {
            hits[*i] = u32::from(e.check(view, full));
        }
        for (m, (i, _)) in self.metas.iter().enumerate() {
            state[*i] = State::Meta(m);
        }
        let mut r = Resolver {
            engine: self,
            hs,
            hits,
            state,
            pending,
            texts,
            stacks: Vec::new(),
            confirmed: 0,
        };
        if self.on_demand {
            // The rules that score: every meta not a sub-rule (they read the rest).
            for (i, _) in &self.metas {
                if !self.names[*i].starts_with("__") {
                    r.value(*i);
                }
            }
        } else {
            for i in 0..self.names.len() {
                r.value(i);
            }
        }
        let (hits, confirmed) = (r.hits, r.confirmed);
        let set = set.min(3);
        let scored = hits
            .iter()
            .enumerate()
            .filter(|(i, c)| **c > 0 && !self.names[*i].starts_with("__"))
            .filter_map(|(i, c)| {
                let score = self.scores[i][set];
                (score != 0.0).then(|| Hit {
                    name: self.names[i].clone(),
                    score: score * f64::from((*c).min(self.maxhits[i])),
                    count: *c,
                    detail: None,
                })
            })
            .collect();
        (scored, confirmed)
    }

    /// Scans group `g`'s texts `units` and works out its runners' hit counts, the lazy ones
    /// left pending; returns the texts when some are, for confirming them later.
    fn scan_group<'u>(
        &self,
        g: &Group,
        units: Vec<Cow<'u, [u8]>>,
        scratch: Option<&Scratch>,
        out: &mut GroupOut,
    ) -> Option<GroupText<'u>> {
        // For each runner, the units Hyperscan flagged (in order, once each): a prefiltered
        // pattern is confirmed on those alone.
        let mut flagged: Vec<Vec<u32>> = vec![Vec::new(); g.runners.len()];
        let hs = scratch.is_some();
        let ascii: Vec<bool> = units.iter().map(|u| ascii_tags::is_plain(u)).collect();
        if let Some(s) = scratch {
            for (ui, u) in units.iter().enumerate() {
                let dbs = if ascii[ui] { &g.ascii_dbs } else { &g.dbs };
                for &d in dbs {
                    scan_db(&self.dbs[d], u, ui as u32, s, &mut flagged);
                }
            }
        }
        let mut text = GroupText {
            latin: vec![None; units.len()],
            units,
            ascii,
        };
        let mut lazy = false;
        for (k, r) in g.runners.iter().enumerate() {
            if r.lazy {
                lazy = true;
                out.state[r.rule] = State::Pending(out.pending.len());
                out.pending.push(Pending {
                    group: out.group,
                    runner: k,
                    flagged: std::mem::take(&mut flagged[k]),
                });
                continue;
            }
            out.hits[r.rule] = self.runner_hit(r, &flagged[k], &mut text, hs);
        }
        lazy.then_some(text)
    }

    /// Runner `r`'s hit count (0 or 1 when negated) over `text`, from the units Hyperscan
    /// flagged for it when `hs`.
    fn runner_hit(&self, r: &Runner, flagged: &[u32], text: &mut GroupText, hs: bool) -> u32 {
        let GroupText {
            units,
            ascii,
            latin,
        } = text;
        let count = if hs && r.exact {
            u32::from(!flagged.is_empty())
        } else if hs && r.ascii_exact && flagged.iter().any(|&u| ascii[u as usize]) {
            // A plain text Hyperscan flagged with the exact narrowed pattern.
            1
        } else {
            let all: Vec<u32>;
            let which = if hs && r.in_hyperscan {
                flagged
            } else {
                all = (0..units.len() as u32).collect();
                &all
            };
            let max = self.maxhits[r.rule];
            let mut n = 0u32;
            if let Some(whole) = &r.confirm {
                for &ui in which {
                    let i = ui as usize;
                    if hs && r.ascii_exact && ascii[i] {
                        // Decided above: Hyperscan flagged no plain text.
                        continue;
                    }
                    let c = match &r.ascii_confirm {
                        Some(narrowed) if ascii[i] => narrowed,
                        _ => whole,
                    };
                    n = n.saturating_add(c.count(&units[i], &mut latin[i], max - n));
                    if n >= max {
                        break;
                    }
                }
            }
            n
        };
        if r.negate {
            u32::from(count == 0)
        } else {
            count
        }
    }
}

/// Where a rule's hit count stands while a message is judged.
#[derive(Debug, Clone, Copy)]
enum State {
    /// In the hit counts.
    Known,
    /// A lazy runner's: its entry in the pending list.
    Pending(usize),
    /// A meta's, not yet worked out: its index in the engine's metas.
    Meta(usize),
}

/// A lazy runner's Hyperscan result, kept for confirming it if a meta reads it.
struct Pending {
    group: usize,
    runner: usize,
    flagged: Vec<u32>,
}

/// What scanning a group writes.
struct GroupOut<'o> {
    group: usize,
    hits: &'o mut [u32],
    state: &'o mut [State],
    pending: &'o mut Vec<Pending>,
}

/// A group's texts, which of them are plain, and their Latin-1 copies made so far; kept
/// from its scan for confirming its lazy runners.
struct GroupText<'u> {
    units: Vec<Cow<'u, [u8]>>,
    ascii: Vec<bool>,
    latin: Vec<Option<String>>,
}

/// Works out sub-rules and metas when a rule that scores reads them. A meta's `&&` and `||`
/// skip their right side once the left decides, so a costly sub-rule (a back-reference over
/// the whole header, say) behind a cheap condition that fails is never confirmed. The rules
/// that score get the values evaluating every rule would give them: each value worked out
/// is the one the eager order computes, and an unread one cannot change what reads it.
struct Resolver<'e, 'u> {
    engine: &'e Engine,
    hs: bool,
    hits: Vec<u32>,
    state: Vec<State>,
    pending: Vec<Pending>,
    /// Per group with lazy runners, its texts.
    texts: Vec<Option<GroupText<'u>>>,
    /// Stacks for evaluating metas, one per level of metas reading metas.
    stacks: Vec<Vec<f64>>,
    /// How many lazy runners were confirmed.
    confirmed: usize,
}

impl Values for Resolver<'_, '_> {
    fn value(&mut self, rule: usize) -> u32 {
        let Some(state) = self.state.get(rule).copied() else {
            return 0;
        };
        if let State::Known = state {
            return self.hits[rule];
        }
        // Known (as 0) while it is worked out: a meta that reached itself would read 0, as
        // in the eager order (`order_metas` leaves no cycle, so none does).
        self.state[rule] = State::Known;
        let v = match state {
            State::Known => 0,
            State::Pending(p) => self.confirm(p),
            State::Meta(m) => {
                let engine = self.engine;
                let mut stack = self.stacks.pop().unwrap_or_default();
                let v = engine.metas[m].1.eval_with(self, &mut stack);
                self.stacks.push(stack);
                u32::from(v != 0.0)
            }
        };
        self.hits[rule] = v;
        v
    }
}

impl Resolver<'_, '_> {
    /// Confirms pending runner `p`.
    fn confirm(&mut self, p: usize) -> u32 {
        self.confirmed += 1;
        let (gi, k) = (self.pending[p].group, self.pending[p].runner);
        let g = &self.engine.groups[gi];
        // Kept by the scan for every group with a lazy runner.
        let Some(text) = self.texts.get_mut(gi).and_then(Option::as_mut) else {
            debug_assert!(false, "no texts kept for group {gi}");
            return 0;
        };
        self.engine
            .runner_hit(&g.runners[k], &self.pending[p].flagged, text, self.hs)
    }
}

/// Scans unit `unit` (`data`) with `db`, noting it for each pattern that matches (ids are
/// runner indexes).
fn scan_db(
    db: &BlockDatabase,
    data: &[u8],
    unit: u32,
    scratch: &Scratch,
    flagged: &mut [Vec<u32>],
) {
    let _ = db.scan(data, scratch, |id, _, _, _| {
        if let Some(f) = flagged.get_mut(id as usize)
            && f.last() != Some(&unit)
        {
            f.push(unit);
        }
        Matching::Continue
    });
}

/// The texts a group's rules read, one scan each: the view's own texts borrowed, header
/// values built for the group.
fn units<'a>(source: &Source, view: &'a View, full: &[u8]) -> Vec<Cow<'a, [u8]>> {
    let borrowed = |v: &'a [Vec<u8>]| v.iter().map(|u| Cow::Borrowed(u.as_slice())).collect();
    match source {
        Source::Header(t) => vec![Cow::Owned(view.header_text(t).unwrap_or_default())],
        Source::MimeHeader(t) => view
            .part_fields
            .iter()
            .filter_map(|f| message::header_text_of(f, t, &view.envelope_from))
            .map(Cow::Owned)
            .collect(),
        Source::Body => borrowed(&view.paragraphs),
        Source::RawBody => borrowed(&view.raw_chunks),
        // SpamAssassin reads messages with LF line ends (its `full` rules write `$` for the
        // end of a line).
        Source::Full => vec![Cow::Owned(crlf_to_lf(full))],
        Source::Uri => borrowed(&view.uris),
    }
}

/// `b` with each CR LF as LF (a lone CR kept): copied a line at a time.
fn crlf_to_lf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut from = 0;
    for at in memchr::memmem::find_iter(b, b"\r\n") {
        out.extend_from_slice(&b[from..at]);
        from = at + 1;
    }
    out.extend_from_slice(&b[from..]);
    out
}

fn hs_flags(re: &PerlRegex) -> CompileFlags {
    let mut f = CompileFlags::empty();
    if re.caseless {
        f |= CompileFlags::CASELESS;
    }
    if re.multiline {
        f |= CompileFlags::MULTILINE;
    }
    if re.dotall {
        f |= CompileFlags::DOTALL;
    }
    f
}

fn hs_pattern(re: &PerlRegex, flags: CompileFlags, id: usize) -> Pattern {
    Pattern {
        expression: re.hyperscan_expression(),
        flags,
        id: Some(id),
        ext: Default::default(),
        som: None,
    }
}

/// Why a rule is not run: SpamAssassin does not run a rule scored 0 either, and no meta rule
/// reads it (a `__` sub-rule no meta reads never counts).
pub const UNUSED: &str = "scores 0 and no meta rule reads it";

/// Whether rule `name` counts by itself: not a `__` sub-rule, and scored other than 0 in
/// score set 0. These are the roots from which the rules worth running are found.
fn scores(set: &RuleSet, name: &str) -> bool {
    !name.starts_with("__") && set.score(name, 0) != 0.0
}

/// The rules whose result can matter: those scoring other than 0 (score set 0), and every
/// rule a meta rule among them reads, recursively.
fn needed_rules(set: &RuleSet) -> std::collections::HashSet<&str> {
    let mut needed: std::collections::HashSet<&str> = set
        .rules
        .keys()
        .filter(|n| scores(set, n))
        .map(String::as_str)
        .collect();
    let mut todo: Vec<&str> = needed.iter().copied().collect();
    while let Some(name) = todo.pop() {
        let Some(Test::Meta(src)) = set.rules.get(name).map(|r| &r.test) else {
            continue;
        };
        let words = src
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty());
        for w in words {
            if let Some((k, _)) = set.rules.get_key_value(w)
                && needed.insert(k.as_str())
            {
                todo.push(k.as_str());
            }
        }
    }
    needed
}

/// Why a rule read by meta rules is not run: every meta that reads it has a value fixed
/// without it (`A && B` where `B` is a rule postcore does not have reads `A` for nothing).
pub const FIXED: &str = "read only where a meta rule's value is fixed without it";

/// Whether `rule` reads one of the Received-chain pseudo-headers postcore does not build.
fn reads_pseudo_header(rule: &super::rules::Rule) -> bool {
    rule.target
        .as_ref()
        .is_some_and(|t| PSEUDO_HEADERS.contains(&t.name.as_str()))
}

/// Whether the engine can run `rule` at all: a rule it skips reads as 0 in every meta.
fn runnable(rule: &super::rules::Rule) -> bool {
    match &rule.test {
        _ if reads_pseudo_header(rule) => false,
        Test::Eval { func, args } => evals::resolve(func, args).is_some(),
        _ => true,
    }
}

/// The rules whose result can matter once each meta rule is folded ([`meta::fold`]) over the
/// rules the engine cannot run (value 0) and the metas whose value that fixes: those scoring
/// other than 0 (score set 0) and every rule a folded meta among them still reads,
/// recursively. Unlike [`needed_rules`], a rule read only behind `0 &&` (or `1 ||`) is left
/// out: its value changes no scoring rule's, so running it would only cost time.
fn live_rules(set: &RuleSet) -> std::collections::HashSet<&str> {
    let names: Vec<&str> = set.rules.keys().map(String::as_str).collect();
    let written = written_metas(set, &names);
    let mut folded: HashMap<usize, Expr> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let mut keys: Vec<usize> = written.keys().copied().collect();
    keys.sort_unstable();
    for k in keys {
        fold_meta(k, &written, &mut seen, &mut folded);
    }
    let mut live: std::collections::HashSet<usize> = (0..names.len())
        .filter(|&i| scores(set, names[i]))
        .collect();
    let mut todo: Vec<usize> = live.iter().copied().collect();
    while let Some(i) = todo.pop() {
        let Some((e, f)) = written.get(&i).zip(folded.get(&i)) else {
            continue;
        };
        // What the folded meta reads, and the metas fixed at a value other than 0 that the
        // written one reads: the engine runs the meta as written, where a rule it does not
        // run reads as 0, so those must run (and read nothing themselves).
        let mut reads = Vec::new();
        f.rules(&mut reads);
        let mut fixed = Vec::new();
        e.rules(&mut fixed);
        fixed.retain(|j| matches!(folded.get(j), Some(Expr::Num(n)) if *n != 0.0));
        reads.extend(fixed);
        for j in reads {
            if live.insert(j) {
                todo.push(j);
            }
        }
    }
    live.into_iter().map(|i| names[i]).collect()
}

/// Each meta rule of `set` (by its index in `names`) as the engine reads it: a rule it cannot
/// run as 0, and a meta it cannot parse (which it skips) as 0 too.
fn written_metas(set: &RuleSet, names: &[&str]) -> HashMap<usize, Expr> {
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let mut resolve = |w: &str| {
        let j = *index.get(w)?;
        set.rules.get(names[j]).filter(|r| runnable(r)).map(|_| j)
    };
    let mut out = HashMap::new();
    for (i, n) in names.iter().enumerate() {
        if let Some(Test::Meta(src)) = set.rules.get(*n).map(|r| &r.test) {
            let e = meta::parse(src, &mut resolve, &mut Vec::new()).unwrap_or(Expr::Num(0.0));
            out.insert(i, e);
        }
    }
    out
}

/// Folds meta `i` after the metas it reads (depth first). A meta met again while its own
/// reads are being folded (a cycle, which the engine skips) is left unfolded for the metas
/// that read it, which only keeps more rules.
fn fold_meta(
    i: usize,
    written: &HashMap<usize, Expr>,
    seen: &mut std::collections::HashSet<usize>,
    folded: &mut HashMap<usize, Expr>,
) {
    let Some(e) = written.get(&i).filter(|_| seen.insert(i)) else {
        return;
    };
    let mut reads = Vec::new();
    e.rules(&mut reads);
    for j in reads {
        fold_meta(j, written, seen, folded);
    }
    let known = |j: usize| match folded.get(&j) {
        Some(Expr::Num(n)) => Some(*n),
        _ => None,
    };
    let f = meta::fold(e, &known);
    folded.insert(i, f);
}

/// A regex rule of one group, as [`compile_group`] takes it.
struct GroupRule {
    /// Its index among the engine's rules.
    rule: usize,
    re: PerlRegex,
    /// Its narrowed variant for plain texts (see [`Test::Regex`]).
    ascii: Option<String>,
    negate: bool,
    multiple: bool,
    /// A sub-rule (`__` name): it only counts through the metas that read it.
    sub: bool,
}

/// The pattern lists a group compiles into databases: for any text, and for plain texts.
#[derive(Default)]
struct GroupPatterns {
    exact: Vec<Pattern>,
    prefilter: Vec<Pattern>,
    ascii_exact: Vec<Pattern>,
    ascii_prefilter: Vec<Pattern>,
    narrowed: usize,
}

/// Compiles the regex rules reading one text; returns the group and its pattern chunks, each
/// marked `true` when it is for plain texts.
fn compile_group(
    source: Source,
    rules: Vec<GroupRule>,
    report: &mut LoadReport,
) -> (Group, Vec<(bool, Vec<Pattern>)>) {
    let mut runners = Vec::new();
    let mut pats = GroupPatterns::default();
    let heavy_above = if matches!(source, Source::Full) {
        FULL_HEAVY_REPEATS
    } else {
        HEAVY_REPEATS
    };
    for r in rules {
        let confirm = Confirm::new(&r.re);
        let k = runners.len();
        let base = hs_flags(&r.re) | CompileFlags::SINGLEMATCH;
        // The narrowed form for plain texts, when the rule has one: exact, else a prefilter.
        let (narrow_exact, narrow_pre) = match &r.ascii {
            Some(src) => {
                let narrowed = PerlRegex {
                    source: src.clone(),
                    ..r.re.clone()
                };
                hs_patterns(&narrowed, base, k, heavy_above)
            }
            None => (None, None),
        };
        // Exact narrowed: it decides plain texts even where the whole is only a prefilter, is
        // refused when its database is built, or is too large for Hyperscan at all.
        let mut ascii_exact = narrow_exact.is_some() && !r.multiple;
        let (in_hs, is_exact) = match hs_patterns(&r.re, base, k, heavy_above) {
            (Some(p), _) => {
                pats.ascii_exact
                    .push(narrow_exact.unwrap_or_else(|| p.clone()));
                pats.exact.push(p);
                (true, !r.multiple || confirm.is_none())
            }
            (None, Some(pre)) if confirm.is_some() => {
                let a = narrow_exact.or(narrow_pre);
                pats.ascii_prefilter.push(a.unwrap_or_else(|| pre.clone()));
                pats.prefilter.push(pre);
                (true, false)
            }
            _ => {
                // Too large for Hyperscan whole (SpamAssassin's longest ReplaceTags rules):
                // the exact narrowed form decides plain texts, the confirming engine reads
                // the others.
                match narrow_exact {
                    Some(a) if ascii_exact && confirm.is_some() => pats.ascii_exact.push(a),
                    _ => ascii_exact = false,
                }
                (false, false)
            }
        };
        pats.narrowed += usize::from((in_hs || ascii_exact) && r.ascii.is_some());
        if !in_hs && confirm.is_none() {
            report.skip("regex neither Hyperscan nor fancy-regex can compile");
            continue;
        }
        match (in_hs, is_exact) {
            (true, true) => report.hyperscan += 1,
            (true, false) => report.prefiltered += 1,
            _ => report.fallback += 1,
        }
        let ascii_confirm = match &r.ascii {
            Some(src) if !is_exact && confirm.is_some() => Confirm::new(&PerlRegex {
                source: src.clone(),
                ..r.re.clone()
            }),
            _ => None,
        };
        runners.push(Runner {
            rule: r.rule,
            negate: r.negate,
            exact: is_exact,
            in_hyperscan: in_hs,
            confirm,
            ascii_confirm,
            ascii_exact,
            lazy: r.sub && !is_exact,
        });
    }
    let mut chunks = Vec::new();
    let mut sets = vec![(false, pats.exact), (false, pats.prefilter)];
    if pats.narrowed > 0 {
        sets.push((true, pats.ascii_exact));
        sets.push((true, pats.ascii_prefilter));
    }
    for (ascii, set) in sets {
        chunks.extend(set.chunks(PATTERNS_PER_DB).map(|c| (ascii, c.to_vec())));
    }
    (
        Group {
            source,
            dbs: Vec::new(),
            ascii_dbs: Vec::new(),
            narrowed: pats.narrowed,
            runners,
        },
        chunks,
    )
}

/// Hyperscan's forms of `re` with id `id`: the exact pattern when Hyperscan takes it and its
/// repeats are not too costly, else the prefilter (a superset, confirmed afterwards; its
/// repeats relaxed when heavy) when Hyperscan takes that.
fn hs_patterns(
    re: &PerlRegex,
    base: CompileFlags,
    id: usize,
    heavy_above: u64,
) -> (Option<Pattern>, Option<Pattern>) {
    let heavy = re.repeat_cost() > heavy_above;
    let p = hs_pattern(re, base, id);
    if !heavy && p.info().is_ok() {
        return (Some(p), None);
    }
    let pre = if heavy {
        hs_pattern(&re.relaxed(), base | CompileFlags::PREFILTER, id)
    } else {
        hs_pattern(re, base | CompileFlags::PREFILTER, id)
    };
    if pre.info().is_ok() {
        return (None, Some(pre));
    }
    // Hyperscan takes no `$` inside a pattern (T_FUZZY_OPTOUT's `(?:$|\W)`), not even to
    // prefilter: without those assertions the pattern matches more, so it still prefilters.
    let loose = superset::end_anchors_dropped(&re.source).map(|source| {
        let r = PerlRegex {
            source,
            ..re.clone()
        };
        let r = if heavy { r.relaxed() } else { r };
        hs_pattern(&r, base | CompileFlags::PREFILTER, id)
    });
    (None, loose.filter(|p| p.info().is_ok()))
}

/// Builds the databases of every group: a core's worth at a time, each read from the cache
/// directory when it holds one compiled from the same patterns by the same Hyperscan.
fn build_all(
    groups: &mut [Group],
    pending: Vec<(usize, bool, Vec<Pattern>)>,
    cache: Option<&Path>,
    report: &mut LoadReport,
) -> Vec<BlockDatabase> {
    let built = crate::parallel::map(pending, |(g, ascii, pats)| {
        let (db, refused) = build_cached(pats, cache);
        (g, ascii, db, refused)
    });
    let mut dbs = Vec::new();
    // Per group: whether its plain-text databases all built with every pattern in them.
    let mut ascii_ok: Vec<Option<bool>> = vec![None; groups.len()];
    for (g, ascii, db, refused) in built {
        let group = &mut groups[g];
        if ascii {
            // A narrowed pattern Hyperscan refuses would leave its rule unflagged on every
            // plain text: such a group reads plain texts with its full databases instead.
            let ok = refused.is_empty() && db.is_some();
            if let Some(db) = db.filter(|_| ok) {
                group.ascii_dbs.push(dbs.len());
                dbs.push(db);
            }
            ascii_ok[g] = Some(ascii_ok[g].unwrap_or(true) && ok);
            continue;
        }
        for k in refused {
            demote(&mut group.runners, k, report);
        }
        if let Some(db) = db {
            group.dbs.push(dbs.len());
            dbs.push(db);
        }
    }
    for (group, ok) in groups.iter_mut().zip(ascii_ok) {
        if ok == Some(true) {
            report.narrowed += group.narrowed;
        } else {
            // Plain texts read the full databases, whose prefilters need confirming.
            group.ascii_dbs = group.dbs.clone();
            for r in &mut group.runners {
                r.ascii_exact = false;
            }
        }
    }
    dbs
}

/// A cache key for a set of patterns: SHA-256 over the Hyperscan version and each
/// pattern's id, flags and expression.
fn cache_key(patterns: &[Pattern]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(hyperscan::version_str().to_bytes());
    for p in patterns {
        h.update((p.id.unwrap_or(0) as u64).to_le_bytes());
        h.update(p.flags.bits().to_le_bytes());
        h.update((p.expression.len() as u64).to_le_bytes());
        h.update(p.expression.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// [`build`] through the cache directory.
fn build_cached(
    patterns: Vec<Pattern>,
    cache: Option<&Path>,
) -> (Option<BlockDatabase>, Vec<usize>) {
    let key = cache_key(&patterns);
    crate::hs_cache::load_or_build(cache, &key, || build(patterns))
}

/// Builds one database; returns it and the runner indexes of the patterns the compiler
/// refused (those move to fancy-regex alone).
fn build(mut patterns: Vec<Pattern>) -> (Option<BlockDatabase>, Vec<usize>) {
    let mut refused = Vec::new();
    let all = |ps: &[Pattern]| ps.iter().filter_map(|p| p.id).collect::<Vec<_>>();
    while !patterns.is_empty() {
        match Patterns(patterns.clone()).build::<BlockMode>() {
            Ok(db) => return (Some(db), refused),
            Err(hyperscan::Error::Hyperscan(HsError::CompileError(e))) => {
                let Some(i) = e.expression().filter(|i| *i < patterns.len()) else {
                    tracing::warn!("hyperscan compile failed: {}", e.message());
                    refused.extend(all(&patterns));
                    return (None, refused);
                };
                refused.extend(patterns.remove(i).id);
            }
            Err(e) => {
                tracing::warn!("hyperscan compile failed: {e}");
                refused.extend(all(&patterns));
                return (None, refused);
            }
        }
    }
    (None, refused)
}

fn demote(runners: &mut [Runner], k: usize, report: &mut LoadReport) {
    if let Some(r) = runners.get_mut(k) {
        if r.exact {
            report.hyperscan -= 1;
        } else {
            report.prefiltered -= 1;
        }
        // Its narrowed form, when exact, still decides plain texts (see `build_all`).
        r.exact = false;
        r.in_hyperscan = false;
        if r.confirm.is_some() {
            report.fallback += 1;
        } else {
            report.skip("regex neither Hyperscan nor fancy-regex can compile");
        }
    }
}

/// Parses meta rules and orders them so that each follows the metas it reads; a meta in a
/// cycle is skipped.
fn order_metas(
    src: Vec<(usize, String)>,
    index: &HashMap<String, usize>,
    names: &[String],
    report: &mut LoadReport,
) -> Vec<(usize, Expr)> {
    let mut parsed: HashMap<usize, Expr> = HashMap::new();
    for (i, s) in src {
        let mut missing = Vec::new();
        match meta::parse(&s, &mut |n| index.get(n).copied(), &mut missing) {
            Ok(e) => {
                if !missing.is_empty() {
                    report.metas_with_missing += 1;
                }
                parsed.insert(i, e);
            }
            Err(e) => {
                tracing::debug!(rule = %names[i], "meta rule not parsed: {e}");
                report.skip("meta expression postcore cannot parse");
            }
        }
    }
    // Depth-first topological order.
    let mut state: HashMap<usize, u8> = HashMap::new();
    let mut order = Vec::new();
    let mut keys: Vec<usize> = parsed.keys().copied().collect();
    keys.sort_unstable();
    for k in keys {
        visit(k, &parsed, &mut state, &mut order);
    }
    let mut out = Vec::new();
    for i in order {
        if state.get(&i) == Some(&3) {
            report.skip("meta rule in a dependency cycle");
            continue;
        }
        if let Some(e) = parsed.remove(&i) {
            out.push((i, e));
        }
    }
    out
}

/// 1 = in progress, 2 = done, 3 = part of a cycle.
fn visit(
    i: usize,
    parsed: &HashMap<usize, Expr>,
    state: &mut HashMap<usize, u8>,
    order: &mut Vec<usize>,
) {
    match state.get(&i) {
        Some(2) | Some(3) => return,
        Some(1) => {
            state.insert(i, 3);
            return;
        }
        _ => {}
    }
    let Some(e) = parsed.get(&i) else {
        return;
    };
    state.insert(i, 1);
    let mut deps = Vec::new();
    e.rules(&mut deps);
    let mut cyclic = false;
    for d in deps {
        if parsed.contains_key(&d) {
            visit(d, parsed, state, order);
            cyclic |= state.get(&d) == Some(&3);
        }
    }
    state.insert(
        i,
        if cyclic || state.get(&i) == Some(&3) {
            3
        } else {
            2
        },
    );
    order.push(i);
}

#[cfg(test)]
mod tests {
    use super::crlf_to_lf;

    #[test]
    fn crlf_becomes_lf_and_lone_crs_stay() {
        assert_eq!(crlf_to_lf(b"a\r\nb\r\r\nc\r"), b"a\nb\r\nc\r");
        assert_eq!(crlf_to_lf(b"\r\n\r\n"), b"\n\n");
        assert_eq!(crlf_to_lf(b"no line end"), b"no line end");
        assert_eq!(crlf_to_lf(b""), b"");
    }
}
