//! FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2), with CHANGEDSINCE / VANISHED (RFC 7162)
//! and BINARY (RFC 3516). Header fields come from the index's header cache; bodies are read
//! with memmap2.

use super::view::ViewMsg;
use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::encode;
use postcore_protocol::imap::mime;
use postcore_protocol::imap::{FetchAtt, Section, SectionText, SeqSet, StoreMode};
use postcore_storage::mailbox::{HeaderSet, MessageRecord, flag};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write as _;

pub(super) use crate::message_file::{Body, open as open_body};

/// The `BODY[...]` name of a section as echoed in the response.
fn section_name(s: &Section) -> String {
    let mut out = s
        .part
        .iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(".");
    let text = match &s.text {
        SectionText::Full => String::new(),
        SectionText::Header => "HEADER".into(),
        SectionText::Text => "TEXT".into(),
        SectionText::Mime => "MIME".into(),
        SectionText::HeaderFields(f) => format!("HEADER.FIELDS ({})", f.join(" ")),
        SectionText::HeaderFieldsNot(f) => format!("HEADER.FIELDS.NOT ({})", f.join(" ")),
    };
    if !out.is_empty() && !text.is_empty() {
        out.push('.');
    }
    out.push_str(&text);
    out
}

/// The octets of a section (RFC 9051 §6.4.5). `header` is the message's header block.
pub(super) fn section_bytes<'a>(data: &'a [u8], header: &'a [u8], s: &Section) -> Cow<'a, [u8]> {
    if s.part.is_empty() {
        return match &s.text {
            SectionText::Full => Cow::Borrowed(data),
            SectionText::Header => Cow::Borrowed(header),
            SectionText::Text => Cow::Borrowed(data.get(header.len()..).unwrap_or_default()),
            SectionText::HeaderFields(f) => Cow::Owned(mime::select_fields(header, f, false)),
            SectionText::HeaderFieldsNot(f) => Cow::Owned(mime::select_fields(header, f, true)),
            SectionText::Mime => Cow::Borrowed(&[]),
        };
    }
    let top = mime::parse(data);
    let Some(p) = top.resolve(&s.part) else {
        return Cow::Borrowed(&[]);
    };
    let owned = |b: &[u8]| Cow::Owned(b.to_vec());
    match &s.text {
        SectionText::Full => owned(p.body),
        SectionText::Mime => owned(p.header),
        other => match &p.message {
            None => Cow::Borrowed(&[]),
            Some(m) => match other {
                SectionText::Header => owned(m.header),
                SectionText::Text => owned(m.body),
                SectionText::HeaderFields(f) => Cow::Owned(mime::select_fields(m.header, f, false)),
                SectionText::HeaderFieldsNot(f) => {
                    Cow::Owned(mime::select_fields(m.header, f, true))
                }
                _ => Cow::Borrowed(&[]),
            },
        },
    }
}

/// RFC 3516: the section with its content transfer encoding removed; `None` if the
/// encoding is unknown.
fn binary_bytes(data: &[u8], s: &Section) -> Option<Vec<u8>> {
    if s.part.is_empty() {
        return Some(data.to_vec());
    }
    let top = mime::parse(data);
    let p = top.resolve(&s.part)?;
    let enc = mime::field(p.header, "Content-Transfer-Encoding")
        .map(|v| String::from_utf8_lossy(&v).trim().to_ascii_lowercase())
        .unwrap_or_else(|| "7bit".into());
    postcore_protocol::imap::text::decode_transfer(p.body, &enc)
}

fn needs_full(a: &FetchAtt) -> bool {
    match a {
        FetchAtt::Body
        | FetchAtt::BodyStructure
        | FetchAtt::Rfc822
        | FetchAtt::Rfc822Text
        | FetchAtt::Preview
        | FetchAtt::PreviewFuzzy(_) => true,
        FetchAtt::Section { section, .. } => {
            !section.part.is_empty()
                || matches!(section.text, SectionText::Full | SectionText::Text)
        }
        _ => false,
    }
}

