//! The session's view of a selected mailbox: one entry per message (sequence number =
//! position + 1), shared between sessions that see the same mailbox state through the
//! process-wide [`ViewCache`], and merged with the index's view when the mailbox changes.

use postcore_storage::mailbox::{MessageRecord, flag};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One shared view: the modseq it reflects, the view, and when it was last handed out.
type SharedView = (u64, Arc<Vec<ViewMsg>>, Instant);

/// Views shared by sessions that see the same mailbox state: 2,000 IDLE sessions on one
/// INBOX hold one copy of its message list, not 2,000 (copy-on-write when one diverges).
/// Recently used views stay cached for a while after their last session let go, so a
/// client that re-selects or reconnects does not rebuild it. One per process, in the
/// shared services (`context::Shared::imap_views`).
#[derive(Default)]
pub struct ViewCache {
    views: Mutex<HashMap<u64, SharedView>>,
}

/// Unused views are dropped after this long.
const VIEW_TTL: Duration = Duration::from_secs(120);

impl ViewCache {
    /// The shared copy of a view of mailbox `id` at `modseq`, or `view` itself (registered
    /// for the next session).
    pub(crate) fn share(&self, id: u64, modseq: u64, view: Vec<ViewMsg>) -> Arc<Vec<ViewMsg>> {
        let mut m = self.views.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((ms, a, used)) = m.get_mut(&id)
            && *ms == modseq
            && a.len() == view.len()
        {
            *used = Instant::now();
            return a.clone();
        }
        if m.len() > 64 {
            m.retain(|_, (_, a, used)| Arc::strong_count(a) > 1 || used.elapsed() < VIEW_TTL);
        }
        let a = Arc::new(view);
        m.insert(id, (modseq, a.clone(), Instant::now()));
        a
    }

    /// The shared view of mailbox `id` at `modseq`, if there is one.
    pub(crate) fn cached(&self, id: u64, modseq: u64) -> Option<Arc<Vec<ViewMsg>>> {
        let mut m = self.views.lock().unwrap_or_else(|p| p.into_inner());
        m.get_mut(&id)
            .filter(|(ms, _, _)| *ms == modseq)
            .map(|(_, a, used)| {
                *used = Instant::now();
                a.clone()
            })
    }
}

/// A message as the session knows it (sequence number = position + 1).
#[derive(Debug, Clone)]
pub(crate) struct ViewMsg {
    pub uid: u32,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub modseq: u64,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE (Unix seconds).
    pub date: i64,
    /// When it was saved into the mailbox (RFC 8514); a record from before save dates were
    /// kept has its internal date here, the closest thing known.
    pub saved: i64,
    /// Expunged by another session, not yet announced to this one.
    pub gone: bool,
}

impl ViewMsg {
    pub(super) fn from_record(
        uid: u32,
        r: &MessageRecord,
        private: Option<&std::collections::HashSet<u32>>,
    ) -> ViewMsg {
        ViewMsg {
            uid,
            flags: super::seen::overlay(uid, r.flags, private),
            keywords: r.keywords.clone(),
            modseq: r.modseq,
            size: r.size,
            date: r.internal_date,
            saved: r.saved.unwrap_or(r.internal_date),
            gone: false,
        }
    }

    /// Appends the FLAGS list to `out`, with `\Recent` when `recent` (RFC 3501 §2.3.2).
    pub fn write_flags(&self, out: &mut Vec<u8>, recent: bool) {
        out.push(b'(');
        let mut first = true;
        for (n, b) in flag::NAMES.iter() {
            if self.flags & b != 0 {
                if !first {
                    out.push(b' ');
                }
                out.extend_from_slice(n.as_bytes());
                first = false;
            }
        }
        for k in &self.keywords {
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(k.as_bytes());
            first = false;
        }
        if recent {
            if !first {
                out.push(b' ');
            }
            out.extend_from_slice(b"\\Recent");
        }
        out.push(b')');
    }

