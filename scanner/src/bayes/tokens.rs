//! The Bayes tokens of a message: words of the rendered text of every part (HTML reduced to
//! text, NFKC-normalised, case-folded, length-limited, long words as `sk:` skips as
//! SpamAssassin does), word pairs, header tokens (address parts, Received hosts and
//! networks, the words of the other fields, the presence of fields worth only that), URL
//! hosts and the MIME parts' types. Each distinct token counts once per message, and is
//! kept as a 64-bit FNV-1a hash of its text (the store never sees the words).

use crate::spam::message::{Field, View};
use std::collections::HashSet;
use unicode_normalization::UnicodeNormalization;

/// A token: the FNV-1a hash of its text.
pub type Token = u64;

/// Shortest body word kept, in characters (shorter ones say nothing).
const MIN_WORD: usize = 3;
/// Longest body word kept whole, in characters (SpamAssassin's `MAX_TOKEN_LENGTH`); longer
/// ones become `sk:` + their first seven characters.
const MAX_WORD: usize = 15;
/// Longest header token kept whole.
const MAX_HEADER_WORD: usize = 40;
/// At most this many body words are read (a huge message says no more than its start).
const MAX_BODY_WORDS: usize = 20_000;

/// How word pairs are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairs {
    /// Single words only.
    None,
    /// Adjacent word pairs.
    Bigrams,
    /// Orthogonal sparse bigrams: each word with each of the next `n` (Rspamd's OSB with
    /// the distance in the token).
    Osb(usize),
}

/// Choices of the tokenizer (measured on the corpus; see bench/RESULTS.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenOptions {
    /// Word pairs in the body.
    pub pairs: Pairs,
    /// Header tokens at all.
    pub headers: bool,
    /// How many of the oldest Received fields are read.
    pub received: usize,
    /// Case kept, with lower-case and unmarked variants added (SpamAssassin's
    /// decomposition); otherwise every word case-folded.
    pub case: bool,
}

