//! SORT and THREAD keys of messages (RFC 5256), derived once from each message's cached
//! header and kept per mailbox for every session: a message never changes, so its keys
//! stay right until it is expunged, and a client that sorts or threads the same mailbox
//! again (every page of a webmail) pays for a lookup, not a header parse.

use postcore_protocol::imap::thread::Keys;
use postcore_protocol::imap::{mime, sort};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What SORT and THREAD compare, for one message.
#[derive(Debug, Default)]
pub(crate) struct SortKeys {
    /// Sent date (RFC 5256 §2.2): the Date field in UTC, else the internal date.
    pub sent: i64,
    /// FROM, TO and CC keys (RFC 5256 §3): the first address's local part or group name.
    pub from: String,
    pub to: String,
    pub cc: String,
    /// DISPLAYFROM and DISPLAYTO keys (RFC 5957).
    pub display_from: String,
    pub display_to: String,
    /// The base subject and the threading links.
    pub thread: Keys,
}

impl SortKeys {
    /// The keys of a message from its header block and internal date (one pass over the
    /// fields; the first of each name counts).
    pub(crate) fn of(header: &[u8], internal_date: i64) -> SortKeys {
        let mut f: [Option<Vec<u8>>; 8] = Default::default();
        const NAMES: [&[u8]; 8] = [
            b"date",
            b"subject",
            b"from",
            b"to",
            b"cc",
            b"message-id",
            b"references",
            b"in-reply-to",
        ];
        for (name, value) in mime::fields(header) {
            if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name))
                && f[i].is_none()
            {
                f[i] = Some(value);
            }
        }
        let [
            date,
            subject,
            from,
            to,
            cc,
            message_id,
            references,
            in_reply_to,
        ] = f;
        SortKeys {
            sent: date
                .as_deref()
                .and_then(mime::parse_date)
                .unwrap_or(internal_date),
            from: sort::address_key(from.as_deref()),
            to: sort::address_key(to.as_deref()),
            cc: sort::address_key(cc.as_deref()),
            display_from: sort::display_key(from.as_deref()),
            display_to: sort::display_key(to.as_deref()),
            thread: Keys::from_fields(
                subject.as_deref().unwrap_or_default(),
                message_id.as_deref(),
                references.as_deref(),
                in_reply_to.as_deref(),
            ),
        }
    }
}

/// The most keys kept over all mailboxes (about 200 MB at worst); the least recently used
/// mailboxes' keys go first, and a mailbox larger than this is not kept at all.
const MAX_KEYS: usize = 500_000;

/// A mailbox's keys by UID, and when they were last used.
type MailboxKeys = (HashMap<u32, Arc<SortKeys>>, Instant);

/// The keys of every mailbox recently sorted or threaded, by mailbox id and UID. One per
/// process, in the shared services (`context::Shared::imap_sort_keys`).
#[derive(Default)]
pub struct SortKeyCache {
    boxes: Mutex<HashMap<u64, MailboxKeys>>,
}

impl SortKeyCache {
    /// The cached keys of `uids` in mailbox `id` (`None` where not cached), in that order.
    pub(crate) fn get(&self, id: u64, uids: &[u32]) -> Vec<Option<Arc<SortKeys>>> {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        match boxes.get_mut(&id) {
            Some((keys, used)) => {
                *used = Instant::now();
                uids.iter().map(|u| keys.get(u).cloned()).collect()
            }
            None => vec![None; uids.len()],
        }
    }

    /// Keeps `keys` of mailbox `id`, making room by dropping the least recently used
    /// mailboxes.
    pub(crate) fn put(&self, id: u64, keys: Vec<(u32, Arc<SortKeys>)>) {
        let mut boxes = self.boxes.lock().unwrap_or_else(|p| p.into_inner());
        let mine = boxes.get(&id).map_or(0, |b| b.0.len()) + keys.len();
        if mine > MAX_KEYS {
            boxes.remove(&id);
            return;
        }
        loop {
            let total: usize = boxes.values().map(|b| b.0.len()).sum::<usize>() + keys.len();
            let oldest = boxes
                .iter()
                .filter(|(b, _)| **b != id)
                .min_by_key(|(_, (_, used))| *used)
                .map(|(b, _)| *b);
            match oldest {
                Some(b) if total > MAX_KEYS => {
                    boxes.remove(&b);
                }
                _ => break,
            }
        }
        let entry = boxes
            .entry(id)
            .or_insert_with(|| (HashMap::new(), Instant::now()));
        entry.1 = Instant::now();
        entry.0.extend(keys);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_one_pass_over_the_header() {
        let h =
            b"Subject: Re: [list] Hello\r\nFrom: \"Zed\" <Alice@b.test>\r\nTo: Team: x@y.test;\r\n\
Date: Mon, 4 Jan 2027 10:00:00 +0100\r\nMessage-ID: <1@b.test>\r\nIn-Reply-To: <0@b.test>\r\n\
Subject: second subject ignored\r\n\r\n";
        let k = SortKeys::of(h, 7);
        // Keys are in their i;unicode-casemap form (RFC 5051: ASCII upper case).
        assert_eq!(k.thread.subject, "HELLO");
        assert!(k.thread.reply);
        assert_eq!(
            (k.from.as_str(), k.to.as_str(), k.cc.as_str()),
            ("ALICE", "TEAM", "")
        );
        assert_eq!(k.display_from, "ZED");
        assert_eq!(k.sent, 1_799_053_200);
        assert_eq!(k.thread.message_id.as_deref(), Some("1@b.test"));
        assert_eq!(k.thread.references, ["0@b.test"]);
        assert_eq!(
            SortKeys::of(b"Subject: x\r\n\r\n", 7).sent,
            7,
            "no Date: internal date"
        );
    }

    #[test]
    fn cache_keeps_per_mailbox_and_evicts_whole_mailboxes() {
        let c = SortKeyCache::default();
        c.put(1, vec![(10, Arc::new(SortKeys::default()))]);
        let got = c.get(1, &[10, 11]);
        assert!(got[0].is_some() && got[1].is_none());
        assert!(c.get(2, &[10])[0].is_none());
        let many: Vec<(u32, Arc<SortKeys>)> = (0..MAX_KEYS as u32)
            .map(|u| (u, Arc::new(SortKeys::default())))
            .collect();
        c.put(2, many);
        assert!(c.get(1, &[10])[0].is_none(), "mailbox 1 made room");
        assert!(c.get(2, &[5])[0].is_some());
        c.put(2, vec![(MAX_KEYS as u32, Arc::new(SortKeys::default()))]);
        assert!(c.get(2, &[5])[0].is_none(), "over the cap: not kept");
    }
}
