//! ClamAV's hexadecimal body-signature language (ClamAV manual, "Body-based Signature Content
//! Format"), parsed into a small syntax tree and rendered as a byte regular expression.
//!
//! The same rendering serves two engines: Hyperscan scans for it (in prefilter mode, so
//! constructs it approximates only widen the net) and Rust's `regex` confirms each candidate
//! exactly. A leading boundary (`(B)`, `(L)`, `(W)` before the first byte) is zero-width: it
//! is kept out of the expression and checked against the byte before the match.

use std::fmt::Write as _;

/// Longest literal anchor handed to Hyperscan.
const ANCHOR_MAX: usize = 12;

/// A set of byte values (a 256-bit map).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ByteSet([u64; 4]);

impl ByteSet {
    /// The set holding only `b`.
    pub fn one(b: u8) -> ByteSet {
        let mut s = ByteSet::default();
        s.insert(b);
        s
    }

    /// Every byte value.
    pub fn all() -> ByteSet {
        ByteSet([u64::MAX; 4])
    }

    /// The bytes `b` for which `f(b)` holds.
    pub fn from_fn(f: impl Fn(u8) -> bool) -> ByteSet {
        let mut s = ByteSet::default();
        (0..=255u8).filter(|&b| f(b)).for_each(|b| s.insert(b));
        s
    }

    /// Adds `b`.
    pub fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    /// Whether `b` is in the set.
    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    /// The bytes not in the set.
    pub fn complement(&self) -> ByteSet {
        ByteSet(self.0.map(|w| !w))
    }

    /// The smallest byte in the set, if any.
    pub fn first(&self) -> Option<u8> {
        self.0
            .iter()
            .enumerate()
            .find(|(_, w)| **w != 0)
            .map(|(i, w)| (i as u32 * 64 + w.trailing_zeros()) as u8)
    }

    /// Whether the set is exactly one ASCII letter in both cases.
    pub fn is_case_pair(&self) -> bool {
        self.len() == 2
            && self
                .first()
                .is_some_and(|b| b.is_ascii_uppercase() && self.contains(b ^ 0x20))
    }

    /// Number of bytes in the set.
    pub fn len(&self) -> u32 {
        self.0.iter().map(|w| w.count_ones()).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The set as a regex atom: `\xNN` for one byte, `.` for all, else a class of ranges.
    fn render(&self, out: &mut String) {
        match self.len() {
            256 => out.push('.'),
            1 => {
                let b = self.first().unwrap_or(0);
                let _ = write!(out, "\\x{b:02x}");
            }
            _ => {
                out.push('[');
                let mut b = 0u16;
                while b < 256 {
                    if !self.contains(b as u8) {
                        b += 1;
                        continue;
                    }
                    let start = b;
                    while b + 1 < 256 && self.contains((b + 1) as u8) {
                        b += 1;
                    }
                    let _ = write!(out, "\\x{start:02x}");
                    if b > start {
                        let _ = write!(out, "-\\x{b:02x}");
                    }
                    b += 1;
                }
                out.push(']');
            }
        }
    }
}

/// ClamAV's boundary markers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// `(B)`: a word boundary (a delimiter byte, or the start or end of the file).
    Word,
    /// `(L)`: a line boundary (CR, LF, CRLF, or the start or end of the file).
    Line,
    /// `(W)`: a non-alphanumeric byte (or the start or end of the file).
    NonAlnum,
}

impl Boundary {
    /// Bytes that satisfy the marker before a pattern (ClamAV's left boundary set).
    pub fn left(self) -> ByteSet {
        match self {
            Boundary::Word => ByteSet::from_fn(|b| b" -./<@_".contains(&b)),
            Boundary::Line => ByteSet::from_fn(|b| b == b'\n' || b == b'\r'),
            Boundary::NonAlnum => ByteSet::from_fn(|b| !b.is_ascii_alphanumeric()),
        }
    }

    /// Bytes that satisfy the marker after a pattern (ClamAV's right boundary set).
    pub fn right(self) -> ByteSet {
        match self {
            Boundary::Word => ByteSet::from_fn(|b| b" \"'-/=>_\r\n".contains(&b)),
            Boundary::Line => ByteSet::from_fn(|b| b == b'\n' || b == b'\r'),
            Boundary::NonAlnum => ByteSet::from_fn(|b| !b.is_ascii_alphanumeric()),
        }
    }
}

