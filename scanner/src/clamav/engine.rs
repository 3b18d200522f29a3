//! The compiled antivirus database: body and logical subsignatures found as candidates (never
//! a verdict) by their literal anchors — in the [`GramIndex`] when seven octets or longer, in
//! Hyperscan otherwise, with Hyperscan's prefilter mode for patterns without an anchor — each
//! candidate confirmed exactly with Rust's `regex` (offsets, boundaries, fullword, counts),
//! and hash signatures in hash tables.

use super::gram_index::{self, GramIndex};
use super::hashes::{Digests, Hashes, Names};
use super::hexsig::{Boundary, HexSig};
use super::literal_db;
#[cfg(test)]
use super::logical::Expr;
use super::logical::{self, LogicalSig, Sub};
use super::offset::Window;
use super::signatures::{Offset, SignatureSet};
use crate::scratch::ScratchPool;
use hyperscan::prelude::*;
use hyperscan::{BlockMode, HsError};

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

/// EICAR's standard test file (eicar.org): the built-in signature needs no database.
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The built-in signature's name.
pub const EICAR_NAME: &str = "Eicar-Test-Signature";

/// Most matches counted per subsignature (counts in expressions are small numbers).
const MAX_COUNT: u32 = 256;
/// Most candidate positions tried for one pattern in one object.
const MAX_TRIES: usize = 10_000;
/// Windows of allowed starts shorter than this are tried start by start with an anchored
/// match; longer ones by a forward search.
const ANCHORED_TRIES: u64 = 64;

/// Kinds of content an object is, for signature target types (ClamAV's numbering), and
/// the container it came out of (ClamAV's `CL_TYPE_…` name, for `Container:`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Targets {
    bits: u16,
    /// `CL_TYPE_ZIP`, `CL_TYPE_MAIL`, … of the enclosing archive or message.
    pub container: Option<&'static str>,
}

impl Targets {
    /// With target type `t` added.
    pub fn with(self, t: u8) -> Targets {
        Targets {
            bits: self.bits | (1 << t.min(15)),
            ..self
        }
    }

    /// Inside `container`.
    pub fn inside(self, container: Option<&'static str>) -> Targets {
        Targets { container, ..self }
    }

    /// Whether a signature for target `t` applies (0 applies to everything).
    pub fn admits(self, t: u8) -> bool {
        t == 0 || self.bits & (1 << t.min(15)) != 0
    }
}

/// A signature that fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    /// Signature name.
    pub name: String,
}

/// What the raw form of an object is to the antivirus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawScan {
    /// On the allow list (`.fp`, `.sfp`): nothing of it is scanned.
    Allowed,
    /// A signature fired.
    Infected(Detection),
    /// Neither.
    Clean,
}

/// Which signature a Hyperscan pattern id belongs to.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Body(u32),
    Logical(u32),
}

/// One exact matcher, compiled on first use.
struct Verifier {
    regex: regex::bytes::Regex,
    anchored: regex::bytes::Regex,
    leading: Option<Boundary>,
}

/// A compiled database, shared by every scanning thread.
pub struct Engine {
    /// Literal anchors of four octets and more, an index per stride.
    grams: Vec<GramIndex>,
    /// The other anchors and the patterns without one.
    hs: Vec<BlockDatabase>,
    scratch: ScratchPool,
    owners: Vec<Owner>,
    /// Pattern text per pattern id (hex signature), parsed again on first confirmation.
    texts: Vec<Box<str>>,
    verifiers: Vec<OnceLock<Option<Verifier>>>,
    /// Pattern ids Hyperscan refused: confirmed on every object instead.
    unfiltered: Vec<u32>,
    body: Vec<(u32, u8, Offset)>,
    logical: Vec<LogicalSig>,
    names: Names,
    hashes: Hashes,
    /// PE section hashes (`.mdb`/`.msb`).
    sections: Hashes,
    allow: Hashes,
    /// Signatures Hyperscan refused (counted in the load report).
    pub refused: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("patterns", &self.owners.len())
            .field("unfiltered", &self.unfiltered.len())
            .finish()
    }
}

fn build_regex(expr: &str) -> Option<regex::bytes::Regex> {
    regex::bytes::RegexBuilder::new(expr)
        .unicode(false)
        .dot_matches_new_line(true)
        .size_limit(1 << 24)
        .build()
        .ok()
}

impl Engine {
    /// Compiles `set` (plus the built-in EICAR signature). Patterns Hyperscan cannot take
    /// are confirmed by `regex` alone on every object (slower, never missed).
    pub fn compile(set: SignatureSet) -> Engine {
        Self::compile_cached(set, None)
    }

