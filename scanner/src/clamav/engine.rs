//! The compiled antivirus database: body and logical subsignatures in one Hyperscan database
//! (prefilter mode: a candidate, never a verdict), each candidate confirmed exactly with
//! Rust's `regex` (offsets, boundaries, fullword, counts), and hash signatures in hash tables.

use super::hexsig::{Boundary, HexSig};
#[cfg(test)]
use super::logical::Expr;
use super::logical::{self, LogicalSig, Sub};
use super::signatures::{HashKind, HashSig, Offset, SignatureSet};
use hyperscan::prelude::*;
use hyperscan::{BlockMode, HsError};
use md5::{Digest, Md5};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

/// EICAR's standard test file (eicar.org): the built-in signature needs no database.
pub const EICAR: &[u8] = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// The built-in signature's name.
pub const EICAR_NAME: &str = "Eicar-Test-Signature";

/// Most matches counted per subsignature (counts in expressions are small numbers).
const MAX_COUNT: u32 = 256;
/// Most candidate positions tried for one pattern in one object.
const MAX_TRIES: usize = 10_000;

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

/// Names stored end to end (a million hash signatures cost their bytes, not a `String` each).
#[derive(Default)]
struct Names {
    text: String,
    ends: Vec<u32>,
}

impl Names {
    fn push(&mut self, n: &str) -> u32 {
        self.text.push_str(n);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize).unwrap_or("")
    }
}

/// Hash signatures of one digest length: exact size, or any size.
struct HashTable<const N: usize> {
    sized: HashMap<([u8; N], u64), u32>,
    any: HashMap<[u8; N], u32>,
}

impl<const N: usize> Default for HashTable<N> {
    fn default() -> Self {
        HashTable {
            sized: HashMap::new(),
            any: HashMap::new(),
        }
    }
}

impl<const N: usize> HashTable<N> {
    fn insert(&mut self, h: &HashSig, name: u32) {
        let Ok(d) = <[u8; N]>::try_from(h.digest.as_slice()) else {
            return;
        };
        match h.size {
            Some(s) => self.sized.insert((d, s), name),
            None => self.any.insert(d, name),
        };
    }

    fn find(&self, d: &[u8], size: u64) -> Option<u32> {
        let d = <[u8; N]>::try_from(d).ok()?;
        self.sized
            .get(&(d, size))
            .or_else(|| self.any.get(&d))
            .copied()
    }

    fn is_empty(&self) -> bool {
        self.sized.is_empty() && self.any.is_empty()
    }
}

#[derive(Default)]
struct Hashes {
    md5: HashTable<16>,
    sha1: HashTable<20>,
    sha256: HashTable<32>,
}

impl Hashes {
    fn insert(&mut self, h: &HashSig, name: u32) {
        match h.kind {
            HashKind::Md5 => self.md5.insert(h, name),
            HashKind::Sha1 => self.sha1.insert(h, name),
            HashKind::Sha256 => self.sha256.insert(h, name),
        }
    }

    /// The first entry naming this data.
    fn find(&self, data: &[u8]) -> Option<u32> {
        let size = data.len() as u64;
        if !self.md5.is_empty()
            && let Some(n) = self.md5.find(&Md5::digest(data), size)
        {
            return Some(n);
        }
        if !self.sha1.is_empty()
            && let Some(n) = self.sha1.find(&sha1::Sha1::digest(data), size)
        {
            return Some(n);
        }
        if !self.sha256.is_empty()
            && let Some(n) = self.sha256.find(&sha2::Sha256::digest(data), size)
        {
            return Some(n);
        }
        None
    }
}

