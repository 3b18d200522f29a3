//! SELECT / EXAMINE (RFC 9051 §6.3.2–3, RFC 7162 CONDSTORE/QRESYNC), the selected mailbox,
//! and the untagged updates that keep the session's view current (§7.4.1 EXPUNGE, §7.3.1
//! EXISTS, FETCH FLAGS; RFC 7162 §3.2.10 VANISHED). IDLE and EXPUNGE/CLOSE have their own
//! files; the view itself is in `view.rs`.

use super::folders::MailboxRef;
use super::view::{Merged, ViewMsg, add_range, compress, in_ranges, merge_views};
use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::{QResync, SeqSet};
use postcore_storage::mailbox::{MailboxMeta, flag};
use std::path::PathBuf;

/// The selected mailbox.
pub(super) struct Selected {
    pub mbox: MailboxRef,
    pub name: String,
    pub path: PathBuf,
    pub read_only: bool,
    /// The messages, shared with other sessions while they agree (see `share_view`).
    pub msgs: std::sync::Arc<Vec<ViewMsg>>,
    pub highestmodseq: u64,
    pub watch: tokio::sync::watch::Receiver<u64>,
    /// \Seen kept per user (shared mailbox, "shared seen" off): the UIDs this user saw.
    pub private_seen: Option<std::collections::HashSet<u32>>,
    /// The generation of `private_seen` (`MailboxIndex::private_seen_generation`) when read:
    /// another session of the same user that changes the set bumps it.
    pub private_gen: u64,
    /// UID ranges (`lo..hi`) that are \Recent in this session (RFC 3501 §2.3.2).
    pub recent: Vec<(u32, u32)>,
    /// The keywords this session's FLAGS response named (RFC 9051 §7.3.5).
    pub keywords: std::collections::BTreeSet<String>,
    /// The UIDs of the saved search result, `$` (RFC 5182).
    pub saved: Vec<u32>,
    /// Updating searches (RFC 5267 §4.3); they end with the selection.
    pub contexts: Vec<super::context::SearchContext>,
    /// The view's fingerprint when the contexts were last brought up to date.
    pub context_stamp: u64,
}

impl Selected {
    /// Index id of the mailbox.
    pub fn id(&self) -> u64 {
        self.mbox.meta.id
    }

    /// Whether message `uid` is \Recent in this session.
    pub fn is_recent(&self, uid: u32) -> bool {
        in_ranges(&self.recent, uid)
    }

    /// How many messages of the view are \Recent in this session.
    pub fn recent_count(&self) -> usize {
        self.msgs.iter().filter(|m| self.is_recent(m.uid)).count()
    }

    /// Position (0-based) of `uid`.
    pub fn pos_of_uid(&self, uid: u32) -> Option<usize> {
        self.msgs.binary_search_by_key(&uid, |m| m.uid).ok()
    }

    /// Positions named by a sequence set (or UID set), ascending.
    pub fn resolve(&self, set: &SeqSet, uid: bool) -> Vec<usize> {
        if uid {
            let max = self.msgs.last().map(|m| m.uid).unwrap_or(0);
            let mut out = Vec::new();
            for (a, b) in &set.0 {
                let a = a.resolve(max);
                let b = b.resolve(max);
                let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
                let start = self.msgs.partition_point(|m| m.uid < lo);
                let end = self.msgs.partition_point(|m| m.uid <= hi);
                out.extend(start..end);
            }
            out.sort_unstable();
            out.dedup();
            out
        } else {
            set.resolve_seq(self.msgs.len() as u32)
                .into_iter()
                .map(|n| n as usize - 1)
                .collect()
        }
    }
}

impl Session {
    /// The user's own \Seen set for `m` when \Seen is per user there (a shared or public
    /// mailbox while "shared seen" is off); `None` when the mailbox's \Seen flags apply.
    pub(super) fn private_seen(&self, m: &MailboxRef) -> Option<std::collections::HashSet<u32>> {
        let shared_seen = self.imap_setting(|s| s.shared_seen);
        (m.is_shared(self.user()) && !shared_seen).then(|| {
            self.ctx
                .shared
                .mailboxes
                .private_seen(m.meta.id, self.user())
                .unwrap_or_default()
        })
    }

