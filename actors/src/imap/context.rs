//! Search contexts (RFC 5267 §4, CONTEXT=SEARCH and CONTEXT=SORT): a `SEARCH`/`SORT`
//! `RETURN (UPDATE …)` stays alive while its mailbox is selected, and the session reports
//! every change of its result with unsolicited `ESEARCH … ADDTO` / `REMOVEFROM` responses.
//!
//! A context keeps its result as UIDs in the context's order (mailbox order for SEARCH,
//! the requested order for SORT). Expunged messages leave the result before their EXPUNGE
//! is sent (§4.3.4, [`Session::contexts_expunged`]); everything else — flag changes, new
//! messages — is found by evaluating the search again at the end of each command and in
//! IDLE ([`Session::update_contexts`]), only when the view changed since the last time.

use super::view::{ViewMsg, compress};
use super::{Done, Session};
use postcore_protocol::imap::{Code, FetchAtt, SearchKey, SeqSet, SortKey, StatusText};
use std::fmt::Write as _;

/// Updating contexts a session may keep on one mailbox (RFC 5267 §4.3.1: at least one);
/// a further UPDATE is refused with NOUPDATE, its other return options still answered.
pub(super) const MAX_CONTEXTS: usize = 10;

/// One updating search (RFC 5267 §4.3).
pub(super) struct SearchContext {
    /// The tag of the searching command: the ESEARCH correlator.
    pub tag: String,
    /// UID SEARCH/SORT: updates carry UIDs, else sequence numbers (§4.3.2).
    pub uid: bool,
    /// The search criteria (`$` already replaced by the saved messages).
    pub key: SearchKey,
    /// The sort criteria of a SORT context; `None` for SEARCH (positions are then 0).
    pub sort: Option<Vec<(bool, SortKey)>>,
    /// The current result: UIDs in the context's order.
    pub result: Vec<u32>,
    /// RFC 5465 §7: FETCH items for new messages joining the result.
    pub fetch: Vec<FetchAtt>,
    /// The highest UID of the view when the context was last evaluated: higher UIDs that
    /// join are new messages (not ones whose flags changed).
    pub seen_to: u32,
}

