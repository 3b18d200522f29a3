//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731),
//! MODSEQ (RFC 7162 §3.1.5), OLDER/YOUNGER (RFC 5032), and SORT (RFC 5256).
//!
//! Flags, sizes and dates come from the view and the index; header keys from the cached
//! header blocks (RFC 2047 encoded words decoded); BODY and TEXT look into the decoded text
//! of each part (base64 / quoted-printable removed, HTML reduced to text).

use super::fetch::open_body;
use super::{Done, Session};
use postcore_protocol::imap::mime;
use postcore_protocol::imap::{SearchKey, SearchReturn, SortKey};
use postcore_storage::mailbox::{MessageRecord, flag};
use std::collections::HashMap;

/// Removes a content transfer encoding (RFC 2045 §6); `None` for unknown encodings.
pub(super) fn decode_transfer(body: &[u8], enc: &str) -> Option<Vec<u8>> {
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

/// Quoted-printable (RFC 2045 §6.7); `q` is the RFC 2047 Q variant (`_` = space).
fn decode_qp(s: &[u8], q: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
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
                } else if s.get(i + 1) == Some(&b'\r') && s.get(i + 2) == Some(&b'\n') {
                    i += 3;
                } else if s.get(i + 1) == Some(&b'\n') {
                    i += 2;
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
    out
}

fn to_text(bytes: &[u8], charset: &str) -> String {
    match charset {
        "iso-8859-1" | "latin1" | "windows-1252" | "us-ascii" if !bytes.is_ascii() => {
            bytes.iter().map(|b| *b as char).collect()
        }
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Decodes RFC 2047 encoded words in a header value.
pub(super) fn decode_words(v: &[u8]) -> String {
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
pub(super) fn html_to_text(h: &str) -> String {
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

/// The searchable text of a message body: every text part, decoded.
pub(super) fn body_text(data: &[u8]) -> String {
    let top = mime::parse(data);
    let mut out = String::new();
    collect_text(&top, &mut out);
    out
}

fn collect_text(p: &mime::Part, out: &mut String) {
    if !p.children.is_empty() {
        for c in &p.children {
            collect_text(c, out);
        }
        return;
    }
    if let Some(m) = &p.message {
        out.push_str(&decode_words(p.header));
        collect_text(m, out);
        return;
    }
    if p.ctype.0 != "text" {
        return;
    }
    let enc = mime::field(p.header, "Content-Transfer-Encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_default();
    let Some(bytes) = decode_transfer(p.body, &enc) else {
        return;
    };
    let cs = p
        .params
        .iter()
        .find(|(k, _)| k == "charset")
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    let text = to_text(&bytes, &cs);
    if p.ctype.1 == "html" {
        out.push_str(&html_to_text(&text));
    } else {
        out.push_str(&text);
    }
    out.push('\n');
}

/// What one message offers to the search: lazily loaded header and body.
struct Candidate<'a> {
    seq: u32,
    uid: u32,
    flags: u8,
    keywords: &'a [String],
    modseq: u64,
    rec: Option<&'a MessageRecord>,
    header: Option<Vec<u8>>,
    text: Option<String>,
    path: Option<std::path::PathBuf>,
}

impl Candidate<'_> {
    fn header(&mut self) -> &[u8] {
        if self.header.is_none() {
            let h = self
                .path
                .as_ref()
                .and_then(|p| open_body(p).ok())
                .map(|b| mime::split(b.bytes()).0.to_vec())
                .unwrap_or_default();
            self.header = Some(h);
        }
        self.header.as_deref().unwrap_or_default()
    }

    fn text(&mut self) -> &str {
        if self.text.is_none() {
            let t = self
                .path
                .as_ref()
                .and_then(|p| open_body(p).ok())
                .map(|b| body_text(b.bytes()).to_lowercase())
                .unwrap_or_default();
            self.text = Some(t);
        }
        self.text.as_deref().unwrap_or_default()
    }

    fn header_has(&mut self, name: &str, needle: &str) -> bool {
        let needle = needle.to_lowercase();
        let h = self.header().to_vec();
        mime::fields(&h).iter().any(|(n, v)| {
            n.eq_ignore_ascii_case(name.as_bytes())
                && (needle.is_empty() || decode_words(v).to_lowercase().contains(&needle))
        })
    }

    fn sent_day(&mut self) -> Option<i64> {
        let h = self.header().to_vec();
        mime::field(&h, "Date")
            .and_then(|d| mime::parse_date(&d))
            .map(|s| s.div_euclid(86400))
    }
}

fn needs_body(k: &SearchKey) -> bool {
    match k {
        SearchKey::Body(_) | SearchKey::Text(_) => true,
        SearchKey::Not(a) => needs_body(a),
        SearchKey::Or(a, b) => needs_body(a) || needs_body(b),
        SearchKey::And(v) => v.iter().any(needs_body),
        _ => false,
    }
}

fn needs_header(k: &SearchKey) -> bool {
    match k {
        SearchKey::Header(..)
        | SearchKey::SentBefore(_)
        | SearchKey::SentOn(_)
        | SearchKey::SentSince(_)
        | SearchKey::Text(_) => true,
        SearchKey::Not(a) => needs_header(a),
        SearchKey::Or(a, b) => needs_header(a) || needs_header(b),
        SearchKey::And(v) => v.iter().any(needs_header),
        _ => false,
    }
}

fn needs_record(k: &SearchKey) -> bool {
    match k {
        SearchKey::Before(_)
        | SearchKey::On(_)
        | SearchKey::Since(_)
        | SearchKey::Larger(_)
        | SearchKey::Smaller(_)
        | SearchKey::Older(_)
        | SearchKey::Younger(_) => true,
        SearchKey::Not(a) => needs_record(a),
        SearchKey::Or(a, b) => needs_record(a) || needs_record(b),
        SearchKey::And(v) => v.iter().any(needs_record),
        _ => needs_header(k) || needs_body(k),
    }
}

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(a) => uses_modseq(a),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

fn eval(k: &SearchKey, c: &mut Candidate, max_seq: u32, max_uid: u32, now: i64) -> bool {
    let date = c.rec.map(|r| r.internal_date).unwrap_or(0);
    let day = date.div_euclid(86400);
    match k {
        SearchKey::All => true,
        SearchKey::Seq(s) => s.contains(c.seq, max_seq),
        SearchKey::Uid(s) => s.contains(c.uid, max_uid),
        SearchKey::Flag(f) => match flag::bit(f) {
            Some(b) => c.flags & b != 0,
            None => c.keywords.iter().any(|k| k.eq_ignore_ascii_case(f)),
        },
        SearchKey::NoFlag(f) => !eval(&SearchKey::Flag(f.clone()), c, max_seq, max_uid, now),
        // postcore has no \Recent (IMAP4rev2 dropped it): NEW = RECENT UNSEEN is empty.
        SearchKey::New => false,
        SearchKey::Recent => false,
        SearchKey::Old => true,
        SearchKey::Header(n, v) => c.header_has(n, v),
        SearchKey::Body(s) => {
            let s = s.to_lowercase();
            c.text().contains(&s)
        }
        SearchKey::Text(s) => {
            let s = s.to_lowercase();
            let h = decode_words(c.header()).to_lowercase();
            h.contains(&s) || c.text().contains(&s)
        }
        SearchKey::Before(d) => day < *d,
        SearchKey::On(d) => day == *d,
        SearchKey::Since(d) => day >= *d,
        SearchKey::SentBefore(d) => c.sent_day().is_some_and(|x| x < *d),
        SearchKey::SentOn(d) => c.sent_day().is_some_and(|x| x == *d),
        SearchKey::SentSince(d) => c.sent_day().is_some_and(|x| x >= *d),
        SearchKey::Larger(n) => c.rec.is_some_and(|r| r.size > *n),
        SearchKey::Smaller(n) => c.rec.is_some_and(|r| r.size < *n),
        SearchKey::ModSeq(m) => c.modseq >= *m,
        SearchKey::Older(s) => now - date >= *s as i64,
        SearchKey::Younger(s) => now - date <= *s as i64,
        SearchKey::Not(a) => !eval(a, c, max_seq, max_uid, now),
        SearchKey::Or(a, b) => {
            eval(a, c, max_seq, max_uid, now) || eval(b, c, max_seq, max_uid, now)
        }
        SearchKey::And(v) => v.iter().all(|x| eval(x, c, max_seq, max_uid, now)),
    }
}

/// RFC 5256 §2.1 base subject: no `Re:`/`Fwd:` prefixes, `[tags]`, `(fwd)` trailers.
fn base_subject(s: &str) -> String {
    let mut s = decode_words(s.as_bytes()).trim().to_lowercase();
    loop {
        let before = s.clone();
        for p in ["re:", "fwd:", "fw:", "aw:", "sv:"] {
            if let Some(r) = s.strip_prefix(p) {
                s = r.trim_start().to_string();
            }
        }
        if s.starts_with('[')
            && let Some(e) = s.find(']')
            && e + 1 < s.len()
        {
            s = s[e + 1..].trim_start().to_string();
        }
        if let Some(r) = s.strip_suffix("(fwd)") {
            s = r.trim_end().to_string();
        }
        if s == before {
            return s;
        }
    }
}

fn first_mailbox(v: Option<Vec<u8>>) -> String {
    v.map(|v| mime::addresses(&v))
        .and_then(|a| a.into_iter().find(|x| x.3.is_some()))
        .and_then(|a| a.2)
        .unwrap_or_default()
        .to_lowercase()
}

impl Session {
    /// The positions of the selected mailbox matching `key`.
    async fn matching(&mut self, key: &SearchKey) -> Vec<usize> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let all: Vec<usize> = (0..sel.msgs.len()).filter(|p| !sel.msgs[*p].gone).collect();
        let records = if needs_record(key) {
            self.records(&all)
        } else {
            HashMap::new()
        };
        let headers = if needs_header(key) {
            let uids: Vec<u32> = all.iter().map(|p| sel.msgs[*p].uid).collect();
            self.ctx
                .shared
                .mailboxes
                .headers(sel.id(), &uids)
                .unwrap_or_default()
        } else {
            HashMap::new()
        };
        let body = needs_body(key);
        let max_seq = sel.msgs.len() as u32;
        let max_uid = sel.msgs.last().map(|m| m.uid).unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let mut out = Vec::new();
        for (n, p) in all.iter().enumerate() {
            let m = &sel.msgs[*p];
            let rec = records.get(&m.uid);
            let mut c = Candidate {
                seq: *p as u32 + 1,
                uid: m.uid,
                flags: m.flags,
                keywords: &m.keywords,
                modseq: m.modseq,
                rec,
                header: headers.get(&m.uid).cloned(),
                text: None,
                path: rec.map(|r| sel.path.join(r.relative_path())),
            };
            if eval(key, &mut c, max_seq, max_uid, now) {
                out.push(*p);
            }
            if body && n % 64 == 63 {
                // Long body scans yield so other sessions on this core keep going.
                tokio::task::yield_now().await;
            }
        }
        out
    }

    pub(super) async fn search(
        &mut self,
        tag: &str,
        uid: bool,
        ret: SearchReturn,
        key: SearchKey,
    ) -> Done {
        self.refresh(uid).await;
        if uses_modseq(&key) {
            self.condstore = true;
        }
        let hits = self.matching(&key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::Bad("No mailbox selected".into());
        };
        let nums: Vec<u32> = hits
            .iter()
            .map(|p| if uid { sel.msgs[*p].uid } else { *p as u32 + 1 })
            .collect();
        let modseq = uses_modseq(&key)
            .then(|| hits.iter().map(|p| sel.msgs[*p].modseq).max())
            .flatten();
        if ret.extended {
            // RFC 4731 §3.1.
            let mut l = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                l.push_str(" UID");
            }
            if !nums.is_empty() {
                if ret.min {
                    l.push_str(&format!(" MIN {}", nums[0]));
                }
                if ret.max {
                    l.push_str(&format!(" MAX {}", nums[nums.len() - 1]));
                }
                if ret.all {
                    l.push_str(&format!(" ALL {}", super::select::compress(&nums)));
                }
            }
            if ret.count {
                l.push_str(&format!(" COUNT {}", nums.len()));
            }
            if let Some(m) = modseq {
                l.push_str(&format!(" MODSEQ {m}"));
            }
            self.line(&l);
        } else {
            let mut l = String::from("* SEARCH");
            for n in &nums {
                l.push(' ');
                l.push_str(&n.to_string());
            }
            if let Some(m) = modseq {
                l.push_str(&format!(" (MODSEQ {m})"));
            }
            self.line(&l);
        }
        Done::Ok(if uid {
            "UID SEARCH completed".into()
        } else {
            "SEARCH completed".into()
        })
    }

    pub(super) async fn sort(
        &mut self,
        uid: bool,
        criteria: Vec<(bool, SortKey)>,
        key: SearchKey,
    ) -> Done {
        self.refresh(uid).await;
        let hits = self.matching(&key).await;
        let records = self.records(&hits);
        let Some(sel) = self.sel.as_ref() else {
            return Done::Bad("No mailbox selected".into());
        };
        let uids: Vec<u32> = hits.iter().map(|p| sel.msgs[*p].uid).collect();
        let headers = self
            .ctx
            .shared
            .mailboxes
            .headers(sel.id(), &uids)
            .unwrap_or_default();
        #[derive(PartialEq, PartialOrd)]
        enum K {
            N(i64),
            S(String),
        }
        let keyed: Vec<(Vec<K>, usize)> = hits
            .iter()
            .map(|p| {
                let m = &sel.msgs[*p];
                let rec = records.get(&m.uid);
                let h = headers.get(&m.uid).map(Vec::as_slice).unwrap_or_default();
                let ks = criteria
                    .iter()
                    .map(|(_, k)| match k {
                        SortKey::Arrival => K::N(rec.map(|r| r.internal_date).unwrap_or(0)),
                        SortKey::Size => K::N(rec.map(|r| r.size as i64).unwrap_or(0)),
                        SortKey::Date => K::N(
                            mime::field(h, "Date")
                                .and_then(|d| mime::parse_date(&d))
                                .or(rec.map(|r| r.internal_date))
                                .unwrap_or(0),
                        ),
                        SortKey::From => K::S(first_mailbox(mime::field(h, "From"))),
                        SortKey::To => K::S(first_mailbox(mime::field(h, "To"))),
                        SortKey::Cc => K::S(first_mailbox(mime::field(h, "Cc"))),
                        SortKey::Subject => K::S(base_subject(&String::from_utf8_lossy(
                            &mime::field(h, "Subject").unwrap_or_default(),
                        ))),
                    })
                    .collect();
                (ks, *p)
            })
            .collect();
        let mut keyed = keyed;
        keyed.sort_by(|a, b| {
            for (i, (rev, _)) in criteria.iter().enumerate() {
                let o = a.0[i]
                    .partial_cmp(&b.0[i])
                    .unwrap_or(std::cmp::Ordering::Equal);
                let o = if *rev { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            a.1.cmp(&b.1)
        });
        let mut l = String::from("* SORT");
        for (_, p) in &keyed {
            let n = if uid { sel.msgs[*p].uid } else { *p as u32 + 1 };
            l.push_str(&format!(" {n}"));
        }
        self.line(&l);
        Done::Ok(if uid {
            "UID SORT completed".into()
        } else {
            "SORT completed".into()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_and_subjects() {
        assert_eq!(
            decode_words(b"=?UTF-8?B?w6R4?= =?ISO-8859-1?Q?caf=E9_au?= lait"),
            "äxcafé au lait"
        );
        assert_eq!(base_subject("Re: [list] Fwd: Hello (fwd)"), "hello");
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
}