    /// Syncs mailbox `m` with its folder and returns its meta and current view: the shared
    /// one when another session already built it for this modseq, otherwise built from the
    /// index (with the private \Seen overlay when there is one).
    pub(super) fn current_view(
        &self,
        m: &MailboxRef,
        private: Option<&std::collections::HashSet<u32>>,
    ) -> anyhow::Result<(
        postcore_storage::mailbox::MailboxMeta,
        std::sync::Arc<Vec<ViewMsg>>,
    )> {
        let idx = &self.ctx.shared.mailboxes;
        let meta = self.synced_meta(m)?;
        if private.is_none()
            && let Some(v) = self
                .ctx
                .shared
                .imap_views
                .cached(meta.id, meta.highestmodseq)
        {
            return Ok((meta, v));
        }
        let view: Vec<ViewMsg> = idx
            .messages(meta.id)?
            .iter()
            .map(|(u, r)| ViewMsg::from_record(*u, r, private))
            .collect();
        let view = if private.is_none() {
            self.ctx
                .shared
                .imap_views
                .share(meta.id, meta.highestmodseq, view)
        } else {
            std::sync::Arc::new(view)
        };
        Ok((meta, view))
    }

    /// The UIDs below `uidnext` that are \Recent for this session (RFC 3501 §2.3.2): claimed
    /// from the mailbox when the session may write, only looked at when it is read-only
    /// (§6.3.2: EXAMINE must not take \Recent away from others).
    fn recent_range(&self, id: u64, uidnext: u32, read_only: bool) -> Option<(u32, u32)> {
        let idx = &self.ctx.shared.mailboxes;
        let first = if read_only {
            idx.first_recent(id)
        } else {
            idx.claim_recent(id, uidnext)
        };
        match first {
            Ok(f) if f < uidnext => Some((f, uidnext)),
            Ok(_) => None,
            Err(e) => {
                tracing::debug!("imap recent: {e:#}");
                None
            }
        }
    }

