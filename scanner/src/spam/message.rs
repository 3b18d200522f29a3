//! The message as SpamAssassin's rule types see it: header values (decoded, raw, first
//! address, display name, pseudo-headers), the rendered body as paragraphs with the Subject
//! first, the raw decoded text parts in chunks, the links, and each MIME part's headers.

use super::rules::{HeaderForm, HeaderTarget};
use mail_parser::{Message, MessagePart, PartType};
use std::borrow::Cow;

/// One header field.
#[derive(Debug, Clone)]
pub struct Field {
    /// Lower-case name.
    pub name: String,
    /// The value as written after the colon (folding kept, CR removed, no final newline).
    pub raw: String,
    /// Unfolded, RFC 2047 words decoded.
    pub decoded: String,
}

/// What rules read of one message.
#[derive(Debug, Default)]
pub struct View {
    /// Header fields of each MIME part (the top level first).
    pub part_fields: Vec<Vec<Field>>,
    /// Rendered text: the Subject, then each paragraph of each text part, whitespace folded.
    pub paragraphs: Vec<Vec<u8>>,
    /// Decoded text parts, HTML kept, in chunks of whole lines (about 2 KiB, as SpamAssassin).
    pub raw_chunks: Vec<Vec<u8>>,
    /// Links found in the text and HTML parts.
    pub uris: Vec<Vec<u8>>,
    /// The envelope sender.
    pub envelope_from: String,
    /// Text parts' rendered length in octets.
    pub text_len: usize,
    /// Whether there is an HTML part.
    pub has_html: bool,
    /// Whether there is a text/plain part.
    pub has_plain: bool,
}

/// Target length of a rawbody chunk.
const CHUNK: usize = 2048;

/// How much of each text part's rendered text `body` rules read: SpamAssassin's
/// `body_part_scan_size` default (Conf.pm, 4.0), applied the same way.
pub const BODY_PART_SCAN_SIZE: usize = 50_000;
/// How much of each decoded text part `rawbody` rules read: SpamAssassin's
/// `rawbody_part_scan_size` default.
pub const RAWBODY_PART_SCAN_SIZE: usize = 500_000;

