//! MIME structure of a stored message for FETCH (RFC 9051 §6.4.5 sections, §7.5.2 BODY,
//! BODYSTRUCTURE and ENVELOPE; RFC 2045/2046 MIME; RFC 5322 addresses).
//!
//! Works on the raw bytes (a memory-mapped file) with byte offsets, so section fetches return
//! exactly the stored octets. Nesting is bounded ([`MAX_DEPTH`]).

use super::encode::{nstring, string};

/// Deepest MIME nesting parsed; deeper parts are treated as opaque.
pub const MAX_DEPTH: usize = 20;

/// One MIME entity.
#[derive(Debug)]
pub struct Part<'a> {
    /// Header block including the empty line.
    pub header: &'a [u8],
    /// Body octets.
    pub body: &'a [u8],
    /// Content type, lower case (`text`, `plain`).
    pub ctype: (String, String),
    /// Content-Type parameters.
    pub params: Vec<(String, String)>,
    /// Sub-parts of a multipart.
    pub children: Vec<Part<'a>>,
    /// The encapsulated message of a message/rfc822 part.
    pub message: Option<Box<Part<'a>>>,
}

/// Splits `data` into header block and body.
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    if data.starts_with(b"\r\n") {
        return (&data[..2], &data[2..]);
    }
    if data.starts_with(b"\n") {
        return (&data[..1], &data[1..]);
    }
    let end = memchr::memmem::find(data, b"\r\n\r\n")
        .map(|p| p + 4)
        .or_else(|| memchr::memmem::find(data, b"\n\n").map(|p| p + 2))
        .unwrap_or(data.len());
    (&data[..end], &data[end..])
}

/// Header fields in order: (name, unfolded value without the leading space).
pub fn fields(header: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut out: Vec<(&[u8], Vec<u8>)> = Vec::new();
    for line in header.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if let Some(last) = out.last_mut() {
                last.1.extend_from_slice(line);
            }
            continue;
        }
        if let Some(c) = memchr::memchr(b':', line) {
            let name = trim(&line[..c]);
            let value = trim(&line[c + 1..]).to_vec();
            out.push((name, value));
        }
    }
    out
}

/// The raw lines (with their line endings, continuations included) of fields whose name is,
/// or with `not`, is not in `names` (RFC 9051 HEADER.FIELDS / HEADER.FIELDS.NOT), followed
/// by the empty line.
pub fn select_fields(header: &[u8], names: &[String], not: bool) -> Vec<u8> {
    let mut out = Vec::new();
    select_fields_into(header, names, not, &mut out);
    out
}

