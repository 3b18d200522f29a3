//! Perl regular expressions as SpamAssassin rules write them (`/re/flags`, `m{re}flags`), and
//! their translation for the two engines that run them: Hyperscan (PCRE syntax over bytes)
//! and fancy-regex (backtracking, for what Hyperscan lacks: look-around, back-references).
//!
//! Rule files are byte strings: a pattern's characters are Latin-1 (one per octet), and the
//! fallback engine runs over text decoded the same way, so `\xc3` means the octet 0xC3 in
//! both engines.

/// A pattern and its `imsx` modifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerlRegex {
    /// The pattern between the delimiters (delimiter escapes removed).
    pub source: String,
    /// `/i`
    pub caseless: bool,
    /// `/m`
    pub multiline: bool,
    /// `/s`
    pub dotall: bool,
    /// `/x`
    pub extended: bool,
}

/// Parses a regex literal at the start of `s`; returns it and what follows it.
pub fn parse_literal(s: &str) -> Result<(PerlRegex, &str), String> {
    let s = s.trim_start();
    let (open, body) = match s.strip_prefix('m') {
        Some(rest) => {
            let c = rest.chars().next().ok_or("m without a delimiter")?;
            if c.is_alphanumeric() || c.is_whitespace() {
                return Err("m without a delimiter".into());
            }
            (c, &rest[c.len_utf8()..])
        }
        None if s.starts_with('/') => ('/', &s[1..]),
        None => return Err("a pattern must start with / or m".into()),
    };
    let close = match open {
        '{' => '}',
        '(' => ')',
        '[' => ']',
        '<' => '>',
        c => c,
    };
    let mut depth = 0usize;
    let mut source = String::new();
    let mut chars = body.char_indices();
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                // `\/` inside `/…/` is the delimiter itself.
                Some((_, d)) if d == close || d == open => {
                    if open == close {
                        source.push(d);
                    } else {
                        source.push('\\');
                        source.push(d);
                    }
                }
                Some((_, d)) => {
                    source.push('\\');
                    source.push(d);
                }
                None => return Err("pattern ends in a backslash".into()),
            }
            continue;
        }
        if c == close && depth == 0 {
            end = Some(i + c.len_utf8());
            break;
        }
        if open != close {
            if c == open {
                depth += 1;
            } else if c == close {
                depth -= 1;
            }
        }
        source.push(c);
    }
    let end = end.ok_or("unterminated pattern")?;
    let after = &body[end..];
    let nflags = after
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(after.len());
    let mut re = PerlRegex {
        source,
        caseless: false,
        multiline: false,
        dotall: false,
        extended: false,
    };
    for f in after[..nflags].chars() {
        match f {
            'i' => re.caseless = true,
            'm' => re.multiline = true,
            's' => re.dotall = true,
            'x' => re.extended = true,
            'g' | 'o' => {}
            other => return Err(format!("unknown modifier {other}")),
        }
    }
    if re.extended {
        re.source = strip_extended(&re.source);
        re.extended = false;
    }
    Ok((re, &after[nflags..]))
}

/// Removes `/x` whitespace and comments (outside character classes, unescaped).
fn strip_extended(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut chars = src.chars();
    let mut in_class = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.push(c);
                if let Some(d) = chars.next() {
                    out.push(d);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                // `[]…]` and `[^]…]`: a leading `]` is a member.
                let mut peek = chars.clone();
                match peek.next() {
                    Some('^') => {
                        out.push('^');
                        chars.next();
                        if chars.clone().next() == Some(']') {
                            out.push(']');
                            chars.next();
                        }
                    }
                    Some(']') => {
                        out.push(']');
                        chars.next();
                    }
                    _ => {}
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(c);
            }
            '#' if !in_class => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() && !in_class => {}
            c => out.push(c),
        }
    }
    out
}

/// The largest lower bound [`PerlRegex::relaxed`] keeps (`{10,64}` → `{10,}`): a run of ten
/// hex digits is rare where one of one is not, and so few paragraphs need confirming.
const RELAXED_KEEPS_LOW: u32 = 12;

