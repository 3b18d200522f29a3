//! SEARCH and UID SEARCH (RFC 9051 §6.4.4) with ESEARCH return options (RFC 4731),
//! MODSEQ (RFC 7162 §3.1.5), OLDER/YOUNGER (RFC 5032), and SORT (RFC 5256).
//!
//! Flags, sizes and dates come from the view and the index; header keys from the cached
//! header blocks (RFC 2047 encoded words decoded); BODY and TEXT look into the decoded text
//! of each part (base64 / quoted-printable removed, HTML reduced to text).

use super::sort_keys::SortKeys;
use super::{Done, Session};
use crate::message_file::open as open_body;
use postcore_protocol::imap::mime;
pub(super) use postcore_protocol::imap::text::{
    MAX_WORD, body_text, casemap, decode_words, is_word_char,
};
use postcore_protocol::imap::{SearchKey, SearchReturn, SortKey};
use postcore_storage::mailbox::flag;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// What one message offers to the search: lazily loaded header and body.
struct Candidate<'a> {
    /// Full-text index answers for BODY/TEXT strings (UIDs whose text has every word).
    fts: &'a HashMap<String, FtsAnswer>,
    seq: u32,
    uid: u32,
    flags: u8,
    /// \Recent in this session (RFC 3501 §2.3.2).
    recent: bool,
    keywords: &'a [String],
    modseq: u64,
    size: u64,
    date: i64,
    /// The save date (RFC 8514).
    saved: i64,
    header: Option<Vec<u8>>,
    text: Option<String>,
    /// Finds the message file (looked up only when a file must be read).
    locate: &'a dyn Fn(u32) -> Option<std::path::PathBuf>,
}

impl Candidate<'_> {
    fn header(&mut self) -> &[u8] {
        if self.header.is_none() {
            let h = (self.locate)(self.uid)
                .and_then(|p| open_body(&p).ok())
                .map(|b| mime::split(b.bytes()).0.to_vec())
                .unwrap_or_default();
            self.header = Some(h);
        }
        self.header.as_deref().unwrap_or_default()
    }

    fn text(&mut self) -> &str {
        if self.text.is_none() {
            let t = (self.locate)(self.uid)
                .and_then(|p| open_body(&p).ok())
                .map(|b| squeeze(&casemap(&body_text(b.bytes()))))
                .unwrap_or_default();
            self.text = Some(t);
        }
        self.text.as_deref().unwrap_or_default()
    }

    /// RFC 9051 §6.4.4 HEADER/FROM/TO/CC/BCC: the field's decoded text contains `needle`
    /// under i;unicode-casemap (RFC 5255 §4, I18NLEVEL=1);
    /// for address fields also each address as `name <local@domain>`, comments and folding
    /// removed (so `<user (comment)@ (comment) domain.org>` matches `user@domain.org`).
    fn header_has(&mut self, name: &str, needle: &str) -> bool {
        let needle = casemap(needle);
        let is_address = ADDRESS_FIELDS.iter().any(|f| f.eq_ignore_ascii_case(name));
        let h = self.header();
        mime::fields(h).iter().any(|(n, v)| {
            if !n.eq_ignore_ascii_case(name.as_bytes()) {
                return false;
            }
            if needle.is_empty() || casemap(&decode_words(v)).contains(&needle) {
                return true;
            }
            is_address
                && mime::addresses(v).into_iter().any(|(dn, _, l, d)| {
                    let spec = match (l, d) {
                        (Some(l), Some(d)) if !d.is_empty() => format!("{l}@{d}"),
                        (Some(l), _) => l,
                        _ => return false,
                    };
                    let dn = dn.map(|n| decode_words(n.as_bytes())).unwrap_or_default();
                    casemap(&format!("{dn} <{spec}>")).contains(&needle)
                })
        })
    }

    /// RFC 9051 §6.4.4: the Date field's day as written, time and zone disregarded.
    fn sent_day(&mut self) -> Option<i64> {
        mime::field(self.header(), "Date").and_then(|d| mime::sent_day(&d))
    }
}

/// Fields whose value is an address list (RFC 5322 §3.6.2, §3.6.3).
const ADDRESS_FIELDS: [&str; 6] = ["From", "Sender", "Reply-To", "To", "Cc", "Bcc"];

