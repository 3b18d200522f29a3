//! A look-around-free, back-reference-free superset of a Perl pattern: what an automaton can
//! run to find the only places the pattern itself can match.
//!
//! Two rewrites, each of which only widens what matches:
//! - a look-ahead or look-behind group is removed (an assertion only ever narrows a match);
//! - a back-reference `\N` becomes a copy of group N's expression (the text a back-reference
//!   matches is text group N matched, so it is in the language of group N's expression),
//!   provided that expression holds no assertion, whose answer could depend on where the
//!   copy stands, and that no inline modifier changes the case rule between the group and
//!   the reference.
//!
//! A third, [`end_anchors_dropped`], serves Hyperscan, which takes no `$` inside a pattern
//! even to prefilter: the assertion is left out, which again only widens what matches.
//!
//! Anything not understood gives `None`, and the caller runs the pattern without a gate.

/// `src` (Perl syntax, as parsed from a rule) with every look-around group removed and
/// every back-reference replaced by a copy of its group; `None` when there is nothing to
/// rewrite or a construct is not understood (named groups, inline modifiers, `\10`…).
pub fn superset(src: &str) -> Option<String> {
    let groups = capture_groups(src)?;
    let mut out = String::with_capacity(src.len());
    // `src[..copied]` is written out (or left out) already.
    let mut copied = 0;
    for (i, atom) in outside_classes(src, 0) {
        if i < copied {
            // Inside a look-around group left out.
            continue;
        }
        let (replacement, resume) = match atom {
            Atom::Escape(d) if d.is_ascii_digit() => {
                // Perl: `\1`–`\9` refer to a group; `\0` and `\10`… are not handled here.
                let n = usize::from(d - b'0');
                if n == 0 || src.as_bytes().get(i + 2).is_some_and(u8::is_ascii_digit) {
                    return None;
                }
                let (open, close) = *groups.get(n - 1)?;
                let body = &src[open + 1..close];
                if (open..=close).contains(&i) || !assertion_free(body) {
                    return None;
                }
                (format!("(?:{body})"), i + 2)
            }
            Atom::Octet(b'(') if is_lookaround(&src[i..]) => {
                (String::new(), group_end(src, i)? + 1)
            }
            _ => continue,
        };
        out.push_str(&src[copied..i]);
        out.push_str(&replacement);
        copied = resume;
    }
    // Nothing rewritten: no superset to offer.
    if copied == 0 {
        return None;
    }
    out.push_str(&src[copied..]);
    Some(out)
}

/// Whether `rest` opens a look-ahead or look-behind group.
fn is_lookaround(rest: &str) -> bool {
    ["(?=", "(?!", "(?<=", "(?<!"]
        .iter()
        .any(|p| rest.starts_with(p))
}

/// `src` with each `$` before its last character (outside classes, not escaped) made an
/// empty group; `None` when it has none.
pub fn end_anchors_dropped(src: &str) -> Option<String> {
    let anchors: Vec<usize> = outside_classes(src, 0)
        .filter(|(i, atom)| matches!(atom, Atom::Octet(b'$')) && i + 1 < src.len())
        .map(|(i, _)| i)
        .collect();
    if anchors.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(src.len() + 3 * anchors.len());
    let mut copied = 0;
    for i in anchors {
        out.push_str(&src[copied..i]);
        out.push_str("(?:)");
        copied = i + 1;
    }
    out.push_str(&src[copied..]);
    Some(out)
}

/// The pattern's leading run of single-character items (literal characters, escapes for
/// one character or a class of them, bracketed classes, `.`), none of them quantified, when
/// there are at least two and the pattern has no alternation at its top level: wherever the
/// pattern matches, this matches from the same start. It finds candidate starts far more
/// cheaply than a whole superset, whose automaton must scan back from each match's end to
/// find where it began.
pub fn head(src: &str) -> Option<String> {
    if !single_branch(src)? {
        return None;
    }
    let mut end = 0;
    let mut items = 0;
    while let Some(len) = item_len(&src[end..]) {
        let next = end + len;
        if matches!(src.as_bytes().get(next), Some(b'*' | b'+' | b'?' | b'{')) {
            break;
        }
        items += 1;
        end = next;
    }
    (items >= 2).then(|| src[..end].to_string())
}

/// Whether `src` has no `|` outside every group (`None`: its brackets do not balance).
pub fn single_branch(src: &str) -> Option<bool> {
    let mut depth = 0usize;
    for (_, atom) in outside_classes(src, 0) {
        match atom {
            Atom::Octet(b'(') => depth += 1,
            Atom::Octet(b')') => depth = depth.checked_sub(1)?,
            Atom::Octet(b'|') if depth == 0 => return Some(false),
            _ => {}
        }
    }
    Some(true)
}