    pub(super) async fn select(
        &mut self,
        name: &str,
        examine: bool,
        condstore: bool,
        qresync: Option<QResync>,
    ) -> Done {
        if self.sel.take().is_some() && (self.qresync || self.rev2) {
            // RFC 7162 §3.2.11 / RFC 9051 §6.3.2: the old mailbox is closed.
            self.untagged_ok(Code::Closed, "Previous mailbox closed");
        }
        if qresync.is_some() && !self.qresync {
            return Done::bad("QRESYNC must be enabled first");
        }
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('r') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        if condstore {
            self.condstore = true;
        }
        let private_gen = self
            .ctx
            .shared
            .mailboxes
            .private_seen_generation(m.meta.id, self.user());
        let private_seen = self.private_seen(&m);
        let (meta, msgs) = match self.current_view(&m, private_seen.as_ref()) {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(user = %self.user(), mailbox = name, "imap select: {e:#}");
                return Done::no_with(Code::ServerBug, "Mailbox not available");
            }
        };
        let read_only = examine || !(m.may('s') || m.may('w') || m.may('t'));
        let keywords = keywords_of(&msgs);
        self.announce_flags(&keywords, read_only);
        let recent: Vec<(u32, u32)> = self
            .recent_range(meta.id, meta.uidnext, read_only)
            .into_iter()
            .collect();
        self.announce_state(&meta, &msgs, &recent);
        if let Some(q) = qresync
            && q.uidvalidity == meta.uidvalidity
        {
            self.announce_changes_since(&meta, &msgs, &recent, &q);
        }
        let watch = self.ctx.shared.mailboxes.watch(meta.id, &m.path);
        self.sel = Some(Selected {
            name: m.name.clone(),
            path: m.path.clone(),
            mbox: MailboxRef {
                meta: meta.clone(),
                ..m
            },
            read_only,
            msgs,
            highestmodseq: meta.highestmodseq,
            watch,
            private_seen,
            private_gen,
            recent,
            keywords,
            saved: Vec::new(),
            contexts: Vec::new(),
            context_stamp: 0,
        });
        let verb = if examine { "EXAMINE" } else { "SELECT" };
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        Done::ok_with(code, format!("{verb} completed"))
    }

    /// FLAGS and PERMANENTFLAGS of a mailbox being selected, or again when its keywords grew
    /// (RFC 9051 §7.3.5, §7.1).
    fn announce_flags(&mut self, keywords: &std::collections::BTreeSet<String>, read_only: bool) {
        let kw: Vec<&str> = keywords.iter().map(String::as_str).collect();
        let kw = kw.join(" ");
        let sp = if kw.is_empty() { "" } else { " " };
        self.line(&format!(
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded{sp}{kw})"
        ));
        if read_only {
            self.untagged_ok(Code::PermanentFlags(String::new()), "Read-only mailbox");
        } else {
            let flags =
                format!("\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded{sp}{kw} \\*");
            self.untagged_ok(Code::PermanentFlags(flags), "Flags permitted");
        }
    }

    /// RFC 9051 §7.3.5: when a message of the selected mailbox carries a keyword this
    /// session's FLAGS did not name (a STORE or APPEND here or in another session), FLAGS and
    /// PERMANENTFLAGS again, before any FETCH that shows it.
    /// `only`: the positions that can have changed (a STORE's), or every message.
    pub(super) fn announce_new_keywords(&mut self, only: Option<&[usize]>) {
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        let now: std::collections::BTreeSet<String> = match only {
            Some(ps) => ps
                .iter()
                .filter_map(|p| sel.msgs.get(*p))
                .flat_map(|m| m.keywords.iter().cloned())
                .collect(),
            None => keywords_of(&sel.msgs),
        };
        if now.is_subset(&sel.keywords) {
            return;
        }
        sel.keywords.extend(now);
        let (all, read_only) = (sel.keywords.clone(), sel.read_only);
        self.announce_flags(&all, read_only);
    }

    /// EXISTS, RECENT and UNSEEN (IMAP4rev1 only), UIDVALIDITY, UIDNEXT, and HIGHESTMODSEQ
    /// or NOMODSEQ (RFC 9051 §6.3.2, RFC 3501 §6.3.1, RFC 7162 §3.1.2).
    fn announce_state(&mut self, meta: &MailboxMeta, msgs: &[ViewMsg], recent: &[(u32, u32)]) {
        self.line(&format!("* {} EXISTS", msgs.len()));
        if !self.rev2 {
            let n = msgs.iter().filter(|m| in_ranges(recent, m.uid)).count();
            self.line(&format!("* {n} RECENT"));
            if let Some(p) = msgs.iter().position(|m| m.flags & flag::SEEN == 0) {
                self.untagged_ok(Code::Unseen(p as u32 + 1), "First unseen");
            }
        }
        self.untagged_ok(Code::UidValidity(meta.uidvalidity), "UIDs valid");
        self.untagged_ok(Code::UidNext(meta.uidnext), "Predicted next UID");
        // RFC 7162 §3.1.2.1: mod-sequences are kept for every mailbox, so every SELECT and
        // EXAMINE reports the highest (NOMODSEQ is for mailboxes that keep none).
        self.untagged_ok(Code::HighestModSeq(meta.highestmodseq), "Highest");
    }

    /// Turns CONDSTORE on for the session (RFC 7162 §3.1: a CONDSTORE-enabling command). The
    /// first time, with a mailbox selected, the client learns its HIGHESTMODSEQ before the
    /// command's own responses (RFC 7162 §3.1).
    pub(super) fn enable_condstore(&mut self) {
        if self.condstore {
            return;
        }
        self.condstore = true;
        if let Some(h) = self.sel.as_ref().map(|s| s.highestmodseq) {
            self.untagged_ok(Code::HighestModSeq(h), "Highest");
        }
    }

    /// RFC 7162 §3.2.5.2: what changed since the client's modseq (SELECT … QRESYNC).
    fn announce_changes_since(
        &mut self,
        meta: &MailboxMeta,
        msgs: &[ViewMsg],
        recent: &[(u32, u32)],
        q: &QResync,
    ) {
        let mut vanished = self
            .ctx
            .shared
            .mailboxes
            .vanished_since(meta.id, q.modseq)
            .unwrap_or_default();
        if let Some(k) = &q.known_uids {
            vanished.retain(|u| k.contains(*u, u32::MAX));
        }
        if !vanished.is_empty() {
            self.line(&format!("* VANISHED (EARLIER) {}", compress(&vanished)));
        }
        for (i, v) in msgs.iter().enumerate() {
            if v.modseq > q.modseq {
                self.line(&format!(
                    "* {} FETCH (UID {} FLAGS {} MODSEQ ({}))",
                    i + 1,
                    v.uid,
                    v.flag_list(!self.rev2 && in_ranges(recent, v.uid)),
                    v.modseq
                ));
            }
        }
    }

    /// Brings the view up to date and queues the untagged responses. Expunges are only
    /// announced when `expunge_ok` (RFC 9051 §7.4.1: not during FETCH, STORE, SEARCH).
    pub(super) async fn refresh(&mut self, expunge_ok: bool) {
        let Some(sel) = self.sel.as_ref() else {
            return;
        };
        let mref = sel.mbox.clone();
        let known = sel.highestmodseq;
        let (read_only, old_last) = (sel.read_only, sel.msgs.last().map_or(0, |m| m.uid));
        // Another session of this user changed its private \Seen set: re-read it, so the
        // flag changes are reported like any other (RFC 9051 §7.5.2 unsolicited FETCH).
        let idx = &self.ctx.shared.mailboxes;
        let gen_now = idx.private_seen_generation(mref.meta.id, self.user());
        let reloaded = if sel.private_seen.is_some() && gen_now != sel.private_gen {
            self.private_seen(&mref)
        } else {
            None
        };
        let seen = reloaded.as_ref().or(sel.private_seen.as_ref());
        let (meta, fresh) = match self.current_view(&mref, seen) {
            Ok((meta, _)) if meta.highestmodseq == known && reloaded.is_none() => return,
            Ok(x) => x,
            Err(e) => {
                tracing::debug!("imap refresh: {e:#}");
                return;
            }
        };
        // New messages: this session may be the first to be told of them.
        let new_recent = if fresh.last().map_or(0, |m| m.uid) > old_last {
            self.recent_range(meta.id, meta.uidnext, read_only)
        } else {
            None
        };
        let qresync = self.qresync;
        let condstore = self.condstore;
        let rev1 = !self.rev2;
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        if reloaded.is_some() {
            sel.private_seen = reloaded;
            sel.private_gen = gen_now;
        }
        let old = std::mem::take(&mut sel.msgs);
        let merged = merge_views(&old, fresh, expunge_ok);
        // RFC 5267 §4.3.4: updating searches lose the expunged messages before the EXPUNGE.
        let removed = self.contexts_expunged(&merged.vanished, &old);
        for l in removed {
            self.line(&l);
        }
        let Some(sel) = self.sel.as_mut() else {
            return;
        };
        sel.msgs = merged.view.clone();
        sel.highestmodseq = meta.highestmodseq;
        if let Some(r) = new_recent {
            add_range(&mut sel.recent, r);
        }
        if !expunge_ok && sel.msgs.iter().any(|m| m.gone) {
            // Remember that expunges are pending: a later refresh must look again.
            sel.highestmodseq = 0;
        }
        let lines = changes_lines(sel, &merged, qresync, condstore, rev1);
        // Merging the views already went over every message.
        self.announce_new_keywords(None);
        for l in lines {
            self.line(&l);
        }
    }
}