impl Default for TokenOptions {
    /// Chosen by 5-fold cross-validation inside each training half of the SpamAssassin
    /// corpus (bench/RESULTS.md): single words separated the classes better than adjacent
    /// pairs or OSB (recall at one false positive 94.0 % against 83.9 % and 80.0 %), folded
    /// case better than SpamAssassin's kept case with variants, every Received field better
    /// than the oldest two.
    fn default() -> Self {
        TokenOptions {
            pairs: Pairs::None,
            headers: true,
            received: usize::MAX,
            case: false,
        }
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, so a store outlives the binary.
pub fn hash(text: &[u8]) -> Token {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Collects tokens, each once; with `names` also their texts (for `bayes explain`).
#[derive(Default)]
struct Sink {
    seen: HashSet<Token>,
    names: Option<Vec<String>>,
    /// Reused for formatted tokens (no allocation per token).
    buf: String,
}

impl Sink {
    fn addf(&mut self, args: std::fmt::Arguments<'_>) {
        use std::fmt::Write;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let _ = buf.write_fmt(args);
        self.add(&buf);
        self.buf = buf;
    }

    fn add(&mut self, text: &str) {
        if self.seen.insert(hash(text.as_bytes()))
            && let Some(n) = &mut self.names
        {
            n.push(text.to_string());
        }
    }
}

/// The tokens of `view`, sorted.
pub fn tokens(view: &View, opts: &TokenOptions) -> Vec<Token> {
    let mut sink = Sink::default();
    collect(view, opts, &mut sink);
    let mut out: Vec<Token> = sink.seen.into_iter().collect();
    out.sort_unstable();
    out
}

/// The tokens of `view` as text (each once, in the order found), for `bayes explain`.
pub fn token_texts(view: &View, opts: &TokenOptions) -> Vec<String> {
    let mut sink = Sink {
        names: Some(Vec::new()),
        ..Sink::default()
    };
    collect(view, opts, &mut sink);
    sink.names.unwrap_or_default()
}

/// The tokens of a raw message as text, for `bayes explain` and cross-validation reports.
pub fn texts_of_raw(raw: &[u8], opts: &TokenOptions) -> Vec<String> {
    let msg = mail_parser::MessageParser::default().parse(raw);
    token_texts(&View::new(raw, msg.as_ref(), ""), opts)
}

fn collect(view: &View, opts: &TokenOptions, sink: &mut Sink) {
    body(view, opts, sink);
    for u in &view.uris {
        uri(&String::from_utf8_lossy(u), sink);
    }
    if opts.headers {
        let received: Vec<&Field> = view
            .fields()
            .iter()
            .filter(|f| f.name == "received")
            .collect();
        for f in view.fields() {
            header(f, sink);
        }
        // The oldest Received fields name the sender's software, HELO and network; the
        // newest ones were written by the receiving side (SpamAssassin reads only the two
        // oldest; reading all measured better here, see `TokenOptions::default`).
        let skip = received.len().saturating_sub(opts.received);
        for f in &received[skip..] {
            received_hosts(&f.raw, sink);
        }
        for part in view.part_fields.iter().skip(1) {
            mime_part(part, sink);
        }
    }
}

/// The rendered text's words and pairs (the Subject is the first paragraph).
fn body(view: &View, opts: &TokenOptions, sink: &mut Sink) {
    let mut count = 0;
    for p in &view.paragraphs {
        let text = String::from_utf8_lossy(p);
        let text: String = text.nfkc().collect();
        let mut words: Vec<String> = Vec::new();
        let mut sentence_start = true;
        for raw in split_words(&text) {
            let next_start = raw.ends_with(['.', '!', '?']);
            if let Some(w) = body_word(raw, sentence_start) {
                if opts.case {
                    decompose(&w, sink);
                }
                let folded = if opts.case { w } else { w.to_lowercase() };
                sink.add(&folded);
                words.push(folded);
            }
            sentence_start = next_start;
        }
        pairs(&words, opts.pairs, sink);
        count += words.len();
        if count > MAX_BODY_WORDS {
            break;
        }
    }
}

/// Word pairs of one paragraph.
fn pairs(words: &[String], how: Pairs, sink: &mut Sink) {
    match how {
        Pairs::None => {}
        Pairs::Bigrams => {
            for pair in words.windows(2) {
                sink.addf(format_args!("{} {}", pair[0], pair[1]));
            }
        }
        Pairs::Osb(n) => {
            for (i, w) in words.iter().enumerate() {
                for d in 1..=n {
                    if let Some(next) = words.get(i + d) {
                        sink.addf(format_args!("{w} {d} {next}"));
                    }
                }
            }
        }
    }
}

/// SpamAssassin's decomposition: a word with marks also counts without them (`Free!` →
/// `Free`), one with capitals also in lower case (`FREE` → `free`), so a shouted or
/// decorated word shares the evidence of the plain one while keeping its own.
fn decompose(w: &str, sink: &mut Sink) {
    let plain: String = w
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    let marked = plain.len() != w.len() && !w.starts_with("sk:");
    if marked && plain.chars().count() >= MIN_WORD {
        sink.add(&plain);
    }
    if w.chars().any(char::is_uppercase) {
        let lower = w.to_lowercase();
        sink.add(&lower);
        if marked && plain.chars().count() >= MIN_WORD {
            sink.add(&plain.to_lowercase());
        }
    }
}

/// Words: runs of letters, digits and the marks that belong to words, prices and shouting
/// (`don't`, `$100`, `1.5`, `a@b`, `FREE!!`), trimmed of quotes, dashes, dots and commas at
/// their ends (SpamAssassin's character set).
fn split_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || ",@*!_'\"$.".contains(c)))
        .flat_map(|w| w.split("..."))
        .map(|w| w.trim_matches(|c: char| "-'\".,".contains(c)))
        .filter(|w| !w.is_empty())
}

/// A body word as a token: title case at the start of a sentence lowered (SpamAssassin's
/// `IGNORE_TITLE_CASE`); too short dropped; too long a skip.
fn body_word(w: &str, sentence_start: bool) -> Option<String> {
    let mut chars = w.chars();
    let title = sentence_start
        && chars.next().is_some_and(char::is_uppercase)
        && chars.all(|c| !c.is_uppercase());
    let w = if title {
        w.to_lowercase()
    } else {
        w.to_string()
    };
    let n = w.chars().count();
    let wide = w.chars().any(|c| c as u32 >= 0x2e80);
    if n < MIN_WORD && !wide {
        return None;
    }
    if n > MAX_WORD {
        let head: String = w.chars().take(7).collect();
        // SpamAssassin's skip tokens: the length class keeps "a long word" as a signal.
        return Some(format!("sk:{head}:{}", n / 8));
    }
    Some(w)
}