    /// As [`Engine::compile`], keeping compiled Hyperscan databases in `cache` (a directory):
    /// a database whose literals are unchanged since it was last built is read back instead
    /// of compiled, so a restart or a reload that changes one file costs little.
    pub fn compile_cached(set: SignatureSet, cache: Option<&Path>) -> Engine {
        let mut names = Names::default();
        let mut owners = Vec::new();
        let mut texts: Vec<Box<str>> = Vec::new();
        let mut filters = Vec::new();
        let mut body = Vec::new();
        let eicar: String = EICAR.iter().map(|b| format!("{b:02x}")).collect();
        let builtin = super::signatures::BodySig {
            name: EICAR_NAME.into(),
            target: 0,
            offset: Offset::Start { at: 0, shift: 0 },
            hex: eicar,
            anchor: Some((EICAR.to_vec(), false)),
        };
        let mut sigs: Vec<_> = std::iter::once(builtin).chain(set.body).collect();
        filters.extend(body_filters(&mut sigs));
        for b in sigs {
            owners.push(Owner::Body(body.len() as u32));
            texts.push(b.hex.into_boxed_str());
            body.push((names.push(&b.name), b.target, b.offset));
        }
        for (li, l) in set.logical.iter().enumerate() {
            for s in &l.subs {
                if let Sub::Body(b) = s {
                    for p in &b.patterns {
                        owners.push(Owner::Logical(li as u32));
                        filters.push(Some(filter_of(p)));
                        texts.push(encode_pattern(p).into_boxed_str());
                    }
                }
            }
        }
        let (mut hashes, mut sections, mut allow) = (set.hashes, set.sections, set.allow);
        // The hash tables are sorted while the filters are built.
        let (grams, hs, unfiltered) = std::thread::scope(|s| {
            s.spawn(|| {
                hashes.finish();
                sections.finish();
                allow.finish();
            });
            compile_filters(filters, cache)
        });
        let refused = unfiltered.len();
        Engine {
            grams,
            hs,
            scratch: ScratchPool::default(),
            verifiers: (0..owners.len()).map(|_| OnceLock::new()).collect(),
            owners,
            texts,
            unfiltered,
            body,
            logical: set.logical,
            names,
            hashes,
            sections,
            allow,
            refused,
        }
    }

    /// Scans one object (a decoded part, an archive member, the raw message) of the given
    /// kinds. The first signature that fires wins (ClamAV's default, without --allmatch).
    pub fn scan(&self, data: &[u8], targets: Targets) -> Option<Detection> {
        match self.scan_raw(data, targets) {
            RawScan::Infected(d) => Some(d),
            RawScan::Allowed | RawScan::Clean => None,
        }
    }

    /// As [`Engine::scan`], telling an object on the allow list from a clean one (its other
    /// forms are then not scanned either). Each digest is computed once for both lists.
    pub fn scan_raw(&self, data: &[u8], targets: Targets) -> RawScan {
        let digests = Digests::new(data);
        if self.allow.find_in(&digests).is_some() {
            return RawScan::Allowed;
        }
        if let Some(name) = self
            .hashes
            .find_in(&digests)
            .or_else(|| self.section_hash(data))
        {
            return RawScan::Infected(Detection {
                name: name.to_string(),
            });
        }
        match self.scan_patterns(data, targets) {
            Some(d) => RawScan::Infected(d),
            None => RawScan::Clean,
        }
    }

    /// The first `.mdb`/`.msb` signature one of a PE program's sections matches: the digest
    /// of the section's raw data as ClamAV places it (pointer rounded down, size rounded up
    /// to the file alignment and cut at the end of the file).
    fn section_hash(&self, data: &[u8]) -> Option<&str> {
        if self.sections.is_empty() || !data.starts_with(b"MZ") {
            return None;
        }
        let layout = super::exe::layout(data)?;
        layout.sections.iter().find_map(|&(raw, size)| {
            let start = usize::try_from(raw).ok()?;
            let end = start.checked_add(usize::try_from(size).ok()?)?;
            let section = data.get(start..end).filter(|s| !s.is_empty())?;
            self.sections.find_in(&Digests::new(section))
        })
    }

