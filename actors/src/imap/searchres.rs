//! SEARCHRES (RFC 5182): `SEARCH RETURN (SAVE)` keeps the result in the session, and `$`
//! names it wherever a sequence set may stand (FETCH, STORE, COPY, MOVE, UID EXPUNGE, SEARCH
//! keys). The result is kept as UIDs, so it follows expunges; it is empty until a SEARCH
//! saves one and is forgotten with the selected mailbox (§2.1).

use super::Session;
use postcore_protocol::imap::{CommandBody, SearchKey, SearchReturn, SeqSet};

impl Session {
    /// The command with every `$` replaced by the saved messages: UIDs for UID commands and
    /// `UID $` keys, current sequence numbers otherwise.
    pub(super) fn expand_saved(&self, mut body: CommandBody) -> CommandBody {
        use CommandBody as C;
        let take = |s: &mut SeqSet| std::mem::replace(s, SeqSet(Vec::new()));
        match &mut body {
            C::Fetch { uid, set, .. }
            | C::Store { uid, set, .. }
            | C::Copy { uid, set, .. }
            | C::Move { uid, set, .. } => *set = self.saved_set(take(set), *uid),
            C::Expunge(Some(set)) => *set = self.saved_set(take(set), true),
            C::Search { key, .. } | C::Sort { key, .. } | C::Thread { key, .. } => {
                *key = self.saved_key(std::mem::replace(key, SearchKey::All));
            }
            _ => {}
        }
        body
    }

    fn saved_key(&self, key: SearchKey) -> SearchKey {
        match key {
            SearchKey::Seq(s) => SearchKey::Seq(self.saved_set(s, false)),
            SearchKey::Uid(s) => SearchKey::Uid(self.saved_set(s, true)),
            SearchKey::Not(k) => SearchKey::Not(Box::new(self.saved_key(*k))),
            SearchKey::Or(a, b) => {
                SearchKey::Or(Box::new(self.saved_key(*a)), Box::new(self.saved_key(*b)))
            }
            SearchKey::And(v) => SearchKey::And(v.into_iter().map(|k| self.saved_key(k)).collect()),
            other => other,
        }
    }

    /// `set`, or the saved messages when it is `$` (those still in the mailbox).
    fn saved_set(&self, set: SeqSet, uid: bool) -> SeqSet {
        if !set.is_saved() {
            return set;
        }
        let Some(sel) = self.sel.as_ref() else {
            return SeqSet(Vec::new());
        };
        let present = sel
            .saved
            .iter()
            .filter_map(|u| sel.pos_of_uid(*u).map(|p| (*u, p)));
        let numbers: Vec<u32> = if uid {
            present.map(|(u, _)| u).collect()
        } else {
            present.map(|(_, p)| p as u32 + 1).collect()
        };
        SeqSet::of(&numbers)
    }

    /// RFC 5182 §2.4: what `SEARCH RETURN (SAVE …)` keeps of the matching positions — the
    /// MIN and/or MAX message when only those were asked for, else every match.
    pub(super) fn save_result(&mut self, ret: &SearchReturn, hits: &[usize]) {
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        let kept = super::search::returned(ret, hits);
        sel.saved = kept.iter().map(|p| sel.msgs[*p].uid).collect();
    }
}