fn needs_header(a: &FetchAtt) -> bool {
    matches!(
        a,
        FetchAtt::Envelope | FetchAtt::Rfc822Header | FetchAtt::Section { .. }
    )
}

fn sets_seen(a: &FetchAtt) -> bool {
    match a {
        FetchAtt::Rfc822 | FetchAtt::Rfc822Text => true,
        FetchAtt::Section { peek, .. } => !peek,
        _ => false,
    }
}

/// Messages in the first slice of a FETCH answer (sent as soon as it is written).
const FIRST_SLICE: usize = 32;
/// Messages per later slice (one batch read of cached headers or records each).
const SLICE: usize = 1024;

impl Session {
    /// Message records for positions of the selected mailbox, by UID.
    pub(super) fn records(&self, positions: &[usize]) -> HashMap<u32, MessageRecord> {
        let Some(sel) = self.sel.as_ref() else {
            return HashMap::new();
        };
        let idx = &self.ctx.shared.mailboxes;
        if positions.len() > 64 {
            let wanted: std::collections::HashSet<u32> =
                positions.iter().map(|p| sel.msgs[*p].uid).collect();
            let lo = wanted.iter().min().copied().unwrap_or(1);
            let hi = wanted.iter().max().copied().unwrap_or(0);
            idx.messages_range(sel.id(), lo, hi)
                .unwrap_or_default()
                .into_iter()
                .filter(|(u, _)| wanted.contains(u))
                .collect()
        } else {
            positions
                .iter()
                .filter_map(|p| {
                    let uid = sel.msgs[*p].uid;
                    idx.message(sel.id(), uid).ok().flatten().map(|r| (uid, r))
                })
                .collect()
        }
    }