/// [`select_fields`] appending to `out` (no allocation when `out` has room).
pub fn select_fields_into(header: &[u8], names: &[String], not: bool, out: &mut Vec<u8>) {
    let mut keep = false;
    let mut rest = header;
    while !rest.is_empty() {
        let end = memchr::memchr(b'\n', rest)
            .map(|p| p + 1)
            .unwrap_or(rest.len());
        let line = &rest[..end];
        rest = &rest[end..];
        let bare = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if bare.is_empty() {
            break;
        }
        if line[0] != b' ' && line[0] != b'\t' {
            let name = memchr::memchr(b':', line).map(|c| trim(&line[..c]));
            keep = match name {
                Some(n) => {
                    let listed = names.iter().any(|x| x.as_bytes().eq_ignore_ascii_case(n));
                    listed != not
                }
                None => false,
            };
        }
        if keep {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The first field called `name`, unfolded.
pub fn field(header: &[u8], name: &str) -> Option<Vec<u8>> {
    fields(header)
        .into_iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v)
}

fn trim(s: &[u8]) -> &[u8] {
    let a = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    let e = s
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map(|p| p + 1)
        .unwrap_or(a);
    &s[a..e.max(a)]
}

/// Parses `type/subtype; a=b; c="d"` (RFC 2045 §5.1).
pub fn content_type(v: &[u8]) -> ((String, String), Vec<(String, String)>) {
    let s = String::from_utf8_lossy(v);
    let mut it = split_params(&s).into_iter();
    let t = it.next().unwrap_or_default();
    let (a, b) = t.split_once('/').unwrap_or((&t, ""));
    let (a, b) = (a.trim().to_ascii_lowercase(), b.trim().to_ascii_lowercase());
    let params = it.filter_map(|p| param(&p)).collect();
    if a.is_empty() || b.is_empty() {
        return (("text".into(), "plain".into()), params);
    }
    ((a, b), params)
}

fn param(p: &str) -> Option<(String, String)> {
    let (k, v) = p.split_once('=')?;
    let v = v.trim();
    let v = if v.starts_with('"') && v.ends_with('"') && v.len() >= 2 {
        v[1..v.len() - 1]
            .replace("\\\"", "\"")
            .replace("\\\\", "\\")
    } else {
        v.to_string()
    };
    Some((k.trim().to_ascii_lowercase(), v))
}

fn split_params(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut q = false;
    let mut esc = false;
    let mut depth = 0u32;
    for c in s.chars() {
        if esc {
            cur.push(c);
            esc = false;
            continue;
        }
        match c {
            '\\' if q => {
                esc = true;
                cur.push(c);
            }
            '"' => {
                q = !q;
                cur.push(c);
            }
            '(' if !q => depth += 1,
            ')' if !q => depth = depth.saturating_sub(1),
            ';' if !q && depth == 0 => out.push(std::mem::take(&mut cur)),
            _ if depth > 0 => {}
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// Parses the MIME structure of a message.
pub fn parse(data: &[u8]) -> Part<'_> {
    parse_entity(data, 0, ("text", "plain"))
}

fn parse_entity<'a>(data: &'a [u8], depth: usize, default: (&str, &str)) -> Part<'a> {
    let (header, body) = split(data);
    let (ctype, params) = match field(header, "Content-Type") {
        Some(v) => content_type(&v),
        None => ((default.0.into(), default.1.into()), Vec::new()),
    };
    let mut p = Part {
        header,
        body,
        ctype,
        params,
        children: Vec::new(),
        message: None,
    };
    if depth >= MAX_DEPTH {
        return p;
    }
    if p.ctype.0 == "multipart" {
        let boundary = p
            .params
            .iter()
            .find(|(k, _)| k == "boundary")
            .map(|(_, v)| v.clone());
        if let Some(b) = boundary {
            let def = if p.ctype.1 == "digest" {
                ("message", "rfc822")
            } else {
                ("text", "plain")
            };
            for chunk in multipart_chunks(body, b.as_bytes()) {
                p.children.push(parse_entity(chunk, depth + 1, def));
            }
        }
    } else if p.ctype == ("message".to_string(), "rfc822".to_string()) {
        p.message = Some(Box::new(parse_entity(body, depth + 1, ("text", "plain"))));
    }
    p
}

/// The bodies of a multipart (RFC 2046 §5.1.1), each without the CRLF that belongs to the
/// following boundary line.
fn multipart_chunks<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(boundary);
    let mut starts = Vec::new();
    let mut pos = 0;
    let mut closed = false;
    while let Some(i) = memchr::memmem::find(&body[pos..], &delim) {
        let at = pos + i;
        let line_start = at == 0 || body[at - 1] == b'\n';
        let after = at + delim.len();
        pos = after;
        if !line_start {
            continue;
        }
        let is_close = body[after..].starts_with(b"--");
        // the CRLF before the delimiter belongs to it
        let mut end = at;
        if end > 0 && body[end - 1] == b'\n' {
            end -= 1;
            if end > 0 && body[end - 1] == b'\r' {
                end -= 1;
            }
        }
        let next = memchr::memchr(b'\n', &body[after..])
            .map(|p| after + p + 1)
            .unwrap_or(body.len());
        starts.push((end, next));
        if is_close {
            closed = true;
            break;
        }
        pos = next;
    }
    let mut out = Vec::new();
    for w in starts.windows(2) {
        let (_, s) = w[0];
        let (e, _) = w[1];
        if s <= e {
            out.push(&body[s..e]);
        }
    }
    if !closed && let Some(&(_, s)) = starts.last() {
        out.push(&body[s..]);
    }
    out
}

impl<'a> Part<'a> {
    fn is_message(&self) -> bool {
        self.message.is_some()
    }

    /// RFC 9051 §6.4.5: the part named by `path` (numbers from 1).
    pub fn resolve(&self, path: &[u32]) -> Option<&Part<'a>> {
        let mut cur = self;
        for (i, &n) in path.iter().enumerate() {
            let container = match &cur.message {
                Some(m) if i > 0 => m,
                _ => cur,
            };
            cur = if container.ctype.0 == "multipart" {
                container.children.get(n as usize - 1)?
            } else if n == 1 {
                container
            } else {
                return None;
            };
        }
        Some(cur)
    }

    /// The encapsulated message for HEADER/TEXT of a part (or the message itself at the top).
    pub fn as_message(&self, top: bool) -> Option<&Part<'a>> {
        if top {
            Some(self)
        } else {
            self.message.as_deref()
        }
    }

    fn lines(&self) -> usize {
        let n = memchr::memchr_iter(b'\n', self.body).count();
        if self.body.last().is_some_and(|b| *b != b'\n') {
            n + 1
        } else {
            n
        }
    }

    /// Appends BODYSTRUCTURE (`extended`) or BODY to `out` (RFC 9051 §7.5.2).
    pub fn write_structure(&self, out: &mut Vec<u8>, extended: bool) {
        out.push(b'(');
        if self.ctype.0 == "multipart" {
            if self.children.is_empty() {
                // RFC 9051: a multipart has at least one part; show an empty text part.
                out.extend_from_slice(b"(\"text\" \"plain\" NIL NIL NIL \"7bit\" 0 0)");
            }
            for c in &self.children {
                c.write_structure(out, extended);
            }
            out.push(b' ');
            string(out, self.ctype.1.as_bytes());
            if extended {
                out.push(b' ');
                self.write_params(out);
                self.write_extension_tail(out);
            }
        } else {
            string(out, self.ctype.0.as_bytes());
            out.push(b' ');
            string(out, self.ctype.1.as_bytes());
            out.push(b' ');
            self.write_params(out);
            out.push(b' ');
            nstring(out, field(self.header, "Content-ID").as_deref());
            out.push(b' ');
            nstring(out, field(self.header, "Content-Description").as_deref());
            out.push(b' ');
            let enc = field(self.header, "Content-Transfer-Encoding")
                .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
                .unwrap_or_else(|| "7bit".into());
            string(out, enc.as_bytes());
            out.extend_from_slice(format!(" {}", self.body.len()).as_bytes());
            if let Some(m) = &self.message {
                out.push(b' ');
                write_envelope(out, m.header);
                out.push(b' ');
                m.write_structure(out, extended);
                out.extend_from_slice(format!(" {}", self.lines()).as_bytes());
            } else if self.ctype.0 == "text" {
                out.extend_from_slice(format!(" {}", self.lines()).as_bytes());
            }
            if extended {
                out.push(b' ');
                nstring(out, field(self.header, "Content-MD5").as_deref());
                self.write_extension_tail(out);
            }
        }
        out.push(b')');
    }

    /// RFC 9051 §7.5.2 extension data shared by both part kinds: disposition, language,
    /// location (each preceded by a space).
    fn write_extension_tail(&self, out: &mut Vec<u8>) {
        out.push(b' ');
        self.write_disposition(out);
        out.push(b' ');
        nstring(out, field(self.header, "Content-Language").as_deref());
        out.push(b' ');
        nstring(out, field(self.header, "Content-Location").as_deref());
    }

    fn write_params(&self, out: &mut Vec<u8>) {
        let params: Vec<_> = if self.params.is_empty() && self.ctype.0 == "text" {
            vec![("charset".to_string(), "us-ascii".to_string())]
        } else {
            self.params.clone()
        };
        write_param_list(out, &params);
    }

    fn write_disposition(&self, out: &mut Vec<u8>) {
        match field(self.header, "Content-Disposition") {
            None => out.extend_from_slice(b"NIL"),
            Some(v) => {
                let s = String::from_utf8_lossy(&v);
                let mut it = split_params(&s).into_iter();
                let kind = it.next().unwrap_or_default().to_ascii_lowercase();
                let params: Vec<_> = it.filter_map(|p| param(&p)).collect();
                out.push(b'(');
                string(out, kind.as_bytes());
                out.push(b' ');
                write_param_list(out, &params);
                out.push(b')');
            }
        }
    }

    /// True if this part is a message (top level or message/rfc822).
    pub fn has_message(&self) -> bool {
        self.is_message()
    }
}