/// The length of the single-character item `rest` opens with, if it opens with one.
fn item_len(rest: &str) -> Option<usize> {
    let b = rest.as_bytes();
    match *b.first()? {
        b'\\' => {
            let c = rest[1..].chars().next()?;
            let one_char = !c.is_ascii_alphanumeric() || "nrtfsSdDwW".contains(c);
            one_char.then(|| 1 + c.len_utf8())
        }
        b'[' => {
            let mut j = 1;
            if b.get(j) == Some(&b'^') {
                j += 1;
            }
            if b.get(j) == Some(&b']') {
                j += 1;
            }
            while *b.get(j)? != b']' {
                match b[j] {
                    b'\\' => j += 2,
                    // POSIX classes (`[:alpha:]`) are not followed here.
                    b'[' => return None,
                    _ => j += 1,
                }
            }
            Some(j + 1)
        }
        b'^' | b'$' | b'(' | b')' | b'|' | b'*' | b'+' | b'?' | b'{' | b'}' => None,
        _ => rest.chars().next().map(char::len_utf8),
    }
}

/// What a position outside every character class holds.
enum Atom {
    /// `\` and the character after it (its first octet).
    Escape(u8),
    /// Any other octet.
    Octet(u8),
}

/// The positions of `src` from `from` on that stand outside character classes, each with
/// what it holds (classes, brackets included, are skipped whole).
fn outside_classes(src: &str, from: usize) -> impl Iterator<Item = (usize, Atom)> + '_ {
    let b = src.as_bytes();
    let mut i = from;
    let mut in_class = false;
    std::iter::from_fn(move || {
        while i < b.len() {
            let at = i;
            let c = b[i];
            if c == b'\\' {
                i += 2;
                if !in_class {
                    return Some((at, Atom::Escape(b.get(at + 1).copied().unwrap_or(b'\\'))));
                }
                continue;
            }
            i += 1;
            match c {
                b'[' if !in_class => {
                    in_class = true;
                    // A `]` first in a class (after an optional `^`) is a member.
                    i += usize::from(b.get(i) == Some(&b'^'));
                    i += usize::from(b.get(i) == Some(&b']'));
                }
                b']' if in_class => in_class = false,
                _ if in_class => {}
                _ => return Some((at, Atom::Octet(c))),
            }
        }
        None
    })
}

/// The `(` and `)` offsets of each capturing group, in the order the groups open (group 1
/// first); `None` for a named group, an inline modifier or unbalanced parentheses.
fn capture_groups(src: &str) -> Option<Vec<(usize, usize)>> {
    let mut groups: Vec<(usize, usize)> = Vec::new();
    // Each open group: the index of its entry in `groups` when it captures.
    let mut open: Vec<Option<usize>> = Vec::new();
    for (i, atom) in outside_classes(src, 0) {
        match atom {
            Atom::Octet(b'(') if src[i..].starts_with("(?") => {
                let rest = &src[i..];
                if !(rest.starts_with("(?:") || is_lookaround(rest)) {
                    return None;
                }
                open.push(None);
            }
            Atom::Octet(b'(') => {
                open.push(Some(groups.len()));
                groups.push((i, i));
            }
            Atom::Octet(b')') => {
                if let Some(g) = open.pop()? {
                    groups[g].1 = i;
                }
            }
            _ => {}
        }
    }
    open.is_empty().then_some(groups)
}

/// Whether `body` (a group's expression) holds no anchor, word boundary, look-around or
/// back-reference outside its classes.
fn assertion_free(body: &str) -> bool {
    outside_classes(body, 0).all(|(i, atom)| match atom {
        Atom::Escape(c) => !(c.is_ascii_digit() || b"bBAzZGkgQ".contains(&c)),
        Atom::Octet(b'^' | b'$') => false,
        Atom::Octet(b'(') => !is_lookaround(&body[i..]),
        Atom::Octet(_) => true,
    })
}

