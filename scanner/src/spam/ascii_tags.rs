//! ReplaceTags values as they read plain text: ASCII octets only, and no `&#`.
//!
//! SpamAssassin's `25_replace.cf` defines each letter as every look-alike of it: ASCII
//! characters, Latin-1 octets, UTF-8 sequences (`[\xc3][\x80\x81]`, `[\xf0][\x9d](?:…)`) and
//! HTML character references left in the text (`&#1072;`). A rule built from such tags
//! (`<V><I><A><G><R><A>`) costs Hyperscan about ten times what the same rule over the ASCII
//! look-alikes alone costs, and most text a filter reads is plain. In a text of octets below
//! 0x80 no alternative that needs an octet at or above 0x80 can match, and in one without `&#`
//! no alternative that begins with `&#` can: leaving those alternatives out gives exactly the
//! same matches there. The engine runs such a narrowed variant on plain texts
//! ([`is_plain`]) and the full pattern on every other text.
//!
//! The narrowing is conservative: it removes an octet at or above 0x80 from a positive
//! character class (`[aA\@\xc0]` → `[aA\@]`), a top-level alternative that begins with a
//! positive class left empty by that or with one such octet (`\xc3[\xa8\xa9]`), and a
//! top-level alternative that begins with `&#`.
//! Anything it does not understand stays as it is, which is always correct (only less cheap).

/// Whether `text` is plain in the sense of this module: ASCII octets only and no `&#`.
pub fn is_plain(text: &[u8]) -> bool {
    text.is_ascii() && memchr::memmem::find(text, b"&#").is_none()
}

/// `value` (a `replace_tag` value) with the alternatives that cannot match plain text
/// ([`is_plain`]) left out, or `None` when nothing can be left out (or the value is not
/// understood).
pub fn ascii_tag(value: &str) -> Option<String> {
    let (open, inner, close) = match value.strip_prefix("(?:").and_then(|r| r.strip_suffix(')')) {
        Some(inner) if closes_at_end(value) => ("(?:", inner, ")"),
        _ => ("", value, ""),
    };
    let mut kept = Vec::new();
    let mut changed = false;
    for branch in split_top(inner)? {
        match restrict_branch(branch)? {
            Some(b) => {
                changed |= b != branch;
                kept.push(b);
            }
            None => changed = true,
        }
    }
    // A tag left with nothing would never match plain text; keep it whole rather than write a
    // pattern that matches nothing.
    if !changed || kept.is_empty() {
        return None;
    }
    Some(format!("{open}{}{close}", kept.join("|")))
}

/// Whether the group opened at the start of `value` closes at its last octet.
fn closes_at_end(value: &str) -> bool {
    structure(value).is_some_and(|marks| {
        marks
            .iter()
            .find(|(_, c, depth)| *c == b')' && *depth == 0)
            .is_some_and(|(i, _, _)| *i == value.len() - 1)
    })
}

/// `s` split at its top-level `|`s; `None` when its brackets do not balance.
fn split_top(s: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut from = 0;
    for (i, _, _) in structure(s)?
        .into_iter()
        .filter(|(_, c, d)| *c == b'|' && *d == 0)
    {
        out.push(&s[from..i]);
        from = i + 1;
    }
    out.push(&s[from..]);
    Some(out)
}

/// The `(`, `)` and `|` of `s` outside character classes and escapes, each with its index and
/// the group depth outside it; `None` when classes or groups do not balance.
fn structure(s: &str) -> Option<Vec<(usize, u8, usize)>> {
    let b = s.as_bytes();
    let (mut depth, mut in_class) = (0usize, false);
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' if !in_class => {
                in_class = true;
                // `]` right after `[` or `[^` is a member.
                if b.get(i + 1) == Some(&b'^') {
                    i += 1;
                }
                if b.get(i + 1) == Some(&b']') {
                    i += 1;
                }
            }
            b']' if in_class => in_class = false,
            // See `class_members`: a `[` inside a class is not understood.
            b'[' => return None,
            b'(' if !in_class => {
                out.push((i, b'(', depth));
                depth += 1;
            }
            b')' if !in_class => {
                depth = depth.checked_sub(1)?;
                out.push((i, b')', depth));
            }
            b'|' if !in_class => out.push((i, b'|', depth)),
            _ => {}
        }
        i += 1;
    }
    (depth == 0 && !in_class).then_some(out)
}

