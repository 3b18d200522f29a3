//! Hand-written matchers for single rules whose pattern costs the backtracking engine far
//! more than the question it asks, each keyed on the pattern's exact text and flags, each
//! answering exactly what fancy-regex answers (a differential test over generated texts
//! holds them to it).
//!
//! SpamAssassin's `__FROM_NAME_IN_MSG` (`full` rule, `72_active.cf`):
//! `/^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)/sm` — the sender's two-word name again on
//! a line of its own within 2,048 characters. fancy-regex walks the look-ahead's `.{1,2048}`
//! one character at a time for each way the name can be read (0.05 ms a message, about 5 %
//! of judging on the anchors' corpus); here it is one scan for line ends.
//!
//! SpamAssassin's `__SUBJ_HAS_TO_2` (`header ALL`): `/\nReceived:[^\n]{0,200} for
//! <?([^\n\s>;]+)>?;(?:[^\n]+\n+)*Subject: [^\n]{0,100}\1[^a-z0-9]/ism` — the address a
//! `Received:` line names after `for` again in the Subject. fancy-regex walks the rest of the
//! header one character at a time from every `Received:` line (0.1 ms a message on the
//! SpamAssassin corpus after the possessive rewrite); here each address is looked for in the
//! Subject lines only. As in fancy-regex 0.14, the back-reference compares exactly, whatever
//! `/i` says.
//!
//! SpamAssassin's `__SUBJ_HAS_TO_1` (`header ALL`): `/\nTo: (?:[^\n<]{0,80}<)?([^\n\s>,]+)>?\n+
//! (?:[^\n]{1,200}\n+)*Subject: [^\n]{0,100}\1[^a-z0-9]/ism` — a `To:` line's one address
//! again in the Subject. As `__SUBJ_HAS_TO_2`: fancy-regex walks the header from each `To:`
//! line (13 µs a message on the SpamAssassin corpus, where the scored `TO_IN_SUBJ` reads it);
//! here the address is looked for in the Subject lines the walk can reach.

use super::perl_re::{PerlRegex, latin1, parse_literal};
use std::sync::OnceLock;

/// A rule with a matcher of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Native {
    /// `__FROM_NAME_IN_MSG`, tried at a line start.
    FromNameInMsg,
}

/// A rule whose whole search has a matcher of its own (asked only whether it matches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeSearch {
    /// `__SUBJ_HAS_TO_1`.
    SubjHasTo1,
    /// `__SUBJ_HAS_TO_2`.
    SubjHasTo2,
    /// `HK_RANDOM_FROM`, `HK_RANDOM_ENVFROM`, `HK_RANDOM_REPLYTO`.
    HkRandom,
}

/// The look-ahead of [`HK_RANDOM`], the addresses it spares: spelled once, for both.
macro_rules! hk_spared {
    () => {
        r"(?:mail|bounce)[_.-]|[^@]*(?:[+=^~#-]|mc(?:b|g)r|kpmg|nlpbr|ndqv|lcgc|cplpr)|[^@]{26}|.*?\@.{0,20}\b(?:cmp-info|cmpgnr|cnn|tori|jysk|amadeus|amazon)\.[a-z]{2,3}$"
    };
}

/// The look-ahead of [`HK_RANDOM`]: the addresses it spares.
const HK_SPARED: &str = hk_spared!();

/// The pattern text of [`NativeSearch::HkRandom`], as the rule files spell it (`/mi`): an
/// address whose local part has five consonants or five vowels in a row, or a letter or
/// pair of letters four times over, unless the look-ahead spares it.
const HK_RANDOM: &str = concat!(
    r"^(?!",
    hk_spared!(),
    r")[^@]*(?:[bcdfgjklmnpqrtvwxz]{5}|[aeiouy]{5}|([a-z]{1,2})(?:\1){3})"
);

/// The pattern text of [`NativeSearch::SubjHasTo1`], as the rule file spells it.
const SUBJ_HAS_TO_1: &str = r"\nTo: (?:[^\n<]{0,80}<)?([^\n\s>,]+)>?\n+(?:[^\n]{1,200}\n+)*Subject: [^\n]{0,100}\1[^a-z0-9]";