/// A compiled database, shared by every scanning thread.
pub struct Engine {
    hs: Option<BlockDatabase>,
    scratch: Mutex<Vec<Scratch>>,
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
        };
        for b in std::iter::once(builtin).chain(set.body) {
            owners.push(Owner::Body(body.len() as u32));
            filters.push(HexSig::parse(&b.hex).ok().map(|h| filter_of(&h)));
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
        let mut hashes = Hashes::default();
        for h in &set.hashes {
            hashes.insert(h, names.push(&h.name));
        }
        let mut allow = Hashes::default();
        for h in &set.allow {
            allow.insert(h, names.push(&h.name));
        }
        let (hs, unfiltered) = compile_hyperscan(filters);
        let refused = unfiltered.len();
        Engine {
            hs,
            scratch: Mutex::new(Vec::new()),
            verifiers: (0..owners.len()).map(|_| OnceLock::new()).collect(),
            owners,
            texts,
            unfiltered,
            body,
            logical: set.logical,
            names,
            hashes,
            allow,
            refused,
        }
    }

    /// Scans one object (a decoded part, an archive member, the raw message) of the given
    /// kinds. The first signature that fires wins (ClamAV's default, without --allmatch).
    pub fn scan(&self, data: &[u8], targets: Targets) -> Option<Detection> {
        if self.allowed(data) {
            return None;
        }
        if let Some(n) = self.hashes.find(data) {
            return Some(self.detection(n));
        }
        self.scan_patterns(data, targets)
    }

    /// Whether `data` is on the allow list (`.fp`, `.sfp`).
    pub fn allowed(&self, data: &[u8]) -> bool {
        self.allow.find(data).is_some()
    }

    /// Body and logical signatures only: for a normalised form of an object, whose hashes
    /// mean nothing.
    pub fn scan_patterns(&self, data: &[u8], targets: Targets) -> Option<Detection> {
        let candidates = self.candidates(data);
        let mut logical = BTreeSet::new();
        for id in candidates {
            match self.owners[id as usize] {
                Owner::Body(b) => {
                    let (name, target, offset) = self.body[b as usize];
                    if targets.admits(target) && self.count(id, offset, false, false, data, 1) > 0 {
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
            .find(|&l| self.logical_matches(l, data, targets))
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
        let Some(db) = &self.hs else {
            return ids;
        };
        let scratch = self
            .scratch
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .or_else(|| db.alloc_scratch().ok());
        let Some(scratch) = scratch else {
            // No scratch space: confirm everything (correct, slow; logged by the caller's
            // scan time).
            ids.extend(0..self.owners.len() as u32);
            return ids;
        };
        let _ = db.scan(data, &scratch, |id, _, _, _| {
            ids.insert(id);
            Matching::Continue
        });
        if let Ok(mut pool) = self.scratch.lock() {
            pool.push(scratch);
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
        data: &[u8],
        limit: u32,
    ) -> u32 {
        let Some(v) = self.verifier(id) else {
            return 0;
        };
        let ok = |s: usize, e: usize| {
            logical::leading_ok(v.leading, data, s)
                && (!fullword || logical::fullword_ok(data, s, e, wide))
        };
        let mut n = 0;
        match offset {
            Offset::Any => {
                let mut pos = 0;
                for _ in 0..MAX_TRIES {
                    let Some(m) = v.regex.find_at(data, pos) else {
                        break;
                    };
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
            }
            _ => {
                let (first, shift) = match offset {
                    Offset::Start { at, shift } => (Some(at), shift),
                    Offset::End { back, shift } => ((data.len() as u64).checked_sub(back), shift),
                    Offset::Any => (None, 0),
                };
                let Some(first) = first else { return 0 };
                let last = first.saturating_add(shift).min(data.len() as u64);
                for s in (first..=last).take(MAX_TRIES) {
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
            }
        }
        n
    }

    fn logical_matches(&self, l: u32, data: &[u8], targets: Targets) -> bool {
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
                    counts[si] += self.count(id, b.offset, b.fullword, b.wide, data, MAX_COUNT);
                    id += 1;
                }
            }
        }
        for (si, s) in sig.subs.iter().enumerate() {
            if let Sub::Pcre(p) = s
                && p.trigger.eval(&counts).truth
            {
                counts[si] = pcre_count(&p.regex, p.offset, data);
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

    /// Bytes of the compiled Hyperscan database.
    pub fn hyperscan_bytes(&self) -> usize {
        self.hs.as_ref().and_then(|d| d.size().ok()).unwrap_or(0)
    }
}

fn pcre_count(expr: &str, offset: Offset, data: &[u8]) -> u32 {
    let Ok(re) = regex::bytes::Regex::new(expr) else {
        return 0;
    };
    re.find_iter(data)
        .filter(|m| offset.allows(m.start(), data.len()))
        .take(MAX_COUNT as usize)
        .count() as u32
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

/// What Hyperscan scans for on behalf of one pattern: its literal anchor, or the whole
/// pattern (in prefilter mode) when it has none.
fn filter_of(p: &HexSig) -> (String, bool) {
    match p.anchor() {
        Some(a) => (a, true),
        None => (p.regex(), false),
    }
}

/// Compiles the filter database. Returns it and the pattern ids it could not take.
fn compile_hyperscan(filters: Vec<Option<(String, bool)>>) -> (Option<BlockDatabase>, Vec<u32>) {
    let mut refused = Vec::new();
    let mut exprs: Vec<(u32, String, bool)> = Vec::with_capacity(filters.len());
    for (i, f) in filters.into_iter().enumerate() {
        match f {
            Some((e, literal)) => exprs.push((i as u32, e, literal)),
            None => refused.push(i as u32),
        }
    }
    let whole = CompileFlags::DOTALL | CompileFlags::SINGLEMATCH | CompileFlags::PREFILTER;
    for _ in 0..1000 {
        if exprs.is_empty() {
            return (None, refused);
        }
        let patterns = Patterns(
            exprs
                .iter()
                .map(|(id, e, literal)| Pattern {
                    expression: e.clone(),
                    flags: if *literal {
                        CompileFlags::SINGLEMATCH
                    } else {
                        whole
                    },
                    id: Some(*id as usize),
                    ext: Default::default(),
                    som: None,
                })
                .collect(),
        );
        match patterns.build::<BlockMode>() {
            Ok(db) => return (Some(db), refused),
            Err(hyperscan::Error::Hyperscan(HsError::CompileError(e))) => match e.expression() {
                Some(i) if i < exprs.len() => {
                    tracing::debug!(pattern = %exprs[i].1, "hyperscan refused a pattern: {}", e.message());
                    refused.push(exprs.remove(i).0);
                }
                _ => break,
            },
            Err(e) => {
                tracing::warn!("hyperscan compile failed: {e}");
                break;
            }
        }
    }
    refused.extend(exprs.iter().map(|(id, ..)| *id));
    refused.sort_unstable();
    (None, refused)
}

/// Whether expression `e` names only subsignatures that hold nothing (helper for tests).
#[cfg(test)]
fn subs_of(e: &Expr) -> Vec<usize> {
    let mut v = Vec::new();
    e.subs(&mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(files: &[(&str, &str)]) -> Engine {
        let mut set = SignatureSet::default();
        for (n, t) in files {
            set.add_file(n, t).expect("valid");
        }
        Engine::compile(set)
    }

    fn h(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
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