fn write_param_list(out: &mut Vec<u8>, params: &[(String, String)]) {
    if params.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        string(out, k.as_bytes());
        out.push(b' ');
        string(out, v.as_bytes());
    }
    out.push(b')');
}

/// One address of an address list: display name, route, local part, domain. A group start
/// has no domain and the group name as local part; a group end is all `None`.
pub type Address = (
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Parses an RFC 5322 address list (lenient; groups kept, source routes kept in the route
/// field, comments ignored except one after a bare addr-spec, which is its display name).
/// RFC 5322 §3.4 address-list tokens: words ('w'), quoted strings ('q', unescaped), comments
/// ('c', their text) and the specials `<>,:;@`; white space is dropped.
fn address_tokens(s: &str) -> Vec<(char, String)> {
    let mut tokens: Vec<(char, String)> = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                let mut q = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                q.push(n);
                            }
                        }
                        '"' => break,
                        _ => q.push(c),
                    }
                }
                tokens.push(('q', q));
            }
            '(' => {
                // RFC 5322 §3.2.2 comment: nested, quoted pairs unescaped; kept as a token
                // (a comment after an addr-spec is the display name, RFC 9051 §7.5.2).
                let mut depth = 1;
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                text.push(n);
                            }
                            continue;
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    text.push(c);
                }
                tokens.push(('c', text.split_whitespace().collect::<Vec<_>>().join(" ")));
            }
            '<' | '>' | ',' | ':' | ';' | '@' => tokens.push((c, String::new())),
            c if c.is_whitespace() => {}
            _ => {
                let mut w = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || "\"(<>,:;@".contains(n) {
                        break;
                    }
                    w.push(n);
                    chars.next();
                }
                tokens.push(('w', w));
            }
        }
    }
    tokens
}

