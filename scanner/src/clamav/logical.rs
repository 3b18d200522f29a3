//! Logical signatures (`.ldb`, ClamAV manual "Logical signatures"):
//! `Name;TargetDescriptionBlock;LogicalExpression;Subsig0;Subsig1;…`, the expression over
//! subsignature match counts (`&`, `|`, `=X`, `>X`, `<X`, `X,Y` for blocks), subsignatures
//! with modifiers (`::i` nocase, `::w` wide, `::a` ascii, `::f` fullword) and PCRE
//! subsignatures (`[offset:]Trigger/regex/[flags]`).

use super::hexsig::{Boundary, ByteSet, HexSig, Node};
use super::offset::{FLEVEL, Offset};

/// A comparison on a (sub)expression's match count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `=X`: exactly X matches.
    Eq,
    /// `>X`: more than X.
    Gt,
    /// `<X`: fewer than X.
    Lt,
}

/// A logical expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Subsignature `n`: true when it matched at least once.
    Sub(usize),
    /// All of these.
    And(Vec<Expr>),
    /// Any of these.
    Or(Vec<Expr>),
    /// A count condition on an expression: matches compared to `n`, and at least `distinct`
    /// different subsignatures matched (`A>X,Y`).
    Count(Box<Expr>, Cmp, u32, u32),
}

/// The value of an expression: truth, total matches, distinct subsignatures that matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value {
    /// Whether it holds.
    pub truth: bool,
    /// Matches counted.
    pub count: u32,
    /// Different subsignatures with a match.
    pub distinct: u32,
}

impl Expr {
    /// Parses a logical expression such as `((0|1)>3,2)&2`.
    pub fn parse(s: &str) -> Result<Expr, String> {
        let mut p = ExprParser {
            s: s.as_bytes(),
            i: 0,
        };
        let e = p.or()?;
        if p.i != p.s.len() {
            return Err(format!("unexpected {:?} in expression {s:?}", &s[p.i..]));
        }
        Ok(e)
    }

    /// The subsignature indexes it names.
    pub fn subs(&self, out: &mut Vec<usize>) {
        match self {
            Expr::Sub(n) => out.push(*n),
            Expr::And(v) | Expr::Or(v) => v.iter().for_each(|e| e.subs(out)),
            Expr::Count(e, ..) => e.subs(out),
        }
    }

    /// Evaluates it over per-subsignature match counts.
    pub fn eval(&self, counts: &[u32]) -> Value {
        match self {
            Expr::Sub(n) => {
                let c = counts.get(*n).copied().unwrap_or(0);
                Value {
                    truth: c > 0,
                    count: c,
                    distinct: u32::from(c > 0),
                }
            }
            Expr::And(v) | Expr::Or(v) => {
                let vals: Vec<Value> = v.iter().map(|e| e.eval(counts)).collect();
                let truth = if matches!(self, Expr::And(_)) {
                    vals.iter().all(|x| x.truth)
                } else {
                    vals.iter().any(|x| x.truth)
                };
                Value {
                    truth,
                    count: vals.iter().map(|x| x.count).sum(),
                    distinct: vals.iter().map(|x| x.distinct).sum(),
                }
            }
            Expr::Count(e, cmp, n, distinct) => {
                let v = e.eval(counts);
                let ok = match cmp {
                    Cmp::Eq => v.count == *n,
                    Cmp::Gt => v.count > *n,
                    Cmp::Lt => v.count < *n,
                } && v.distinct >= *distinct;
                Value {
                    truth: ok,
                    count: u32::from(ok),
                    distinct: u32::from(ok),
                }
            }
        }
    }
}

struct ExprParser<'a> {
    s: &'a [u8],
    i: usize,
}