    /// The FLAGS list (see [`ViewMsg::write_flags`]).
    pub fn flag_list(&self, recent: bool) -> String {
        let mut v = Vec::with_capacity(32);
        self.write_flags(&mut v, recent);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Whether `uid` lies in one of the half-open `ranges`.
pub(super) fn in_ranges(ranges: &[(u32, u32)], uid: u32) -> bool {
    ranges.iter().any(|(lo, hi)| (*lo..*hi).contains(&uid))
}

/// Adds the UIDs `lo..hi` to `ranges`, merged with the last range when they meet
/// (successive \Recent claims of one session usually do), so the list stays short.
pub(super) fn add_range(ranges: &mut Vec<(u32, u32)>, (lo, hi): (u32, u32)) {
    match ranges.last_mut() {
        Some(last) if lo <= last.1 && hi >= last.0 => *last = (last.0.min(lo), last.1.max(hi)),
        _ => ranges.push((lo, hi)),
    }
}

/// Compact `1:3,5` form of ascending numbers.
pub(super) fn compress(nums: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < nums.len() {
        let start = nums[i];
        let mut end = start;
        while i + 1 < nums.len() && nums[i + 1] == end + 1 {
            i += 1;
            end = nums[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

/// The view after a refresh, and what changed from the old one.
pub(super) struct Merged {
    /// The new view.
    pub(super) view: std::sync::Arc<Vec<ViewMsg>>,
    /// Sequence numbers expunged (in the old view).
    pub(super) expunged_seqs: Vec<usize>,
    /// UIDs expunged.
    pub(super) vanished: Vec<u32>,
    /// Positions (in the new view) whose flags changed.
    pub(super) updates: Vec<usize>,
    /// New messages were appended.
    pub(super) added: bool,
}

/// Merges the session's `old` view with the index's `fresh` one: messages gone are removed
/// when `expunge_ok`, else kept marked `gone` (RFC 9051 §7.4.1: no EXPUNGE during FETCH,
/// STORE, SEARCH); flag changes and new messages are noted.
pub(super) fn merge_views(
    old: &[ViewMsg],
    fresh: std::sync::Arc<Vec<ViewMsg>>,
    expunge_ok: bool,
) -> Merged {
    let mut view = Vec::with_capacity(fresh.len());
    let mut expunged_seqs = Vec::new();
    let mut vanished = Vec::new();
    let mut updates = Vec::new();
    let mut j = 0;
    for (i, v) in old.iter().enumerate() {
        while j < fresh.len() && fresh[j].uid < v.uid {
            j += 1;
        }
        if j < fresh.len() && fresh[j].uid == v.uid {
            let f = &fresh[j];
            if f.flags != v.flags || f.keywords != v.keywords {
                updates.push(view.len());
            }
            view.push(f.clone());
            j += 1;
        } else if expunge_ok {
            expunged_seqs.push(i + 1);
            vanished.push(v.uid);
        } else {
            let mut nv = v.clone();
            nv.gone = true;
            view.push(nv);
        }
    }
    let last = old.last().map(|m| m.uid).unwrap_or(0);
    let before = view.len();
    for f in &fresh[j.min(fresh.len())..] {
        if f.uid > last {
            view.push(f.clone());
        }
    }
    let added = view.len() > before;
    // Usually the new view is exactly the fresh one: keep sharing it.
    let view = if view.len() == fresh.len() && !view.iter().any(|m| m.gone) {
        fresh
    } else {
        std::sync::Arc::new(view)
    };
    Merged {
        view,
        expunged_seqs,
        vanished,
        updates,
        added,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compress_ranges() {
        assert_eq!(compress(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(compress(&[]), "");
    }

    #[test]
    fn recent_ranges_merge_when_they_meet() {
        let mut r = vec![(1, 5)];
        add_range(&mut r, (5, 7)); // this session's next claim
        add_range(&mut r, (3, 9)); // read-only: overlaps
        assert_eq!(r, vec![(1, 9)]);
        add_range(&mut r, (12, 14)); // another session claimed 9..12 meanwhile
        assert_eq!(r, vec![(1, 9), (12, 14)]);
        assert!(in_ranges(&r, 8) && !in_ranges(&r, 9) && in_ranges(&r, 13));
    }
}
