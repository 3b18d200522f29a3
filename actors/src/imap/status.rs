//! STATUS (RFC 9051 §6.3.11) with SIZE (RFC 8438) and HIGHESTMODSEQ (RFC 7162).

use super::folders::*;
use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::StatusItem;
use postcore_protocol::imap::encode;
use postcore_storage::mailbox::flag;

impl Session {
    pub(super) fn status_lines(&mut self, m: &MailboxRef, items: &[StatusItem]) {
        let Ok((meta, mut msgs)) = self.load(m) else {
            return;
        };
        if let Some(set) = self.private_seen(m) {
            for (u, r) in msgs.iter_mut() {
                r.flags = super::seen::overlay(*u, r.flags, Some(&set));
            }
        }
        let mut parts = Vec::new();
        for it in items {
            let v: u64 = match it {
                StatusItem::Messages => msgs.len() as u64,
                StatusItem::UidNext => meta.uidnext as u64,
                StatusItem::UidValidity => meta.uidvalidity as u64,
                StatusItem::Unseen => msgs
                    .iter()
                    .filter(|(_, r)| r.flags & flag::SEEN == 0)
                    .count() as u64,
                StatusItem::Deleted => msgs
                    .iter()
                    .filter(|(_, r)| r.flags & flag::DELETED != 0)
                    .count() as u64,
                StatusItem::Size => msgs.iter().map(|(_, r)| r.size).sum(),
                // Not yet told to any session (RFC 3501 §2.3.2); STATUS claims nothing.
                StatusItem::Recent => {
                    let first = self
                        .ctx
                        .shared
                        .mailboxes
                        .first_recent(meta.id)
                        .unwrap_or(u32::MAX);
                    msgs.iter().filter(|(u, _)| *u >= first).count() as u64
                }
                StatusItem::HighestModSeq => meta.highestmodseq,
            };
            parts.push((it.name(), v));
        }
        self.status_line(&m.display, &parts);
    }

    /// `* STATUS name (ITEM n …)` (RFC 9051 §7.3.2), for STATUS and NOTIFY's reports.
    pub(super) fn status_line(&mut self, name: &str, items: &[(&str, u64)]) {
        let mut l = b"* STATUS ".to_vec();
        encode::mailbox(&mut l, name);
        let parts: Vec<String> = items.iter().map(|(k, v)| format!("{k} {v}")).collect();
        l.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.conn.out.extend_from_slice(&l);
    }

    pub(super) fn status(&mut self, name: &str, items: &[StatusItem]) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('r') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        if items.contains(&StatusItem::HighestModSeq) {
            self.enable_condstore();
        }
        self.status_lines(&m, items);
        Done::ok("STATUS completed")
    }
}