impl ExprParser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn num(&mut self) -> Result<u32, String> {
        let start = self.i;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i])
            .ok()
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| format!("number expected at {start}"))
    }

    fn or(&mut self) -> Result<Expr, String> {
        self.list(b'|', Self::and, Expr::Or)
    }

    fn and(&mut self) -> Result<Expr, String> {
        self.list(b'&', Self::counted, Expr::And)
    }

    fn list(
        &mut self,
        op: u8,
        item: fn(&mut Self) -> Result<Expr, String>,
        make: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, String> {
        let mut v = vec![item(self)?];
        while self.peek() == Some(op) {
            self.i += 1;
            v.push(item(self)?);
        }
        Ok(if v.len() == 1 { v.remove(0) } else { make(v) })
    }

    fn counted(&mut self) -> Result<Expr, String> {
        let atom = if self.peek() == Some(b'(') {
            self.i += 1;
            let e = self.or()?;
            if self.peek() != Some(b')') {
                return Err("')' expected".into());
            }
            self.i += 1;
            e
        } else {
            Expr::Sub(self.num()? as usize)
        };
        let cmp = match self.peek() {
            Some(b'=') => Cmp::Eq,
            Some(b'>') => Cmp::Gt,
            Some(b'<') => Cmp::Lt,
            _ => return Ok(atom),
        };
        self.i += 1;
        let n = self.num()?;
        let distinct = if self.peek() == Some(b',') {
            self.i += 1;
            self.num()?
        } else {
            0
        };
        Ok(Expr::Count(Box::new(atom), cmp, n, distinct))
    }
}

/// A body subsignature with its modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubSig {
    /// Where the match must start.
    pub offset: Offset,
    /// The pattern after the modifiers are applied (nocase, wide/ascii).
    pub patterns: Vec<HexSig>,
    /// `::f`: the match must stand alone (non-alphanumeric or the file's edge on both sides).
    pub fullword: bool,
    /// `::w`: the fullword check looks two bytes back (UTF-16LE).
    pub wide: bool,
}

/// A PCRE subsignature: evaluated when its trigger expression holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcreSub {
    /// Start offset constraint.
    pub offset: Offset,
    /// The trigger over the other subsignatures.
    pub trigger: Expr,
    /// The expression, translated for Rust's `regex` (with its inline flags).
    pub regex: String,
}

/// One subsignature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sub {
    /// A body pattern.
    Body(SubSig),
    /// A regular expression.
    Pcre(PcreSub),
}

/// A logical signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalSig {
    /// Signature name.
    pub name: String,
    /// Target type (`Target:N`; 0 when absent).
    pub target: u8,
    /// `FileSize:x-y`.
    pub file_size: Option<(u64, u64)>,
    /// `Container:CL_TYPE_…`: only inside that kind of container.
    pub container: Option<String>,
    /// The expression.
    pub expr: Expr,
    /// Subsignatures in order.
    pub subs: Vec<Sub>,
}

fn range(v: &str) -> Result<(u64, u64), String> {
    let num = |t: &str| t.parse::<u64>().map_err(|_| format!("bad range {v:?}"));
    match v.split_once('-') {
        Some((a, b)) => Ok((num(a)?, num(b)?)),
        None => {
            let n = num(v)?;
            Ok((n, n))
        }
    }
}

/// Rewrites `sig` to match ASCII letters in either case.
fn nocase(sig: &HexSig) -> HexSig {
    let fold = |s: &ByteSet| {
        let mut t = *s;
        for b in (0..=255u8).filter(|&b| s.contains(b) && b.is_ascii_alphabetic()) {
            t.insert(b ^ 0x20);
        }
        t
    };
    let nodes = sig
        .nodes
        .iter()
        .map(|n| match n {
            Node::Set(s) => Node::Set(fold(s)),
            Node::Alt(a) => Node::Alt(a.iter().map(|v| v.iter().map(fold).collect()).collect()),
            other => other.clone(),
        })
        .collect();
    HexSig {
        leading: sig.leading,
        nodes,
    }
}