/// Header fields SpamAssassin's Bayes ignores (noise, list and filter annotations, fields
/// that differ between old and new corpora) and postcore's own verdict fields.
fn ignored(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "sender",
        "x-sender",
        "delivered-to",
        "delivery-date",
        "envelope-to",
        "x-envelope-to",
        "x-mime-autoconverted",
        "x-converted-to-plain-text",
        "subject",
        "date",
        "x-list",
        "mailing-list",
        "x-mailing-list",
        "x-unsub",
        "x-unsubscribe",
        "x-mailman-version",
        "x-beenthere",
        "x-loop",
        "mail-followup-to",
        "x-egroups-return",
        "x-egroups-from",
        "x-mdmailing-list",
        "x-xemacs-list",
        "x-sympa-to",
        "x-mailscanner",
        "x-mailscanner-spamcheck",
        "x-antispam",
        "x-rbl-warning",
        "x-mdaemon-deliver-to",
        "x-virus-scanned",
        "x-mass-check-id",
        "x-pyzor",
        "x-filtered-by",
        "x-scanned-by",
        "x-scanner",
        "x-ap-spam-score",
        "x-ap-spam-status",
        "x-ripe-spam-status",
        "x-smtpd",
        "spam-apparently-to",
        "x-spam-apparently-to",
        "spam",
        "x-perlmx-spam",
        "x-bogosity",
        "content-class",
        "thread-index",
        "thread-topic",
        "x-originalarrivaltime",
        "status",
        "x-status",
        "x-flags",
        "x-keywords",
        "replied",
        "forwarded",
        "lines",
        "content-length",
        "x-uid",
        "x-uidl",
        "x-imapbase",
        "x-gnus-mail-source",
        "xref",
        "received",
    ];
    const PREFIXES: &[&str] = &[
        "list-",
        "x-list-",
        "resent-",
        "x-resent-",
        "original-",
        "x-original-",
        "x-spam",
        "x-spamcop-",
        "x-dcc-",
        "x-bugzilla-",
        "x-vm-",
        "x-postcore-",
        "x-virus",
    ];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// Fields whose value makes one token each per message: only their presence is kept.
fn presence_only(name: &str) -> bool {
    matches!(
        name,
        "x-face"
            | "dkim-signature"
            | "domainkey-signature"
            | "x-google-dkim-signature"
            | "arc-message-signature"
            | "arc-seal"
            | "autocrypt"
    ) || (name.starts_with("x-") && name.ends_with("-fingerprint"))
}

/// Short names for the fields read most, as SpamAssassin maps them (one token space for
/// the address fields, one for Message-ID and its references, one for the mailer).
fn field_class(name: &str) -> &str {
    match name {
        "from" | "to" | "cc" | "reply-to" | "errors-to" | "return-receipt-to" => "*F",
        "message-id" | "in-reply-to" | "references" => "*M",
        "x-mailer" | "user-agent" | "x-newsreader" => "*UA",
        other => other,
    }
}

fn header(f: &Field, sink: &mut Sink) {
    let name = f.name.as_str();
    if ignored(name) {
        return;
    }
    sink.addf(format_args!("H:{name}"));
    if presence_only(name) {
        return;
    }
    let class = field_class(name);
    let value = f.decoded.to_lowercase();
    match class {
        "*M" => {
            // Message-IDs are unique: only the part after `@` (the generator) says anything.
            for id in value.split_whitespace() {
                let id = id.trim_matches(|c| c == '<' || c == '>');
                match id.rsplit_once('@') {
                    Some((_, host)) => sink.addf(format_args!("H*M:@{host}")),
                    None => sink.add("H*M:no-at"),
                }
            }
        }
        "*F" | "return-path" => addresses(class, &value, sink),
        _ => {
            for w in value
                .split(|c: char| !(c.is_alphanumeric() || "$'-_.@%/=+".contains(c)))
                .map(|w| w.trim_matches(|c: char| ".,'-_".contains(c)))
                .filter(|w| w.chars().count() >= 2)
            {
                sink.add(&header_word(class, w));
            }
        }
    }
}

fn header_word(class: &str, w: &str) -> String {
    let chars = w.chars().count();
    if chars > MAX_HEADER_WORD {
        let head: String = w.chars().take(7).collect();
        format!("H{class}:sk:{head}:{}", chars / 8)
    } else {
        format!("H{class}:{w}")
    }
}

