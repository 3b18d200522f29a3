//! SELECT / EXAMINE (RFC 9051 §6.3.2–3, RFC 7162 CONDSTORE/QRESYNC), the session's view of
//! the selected mailbox and the untagged updates that keep it current (§7.4.1 EXPUNGE,
//! §7.3.1 EXISTS, FETCH FLAGS; RFC 7162 §3.2.10 VANISHED), IDLE (RFC 2177), EXPUNGE and
//! UID EXPUNGE (RFC 4315), CLOSE and UNSELECT (RFC 3691), and Junk expiry.

use super::folders::MailboxRef;
use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::{QResync, SeqSet};
use postcore_storage::mailbox::{MailboxMeta, MessageRecord, flag};
use std::path::PathBuf;
use std::time::Duration;

/// How often an IDLE session looks at the folder anyway: changes made outside postcore wake
/// it at once through inotify (`postcore_storage::dirwatch`); this covers folders it cannot
/// watch (the kernel's watch limit reached).
const IDLE_POLL: Duration = Duration::from_secs(30);
/// RFC 9051 §5.4 / RFC 2177: IDLE is ended by the server after this long.
const IDLE_MAX: Duration = Duration::from_secs(29 * 60);

/// One shared view: the modseq it reflects, the view, and when it was last handed out.
type SharedView = (u64, std::sync::Arc<Vec<ViewMsg>>, std::time::Instant);

/// Views shared by sessions that see the same mailbox state: 2,000 IDLE sessions on one
/// INBOX hold one copy of its message list, not 2,000 (copy-on-write when one diverges).
/// Recently used views stay cached for a while after their last session let go, so a
/// client that re-selects or reconnects does not rebuild it.
static SHARED_VIEWS: std::sync::LazyLock<
    std::sync::Mutex<std::collections::HashMap<u64, SharedView>>,
> = std::sync::LazyLock::new(Default::default);

/// Unused views are dropped after this long.
const VIEW_TTL: std::time::Duration = std::time::Duration::from_secs(120);

/// The shared copy of a view of mailbox `id` at `modseq`, or `view` itself (registered for
/// the next session).
fn share_view(id: u64, modseq: u64, view: Vec<ViewMsg>) -> std::sync::Arc<Vec<ViewMsg>> {
    let mut m = SHARED_VIEWS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((ms, a, used)) = m.get_mut(&id)
        && *ms == modseq
        && a.len() == view.len()
    {
        *used = std::time::Instant::now();
        return a.clone();
    }
    if m.len() > 64 {
        m.retain(|_, (_, a, used)| {
            std::sync::Arc::strong_count(a) > 1 || used.elapsed() < VIEW_TTL
        });
    }
    let a = std::sync::Arc::new(view);
    m.insert(id, (modseq, a.clone(), std::time::Instant::now()));
    a
}

/// The shared view of mailbox `id` at `modseq`, if there is one.
fn cached_view(id: u64, modseq: u64) -> Option<std::sync::Arc<Vec<ViewMsg>>> {
    let mut m = SHARED_VIEWS.lock().unwrap_or_else(|p| p.into_inner());
    m.get_mut(&id)
        .filter(|(ms, _, _)| *ms == modseq)
        .map(|(_, a, used)| {
            *used = std::time::Instant::now();
            a.clone()
        })
}

/// A message as the session knows it (sequence number = position + 1).
#[derive(Debug, Clone)]
pub(super) struct ViewMsg {
    pub uid: u32,
    pub flags: u8,
    pub keywords: Vec<String>,
    pub modseq: u64,
    /// RFC822.SIZE.
    pub size: u64,
    /// INTERNALDATE (Unix seconds).
    pub date: i64,
    /// Expunged by another session, not yet announced to this one.
    pub gone: bool,
}

impl ViewMsg {
    fn from_record(
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

/// Whether `uid` lies in one of the half-open `ranges`.
fn in_ranges(ranges: &[(u32, u32)], uid: u32) -> bool {
    ranges.iter().any(|(lo, hi)| (*lo..*hi).contains(&uid))
}

/// Adds the UIDs `lo..hi` to `ranges`, merged with the last range when they meet
/// (successive \Recent claims of one session usually do), so the list stays short.
fn add_range(ranges: &mut Vec<(u32, u32)>, (lo, hi): (u32, u32)) {
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
            && let Some(v) = cached_view(meta.id, meta.highestmodseq)
        {
            return Ok((meta, v));
        }
        let view: Vec<ViewMsg> = idx
            .messages(meta.id)?
            .iter()
            .map(|(u, r)| ViewMsg::from_record(*u, r, private))
            .collect();
        let view = if private.is_none() {
            share_view(meta.id, meta.highestmodseq, view)
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
        self.announce_flags(&msgs, read_only);
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
        });
        let verb = if examine { "EXAMINE" } else { "SELECT" };
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        Done::ok_with(code, format!("{verb} completed"))
    }