    /// FETCH and UID FETCH (RFC 9051 §6.4.5): the mailbox's changes taken in (expunges only
    /// for UID FETCH, §7.4.1), then the answer.
    pub(super) async fn fetch(
        &mut self,
        uid: bool,
        set: SeqSet,
        atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Done {
        if vanished && !self.qresync {
            return Done::bad("VANISHED needs QRESYNC to be enabled");
        }
        self.refresh(uid).await;
        self.fetch_current(uid, set, atts, changed_since, vanished)
            .await
    }

    /// FETCH over the view as it is, without taking in the mailbox's changes first: for
    /// answers sent from inside another report (NOTIFY's MessageNew, an updating search's
    /// new members), where announcing an expunge would break the numbers in flight.
    pub(super) async fn fetch_current(
        &mut self,
        uid: bool,
        set: SeqSet,
        mut atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Done {
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if !uid && set.out_of_range(sel.msgs.len() as u32) {
            return Done::bad("Invalid message sequence number");
        }
        // RFC 7162 §3.1: FETCH with CHANGEDSINCE or the MODSEQ item enables CONDSTORE.
        if changed_since.is_some() || atts.contains(&FetchAtt::ModSeq) {
            self.enable_condstore();
        }
        complete_atts(&mut atts, uid, changed_since.is_some());
        let positions = self.fetch_positions(&set, uid, changed_since, vanished);
        self.seen_by_fetch(&positions, &mut atts).await;
        // Section names are the same for every message: render them once.
        let names: Vec<String> = atts
            .iter()
            .map(|a| match a {
                FetchAtt::Section { section, .. } => section_name(section),
                _ => String::new(),
            })
            .collect();
        let mut scratch = Vec::with_capacity(4096);
        // In slices: the first small and sent at once, so the client parses the first
        // answers while the rest are read and written.
        let mut start = 0;
        let mut size = FIRST_SLICE;
        while start < positions.len() {
            let end = (start + size).min(positions.len());
            let slice = &positions[start..end];
            let src = self.sources(slice, &atts);
            for &p in slice {
                let Some(body) = self.open_for_fetch(p, &src) else {
                    continue;
                };
                if self
                    .write_fetch(p, &atts, &names, &src, body.as_ref(), &mut scratch)
                    .is_err()
                {
                    return Done::no_with(Code::UnknownCte, "Unknown content transfer encoding");
                }
                if !self.flush_if_big().await {
                    self.conn.close();
                    return Done::Silent;
                }
            }
            if start == 0 && end < positions.len() && !self.flush().await {
                self.conn.close();
                return Done::Silent;
            }
            start = end;
            size = SLICE;
        }
        Done::ok(if uid {
            "UID FETCH completed"
        } else {
            "FETCH completed"
        })
    }

    /// The view positions a FETCH answers (changed since `changed_since`, not expunged), after
    /// announcing `VANISHED (EARLIER)` for QRESYNC (RFC 7162 §3.2.6).
    fn fetch_positions(
        &mut self,
        set: &SeqSet,
        uid: bool,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Vec<usize> {
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        let mut positions = sel.resolve(set, uid);
        let id = sel.id();
        if let (true, Some(cs)) = (vanished, changed_since) {
            // `*` covers UIDs beyond the current last one: they may be the expunged ones.
            let gone: Vec<u32> = self
                .ctx
                .shared
                .mailboxes
                .vanished_since(id, cs)
                .unwrap_or_default()
                .into_iter()
                .filter(|u| set.contains(*u, u32::MAX))
                .collect();
            if !gone.is_empty() {
                self.line(&format!(
                    "* VANISHED (EARLIER) {}",
                    super::view::compress(&gone)
                ));
            }
        }
        let Some(sel) = self.sel.as_ref() else {
            return Vec::new();
        };
        positions.retain(|p| {
            let m = &sel.msgs[*p];
            !m.gone && changed_since.is_none_or(|cs| m.modseq > cs)
        });
        positions
    }

    /// RFC 9051 §6.4.5: a non-PEEK body fetch sets \Seen (only in read-write mode), and the
    /// response then carries FLAGS.
    async fn seen_by_fetch(&mut self, positions: &[usize], atts: &mut Vec<FetchAtt>) {
        let Some(sel) = self.sel.as_ref() else {
            return;
        };
        if !atts.iter().any(sets_seen) || sel.read_only || !sel.mbox.may('s') {
            return;
        }
        let unseen: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|p| sel.msgs[*p].flags & flag::SEEN == 0)
            .collect();
        if unseen.is_empty() {
            return;
        }
        let _ = self
            .apply_flags(&unseen, StoreMode::Add, &["\\Seen".to_string()], None)
            .await;
        if !atts.contains(&FetchAtt::Flags) {
            atts.push(FetchAtt::Flags);
        }
    }

    /// What the FETCH reads besides the view: UID, FLAGS, MODSEQ, RFC822.SIZE and
    /// INTERNALDATE come from the view; header fields from the header cache; the records
    /// (file names) only of the messages whose files must be opened.
    fn sources(&self, positions: &[usize], atts: &[FetchAtt]) -> Sources {
        let full = atts.iter().any(needs_full);
        let header_needed = atts.iter().any(needs_header);
        let mut src = Sources {
            full,
            header_needed,
            headers: HeaderSet::default(),
            records: HashMap::new(),
        };
        let Some(sel) = self.sel.as_ref() else {
            return src;
        };
        if header_needed && !full {
            let uids: Vec<u32> = positions.iter().map(|p| sel.msgs[*p].uid).collect();
            src.headers = self
                .ctx
                .shared
                .mailboxes
                .headers(sel.id(), &uids)
                .unwrap_or_default();
        }
        if full || header_needed {
            let file_positions: Vec<usize> = positions
                .iter()
                .copied()
                .filter(|p| src.need_file(sel.msgs[*p].uid))
                .collect();
            if !file_positions.is_empty() {
                src.records = self.records(&file_positions);
            }
        }
        src
    }

    /// The message file at view position `p` when the FETCH needs it: `Some(None)` when it
    /// does not, `None` when the message is gone (it is left out of the response).
    fn open_for_fetch(&self, p: usize, src: &Sources) -> Option<Option<Body>> {
        let sel = self.sel.as_ref()?;
        let uid = sel.msgs[p].uid;
        if !src.need_file(uid) {
            return Some(None);
        }
        let rec = src.records.get(&uid)?;
        match open_body(&sel.path.join(rec.relative_path())) {
            Ok(b) => Some(Some(b)),
            Err(_) => {
                // Renamed by another session since: look up its current name.
                let fresh = self
                    .ctx
                    .shared
                    .mailboxes
                    .message(sel.id(), uid)
                    .ok()
                    .flatten()?;
                open_body(&sel.path.join(fresh.relative_path()))
                    .ok()
                    .map(Some)
            }
        }
    }

    /// Writes one `* n FETCH (…)` response; `Err` (nothing written) for BINARY of a part
    /// with an unknown transfer encoding.
    fn write_fetch(
        &mut self,
        p: usize,
        atts: &[FetchAtt],
        names: &[String],
        src: &Sources,
        body: Option<&Body>,
        scratch: &mut Vec<u8>,
    ) -> Result<(), ()> {
        let Some(sel) = self.sel.as_ref() else {
            return Ok(());
        };
        let vm = &sel.msgs[p];
        let data: &[u8] = body.map(Body::bytes).unwrap_or_default();
        let header: &[u8] = if body.is_some() {
            mime::split(data).0
        } else {
            src.headers.get(vm.uid).unwrap_or_default()
        };
        let msg = Item {
            vm,
            recent: !self.rev2 && sel.is_recent(vm.uid),
            header,
            data,
        };
        let out = &mut self.conn.out;
        let mark = out.len();
        let _ = write!(out, "* {} FETCH (", p + 1);
        for (i, a) in atts.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            if write_att(out, a, &names[i], &msg, scratch).is_err() {
                out.truncate(mark);
                return Err(());
            }
        }
        out.extend_from_slice(b")\r\n");
        Ok(())
    }
}

/// What one FETCH reads besides the view.
struct Sources {
    /// Some attribute needs the whole message.
    full: bool,
    /// Some attribute needs the header block.
    header_needed: bool,
    /// Cached header blocks (when no attribute needs the whole message).
    headers: HeaderSet,
    /// Records of the messages whose files are opened, by UID.
    records: HashMap<u32, MessageRecord>,
}

impl Sources {
    /// True if the message with `uid` must be read from its file.
    fn need_file(&self, uid: u32) -> bool {
        self.full || (self.header_needed && !self.headers.contains(uid))
    }
}

/// One message being answered.
struct Item<'a> {
    vm: &'a ViewMsg,
    recent: bool,
    header: &'a [u8],
    data: &'a [u8],
}