/// One alternative: `Some(Some(b))` kept (its leading class restricted), `Some(None)` left out
/// (it begins with `&#`, with a class of non-ASCII octets only, or with one such octet),
/// `None` not understood.
fn restrict_branch(branch: &str) -> Option<Option<String>> {
    if branch.starts_with("&#") || branch.starts_with("&\\#") {
        return Some(None);
    }
    // A branch that must begin with one octet from 0x80 (`\xc3[\xa8\xa9]`, lcase_e's form).
    if leading_octet(branch).is_some_and(|c| c >= 0x80) {
        return Some(None);
    }
    let Some(body) = branch.strip_prefix('[') else {
        return Some(Some(branch.to_string()));
    };
    if body.starts_with('^') {
        return Some(Some(branch.to_string()));
    }
    let (members, end) = class_members(body)?;
    let ascii: Vec<&Member> = members.iter().filter(|m| !m.non_ascii()).collect();
    if ascii.is_empty() {
        return Some(None);
    }
    let mut out = String::from("[");
    for m in ascii {
        out.push_str(&m.text);
    }
    out.push(']');
    out.push_str(&body[end + 1..]);
    Some(Some(out))
}

/// The octet a branch's first atom ([`atom`]) stands for when that atom is one literal octet
/// (`\xNN`, or a character written as itself or escaped) that no quantifier makes optional or
/// repeats from zero.
fn leading_octet(branch: &str) -> Option<u32> {
    if "[(.^$|".contains(branch.chars().next()?) {
        return None;
    }
    let (_, value, next) = atom(branch, 0)?;
    match branch[next..].chars().next() {
        Some('?' | '*' | '{') => None,
        _ => value,
    }
}

/// A member of a character class as written, with the octets it may stand for when known.
struct Member {
    text: String,
    /// The lowest octet it stands for, when it is a literal or a range of literals.
    low: Option<u32>,
}

impl Member {
    /// Whether it stands only for octets at or above 0x80.
    fn non_ascii(&self) -> bool {
        self.low.is_some_and(|c| c >= 0x80)
    }
}

/// The members of a class whose text (after `[`) is `body`, and the index of its closing `]`;
/// `None` when it is not understood.
fn class_members(body: &str) -> Option<(Vec<Member>, usize)> {
    let b = body.as_bytes();
    let mut out: Vec<Member> = Vec::new();
    let mut i = 0;
    loop {
        let c = *b.get(i)?;
        if c == b']' && i > 0 {
            return Some((out, i));
        }
        // A `[` (a POSIX class `[:alpha:]`, or a nested class in some engines) and the set
        // operators `&&`, `--`, `~~` of others: read differently by different engines, so
        // not understood.
        if c == b'[' || (matches!(c, b'&' | b'-' | b'~') && b.get(i + 1) == Some(&c)) {
            return None;
        }
        let (text, value, next) = atom(body, i)?;
        // A range `a-b`: its low end decides (a range reaching into ASCII is kept).
        if b.get(next) == Some(&b'-') && b.get(next + 1).is_some_and(|&c| c != b']') {
            if b.get(next + 1) == Some(&b'-') {
                return None;
            }
            let (text2, _, next2) = atom(body, next + 1)?;
            out.push(Member {
                text: format!("{text}-{text2}"),
                low: value,
            });
            i = next2;
        } else {
            out.push(Member {
                text: text.to_string(),
                low: value,
            });
            i = next;
        }
    }
}