/// A cheap fingerprint of the view: what a search result can depend on.
fn view_stamp(msgs: &[ViewMsg]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ msgs.len() as u64;
    for m in msgs {
        for x in [m.uid as u64, m.flags as u64, m.modseq, m.gone as u64] {
            h = (h ^ x).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

/// `(position, set)` pairs: runs of consecutive positions share one pair (§4.3.3, §4.3.4:
/// each set is in the context's order, the first at the pair's position).
fn pairs(items: &[(usize, u32)], advance: bool) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < items.len() {
        let (pos, first) = items[i];
        let mut run = vec![first];
        let mut next = pos;
        while i + 1 < items.len() {
            next += usize::from(advance);
            if items[i + 1].0 != next {
                break;
            }
            i += 1;
            run.push(items[i].1);
        }
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{pos} {}", compress(&run));
        i += 1;
    }
    out
}

/// The REMOVEFROM pairs taking `gone` (UIDs) out of `result` (a SORT context's order),
/// positions counted as each removal is applied (§4.3.4); `num` gives the number sent.
fn removals(result: &[u32], gone: &dyn Fn(u32) -> bool, num: &dyn Fn(u32) -> u32) -> String {
    let mut items = Vec::new();
    let mut pos = 1;
    for &u in result {
        if gone(u) {
            items.push((pos, num(u)));
        } else {
            pos += 1;
        }
    }
    pairs(&items, false)
}

/// The ADDTO pairs that put the new members of `new` (those not `old`) at their
/// positions, applied in order after the removals (§4.3.3).
fn additions(new: &[u32], old: &dyn Fn(u32) -> bool, num: &dyn Fn(u32) -> u32) -> String {
    let items: Vec<(usize, u32)> = new
        .iter()
        .enumerate()
        .filter(|(_, u)| !old(**u))
        .map(|(i, u)| (i + 1, num(*u)))
        .collect();
    pairs(&items, true)
}

/// Numbers in mailbox order, as one set (a SEARCH context's position-0 pair).
fn unordered(mut nums: Vec<u32>) -> String {
    nums.sort_unstable();
    format!("0 {}", compress(&nums))
}

impl Session {
    /// Whether `tag` names a live updating context (RFC 5267 §4.3: its reuse is a BAD).
    pub(super) fn context_tag_in_use(&self, tag: &str) -> bool {
        self.sel
            .as_ref()
            .is_some_and(|s| s.contexts.iter().any(|c| c.tag == tag))
    }

    /// Keeps the search of command `tag` updating; `positions` is its result now, in the
    /// context's order. Over the limit it sends `* NO [NOUPDATE "tag"]` instead (§4.3.1).
    pub(super) fn add_context(
        &mut self,
        tag: &str,
        uid: bool,
        key: SearchKey,
        sort: Option<Vec<(bool, SortKey)>>,
        fetch: Vec<FetchAtt>,
        positions: &[usize],
    ) {
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        if sel.contexts.len() >= MAX_CONTEXTS {
            let t = StatusText::with(
                Code::NoUpdate(tag.to_string()),
                "Too many updating searches; this one will not be updated",
            );
            self.respond("*", postcore_protocol::imap::Status::No, &t);
            return;
        }
        if sel.contexts.is_empty() {
            sel.context_stamp = view_stamp(&sel.msgs);
        }
        let result = positions.iter().map(|p| sel.msgs[*p].uid).collect();
        let seen_to = sel.msgs.last().map_or(0, |m| m.uid);
        sel.contexts.push(SearchContext {
            tag: tag.to_string(),
            uid,
            key,
            sort,
            result,
            fetch,
            seen_to,
        });
    }

    /// CANCELUPDATE (RFC 5267 §4.3.5): the named contexts stop updating.
    pub(super) fn cancel_update(&mut self, tags: &[String]) -> Done {
        let Some(sel) = self.sel.as_mut() else {
            return Done::bad("No mailbox selected");
        };
        if let Some(t) = tags
            .iter()
            .find(|t| !sel.contexts.iter().any(|c| &c.tag == *t))
        {
            return Done::no(format!("Unknown search tag {t:?}"));
        }
        sel.contexts.retain(|c| !tags.contains(&c.tag));
        Done::ok("Updates cancelled")
    }

    /// The REMOVEFROM responses for messages about to be reported expunged (`vanished`
    /// UIDs), in the numbering of `old`, the view the client still has (§4.3.4: sent before
    /// the EXPUNGE, so the numbers are still valid).
    pub(super) fn contexts_expunged(&mut self, vanished: &[u32], old: &[ViewMsg]) -> Vec<String> {
        let Some(sel) = self.sel.as_mut() else {
            return Vec::new();
        };
        if sel.contexts.is_empty() || vanished.is_empty() {
            return Vec::new();
        }
        let gone = |u: u32| vanished.binary_search(&u).is_ok();
        let seq = |u: u32| {
            old.binary_search_by_key(&u, |m| m.uid)
                .map_or(0, |p| p as u32 + 1)
        };
        let mut lines = Vec::new();
        for c in &mut sel.contexts {
            if !c.result.iter().any(|u| gone(*u)) {
                continue;
            }
            let num = |u: u32| if c.uid { u } else { seq(u) };
            let set = match c.sort {
                Some(_) => removals(&c.result, &gone, &num),
                None => unordered(
                    c.result
                        .iter()
                        .filter(|u| gone(**u))
                        .map(|u| num(*u))
                        .collect(),
                ),
            };
            lines.push(format!(
                "{} REMOVEFROM ({set})",
                esearch_head(&c.tag, c.uid)
            ));
            c.result.retain(|u| !gone(*u));
        }
        lines
    }

    /// Evaluates every context again if the view changed since the last time, and sends
    /// what changed in its result (§4.3: ADDTO after the EXISTS that made the numbers
    /// valid, REMOVEFROM while the removed numbers still are).
    pub(super) async fn update_contexts(&mut self) {
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        if sel.contexts.is_empty() {
            return;
        }
        let stamp = view_stamp(&sel.msgs);
        if stamp == sel.context_stamp {
            return;
        }
        sel.context_stamp = stamp;
        let last = sel.msgs.last().map_or(0, |m| m.uid);
        let mut contexts = std::mem::take(&mut sel.contexts);
        for c in &mut contexts {
            let positions = match &c.sort {
                Some(criteria) => self.sorted(criteria, &c.key).await,
                None => self.matching(&c.key).await,
            };
            let before: std::collections::HashSet<u32> = c.result.iter().copied().collect();
            if let Some(line) = self.context_change(c, &positions) {
                // RFC 5465 §7: EXISTS (already sent), then FETCH of the new messages that
                // joined, then the ESEARCH.
                let arrived: Vec<u32> = c
                    .result
                    .iter()
                    .copied()
                    .filter(|u| *u > c.seen_to && !before.contains(u))
                    .collect();
                if !c.fetch.is_empty() && !arrived.is_empty() {
                    let mut uids = arrived;
                    uids.sort_unstable();
                    let atts = c.fetch.clone();
                    let _ = self
                        .fetch_current(true, SeqSet::of(&uids), atts, None, false)
                        .await;
                }
                self.line(&line);
            }
            c.seen_to = last;
        }
        if let Some(sel) = self.sel.as_mut() {
            sel.contexts = contexts;
        }
    }

    /// The ESEARCH update taking context `c` to the result `positions`, if it changed.
    fn context_change(&self, c: &mut SearchContext, positions: &[usize]) -> Option<String> {
        let sel = self.sel.as_ref()?;
        let new: Vec<u32> = positions.iter().map(|p| sel.msgs[*p].uid).collect();
        if new == c.result {
            return None;
        }
        let num = |u: u32| {
            if c.uid {
                u
            } else {
                sel.pos_of_uid(u).map_or(0, |p| p as u32 + 1)
            }
        };
        let new_set: std::collections::HashSet<u32> = new.iter().copied().collect();
        let old_set: std::collections::HashSet<u32> = c.result.iter().copied().collect();
        let gone = |u: u32| !new_set.contains(&u);
        let was = |u: u32| old_set.contains(&u);
        let (removed, added) = match c.sort {
            Some(_) => (
                removals(&c.result, &gone, &num),
                additions(&new, &was, &num),
            ),
            None => {
                let r: Vec<u32> = c
                    .result
                    .iter()
                    .filter(|u| gone(**u))
                    .map(|u| num(*u))
                    .collect();
                let a: Vec<u32> = new.iter().filter(|u| !was(**u)).map(|u| num(*u)).collect();
                (
                    if r.is_empty() {
                        String::new()
                    } else {
                        unordered(r)
                    },
                    if a.is_empty() {
                        String::new()
                    } else {
                        unordered(a)
                    },
                )
            }
        };
        let mut line = esearch_head(&c.tag, c.uid);
        if !removed.is_empty() {
            let _ = write!(line, " REMOVEFROM ({removed})");
        }
        if !added.is_empty() {
            let _ = write!(line, " ADDTO ({added})");
        }
        c.result = new;
        Some(line)
    }
}

/// `* ESEARCH (TAG "tag")` and ` UID` for UID contexts.
fn esearch_head(tag: &str, uid: bool) -> String {
    let mut l = format!("* ESEARCH (TAG \"{tag}\")");
    if uid {
        l.push_str(" UID");
    }
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 5267 §4.3.3's example: 2734:2735 becomes 2731:2735.
    #[test]
    fn additions_follow_the_rfc_example() {
        let old = [2734, 2735];
        let new = [2731, 2732, 2733, 2734, 2735];
        let was = |u: u32| old.contains(&u);
        assert_eq!(additions(&new, &was, &|u| u), "1 2731:2733");
    }

    /// Removals count positions as each is applied: removing the 2nd and 3rd of five
    /// leaves both at position 2; the 5th is then at position 3.
    #[test]
    fn removals_count_positions_after_earlier_removals() {
        let result = [10, 7, 30, 4, 9];
        let gone = |u: u32| [7, 30, 9].contains(&u);
        assert_eq!(removals(&result, &gone, &|u| u), "2 7,30 3 9");
    }

    /// A sorted run that is not ascending stays a list, never a range (§3.2).
    #[test]
    fn descending_runs_are_not_ranges() {
        let new = [5, 4, 3];
        assert_eq!(additions(&new, &|_| false, &|u| u), "1 5,4,3");
    }

    #[test]
    fn search_context_sets_are_in_mailbox_order() {
        assert_eq!(unordered(vec![9, 3, 4]), "0 3:4,9");
    }

    /// Replaying the pairs on the old result gives the new one.
    #[test]
    fn replaying_the_pairs_rebuilds_the_result() {
        let old = vec![8u32, 2, 6, 1, 9];
        let new = vec![3u32, 8, 6, 5, 7, 9, 4];
        let new_set: std::collections::HashSet<u32> = new.iter().copied().collect();
        let gone = |u: u32| !new_set.contains(&u);
        let was = |u: u32| old.contains(&u);
        let mut list = old.clone();
        apply(&mut list, &removals(&old, &gone, &|u| u), false);
        apply(&mut list, &additions(&new, &was, &|u| u), true);
        assert_eq!(list, new);
    }

    fn apply(list: &mut Vec<u32>, pairs: &str, add: bool) {
        let toks: Vec<&str> = pairs.split(' ').filter(|t| !t.is_empty()).collect();
        for p in toks.chunks(2) {
            let pos: usize = p[0].parse().unwrap();
            let nums: Vec<u32> = p[1]
                .split(',')
                .flat_map(|r| match r.split_once(':') {
                    Some((a, b)) => (a.parse::<u32>().unwrap()..=b.parse().unwrap()).collect(),
                    None => vec![r.parse().unwrap()],
                })
                .collect();
            for (k, n) in nums.into_iter().enumerate() {
                if add {
                    list.insert(pos - 1 + k, n);
                } else {
                    assert_eq!(list[pos - 1], n);
                    list.remove(pos - 1);
                }
            }
        }
    }
}