/// Splits `offset:rest` when the part before the first `:` is an offset.
fn split_offset(s: &str) -> Result<(Offset, &str), String> {
    if let Some((o, rest)) = s.split_once(':')
        && !o.is_empty()
        && !rest.starts_with(':')
        && (o == "*"
            || o.starts_with("EOF")
            || o.starts_with("EP")
            || o.starts_with('S')
            || o.starts_with("VI")
            || o.as_bytes()[0].is_ascii_digit())
        && !o.contains('/')
    {
        let off = Offset::parse(o)?.ok_or("offset into version information")?;
        return Ok((off, rest));
    }
    Ok((Offset::Any, s))
}

fn parse_body_sub(s: &str) -> Result<SubSig, String> {
    let (offset, rest) = split_offset(s)?;
    let (hex, mods) = match rest.split_once("::") {
        Some((h, m)) => (h, m),
        None => (rest, ""),
    };
    let base = HexSig::parse(hex)?;
    let (i, w, a, f) = (
        mods.contains('i'),
        mods.contains('w'),
        mods.contains('a'),
        mods.contains('f'),
    );
    if let Some(c) = mods.chars().find(|c| !"iwaf".contains(*c)) {
        return Err(format!("unknown subsignature modifier {c:?}"));
    }
    let base = if i { nocase(&base) } else { base };
    let mut patterns = Vec::new();
    if w {
        patterns.push(base.wide());
    }
    if !w || a {
        patterns.push(base);
    }
    Ok(SubSig {
        offset,
        patterns,
        fullword: f,
        wide: w && !a,
    })
}

/// Translates a PCRE subsignature `Trigger/regex/flags` (ClamAV manual, "PCRE
/// subsignatures"). `Err` for constructs Rust's `regex` lacks (look-around, back-references).
fn parse_pcre_sub(s: &str) -> Result<PcreSub, String> {
    let (offset, rest) = split_offset(s)?;
    let open = rest.find('/').ok_or("PCRE subsignature without '/'")?;
    let close = rest
        .rfind('/')
        .filter(|&c| c > open)
        .ok_or("unterminated PCRE")?;
    let trigger = Expr::parse(&rest[..open])?;
    let pattern = &rest[open + 1..close];
    let flags = &rest[close + 1..];
    if pattern.contains("(?=")
        || pattern.contains("(?!")
        || pattern.contains("(?<=")
        || pattern.contains("(?<!")
        || pattern
            .bytes()
            .zip(pattern.bytes().skip(1))
            .any(|(a, b)| a == b'\\' && b.is_ascii_digit() && b != b'0')
    {
        return Err("PCRE construct without a regex equivalent".into());
    }
    let mut inline = String::from("(?");
    for f in flags.chars() {
        match f {
            'i' | 's' | 'm' | 'x' | 'U' => inline.push(f),
            'g' | 'r' | 'e' | 'E' | 'A' => {}
            other => return Err(format!("unknown PCRE flag {other:?}")),
        }
    }
    inline.push_str("-u)");
    let anchored = if flags.contains('A') { "\\A" } else { "" };
    let regex = format!("{inline}{anchored}(?:{pattern})");
    regex::bytes::Regex::new(&regex).map_err(|e| format!("PCRE: {e}"))?;
    Ok(PcreSub {
        offset,
        trigger,
        regex,
    })
}