    /// Body and logical signatures only: for a normalised form of an object, whose hashes
    /// mean nothing.
    pub fn scan_patterns(&self, data: &[u8], targets: Targets) -> Option<Detection> {
        let candidates = self.candidates(data);
        let obj = Object::new(data);
        let mut logical = BTreeSet::new();
        for id in candidates {
            match self.owners[id as usize] {
                Owner::Body(b) => {
                    let (name, target, offset) = self.body[b as usize];
                    if targets.admits(target) && self.count(id, offset, false, false, &obj, 1) > 0 {
                        return Some(self.detection(name));
                    }
                }
                Owner::Logical(sig) => {
                    logical.insert(sig);
                }
            }
        }
        logical
            .into_iter()
            .find(|&l| self.logical_matches(l, &obj, targets))
            .map(|l| Detection {
                name: self.logical[l as usize].name.clone(),
            })
    }

    fn detection(&self, name: u32) -> Detection {
        Detection {
            name: self.names.get(name).to_string(),
        }
    }

    /// Pattern ids that may match `data`, in id order.
    fn candidates(&self, data: &[u8]) -> BTreeSet<u32> {
        let mut ids: BTreeSet<u32> = self.unfiltered.iter().copied().collect();
        for g in &self.grams {
            g.scan(data, &mut ids);
        }
        if self.hs.is_empty() {
            return ids;
        }
        let scanned = self.scratch.with(&self.hs, |scratch| {
            for db in &self.hs {
                let _ = db.scan(data, scratch, |id, _, _, _| {
                    ids.insert(id);
                    Matching::Continue
                });
            }
        });
        if scanned.is_none() {
            // No scratch space: confirm everything (correct, slow).
            ids.extend(0..self.owners.len() as u32);
        }
        ids
    }

    fn verifier(&self, id: u32) -> Option<&Verifier> {
        self.verifiers[id as usize]
            .get_or_init(|| {
                let (leading, expr) = decode_pattern(&self.texts[id as usize])?;
                Some(Verifier {
                    regex: build_regex(&expr)?,
                    anchored: build_regex(&format!("\\A(?:{expr})"))?,
                    leading,
                })
            })
            .as_ref()
    }

    /// Counts (up to `limit`) the places where pattern `id` matches `data` within `offset`.
    fn count(
        &self,
        id: u32,
        offset: Offset,
        fullword: bool,
        wide: bool,
        obj: &Object<'_>,
        limit: u32,
    ) -> u32 {
        let data = obj.data;
        let Some(v) = self.verifier(id) else {
            return 0;
        };
        let ok = |s: usize, e: usize| {
            logical::leading_ok(v.leading, data, s)
                && (!fullword || logical::fullword_ok(data, s, e, wide))
        };
        let mut n = 0;
        let window = offset.window(obj.data.len(), obj.layout_for(offset));
        let data = obj.data;
        // A short window is tried start by start with the anchored form; a long one (a whole
        // section, or the whole object) by searching forward from its first start.
        let (first, last) = match window {
            Window::Nowhere => return 0,
            Window::Between(f, l) if l - f < ANCHORED_TRIES => {
                for s in f..=l {
                    let s = s as usize;
                    if let Some(m) = v.anchored.find(&data[s..])
                        && ok(s, s + m.end())
                    {
                        n += 1;
                        if n >= limit {
                            break;
                        }
                    }
                }
                return n;
            }
            Window::Between(f, l) => (f as usize, l as usize),
            Window::Anywhere => (0, data.len()),
        };
        let mut pos = first;
        for _ in 0..MAX_TRIES {
            let Some(m) = v.regex.find_at(data, pos) else {
                break;
            };
            if m.start() > last {
                break;
            }
            if ok(m.start(), m.end()) {
                n += 1;
                if n >= limit {
                    break;
                }
            }
            pos = m.start() + 1;
            if pos > data.len() {
                break;
            }
        }
        n
    }

    fn logical_matches(&self, l: u32, obj: &Object<'_>, targets: Targets) -> bool {
        let data = obj.data;
        let sig = &self.logical[l as usize];
        if !targets.admits(sig.target) {
            return false;
        }
        if let Some(c) = &sig.container
            && targets.container != Some(c.as_str())
        {
            return false;
        }
        if let Some((lo, hi)) = sig.file_size
            && !(lo..=hi).contains(&(data.len() as u64))
        {
            return false;
        }
        let first_id = self
            .owners
            .iter()
            .position(|o| matches!(o, Owner::Logical(sig) if *sig == l))
            .unwrap_or(0) as u32;
        let mut counts = vec![0u32; sig.subs.len()];
        let mut id = first_id;
        for (si, s) in sig.subs.iter().enumerate() {
            if let Sub::Body(b) = s {
                for _ in &b.patterns {
                    counts[si] += self.count(id, b.offset, b.fullword, b.wide, obj, MAX_COUNT);
                    id += 1;
                }
            }
        }
        for (si, s) in sig.subs.iter().enumerate() {
            if let Sub::Pcre(p) = s
                && p.trigger.eval(&counts).truth
            {
                counts[si] = pcre_count(&p.regex, p.offset, obj);
            }
        }
        sig.expr.eval(&counts).truth
    }