/// The pattern text of [`NativeSearch::SubjHasTo2`], as the rule file spells it.
const SUBJ_HAS_TO_2: &str =
    r"\nReceived:[^\n]{0,200} for <?([^\n\s>;]+)>?;(?:[^\n]+\n+)*Subject: [^\n]{0,100}\1[^a-z0-9]";

impl NativeSearch {
    /// The matcher for `re`, if it is one of these rules (same text, same modifiers).
    pub fn for_pattern(re: &PerlRegex) -> Option<NativeSearch> {
        // A rule file writes `\#` for `#` (which would start a comment); the loader takes the
        // backslash off, a pattern parsed alone keeps it.
        match re.source.replace("\\#", "#").as_str() {
            SUBJ_HAS_TO_1 if re.caseless => Some(NativeSearch::SubjHasTo1),
            SUBJ_HAS_TO_2 if re.caseless => Some(NativeSearch::SubjHasTo2),
            HK_RANDOM if re.caseless && re.multiline && !re.dotall => {
                hk_spared().map(|_| NativeSearch::HkRandom)
            }
            _ => None,
        }
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(self, text: &[u8]) -> bool {
        match self {
            NativeSearch::SubjHasTo1 => subj_has_to_1(text),
            NativeSearch::SubjHasTo2 => subj_has_to_2(text),
            NativeSearch::HkRandom => hk_random(text),
        }
    }
}

/// [`HK_SPARED`] anchored, for fancy-regex over Latin-1 text as the whole pattern ran (its
/// `\b` reads Latin-1 letters as word characters). It holds no back-reference or
/// look-around, so fancy-regex hands it to `regex`'s automata whole.
fn hk_spared() -> Option<&'static fancy_regex::Regex> {
    static SPARED: OnceLock<Option<fancy_regex::Regex>> = OnceLock::new();
    SPARED
        .get_or_init(|| {
            let (re, _) = parse_literal(&format!("/\\A(?:{HK_SPARED})/mi")).ok()?;
            fancy_regex::Regex::new(&re.fancy_expression()).ok()
        })
        .as_ref()
}

/// [`HK_RANDOM`] anywhere in `text`: at a line start (`^` under `/m`) the look-ahead does
/// not spare, the text up to the first `@` (`[^@]*` crosses line ends) holds a run.
fn hk_random(text: &[u8]) -> bool {
    let Some(spared) = hk_spared() else {
        return false;
    };
    std::iter::once(0)
        .chain(line_starts(text))
        .any(|p| random_run(&text[p..]) && !spared.is_match(&latin1(&text[p..])).unwrap_or(true))
}

/// `[^@]*(?:[bcdfgjklmnpqrtvwxz]{5}|[aeiouy]{5}|([a-z]{1,2})(?:\1){3})` (`/i`) at the start
/// of `s`: in the part before the first `@`, five consonants or five vowels in a row, or a
/// letter or pair of letters repeated four times exactly (the back-reference compares case).
fn random_run(s: &[u8]) -> bool {
    let local = &s[..memchr::memchr(b'@', s).unwrap_or(s.len())];
    let consonant = |b: &u8| b"bcdfgjklmnpqrtvwxz".contains(&b.to_ascii_lowercase());
    let vowel = |b: &u8| b"aeiouy".contains(&b.to_ascii_lowercase());
    let run_of_five =
        |class: &dyn Fn(&u8) -> bool| local.split(|b| !class(b)).any(|run| run.len() >= 5);
    if run_of_five(&consonant) || run_of_five(&vowel) {
        return true;
    }
    (0..local.len()).any(|q| {
        [1, 2].iter().any(|&n| {
            let unit = &local[q..(q + n).min(local.len())];
            unit.len() == n
                && unit.iter().all(u8::is_ascii_alphabetic)
                && local
                    .get(q..q + 4 * n)
                    .is_some_and(|run| run.chunks(n).all(|c| c == unit))
        })
    })
}

/// `__SUBJ_HAS_TO_1` anywhere in `text`.
fn subj_has_to_1(text: &[u8]) -> bool {
    memchr::memchr_iter(b'\n', text)
        .filter(|&r| starts_with_caseless(&text[r + 1..], b"to: "))
        .any(|r| {
            let s = r + 5;
            let line_end = line_end(text, s);
            // `(?:[^\n<]{0,80}<)?`: the address right after `To: `, or after the line's
            // first `<` when it stands within 80 characters.
            let bracket = memchr::memchr(b'<', &text[s..line_end])
                .filter(|&n| n <= 80)
                .map(|n| s + n + 1);
            std::iter::once(s)
                .chain(bracket)
                .any(|c| to_address_in_a_subject(text, c))
        })
}

