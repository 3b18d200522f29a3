//! Confirming a pattern Hyperscan could only prefilter (or not take at all), on one text.
//!
//! Most such patterns in SpamAssassin's rules are ReplaceTags expansions that open with
//! look-aheads (`(?!viagra)<V><I><A>…`: an obfuscated word that is not the word itself).
//! fancy-regex's backtracking VM takes about a millisecond a paragraph on those; here the
//! leading look-aheads are split off and checked at each start the rest of the pattern
//! matches from, the rest running on `regex`'s automata over the octets. Anything else runs
//! on fancy-regex over the Latin-1 text.

use super::perl_re::{PerlRegex, latin1};
use regex::bytes::{Regex, RegexBuilder};

/// How one pattern is confirmed.
pub enum Confirm {
    /// Leading look-aheads (`true`: negative) anchored at each start of `rest`.
    Split {
        /// The pattern after the look-aheads (a leading `\b` kept).
        rest: Regex,
        /// Each look-ahead, anchored.
        heads: Vec<(bool, Regex)>,
    },
    /// fancy-regex over Latin-1 text.
    Fancy(fancy_regex::Regex),
}

impl Confirm {
    /// The confirmer for `re`, if one compiles.
    pub fn new(re: &PerlRegex) -> Option<Confirm> {
        if let Some(c) = split(re) {
            return Some(c);
        }
        fancy_regex::RegexBuilder::new(&re.fancy_expression())
            .build()
            .ok()
            .map(Confirm::Fancy)
    }

    /// Matches of the pattern in `text` (non-overlapping, as Perl's `//g`), up to `max`.
    pub fn count(&self, text: &[u8], latin: &mut Option<String>, max: u32) -> u32 {
        match self {
            Confirm::Split { rest, heads } => {
                let mut n = 0;
                let mut pos = 0;
                while pos <= text.len() {
                    let Some(m) = rest.find_at(text, pos) else {
                        break;
                    };
                    let s = m.start();
                    let ok = heads.iter().all(|(neg, h)| h.is_match(&text[s..]) != *neg);
                    if ok {
                        n += 1;
                        if n >= max {
                            break;
                        }
                        pos = m.end().max(s + 1);
                    } else {
                        pos = s + 1;
                    }
                }
                n
            }
            Confirm::Fancy(re) => {
                let t = latin.get_or_insert_with(|| latin1(text));
                if max <= 1 {
                    return u32::from(re.is_match(t).unwrap_or(false));
                }
                let found = re.find_iter(t).take_while(Result::is_ok).take(max as usize);
                found.count() as u32
            }
        }
    }
}

/// Splits `(?!a)(?=b)rest` (optionally after a leading `\b`) when every piece compiles
/// without look-around.
fn split(re: &PerlRegex) -> Option<Confirm> {
    let src = re.source.as_str();
    let (boundary, mut i) = if src.starts_with("\\b") {
        (true, 2)
    } else {
        (false, 0)
    };
    let mut heads = Vec::new();
    while let Some(neg) = [("(?!", true), ("(?=", false)]
        .iter()
        .find(|(p, _)| src[i..].starts_with(p))
        .map(|(_, n)| *n)
    {
        let close = group_end(src, i)?;
        let inner = &src[i + 3..close];
        let head = PerlRegex {
            source: format!("\\A(?:{inner})"),
            ..re.clone()
        };
        heads.push((neg, compile(&head)?));
        i = close + 1;
    }
    if heads.is_empty() {
        return None;
    }
    let rest = PerlRegex {
        source: format!("{}{}", if boundary { "\\b" } else { "" }, &src[i..]),
        ..re.clone()
    };
    Some(Confirm::Split {
        rest: compile(&rest)?,
        heads,
    })
}

/// The index of the `)` closing the group that opens at `open`.
fn group_end(src: &str, open: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    let mut in_class = false;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            b'(' if !in_class => depth += 1,
            b')' if !in_class => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// `re` for `regex::bytes` over octets, as Perl on a byte string; `None` when it needs
/// look-around or back-references.
fn compile(re: &PerlRegex) -> Option<Regex> {
    RegexBuilder::new(&re.bytes_expression())
        .unicode(false)
        .case_insensitive(re.caseless)
        .multi_line(re.multiline)
        .dot_matches_new_line(re.dotall)
        // The ReplaceTags expansions are large alternations of octet sequences: a bigger
        // lazy-DFA cache keeps them off the slower PikeVM (measured: about 15 % less time).
        .dfa_size_limit(16 << 20)
        .build()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::perl_re::parse_literal;

    fn count(pattern: &str, text: &[u8], max: u32) -> (u32, bool) {
        let (re, _) = parse_literal(pattern).expect("pattern");
        let c = Confirm::new(&re).expect("compiles");
        let split = matches!(c, Confirm::Split { .. });
        (c.count(text, &mut None, max), split)
    }

    #[test]
    fn leading_lookaheads_are_checked_at_each_start() {
        // A word that is not the plain word.
        assert_eq!(
            count(r"/\b(?!viagra)v[i1]agra/i", b"buy V1AGRA now", 1),
            (1, true)
        );
        assert_eq!(
            count(r"/\b(?!viagra)v[i1]agra/i", b"viagra only", 1),
            (0, true)
        );
        // The first start is refused, a later one matches.
        assert_eq!(
            count(r"/(?!viagra)v[i1]agra/i", b"viagra, v1agra", 1),
            (1, true)
        );
        assert_eq!(
            count(r"/(?=\w{4})(?!cash)c\w+/", b"cash cold", 5),
            (1, true)
        );
        // Octets, as Perl on byte strings: \xc3 is one octet, \w is ASCII.
        assert_eq!(count("/caf\u{e9}/", b"caf\xe9", 1), (1, false));
        assert_eq!(count(r"/(?!x)\xc3\xa9/", "é".as_bytes(), 1), (1, true));
    }

    #[test]
    fn other_constructs_fall_back_to_fancy_regex() {
        assert_eq!(count(r"/\b(\w+) \1\b/", b"the the", 1), (1, false));
        assert_eq!(count(r"/(?<!by\s)up to/", b"up to 50%", 1), (1, false));
        assert_eq!(count(r"/a(?!b)/", b"ab ac", 3), (1, false));
    }
}