/// UID is always returned by UID FETCH; RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ.
fn complete_atts(atts: &mut Vec<FetchAtt>, uid: bool, changed_since: bool) {
    if uid && !atts.contains(&FetchAtt::Uid) {
        atts.insert(0, FetchAtt::Uid);
    }
    if changed_since && !atts.contains(&FetchAtt::ModSeq) {
        atts.push(FetchAtt::ModSeq);
    }
}

/// Writes one FETCH data item (RFC 9051 §7.5.2); `Err` for an unknown transfer encoding.
fn write_att(
    out: &mut Vec<u8>,
    a: &FetchAtt,
    name: &str,
    m: &Item<'_>,
    scratch: &mut Vec<u8>,
) -> Result<(), ()> {
    let vm = m.vm;
    match a {
        FetchAtt::Uid => {
            let _ = write!(out, "UID {}", vm.uid);
        }
        FetchAtt::Flags => {
            out.extend_from_slice(b"FLAGS ");
            vm.write_flags(out, m.recent);
        }
        FetchAtt::ModSeq => {
            let _ = write!(out, "MODSEQ ({})", vm.modseq);
        }
        FetchAtt::Preview => {
            out.extend_from_slice(b"PREVIEW ");
            encode::string(
                out,
                postcore_protocol::imap::text::preview(m.data).as_bytes(),
            );
        }
        FetchAtt::PreviewFuzzy(snippet) => {
            out.extend_from_slice(if *snippet {
                b"SNIPPET (FUZZY "
            } else {
                b"PREVIEW (FUZZY "
            });
            encode::string(
                out,
                postcore_protocol::imap::text::preview(m.data).as_bytes(),
            );
            out.push(b')');
        }
        FetchAtt::InternalDate => out.extend_from_slice(
            format!("INTERNALDATE \"{}\"", crate::util::imap_date(vm.date)).as_bytes(),
        ),
        // RFC 8514 §4.1.
        FetchAtt::SaveDate => out.extend_from_slice(
            format!("SAVEDATE \"{}\"", crate::util::imap_date(vm.saved)).as_bytes(),
        ),
        FetchAtt::Size => {
            let _ = write!(out, "RFC822.SIZE {}", vm.size);
        }
        FetchAtt::Envelope => {
            out.extend_from_slice(b"ENVELOPE ");
            mime::write_envelope(out, m.header);
        }
        FetchAtt::Body | FetchAtt::BodyStructure => {
            let ext = *a == FetchAtt::BodyStructure;
            out.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
            mime::parse(m.data).write_structure(out, ext);
        }
        FetchAtt::Rfc822 => {
            out.extend_from_slice(b"RFC822 ");
            encode::literal(out, m.data);
        }
        FetchAtt::Rfc822Header => {
            out.extend_from_slice(b"RFC822.HEADER ");
            encode::literal(out, m.header);
        }
        FetchAtt::Rfc822Text => {
            out.extend_from_slice(b"RFC822.TEXT ");
            encode::literal(out, m.data.get(m.header.len()..).unwrap_or_default());
        }
        FetchAtt::Section {
            section,
            partial,
            binary,
            size_only,
            ..
        } => {
            let want = SectionWant {
                name,
                section,
                partial: *partial,
                binary: *binary,
                size_only: *size_only,
            };
            return write_section(out, &want, m, scratch);
        }
    }
    Ok(())
}