fn body_strings<'a>(k: &'a SearchKey, out: &mut Vec<&'a str>) {
    match k {
        SearchKey::Body(s) | SearchKey::Text(s) => out.push(s),
        SearchKey::Not(a) => body_strings(a, out),
        SearchKey::Or(a, b) => {
            body_strings(a, out);
            body_strings(b, out);
        }
        SearchKey::And(v) => v.iter().for_each(|x| body_strings(x, out)),
        _ => {}
    }
}

/// The ESEARCH response (RFC 4731 §3.1) for `nums` in answer order: ascending for SEARCH,
/// sort order for SORT (RFC 5267 §3.1: MIN and MAX are the first and last in that order,
/// ALL keeps it).
fn esearch_line(
    tag: &str,
    uid: bool,
    ret: &SearchReturn,
    nums: &[u32],
    modseq: Option<u64>,
) -> String {
    let mut l = format!("* ESEARCH (TAG \"{tag}\")");
    if uid {
        l.push_str(" UID");
    }
    if let (Some(first), Some(last)) = (nums.first(), nums.last()) {
        if ret.min {
            let _ = write!(l, " MIN {first}");
        }
        if ret.max {
            let _ = write!(l, " MAX {last}");
        }
        if ret.all {
            let _ = write!(l, " ALL {}", super::view::compress(nums));
        }
    }
    if let Some((lo, hi)) = ret.partial {
        // RFC 5267 §4.4: the results at those positions, NIL when there are none.
        let window = partial_window(nums, lo, hi);
        let set = if window.is_empty() {
            "NIL".to_string()
        } else {
            super::view::compress(window)
        };
        let _ = write!(l, " PARTIAL ({lo}:{hi} {set})");
    }
    if ret.count {
        let _ = write!(l, " COUNT {}", nums.len());
    }
    if let Some(m) = modseq {
        let _ = write!(l, " MODSEQ {m}");
    }
    l
}

/// The part of `items` (in answer order) at 1-based positions `lo..=hi` (RFC 5267 §4.4).
fn partial_window<T>(items: &[T], lo: u32, hi: u32) -> &[T] {
    let start = (lo as usize - 1).min(items.len());
    let end = (hi as usize).min(items.len());
    &items[start..end]
}

/// RFC 5182 §2.1: SAVE alone answers with no ESEARCH (with UPDATE, an ESEARCH without
/// data, as Dovecot does: the updates will refer to its tag).
fn answers(ret: &SearchReturn) -> bool {
    !ret.save || ret.min || ret.max || ret.all || ret.count || ret.partial.is_some() || ret.update
}

/// RFC 7162 §3.1.5: when the search used MODSEQ, the highest mod-sequence of the messages
/// returned (`positions` in answer order).
fn returned_modseq(
    key: &SearchKey,
    ret: &SearchReturn,
    positions: &[usize],
    msgs: &[super::view::ViewMsg],
) -> Option<u64> {
    uses_modseq(key)
        .then(|| {
            returned(ret, positions)
                .iter()
                .map(|p| msgs[*p].modseq)
                .max()
        })
        .flatten()
}

/// The positions an ESEARCH answer returns: only the MIN and/or MAX match when only those
/// were asked for (RFC 7162 §3.1.5, RFC 5182 §2.4), else every match.
pub(super) fn returned(ret: &SearchReturn, hits: &[usize]) -> Vec<usize> {
    if let Some((lo, hi)) = ret.partial
        && !ret.count
    {
        // RFC 9394 §3.1 (PARTIAL with SAVE or MODSEQ): the messages returned.
        return partial_window(hits, lo, hi).to_vec();
    }
    let only_ends = ret.extended && !ret.all && !ret.count && (ret.min || ret.max);
    match (only_ends, hits.first(), hits.last()) {
        (true, Some(first), Some(last)) => {
            let mut v: Vec<usize> = [(ret.min, *first), (ret.max, *last)]
                .into_iter()
                .filter_map(|(wanted, p)| wanted.then_some(p))
                .collect();
            v.dedup();
            v
        }
        _ => hits.to_vec(),
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

fn uses_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq(_) => true,
        SearchKey::Not(a) => uses_modseq(a),
        SearchKey::Or(a, b) => uses_modseq(a) || uses_modseq(b),
        SearchKey::And(v) => v.iter().any(uses_modseq),
        _ => false,
    }
}

