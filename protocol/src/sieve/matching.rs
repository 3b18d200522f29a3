//! Comparators (RFC 4790 §9, RFC 5228 §2.7.3) and match types: `:is`, `:contains`,
//! `:matches` (RFC 5228 §2.7.1), `:regex`, `:value` and `:count` (RFC 5231), with the match
//! variables `${0}`…`${9}` they set (RFC 5229 §3.2).

use std::cmp::Ordering;

use super::program::{Comparator, MatchKind, Matcher, Relation};

/// The most match variables kept (`${0}`…`${9}`, RFC 5229 §3.2).
pub const MATCH_VARIABLES: usize = 10;

/// A compiled `:regex` key, honouring the comparator: i;ascii-casemap matches without case.
pub fn regex_for(pattern: &str, cmp: Comparator) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(cmp == Comparator::AsciiCasemap)
        .size_limit(1 << 20)
        .build()
}

/// Whether `value` matches `key` under `m` (not for `:count`, see [`count_matches`]);
/// with `caps`, the match variables of a successful `:matches`/`:regex` go there.
/// `regex` supplies compiled patterns for `:regex` (cached by the caller).
pub fn matches(
    m: Matcher,
    value: &str,
    key: &str,
    caps: Option<&mut Vec<String>>,
    regex: &mut dyn FnMut(&str) -> Option<regex::Regex>,
) -> bool {
    match m.kind {
        MatchKind::Is => order(m.comparator, value, key) == Ordering::Equal,
        MatchKind::Contains => contains(m.comparator, value, key),
        MatchKind::Matches => wildcard(m.comparator, value, key, caps),
        MatchKind::Regex => match regex(key) {
            Some(re) => match re.captures(value) {
                Some(c) => {
                    if let Some(out) = caps {
                        out.clear();
                        for i in 0..c.len().min(MATCH_VARIABLES) {
                            out.push(c.get(i).map_or(String::new(), |g| g.as_str().to_string()));
                        }
                    }
                    true
                }
                None => false,
            },
            None => false,
        },
        MatchKind::Value(rel) => relation(rel, order(m.comparator, value, key)),
        MatchKind::Count(_) => false,
    }
}

/// `:count` (RFC 5231 §4.2): the number of values, as a decimal string, compared with each
/// key under the comparator.
pub fn count_matches(m: Matcher, count: usize, keys: &[String]) -> bool {
    let MatchKind::Count(rel) = m.kind else {
        return false;
    };
    let n = count.to_string();
    keys.iter()
        .any(|k| relation(rel, order(m.comparator, &n, k)))
}

fn relation(rel: Relation, o: Ordering) -> bool {
    match rel {
        Relation::Gt => o == Ordering::Greater,
        Relation::Ge => o != Ordering::Less,
        Relation::Lt => o == Ordering::Less,
        Relation::Le => o != Ordering::Greater,
        Relation::Eq => o == Ordering::Equal,
        Relation::Ne => o != Ordering::Equal,
    }
}

/// The comparator's ordering of two strings.
pub fn order(cmp: Comparator, a: &str, b: &str) -> Ordering {
    match cmp {
        Comparator::Octet => a.as_bytes().cmp(b.as_bytes()),
        Comparator::AsciiCasemap => {
            let fold = |s: &str| {
                s.bytes()
                    .map(|c| c.to_ascii_lowercase())
                    .collect::<Vec<_>>()
            };
            fold(a).cmp(&fold(b))
        }
        Comparator::AsciiNumeric => numeric(a).cmp(&numeric(b)),
    }
}

/// RFC 4790 §9.1.1: the value of the leading digits; a string not starting with a digit is
/// positive infinity (`None` sorts last here through the wrapper).
fn numeric(s: &str) -> Numeric {
    let digits: &str = &s[..s.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return Numeric::Infinite;
    }
    let trimmed = digits.trim_start_matches('0');
    Numeric::Finite(trimmed.len(), trimmed.to_string())
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Numeric {
    /// Length of the digits without leading zeros, then the digits: orders arbitrary sizes.
    Finite(usize, String),
    Infinite,
}

fn contains(cmp: Comparator, value: &str, key: &str) -> bool {
    match cmp {
        Comparator::Octet => memchr::memmem::find(value.as_bytes(), key.as_bytes()).is_some(),
        _ => {
            let v = value.to_ascii_lowercase();
            let k = key.to_ascii_lowercase();
            memchr::memmem::find(v.as_bytes(), k.as_bytes()).is_some()
        }
    }
}

enum Pat {
    Char(char),
    One,
    Any,
}

/// `:matches`: `*` any run, `?` one character, a backslash quotes the next (RFC 5228 §2.7.1). The
/// wildcards expand greedily, left first (RFC 5229 §3.2). A table of which pattern suffix
/// matches which value suffix is filled from the end (pattern × value bits, no recursion),
/// then walked forward giving each `*` the longest run that still lets the rest match.
fn wildcard(cmp: Comparator, value: &str, key: &str, caps: Option<&mut Vec<String>>) -> bool {
    let mut pat = Vec::new();
    let mut it = key.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            '*' => Pat::Any,
            '?' => Pat::One,
            '\\' => Pat::Char(it.next().unwrap_or('\\')),
            c => Pat::Char(c),
        });
    }
    let chars: Vec<(usize, char)> = value.char_indices().collect();
    let n = chars.len();
    let eq = |a: char, b: char| match cmp {
        Comparator::Octet => a == b,
        _ => a.eq_ignore_ascii_case(&b),
    };
    let width = n + 1;
    let mut table = Bits::new((pat.len() + 1) * width);
    table.set(pat.len() * width + n);
    for pi in (0..pat.len()).rev() {
        for si in (0..=n).rev() {
            let next = (pi + 1) * width;
            let ok = match pat[pi] {
                Pat::Char(c) => si < n && eq(chars[si].1, c) && table.get(next + si + 1),
                Pat::One => si < n && table.get(next + si + 1),
                Pat::Any => table.get(next + si) || (si < n && table.get(pi * width + si + 1)),
            };
            if ok {
                table.set(pi * width + si);
            }
        }
    }
    if !table.get(0) {
        return false;
    }
    if let Some(out) = caps {
        out.clear();
        out.push(value.to_string());
        let at = |i: usize| chars.get(i).map_or(value.len(), |c| c.0);
        let mut si = 0;
        for (pi, p) in pat.iter().enumerate() {
            let next = (pi + 1) * width;
            let end = match p {
                Pat::Char(_) => si + 1,
                Pat::One => si + 1,
                Pat::Any => (si..=n).rev().find(|&e| table.get(next + e)).unwrap_or(si),
            };
            if !matches!(p, Pat::Char(_)) && out.len() < MATCH_VARIABLES {
                out.push(value[at(si)..at(end)].to_string());
            }
            si = end;
        }
    }
    true
}