/// From `c`: `([^\n\s>,]+)>?\n+`, then a Subject line reachable through
/// `(?:[^\n]{1,200}\n+)*` holding the address within its first 100 characters, followed by
/// a character that is not a letter or digit.
fn to_address_in_a_subject(text: &[u8], c: usize) -> bool {
    // The group takes the whole run: a shorter one is followed by a class character, where
    // `>?\n` needs `>` or a line end.
    let end = address_end(text, c, b',');
    let mut q = match &text[end..] {
        _ if end == c => return false,
        [b'\n', ..] => end,
        [b'>', b'\n', ..] => end + 1,
        _ => return false,
    };
    let name = &text[c..end];
    loop {
        // `\n+`: past the line ends (blank lines with them).
        while text.get(q) == Some(&b'\n') {
            q += 1;
        }
        if q >= text.len() {
            return false;
        }
        if starts_with_caseless(&text[q..], b"subject: ") && name_in_subject(text, q + 9, name) {
            return true;
        }
        // Going on takes the whole line as `[^\n]{1,200}` and a line end after it.
        let line_end = line_end(text, q);
        if line_end - q > 200 || line_end == text.len() {
            return false;
        }
        q = line_end;
    }
}

/// `__SUBJ_HAS_TO_2` anywhere in `text`.
fn subj_has_to_2(text: &[u8]) -> bool {
    let subjects: Vec<usize> = line_starts(text)
        .filter(|&q| starts_with_caseless(&text[q..], b"subject: "))
        .collect();
    memchr::memchr_iter(b'\n', text)
        .filter(|&r| starts_with_caseless(&text[r + 1..], b"received:"))
        .any(|r| {
            let a = r + 10;
            let line_end = line_end(text, a);
            // `[^\n]{0,200} for `: every " for " starting within 200 characters, on the line.
            (a..=(a + 200).min(line_end))
                .filter(|&f| starts_with_caseless(&text[f.min(text.len())..], b" for "))
                .filter(|&f| f + 5 <= line_end)
                .any(|f| address_in_a_subject(text, f + 5, &subjects))
        })
}

/// From `c` (after ` for `): `<?([^\n\s>;]+)>?;`, then a Subject line reachable through
/// `(?:[^\n]+\n+)*` that holds the address within its first 100 characters followed by a
/// character that is not a letter or digit.
fn address_in_a_subject(text: &[u8], c: usize, subjects: &[usize]) -> bool {
    let end = address_end(text, c, b';');
    let after = match &text[end..] {
        [b';', ..] => end + 1,
        [b'>', b';', ..] => end + 2,
        _ => return false,
    };
    // The address with its `<` (taken by the group when `<?` takes nothing), or without.
    let mut names = vec![&text[c..end]];
    if text.get(c) == Some(&b'<') {
        names.push(&text[c + 1..end]);
    }
    // `Subject: ` right after the `;`, or at a later line start when the rest of the
    // line is not empty (each loop turn takes a non-empty line and its line ends).
    let line_end = line_end(text, after);
    let direct = starts_with_caseless(&text[after..], b"subject: ").then_some(after);
    let later = subjects
        .iter()
        .copied()
        .filter(|&q| after < line_end && q > line_end);
    direct.into_iter().chain(later).any(|q| {
        names
            .iter()
            .any(|name| !name.is_empty() && name_in_subject(text, q + 9, name))
    })
}

/// `[^\n]{0,100}NAME[^a-z0-9]` (case-insensitive class: not an ASCII letter or digit, as on
/// Latin-1 text) from `s0`.
fn name_in_subject(text: &[u8], s0: usize, name: &[u8]) -> bool {
    let rest = &text[s0..];
    let reach = memchr::memchr(b'\n', rest).unwrap_or(rest.len()).min(100);
    (0..=reach).any(|j| {
        rest[j..].starts_with(name)
            && rest
                .get(j + name.len())
                .is_some_and(|b| !b.is_ascii_alphanumeric())
    })
}

