//! FETCH and UID FETCH (RFC 9051 §6.4.5, §7.5.2), with CHANGEDSINCE / VANISHED (RFC 7162)
//! and BINARY (RFC 3516). Header fields come from the index's header cache; bodies are read
//! with memmap2.

use super::{Done, Session};
use postcore_protocol::imap::encode;
use postcore_protocol::imap::mime;
use postcore_protocol::imap::{FetchAtt, Section, SectionText, SeqSet, StoreMode};
use postcore_storage::mailbox::{MessageRecord, flag};
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
        FetchAtt::Body | FetchAtt::BodyStructure | FetchAtt::Rfc822 | FetchAtt::Rfc822Text => true,
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

    pub(super) async fn fetch(
        &mut self,
        uid: bool,
        set: SeqSet,
        mut atts: Vec<FetchAtt>,
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Done {
        if vanished && !self.qresync {
            return Done::Bad("VANISHED needs QRESYNC to be enabled".into());
        }
        self.refresh(uid).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::Bad("No mailbox selected".into());
        };
        if !uid && set.out_of_range(sel.msgs.len() as u32) {
            return Done::Bad("Invalid message sequence number".into());
        }
        if changed_since.is_some() {
            self.condstore = true;
        }
        if uid && !atts.contains(&FetchAtt::Uid) {
            atts.insert(0, FetchAtt::Uid);
        }
        // RFC 7162 §3.1.4.1: CHANGEDSINCE implies MODSEQ in every FETCH response.
        if changed_since.is_some() && !atts.contains(&FetchAtt::ModSeq) {
            atts.push(FetchAtt::ModSeq);
        }
        let mut positions = sel.resolve(&set, uid);
        let id = sel.id();
        if let (true, Some(cs)) = (vanished, changed_since) {
            // `*` covers UIDs beyond the current last one: they may be the expunged ones.
            let max = u32::MAX;
            let gone: Vec<u32> = self
                .ctx
                .shared
                .mailboxes
                .vanished_since(id, cs)
                .unwrap_or_default()
                .into_iter()
                .filter(|u| set.contains(*u, max))
                .collect();
            if !gone.is_empty() {
                self.line(&format!(
                    "* VANISHED (EARLIER) {}",
                    super::select::compress(&gone)
                ));
            }
        }
        let Some(sel) = self.sel.as_ref() else {
            return Done::Bad("No mailbox selected".into());
        };
        positions.retain(|p| {
            let m = &sel.msgs[*p];
            !m.gone && changed_since.is_none_or(|cs| m.modseq > cs)
        });
        // RFC 9051 §6.4.5: a non-PEEK body fetch sets \Seen (only in read-write mode).
        if atts.iter().any(sets_seen) && !sel.read_only && sel.mbox.may('s') {
            let unseen: Vec<usize> = positions
                .iter()
                .copied()
                .filter(|p| sel.msgs[*p].flags & flag::SEEN == 0)
                .collect();
            if !unseen.is_empty() {
                let _ = self
                    .apply_flags(&unseen, StoreMode::Add, &["\\Seen".to_string()], None)
                    .await;
                if !atts.contains(&FetchAtt::Flags) {
                    atts.push(FetchAtt::Flags);
                }
            }
        }
        let full = atts.iter().any(needs_full);
        let header_needed = atts.iter().any(needs_header);
        // UID, FLAGS, MODSEQ, RFC822.SIZE and INTERNALDATE come from the view; the record
        // (file name) is only needed to open the file.
        let plain_only = !full && !header_needed;
        let headers = if header_needed && !full {
            let uids: Vec<u32> = match self.sel.as_ref() {
                Some(sel) => positions.iter().map(|p| sel.msgs[*p].uid).collect(),
                None => Vec::new(),
            };
            self.ctx
                .shared
                .mailboxes
                .headers(id, &uids)
                .unwrap_or_default()
        } else {
            Default::default()
        };
        let need_file = |uid: u32| full || (header_needed && !headers.contains(uid));
        let file_positions: Vec<usize> = match self.sel.as_ref() {
            Some(sel) if !plain_only => positions
                .iter()
                .copied()
                .filter(|p| need_file(sel.msgs[*p].uid))
                .collect(),
            _ => Vec::new(),
        };
        let records = if file_positions.is_empty() {
            HashMap::new()
        } else {
            self.records(&file_positions)
        };
        let mut scratch = Vec::with_capacity(4096);
        // Section names are the same for every message: render them once.
        let names: Vec<String> = atts
            .iter()
            .map(|a| match a {
                FetchAtt::Section { section, .. } => section_name(section),
                _ => String::new(),
            })
            .collect();
        for p in positions {
            let Some(sel) = self.sel.as_ref() else {
                break;
            };
            let vm = &sel.msgs[p];
            let (vuid, vmodseq, vsize, vdate) = (vm.uid, vm.modseq, vm.size, vm.date);
            let path = &sel.path;
            let mut body = None;
            if need_file(vuid) && !plain_only {
                let Some(rec) = records.get(&vuid) else {
                    continue;
                };
                match open_body(&path.join(rec.relative_path())) {
                    Ok(b) => body = Some(b),
                    Err(_) => {
                        // Renamed by another session since: look up its current name.
                        let fresh = self.ctx.shared.mailboxes.message(id, vuid).ok().flatten();
                        match fresh.and_then(|r| open_body(&path.join(r.relative_path())).ok()) {
                            Some(b) => body = Some(b),
                            None => continue,
                        }
                    }
                }
            }
            let data: &[u8] = body.as_ref().map(Body::bytes).unwrap_or_default();
            let header: &[u8] = if body.is_some() {
                mime::split(data).0
            } else {
                headers.get(vuid).unwrap_or_default()
            };
            let mark = self.conn.out.len();
            let out = &mut self.conn.out;
            let _ = write!(out, "* {} FETCH (", p + 1);
            for (i, a) in atts.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                match a {
                    FetchAtt::Uid => {
                        let _ = write!(out, "UID {vuid}");
                    }
                    FetchAtt::Flags => {
                        out.extend_from_slice(b"FLAGS ");
                        vm.write_flags(out, !self.rev2 && sel.is_recent(vuid));
                    }
                    FetchAtt::ModSeq => {
                        let _ = write!(out, "MODSEQ ({vmodseq})");
                    }
                    FetchAtt::InternalDate => out.extend_from_slice(
                        format!("INTERNALDATE \"{}\"", crate::util::imap_date(vdate)).as_bytes(),
                    ),
                    FetchAtt::Size => {
                        let _ = write!(out, "RFC822.SIZE {vsize}");
                    }
                    FetchAtt::Envelope => {
                        out.extend_from_slice(b"ENVELOPE ");
                        mime::write_envelope(out, header);
                    }
                    FetchAtt::Body | FetchAtt::BodyStructure => {
                        let ext = *a == FetchAtt::BodyStructure;
                        out.extend_from_slice(if ext { b"BODYSTRUCTURE " } else { b"BODY " });
                        mime::parse(data).write_structure(out, ext);
                    }
                    FetchAtt::Rfc822 => {
                        out.extend_from_slice(b"RFC822 ");
                        encode::literal(out, data);
                    }
                    FetchAtt::Rfc822Header => {
                        out.extend_from_slice(b"RFC822.HEADER ");
                        encode::literal(out, header);
                    }
                    FetchAtt::Rfc822Text => {
                        out.extend_from_slice(b"RFC822.TEXT ");
                        encode::literal(out, data.get(header.len()..).unwrap_or_default());
                    }
                    FetchAtt::Section {
                        section,
                        partial,
                        binary,
                        size_only,
                        ..
                    } => {
                        let name = &names[i];
                        let fields_only = section.part.is_empty()
                            && matches!(
                                section.text,
                                SectionText::HeaderFields(_) | SectionText::HeaderFieldsNot(_)
                            );
                        if fields_only && !*binary && partial.is_none() {
                            // The common case (mail clients listing a mailbox): no allocation.
                            scratch.clear();
                            if let SectionText::HeaderFields(f) | SectionText::HeaderFieldsNot(f) =
                                &section.text
                            {
                                let not = matches!(section.text, SectionText::HeaderFieldsNot(_));
                                mime::select_fields_into(header, f, not, &mut scratch);
                            }
                            let _ = write!(out, "BODY[{name}] {{{}}}\r\n", scratch.len());
                            out.extend_from_slice(&scratch);
                            continue;
                        }
                        let bytes: Cow<[u8]> = if *binary {
                            match binary_bytes(data, section) {
                                Some(b) => Cow::Owned(b),
                                None => {
                                    out.truncate(mark);
                                    return Done::No(
                                        "[UNKNOWN-CTE] Unknown content transfer encoding".into(),
                                    );
                                }
                            }
                        } else {
                            section_bytes(data, header, section)
                        };
                        if *size_only {
                            out.extend_from_slice(
                                format!("BINARY.SIZE[{name}] {}", bytes.len()).as_bytes(),
                            );
                            continue;
                        }
                        let kw = if *binary { "BINARY" } else { "BODY" };
                        let slice: &[u8] = match partial {
                            Some((o, n)) => {
                                let o = (*o as usize).min(bytes.len());
                                let e = o.saturating_add(*n as usize).min(bytes.len());
                                out.extend_from_slice(format!("{kw}[{name}]<{o}> ").as_bytes());
                                &bytes[o..e]
                            }
                            None => {
                                out.extend_from_slice(format!("{kw}[{name}] ").as_bytes());
                                &bytes
                            }
                        };
                        if *binary && slice.contains(&0) {
                            // RFC 3516 literal8.
                            out.push(b'~');
                        }
                        encode::literal(out, slice);
                    }
                }
            }
            out.extend_from_slice(b")\r\n");
            if !self.flush_if_big().await {
                self.conn.close();
                return Done::Silent;
            }
        }
        Done::Ok(if uid {
            "UID FETCH completed".into()
        } else {
            "FETCH completed".into()
        })
    }
}