    /// Number of patterns in the Hyperscan database and confirmed without it.
    pub fn pattern_counts(&self) -> (usize, usize) {
        (
            self.owners.len() - self.unfiltered.len(),
            self.unfiltered.len(),
        )
    }

    /// Bytes of the compiled Hyperscan databases and the literal index.
    pub fn hyperscan_bytes(&self) -> usize {
        self.hs.iter().filter_map(|d| d.size().ok()).sum::<usize>()
            + self.grams.iter().map(GramIndex::bytes).sum::<usize>()
    }
}

fn pcre_count(expr: &str, offset: Offset, obj: &Object<'_>) -> u32 {
    let Ok(re) = regex::bytes::Regex::new(expr) else {
        return 0;
    };
    let exe = obj.layout_for(offset);
    re.find_iter(obj.data)
        .filter(|m| offset.allows(m.start(), obj.data.len(), exe))
        .take(MAX_COUNT as usize)
        .count() as u32
}

/// An object being scanned, with its executable layout worked out the first time an offset
/// needs it (`EP+n`, `Sx+n`, …).
struct Object<'a> {
    data: &'a [u8],
    layout: std::cell::OnceCell<Option<super::exe::Layout>>,
}

impl<'a> Object<'a> {
    fn new(data: &'a [u8]) -> Self {
        Object {
            data,
            layout: std::cell::OnceCell::new(),
        }
    }

    /// The layout when `offset` needs one (and the object is an executable).
    fn layout_for(&self, offset: Offset) -> Option<&super::exe::Layout> {
        if !offset.needs_layout() {
            return None;
        }
        self.layout
            .get_or_init(|| super::exe::layout(self.data))
            .as_ref()
    }
}

/// A logical subsignature's pattern, kept as text: `~`, a leading-boundary letter (`-` for
/// none) and the regex (hex signatures never start with `~`).
fn encode_pattern(p: &HexSig) -> String {
    let lead = match p.leading {
        None => '-',
        Some(Boundary::Word) => 'B',
        Some(Boundary::Line) => 'L',
        Some(Boundary::NonAlnum) => 'W',
    };
    format!("~{lead}{}", p.regex())
}

/// Parses a stored pattern text: a hex signature, or an encoded subsignature pattern.
fn decode_pattern(text: &str) -> Option<(Option<Boundary>, String)> {
    let Some(encoded) = text.strip_prefix('~') else {
        let sig = HexSig::parse(text).ok()?;
        return Some((sig.leading, sig.regex()));
    };
    let lead = match encoded.as_bytes().first()? {
        b'B' => Some(Boundary::Word),
        b'L' => Some(Boundary::Line),
        b'W' => Some(Boundary::NonAlnum),
        _ => None,
    };
    Some((lead, encoded[1..].to_string()))
}

/// What Hyperscan scans for on behalf of one pattern.
pub enum Filter {
    /// Its literal anchor (bytes, caseless).
    Literal(Vec<u8>, bool),
    /// The whole pattern, in prefilter mode (it has no anchor).
    Whole(String),
}

/// The filter of each body signature: its anchor from the load (taken out of it), or else
/// its whole pattern (parsed again: a parsed pattern is too large to keep from the load),
/// on every core.
fn body_filters(sigs: &mut [super::signatures::BodySig]) -> Vec<Option<Filter>> {
    let per = sigs.len().div_ceil(crate::parallel::cores()).max(1);
    let chunks: Vec<_> = sigs.chunks_mut(per).collect();
    crate::parallel::map(chunks, |c| {
        c.iter_mut()
            .map(|b| match b.anchor.take() {
                Some((bytes, caseless)) => Some(Filter::Literal(bytes, caseless)),
                None => HexSig::parse(&b.hex).ok().map(|h| filter_of(&h)),
            })
            .collect::<Vec<_>>()
    })
    .into_iter()
    .flatten()
    .collect()
}

fn filter_of(p: &HexSig) -> Filter {
    match p.anchor() {
        Some((bytes, caseless)) => Filter::Literal(bytes, caseless),
        None => Filter::Whole(p.regex()),
    }
}

/// The literal index's shortest stride: literals too short for it (under seven octets) go
/// to Hyperscan, whose literal compiler is quick for a few thousand and whose scan of them
/// is far faster than an index looking at every position.
const GRAM_STRIDE_MIN: usize = 4;