/// Every keyword of the messages.
fn keywords_of(msgs: &[ViewMsg]) -> std::collections::BTreeSet<String> {
    msgs.iter()
        .flat_map(|m| m.keywords.iter().cloned())
        .collect()
}

/// The untagged responses that report a refresh: EXPUNGE or VANISHED (QRESYNC), EXISTS and
/// RECENT, and FETCH for flag changes (with MODSEQ under CONDSTORE).
fn changes_lines(
    sel: &Selected,
    m: &Merged,
    qresync: bool,
    condstore: bool,
    rev1: bool,
) -> Vec<String> {
    let mut l = Vec::new();
    if qresync && !m.vanished.is_empty() {
        l.push(format!("* VANISHED {}", compress(&m.vanished)));
    } else {
        for s in m.expunged_seqs.iter().rev() {
            l.push(format!("* {s} EXPUNGE"));
        }
    }
    if m.added {
        l.push(format!("* {} EXISTS", sel.msgs.len()));
        if rev1 {
            // RFC 3501 §7.3.2: RECENT follows a change of the mailbox size.
            l.push(format!("* {} RECENT", sel.recent_count()));
        }
    }
    for p in &m.updates {
        let v = &sel.msgs[*p];
        let ms = if condstore {
            format!(" MODSEQ ({})", v.modseq)
        } else {
            String::new()
        };
        l.push(format!(
            "* {} FETCH (UID {} FLAGS {}{ms})",
            p + 1,
            v.uid,
            v.flag_list(rev1 && sel.is_recent(v.uid))
        ));
    }
    l
}