/// The first `limit` octets of `text` as SpamAssassin truncates a part for scanning
/// (Message.pm `get_body_text_array_common`): past `limit`, up to and including the first of
/// `breaks` (tried in order) found within 1,024 octets after it, otherwise at `limit` (moved
/// back to a character boundary).
fn scan_prefix<'t>(text: &'t str, limit: usize, breaks: &[u8]) -> &'t str {
    if text.len() <= limit {
        return text;
    }
    let b = text.as_bytes();
    let window = &b[limit..b.len().min(limit + 1025)];
    for &c in breaks {
        if let Some(p) = window.iter().position(|&x| x == c) {
            return &text[..limit + p + 1];
        }
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn fields_of(raw: &[u8], part: &MessagePart<'_>) -> Vec<Field> {
    part.headers
        .iter()
        .map(|h| {
            let start = h.offset_start() as usize;
            let end = (h.offset_end() as usize).min(raw.len());
            let bytes = raw.get(start..end).unwrap_or_default();
            let raw_value = String::from_utf8_lossy(bytes)
                .replace('\r', "")
                .trim_end_matches('\n')
                .trim_start()
                .to_string();
            let decoded = match mail_parser::parsers::MessageStream::new(bytes).parse_unstructured()
            {
                mail_parser::HeaderValue::Text(t) => t.into_owned(),
                _ => unfold(&raw_value),
            };
            Field {
                name: h.name.as_str().to_ascii_lowercase(),
                raw: raw_value,
                decoded,
            }
        })
        .collect()
}

fn unfold(s: &str) -> String {
    s.split('\n').map(str::trim).collect::<Vec<_>>().join(" ")
}

impl View {
    /// Builds the view of `raw` (parsed as `msg`), sent by `envelope_from`.
    pub fn new(raw: &[u8], msg: Option<&Message<'_>>, envelope_from: &str) -> View {
        let mut v = View {
            envelope_from: envelope_from.to_string(),
            ..View::default()
        };
        let Some(msg) = msg else {
            return v;
        };
        for part in &msg.parts {
            v.part_fields.push(fields_of(raw, part));
        }
        let subject = v.decoded("subject").unwrap_or_default();
        v.paragraphs.push(fold_ws(subject.as_bytes()));
        let mut raw_text = String::new();
        for part in &msg.parts {
            let text = match &part.body {
                PartType::Text(t) => {
                    v.has_plain = true;
                    raw_text.push_str(scan_prefix(t, RAWBODY_PART_SCAN_SIZE, b"\n> "));
                    raw_text.push('\n');
                    Cow::Borrowed(&**t)
                }
                PartType::Html(h) => {
                    v.has_html = true;
                    raw_text.push_str(scan_prefix(h, RAWBODY_PART_SCAN_SIZE, b"\n> "));
                    raw_text.push('\n');
                    find_html_links(h, &mut v.uris);
                    Cow::Owned(mail_parser::decoders::html::html_to_text(h))
                }
                _ => continue,
            };
            v.text_len += text.len();
            let text = scan_prefix(&text, BODY_PART_SCAN_SIZE, b"\n ");
            find_text_links(text, &mut v.uris);
            for p in paragraphs(text) {
                v.paragraphs.push(p);
            }
        }
        v.raw_chunks = chunks(raw_text.as_bytes());
        v.uris.sort();
        v.uris.dedup();
        v
    }

    /// The message's own (top-level) header fields, in order.
    pub fn fields(&self) -> &[Field] {
        self.part_fields.first().map_or(&[], Vec::as_slice)
    }

    /// The decoded values of every field called `name`, joined by newlines.
    pub fn decoded(&self, name: &str) -> Option<String> {
        join(
            self.fields()
                .iter()
                .filter(|f| f.name == name)
                .map(|f| &f.decoded),
        )
    }

    /// Whether a field called `name` (lower case) exists; `:tocc` and `:messageid` stand for
    /// any of the fields they read.
    pub fn exists(&self, name: &str) -> bool {
        let names = pseudo_names(name).unwrap_or(std::slice::from_ref(&name));
        self.fields()
            .iter()
            .any(|f| names.contains(&f.name.as_str()))
    }

    /// The text a header rule of `target` reads, `None` when the header is absent and no
    /// `if-unset` value is given.
    pub fn header_text(&self, target: &HeaderTarget) -> Option<Vec<u8>> {
        header_text_of(self.fields(), target, &self.envelope_from)
    }
}

/// The text a header rule of `target` reads from `fields`.
pub fn header_text_of(fields: &[Field], target: &HeaderTarget, env_from: &str) -> Option<Vec<u8>> {
    let pick = |f: &Field| match target.form {
        HeaderForm::Raw => f.raw.clone(),
        HeaderForm::Decoded => f.decoded.clone(),
        HeaderForm::Addr => first_address(&f.decoded),
        HeaderForm::Name => display_name(&f.decoded),
    };
    let single = [target.name.as_str()];
    let names: &[&str] = match target.name.as_str() {
        n if pseudo_names(n).is_some() => pseudo_names(n).unwrap_or_default(),
        ":all" => {
            // Every field as `Name: value`, one per line.
            let mut s = String::new();
            for f in fields {
                s.push_str(&f.name);
                s.push_str(": ");
                s.push_str(&pick(f));
                s.push('\n');
            }
            return Some(s.into_bytes());
        }
        ":envelopefrom" => return Some(env_from.as_bytes().to_vec()),
        _ => &single,
    };
    let mut values = fields
        .iter()
        .filter(|f| names.contains(&f.name.as_str()))
        .map(pick)
        .peekable();
    if values.peek().is_none() {
        return target.if_unset.as_ref().map(|u| u.clone().into_bytes());
    }
    // SpamAssassin: `:addr` and `:name` give the first field's address or name alone;
    // otherwise every value, each with its line end.
    if matches!(target.form, HeaderForm::Addr | HeaderForm::Name) {
        return values.next().map(String::into_bytes);
    }
    let mut s = String::new();
    for v in values {
        s.push_str(&v);
        s.push('\n');
    }
    Some(s.into_bytes())
}

/// The fields a pseudo-header reads.
fn pseudo_names(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        ":tocc" => &["to", "cc"],
        ":messageid" => &[
            "message-id",
            "resent-message-id",
            "x-message-id",
            "x-original-message-id",
        ],
        _ => return None,
    })
}