/// Literals of seven to ten octets left to Hyperscan rather than indexed at stride 4, when
/// this few: the other literals are then indexed at stride 8.
const MID_TO_HYPERSCAN: usize = 2_000;

/// The stride of the literal index for `lits` (all long enough for [`GRAM_STRIDE_MIN`]): 8 (an
/// eighth of the positions looked at) when every literal allows it, else 4 for all of them
/// (one pass at 4 costs less than one at 8 plus one at 4). A few literals too short for 8
/// are moved to `to_hyperscan` instead.
fn gram_stride(lits: &mut Vec<literal_db::Lit>, to_hyperscan: &mut Vec<literal_db::Lit>) -> usize {
    let mid = lits
        .iter()
        .filter(|l| !GramIndex::takes(l.bytes.len(), 8))
        .count();
    if mid == 0 {
        return 8;
    }
    if mid > MID_TO_HYPERSCAN {
        return GRAM_STRIDE_MIN;
    }
    let (long, short): (Vec<_>, Vec<_>) = std::mem::take(lits)
        .into_iter()
        .partition(|l| GramIndex::takes(l.bytes.len(), 8));
    *lits = long;
    to_hyperscan.extend(short);
    8
}

/// The literal index for `lits` (an index per [`gram_index::MAX_LITERALS`]).
fn build_grams(lits: &[literal_db::Lit], stride: usize) -> Vec<GramIndex> {
    let refs: Vec<gram_index::Literal<'_>> = lits
        .iter()
        .map(|l| gram_index::Literal {
            bytes: &l.bytes,
            caseless: l.caseless,
            id: l.id,
        })
        .collect();
    refs.chunks(gram_index::MAX_LITERALS)
        .map(|c| GramIndex::build(c, stride))
        .filter(|g| !g.is_empty())
        .collect()
}

/// Literals per Hyperscan database: compile memory grows faster than the set, so a large
/// database is built as several (each one more pass over the data when scanning). Measured
/// on the anchors' `large` set (200,000 literals, `postcore scan --threads 2`): 25,000 per
/// database scanned 3,500-3,800 messages/s with a 309 MiB peak while compiling; 50,000
/// 4,800-5,200 with 395 MiB; 100,000 4,700-6,600 with 619 MiB. Resident after the compile,
/// about 195 MiB for all three.
const LITERALS_PER_DB: usize = 50_000;