/// Address fields: each address whole, its local part, its domain and parent domains, and
/// the display names' words.
fn addresses(class: &str, value: &str, sink: &mut Sink) {
    for w in value.split(|c: char| c.is_whitespace() || "<>,;\"()".contains(c)) {
        let w = w.trim_matches(|c: char| ".'".contains(c));
        if w.is_empty() {
            continue;
        }
        if let Some((local, domain)) = w.rsplit_once('@') {
            sink.add(&header_word(class, w));
            sink.add(&header_word(class, &format!("{local}@")));
            domains(&format!("H{class}:@"), domain, sink);
        } else if w.chars().count() >= 2 {
            sink.add(&header_word(class, w));
        }
    }
}

/// `prefix` + the domain and each parent with at least two labels.
fn domains(prefix: &str, domain: &str, sink: &mut Sink) {
    let domain = domain.trim_matches('.');
    let mut d = domain;
    loop {
        sink.addf(format_args!("{prefix}{d}"));
        match d.split_once('.') {
            Some((_, rest)) if rest.contains('.') => d = rest,
            _ => break,
        }
    }
}

/// A Received field's host names and addresses (with their /24 and /16), the words before
/// the date (`by`, `with ESMTP`, software names) without queue IDs.
fn received_hosts(raw: &str, sink: &mut Sink) {
    let head = raw.rsplit_once(';').map_or(raw, |(h, _)| h).to_lowercase();
    for w in head.split(|c: char| !(c.is_alphanumeric() || ".-_:".contains(c))) {
        let w = w.trim_matches(|c: char| ".-:".contains(c));
        if w.len() < 2 {
            continue;
        }
        if let Ok(ip) = w.parse::<std::net::Ipv4Addr>() {
            let o = ip.octets();
            sink.addf(format_args!("R:ip:{w}"));
            sink.addf(format_args!("R:ip:{}.{}.{}", o[0], o[1], o[2]));
            sink.addf(format_args!("R:ip:{}.{}", o[0], o[1]));
        } else if w.contains('.') && w.chars().any(char::is_alphabetic) {
            domains("R:h:", w, sink);
        } else if w.chars().all(char::is_alphabetic) && w.len() <= MAX_HEADER_WORD {
            sink.addf(format_args!("R:{w}"));
        }
    }
}

/// A MIME part's content type, charset, encoding and file-name extension.
fn mime_part(fields: &[Field], sink: &mut Sink) {
    for f in fields {
        let v = f.decoded.to_lowercase();
        match f.name.as_str() {
            "content-type" => {
                let mut it = v.split(';');
                if let Some(t) = it.next() {
                    sink.addf(format_args!("M:type:{}", t.trim()));
                }
                for p in it {
                    if let Some((k, val)) = p.split_once('=') {
                        let val = val.trim().trim_matches('"');
                        match k.trim() {
                            "charset" => sink.addf(format_args!("M:charset:{val}")),
                            "name" => extension(val, sink),
                            _ => {}
                        }
                    }
                }
            }
            "content-transfer-encoding" => sink.addf(format_args!("M:cte:{}", v.trim())),
            "content-disposition" => {
                if let Some(i) = v.find("filename=") {
                    extension(v[i + 9..].trim().trim_matches('"'), sink);
                }
            }
            _ => {}
        }
    }
}

fn extension(file: &str, sink: &mut Sink) {
    if let Some((_, ext)) = file.trim_end_matches(['"', ';']).rsplit_once('.')
        && ext.len() <= 8
    {
        sink.addf(format_args!("M:ext:{ext}"));
    }
}

/// A link's host (and its parents) and scheme; `mailto:` links as their domain.
fn uri(u: &str, sink: &mut Sink) {
    let u = u.to_lowercase();
    if let Some(addr) = u.strip_prefix("mailto:") {
        if let Some((_, d)) = addr.split(['?', '&']).next().unwrap_or("").rsplit_once('@') {
            domains("U:@", d, sink);
        }
        return;
    }
    let (scheme, rest) = match u.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("www", u.as_str()),
    };
    sink.addf(format_args!("U:scheme:{scheme}"));
    let Some(host) = crate::spam::message::uri_host(rest) else {
        return;
    };
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        sink.add("U:ip");
        sink.addf(format_args!("U:{host}"));
    } else {
        domains("U:", host, sink);
    }
}