/// A fixed-size bit set.
struct Bits(Vec<u64>);

impl Bits {
    fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    fn get(&self, i: usize) -> bool {
        self.0[i / 64] >> (i % 64) & 1 == 1
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(kind: MatchKind, comparator: Comparator) -> Matcher {
        Matcher { comparator, kind }
    }

    fn is_match(kind: MatchKind, cmp: Comparator, v: &str, k: &str) -> bool {
        matches(m(kind, cmp), v, k, None, &mut |p| regex_for(p, cmp).ok())
    }

    #[test]
    fn comparators() {
        use Comparator::*;
        assert!(is_match(MatchKind::Is, AsciiCasemap, "Hello", "hELLO"));
        assert!(!is_match(MatchKind::Is, Octet, "Hello", "hello"));
        assert!(is_match(
            MatchKind::Contains,
            AsciiCasemap,
            "Hello World",
            "O W"
        ));
        // RFC 4790 §9.1: leading digits only, leading zeros ignored; no digits is infinity.
        assert!(is_match(MatchKind::Is, AsciiNumeric, "007abc", "7"));
        assert!(is_match(
            MatchKind::Value(Relation::Gt),
            AsciiNumeric,
            "10",
            "9"
        ));
        assert!(is_match(
            MatchKind::Value(Relation::Gt),
            AsciiNumeric,
            "x",
            "99999999999999999999999"
        ));
        assert!(is_match(MatchKind::Is, AsciiNumeric, "x", "y"));
        assert!(is_match(
            MatchKind::Value(Relation::Lt),
            AsciiCasemap,
            "10",
            "9"
        ));
    }

    #[test]
    fn wildcards_and_captures() {
        use Comparator::*;
        assert!(is_match(MatchKind::Matches, AsciiCasemap, "Hello", "h*o"));
        assert!(is_match(MatchKind::Matches, AsciiCasemap, "Hello", "?ell?"));
        assert!(!is_match(MatchKind::Matches, AsciiCasemap, "Hello", "?ell"));
        assert!(is_match(MatchKind::Matches, Octet, "a*b", "a\\*b"));
        assert!(!is_match(MatchKind::Matches, Octet, "axb", "a\\*b"));
        let mut caps = Vec::new();
        let mm = m(MatchKind::Matches, AsciiCasemap);
        assert!(matches(
            mm,
            "[list] hello: world",
            "[*] *: *",
            Some(&mut caps),
            &mut |_| None
        ));
        assert_eq!(caps, vec!["[list] hello: world", "list", "hello", "world"]);
        // Greedy, left first (RFC 5229 §3.2 example).
        assert!(matches(mm, "a.b.c", "*.*", Some(&mut caps), &mut |_| None));
        assert_eq!(caps[1..], ["a.b".to_string(), "c".to_string()]);
        // A hostile pattern stays polynomial.
        let v = "a".repeat(2000);
        let hostile = "*a".repeat(30) + "b";
        assert!(!is_match(MatchKind::Matches, Octet, &v, &hostile));
    }

    #[test]
    fn regex_and_count() {
        use Comparator::*;
        let mut caps = Vec::new();
        let mm = m(MatchKind::Regex, AsciiCasemap);
        assert!(matches(
            mm,
            "Order 1234 shipped",
            "order ([0-9]+)",
            Some(&mut caps),
            &mut |p| regex_for(p, AsciiCasemap).ok()
        ));
        assert_eq!(caps[1], "1234");
        assert!(!is_match(MatchKind::Regex, Octet, "ORDER", "order"));
        let c = m(MatchKind::Count(Relation::Ge), AsciiNumeric);
        assert!(count_matches(c, 3, &["2".into()]));
        assert!(!count_matches(c, 1, &["2".into()]));
    }
}