/// A cache key for one set of literals: SHA-256 over each literal's id, case flag and bytes,
/// and the Hyperscan version (a database from another version is compiled again).
fn literal_key(lits: &[literal_db::Lit]) -> String {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(hyperscan::version_str().to_bytes());
    for l in lits {
        h.update(l.id.to_le_bytes());
        h.update([u8::from(l.caseless)]);
        h.update((l.bytes.len() as u32).to_le_bytes());
        h.update(&l.bytes);
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// [`compile_literals`] through the cache directory.
fn compile_literals_cached(
    lits: Vec<literal_db::Lit>,
    cache: Option<&Path>,
) -> (Option<BlockDatabase>, Vec<u32>) {
    let key = literal_key(&lits);
    crate::hs_cache::load_or_build(cache, &key, || compile_literals(lits))
}

/// Compiles one set of literals; drops (and returns) any Hyperscan refuses.
fn compile_literals(mut lits: Vec<literal_db::Lit>) -> (Option<BlockDatabase>, Vec<u32>) {
    let mut refused = Vec::new();
    while !lits.is_empty() {
        match literal_db::compile(&lits) {
            Ok(db) => return (Some(db), refused),
            Err(e) => match e.index {
                Some(i) if i < lits.len() => {
                    tracing::debug!("hyperscan refused a literal: {}", e.message);
                    refused.push(lits.remove(i).id);
                }
                _ => {
                    tracing::warn!("hyperscan literal compile failed: {}", e.message);
                    refused.extend(lits.iter().map(|l| l.id));
                    return (None, refused);
                }
            },
        }
    }
    (None, refused)
}

/// Builds the filters: anchors of four octets and more into the literal index (linear time);
/// shorter anchors, and those whose every window is common in files (runs of NULs), with
/// Hyperscan's literal compiler; the patterns without an anchor as Hyperscan prefilter
/// expressions. Returns them and the pattern ids none could take (those are confirmed on
/// every object).
fn compile_filters(
    filters: Vec<Option<Filter>>,
    cache: Option<&Path>,
) -> (Vec<GramIndex>, Vec<BlockDatabase>, Vec<u32>) {
    let mut refused = Vec::new();
    let mut lits = Vec::new();
    let mut exprs: Vec<(u32, String)> = Vec::new();
    for (i, f) in filters.into_iter().enumerate() {
        match f {
            Some(Filter::Literal(bytes, caseless)) => lits.push(literal_db::Lit {
                bytes,
                caseless,
                id: i as u32,
            }),
            Some(Filter::Whole(e)) => exprs.push((i as u32, e)),
            None => refused.push(i as u32),
        }
    }
    let (mut indexed, mut lits): (Vec<_>, Vec<_>) = lits.into_iter().partition(|l| {
        GramIndex::takes(l.bytes.len(), GRAM_STRIDE_MIN)
            && gram_index::best_window(&l.bytes, l.caseless)
                .is_some_and(|(_, s)| s < gram_index::HOT)
    });
    let stride = gram_stride(&mut indexed, &mut lits);
    let grams = build_grams(&indexed, stride);
    drop(indexed);
    // Hyperscan's literal compile is slow: chunks compiled side by side, a core each (each
    // chunk is one more pass over the data when scanning, a small price), never all at once
    // (for memory).
    let mut chunks: Vec<Vec<literal_db::Lit>> = Vec::new();
    while !lits.is_empty() {
        let rest = lits.split_off(lits.len().min(LITERALS_PER_DB));
        chunks.push(std::mem::replace(&mut lits, rest));
    }
    let results = crate::parallel::map(chunks, |c| compile_literals_cached(c, cache));
    let mut dbs = Vec::new();
    for (db, r) in results {
        dbs.extend(db);
        refused.extend(r);
    }
    let flags = CompileFlags::DOTALL | CompileFlags::SINGLEMATCH | CompileFlags::PREFILTER;
    while !exprs.is_empty() {
        let patterns = Patterns(
            exprs
                .iter()
                .map(|(id, e)| Pattern {
                    expression: e.clone(),
                    flags,
                    id: Some(*id as usize),
                    ext: Default::default(),
                    som: None,
                })
                .collect(),
        );
        match patterns.build::<BlockMode>() {
            Ok(db) => {
                dbs.push(db);
                break;
            }
            Err(hyperscan::Error::Hyperscan(HsError::CompileError(e))) => match e.expression() {
                Some(i) if i < exprs.len() => {
                    tracing::debug!(pattern = %exprs[i].1, "hyperscan refused a pattern: {}", e.message());
                    refused.push(exprs.remove(i).0);
                }
                _ => {
                    refused.extend(exprs.iter().map(|(id, _)| *id));
                    break;
                }
            },
            Err(e) => {
                tracing::warn!("hyperscan compile failed: {e}");
                refused.extend(exprs.iter().map(|(id, _)| *id));
                break;
            }
        }
    }
    refused.sort_unstable();
    (grams, dbs, refused)
}

/// Whether expression `e` names only subsignatures that hold nothing (helper for tests).
#[cfg(test)]
fn subs_of(e: &Expr) -> Vec<usize> {
    let mut v = Vec::new();
    e.subs(&mut v);
    v
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use md5::{Digest, Md5};

    /// An engine compiled from signature files given as (name, text) (test helper, also used
    /// by the filter's tests).
    pub(crate) fn engine(files: &[(&str, &str)]) -> Engine {
        let mut set = SignatureSet::default();
        for (n, t) in files {
            set.add_file(n, t).expect("valid");
        }
        Engine::compile(set)
    }

    /// `s` in hex, as signatures write it.
    pub(crate) fn h(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn anchors_of_every_length_are_found_at_every_alignment() {
        // 4-6 octets: Hyperscan. 7-10: Hyperscan when few, else all in the stride-4 index
        // (the filler makes them many); 11 and more: the stride-8 index when nothing shorter
        // is indexed. And a caseless logical subsignature.
        let words = [
            "WXYZ",
            "QRSTUV",
            "KLMNOPQ",
            "ABCDEFGHIJ",
            "abcdefghijk",
            "0123456789-ABCDEF",
        ];
        for filler in [0, MID_TO_HYPERSCAN + 1] {
            let mut ndb: String = words
                .iter()
                .map(|w| format!("T.Len{}:0:*:{}\n", w.len(), h(w)))
                .collect();
            for i in 0..filler {
                ndb.push_str(&format!("T.Filler{i}:0:*:{}\n", h(&format!("~f{i:06}~"))));
            }
            let ldb = format!("T.Caseless;Target:0;0;{}::i", h("mixed-case-words"));
            let e = engine(&[("t.ndb", &ndb), ("t.ldb", &ldb)]);
            assert_eq!(e.grams.len(), 1, "one literal index");
            // EICAR, the two long words and the caseless one; then the filler and two more.
            let (stride, indexed) = if filler == 0 { (8, 4) } else { (4, filler + 6) };
            assert_eq!((e.grams[0].stride(), e.grams[0].len()), (stride, indexed));
            for w in words {
                for pad in 0..17 {
                    let mut data = vec![b'.'; pad];
                    data.extend_from_slice(w.as_bytes());
                    data.extend(std::iter::repeat_n(b'.', 17 - pad));
                    let name = format!("T.Len{}", w.len());
                    let got = e.scan(&data, Targets::default()).map(|d| d.name);
                    assert_eq!(got, Some(name), "{w} at {pad}, filler {filler}");
                    let last = data.len() - (17 - pad) - 1;
                    data[last] = b'#';
                    assert_eq!(
                        e.scan(&data, Targets::default()),
                        None,
                        "{w} changed at {pad}"
                    );
                }
            }
            for pad in 0..17 {
                let mut data = vec![b' '; pad];
                data.extend_from_slice(b"MiXeD-CaSe-WoRdS and more");
                assert_eq!(
                    e.scan(&data, Targets::default()).map(|d| d.name),
                    Some("T.Caseless".into()),
                    "at {pad}"
                );
            }
            let mut data = b"..~f001234~..".to_vec();
            if filler > 0 {
                assert_eq!(
                    e.scan(&data, Targets::default()).map(|d| d.name),
                    Some("T.Filler1234".into())
                );
            }
            data[5] = b'9';
            assert_eq!(e.scan(&data, Targets::default()), None);
        }
    }

    #[test]
    fn compiled_databases_are_cached_and_read_back() {
        let dir = std::env::temp_dir().join(format!("postcore-hs-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // Six octets: under the literal index's shortest, so Hyperscan compiles it.
        let sigs = format!("T.Cached:0:*:{}", h("CACHED"));
        let load = || {
            let mut set = SignatureSet::default();
            set.add_file("t.ndb", &sigs).expect("valid");
            Engine::compile_cached(set, Some(&dir))
        };
        let first = load();
        let files = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(files, 1, "one literal database written");
        let second = load();
        for e in [&first, &second] {
            assert_eq!(
                e.scan(b"xx CACHED xx", Targets::default()).map(|d| d.name),
                Some("T.Cached".into())
            );
        }
        std::fs::write(
            std::fs::read_dir(&dir)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path(),
            b"junk",
        )
        .unwrap();
        assert!(
            load().scan(b"CACHED", Targets::default()).is_some(),
            "a broken cache file is compiled again"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn builtin_eicar() {
        let e = engine(&[]);
        let mut file = EICAR.to_vec();
        file.extend_from_slice(b"\r\n");
        assert_eq!(
            e.scan(&file, Targets::default()).map(|d| d.name),
            Some(EICAR_NAME.into())
        );
        assert_eq!(e.scan(b"hello", Targets::default()), None);
    }

    #[test]
    fn body_hash_and_allow_list() {
        let md5: String = Md5::digest(b"evil bytes")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let e = engine(&[
            (
                "t.ndb",
                &format!(
                    "T.Body:0:*:{}{{2-4}}{}\nT.Off:0:10:{}",
                    h("HEAD"),
                    h("TAIL"),
                    h("ANCHOR")
                ),
            ),
            ("t.hdb", &format!("{md5}:10:T.Hash")),
        ]);
        let hit = |d: &[u8]| e.scan(d, Targets::default()).map(|x| x.name);
        assert_eq!(hit(b"xxHEAD..TAILxx"), Some("T.Body".into()));
        assert_eq!(hit(b"xxHEAD.....TAILxx"), None);
        assert_eq!(hit(b"evil bytes"), Some("T.Hash".into()));
        assert_eq!(hit(b"0123456789ANCHOR"), Some("T.Off".into()));
        assert_eq!(hit(b"012345678ANCHOR"), None);
        let allowed = engine(&[
            ("t.ndb", &format!("T.Body:0:*:{}", h("HEADTAIL"))),
            (
                "t.fp",
                &format!(
                    "{}:8:ok",
                    Md5::digest(b"HEADTAIL")
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                ),
            ),
        ]);
        assert_eq!(allowed.scan(b"HEADTAIL", Targets::default()), None);
        assert!(allowed.scan(b"HEADTAIL!", Targets::default()).is_some());
    }

    /// Offsets into an executable's structure: the test PE has its entry point at file
    /// offset 0x210 (in section 0, raw 0x200..0x300) and section 1 at 0x300..0x400.
    #[test]
    fn executable_offsets() {
        let mut pe = super::super::exe::tests::small_pe();
        pe[0x210..0x214].copy_from_slice(b"EPEP");
        pe[0x308..0x30c].copy_from_slice(b"S1S1");
        pe[0x3f0..0x3f4].copy_from_slice(b"LAST");
        let (ep, s1, last) = (h("EPEP"), h("S1S1"), h("LAST"));
        let cases = [
            ("t.ndb", format!("T.Ep:1:EP+0:{ep}"), true),
            ("t.ndb", format!("T.EpBack:1:EP-16:{ep}"), false),
            ("t.ndb", format!("T.EpBackFloat:1:EP-16,16:{ep}"), true),
            ("t.ndb", format!("T.Wrong:1:EP+1:{ep}"), false),
            ("t.ndb", format!("T.S1:1:S1+8:{s1}"), true),
            ("t.ndb", format!("T.S0:1:S0+8:{s1}"), false),
            ("t.ndb", format!("T.Within:1:SE1:{last}"), true),
            ("t.ndb", format!("T.NotWithin:1:SE0:{last}"), false),
            ("t.ndb", format!("T.Last:1:SL+240:{last}"), true),
            ("t.ndb", format!("T.Float:1:S0+0,20:{ep}"), true),
            ("t.ndb", format!("T.NoSection:1:S7+0:{ep}"), false),
            (
                "t.ldb",
                format!("L.Ep;Engine:51-255,Target:1;0&1;EP+0:{ep};SE1:{s1}"),
                true,
            ),
            (
                "t.ldb",
                format!("L.Miss;Engine:51-255,Target:1;0&1;EP+0:{ep};SE0:{s1}"),
                false,
            ),
        ];
        let targets = Targets::default().with(1);
        let mut plain = pe.clone();
        plain[..2].copy_from_slice(b"ZZ");
        for (file, line, hit) in cases {
            let e = engine(&[(file, &line)]);
            assert_eq!(e.scan(&pe, targets).is_some(), hit, "{line}");
            // The same octets in a file that is no executable: no structure, no match.
            assert!(
                e.scan(&plain, targets).is_none(),
                "{line} on a non-executable"
            );
        }
    }

    /// `.mdb`/`.msb`: clam.exe's one section, as ClamAV places it (raw pointer 1 rounded
    /// down to 0, 512 octets), by MD5 and by SHA-256 (checked with clamscan when written);
    /// the unrounded placement and another size are no match, nor is a file that is no PE.
    #[test]
    fn pe_section_hashes() {
        use md5::Digest as _;
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let hex = |d: &[u8]| d.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let md5 = hex(&Md5::digest(&exe[..512]));
        let sha = hex(&sha2::Sha256::digest(&exe[..512]));
        let unrounded = hex(&Md5::digest(&exe[1..513]));
        let cases = [
            ("t.mdb", format!("512:{md5}:Sec.Md5"), true),
            ("t.msb", format!("512:{sha}:Sec.Sha256:73"), true),
            ("t.mdb", format!("*:{md5}:Sec.Any:73"), true),
            ("t.mdb", format!("513:{md5}:Sec.Size"), false),
            ("t.mdb", format!("512:{unrounded}:Sec.Unrounded"), false),
        ];
        for (file, line, hit) in cases {
            let e = engine(&[(file, &line)]);
            let got = e.scan(&exe, Targets::default().with(1)).map(|d| d.name);
            assert_eq!(got.is_some(), hit, "{line}: {got:?}");
            let mut not_pe = exe.clone();
            not_pe[..2].copy_from_slice(b"ZZ");
            assert!(e.scan(&not_pe, Targets::default()).is_none(), "{line}");
        }
    }

    #[test]
    fn logical_with_counts_and_modifiers() {
        let e = engine(&[(
            "t.ldb",
            &format!(
                "L.Count;Engine:51-255,Target:0;0&1=2;{};{}\nL.Mods;Engine:81-255,Target:0;0&1;{}::i;{}::wf",
                h("MXL-HEAD"),
                h("ITEM"),
                h("NOCASE"),
                h("wide")
            ),
        )]);
        let hit = |d: &[u8]| e.scan(d, Targets::default()).map(|x| x.name);
        assert_eq!(hit(b"MXL-HEAD ITEM ITEM"), Some("L.Count".into()));
        assert_eq!(hit(b"MXL-HEAD ITEM ITEM ITEM"), None);
        assert_eq!(hit(b"nOcAsE \0w\0i\0d\0e\0 \0"), Some("L.Mods".into()));
        assert_eq!(hit(b"nOcAsE x\0w\0i\0d\0e\0 \0"), None, "fullword");
        assert!(subs_of(&Expr::parse("0&1").expect("parses")).len() == 2);
    }
}