/// One element of a body signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// One byte from a set: a literal byte, `??`, a nibble (`a?`, `?a`), or a one-byte
    /// alternation `(aa|bb)` / `!(aa|bb)`.
    Set(ByteSet),
    /// Any run of `min..=max` bytes (`*`, `{n}`, `{-n}`, `{n-}`, `{n-m}`, `[n-m]`).
    Gap {
        /// Fewest bytes.
        min: u32,
        /// Most bytes (`None`: no limit).
        max: Option<u32>,
    },
    /// `(seq|seq|…)`: one of several byte sequences (each of bytes, nibbles and `??`).
    Alt(Vec<Vec<ByteSet>>),
    /// `!(seq|seq|…)`: any run of the sequences' common length that is none of them.
    NotAlt(Vec<Vec<u8>>),
    /// `(B)`, `(L)` or `(W)` inside or at the end of the pattern.
    Boundary(Boundary),
}

/// A parsed body signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HexSig {
    /// A zero-width boundary the byte before the match must satisfy.
    pub leading: Option<Boundary>,
    /// The elements, in order.
    pub nodes: Vec<Node>,
}

/// Why a body signature could not be parsed.
pub type ParseError = String;

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// One hex byte position (`aa`, `??`, `a?`, `?a`) as a byte set.
fn byte_atom(hi: u8, lo: u8) -> Result<ByteSet, ParseError> {
    match (hi, lo) {
        (b'?', b'?') => Ok(ByteSet::all()),
        (b'?', l) => {
            let l = hex_val(l).ok_or("bad nibble")?;
            Ok(ByteSet::from_fn(|b| b & 0x0f == l))
        }
        (h, b'?') => {
            let h = hex_val(h).ok_or("bad nibble")?;
            Ok(ByteSet::from_fn(|b| b >> 4 == h))
        }
        (h, l) => {
            let (h, l) = (hex_val(h), hex_val(l));
            match (h, l) {
                (Some(h), Some(l)) => Ok(ByteSet::one(h << 4 | l)),
                _ => Err(format!("bad hex byte {:?}", [hi as char, lo as char])),
            }
        }
    }
}

/// Parses `n`, `-n`, `n-`, `n-m` (the inside of `{…}` or `[…]`).
fn parse_range(s: &str) -> Result<(u32, Option<u32>), ParseError> {
    let num = |t: &str| {
        t.parse::<u32>()
            .map_err(|_| format!("bad number {t:?} in range {s:?}"))
    };
    match s.split_once('-') {
        None => {
            let n = num(s)?;
            Ok((n, Some(n)))
        }
        Some(("", m)) => Ok((0, Some(num(m)?))),
        Some((n, "")) => Ok((num(n)?, None)),
        Some((n, m)) => {
            let (n, m) = (num(n)?, num(m)?);
            if m < n {
                return Err(format!("range {s:?} ends before it starts"));
            }
            Ok((n, Some(m)))
        }
    }
}

/// Parses a sequence of byte atoms (inside an alternation).
fn parse_seq(s: &[u8]) -> Result<Vec<ByteSet>, ParseError> {
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return Err(format!(
            "alternative {:?} is not whole bytes",
            String::from_utf8_lossy(s)
        ));
    }
    s.chunks(2).map(|c| byte_atom(c[0], c[1])).collect()
}