fn join<'a>(mut it: impl Iterator<Item = &'a String>) -> Option<String> {
    let first = it.next()?.clone();
    Some(it.fold(first, |mut acc, s| {
        acc.push('\n');
        acc.push_str(s);
        acc
    }))
}

/// The first address of an address list (`Name <a@b>` gives `a@b`; a bare address itself).
pub fn first_address(v: &str) -> String {
    if let Some(i) = v.find('<')
        && let Some(j) = v[i..].find('>')
    {
        return v[i + 1..i + j].trim().to_string();
    }
    v.split([',', ' ', '\t', '\n'])
        .find(|w| w.contains('@'))
        .unwrap_or(v.trim())
        .trim_matches(|c| c == '(' || c == ')')
        .to_string()
}

/// The display name of the first address (`"Name" <a@b>` gives `Name`; `a@b (Name)` too).
pub fn display_name(v: &str) -> String {
    if let Some(i) = v.find('<') {
        return v[..i].trim().trim_matches('"').trim().to_string();
    }
    if let (Some(i), Some(j)) = (v.find('('), v.rfind(')'))
        && i < j
    {
        return v[i + 1..j].trim().to_string();
    }
    String::new()
}

/// Paragraphs of rendered text (split on blank lines), whitespace folded to single spaces.
fn paragraphs(text: &str) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        push_words(&mut cur, line.as_bytes());
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Appends the words of `b` (runs of octets other than ASCII white space) to `out`, one
/// space between words.
fn push_words(out: &mut Vec<u8>, b: &[u8]) {
    for word in b.split(u8::is_ascii_whitespace).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

/// `b` with runs of ASCII white space folded to one space, none at either end.
fn fold_ws(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    push_words(&mut out, b);
    out
}

/// Whole lines grouped into chunks of about [`CHUNK`] octets.
fn chunks(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Vec<u8> = Vec::new();
    for line in text.split_inclusive(|&b| b == b'\n') {
        cur.extend_from_slice(line);
        if cur.len() >= CHUNK {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Links in plain text: `scheme://…`, `www.…`, `mailto:…`.
/// The host of a link (`http://user@Host:8080/x` → `Host`), after the scheme (or of a bare
/// `www.` link); `None` for `mailto:` and links without a host.
pub fn uri_host(u: &str) -> Option<&str> {
    if u.get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("mailto:"))
    {
        return None;
    }
    let rest = u.split_once("://").map_or(u, |(_, r)| r);
    let host = rest
        .split(['/', '?', '#', ':', '\\'])
        .next()
        .unwrap_or("")
        .rsplit('@')
        .next()
        .unwrap_or("");
    (!host.is_empty()).then_some(host)
}

/// The distinct hosts (lowercased) that the links of `msg`'s text and HTML parts point to,
/// at most `max`, in the order first seen.
pub fn link_hosts(msg: &Message<'_>, max: usize) -> Vec<String> {
    let mut links = Vec::new();
    for part in &msg.parts {
        match &part.body {
            PartType::Text(t) => find_text_links(t, &mut links),
            PartType::Html(h) => find_html_links(h, &mut links),
            _ => {}
        }
    }
    let mut hosts: Vec<String> = Vec::new();
    for l in &links {
        let Some(h) = std::str::from_utf8(l).ok().and_then(uri_host) else {
            continue;
        };
        let h = h.to_ascii_lowercase();
        if !hosts.contains(&h) {
            hosts.push(h);
            if hosts.len() == max {
                break;
            }
        }
    }
    hosts
}

fn find_text_links(text: &str, out: &mut Vec<Vec<u8>>) {
    let b = text.as_bytes();
    let end_of = |from: usize| {
        b[from..]
            .iter()
            .position(|&c| {
                c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b'<' | b'>' | b')' | b']')
            })
            .map_or(b.len(), |p| from + p)
    };
    let mut i = 0;
    while i < b.len() {
        // Every link starts with h, f, w or m (either case): skip to the next such octet.
        match b[i..]
            .iter()
            .position(|&c| matches!(c | 0x20, b'h' | b'f' | b'w' | b'm'))
        {
            Some(p) => i += p,
            None => break,
        }
        let rest = &b[i..];
        let starts = |p: &[u8]| rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p);
        let word_start = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        let hit = if word_start && (starts(b"http://") || starts(b"https://") || starts(b"ftp://"))
        {
            Some((i, None))
        } else if word_start && starts(b"www.") {
            Some((i, Some("http://")))
        } else if word_start && starts(b"mailto:") {
            Some((i, None))
        } else {
            None
        };
        match hit {
            Some((s, prefix)) => {
                let e = end_of(s);
                let mut u = prefix.map_or_else(Vec::new, |p| p.as_bytes().to_vec());
                u.extend_from_slice(b[s..e].strip_suffix(b".").unwrap_or(&b[s..e]));
                out.push(u);
                i = e.max(i + 1);
            }
            None => i += 1,
        }
    }
}

/// Links in HTML: `href=` and `src=` attribute values.
fn find_html_links(html: &str, out: &mut Vec<Vec<u8>>) {
    let b = html.as_bytes();
    let lower = html.to_ascii_lowercase();
    for attr in ["href=", "src=", "action="] {
        for (pos, _) in lower.match_indices(attr) {
            let mut s = pos + attr.len();
            let quote = b.get(s).copied().filter(|&c| c == b'"' || c == b'\'');
            if quote.is_some() {
                s += 1;
            }
            let e = b[s..]
                .iter()
                .position(|&c| match quote {
                    Some(q) => c == q,
                    None => c.is_ascii_whitespace() || c == b'>',
                })
                .map_or(b.len(), |p| s + p);
            let v = html[s..e].trim();
            if !v.is_empty() && !v.starts_with('#') {
                out.push(v.as_bytes().to_vec());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(raw: &[u8]) -> View {
        let msg = mail_parser::MessageParser::default().parse(raw);
        View::new(raw, msg.as_ref(), "env@example.test")
    }

    #[test]
    fn headers_in_every_form() {
        let v = view(
            b"From: \"Joe Q\" <joe@example.test>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\
              To: a@x.test\r\nCc: b@y.test\r\nX-Long: one\r\n two\r\n\r\nhi\r\n",
        );
        let t = |name: &str, form| HeaderTarget {
            name: name.into(),
            form,
            if_unset: None,
        };
        assert_eq!(
            v.header_text(&t("subject", HeaderForm::Decoded)),
            Some("café\n".into())
        );
        assert_eq!(
            v.header_text(&t("subject", HeaderForm::Raw)),
            Some("=?utf-8?q?caf=C3=A9?=\n".into())
        );
        assert_eq!(
            v.header_text(&t("from", HeaderForm::Addr)),
            Some("joe@example.test".into())
        );
        assert_eq!(
            v.header_text(&t("from", HeaderForm::Name)),
            Some("Joe Q".into())
        );
        assert!(v.exists(":tocc") && v.exists("cc") && !v.exists(":messageid"));
        assert_eq!(
            v.header_text(&t("x-long", HeaderForm::Raw)),
            Some("one\n two\n".into())
        );
        assert_eq!(
            v.header_text(&t("x-long", HeaderForm::Decoded)),
            Some("one two\n".into())
        );
        assert_eq!(
            v.header_text(&t(":tocc", HeaderForm::Decoded)),
            Some("a@x.test\nb@y.test\n".into())
        );
        assert_eq!(
            v.header_text(&t(":envelopefrom", HeaderForm::Decoded)),
            Some("env@example.test".into())
        );
        assert_eq!(v.header_text(&t("x-none", HeaderForm::Decoded)), None);
        let all = v
            .header_text(&t(":all", HeaderForm::Decoded))
            .expect(":all");
        assert!(all.starts_with(b"from: \"Joe Q\" <joe@example.test>\n"));
    }

    #[test]
    fn body_paragraphs_raw_chunks_and_links() {
        let v = view(
            b"Subject: Hello\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
              Content-Type: text/plain\r\n\r\nFirst  line\r\nsame para\r\n\r\nSee www.spam.test/x.\r\n\
              --b\r\nContent-Type: text/html\r\n\r\n<p>Click <a href=\"http://evil.test/a\">here</a></p>\r\n--b--\r\n",
        );
        assert_eq!(v.paragraphs[0], b"Hello");
        assert!(v.paragraphs.iter().any(|p| p == b"First line same para"));
        assert!(
            v.paragraphs
                .iter()
                .any(|p| p.windows(10).any(|w| w == b"Click here"))
        );
        assert!(
            v.raw_chunks
                .iter()
                .any(|c| c.windows(8).any(|w| w == b"<a href="))
        );
        assert_eq!(
            v.uris,
            vec![
                b"http://evil.test/a".to_vec(),
                b"http://www.spam.test/x".to_vec()
            ]
        );
        assert!(v.has_html && v.has_plain);
        assert_eq!(v.part_fields.len(), 3);
    }

    #[test]
    fn parts_are_scanned_up_to_spamassassins_sizes() {
        // SpamAssassin cuts a part at the first newline within 1 KiB after the limit, else
        // at the first space, else at the limit.
        let text = format!("{}\n{}", "a".repeat(50_010), "b".repeat(10));
        assert_eq!(scan_prefix(&text, 50_000, b"\n "), &text[..50_011]);
        let text = format!("{} {}", "a".repeat(50_010), "b".repeat(2_000));
        assert_eq!(scan_prefix(&text, 50_000, b"\n "), &text[..50_011]);
        let text = "é".repeat(30_000); // 2 octets each, no break at all
        assert_eq!(scan_prefix(&text, 50_001, b"\n ").len(), 50_000);
        assert_eq!(scan_prefix("short", 50_000, b"\n "), "short");

        // A 120 KB text part: body rules read about the first 50 KB (a link past it is not
        // seen), rawbody rules all of it; its length is the whole part's.
        let mut body = String::new();
        while body.len() < 120_000 {
            body.push_str("lorem ipsum dolor sit amet\r\n");
        }
        let raw = format!(
            "Subject: big\r\n\r\nhttp://early.test/\r\n{body}http://late.test/ ENDMARK\r\n"
        );
        let v = view(raw.as_bytes());
        let rendered: usize = v.paragraphs.iter().skip(1).map(Vec::len).sum();
        // (CR LF folds to one space.)
        assert!((45_000..=51_100).contains(&rendered), "{rendered}");
        assert_eq!(v.uris, vec![b"http://early.test/".to_vec()]);
        assert!(v.text_len > 120_000);
        assert!(
            v.raw_chunks
                .iter()
                .any(|c| c.windows(7).any(|w| w == b"ENDMARK"))
        );
    }
}