pub fn addresses(v: &[u8]) -> Vec<Address> {
    let s = String::from_utf8_lossy(v);
    let mut out = Vec::new();
    let tokens = address_tokens(&s);
    // Walk the tokens one mailbox (or group marker) at a time.
    let mut i = 0;
    let mut in_group = false;
    while i < tokens.len() && out.len() < 1000 {
        let start = i;
        while i < tokens.len() && !matches!(tokens[i].0, ',' | ':' | ';' | '<') {
            i += 1;
        }
        let words = |a: usize, b: usize| -> String {
            tokens[a..b]
                .iter()
                .filter(|(k, _)| *k != 'c')
                .map(|(k, w)| {
                    if *k == '@' {
                        "@".to_string()
                    } else {
                        w.clone()
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
                .replace(" @ ", "@")
        };
        match tokens.get(i).map(|t| t.0) {
            Some(':') if !in_group => {
                out.push((None, None, Some(words(start, i)), None));
                in_group = true;
                i += 1;
            }
            Some('<') => {
                let name = words(start, i);
                let close = tokens[i..]
                    .iter()
                    .position(|t| t.0 == '>')
                    .map(|p| i + p)
                    .unwrap_or(tokens.len());
                let spec: String = tokens[i + 1..close]
                    .iter()
                    .filter(|(k, _)| *k != 'c')
                    .map(|(k, w)| match k {
                        '@' => "@".to_string(),
                        ':' => ":".to_string(),
                        ',' => ",".to_string(),
                        _ => w.clone(),
                    })
                    .collect();
                // RFC 5322 §4.4 obs-route (`@a,@b:user@host`): the route goes to ENVELOPE's
                // adl field (RFC 9051 §7.5.2), the rest is the addr-spec.
                let (route, spec) = match spec.rsplit_once(':') {
                    Some((r, a)) => ((!r.is_empty()).then(|| r.to_string()), a.to_string()),
                    None => (None, spec),
                };
                let (l, d) = spec.rsplit_once('@').unwrap_or((&spec, ""));
                out.push((
                    (!name.is_empty()).then_some(name),
                    route,
                    Some(l.to_string()),
                    Some(d.to_string()),
                ));
                i = close + 1;
                while i < tokens.len() && !matches!(tokens[i].0, ',' | ';') {
                    i += 1;
                }
            }
            _ => {
                let span = &tokens[start..i];
                if span.iter().any(|(k, _)| *k != 'c') {
                    let spec: String = span
                        .iter()
                        .filter(|(k, _)| *k != 'c')
                        .map(|(k, w)| if *k == '@' { "@".into() } else { w.clone() })
                        .collect();
                    // `user@host (Real Name)`: the comment after the address names it.
                    let name = match span.last() {
                        Some(('c', text)) if !text.is_empty() => Some(text.clone()),
                        _ => None,
                    };
                    let (l, d) = spec.rsplit_once('@').unwrap_or((&spec, ""));
                    out.push((name, None, Some(l.to_string()), Some(d.to_string())));
                }
            }
        }
        if let Some(t) = tokens.get(i) {
            if t.0 == ';' && in_group {
                out.push((None, None, None, None));
                in_group = false;
            }
            if matches!(t.0, ',' | ';') {
                i += 1;
            }
        }
        if i == start {
            // A stray special (a second ':' inside a group, a lone '>'): skip it.
            i += 1;
        }
    }
    if in_group {
        out.push((None, None, None, None));
    }
    out
}

fn write_addresses(out: &mut Vec<u8>, v: Option<&[u8]>) {
    let list = v.map(addresses).unwrap_or_default();
    if list.is_empty() {
        out.extend_from_slice(b"NIL");
        return;
    }
    out.push(b'(');
    for (n, r, l, d) in list {
        out.push(b'(');
        nstring(out, n.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, r.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, l.as_deref().map(str::as_bytes));
        out.push(b' ');
        nstring(out, d.as_deref().map(str::as_bytes));
        out.push(b')');
    }
    out.push(b')');
}

/// Appends the ENVELOPE of a message with header block `h` (RFC 9051 §7.5.2).
pub fn write_envelope(out: &mut Vec<u8>, h: &[u8]) {
    let f = fields(h);
    let get = |n: &str| {
        f.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(n.as_bytes()))
            .map(|(_, v)| v.as_slice())
    };
    out.push(b'(');
    nstring(out, get("Date"));
    out.push(b' ');
    nstring(out, get("Subject"));
    let from = get("From");
    for (name, dflt) in [
        ("From", None),
        ("Sender", from),
        ("Reply-To", from),
        ("To", None),
        ("Cc", None),
        ("Bcc", None),
    ] {
        out.push(b' ');
        let v = get(name).filter(|v| !v.is_empty()).or(dflt);
        write_addresses(out, v);
    }
    out.push(b' ');
    nstring(out, get("In-Reply-To"));
    out.push(b' ');
    nstring(out, get("Message-ID"));
    out.push(b')');
}

/// A `Date:` value's parts as written (RFC 5322 §3.3): the calendar day (days since
/// 1970-01-01), the seconds into that day, and the zone's offset from UTC in seconds.
pub fn date_parts(v: &[u8]) -> Option<(i64, i64, i64)> {
    let s = String::from_utf8_lossy(v);
    let s = s.split_once(',').map(|(_, r)| r).unwrap_or(&s);
    let mut it = s.split_whitespace();
    let d: u32 = it.next()?.parse().ok()?;
    let m = it.next()?.to_ascii_uppercase();
    const M: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    let mi = M.iter().position(|x| m.starts_with(x))? as u32 + 1;
    let mut y: i64 = it.next()?.parse().ok()?;
    // RFC 5322 §4.3: two-digit years from 50 are 19xx, below 50 20xx; three digits add 1900.
    if y < 50 {
        y += 2000;
    } else if y < 1000 {
        y += 1900;
    }
    let t: Vec<i64> = it
        .next()
        .unwrap_or("0:0")
        .split(':')
        .filter_map(|x| x.parse().ok())
        .collect();
    let zone = it.next().unwrap_or("+0000");
    let off = match zone.as_bytes() {
        [sign @ (b'+' | b'-'), digits @ ..] if digits.len() == 4 => {
            let n: i64 = zone[1..].parse().unwrap_or(0);
            let o = (n / 100) * 3600 + (n % 100) * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => 0,
    };
    let day = super::types::days_from_civil(y, mi, d);
    let secs = t.first().copied().unwrap_or(0) * 3600
        + t.get(1).copied().unwrap_or(0) * 60
        + t.get(2).copied().unwrap_or(0);
    Some((day, secs, off))
}

/// A `Date:` value as seconds since the epoch, in UTC (for SORT DATE, RFC 5256 §2.2).
pub fn parse_date(v: &[u8]) -> Option<i64> {
    let (day, secs, off) = date_parts(v)?;
    Some(day * 86400 + secs - off)
}

/// The calendar day a `Date:` value names, as written, its time and zone disregarded (for
/// SENTON/SENTBEFORE/SENTSINCE, RFC 9051 §6.4.4): days since 1970-01-01.
pub fn sent_day(v: &[u8]) -> Option<i64> {
    date_parts(v).map(|(day, _, _)| day)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: \"Al, B\" <al@x.test>\r\nTo: a@b.test, Grp: c@d.test;\r\nSubject: hi\r\n\
Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\npreamble\r\n--XX\r\nContent-Type: text/plain\r\n\r\n\
hello\r\n--XX\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--XX--\r\n";

    #[test]
    fn structure_and_sections() {
        let p = parse(MSG);
        assert_eq!(p.children.len(), 2);
        assert_eq!(p.resolve(&[1]).unwrap().body, b"hello");
        let inner = p.resolve(&[2]).unwrap();
        assert_eq!(inner.message.as_ref().unwrap().body, b"inner body");
        assert_eq!(p.resolve(&[2, 1]).unwrap().body, b"inner body");
        assert!(p.resolve(&[3]).is_none());
        let mut o = Vec::new();
        p.write_structure(&mut o, false);
        let s = String::from_utf8(o).unwrap();
        assert!(
            s.starts_with("((\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 5 1)"),
            "{s}"
        );
        assert!(s.ends_with(" \"mixed\")"), "{s}");
    }

    #[test]
    fn envelope_addresses() {
        let (h, _) = split(MSG);
        let mut o = Vec::new();
        write_envelope(&mut o, h);
        let s = String::from_utf8(o).unwrap();
        assert!(s.contains("((\"Al, B\" NIL \"al\" \"x.test\"))"), "{s}");
        assert!(s.contains("((NIL NIL \"a\" \"b.test\")(NIL NIL \"Grp\" NIL)(NIL NIL \"c\" \"d.test\")(NIL NIL NIL NIL))"), "{s}");
        assert_eq!(
            select_fields(h, &["subject".into()], false),
            b"Subject: hi\r\n\r\n"
        );
    }

    #[test]
    fn stray_specials_do_not_stall_the_address_parser() {
        // Found by the imap_mime fuzz target: used to loop forever.
        let a = addresses(b"5\r%\0\0\0:C: ");
        assert!(a.len() <= 3);
        let _ = addresses(b"g: a: b; > , < ;;");
    }

    /// RFC 5322 §3.4, §4.4 and RFC 9051 §7.5.2, the issue's cases.
    #[test]
    fn addresses_with_comments_routes_and_groups() {
        let a = |s: &str| addresses(s.as_bytes());
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            a("<user (comment)@ (comment) domain.org>"),
            vec![(None, None, some("user"), some("domain.org"))]
        );
        assert_eq!(
            a("user@domain (Real Name)"),
            vec![(some("Real Name"), None, some("user"), some("domain"))]
        );
        assert_eq!(
            a("Joe <@route1,@route2:joe@example.org>"),
            vec![(
                some("Joe"),
                some("@route1,@route2"),
                some("joe"),
                some("example.org")
            )]
        );
        assert_eq!(
            a("group: a@b (x), c@d;"),
            vec![
                (None, None, some("group"), None),
                (some("x"), None, some("a"), some("b")),
                (None, None, some("c"), some("d")),
                (None, None, None, None),
            ]
        );
        let mut env = Vec::new();
        write_envelope(
            &mut env,
            b"From: user@domain (Real Name)\r\nTo: <@r:u@h>\r\n\r\n",
        );
        let env = String::from_utf8(env).unwrap();
        assert!(
            env.contains("((\"Real Name\" NIL \"user\" \"domain\"))"),
            "{env}"
        );
        assert!(env.contains("((NIL \"@r\" \"u\" \"h\"))"), "{env}");
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date(b"Tue, 1 Jul 2003 10:52:37 +0200"),
            Some(1057049557)
        );
        // RFC 9051 §6.4.4: the sent date disregards time and zone. 25 March 2007 at midnight
        // +0200 is 24 March in UTC, but SENTON 25-Mar-2007.
        let day = |y, m, d| super::super::types::days_from_civil(y, m, d);
        assert_eq!(
            sent_day(b"Sun, 25 Mar 2007 00:00 +0200"),
            Some(day(2007, 3, 25))
        );
        assert_eq!(
            sent_day(b"25 Mar 2007 23:59:59 -1100"),
            Some(day(2007, 3, 25))
        );
        assert_eq!(
            parse_date(b"Sun, 25 Mar 2007 00:00 +0200").map(|s| s.div_euclid(86400)),
            Some(day(2007, 3, 24))
        );
    }
}
