//! Searchable text of a message (RFC 9051 §6.4.4 BODY/TEXT): content transfer decoding
//! (RFC 2045 §6), RFC 2047 encoded words, HTML reduced to text, and the word tokens the
//! full-text index stores.

/// Removes a content transfer encoding (RFC 2045 §6); `None` for unknown encodings.
pub fn decode_transfer(body: &[u8], enc: &str) -> Option<Vec<u8>> {
    match enc {
        "7bit" | "8bit" | "binary" | "" => Some(body.to_vec()),
        "base64" => {
            let clean: Vec<u8> = body
                .iter()
                .copied()
                .filter(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
                .collect();
            use base64::Engine;
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(&clean)
                .ok()
                .or_else(|| Some(Vec::new()))
        }
        "quoted-printable" => Some(decode_qp(body, false)),
        _ => None,
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Quoted-printable (RFC 2045 §6.7); `q` is the RFC 2047 Q variant (`_` = space, one line).
/// In a body, whitespace at the end of a line is dropped (rule 3: it was added in transport),
/// and `=` as the line's last character, whitespace after it allowed, is a soft line break
/// (rule 5); line ends are kept as they are.
pub fn decode_qp(s: &[u8], q: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    if q {
        decode_qp_run(s, true, &mut out);
        return out;
    }
    for line in s.split_inclusive(|&b| b == b'\n') {
        let content_end = line.len()
            - if line.ends_with(b"\r\n") {
                2
            } else if line.ends_with(b"\n") {
                1
            } else {
                0
            };
        let (content, eol) = line.split_at(content_end);
        let content = content.trim_ascii_end();
        match content.strip_suffix(b"=") {
            Some(soft) => decode_qp_run(soft, false, &mut out),
            None => {
                decode_qp_run(content, false, &mut out);
                out.extend_from_slice(eol);
            }
        }
    }
    out
}

/// Decodes `=XX` escapes (and `_` when `q`) of one run of text without line ends; an `=`
/// not followed by two hex digits stays as it is.
fn decode_qp_run(s: &[u8], q: bool, out: &mut Vec<u8>) {
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'=' => {
                if let (Some(a), Some(b)) = (
                    s.get(i + 1).copied().and_then(hex),
                    s.get(i + 2).copied().and_then(hex),
                ) {
                    out.push(a * 16 + b);
                    i += 3;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
            b'_' if q => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
}

/// Text of `bytes` in `charset` (any charset the WHATWG encoding standard knows, through
/// mail-parser: KOI8-R, Shift_JIS, ISO-2022-JP, GB2312/GBK, windows-125x, …). Unknown or
/// missing charsets are read as UTF-8, invalid sequences replaced.
pub fn to_text(bytes: &[u8], charset: &str) -> String {
    let cs = charset.trim();
    // ASCII reads the same in every charset except the 7-bit ones that shift into another
    // character set with escapes (ISO-2022-*, UTF-7, HZ).
    let seven_bit_shifting = ["iso-2022", "utf-7", "hz-"]
        .iter()
        .any(|p| cs.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p)));
    if bytes.is_ascii() && !seven_bit_shifting {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    match mail_parser::decoders::charsets::map::charset_decoder(cs.as_bytes()) {
        Some(decode) if !cs.is_empty() => decode(bytes),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes RFC 2047 encoded words in a header value.
pub fn decode_words(v: &[u8]) -> String {
    let s = String::from_utf8_lossy(v);
    if !s.contains("=?") {
        return s.into_owned();
    }
    let mut out = String::new();
    let mut rest: &str = &s;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let parsed = (|| {
            let inner = &rest[start + 2..];
            let (charset, r) = inner.split_once('?')?;
            let (enc, r) = r.split_once('?')?;
            let end = r.find("?=")?;
            let text = &r[..end];
            let bytes = match enc.to_ascii_uppercase().as_str() {
                "B" => decode_transfer(text.as_bytes(), "base64")?,
                "Q" => decode_qp(text.as_bytes(), true),
                _ => return None,
            };
            let consumed = start + 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
            let cs = charset.split('*').next().unwrap_or("").to_ascii_lowercase();
            Some((to_text(&bytes, &cs), consumed))
        })();
        match parsed {
            Some((text, consumed)) => {
                // RFC 2047 §6.2: whitespace between adjacent encoded words is dropped.
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                out.push_str(&text);
                rest = &rest[consumed..];
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = &rest[start + 2..];
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Text of an HTML part without tags, scripts and styles; common entities decoded.
pub fn html_to_text(h: &str) -> String {
    let mut out = String::with_capacity(h.len());
    let lower = h.to_ascii_lowercase();
    let mut i = 0;
    let b = h.as_bytes();
    while i < b.len() {
        if b[i] == b'<' {
            for skip in ["<script", "<style"] {
                if lower[i..].starts_with(skip) {
                    let close = format!("</{}", &skip[1..]);
                    i = lower[i..].find(&close).map(|p| i + p).unwrap_or(b.len());
                }
            }
            match h[i..].find('>') {
                Some(p) => i += p + 1,
                None => break,
            }
            out.push(' ');
        } else {
            let next = h[i..].find('<').map(|p| i + p).unwrap_or(b.len());
            out.push_str(&h[i..next]);
            i = next;
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The searchable text of a message body: every text part, decoded from its transfer
/// encoding and charset (mail-parser, the same decoding the scanner sees), HTML reduced to
/// text, and the header section of each attached message.
pub fn body_text(data: &[u8]) -> String {
    let mut out = String::new();
    if let Some(m) = mail_parser::MessageParser::default().parse(data) {
        collect_text(&m, &mut out);
    }
    out
}

fn collect_text(m: &mail_parser::Message<'_>, out: &mut String) {
    use mail_parser::PartType;
    for part in &m.parts {
        match &part.body {
            PartType::Text(t) => out.push_str(t),
            PartType::Html(h) => out.push_str(&html_to_text(h)),
            PartType::Message(inner) => {
                let raw = inner.raw_message();
                let head = inner
                    .parts
                    .first()
                    .map_or(0, |p| p.offset_body as usize)
                    .min(raw.len());
                out.push_str(&decode_words(&raw[..head]));
                collect_text(inner, out);
            }
            PartType::Binary(_) | PartType::InlineBinary(_) | PartType::Multipart(_) => continue,
        }
        out.push('\n');
    }
}

/// RFC 8970 §3: the preview of a message — the start of its first text part (HTML rendered), white
/// space runs as one space, control characters dropped, at most 256 characters.
pub fn preview(message: &[u8]) -> String {
    // The first text part (the plain one of an alternative, else the HTML one rendered).
    let parsed = mail_parser::MessageParser::default().parse(message);
    let text = parsed
        .as_ref()
        .and_then(|m| m.body_preview(4 * 256))
        .unwrap_or_default();
    let mut out = String::new();
    for (n, w) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.extend(w.chars().filter(|c| !c.is_control()));
        if out.chars().count() >= 256 {
            break;
        }
    }
    out.chars()
        .take(256)
        .collect::<String>()
        .trim_end()
        .to_string()
}

/// The i;unicode-casemap comparator's canonical form (RFC 5051 §2, used at I18NLEVEL=1 by
/// SEARCH, SORT and THREAD, RFC 5255 §4): each character's simple titlecase mapping
/// (UnicodeData.txt), then compatibility decomposition (NFKD). Two strings are equal under
/// the comparator when their forms are, and one contains the other as a substring when the
/// forms do.
pub fn casemap(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    // ASCII (most words of most mail): titlecase is upper case and NFKD changes nothing.
    if s.is_ascii() {
        return s.to_ascii_uppercase();
    }
    s.chars().map(titlecase).nfkd().collect()
}

/// The simple titlecase mapping of `c` (UnicodeData.txt field 14). The standard library
/// gives the full uppercase mapping; where that is one character it is the simple
/// uppercase, which is the titlecase except for the Latin digraphs (DŽ Dž dž → Dž), the
/// Georgian letters (their own titlecase) and the Greek letters with ypogegrammeni (whose
/// full uppercase is two letters).
fn titlecase(c: char) -> char {
    match c as u32 {
        // Ǆ ǅ ǆ → ǅ, Ǉ ǈ ǉ → ǈ, Ǌ ǋ ǌ → ǋ; Ǳ ǲ ǳ → ǲ.
        u @ 0x01C4..=0x01CC => char::from_u32(0x01C5 + (u - 0x01C4) / 3 * 3).unwrap_or(c),
        0x01F1..=0x01F3 => '\u{01F2}',
        // Georgian Mkhedruli: titlecase is the letter itself (not Mtavruli).
        0x10D0..=0x10FA | 0x10FD..=0x10FF => c,
        // ᾀ–ᾇ, ᾐ–ᾗ, ᾠ–ᾧ → ᾈ–ᾏ, ᾘ–ᾟ, ᾨ–ᾯ; the titlecase forms map to themselves.
        u @ 0x1F80..=0x1FAF => char::from_u32(u | 0x8).unwrap_or(c),
        // ᾳ ῃ ῳ → ᾼ ῌ ῼ.
        0x1FB3 | 0x1FC3 | 0x1FF3 => char::from_u32(c as u32 + 9).unwrap_or(c),
        _ => {
            let mut up = c.to_uppercase();
            match (up.next(), up.next()) {
                (Some(u), None) => u,
                _ => c,
            }
        }
    }
}

/// The longest word the full-text index keeps (in characters): a substring found only inside
/// a longer run of letters and digits is not found through the index.
pub const MAX_WORD: usize = 128;

/// Whether `c` belongs to a word: a letter or digit, or a combining mark (so that `école`
/// written decomposed, `e` + U+0301, is one word as it is when precomposed).
pub fn is_word_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric();
    }
    c.is_alphanumeric() || unicode_normalization::char::is_combining_mark(c)
}

/// The full-text index's tokens of `text`: its runs of [`is_word_char`] characters, 2 to
/// [`MAX_WORD`] of them, each in its [`casemap`] form, each once (in the order first seen,
/// at most 50,000).
///
/// Runs are found octet by octet where the text is ASCII (a letter or digit is a word
/// character, anything else is not) and character by character only from the first octet
/// above 0x7F; a word seen before costs a hash lookup and no allocation.
pub fn tokens(text: &str) -> Vec<String> {
    let mut seen: std::collections::HashSet<String, foldhash::fast::RandomState> =
        std::collections::HashSet::default();
    let mut out = Vec::new();
    let mut word = String::new();
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let (end, ascii) = word_end(text, i);
        if end == i {
            // Not a word character: step over it (one octet, or one whole character).
            i += if b[i] < 0x80 {
                1
            } else {
                text[i..].chars().next().map_or(1, char::len_utf8)
            };
            continue;
        }
        let w = &text[i..end];
        i = end;
        // Fewer than 2 octets is fewer than 2 characters; ASCII counts one per octet.
        if w.len() < 2 {
            continue;
        }
        let n = if ascii { w.len() } else { w.chars().count() };
        if n > MAX_WORD {
            continue;
        }
        word.clear();
        if ascii {
            word.push_str(w);
            word.make_ascii_uppercase();
        } else {
            word.push_str(&casemap(w));
        }
        if !seen.contains(word.as_str()) {
            seen.insert(word.clone());
            out.push(word.clone());
            if out.len() >= 50_000 {
                break;
            }
        }
    }
    out
}

/// Where the run of word characters starting at octet `i` of `text` ends (`i` itself when
/// the character there is not one), and whether the run is all ASCII.
fn word_end(text: &str, i: usize) -> (usize, bool) {
    let b = text.as_bytes();
    let mut j = i;
    let mut ascii = true;
    while j < b.len() {
        if b[j] < 0x80 {
            if !b[j].is_ascii_alphanumeric() {
                break;
            }
            j += 1;
            continue;
        }
        match text[j..].chars().next() {
            Some(c) if is_word_char(c) => {
                ascii = false;
                j += c.len_utf8();
            }
            _ => break,
        }
    }
    (j, ascii)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tokenizer as first written (a split on every non-word character), kept as the
    /// reference the octet-wise one must equal.
    fn tokens_reference(text: &str) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for w in text.split(|c: char| !is_word_char(c)) {
            // As first written: at least 2 octets (so one character above 0x7F counts).
            if w.len() < 2 || w.chars().count() > MAX_WORD {
                continue;
            }
            let t = casemap(w);
            if seen.insert(t.clone()) {
                out.push(t);
            }
        }
        out
    }

    /// Random texts of ASCII, Latin, Greek, CJK, combining marks, punctuation and long runs:
    /// the same tokens in the same order as the reference.
    #[test]
    fn tokens_equal_the_reference() {
        let pieces = [
            "word",
            "Ünïcödé",
            "e\u{301}cole",
            "\u{301}",
            "ΣΟΦΌΣ",
            "日本語",
            "x",
            "ab",
            " ",
            "-",
            ".\n",
            "\u{a0}",
            "ｆｕｌｌ",
            "ǅ",
            "9",
            "straße",
            "\u{1F600}",
            "_",
            "'",
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..3_000 {
            let mut text = String::new();
            for _ in 0..40 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            assert_eq!(tokens(&text), tokens_reference(&text), "{text:?}");
        }
        let long = "0123456789".repeat(13);
        assert_eq!(
            tokens(&long),
            tokens_reference(&long),
            "longer than MAX_WORD"
        );
        assert!(tokens(&long).is_empty());
    }

    /// RFC 5051's comparator: case and compatibility forms fold together, accents stay
    /// (as combining marks after the letter).
    #[test]
    fn unicode_casemap() {
        assert_eq!(casemap("Hello"), casemap("hELLO"));
        // RFC 5051 maps case first, then decomposes: a ligature's letters keep their case
        // (Dovecot answers the same).
        assert_eq!(casemap("ﬁle"), "fiLE");
        assert_eq!(casemap("ｆｕｌｌ"), "FULL", "fullwidth");
        assert_eq!(casemap("σς"), casemap("ΣΣ"), "final sigma");
        assert_eq!(casemap("école"), "E\u{301}COLE");
        assert_eq!(
            casemap("e\u{301}cole"),
            casemap("École"),
            "NFC and NFD alike"
        );
        assert_eq!(casemap("ǆ"), casemap("Ǆ"));
        assert_eq!(casemap("Ǆ"), "Dz\u{30C}", "titlecase, not uppercase");
        assert_eq!(casemap("ǉ"), casemap("ǈ"));
        assert_eq!(casemap("ა"), "ა");
        assert_eq!(casemap("ᾳ"), casemap("ᾼ"));
        assert_eq!(casemap("ß"), "ß", "simple mapping: no SS");
        assert!(casemap("straße").contains(&casemap("STRA")));
        assert_eq!(tokens("Ein file, ein FILE"), vec!["EIN", "FILE"]);
        assert_eq!(tokens("e\u{301}cole"), vec![casemap("école")], "one word");
    }

    #[test]
    fn previews_are_short_single_line_text() {
        let m = b"Subject: x\r\nContent-Type: text/html\r\n\r\n<p>Hello\r\n  <b>world</b></p>\r\n";
        assert_eq!(preview(m), "Hello world");
        let long = format!("Subject: x\r\n\r\n{}\r\n", "word ".repeat(100));
        assert!(preview(long.as_bytes()).chars().count() <= 256);
        assert_eq!(preview(b"Subject: x\r\n\r\n"), "");
    }

    /// RFC 2045 §6.7 rules 3 and 5: transport whitespace at line ends goes, `=` then
    /// whitespace then the line end is a soft break, an `=` without hex digits stays.
    #[test]
    fn quoted_printable_as_rfc_2045_says() {
        assert_eq!(
            decode_qp(b"trailing   \r\nsoft= \t\r\nbreak=3D=\r\nend\r\n", false),
            b"trailing\r\nsoftbreak=end\r\n"
        );
        assert_eq!(decode_qp(b"a=\nb\n", false), b"ab\n");
        assert_eq!(decode_qp(b"x =4 y=ZZ", false), b"x =4 y=ZZ");
        assert_eq!(decode_qp(b"caf=C3=A9_ok", true), "café ok".as_bytes());
        assert_eq!(decode_qp(b"last line  ", false), b"last line");
    }

    #[test]
    fn encoded_words_and_subjects() {
        assert_eq!(
            decode_words(b"=?UTF-8?B?w6R4?= =?ISO-8859-1?Q?caf=E9_au?= lait"),
            "äxcafé au lait"
        );
    }

    #[test]
    fn body_text_decodes_parts() {
        let m = b"Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\naMOkbGxv\r\n--b\r\n\
Content-Type: text/html\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n<p>zan=\r\nzibar &amp; co</p><script>x</script>\r\n--b--\r\n";
        let t = body_text(m);
        assert!(t.contains("hällo"), "{t}");
        assert!(t.contains("zanzibar & co"), "{t}");
        assert!(!t.contains("script"), "{t}");
    }

    /// (charset, encoded octets, text): the charsets the restructure issue names.
    const SAMPLES: [(&str, &[u8], &str); 5] = [
        ("koi8-r", b"\xf0\xd2\xc9\xd7\xc5\xd4", "Привет"),
        (
            "shift_jis",
            b"\x83n\x83\x8D\x81[\x81E\x83\x8F\x81[\x83\x8B\x83h",
            "ハロー・ワールド",
        ),
        (
            "iso-2022-jp",
            b"\x1b$B%O%m!<!&%o!<%k%I\x1b(B",
            "ハロー・ワールド",
        ),
        (
            "gb2312",
            b"\xc4\xe3\xba\xc3\xa3\xac\xca\xc0\xbd\xe7",
            "你好，世界",
        ),
        ("windows-1251", b"\xcf\xf0\xe8\xe2\xe5\xf2", "Привет"),
    ];

    #[test]
    fn bodies_and_encoded_words_in_every_charset() {
        use base64::Engine;
        for (cs, octets, text) in SAMPLES {
            let mut m = format!("Content-Type: text/plain; charset={cs}\r\n\r\n").into_bytes();
            m.extend_from_slice(octets);
            m.extend_from_slice(b"\r\n");
            assert!(body_text(&m).contains(text), "{cs}: {:?}", body_text(&m));
            let b64 = base64::engine::general_purpose::STANDARD.encode(octets);
            let word = format!("=?{cs}?B?{b64}?=");
            assert_eq!(decode_words(word.as_bytes()), text, "{cs}");
            assert_eq!(to_text(octets, cs), text, "{cs}");
        }
        // Unknown charsets and plain UTF-8 still read as UTF-8.
        assert_eq!(to_text("héllo".as_bytes(), "x-unknown"), "héllo");
        assert_eq!(to_text("héllo".as_bytes(), ""), "héllo");
    }

    #[test]
    fn attached_messages_count_with_their_headers() {
        let m = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: =?koi8-r?B?8NLJ18XU?=\r\n\r\ninner words\r\n--b--\r\n";
        let t = body_text(m);
        assert!(
            t.contains("Subject: Привет") && t.contains("inner words"),
            "{t}"
        );
    }

    #[test]
    fn word_tokens() {
        assert_eq!(
            tokens("Crème brûlée, a CRÈME!"),
            vec![casemap("crème"), casemap("brûlée")]
        );
    }
}
