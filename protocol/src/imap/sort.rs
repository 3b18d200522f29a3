//! Sort keys of RFC 5256 (SORT) and RFC 5957 (SORT=DISPLAY), from header field values: the
//! base subject (§2.1) and the address keys, compared in their i;unicode-casemap form
//! (RFC 5051, the comparator of I18NLEVEL=1, RFC 5255 §4).

use super::mime;
use super::text::decode_words;

/// RFC 5256 §2.1: the base subject of a Subject field value (encoded words decoded).
pub fn base_subject(raw: &[u8]) -> String {
    base_subject_and_reply(raw).0
}

/// The base subject, and whether extracting it removed a reply or forward indicator (a
/// `subj-refwd` leader, a `(fwd)` trailer or a `[fwd: …]` wrapper: RFC 5256 §2.1, used by
/// THREAD=REFERENCES to merge threads by subject, §BASE.6.4.THREAD step 5).
pub fn base_subject_and_reply(raw: &[u8]) -> (String, bool) {
    // (1) Encoded words decoded; tabs and folding to spaces; runs of spaces to one.
    let decoded = decode_words(raw);
    let mut s: String = decoded.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut reply = false;
    loop {
        // (2) Trailers: "(fwd)" and whitespace, repeatedly.
        loop {
            let t = s.trim_end();
            let t = match t.len().checked_sub(5).and_then(|i| t.get(i..)) {
                Some(tail) if tail.eq_ignore_ascii_case("(fwd)") => &t[..t.len() - 5],
                _ => t,
            };
            if t.len() == s.len() {
                break;
            }
            reply |= t.len() + 5 <= s.trim_end().len();
            s = t.to_string();
        }
        // (3)-(5) Leaders and blobs, until neither matches.
        loop {
            let before = s.len();
            let (rest, refwd) = strip_leader(&s);
            reply |= refwd;
            s = rest.to_string();
            if let Some(rest) = strip_blob(&s)
                && !rest.is_empty()
            {
                s = rest.to_string();
            }
            if s.len() == before {
                break;
            }
        }
        // (6) "[fwd: …]": unwrap and start over at (2).
        let lower = s.to_ascii_lowercase();
        if lower.starts_with("[fwd:") && s.ends_with(']') {
            s = s[5..s.len() - 1].to_string();
            reply = true;
            continue;
        }
        return (fold(&s), reply);
    }
}

/// `subj-blob` (`"[" *BLOBCHAR "]" *WSP`) at the start: what follows it.
fn strip_blob(s: &str) -> Option<&str> {
    let rest = s.strip_prefix('[')?;
    let end = rest.find([']', '['])?;
    if rest.as_bytes()[end] != b']' {
        return None;
    }
    Some(rest[end + 1..].trim_start())
}

/// `subj-leader`: whitespace, or blobs followed by `re`/`fw`/`fwd` [blob] `:` (then `true`:
/// a reply or forward indicator).
fn strip_leader(s: &str) -> (&str, bool) {
    let t = s.trim_start();
    if t.len() != s.len() {
        return (t, false);
    }
    let mut at = s;
    while let Some(rest) = strip_blob(at) {
        at = rest;
    }
    let lower = at.to_ascii_lowercase();
    let word = ["fwd", "fw", "re"]
        .into_iter()
        .find(|w| lower.starts_with(w));
    let Some(word) = word else {
        return (s, false);
    };
    let mut rest = at[word.len()..].trim_start();
    if let Some(r) = strip_blob(rest) {
        rest = r;
    }
    match rest.strip_prefix(':') {
        Some(r) => (r, true),
        None => (s, false),
    }
}

/// The i;unicode-casemap form the keys are compared in.
fn fold(s: &str) -> String {
    super::text::casemap(s)
}

/// RFC 5256 §3 FROM/TO/CC: the `addr-mailbox` of the first address — the local part of a
/// mailbox, or the name of a group (what ENVELOPE puts in that place) — case-folded.
pub fn address_key(value: Option<&[u8]>) -> String {
    let first = value.and_then(|v| mime::addresses(v).into_iter().next());
    fold(&first.and_then(|a| a.2).unwrap_or_default())
}

/// RFC 5957 §3 DISPLAYFROM/DISPLAYTO: the display name of the first address (encoded words
/// decoded); without one, `mailbox@host` as for the address key; case-folded.
pub fn display_key(value: Option<&[u8]>) -> String {
    let Some(first) = value.and_then(|v| mime::addresses(v).into_iter().next()) else {
        return String::new();
    };
    match first.0.filter(|n| !n.trim().is_empty()) {
        Some(name) => fold(decode_words(name.trim_matches('"').as_bytes()).trim()),
        None => {
            let local = first.2.unwrap_or_default();
            match first.3.filter(|h| !h.is_empty()) {
                Some(host) => fold(&format!("{local}@{host}")),
                None => fold(&local),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> String {
        super::super::text::casemap(s)
    }

    /// RFC 5256 §2.1, step by step.
    #[test]
    fn base_subjects() {
        let b = |s: &str| base_subject(s.as_bytes());
        assert_eq!(b("Re: [list] Fwd: Hello (fwd)"), c("hello"));
        assert_eq!(b("  RE:re: FW: hello  "), c("hello"));
        assert_eq!(b("[fwd: Re: hello]"), c("hello"));
        assert_eq!(b("Re[2]: hello"), c("hello"));
        assert_eq!(b("[PATCH] [v2] hello"), c("hello"));
        assert_eq!(b("[only a blob]"), c("[only a blob]"), "a blob alone stays");
        assert_eq!(b("Hello\t\r\n  World (FWD) (fwd)"), c("hello world"));
        assert_eq!(b("=?utf-8?q?Re:_caf=C3=A9?="), c("café"));
        assert_eq!(
            b("Reply to this"),
            c("reply to this"),
            "no colon: not a leader"
        );
        assert_eq!(
            b("AW: hallo"),
            c("aw: hallo"),
            "only re, fw and fwd are leaders"
        );
    }

    #[test]
    fn reply_indicators() {
        let r = |s: &str| base_subject_and_reply(s.as_bytes());
        assert_eq!(r("Hello"), (c("hello"), false));
        assert_eq!(r("Re: Hello"), (c("hello"), true));
        assert_eq!(r("Hello (fwd)"), (c("hello"), true));
        assert_eq!(r("[fwd: Hello]"), (c("hello"), true));
        assert_eq!(r("[list] Hello"), (c("hello"), false), "a blob is not one");
        assert_eq!(r("  Hello  "), (c("hello"), false));
    }

    #[test]
    fn address_and_display_keys() {
        let k = |s: &str| address_key(Some(s.as_bytes()));
        assert_eq!(k("\"Zed\" <Alice@b.test>"), c("alice"));
        assert_eq!(k("Team: bob@c.test, carol@c.test;"), c("team"));
        assert_eq!(address_key(None), "");
        let d = |s: &str| display_key(Some(s.as_bytes()));
        assert_eq!(d("\"Zed Z\" <alice@b.test>"), c("zed z"));
        assert_eq!(d("alice@b.test"), c("alice@b.test"));
        assert_eq!(d("=?utf-8?q?=C3=89mile?= <e@b.test>"), c("émile"));
    }
}