impl LogicalSig {
    /// Parses an `.ldb` line. `Ok(Err(reason))` for a well-formed signature this engine
    /// skips (FLEVEL, a target condition it does not evaluate, an untranslatable PCRE).
    pub fn parse(line: &str) -> Result<Result<LogicalSig, &'static str>, String> {
        let f: Vec<&str> = line.split(';').collect();
        if f.len() < 4 {
            return Err("logical signature needs name;target;expression;subsig".into());
        }
        let mut sig = LogicalSig {
            name: f[0].to_string(),
            target: 0,
            file_size: None,
            container: None,
            expr: Expr::parse(f[2])?,
            subs: Vec::new(),
        };
        for kv in f[1].split(',') {
            let (k, v) = kv
                .split_once(':')
                .ok_or_else(|| format!("bad target field {kv:?}"))?;
            match k {
                "Engine" => {
                    let (lo, hi) = range(v)?;
                    if u64::from(FLEVEL) < lo || u64::from(FLEVEL) > hi {
                        return Ok(Err("functionality level out of range"));
                    }
                }
                "Target" => sig.target = v.parse().map_err(|_| format!("bad target {v:?}"))?,
                "FileSize" => sig.file_size = Some(range(v)?),
                "Container" => sig.container = Some(v.to_string()),
                _ => return Ok(Err("target condition not evaluated")),
            }
        }
        for s in &f[3..] {
            let sub = if s.contains('/') {
                match parse_pcre_sub(s) {
                    Ok(p) => Sub::Pcre(p),
                    Err(e) if e.contains("without a regex") => {
                        return Ok(Err("PCRE construct without a regex equivalent"));
                    }
                    Err(e) => return Err(e),
                }
            } else {
                match parse_body_sub(s) {
                    Ok(b) => Sub::Body(b),
                    Err(e) if e.contains("version information") => {
                        return Ok(Err("offset into version information (VI)"));
                    }
                    Err(e) => return Err(format!("subsignature {s:?}: {e}")),
                }
            };
            sig.subs.push(sub);
        }
        let mut named = Vec::new();
        sig.expr.subs(&mut named);
        if named.iter().any(|&n| n >= sig.subs.len()) {
            return Err("expression names a missing subsignature".into());
        }
        Ok(Ok(sig))
    }
}

/// Whether the match `start..end` in `data` stands alone for `::f` (ClamAV's fullword:
/// non-alphanumeric or the edge of the data on both sides; two bytes back for wide text).
pub fn fullword_ok(data: &[u8], start: usize, end: usize, wide: bool) -> bool {
    let step = if wide { 2 } else { 1 };
    let before = start.checked_sub(step).map(|i| data[i]);
    let after = data.get(end).copied();
    let free = |b: Option<u8>| b.is_none_or(|b| !b.is_ascii_alphanumeric());
    free(before) && free(after)
}

/// Whether a boundary before `start` holds (the file start always does).
pub fn leading_ok(b: Option<Boundary>, data: &[u8], start: usize) -> bool {
    match b {
        None => true,
        Some(b) => start == 0 || b.left().contains(data[start - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_with_counts_and_blocks() {
        let e = Expr::parse("0&1=2").expect("parses");
        assert!(e.eval(&[1, 2]).truth && !e.eval(&[1, 3]).truth);
        let blk = Expr::parse("((0|1|2)>3,2)&3").expect("parses");
        assert!(blk.eval(&[3, 1, 0, 1]).truth);
        assert!(!blk.eval(&[4, 0, 0, 1]).truth, "one distinct subsig");
        let eq = Expr::parse("(0|1)=2,2").expect("parses");
        assert!(eq.eval(&[1, 1]).truth && !eq.eval(&[2, 0]).truth);
        let neg = Expr::parse("0&1=0").expect("parses");
        assert!(neg.eval(&[1, 0]).truth && !neg.eval(&[1, 1]).truth);
        assert!(Expr::parse("0&").is_err() && Expr::parse("(0|1").is_err());
    }

    #[test]
    fn logical_lines() {
        let l = LogicalSig::parse("S;Engine:81-255,Target:0;0&1;41424344::i;0/ab[0-9]+/i")
            .expect("valid")
            .expect("loaded");
        assert_eq!(l.subs.len(), 2);
        assert!(matches!(&l.subs[1], Sub::Pcre(p) if p.regex.starts_with("(?i-u)")));
        let named =
            LogicalSig::parse(r"S;Engine:81-255,Target:0;0&1;41424344;0/x(?<num>[0-9]{2})/g")
                .expect("valid");
        assert!(named.is_ok(), "named groups are not look-behind");
        let skipped = LogicalSig::parse("S;Engine:51-255,Target:1,EntryPoint:1;0;41424344");
        assert_eq!(skipped, Ok(Err("target condition not evaluated")));
        assert!(LogicalSig::parse("S;Target:0;0&2;41424344;45464748").is_err());
    }
}
