//! Confirming a pattern Hyperscan could only prefilter (or not take at all), on one text.
//!
//! Most such patterns in SpamAssassin's rules are ReplaceTags expansions that open with
//! look-aheads (`(?!viagra)<V><I><A>…`: an obfuscated word that is not the word itself).
//! fancy-regex's backtracking VM takes about a millisecond a paragraph on those; here the
//! leading look-aheads are split off and checked at each start the rest of the pattern
//! matches from, the rest running on `regex`'s automata over the octets. Anything else runs
//! on fancy-regex over the Latin-1 text.

use super::native::{Native, NativeSearch};
use super::perl_re::{PerlRegex, latin1};
use super::possessive::possessive_line_runs;
use super::superset::{group_end, head, single_branch, superset};
use regex::bytes::{Regex, RegexBuilder};

/// How one pattern is confirmed.
pub enum Confirm {
    /// Leading look-aheads (`true`: negative) anchored `skip` octets into each match of
    /// `rest` (after a literal prefix such as `p(?!assword)…`'s `p`).
    Split {
        /// The pattern without the look-aheads (a leading `\b` and the prefix kept).
        rest: Regex,
        /// The length of the prefix, in octets.
        skip: usize,
        /// Each look-ahead, anchored.
        heads: Vec<(bool, Regex)>,
    },
    /// No look-around, no back-reference: `regex`'s automata over the octets.
    Plain(Regex),
    /// A pattern that can only match at the start of a line (`/^…/m`, no look-behind): tried
    /// only at the line starts where `gate` (its superset: see [`superset`], anchored there)
    /// matches, each time on the text from that line on, where the line start is the text's
    /// start as well.
    Lines {
        /// The anchored superset.
        gate: Regex,
        /// The anchored pattern.
        re: LineMatcher,
    },
    /// fancy-regex's program over Latin-1 text, run only at the starts where `gate` (the
    /// pattern with its look-arounds taken out and its back-references replaced by copies
    /// of their groups: see [`superset`]) matches — found by `gate`'s automaton, each tried once.
    Gated {
        /// The superset's automaton.
        gate: Regex,
        /// The pattern's unquantified first characters (see [`head`]): when there is one,
        /// `gate` only says whether the text can match at all, and the starts tried are
        /// where this matches.
        head: Option<Regex>,
        /// The pattern, run at one start at a time.
        re: AtStart,
    },
    /// A case-sensitive pattern that is only a string of octets (SpamAssassin's `/e/`,
    /// counted up to 230 times a message): found with `memmem`.
    Literal(memchr::memmem::Finder<'static>),
    /// A rule with a matcher of its own for the whole search ([`NativeSearch`]), asked when
    /// one match is enough; `fallback` counts (`tflags multiple`).
    Native {
        /// The rule's matcher.
        native: NativeSearch,
        /// The general confirmer.
        fallback: Box<Confirm>,
    },
    /// fancy-regex over Latin-1 text (a pattern without a superset that compiles), run only
    /// where `gate` matches when there is one.
    Fancy {
        /// The superset's automaton, when it compiles.
        gate: Option<Regex>,
        /// The pattern itself.
        re: fancy_regex::Regex,
    },
}

impl Confirm {
    /// The confirmer for `re`, if one compiles.
    pub fn new(re: &PerlRegex) -> Option<Confirm> {
        let general = Confirm::general(re)?;
        Some(match NativeSearch::for_pattern(re) {
            Some(native) => Confirm::Native {
                native,
                fallback: Box::new(general),
            },
            None => general,
        })
    }

    /// The confirmer for `re` from the general engines.
    fn general(re: &PerlRegex) -> Option<Confirm> {
        if let Some(octets) = literal(re) {
            return Some(Confirm::Literal(
                memchr::memmem::Finder::new(&octets).into_owned(),
            ));
        }
        if let Some(c) = split(re) {
            return Some(c);
        }
        if let Some(plain) = compile(re) {
            return Some(Confirm::Plain(plain));
        }
        if let Some(c) = by_lines(re) {
            return Some(c);
        }
        let gate = superset(&re.source).and_then(|source| compile_as(re, source));
        if let Some(gate) = gate.clone()
            && let Some(at) = AtStart::new(&re.fancy_expression())
        {
            let head = head(&re.source).and_then(|source| compile_as(re, source));
            return Some(Confirm::Gated { gate, head, re: at });
        }
        let expr = re.fancy_expression();
        let build = |e: &str| fancy_regex::RegexBuilder::new(e).build().ok();
        build(&possessive_line_runs(&expr))
            .or_else(|| build(&expr))
            .map(|re| Confirm::Fancy { gate, re })
    }

