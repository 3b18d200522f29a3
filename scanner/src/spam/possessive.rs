//! Possessive quantifiers where backtracking cannot help: a rewrite of a fancy-regex
//! expression that keeps exactly its matches and spares the backtracking engine the work.
//!
//! SpamAssassin's header rules that compare two fields (`__SUBJ_HAS_TO_2`,
//! `__TO_EQ_FROM_USR_1`, …) walk the header lines with `(?:[^\n]+\n+)*` or
//! `(?:[^\n]{1,100}\n+)*` before a back-reference. fancy-regex keeps a backtracking point for
//! every character `[^\n]+` takes, and comes back to each one for every way the rest can
//! fail: on the SpamAssassin corpus those rules took most of the confirming time. But a run
//! of `[^\n]` followed by `\n` can only be followed through if it took every character up to
//! the line end (any shorter run leaves a character that is not `\n` where `\n` must match),
//! so the possessive form (`[^\n]++\n`, which never gives characters back) matches exactly
//! the same texts (the auto-possessification PCRE applies to its own patterns).

/// `expr` (fancy-regex syntax) with each greedy quantifier on `[^\n]` that is directly
/// followed by `\n` made possessive.
pub fn possessive_line_runs(expr: &str) -> String {
    const CLASS: &str = r"[^\n]";
    let b = expr.as_bytes();
    let mut out = String::with_capacity(expr.len() + 8);
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        if !in_class && expr[i..].starts_with(CLASS) {
            let q = quantifier_len(&expr[i + CLASS.len()..]);
            let after = i + CLASS.len() + q;
            out.push_str(&expr[i..after]);
            let lazy_or_possessive = matches!(b.get(after), Some(b'?' | b'+'));
            if q > 0 && !lazy_or_possessive && expr[after..].starts_with(r"\n") {
                out.push('+');
            }
            i = after;
            continue;
        }
        match b[i] {
            b'\\' => {
                let len = expr[i + 1..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&expr[i..i + 1 + len]);
                i += 1 + len;
                continue;
            }
            b'[' if !in_class => in_class = true,
            b']' if in_class => in_class = false,
            _ => {}
        }
        let Some(ch) = expr[i..].chars().next() else {
            break;
        };
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// The length of the greedy quantifier `rest` opens with (`+`, `*`, `{n}`, `{n,}`,
/// `{n,m}`), 0 when there is none (`?` is left alone: it is no run).
fn quantifier_len(rest: &str) -> usize {
    match rest.as_bytes().first() {
        Some(b'+' | b'*') => 1,
        Some(b'{') => {
            let Some(close) = rest.find('}') else {
                return 0;
            };
            let inner = &rest[1..close];
            let valid = !inner.is_empty()
                && inner.bytes().all(|c| c.is_ascii_digit() || c == b',')
                && inner.bytes().filter(|&c| c == b',').count() <= 1
                && !inner.starts_with(',');
            if valid { close + 1 } else { 0 }
        }
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_before_a_line_end_become_possessive() {
        assert_eq!(
            possessive_line_runs(r"(?:[^\n]+\n+)*Subject"),
            r"(?:[^\n]++\n+)*Subject"
        );
        assert_eq!(
            possessive_line_runs(r"(?:[^\n]{1,100}\n+)*To:"),
            r"(?:[^\n]{1,100}+\n+)*To:"
        );
        assert_eq!(possessive_line_runs(r"a[^\n]*\nb"), r"a[^\n]*+\nb");
    }

    #[test]
    fn everything_else_is_left_as_it_is() {
        for e in [
            r"[^\n]{0,200} for ", // followed by a character the class takes
            r"[^\n]+?\n",         // lazy
            r"[^\n]++\n",         // already possessive
            r"[^\n]?\n",          // no run
            r"[a[^\n]+\n]",       // inside a class
            r"\[^\n]+\n",         // not a class
            r"[^\n]{x}\n",        // not a quantifier
            r"[^\n]+\\n",         // a backslash, then `n`
            r"[^\n\s]+\n",        // another class
        ] {
            assert_eq!(possessive_line_runs(e), e);
        }
    }
}