/// A `BODY[…]`, `BINARY[…]` or `BINARY.SIZE[…]` item as asked.
struct SectionWant<'a> {
    name: &'a str,
    section: &'a Section,
    partial: Option<(u32, u32)>,
    binary: bool,
    size_only: bool,
}

/// Writes a body section (RFC 9051 §6.4.5) or its RFC 3516 BINARY form.
fn write_section(
    out: &mut Vec<u8>,
    w: &SectionWant<'_>,
    m: &Item<'_>,
    scratch: &mut Vec<u8>,
) -> Result<(), ()> {
    let (name, section) = (w.name, w.section);
    let fields_only = section.part.is_empty()
        && matches!(
            section.text,
            SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_)
        );
    if fields_only && !w.binary && w.partial.is_none() {
        // The common case (mail clients listing a mailbox): no allocation.
        scratch.clear();
        if let SectionText::HeaderFields(f) | SectionText::HeaderFieldsNot(f) = &section.text {
            let not = matches!(section.text, SectionText::HeaderFieldsNot(_));
            mime::select_fields_into(m.header, f, not, scratch);
        }
        let _ = write!(out, "BODY[{name}] {{{}}}\r\n", scratch.len());
        out.extend_from_slice(scratch);
        return Ok(());
    }
    let bytes: Cow<[u8]> = if w.binary {
        Cow::Owned(binary_bytes(m.data, section).ok_or(())?)
    } else {
        section_bytes(m.data, m.header, section)
    };
    if w.size_only {
        out.extend_from_slice(format!("BINARY.SIZE[{name}] {}", bytes.len()).as_bytes());
        return Ok(());
    }
    let kw = if w.binary { "BINARY" } else { "BODY" };
    let slice: &[u8] = match w.partial {
        Some((o, n)) => {
            let o = (o as usize).min(bytes.len());
            let e = o.saturating_add(n as usize).min(bytes.len());
            out.extend_from_slice(format!("{kw}[{name}]<{o}> ").as_bytes());
            &bytes[o..e]
        }
        None => {
            out.extend_from_slice(format!("{kw}[{name}] ").as_bytes());
            &bytes
        }
    };
    if w.binary && slice.contains(&0) {
        // RFC 3516 literal8: BINARY content as it is.
        encode::literal8(out, slice);
    } else {
        encode::literal(out, slice);
    }
    Ok(())
}