/// Where the line holding offset `from` ends: its line feed, or the end of `text`.
fn line_end(text: &[u8], from: usize) -> usize {
    memchr::memchr(b'\n', &text[from..]).map_or(text.len(), |n| from + n)
}

/// Where a run of `[^\n\s>X]` from `c` ends (`X` being `stop`): an address as the Subject
/// rules' groups take it.
fn address_end(text: &[u8], c: usize, stop: u8) -> usize {
    let in_class = |b: u8| b != b'\n' && b != b'>' && b != stop && !is_space(b);
    c + text[c..].iter().take_while(|&&b| in_class(b)).count()
}

/// The offsets that follow a line end.
fn line_starts(text: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\n', text).map(|i| i + 1)
}

/// Whether `text` opens with `lower` (ASCII lower case), compared ignoring ASCII case.
fn starts_with_caseless(text: &[u8], lower: &[u8]) -> bool {
    text.len() >= lower.len() && text[..lower.len()].eq_ignore_ascii_case(lower)
}

/// The pattern text of [`Native::FromNameInMsg`], as the rule file spells it.
const FROM_NAME_IN_MSG: &str = r"^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)";

impl Native {
    /// The matcher for `re`, if it is one of these rules (same text, same modifiers).
    pub fn for_pattern(re: &PerlRegex) -> Option<Native> {
        (re.source == FROM_NAME_IN_MSG && re.multiline && re.dotall && !re.caseless)
            .then_some(Native::FromNameInMsg)
    }

    /// Where the match that starts at the start of `text` (a line start) ends, in octets.
    pub fn match_end(self, text: &[u8]) -> Option<usize> {
        match self {
            Native::FromNameInMsg => from_name_in_msg(text),
        }
    }
}

/// Perl's `\s` on octets (as the rules are translated: `[[:space:]]`).
fn is_space(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ')
}

/// The end of the run of non-space octets starting at `from`.
fn word_end(text: &[u8], from: usize) -> usize {
    text[from..]
        .iter()
        .position(|&b| is_space(b))
        .map_or(text.len(), |n| from + n)
}

/// `__FROM_NAME_IN_MSG` at the start of `text`.
///
/// `\s+` then `[^<]\S+` can only split the run of white space after `From:` in two ways:
/// the whole run, the name's first character starting its first word (a word of two or more
/// characters), or all but its last character, that one white-space character opening the
/// name. Every other way leaves `\S+` facing white space. Both ways end at the same place:
/// one white-space character after the second word.
fn from_name_in_msg(text: &[u8]) -> Option<usize> {
    let rest = text.strip_prefix(b"From:")?;
    let run = rest.iter().take_while(|&&b| is_space(b)).count();
    let first = 5 + run;
    if run == 0 || first >= text.len() {
        return None;
    }
    // `\S+\s\S+\s`: the first word, one white-space character, the second word, one more.
    let first_end = word_end(text, first);
    let second = first_end + 1;
    if second >= text.len() || is_space(text[second]) {
        return None;
    }
    let second_end = word_end(text, second);
    if second_end >= text.len() {
        return None;
    }
    let end = second_end + 1;
    let whole_run = (first_end - first >= 2 && text[first] != b'<').then_some(first);
    let all_but_last = (run >= 2).then_some(first - 1);
    [whole_run, all_but_last]
        .into_iter()
        .flatten()
        .any(|start| name_line_follows(text, end, &text[start..second_end]))
        .then_some(end)
}