/// The index of the `)` closing the group that opens at `open`.
pub fn group_end(src: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, atom) in outside_classes(src, open) {
        match atom {
            Atom::Octet(b'(') => depth += 1,
            Atom::Octet(b')') => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_arounds_are_removed() {
        assert_eq!(
            superset(r"a(?!b(?=c))[(?!]d(?<=x)e\(?=").as_deref(),
            Some(r"a[(?!]de\(?=")
        );
        assert_eq!(superset("plain"), None);
        assert_eq!(superset("a(?!b"), None);
    }

    #[test]
    fn back_references_become_copies_of_their_group() {
        assert_eq!(
            superset(r#"^To:\s+<?[^\@]+\@([^\.]+)\.(?:[^\n]+\n+)*^Subject: \"?\1\b"#).as_deref(),
            Some(r#"^To:\s+<?[^\@]+\@([^\.]+)\.(?:[^\n]+\n+)*^Subject: \"?(?:[^\.]+)\b"#)
        );
        // A reference inside a removed look-ahead goes with it.
        assert_eq!(
            superset(r"^From:\s+([^<]\S+\s\S+)\s(?=.{1,2048}^\1\r?$)").as_deref(),
            Some(r"^From:\s+([^<]\S+\s\S+)\s")
        );
        // Groups are numbered by their opening parenthesis; non-capturing ones do not count.
        assert_eq!(
            superset(r"(?:x)((a)b)\2").as_deref(),
            Some(r"(?:x)((a)b)(?:a)")
        );
        // `\1` in a class is an octal escape, not a reference.
        assert_eq!(superset(r"(a)[\1]"), None);
    }

    #[test]
    fn heads_are_the_unquantified_single_characters_in_front() {
        assert_eq!(
            head(r"\nReceived:[^\n]{0,200} for <?([^\n\s>;]+)").as_deref(),
            Some(r"\nReceived:")
        );
        assert_eq!(head(r"\nTo:\s+(?:x)").as_deref(), Some(r"\nTo:"));
        assert_eq!(head(r"a[^>\]x]b.c+").as_deref(), Some(r"a[^>\]x]b."));
        assert_eq!(head(r"\@\.x").as_deref(), Some(r"\@\.x"));
        // Too short, anchored, grouped, alternatives at the top, a reference, POSIX classes.
        assert_eq!(head(r"ab?c"), None);
        assert_eq!(head(r"^To:"), None);
        assert_eq!(head(r"(?:To):"), None);
        assert_eq!(head(r"To:|From:"), None);
        assert_eq!(head(r"\1abc").as_deref(), None);
        assert_eq!(head(r"a[[:alpha:]]b"), None);
        assert_eq!(head(r"ab(c|d)").as_deref(), Some("ab"));
    }

    #[test]
    fn end_anchors_inside_are_dropped_to_a_superset() {
        assert_eq!(
            end_anchors_dropped(r"(?:$|\W)opt(?:$|\W)").as_deref(),
            Some(r"(?:(?:)|\W)opt(?:(?:)|\W)")
        );
        // At the very end, escaped, or in a class (a `]` first in it a member): kept, None.
        assert_eq!(end_anchors_dropped(r"opt$"), None);
        assert_eq!(end_anchors_dropped(r"\$5 off"), None);
        assert_eq!(end_anchors_dropped(r"[$]5"), None);
        assert_eq!(end_anchors_dropped(r"[]$]5"), None);
        assert_eq!(end_anchors_dropped(r"[^]$]5"), None);
        // A superset: wherever the pattern matches, the one without the assertion does.
        let (r, _) =
            crate::spam::perl_re::parse_literal(r"/(?:$|\W)(?=o)(?!opt-in)opt[-\s]?out(?:$|\W)/i")
                .expect("ok");
        let whole = fancy_regex::Regex::new(&r.fancy_expression()).expect("whole");
        let loose = crate::spam::perl_re::PerlRegex {
            source: end_anchors_dropped(&r.source).expect("dropped"),
            ..r.clone()
        };
        let loose = fancy_regex::Regex::new(&loose.fancy_expression()).expect("loose");
        for t in [
            "please opt-out.",
            "opt out",
            "adopt out",
            " opt-in",
            "\nOPT OUT\n",
            "x optout",
        ] {
            if whole.is_match(t).unwrap_or(false) {
                assert!(loose.is_match(t).unwrap_or(false), "{t:?}");
            }
        }
        assert!(loose.is_match("opt out").unwrap_or(false));
    }

    #[test]
    fn a_bracket_first_in_a_class_is_a_member() {
        // `]` first in a class does not close it: the look-ahead after it is still removed,
        // and the `(` inside it is not a group.
        assert_eq!(superset(r"[](]a(?!b)").as_deref(), Some(r"[](]a"));
        assert_eq!(superset(r"[^](]a(?!b)").as_deref(), Some(r"[^](]a"));
    }

    #[test]
    fn what_a_copy_could_get_wrong_is_left_alone() {
        // An assertion in the group: its answer depends on where the copy stands.
        assert_eq!(superset(r"(\bfoo)bar\1"), None);
        assert_eq!(superset(r"(^a)\1"), None);
        assert_eq!(superset(r"((?=a)a)\1"), None);
        // A reference inside its own group, to a group that does not exist, `\10`, `\0`.
        assert_eq!(superset(r"(a\1)"), None);
        assert_eq!(superset(r"(a)\2"), None);
        assert_eq!(superset(r"(a)\10"), None);
        assert_eq!(superset(r"(a)\0"), None);
        // Named groups and inline modifiers (which could change the case rule).
        assert_eq!(superset(r"(?<n>a)\1"), None);
        assert_eq!(superset(r"(?i:(a))\1"), None);
        assert_eq!(superset(r"(a))\1"), None);
    }
}