/// One class atom at `i`: its text, the octet it stands for when known (a literal octet or
/// `\xHH`), and where the next atom starts.
fn atom(body: &str, i: usize) -> Option<(&str, Option<u32>, usize)> {
    let b = body.as_bytes();
    if b[i] != b'\\' {
        let ch = body[i..].chars().next()?;
        let end = i + ch.len_utf8();
        return Some((&body[i..end], Some(ch as u32), end));
    }
    match b.get(i + 1)? {
        b'x' => {
            let hex = body.get(i + 2..i + 4)?;
            match u32::from_str_radix(hex, 16) {
                Ok(v) if hex.bytes().all(|c| c.is_ascii_hexdigit()) => {
                    Some((&body[i..i + 4], Some(v), i + 4))
                }
                // `\x{…}` and other forms: kept as they are, value unknown.
                _ => None,
            }
        }
        // `\d`, `\w`, `\s` and their negations stand for classes: never left out.
        c if c.is_ascii_alphabetic() => Some((&body[i..i + 2], None, i + 2)),
        _ => {
            let ch = body[i + 1..].chars().next()?;
            let end = i + 1 + ch.len_utf8();
            Some((&body[i..end], Some(ch as u32), end))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_look_alikes_are_left_out() {
        assert_eq!(
            ascii_tag(r"(?:[aA\@\xc0\xe4]|[\xb6\xc1]|[\xc3][\x80\x81]|&\#(?:1(?:0(?:10|17)));|[\xf0][\x9d](?:[\x90][\x80]))").as_deref(),
            Some(r"(?:[aA\@])")
        );
        // Ranges: wholly above 0x7f left out, reaching into ASCII kept.
        assert_eq!(
            ascii_tag(r"(?:[x\xa0-\xb7]|[\x20-\xff]y)").as_deref(),
            Some(r"(?:[x]|[\x20-\xff]y)")
        );
        // Escaped class members that stand for classes, and `]` as the first member.
        assert_eq!(ascii_tag(r"[\w\xe9]").as_deref(), Some(r"[\w]"));
        assert_eq!(ascii_tag(r"[]\xe9]").as_deref(), Some(r"[]]"));
    }

    #[test]
    fn branches_that_begin_with_an_octet_from_0x80_are_left_out() {
        // lcase_e's form: escaped octets, not classes.
        assert_eq!(
            ascii_tag(r"(?:e|\xc3[\xa8\xa9]|\xcf\xb5|\xd3[\x07\xa9])").as_deref(),
            Some("(?:e)")
        );
        // An octet made optional, or `\x{…}`, is kept.
        assert_eq!(ascii_tag(r"(?:e|\xc3?e|\xc3*x|\xc3{0,2}y)"), None);
        assert_eq!(ascii_tag(r"(?:e|\x{e9})"), None);
        // An ASCII escape leads: kept.
        assert_eq!(ascii_tag(r"(?:e|\x41\xc3)"), None);
    }

    #[test]
    fn plain_means_ascii_without_character_references() {
        assert!(is_plain(b"buy now & save #1"));
        assert!(!is_plain(b"buy &#1072; now"));
        assert!(!is_plain("café".as_bytes()));
    }

    #[test]
    fn what_cannot_be_narrowed_stays_whole() {
        // Nothing non-ASCII.
        assert_eq!(ascii_tag(r"(?:v|\\/)"), None);
        assert_eq!(ascii_tag("[i1]"), None);
        // A negated class: leaving members out would widen it.
        assert_eq!(ascii_tag(r"[^\xe9]"), None);
        // Nothing left: kept whole instead of a pattern matching nothing.
        assert_eq!(ascii_tag(r"(?:[\xc3][\x80])"), None);
        // Unbalanced or unknown forms.
        assert_eq!(ascii_tag(r"(?:[a\xe9]"), None);
        assert_eq!(ascii_tag(r"[a\x{e9}]"), None);
        // A `[` or a set operator inside a class (engines read them differently).
        assert_eq!(ascii_tag(r"(?:[[:alpha:]\xe9]|b)"), None);
        assert_eq!(ascii_tag(r"(?:x[a[]|[\xe9])"), None);
        assert_eq!(ascii_tag(r"(?:[a--\xe9]|b)"), None);
        // A non-ASCII octet past the leading class is not judged: the alternative stays.
        assert_eq!(ascii_tag(r"(?:a[\xe9]|b)"), None);
    }

    /// On plain text the narrowed tags of SpamAssassin's own file match exactly where the whole
    /// ones do.
    #[test]
    fn same_matches_on_ascii_text() {
        let tags = [
            r"(?:[aA\@\xc0\xc1\xe4]|[\xb6\xc1]|[\xc3][\x80\x81]|[\xe1](?:[\x8e][\xaa]))",
            r"(?:[cCk\xc7\xe7\xf2@]|[\xc3][\x87\xa7]|&\#(?:1(?:0(?:10|17|2[123]|57|89)|99)|x(?:3(?:f2|f9)));)",
            r"(?:e|\xc3[\xa8\xa9\xaa\xab]|\xc4[\x93\x95]|\xcf\xb5|\xd3[\x07\xa9\xab])",
        ];
        let texts = [
            "cAk@ & #1017; x &x3f9; C &99;",
            "nothing here",
            "a@c",
            "see the tree",
        ];
        for t in tags {
            let narrowed = ascii_tag(t).expect("narrowed");
            let whole = regex::bytes::Regex::new(&format!("(?-u){t}")).unwrap();
            let ascii = regex::bytes::Regex::new(&format!("(?-u){narrowed}")).unwrap();
            let mut matched = 0;
            for text in texts {
                assert!(is_plain(text.as_bytes()));
                let a: Vec<_> = whole
                    .find_iter(text.as_bytes())
                    .map(|m| m.range())
                    .collect();
                let b: Vec<_> = ascii
                    .find_iter(text.as_bytes())
                    .map(|m| m.range())
                    .collect();
                assert_eq!(a, b, "{t} on {text:?}");
                matched += a.len();
            }
            assert!(matched >= 2, "{t} matches too little to compare");
        }
    }
}