    /// FLAGS and PERMANENTFLAGS of a mailbox being selected (RFC 9051 §7.3.5, §7.1).
    fn announce_flags(&mut self, msgs: &[ViewMsg], read_only: bool) {
        let mut keywords: Vec<&str> = msgs
            .iter()
            .flat_map(|m| m.keywords.iter().map(String::as_str))
            .collect();
        keywords.sort_unstable();
        keywords.dedup();
        let kw = keywords.join(" ");
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
        if self.condstore {
            self.untagged_ok(Code::HighestModSeq(meta.highestmodseq), "Highest");
        } else {
            self.untagged_ok(Code::NoModSeq, "No permanent modsequences");
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
        for l in lines {
            self.line(&l);
        }
    }

    /// Removes the files of messages at `positions` and their index entries. Returns the
    /// UIDs expunged.
    pub(super) fn expunge_positions(&mut self, positions: &[usize]) -> anyhow::Result<Vec<u32>> {
        let Some(sel) = self.sel.as_ref() else {
            return Ok(Vec::new());
        };
        let mref = sel.mbox.clone();
        let uids: Vec<u32> = positions.iter().map(|p| sel.msgs[*p].uid).collect();
        self.expunge_uids(&mref, &uids)
    }

    /// Expunges `uids` of mailbox `m` (files and index), under the mailbox lock.
    pub(super) fn expunge_uids(&self, m: &MailboxRef, uids: &[u32]) -> anyhow::Result<Vec<u32>> {
        let idx = &self.ctx.shared.mailboxes;
        let lock = idx.lock(m.meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut meta = idx
            .get(&m.owner, &m.name)?
            .ok_or_else(|| anyhow::anyhow!("mailbox vanished"))?;
        let qbox = Self::quota_box(&m.owner);
        let mut done = Vec::new();
        for uid in uids {
            let Some(rec) = idx.message(meta.id, *uid)? else {
                continue;
            };
            match std::fs::remove_file(m.path.join(rec.relative_path())) {
                Ok(()) => self.ctx.shared.usage.remove(&qbox, rec.size),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            done.push(*uid);
        }
        idx.expunge(&m.owner, &m.name, &mut meta, &done)?;
        drop(_g);
        idx.notify(meta.id);
        Ok(done)
    }

    pub(super) async fn expunge(&mut self, uids: Option<SeqSet>) -> Done {
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if sel.read_only || !sel.mbox.may('e') {
            return Done::no_with(Code::ReadOnly, "Mailbox is read-only");
        }
        let allowed: Option<Vec<usize>> = uids.as_ref().map(|s| sel.resolve(s, true));
        let targets: Vec<usize> = sel
            .msgs
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                m.flags & flag::DELETED != 0
                    && !m.gone
                    && allowed.as_ref().is_none_or(|a| a.binary_search(i).is_ok())
            })
            .map(|(i, _)| i)
            .collect();
        if let Err(e) = self.expunge_positions(&targets) {
            tracing::warn!(user = %self.user(), "imap expunge: {e:#}");
            return Done::no_with(Code::ServerBug, "Expunge failed");
        }
        self.refresh(true).await;
        Done::ok("EXPUNGE completed")
    }

    pub(super) async fn close(&mut self, expunge: bool) -> Done {
        if expunge
            && let Some(sel) = self.sel.as_ref()
            && !sel.read_only
            && sel.mbox.may('e')
        {
            let targets: Vec<usize> = sel
                .msgs
                .iter()
                .enumerate()
                .filter(|(_, m)| m.flags & flag::DELETED != 0 && !m.gone)
                .map(|(i, _)| i)
                .collect();
            if let Err(e) = self.expunge_positions(&targets) {
                tracing::warn!(user = %self.user(), "imap close: {e:#}");
            }
        }
        self.sel = None;
        Done::ok(if expunge {
            "CLOSE completed"
        } else {
            "UNSELECT completed"
        })
    }

    /// RFC 2177 IDLE: pushes changes until the client sends DONE.
    pub(super) async fn idle(&mut self) -> Done {
        self.line("+ idling");
        if !self.flush().await {
            self.conn.close();
            return Done::Silent;
        }
        let started = std::time::Instant::now();
        let mut shutdown = self.ctx.shared.shutdown.clone();
        let mut watch = self.sel.as_ref().map(|s| s.watch.clone());
        loop {
            if let Some(p) = memchr::memchr(b'\n', &self.conn.inbuf) {
                let line: Vec<u8> = self.conn.inbuf.drain(..=p).collect();
                let l = String::from_utf8_lossy(&line);
                return if l.trim().eq_ignore_ascii_case("DONE") {
                    self.refresh(true).await;
                    Done::ok("IDLE terminated")
                } else {
                    Done::bad("Expected DONE")
                };
            }
            if self.conn.inbuf.len() > 1024 {
                return Done::bad("Expected DONE");
            }
            enum Ev {
                Data,
                Closed,
                Changed,
                Poll,
                Stop,
            }
            let ev = tokio::select! {
                r = self.conn.read_some() => match r {
                    Ok(_) => Ev::Data,
                    Err(_) => Ev::Closed,
                },
                _ = async {
                    match watch.as_mut() {
                        Some(w) => { let _ = w.changed().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => Ev::Changed,
                _ = tokio::time::sleep(IDLE_POLL) => Ev::Poll,
                _ = shutdown.wait_for(|v| *v) => Ev::Stop,
            };
            match ev {
                Ev::Data => {}
                Ev::Closed => {
                    self.conn.close();
                    return Done::Silent;
                }
                Ev::Changed | Ev::Poll => {
                    if started.elapsed() > IDLE_MAX {
                        self.bye(None, "Autologout; IDLE for too long");
                        let _ = self.flush().await;
                        self.conn.close();
                        return Done::Silent;
                    }
                    self.refresh(true).await;
                    if !self.flush().await {
                        self.conn.close();
                        return Done::Silent;
                    }
                }
                Ev::Stop => {
                    self.bye(Some(Code::Unavailable), "Server shutting down");
                    let _ = self.flush().await;
                    self.conn.close();
                    return Done::Silent;
                }
            }
        }
    }

    /// "Keep spam for N days": expunges messages older than that from the user's Junk.
    pub(super) fn expire_spam(&self, user: &str) {
        let dir = self.ctx.shared.directory.snapshot();
        let days = dir
            .users
            .get(user)
            .and_then(|u| u.keep_spam_days)
            .unwrap_or(dir.settings.imap.keep_spam_days);
        if days == 0 {
            return;
        }
        let idx = &self.ctx.shared.mailboxes;
        let Ok(Some(meta)) = idx.get(user, "Junk") else {
            return;
        };
        let root = self.user_root(user);
        let m = MailboxRef {
            owner: user.to_string(),
            name: "Junk".into(),
            display: "Junk".into(),
            path: postcore_storage::mailbox::folder_path(&root, "Junk"),
            meta,
            rights: super::folders::ALL_RIGHTS.into(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let cutoff = now - days as i64 * 86400;
        let Ok((_, recs)) = self.load(&m) else {
            return;
        };
        let old: Vec<u32> = recs
            .iter()
            .filter(|(_, r)| r.internal_date < cutoff)
            .map(|(u, _)| *u)
            .collect();
        if old.is_empty() {
            return;
        }
        match self.expunge_uids(&m, &old) {
            Ok(done) => {
                tracing::info!(
                    user,
                    expunged = done.len(),
                    days,
                    "junk expiry: {} messages older than {days} days expunged from Junk",
                    done.len()
                )
            }
            Err(e) => tracing::warn!(user, "junk expiry: {e:#}"),
        }
    }
}

/// The view after a refresh, and what changed from the old one.
struct Merged {
    /// The new view.
    view: std::sync::Arc<Vec<ViewMsg>>,
    /// Sequence numbers expunged (in the old view).
    expunged_seqs: Vec<usize>,
    /// UIDs expunged.
    vanished: Vec<u32>,
    /// Positions (in the new view) whose flags changed.
    updates: Vec<usize>,
    /// New messages were appended.
    added: bool,
}

/// Merges the session's `old` view with the index's `fresh` one: messages gone are removed
/// when `expunge_ok`, else kept marked `gone` (RFC 9051 §7.4.1: no EXPUNGE during FETCH,
/// STORE, SEARCH); flag changes and new messages are noted.
fn merge_views(old: &[ViewMsg], fresh: std::sync::Arc<Vec<ViewMsg>>, expunge_ok: bool) -> Merged {
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

#[cfg(test)]
mod tests {
    #[test]
    fn compress_ranges() {
        assert_eq!(super::compress(&[1, 2, 3, 5, 7, 8]), "1:3,5,7:8");
        assert_eq!(super::compress(&[]), "");
    }

    #[test]
    fn recent_ranges_merge_when_they_meet() {
        let mut r = vec![(1, 5)];
        super::add_range(&mut r, (5, 7)); // this session's next claim
        super::add_range(&mut r, (3, 9)); // read-only: overlaps
        assert_eq!(r, vec![(1, 9)]);
        super::add_range(&mut r, (12, 14)); // another session claimed 9..12 meanwhile
        assert_eq!(r, vec![(1, 9), (12, 14)]);
        assert!(super::in_ranges(&r, 8) && !super::in_ranges(&r, 9) && super::in_ranges(&r, 13));
    }
}