impl PerlRegex {
    /// The pattern for Hyperscan: octets above 0x7F written as `\xHH` (Hyperscan reads the
    /// expression as bytes; a Latin-1 character must stay one octet).
    pub fn hyperscan_expression(&self) -> String {
        let mut out = String::with_capacity(self.source.len());
        for c in self.source.chars() {
            let n = c as u32;
            if n > 0x7f && n <= 0xff {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The pattern for fancy-regex, over Latin-1 text: Perl's `$` (end, or before a final
    /// newline) and `\Z`; `\h`; `\w`, `\d`, `\s` and their negations as ASCII classes (Perl
    /// on octets knows no others); the modifiers as an inline group.
    pub fn fancy_expression(&self) -> String {
        // Only the modifiers that are on (`(?-ms)` would turn /m and /s off).
        let flags: String = [
            (self.caseless, 'i'),
            (self.multiline, 'm'),
            (self.dotall, 's'),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, c)| *c)
        .collect();
        let mut out = if flags.is_empty() {
            String::new()
        } else {
            format!("(?{flags})")
        };
        out.push_str(&self.translate(false));
        out
    }

    /// The pattern for `regex::bytes` with Unicode off (the modifiers go to its builder):
    /// as [`PerlRegex::fancy_expression`], but Perl's `$` and `\Z` as an optional final
    /// newline (no look-ahead there) and octets as `\xHH`.
    pub fn bytes_expression(&self) -> String {
        self.translate(true)
    }

    /// The pattern body in one engine's dialect: `bytes` for `regex::bytes`, otherwise
    /// fancy-regex over Latin-1 text.
    fn translate(&self, bytes: bool) -> String {
        let end = if bytes { "(?:\\n?\\z)" } else { "(?=\\n?\\z)" };
        let mut out = String::with_capacity(self.source.len() + 8);
        let mut chars = self.source.chars().peekable();
        let mut in_class = false;
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('Z') if !in_class => out.push_str(end),
                    Some(d) => match ascii_class(d) {
                        Some(cls) if in_class => out.push_str(cls),
                        Some(cls) => {
                            out.push('[');
                            out.push_str(cls);
                            out.push(']');
                        }
                        None => {
                            out.push('\\');
                            out.push(d);
                        }
                    },
                    None => {}
                },
                '[' if !in_class => {
                    in_class = true;
                    out.push(c);
                    if chars.peek() == Some(&'^') {
                        out.push('^');
                        chars.next();
                    }
                    if chars.peek() == Some(&']') {
                        out.push_str("\\]");
                        chars.next();
                    }
                }
                '[' if chars.peek() == Some(&':') => out.push_str("[:"),
                '[' => out.push_str("\\["),
                ']' if in_class => {
                    in_class = false;
                    out.push(c);
                }
                '$' if !in_class && !self.multiline => out.push_str(end),
                c if (c as u32) > 0x7f && bytes => out.push_str(&format!("\\x{:02x}", c as u32)),
                c if (c as u32) > 0x7f => out.push_str(&format!("\\x{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        out
    }
}

/// Perl's class escapes as ASCII class items (for use inside `[…]`).
fn ascii_class(c: char) -> Option<&'static str> {
    Some(match c {
        'w' => "[:word:]",
        'W' => "[:^word:]",
        'd' => "[:digit:]",
        'D' => "[:^digit:]",
        's' => "[:space:]",
        'S' => "[:^space:]",
        'h' => " \\t",
        _ => return None,
    })
}

impl PerlRegex {
    /// How much bounded repetition multiplies the pattern: the sum, over every `{n,m}`
    /// quantifier, of (m − 1) × the width of what it repeats (nested repeats multiply).
    /// Hyperscan's compile time grows with it (a `[^>]{0,2048}` or a group repeated
    /// `{0,99}` takes seconds), so a costly pattern runs on fancy-regex instead.
    pub fn repeat_cost(&self) -> u64 {
        let b = self.source.as_bytes();
        // Each open group: (width so far, cost so far).
        let mut stack: Vec<(u64, u64)> = vec![(0, 0)];
        let mut last: u64 = 0;
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            let atom = match c {
                b'\\' => {
                    i += 2;
                    Some(1)
                }
                b'[' => {
                    let mut j = i + 1;
                    if b.get(j) == Some(&b'^') {
                        j += 1;
                    }
                    if b.get(j) == Some(&b']') {
                        j += 1;
                    }
                    while j < b.len() && b[j] != b']' {
                        if b[j] == b'\\' {
                            j += 1;
                        }
                        j += 1;
                    }
                    i = j + 1;
                    Some(1)
                }
                b'(' => {
                    stack.push((0, 0));
                    i += 1;
                    None
                }
                b')' => {
                    i += 1;
                    let (w, cost) = stack.pop().unwrap_or((0, 0));
                    if let Some(top) = stack.last_mut() {
                        top.1 = top.1.saturating_add(cost);
                    }
                    Some(w.max(1))
                }
                b'{' => {
                    let end = b[i..].iter().position(|&x| x == b'}').map(|p| i + p);
                    let q = end.and_then(|e| std::str::from_utf8(&b[i + 1..e]).ok());
                    let upper = q.and_then(|q| {
                        let (lo, hi) = q.split_once(',').unwrap_or((q, q));
                        let lo: u64 = lo.trim().parse().ok()?;
                        Some(if hi.trim().is_empty() {
                            lo + 1
                        } else {
                            hi.trim().parse().ok()?
                        })
                    });
                    match (upper, end) {
                        (Some(m), Some(e)) => {
                            if let Some(top) = stack.last_mut() {
                                let extra = m.saturating_sub(1).saturating_mul(last);
                                top.0 = top.0.saturating_add(extra);
                                top.1 = top.1.saturating_add(extra);
                            }
                            last = last.saturating_mul(m.max(1));
                            i = e + 1;
                            None
                        }
                        _ => {
                            i += 1;
                            Some(1)
                        }
                    }
                }
                _ => {
                    i += 1;
                    Some(1)
                }
            };
            if let Some(w) = atom {
                last = w;
                if let Some(top) = stack.last_mut() {
                    top.0 = top.0.saturating_add(w);
                }
            }
        }
        stack
            .into_iter()
            .map(|(_, c)| c)
            .fold(0, u64::saturating_add)
    }
}

impl PerlRegex {
    /// A superset of the pattern that is cheap to compile: every bounded quantifier
    /// `{n,m}` becomes `*` (n = 0), `{n,}` (n up to [`RELAXED_KEEPS_LOW`]) or `+`. Used as a
    /// Hyperscan prefilter for a pattern whose [`PerlRegex::repeat_cost`] is high; fancy-regex
    /// confirms the candidates.
    pub fn relaxed(&self) -> PerlRegex {
        let b = self.source.as_bytes();
        let mut out = String::with_capacity(self.source.len());
        let mut i = 0;
        let mut in_class = false;
        while i < b.len() {
            let c = b[i];
            match c {
                b'\\' => {
                    // The escaped character may take more than one octet.
                    let next = self.source[i + 1..]
                        .chars()
                        .next()
                        .map_or(0, char::len_utf8);
                    let end = i + 1 + next;
                    out.push_str(&self.source[i..end]);
                    i = end;
                    continue;
                }
                b'[' if !in_class => in_class = true,
                b']' if in_class => in_class = false,
                b'{' if !in_class => {
                    if let Some(e) = b[i..].iter().position(|&x| x == b'}').map(|p| i + p) {
                        let q = &self.source[i + 1..e];
                        let lo = q.split(',').next().map(str::trim);
                        let valid = !q.is_empty()
                            && q.split(',').count() <= 2
                            && q.split(',')
                                .all(|p| p.trim().bytes().all(|d| d.is_ascii_digit()))
                            && lo.is_some_and(|l| !l.is_empty());
                        if valid {
                            match lo.and_then(|l| l.parse::<u32>().ok()).unwrap_or(1) {
                                0 => out.push('*'),
                                n @ 2..=RELAXED_KEEPS_LOW => out.push_str(&format!("{{{n},}}")),
                                _ => out.push('+'),
                            }
                            i = e + 1;
                            continue;
                        }
                    }
                }
                _ => {}
            }
            let ch = self.source[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
        PerlRegex {
            source: out,
            ..self.clone()
        }
    }
}

/// Text as the fallback engine reads it: each octet one character (Latin-1).
pub fn latin1(bytes: &[u8]) -> String {
    // ASCII (most text) is already UTF-8: copied whole instead of a character at a time.
    if bytes.is_ascii() {
        return String::from_utf8(bytes.to_vec()).unwrap_or_default();
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    out.extend(bytes.iter().map(|&b| b as char));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_delimiters_flags_and_tail() {
        let (r, tail) = parse_literal(r"/a\/b/i [if-unset: x]").expect("ok");
        assert_eq!(r.source, "a/b");
        assert!(r.caseless && !r.multiline);
        assert_eq!(tail, " [if-unset: x]");
        let (r, _) = parse_literal(r"m{^https?://[\d.]+(?:[:/?#]|$)}i").expect("ok");
        assert_eq!(r.source, r"^https?://[\d.]+(?:[:/?#]|$)");
        let (r, _) = parse_literal(r"m!a{2}!sm").expect("ok");
        assert!(r.dotall && r.multiline);
        assert!(parse_literal("/open").is_err());
        assert!(parse_literal("plain").is_err());
        assert!(parse_literal("/a/q").is_err());
    }

    #[test]
    fn repeat_cost_and_relaxed_superset() {
        let (r, _) =
            parse_literal(r"/<a\s[^>]{0,2048}>(?:[^<]{0,10}<){0,99}x{3}[a{]/i").expect("ok");
        assert!(r.repeat_cost() > 3_000, "{}", r.repeat_cost());
        assert_eq!(r.relaxed().source, r"<a\s[^>]*>(?:[^<]*<)*x{3,}[a{]");
        // Lower bounds up to RELAXED_KEEPS_LOW are kept, larger ones become `+`.
        let (r, _) = parse_literal(r"/\s[-0-9a-f]{10,64}\s\w{1,5}x{13,20}/").expect("ok");
        assert_eq!(r.relaxed().source, r"\s[-0-9a-f]{10,}\s\w+x+");
        let (cheap, _) = parse_literal(r"/buy \w+ now/").expect("ok");
        assert_eq!(cheap.repeat_cost(), 0);
        // An escaped character of several octets (rule files read as Latin-1).
        let (wide, _) = parse_literal("/\\\u{e9}{2,9}x/").expect("ok");
        assert_eq!(wide.relaxed().source, "\\\u{e9}{2,}x");
    }

    #[test]
    fn extended_mode_drops_space_and_comments_not_classes() {
        let (r, _) = parse_literal("/< [^>]* \\s > [ x]# note\n z/x").expect("ok");
        assert_eq!(r.source, "<[^>]*\\s>[ x]z");
    }

    #[test]
    fn expressions_keep_octets_for_both_engines() {
        let (r, _) = parse_literal("/caf\u{e9}$/").expect("ok");
        assert_eq!(r.hyperscan_expression(), "caf\\xe9$");
        let fancy = fancy_regex::Regex::new(&r.fancy_expression()).expect("compiles");
        // "café\n" in Latin-1 text: `$` matches before the final newline, as in Perl.
        assert!(fancy.is_match(&latin1(b"caf\xe9\n")).expect("runs"));
        assert_eq!(latin1(b"plain"), "plain");
        assert_eq!(latin1(b"caf\xe9 \xff"), "caf\u{e9} \u{ff}");
        assert!(!fancy.is_match(&latin1(b"caf\xe9\nx")).expect("runs"));
        let (r, _) = parse_literal(r"/(?!viagra)v.agra/i").expect("ok");
        let fancy = fancy_regex::Regex::new(&r.fancy_expression()).expect("compiles");
        assert!(fancy.is_match("V1AGRA").expect("runs"));
        assert!(!fancy.is_match("viagra").expect("runs"));
    }

    #[test]
    fn multiline_and_dotall_stay_on_without_caseless() {
        // They were written `(?-ms)`, which turns both off.
        let (r, _) = parse_literal(r"/^b(?=.c)/sm").expect("ok");
        assert!(r.fancy_expression().starts_with("(?ms)"));
        let fancy = fancy_regex::Regex::new(&r.fancy_expression()).expect("compiles");
        assert!(fancy.is_match("a\nb\nc").expect("runs"));
        let (r, _) = parse_literal(r"/b(?=x)/").expect("ok");
        assert!(r.fancy_expression().starts_with('b'));
    }
}