/// What the full-text index says of one BODY/TEXT string: the candidate messages, and
/// whether being a candidate is the answer (one run of letters and digits) or must be
/// confirmed on the text.
struct FtsAnswer {
    set: std::collections::HashSet<u32>,
    exact: bool,
}

/// RFC 9051 §6.4.4 BODY: the decoded body text contains `s` under i;unicode-casemap
/// (RFC 5051; RFC 5255 §4: the comparator of I18NLEVEL=1).
fn body_has(c: &mut Candidate, s: &str) -> bool {
    match c.fts.get(s) {
        Some(a) if !a.set.contains(&c.uid) => false,
        Some(a) if a.exact => true,
        _ => {
            let l = squeeze(&casemap(s));
            c.text().contains(&l)
        }
    }
}

/// `s` with every run of white space as one space: rendered HTML and folded lines put
/// spaces and line ends where the writer saw one space.
fn squeeze(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn eval(k: &SearchKey, c: &mut Candidate, max_seq: u32, max_uid: u32, now: i64) -> bool {
    let date = c.date;
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
        // RFC 3501 §6.4.4: NEW = RECENT UNSEEN, OLD = NOT RECENT.
        SearchKey::New => c.recent && c.flags & flag::SEEN == 0,
        SearchKey::Recent => c.recent,
        SearchKey::Old => !c.recent,
        SearchKey::Header(n, v) => c.header_has(n, v),
        SearchKey::Body(s) => body_has(c, s),
        // RFC 9051 §6.4.4: TEXT is the header and the body.
        SearchKey::Text(s) => {
            let l = squeeze(&casemap(s));
            squeeze(&casemap(&decode_words(c.header()))).contains(&l) || body_has(c, s)
        }
        SearchKey::Before(d) => day < *d,
        SearchKey::On(d) => day == *d,
        SearchKey::Since(d) => day >= *d,
        SearchKey::SentBefore(d) => c.sent_day().is_some_and(|x| x < *d),
        SearchKey::SentOn(d) => c.sent_day().is_some_and(|x| x == *d),
        SearchKey::SentSince(d) => c.sent_day().is_some_and(|x| x >= *d),
        // RFC 8514 §4.2: the save date's day, time and zone disregarded (UTC, as the
        // internal date's keys above).
        SearchKey::SavedBefore(d) => c.saved.div_euclid(86400) < *d,
        SearchKey::SavedOn(d) => c.saved.div_euclid(86400) == *d,
        SearchKey::SavedSince(d) => c.saved.div_euclid(86400) >= *d,
        // §4.3: every mailbox here keeps save dates.
        SearchKey::SaveDateSupported => true,
        SearchKey::Larger(n) => c.size > *n,
        SearchKey::Smaller(n) => c.size < *n,
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
impl Session {
    /// The positions of the selected mailbox matching `key`.
    pub(super) async fn matching(&mut self, key: &SearchKey) -> Vec<usize> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let all: Vec<usize> = (0..sel.msgs.len()).filter(|p| !sel.msgs[*p].gone).collect();
        let headers = if needs_header(key) {
            let uids: Vec<u32> = all.iter().map(|p| sel.msgs[*p].uid).collect();
            self.ctx
                .shared
                .mailboxes
                .headers(sel.id(), &uids)
                .unwrap_or_default()
        } else {
            Default::default()
        };
        // BODY/TEXT strings answered through the full-text index (RFC 9051 §6.4.4 substring
        // match): the messages with, for every run of letters and digits in the string, an
        // indexed word containing it. A string that is one such run is answered by that
        // alone; others are confirmed on the candidates' text. Runs of one character, or
        // longer than the index's words, fall back to reading every message.
        let mut fts: HashMap<String, FtsAnswer> = HashMap::new();
        let meta = &sel.mbox.meta;
        // An index in an older word form is being rebuilt: read the messages meanwhile.
        if meta.fts && meta.fts_format == postcore_storage::mailbox::FTS_FORMAT {
            let mut strings = Vec::new();
            body_strings(key, &mut strings);
            for s in strings {
                let pieces: Vec<String> = s
                    .split(|c: char| !is_word_char(c))
                    .filter(|w| !w.is_empty())
                    .map(casemap)
                    .collect();
                let answerable = |w: &String| (2..=MAX_WORD).contains(&w.chars().count());
                if pieces.is_empty() || !pieces.iter().all(answerable) {
                    continue;
                }
                let mut set: Option<std::collections::HashSet<u32>> = None;
                for w in &pieces {
                    let hits = self
                        .ctx
                        .shared
                        .mailboxes
                        .fts_lookup_containing(sel.id(), w)
                        .unwrap_or_default();
                    set = Some(match set {
                        None => hits,
                        Some(prev) => prev.intersection(&hits).copied().collect(),
                    });
                }
                if let Some(set) = set {
                    let exact = pieces.len() == 1 && s.chars().all(is_word_char);
                    fts.insert(s.to_string(), FtsAnswer { set, exact });
                }
            }
        }
        let body = needs_body(key) && fts.is_empty();
        let max_seq = sel.msgs.len() as u32;
        let max_uid = sel.msgs.last().map(|m| m.uid).unwrap_or(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let idx = self.ctx.shared.mailboxes.clone();
        let (id, folder) = (sel.id(), sel.path.clone());
        let locate = move |uid: u32| -> Option<std::path::PathBuf> {
            idx.message(id, uid)
                .ok()
                .flatten()
                .map(|r| folder.join(r.relative_path()))
        };
        let mut out = Vec::new();
        for (n, p) in all.iter().enumerate() {
            let m = &sel.msgs[*p];
            let mut c = Candidate {
                fts: &fts,
                seq: *p as u32 + 1,
                uid: m.uid,
                flags: m.flags,
                recent: sel.is_recent(m.uid),
                keywords: &m.keywords,
                modseq: m.modseq,
                size: m.size,
                date: m.date,
                saved: m.saved,
                header: headers.get(m.uid).map(<[u8]>::to_vec),
                text: None,
                locate: &locate,
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
        if ret.update && self.context_tag_in_use(tag) {
            // RFC 5267 §4.3: a tag in use by an updating search may not be reused.
            return Done::bad("Tag reuse: an updating search has this tag");
        }
        self.refresh(uid).await;
        if uses_modseq(&key) {
            self.enable_condstore();
        }
        let hits = self.matching(&key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let nums: Vec<u32> = hits
            .iter()
            .map(|p| if uid { sel.msgs[*p].uid } else { *p as u32 + 1 })
            .collect();
        let modseq = returned_modseq(&key, &ret, &hits, &sel.msgs);
        if !answers(&ret) {
            // Nothing to say.
        } else if ret.extended {
            self.line(&esearch_line(tag, uid, &ret, &nums, modseq));
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
        if ret.save {
            self.save_result(&ret, &hits);
        }
        if ret.update {
            self.add_context(tag, uid, key, None, ret.update_fetch, &hits);
        }
        Done::ok(if uid {
            "UID SEARCH completed"
        } else {
            "SEARCH completed"
        })
    }

    /// The messages matching `key` (positions in the view, ascending) with their SORT and
    /// THREAD keys, after taking in the mailbox's changes. Keys come from the process-wide
    /// cache; those missing are derived from the cached headers and kept.
    pub(super) async fn matching_keys(
        &mut self,
        uid: bool,
        key: &SearchKey,
    ) -> (Vec<usize>, Vec<Arc<SortKeys>>) {
        self.refresh(uid).await;
        let hits = self.matching(key).await;
        let keys = self.sort_keys_of(&hits);
        (hits, keys)
    }

    /// The SORT and THREAD keys of the messages at `hits`, from the cache or derived from
    /// the cached headers (and kept).
    fn sort_keys_of(&self, hits: &[usize]) -> Vec<Arc<SortKeys>> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let shared = &self.ctx.shared;
        let uids: Vec<u32> = hits.iter().map(|p| sel.msgs[*p].uid).collect();
        let mut keys = shared.imap_sort_keys.get(sel.id(), &uids);
        let missing: Vec<usize> = (0..hits.len()).filter(|i| keys[*i].is_none()).collect();
        if !missing.is_empty() {
            let want: Vec<u32> = missing.iter().map(|i| uids[*i]).collect();
            let headers = shared
                .mailboxes
                .headers(sel.id(), &want)
                .unwrap_or_default();
            let mut fresh = Vec::with_capacity(missing.len());
            for i in missing {
                let m = &sel.msgs[hits[i]];
                let k = match headers.get(m.uid) {
                    Some(h) => SortKeys::of(h, m.date),
                    // A header too large for the cache (over 64 KB): read from the file.
                    None => {
                        let h = shared
                            .mailboxes
                            .message(sel.id(), m.uid)
                            .ok()
                            .flatten()
                            .and_then(|r| open_body(&sel.path.join(r.relative_path())).ok())
                            .map(|b| mime::split(b.bytes()).0.to_vec())
                            .unwrap_or_default();
                        SortKeys::of(&h, m.date)
                    }
                };
                let k = Arc::new(k);
                fresh.push((m.uid, k.clone()));
                keys[i] = Some(k);
            }
            shared.imap_sort_keys.put(sel.id(), fresh);
        }
        keys.into_iter().flatten().collect()
    }

    /// The positions matching `key` in the order of `criteria` (RFC 5256 §3: keys compared
    /// in order, ties by sequence number).
    pub(super) async fn sorted(
        &mut self,
        criteria: &[(bool, SortKey)],
        key: &SearchKey,
    ) -> Vec<usize> {
        let hits = self.matching(key).await;
        let keys = self.sort_keys_of(&hits);
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let mut order: Vec<usize> = (0..hits.len()).collect();
        order.sort_by(|&a, &b| {
            let (ma, mb) = (&sel.msgs[hits[a]], &sel.msgs[hits[b]]);
            let (ka, kb) = (&keys[a], &keys[b]);
            for (rev, k) in criteria {
                let o = match k {
                    SortKey::Arrival => ma.date.cmp(&mb.date),
                    SortKey::Size => ma.size.cmp(&mb.size),
                    SortKey::Date => ka.sent.cmp(&kb.sent),
                    SortKey::From => ka.from.cmp(&kb.from),
                    SortKey::To => ka.to.cmp(&kb.to),
                    SortKey::Cc => ka.cc.cmp(&kb.cc),
                    SortKey::DisplayFrom => ka.display_from.cmp(&kb.display_from),
                    SortKey::DisplayTo => ka.display_to.cmp(&kb.display_to),
                    SortKey::Subject => ka.thread.subject.cmp(&kb.thread.subject),
                };
                let o = if *rev { o.reverse() } else { o };
                if o != std::cmp::Ordering::Equal {
                    return o;
                }
            }
            hits[a].cmp(&hits[b])
        });
        order.into_iter().map(|i| hits[i]).collect()
    }

    pub(super) async fn sort(
        &mut self,
        tag: &str,
        uid: bool,
        ret: SearchReturn,
        criteria: Vec<(bool, SortKey)>,
        key: SearchKey,
    ) -> Done {
        if ret.update && self.context_tag_in_use(tag) {
            // RFC 5267 §4.3: a tag in use by an updating search may not be reused.
            return Done::bad("Tag reuse: an updating search has this tag");
        }
        if uses_modseq(&key) {
            self.enable_condstore();
        }
        self.refresh(uid).await;
        let sorted = self.sorted(&criteria, &key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        let nums: Vec<u32> = sorted
            .iter()
            .map(|&p| if uid { sel.msgs[p].uid } else { p as u32 + 1 })
            .collect();
        if ret.extended {
            // RFC 5267 §3 (ESORT).
            let modseq = returned_modseq(&key, &ret, &sorted, &sel.msgs);
            if answers(&ret) {
                let l = esearch_line(tag, uid, &ret, &nums, modseq);
                self.line(&l);
            }
            if ret.save {
                // RFC 5182 §2.1: `$` is kept in mailbox order whatever the sort.
                let mut hits = returned(&ret, &sorted);
                hits.sort_unstable();
                let all = SearchReturn::default();
                self.save_result(&all, &hits);
            }
            if ret.update {
                self.add_context(tag, uid, key, Some(criteria), ret.update_fetch, &sorted);
            }
        } else {
            let mut l = String::with_capacity(8 + nums.len() * 6);
            l.push_str("* SORT");
            for n in nums {
                let _ = write!(l, " {n}");
            }
            self.line(&l);
        }
        Done::ok(if uid {
            "UID SORT completed"
        } else {
            "SORT completed"
        })
    }
}