/// `(?=.{1,2048}^NAME\r?$)` at `end`: a line that is `name` (and perhaps a carriage return)
/// starting 1 to 2,048 characters after `end`.
fn name_line_follows(text: &[u8], end: usize, name: &[u8]) -> bool {
    let window = &text[end..text.len().min(end + 2048)];
    memchr::memchr_iter(b'\n', window).any(|nl| {
        let line = &text[end + nl + 1..];
        let Some(after) = line.strip_prefix(name) else {
            return false;
        };
        matches!(after, [] | [b'\n', ..] | [b'\r'] | [b'\r', b'\n', ..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spam::confirm::AtStart;
    use crate::spam::perl_re::{latin1, parse_literal};

    fn rule() -> PerlRegex {
        parse_literal(&format!("/{FROM_NAME_IN_MSG}/sm"))
            .expect("pattern")
            .0
    }

    #[test]
    fn only_the_exact_rule_gets_its_matcher() {
        assert_eq!(Native::for_pattern(&rule()), Some(Native::FromNameInMsg));
        let caseless = format!("/{FROM_NAME_IN_MSG}/smi");
        let other = parse_literal(&caseless).expect("pattern");
        assert_eq!(Native::for_pattern(&other.0), None);
        let other = parse_literal(r"/^From:\s+(\S+)\s(?=.{1,2048}^\1\r?$)/sm").expect("pattern");
        assert_eq!(Native::for_pattern(&other.0), None);
    }

    #[test]
    fn the_name_again_on_a_line_of_its_own() {
        let m = |t: &[u8]| from_name_in_msg(t);
        assert_eq!(m(b"From: John Smith <j@x>\n\nHi\nJohn Smith\n"), Some(17));
        assert_eq!(m(b"From: John Smith <j@x>\n\nHi\nJohn Smith\r\n"), Some(17));
        assert_eq!(m(b"From: John Smith <j@x>\n\nHi\nJohn Smith"), Some(17));
        assert_eq!(m(b"From: John Smith <j@x>\n\nJohn Smithers\n"), None);
        assert_eq!(m(b"From: John Smith <j@x>\n\nJohn Smith\rx\n"), None);
        // Two spaces before the name: the name may open with one of them.
        assert_eq!(m(b"From:  J Smith <j>\n J Smith\n"), Some(15));
        assert_eq!(m(b"From: J Smith <j>\nJ Smith\n"), None);
        // Beyond 2,048 characters: too far.
        let far = [&b"From: A B <a>\n"[..], &[b'x'; 2048], b"\nA B\n"].concat();
        assert_eq!(m(&far), None);
    }

    /// Texts made of the rule's pieces: the matcher ends where fancy-regex's start-only
    /// program ends, on every one.
    #[test]
    fn agrees_with_fancy_regex_on_generated_texts() {
        let at = AtStart::new(&format!(r"(?sm)\A(?:{FROM_NAME_IN_MSG})")).expect("compiles");
        assert!(rule().fancy_expression().starts_with("(?ms)"));
        let pieces: [&[u8]; 18] = [
            b" ",
            b"  ",
            b"\t",
            b"\n",
            b"\r\n",
            b"\r",
            b"John",
            b"J",
            b"Smith",
            b"<j@x>",
            b"<",
            b"x",
            b"\xe9",
            b"\x0b",
            b" J Smith",
            b"\nJohn Smith",
            b"\n J Smith",
            b"\n<j Smith",
        ];
        let mut rng = crate::test_rng::Rng(0xf00d_cafe);
        let mut hits = 0;
        for round in 0..20_000usize {
            let n = (rng.next() % 14) as usize;
            let mut text = b"From:".to_vec();
            for _ in 0..n {
                text.extend_from_slice(pieces[(rng.next() % pieces.len() as u64) as usize]);
            }
            if round.is_multiple_of(100) {
                // Now and then a name line just inside or just beyond the window.
                let pad = 2030 + (rng.next() % 30) as usize;
                text.extend(std::iter::repeat_n(b'y', pad));
                text.extend_from_slice(b"\nJohn Smith\n");
            }
            let want = at.match_end(&latin1(&text)).map(|e| {
                let t = latin1(&text);
                t[..e].chars().count()
            });
            let got = from_name_in_msg(&text);
            hits += usize::from(got.is_some());
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(&text));
        }
        assert!(hits > 100, "only {hits} matches generated");
    }

    /// Header texts made of the rule's pieces: the matcher answers what fancy-regex's search
    /// answers on every one.
    #[test]
    fn subj_has_to_2_agrees_with_fancy_regex_on_generated_headers() {
        let fancy = fancy_for(&format!("/{SUBJ_HAS_TO_2}/ism"), NativeSearch::SubjHasTo2);
        let pieces = pieces(b"\nReceived: from x by y|\nRECEIVED:|\nReceived:| for | FOR |<|>|;| |\n|\n\n|a@x.test|A@X.test|bob|\nSubject: |\nsubject: |Subject: |hi |!|x|\t|\xe9|\nX: y|a@x.testy");
        let mut rng = crate::test_rng::Rng(0x0bad_5eed);
        let mut hits = 0;
        let slots: [&[&[u8]]; 10] = [
            &[
                b"\nReceived: from x",
                b"\nRECEIVED: by y",
                b"Received: z",
                b"\nX: q",
            ],
            &[b"", b"", b"\n", b"zzzz"],
            &[b" for ", b" FOR ", b" for", b" fo "],
            &[b"", b"<", b"<<"],
            &[
                b"a@x.test",
                b"a@x.test",
                b"a@x.test",
                b"A@X.test",
                b"bob",
                b"",
                b"a b",
            ],
            &[b";", b">;", b";", b">", b"; ", b">>;"],
            &[b"", b" Mon", b"\n", b"\n\n", b"\nX: y\n"],
            &[
                b"\nSubject: ",
                b"\nsubject: ",
                b"Subject: ",
                b"\n\nSUBJECT: ",
                b"\nSubj: ",
            ],
            &[b"", b"hi ", b"<", b"\n", b"re: "],
            &[
                b"a@x.test!",
                b"a@x.test",
                b"a@x.testy",
                b"A@X.test.",
                b"<a@x.test>",
                b"bob\n",
            ],
        ];
        for round in 0..30_000usize {
            // Near the 200- and 100-character limits, one text in ten.
            let pad = (round.is_multiple_of(10)).then_some((95, 110));
            let text = generated(&mut rng, round, &pieces, &slots, pad);
            hits += usize::from(agrees(&fancy, subj_has_to_2, &text));
        }
        assert!(hits > 80, "only {hits} matches generated");
    }

    /// Header texts made of `__SUBJ_HAS_TO_1`'s pieces: the matcher answers what
    /// fancy-regex's search answers on every one.
    #[test]
    fn subj_has_to_1_agrees_with_fancy_regex_on_generated_headers() {
        let fancy = fancy_for(&format!("/{SUBJ_HAS_TO_1}/ism"), NativeSearch::SubjHasTo1);
        let pieces = pieces(b"\nTo: |\nTO: |To: |<|>|,| |\n|\n\n|a@x.test|A@X.test|bob|\nSubject: |\nsubject: |hi |!|x|\t|\xe9|\nX: y|a@x.testy");
        let mut rng = crate::test_rng::Rng(0x5eed_0001);
        let mut hits = 0;
        let slots: [&[&[u8]]; 9] = [
            &[
                b"\nTo: ", b"\nTO: ", b"\nto: ", b"To: ", b"\nX: ", b"\nTo:  ",
            ],
            &[b"", b"", b"Bob <", b"<", b"a b <", b"Bob ", b"\"B, o\" <"],
            &[
                b"a@x.test",
                b"a@x.test",
                b"A@X.test",
                b"bob",
                b"",
                b"a b",
                b"a,b",
                b"<a@x.test",
            ],
            &[
                b"\n", b">\n", b">", b"\n\n", b">>\n", b", c@d\n", b" \n", b"\xe9\n",
            ],
            &[b"", b"X: y\n", b"\n", b"Received: zz\n", b"X: y\nY: z\n"],
            &[
                b"Subject: ",
                b"subject: ",
                b"SUBJECT: ",
                b"Subj: ",
                b"X-Subject: ",
            ],
            &[b"", b"hi ", b"<", b"re: ", b"\xe9 "],
            &[
                b"a@x.test!",
                b"a@x.test",
                b"a@x.testy",
                b"A@X.test.",
                b"<a@x.test>",
                b"bob\n",
                b"a@x.test\n",
                b"a@x.test_",
            ],
            &[b"", b"\n", b"\nX: z\n"],
        ];
        for round in 0..30_000usize {
            // Near the 80-, 100- and 200-character limits, one text in five.
            let pad = (round.is_multiple_of(5)).then_some((75, 140));
            let mut text = generated(&mut rng, round, &pieces, &slots, pad);
            if round.is_multiple_of(7) {
                // Exactly at each limit, one under and one over.
                let n =
                    |base: usize, r: &mut crate::test_rng::Rng| base - 1 + (r.next() % 3) as usize;
                let z = |k: usize| vec![b'z'; k];
                text = [
                    &b"H: h\nTo: "[..],
                    &z(n(80, &mut rng)),
                    b"<a@x.test>\nX: ",
                    &z(n(200, &mut rng) - 3),
                    b"\nSubject: ",
                    &z(n(100, &mut rng)),
                    b"a@x.test!\n",
                ]
                .concat();
            }
            hits += usize::from(agrees(&fancy, subj_has_to_1, &text));
        }
        assert!(hits > 500, "only {hits} matches generated");
    }

    /// Addresses made of pieces that make and break `HK_RANDOM_*` (runs, repeated units in
    /// either case, every alternative of the look-ahead, line ends): the matcher answers what
    /// fancy-regex's search answers on every one.
    #[test]
    fn hk_random_agrees_with_fancy_regex_on_generated_addresses() {
        let rule = std::fs::read_to_string("/usr/share/spamassassin/72_active.cf")
            .ok()
            .and_then(|f| {
                let line = f
                    .lines()
                    .find(|l| l.contains("HK_RANDOM_FROM") && l.contains("=~"))?;
                Some(line[line.find('/')?..].trim().to_string())
            });
        let literal = rule.unwrap_or_else(|| format!("/{HK_RANDOM}/mi"));
        let fancy = fancy_for(&literal, NativeSearch::HkRandom);
        let pieces = pieces(b"mail_|bounce-|Mail.|john|smith|xkcdq|aeiou|AEIOy|AaAa|aaaa|abab|ABAB|abAB|Ab|+|mcbr|MCGR|kpmg|@|example.com|amazon.com|cnn.com|tori.de|x.y|.|\n|zzzzzzzzzzzzzzzzzzzzzzzzzz|q|y|st|hs|\xe9\xe9\xe9|-");
        let mut rng = crate::test_rng::Rng(0x4b52_414e);
        let mut hits = 0;
        for round in 0..30_000usize {
            let mut text = Vec::new();
            for _ in 0..1 + rng.next() % 7 {
                text.extend_from_slice(pieces[(rng.next() % pieces.len() as u64) as usize]);
            }
            if round.is_multiple_of(5) {
                // An address shape: local part, @, a domain.
                let at = (rng.next() % (text.len() as u64 + 1)) as usize;
                text.splice(
                    at..at,
                    b"@x.amazon.com"
                        .iter()
                        .copied()
                        .take(1 + (rng.next() % 13) as usize),
                );
            }
            hits += usize::from(agrees(&fancy, hk_random, &text));
        }
        assert!(hits > 1_000, "only {hits} matches generated");
    }

    /// The pieces of `joined`, `|` between them.
    fn pieces(joined: &'static [u8]) -> Vec<&'static [u8]> {
        joined.split(|&b| b == b'|').collect()
    }

    /// fancy-regex's program for the pattern `literal`, which gets matcher `native`.
    fn fancy_for(literal: &str, native: NativeSearch) -> fancy_regex::Regex {
        let (re, _) = parse_literal(literal).expect("pattern");
        assert_eq!(NativeSearch::for_pattern(&re), Some(native));
        fancy_regex::Regex::new(&re.fancy_expression()).expect("compiles")
    }

    /// A generated header text: pieces at random (one round in three), else one piece drawn
    /// for each slot; with `pad` (shortest, spread), a run of `z` inserted somewhere.
    fn generated(
        rng: &mut crate::test_rng::Rng,
        round: usize,
        pieces: &[&[u8]],
        slots: &[&[&[u8]]],
        pad: Option<(usize, u64)>,
    ) -> Vec<u8> {
        let mut text = Vec::new();
        let mut pick = |from: &[&[u8]], rng: &mut crate::test_rng::Rng| {
            text.extend_from_slice(from[(rng.next() % from.len() as u64) as usize]);
        };
        if round.is_multiple_of(3) {
            for _ in 0..1 + rng.next() % 20 {
                pick(pieces, rng);
            }
        } else {
            for slot in slots {
                pick(slot, rng);
            }
        }
        if let Some((shortest, spread)) = pad {
            let at = (rng.next() % (text.len() as u64 + 1)) as usize;
            let len = shortest + (rng.next() % spread) as usize;
            text.splice(at..at, std::iter::repeat_n(b'z', len));
        }
        text
    }

    /// Asserts that `matcher` answers on `text` what fancy-regex's search answers; returns it.
    fn agrees(fancy: &fancy_regex::Regex, matcher: fn(&[u8]) -> bool, text: &[u8]) -> bool {
        let want = fancy.is_match(&latin1(text)).expect("runs");
        assert_eq!(matcher(text), want, "{:?}", String::from_utf8_lossy(text));
        want
    }
}