    /// Matches of the pattern in `text` (non-overlapping, as Perl's `//g`), up to `max`.
    pub fn count(&self, text: &[u8], latin: &mut Option<String>, max: u32) -> u32 {
        match self {
            Confirm::Split { rest, skip, heads } => {
                let mut n = 0;
                let mut pos = 0;
                while pos <= text.len() {
                    let Some(m) = rest.find_at(text, pos) else {
                        break;
                    };
                    let s = m.start();
                    let at = text.get(s + skip..).unwrap_or_default();
                    let ok = heads.iter().all(|(neg, h)| h.is_match(at) != *neg);
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
            Confirm::Plain(re) => {
                if max <= 1 {
                    return u32::from(re.is_match(text));
                }
                re.find_iter(text).take(max as usize).count() as u32
            }
            Confirm::Lines { gate, re } => {
                let mut n = 0;
                let mut from = 0;
                // `at` follows octet offset `seen` into the Latin-1 copy, made once when
                // fancy-regex runs (octets from 0x80 take two bytes there).
                let (mut seen, mut at) = (0usize, 0usize);
                let starts =
                    std::iter::once(0).chain(memchr::memchr_iter(b'\n', text).map(|i| i + 1));
                for p in starts {
                    if p < from || !gate.is_match(&text[p..]) {
                        continue;
                    }
                    let end = match re {
                        LineMatcher::Native(native) => native.match_end(&text[p..]),
                        LineMatcher::Fancy(re) => {
                            let t = latin.get_or_insert_with(|| latin1(text));
                            at += p - seen + text[seen..p].iter().filter(|&&b| b >= 0x80).count();
                            seen = p;
                            // Its end in octets: one per character.
                            re.match_end(&t[at..])
                                .map(|end| t[at..].get(..end).map_or(0, |m| m.chars().count()))
                        }
                    };
                    if let Some(end) = end {
                        n += 1;
                        if n >= max {
                            break;
                        }
                        // `//g` goes on after the match.
                        from = p + end.max(1);
                    }
                }
                n
            }
            Confirm::Gated { gate, head, re } => {
                if head.is_some() && !gate.is_match(text) {
                    return 0;
                }
                let starts = head.as_ref().unwrap_or(gate);
                let from = |pos: usize| (pos <= text.len()).then(|| starts.find_at(text, pos))?;
                let Some(first) = from(0) else {
                    return 0;
                };
                let t = latin.get_or_insert_with(|| latin1(text));
                let mut n = 0;
                let mut next = Some(first);
                // `at` follows octet offset `seen` into the Latin-1 copy, as in `Lines`.
                let (mut seen, mut at) = (0usize, 0usize);
                while let Some(m) = next {
                    let s = m.start();
                    at += s - seen + text[seen..s].iter().filter(|&&b| b >= 0x80).count();
                    seen = s;
                    match re.match_end_at(t, at) {
                        Some(end) => {
                            n += 1;
                            if n >= max {
                                break;
                            }
                            // `//g` goes on after the match (its end in octets: one per char).
                            let len = t.get(at..end).map_or(0, |m| m.chars().count());
                            next = from(s + len.max(1));
                        }
                        None => next = from(s + 1),
                    }
                }
                n
            }
            Confirm::Literal(finder) => match finder.needle() {
                // One octet (`/e/`, counted up to 230 times): memchr's own iterator.
                &[octet] => memchr::memchr_iter(octet, text).take(max as usize).count() as u32,
                _ => finder.find_iter(text).take(max as usize).count() as u32,
            },
            Confirm::Native { native, fallback } => {
                if max <= 1 {
                    u32::from(native.is_match(text))
                } else {
                    fallback.count(text, latin, max)
                }
            }
            Confirm::Fancy { gate, re } => {
                if gate.as_ref().is_some_and(|g| !g.is_match(text)) {
                    return 0;
                }
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

/// Splits `(?!a)(?=b)rest` (optionally after a leading `\b`, then a prefix of ASCII letters
/// and digits) when every piece compiles without look-around and the pattern has one branch.
fn split(re: &PerlRegex) -> Option<Confirm> {
    let src = re.source.as_str();
    if !single_branch(src)? {
        return None;
    }
    let from = if src.starts_with("\\b") { 2 } else { 0 };
    // The prefix: each character one octet of the text, none quantified (a look-ahead
    // follows it).
    let skip = src[from..]
        .bytes()
        .take_while(u8::is_ascii_alphanumeric)
        .count();
    let mut i = from + skip;
    let mut heads = Vec::new();
    while let Some(neg) = [("(?!", true), ("(?=", false)]
        .iter()
        .find(|(p, _)| src[i..].starts_with(p))
        .map(|(_, n)| *n)
    {
        let close = group_end(src, i)?;
        let inner = &src[i + 3..close];
        heads.push((neg, compile_as(re, format!("\\A(?:{inner})"))?));
        i = close + 1;
    }
    if heads.is_empty() {
        return None;
    }
    let rest = format!("{}{}", &src[..from + skip], &src[i..]);
    Some(Confirm::Split {
        rest: compile_as(re, rest)?,
        skip,
        heads,
    })
}

/// The line-start confirmer for `/^…/m` patterns without look-behind or `\A`.
fn by_lines(re: &PerlRegex) -> Option<Confirm> {
    let src = &re.source;
    if !re.multiline || !src.starts_with('^') || src.contains("(?<") || src.contains("\\A") {
        return None;
    }
    let anchored = |source: String| PerlRegex {
        source: format!("\\A(?:{source})"),
        ..re.clone()
    };
    let gate = compile(&anchored(superset(src)?))?;
    let re = match Native::for_pattern(re) {
        Some(native) => LineMatcher::Native(native),
        None => LineMatcher::Fancy(AtStart::new(&anchored(src.clone()).fancy_expression())?),
    };
    Some(Confirm::Lines { gate, re })
}

/// What runs at a line start the gate lets through.
pub enum LineMatcher {
    /// fancy-regex's start-only program over the Latin-1 text.
    Fancy(AtStart),
    /// A rule's own matcher over the octets.
    Native(Native),
}

/// A fancy-regex program run at the start of a text only. A `fancy_regex::Regex` always
/// searches (its program opens with a lazy `(?s:.)*?`), so a pattern that can only match at
/// the start is still tried at every later position, each failing: on a long text that cost
/// far more than the match (SpamAssassin's `__FROM_NAME_IN_MSG`, a `full` rule with a
/// back-reference in a look-ahead, took 27 % of the judging time). This program is compiled
/// without the loop, through fancy-regex's `internal` module (hence the exact version pin).
pub struct AtStart(fancy_regex::internal::Prog);

impl AtStart {
    /// Compiles `pattern` (fancy-regex syntax); `None` when it does not compile.
    pub fn new(pattern: &str) -> Option<AtStart> {
        AtStart::compile(&possessive_line_runs(pattern)).or_else(|| AtStart::compile(pattern))
    }

    fn compile(pattern: &str) -> Option<AtStart> {
        let mut tree = fancy_regex::Expr::parse_tree(pattern).ok()?;
        // Group 0 records the match's bounds, as fancy-regex's own wrapper does.
        let expr = std::mem::replace(&mut tree.expr, fancy_regex::Expr::Empty);
        tree.expr = fancy_regex::Expr::Group(Box::new(expr));
        let info = fancy_regex::internal::analyze(&tree).ok()?;
        fancy_regex::internal::compile(&info).ok().map(AtStart)
    }

    /// Where the match that starts at the start of `text` ends, if there is one (a run that
    /// exceeds fancy-regex's backtracking limit counts as none, as `Regex::find` errs).
    pub fn match_end(&self, text: &str) -> Option<usize> {
        self.match_end_at(text, 0)
    }

    /// Where the match that starts at byte `pos` of `text` ends (what precedes `pos` is seen
    /// by look-behinds and `\b`, as in a search).
    pub fn match_end_at(&self, text: &str, pos: usize) -> Option<usize> {
        let saves = fancy_regex::internal::run_default(&self.0, text, pos).ok()??;
        saves.get(1).copied()
    }
}

/// The octets `re` matches when it is a case-sensitive string with nothing but ordinary
/// characters, perhaps wrapped in non-capturing groups (`e`, `(?:e)`): each Latin-1
/// character one octet.
fn literal(re: &PerlRegex) -> Option<Vec<u8>> {
    if re.caseless {
        return None;
    }
    let mut src = re.source.as_str();
    while let Some(inner) = src.strip_prefix("(?:").and_then(|s| s.strip_suffix(')')) {
        src = inner;
    }
    let special = |c: char| "\\^$.|?*+()[]{}#".contains(c) || c.is_whitespace() && re.extended;
    if src.is_empty() || src.chars().any(special) {
        return None;
    }
    src.chars()
        .map(|c| u8::try_from(u32::from(c)).ok())
        .collect()
}

/// [`compile`] for `source` (Perl syntax) with `re`'s modifiers: a superset or a part of `re`.
fn compile_as(re: &PerlRegex, source: String) -> Option<Regex> {
    compile(&PerlRegex {
        source,
        ..re.clone()
    })
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
        // (pattern, text, limit, count, split)
        let cases: &[(&str, &[u8], u32, u32, bool)] = &[
            // A word that is not the plain word.
            (r"/\b(?!viagra)v[i1]agra/i", b"buy V1AGRA now", 1, 1, true),
            (r"/\b(?!viagra)v[i1]agra/i", b"viagra only", 1, 0, true),
            // The first start is refused, a later one matches.
            (r"/(?!viagra)v[i1]agra/i", b"viagra, v1agra", 1, 1, true),
            (r"/(?=\w{4})(?!cash)c\w+/", b"cash cold", 5, 1, true),
            // After a literal prefix: checked that far into each match.
            (r"/a(?!b)/", b"ab ac", 3, 1, true),
            (
                r"/p(?!assword)a-?s-?s/i",
                b"password PA-SS pass-",
                5,
                2,
                true,
            ),
            (
                r"/\bpass(?!word)\w+/",
                b"password passkey bypassed",
                5,
                1,
                true,
            ),
            // With another branch at the top level the look-ahead is not the whole
            // pattern's: `zz` matches though the look-ahead refuses it.
            (r"/(?!zz)a\w|zz/", b"zz", 1, 1, false),
            // Octets, as Perl on byte strings: \xc3 is one octet, \w is ASCII.
            ("/caf\u{e9}/", b"caf\xe9", 1, 1, false),
            (r"/(?!x)\xc3\xa9/", "é".as_bytes(), 1, 1, true),
        ];
        for &(pattern, text, max, n, split) in cases {
            assert_eq!(count(pattern, text, max), (n, split), "{pattern}");
        }
    }

    /// A plain string of octets is counted with memmem, as the regex engine counts it
    /// (non-overlapping, up to the limit); anything more is not taken for one.
    #[test]
    fn plain_strings_are_counted_as_octets() {
        let texts: [&[u8]; 4] = [b"eee eel", b"aaaa", b"caf\xe9 caf\xe9", b""];
        for pattern in ["/e/", "/(?:e)/", "/aa/", "/caf\u{e9}/", "/ee/"] {
            let (re, _) = parse_literal(pattern).expect("pattern");
            let c = Confirm::new(&re).expect("compiles");
            assert!(matches!(c, Confirm::Literal(_)), "{pattern}");
            let regex = compile(&re).expect("compiles as a regex");
            for text in texts {
                for max in [1, 2, 100] {
                    let want = regex.find_iter(text).take(max as usize).count() as u32;
                    assert_eq!(
                        c.count(text, &mut None, max),
                        want,
                        "{pattern} {text:?} {max}"
                    );
                }
            }
        }
        for pattern in ["/e/i", "/e+/", "/(?:e)|a/", "/\\x65/", "/(e)/", "/e.f/"] {
            let (re, _) = parse_literal(pattern).expect("pattern");
            assert!(literal(&re).is_none(), "{pattern}");
        }
    }

    #[test]
    fn other_constructs_fall_back_to_fancy_regex() {
        assert_eq!(count(r"/\b(\w+) \1\b/", b"the the", 1), (1, false));
        assert_eq!(count(r"/(?<!by\s)up to/", b"up to 50%", 1), (1, false));
        assert_eq!(count(r"/a(?!b)|q/", b"ab ac q", 3), (2, false));
    }

    fn kind(pattern: &str) -> &'static str {
        let (re, _) = parse_literal(pattern).expect("pattern");
        match Confirm::new(&re).expect("compiles") {
            Confirm::Split { .. } => "split",
            Confirm::Plain(_) => "plain",
            Confirm::Literal(_) => "literal",
            Confirm::Lines { .. } => "lines",
            Confirm::Gated { .. } => "gated",
            Confirm::Native { .. } => "native",
            Confirm::Fancy { gate: Some(_), .. } => "gated fancy",
            Confirm::Fancy { gate: None, .. } => "fancy",
        }
    }

    #[test]
    fn each_pattern_gets_the_cheapest_engine_that_runs_it_exactly() {
        assert_eq!(kind(r"/my\s(?:mal+ware|virus)\b/i"), "plain");
        assert_eq!(kind(r"/(?!viagra)v[i1]agra/i"), "split");
        assert_eq!(
            kind(r"/\s[a-z]+\s(?![a-z]{10}\s)[-0-9a-f]{10,64}\s/"),
            "gated"
        );
        // A back-reference outside a look-around: the superset copies its group.
        assert_eq!(kind(r"/\b(\w+) \1(?!x)/"), "gated");
        // ... unless the group holds an assertion.
        assert_eq!(kind(r"/(\b\w+) \1(?!x)/"), "fancy");
        // Inside one it goes with it.
        assert_eq!(kind(r"/\s(\S+)\s(?=.{1,20}^\1$)/sm"), "gated");
        // At line starts only.
        assert_eq!(kind(r"/^From:\s+(\S+)\s(?=.{1,20}^\1$)/sm"), "lines");
        assert_eq!(kind(r"/^From:\s+(\S+)\s(?=.{1,20}^\1$)/s"), "gated");
        // Octets, Perl's `$`, counting (`//g`) on the plain engine.
        assert_eq!(count("/caf\u{e9}$/", b"caf\xe9\n", 1), (1, false));
        assert_eq!(count("/caf\u{e9}$/", b"caf\xe9\nx", 1), (0, false));
        assert_eq!(count(r"/\bpill/i", b"PILL pill spill pills", 5), (3, false));
    }

    #[test]
    fn line_anchored_patterns_are_tried_at_line_starts_only() {
        // SpamAssassin's __FROM_NAME_IN_MSG: the sender's name again on a line of its own.
        let p = r"/^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)/sm";
        let msg = b"Subject: x\nFrom: John Smith <j@x>\n\nHi\nJohn Smith\n";
        assert_eq!(count(p, msg, 1), (1, false));
        let other = b"Subject: x\nFrom: John Smith <j@x>\n\nHi\nJohn Smithers\n";
        assert_eq!(count(p, other, 1), (0, false));
        // Not at a line start: no match.
        assert_eq!(
            count(p, b"X-From: John Smith <j>\nJohn Smith\n", 1),
            (0, false)
        );
        // Counting goes on after each match.
        assert_eq!(count(r"/^a(?=b)/m", b"ab\nac\nab\n", 5), (2, false));
        // Octets from 0x80 before a line start (two bytes each in the Latin-1 copy).
        let latin = b"X: caf\xe9 \xff\nFrom: John Smith <j@x>\n\nJohn Smith\n";
        assert_eq!(count(p, latin, 1), (1, false));
        assert_eq!(
            count(r"/^\xe9(?=x)/m", b"\xe9\xe9\n\xe9x\n\xe9x", 5),
            (2, false)
        );
    }

    /// Gated patterns: every start the superset allows is tried, overlapping ones too, and
    /// counting goes on after each match, also after an empty one at the end.
    #[test]
    fn gated_patterns_try_every_start_the_superset_allows() {
        // The superset matches from the first `a`; the pattern only from the second.
        assert_eq!(count(r"/(?:a)(?=ab)/", b"aaab", 5), (1, false));
        assert_eq!(kind(r"/(?:a)(?=ab)/"), "gated");
        assert_eq!(count(r"/(?<=x)a/", b"xa ya xa", 5), (2, false));
        assert_eq!(count(r"/\s?(?!q)/", b"ab", 5), (3, false));
        // Octets from 0x80 before a start.
        assert_eq!(
            count(r"/\xe9(?=x)/", b"\xe9\xe9 \xe9x \xe9x", 5),
            (2, false)
        );
    }

    /// The start-only program answers what fancy-regex's search answers for a match at the
    /// start, and never finds one further on.
    #[test]
    fn start_only_programs_match_where_fancy_regex_does_at_the_start() {
        let pattern = r"(?sm)\A(?:^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$))";
        let at = AtStart::new(pattern).expect("compiles");
        let full = fancy_regex::Regex::new(pattern).expect("compiles");
        let long_tail = format!("From: A B <a>\nbody\n{}", "x".repeat(100_000));
        for text in [
            "From: John Smith <j>\nhello\nJohn Smith\n",
            "From: John Smith <j>\nhello\nJohn Smithers\n",
            "Subject: s\nFrom: John Smith <j>\n\nJohn Smith\n",
            long_tail.as_str(),
            "",
        ] {
            let want = full.find(text).ok().flatten().map(|m| m.end());
            assert_eq!(at.match_end(text), want, "{text:.40}");
        }
        assert_eq!(
            AtStart::new(r"b").expect("compiles").match_end("ab"),
            None,
            "a match further on is not one at the start"
        );
        assert_eq!(AtStart::new(r"a(").map(|_| ()), None);
    }

    #[test]
    fn the_gate_only_skips_texts_the_pattern_cannot_match() {
        let p = r"/\s[a-z]+\s(?![a-z]{10}\s)[-0-9a-f]{10,64}\s/";
        // Nothing like a hash: the gate says no, fancy-regex never runs.
        assert_eq!(count(p, b" see the report attached ", 1).0, 0);
        // A hash: gate and pattern agree.
        assert_eq!(count(p, b" id 0123abcdef9876 here ", 1).0, 1);
        // The gate passes, the look-ahead refuses (ten letters then a space).
        assert_eq!(count(p, b" word abcdefabcd more ", 1).0, 0);
    }

    /// Patterns with back-references, run through their superset's gate, count what
    /// fancy-regex's own search counts on texts made to nearly match them.
    #[test]
    fn back_reference_patterns_gated_count_what_fancy_regex_counts() {
        let patterns = [
            // SpamAssassin's __PDS_TO_BRAND_SUBJECT and __SUBJ_HAS_TO_1 (header ALL).
            r#"/^To:\s+<?[^\@]+\@([^\.]+)\.(?:[^\n]+\n+)*^Subject: \"?\1\b/ism"#,
            r"/\nTo: (?:[^\n<]{0,80}<)?([^\n\s>,]+)>?\n+(?:[^\n]{1,200}\n+)*Subject: [^\n]{0,100}\1[^a-z0-9]/ism",
            r"/\nReceived:[^\n]{0,200} for <?([^\n\s>;]+)>?;(?:[^\n]+\n+)*Subject: [^\n]{0,100}\1[^a-z0-9]/ism",
            r"/\nTo:\s+(?:[^\n<]{0,80}<)?([^\n\s\@>]{4,80}?)\d*\@[^\n\s]+>?\n+(?:[^\n]{1,100}\n+)*From:\s+(?:[^\n]{0,80}<)?\1\d*[\@>,\s\n]/ism",
            r"/\b(\w+) \1\b/",
            r"/(a|bc)+x\1/i",
            r"/^(\w)\w*\1$/m",
        ];
        let words = [
            "\nTo: a@acme.test\n",
            "\nTo: Al <a@acme.test>\n",
            "\nTo: b@x.y>\n",
            "To: <",
            "Subject: ",
            "Subject: \"",
            "Subject: hi a@acme.test!",
            "acme",
            "ACME",
            "a@acme.test",
            "x",
            "bc",
            "a",
            "the",
            "The",
            "\n",
            "\n\n",
            " ",
            ">",
            ",",
            ".",
            "X: y\n",
            "\u{e9}",
        ];
        let lines = [
            "Received: by x for <a@acme.test>; Mon",
            "Received: from y for al@acme.test; x",
            "To: a@acme.test",
            "To: Al <al@acme.test>",
            "To: al12@acme.test",
            "From: al12@x.y",
            "From: Al <al@acme.test>",
            "Subject: hi a@acme.test!",
            "Subject: acme news",
            "Subject: \"ACME\" news",
            "Subject: al12 x",
            "X: y",
            "",
        ];
        let mut rng = crate::test_rng::Rng(0x5eed_0b5e);
        for p in patterns {
            let (re, _) = parse_literal(p).expect("pattern");
            let c = Confirm::new(&re).expect("compiles");
            assert!(
                !matches!(c, Confirm::Fancy { gate: None, .. }),
                "{p} has a gate"
            );
            let fancy = fancy_regex::Regex::new(&re.fancy_expression()).expect("compiles");
            for round in 0..4000 {
                // Words at random, or header lines with words between them.
                let n = 1 + (rng.next() % 24) as usize;
                let mut text = String::new();
                for _ in 0..n {
                    if round % 2 == 1 && !rng.next().is_multiple_of(3) {
                        text.push_str(rng.pick(&lines));
                        text.push('\n');
                    } else {
                        text.push_str(rng.pick(&words));
                    }
                }
                let text: Vec<u8> = text.chars().map(|c| c as u8).collect();
                let t = latin1(&text);
                for max in [1, 5] {
                    let want = fancy
                        .find_iter(&t)
                        .take_while(Result::is_ok)
                        .take(max)
                        .count();
                    assert_eq!(
                        c.count(&text, &mut None, max as u32) as usize,
                        want,
                        "{p} on {:?}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
    }
}