impl HexSig {
    /// Parses a hex signature such as `4142??43{2-4}(44|45)*46`.
    pub fn parse(text: &str) -> Result<HexSig, ParseError> {
        let s = text.as_bytes();
        let mut nodes = Vec::new();
        let mut leading = None;
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'*' => {
                    nodes.push(Node::Gap { min: 0, max: None });
                    i += 1;
                }
                b'{' | b'[' => {
                    let close = if s[i] == b'{' { b'}' } else { b']' };
                    let end = s[i..]
                        .iter()
                        .position(|&c| c == close)
                        .ok_or("unclosed range")?;
                    let (min, max) = parse_range(&text[i + 1..i + end])?;
                    nodes.push(Node::Gap { min, max });
                    i += end + 1;
                }
                b'!' | b'(' => {
                    let negated = s[i] == b'!';
                    let open = if negated { i + 1 } else { i };
                    if s.get(open) != Some(&b'(') {
                        return Err("'!' not followed by '('".into());
                    }
                    let end = s[open..]
                        .iter()
                        .position(|&c| c == b')')
                        .ok_or("unclosed '('")?;
                    let inner = &s[open + 1..open + end];
                    i = open + end + 1;
                    let marker = match inner {
                        b"B" => Some(Boundary::Word),
                        b"L" => Some(Boundary::Line),
                        b"W" => Some(Boundary::NonAlnum),
                        _ => None,
                    };
                    if let Some(b) = marker {
                        if negated {
                            return Err("negated boundary".into());
                        }
                        if nodes.is_empty() && leading.is_none() {
                            leading = Some(b);
                        } else {
                            nodes.push(Node::Boundary(b));
                        }
                        continue;
                    }
                    let alts = inner
                        .split(|&c| c == b'|')
                        .map(parse_seq)
                        .collect::<Result<Vec<_>, _>>()?;
                    nodes.push(alternation(alts, negated)?);
                }
                _ => {
                    let lo = *s.get(i + 1).ok_or("odd number of hex digits")?;
                    nodes.push(Node::Set(byte_atom(s[i], lo)?));
                    i += 2;
                }
            }
        }
        let sig = HexSig { leading, nodes };
        if sig.static_bytes() == 0 {
            return Err("no literal bytes".into());
        }
        Ok(sig)
    }

    /// How many positions match exactly one byte value (ClamAV needs some to anchor on).
    pub fn static_bytes(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Set(s) if s.len() == 1))
            .count()
    }

    /// The signature as a byte regex (no flags: the caller sets "dot matches newline" and
    /// byte, not Unicode, semantics). The leading boundary is not included.
    pub fn regex(&self) -> String {
        let mut out = String::new();
        let last = self.nodes.len().saturating_sub(1);
        for (k, n) in self.nodes.iter().enumerate() {
            match n {
                Node::Boundary(b) => render_boundary(*b, k == last, &mut out),
                _ => render_node(n, &mut out),
            }
        }
        out
    }

    /// What Hyperscan looks for to find candidates: the pattern's longest run of fixed bytes
    /// (a byte, or a letter in either case), like ClamAV's static part for its Aho-Corasick
    /// matcher. `None` when no run of at least 3 bytes exists: the whole pattern is used.
    /// Literal runs compile fast and in little memory even by the hundred thousand; whole
    /// patterns with gaps do not.
    pub fn anchor(&self) -> Option<(Vec<u8>, bool)> {
        let fixed = |n: &Node| match n {
            Node::Set(s) => {
                s.len() == 1
                    || (s.len() == 2
                        && (0..=255u8).any(|b| {
                            b.is_ascii_alphabetic() && s.contains(b) && s.contains(b ^ 0x20)
                        }))
            }
            _ => false,
        };
        let (mut best, mut start) = ((0, 0), None);
        for (i, n) in self.nodes.iter().enumerate() {
            match (fixed(n), start) {
                (true, None) => start = Some(i),
                (false, Some(st)) => {
                    if i - st > best.1 - best.0 {
                        best = (st, i);
                    }
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(st) = start
            && self.nodes.len() - st > best.1 - best.0
        {
            best = (st, self.nodes.len());
        }
        if best.1 - best.0 < 3 {
            return None;
        }
        // A dozen bytes select as well as the whole run and compile faster.
        let end = best.1.min(best.0 + ANCHOR_MAX);
        let mut bytes = Vec::with_capacity(end - best.0);
        let mut caseless = false;
        for n in &self.nodes[best.0..end] {
            if let Node::Set(s) = n {
                let b = s.first().unwrap_or(0);
                caseless |= s.len() == 2;
                bytes.push(b);
            }
        }
        Some((bytes, caseless))
    }

    /// The signature rewritten for UTF-16LE text (`::w`): every byte position is followed by
    /// a zero byte; gaps stay as they are (ClamAV's "wide" rewrite).
    pub fn wide(&self) -> HexSig {
        let zero = ByteSet::one(0);
        let nodes = self
            .nodes
            .iter()
            .flat_map(|n| match n {
                Node::Set(s) => vec![Node::Set(*s), Node::Set(zero)],
                Node::Alt(alts) => vec![Node::Alt(
                    alts.iter()
                        .map(|a| a.iter().flat_map(|s| [*s, zero]).collect())
                        .collect(),
                )],
                Node::Boundary(b) => vec![Node::Boundary(*b), Node::Set(zero)],
                other => vec![other.clone()],
            })
            .collect();
        HexSig {
            leading: self.leading,
            nodes,
        }
    }
}

/// Builds an alternation node: one-byte alternatives become a byte set, negated multi-byte
/// ones must share a length (ClamAV's rule).
fn alternation(alts: Vec<Vec<ByteSet>>, negated: bool) -> Result<Node, ParseError> {
    if alts.len() < 2 && !negated {
        return Err("alternation with one member".into());
    }
    if alts.iter().all(|a| a.len() == 1) {
        let mut set = ByteSet::default();
        for a in &alts {
            set.0.iter_mut().zip(a[0].0).for_each(|(w, x)| *w |= x);
        }
        return Ok(Node::Set(if negated { set.complement() } else { set }));
    }
    if !negated {
        return Ok(Node::Alt(alts));
    }
    let len = alts[0].len();
    let mut literal = Vec::new();
    for a in &alts {
        if a.len() != len || a.iter().any(|s| s.len() != 1) {
            return Err("negated alternatives must be literal bytes of one length".into());
        }
        literal.push(a.iter().map(|s| s.first().unwrap_or(0)).collect());
    }
    Ok(Node::NotAlt(literal))
}

fn render_node(n: &Node, out: &mut String) {
    match n {
        Node::Set(s) => s.render(out),
        Node::Gap { min, max } => match (min, max) {
            (0, None) => out.push_str(".*"),
            (n, None) => {
                let _ = write!(out, ".{{{n},}}");
            }
            (n, Some(m)) if n == m => {
                if *n > 0 {
                    let _ = write!(out, ".{{{n}}}");
                }
            }
            (n, Some(m)) => {
                let _ = write!(out, ".{{{n},{m}}}");
            }
        },
        Node::Alt(alts) => {
            out.push_str("(?:");
            for (k, a) in alts.iter().enumerate() {
                if k > 0 {
                    out.push('|');
                }
                a.iter().for_each(|s| s.render(out));
            }
            out.push(')');
        }
        Node::NotAlt(alts) => render_not_alt(alts, out),
        Node::Boundary(b) => render_boundary(*b, false, out),
    }
}

/// A boundary inside the pattern is one byte of either of the marker's sets (CRLF counts
/// as one line break); at the end, one byte of its right set or the end of the data.
fn render_boundary(b: Boundary, last: bool, out: &mut String) {
    let set = if last {
        b.right()
    } else {
        let (l, r) = (b.left().0, b.right().0);
        ByteSet([l[0] | r[0], l[1] | r[1], l[2] | r[2], l[3] | r[3]])
    };
    out.push_str("(?:");
    if b == Boundary::Line {
        out.push_str("\\x0d\\x0a|");
    }
    set.render(out);
    if last {
        out.push_str("|\\z");
    }
    out.push(')');
}

/// `!(s1|s2|…)` over fixed-length literals: every string of that length except the listed
/// ones, written as a trie complement: for each listed prefix, a byte that leaves the set
/// there, then any bytes to the full length.
fn render_not_alt(alts: &[Vec<u8>], out: &mut String) {
    let len = alts.first().map_or(0, Vec::len);
    let mut branches = Vec::new();
    let mut prefixes: Vec<Vec<u8>> = vec![Vec::new()];
    for depth in 0..len {
        let mut next = Vec::new();
        for p in &prefixes {
            let children = ByteSet::from_fn(|b| {
                alts.iter()
                    .any(|a| a.starts_with(p) && a.get(depth) == Some(&b))
            });
            let leave = children.complement();
            if !leave.is_empty() {
                let mut br = String::new();
                p.iter().for_each(|&b| ByteSet::one(b).render(&mut br));
                leave.render(&mut br);
                let rest = len - depth - 1;
                if rest > 0 {
                    let _ = write!(br, ".{{{rest}}}");
                }
                branches.push(br);
            }
            for b in (0..=255u8).filter(|&b| children.contains(b)) {
                let mut q = p.clone();
                q.push(b);
                next.push(q);
            }
        }
        prefixes = next;
    }
    out.push_str("(?:");
    out.push_str(&branches.join("|"));
    out.push(')');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(sig: &str, data: &[u8]) -> bool {
        let s = HexSig::parse(sig).expect("parses");
        let re = regex::bytes::RegexBuilder::new(&s.regex())
            .unicode(false)
            .dot_matches_new_line(true)
            .build()
            .expect("compiles");
        re.find_iter(data).any(|m| match s.leading {
            None => true,
            Some(b) => m.start() == 0 || b.left().contains(data[m.start() - 1]),
        })
    }

    fn h(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn every_wildcard_matches_as_documented() {
        let q = format!("{}??{}", h("MXC-QQ-A"), h("-TAIL"));
        assert!(matches(&q, b"MXC-QQ-A\xff-TAIL"));
        assert!(!matches(&q, b"MXC-QQ-A\x00\x00-TAIL"));
        let hi = format!("{}4?{}", h("NH"), h("-T"));
        assert!(matches(&hi, b"NH\x4a-T") && !matches(&hi, b"NH\x5a-T"));
        let lo = format!("{}?1{}", h("NL"), h("-T"));
        assert!(matches(&lo, b"NL\x71-T") && !matches(&lo, b"NL\x72-T"));
        let star = format!("{}*{}", h("HEAD"), h("TAIL"));
        assert!(matches(&star, b"HEAD\n\x00xxTAIL") && !matches(&star, b"TAILHEAD"));
        let fixed = format!("{}{{8}}{}", h("GF"), h("END"));
        assert!(matches(&fixed, b"GF........END") && !matches(&fixed, b"GF.........END"));
        let upto = format!("{}{{-3}}{}", h("GU"), h("END"));
        assert!(matches(&upto, b"GUEND") && !matches(&upto, b"GU....END"));
        let atleast = format!("{}{{5-}}{}", h("GM"), h("END"));
        assert!(matches(&atleast, b"GM.....END") && !matches(&atleast, b"GM....END"));
        let range = format!("{}{{3-9}}{}", h("GR"), h("END"));
        assert!(matches(&range, b"GR...END") && !matches(&range, b"GR..........END"));
        let br = format!("{}[2-5]5a", h("BRLEFT"));
        assert!(matches(&br, b"BRLEFT..Z") && !matches(&br, b"BRLEFT......Z"));
    }

    #[test]
    fn alternations_and_negations() {
        let alt = format!("{}(41|42|43){}", h("AB-"), h("-E"));
        assert!(matches(&alt, b"AB-C-E") && !matches(&alt, b"AB-D-E"));
        let generic = format!("{}(6d??|787878){}", h("AG-"), h("-E"));
        assert!(matches(&generic, b"AG-m\x00-E") && matches(&generic, b"AG-xxx-E"));
        assert!(!matches(&generic, b"AG-n\x00-E"));
        let nb = format!("{}!(41|42){}", h("NB-"), h("-E"));
        assert!(matches(&nb, b"NB-C-E") && !matches(&nb, b"NB-A-E"));
        let nf = format!("{}!(4142|4344){}", h("NF-"), h("-E"));
        assert!(matches(&nf, b"NF-AC-E") && matches(&nf, b"NF-ZZ-E"));
        assert!(!matches(&nf, b"NF-CD-E") && !matches(&nf, b"NF-AB-E"));
    }

    #[test]
    fn boundaries() {
        let b = format!("(B){}(B)", h("word"));
        assert!(matches(&b, b"\x00 word \x00") && matches(&b, b"word"));
        assert!(matches(&b, b"<word>"));
        assert!(!matches(&b, b"xword ") && !matches(&b, b" word."));
        let l = format!("{}(L){}", h("LM-"), h("END"));
        assert!(matches(&l, b"LM-\nEND") && matches(&l, b"LM-\r\nEND"));
        assert!(!matches(&l, b"LM- END"));
        let w = format!("{}(W){}", h("pre"), h("post"));
        assert!(matches(&w, b"pre-post") && !matches(&w, b"preApost"));
    }

    #[test]
    fn malformed_signatures_are_refused() {
        for bad in [
            "414",
            "41{3",
            "41(42",
            "!(4142|43)41",
            "zz41",
            "????",
            "41{5-2}42",
        ] {
            assert!(HexSig::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wide_rewrite_interleaves_zero_bytes() {
        let w = HexSig::parse(&h("ab")).expect("parses").wide();
        assert_eq!(w.regex(), "\\x61\\x00\\x62\\x00");
    }
}
