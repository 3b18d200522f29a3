//! NOTIFY (RFC 5465): the client names mailboxes and events once, and the session then
//! tells it of them as they happen — between commands and in IDLE — instead of the client
//! polling each mailbox with STATUS.
//!
//! - The selected mailbox (SELECTED / SELECTED-DELAYED, §6.1): its changes are pushed as
//!   the usual EXISTS/EXPUNGE/FETCH (expunges held back for SELECTED-DELAYED), with a FETCH
//!   of the items MessageNew asked for after each new message's EXISTS (§5.2).
//! - Other mailboxes (§5.1–5.3): `* STATUS` with what changed.
//! - The mailbox tree (§5.4–5.7): `* LIST` for created, deleted (`\NonExistent`) and renamed
//!   (`OLDNAME`) mailboxes and for subscription changes, `* METADATA` naming changed entries.
//!
//! Changes are found by comparing snapshots: each watched mailbox's counters, and the user's
//! tree (names by id, subscriptions, metadata). What wakes the session: the index's watch
//! channels (deliveries, other sessions, inotify) — one per watched mailbox, one per owner's
//! tree. The session's own commands are absorbed into the snapshot without notifying (§5:
//! the server SHOULD NOT notify a client of what it did itself).

use super::folders::{MailboxRef, SEP};
use super::{Done, Session};
use postcore_protocol::imap::encode;
use postcore_protocol::imap::{
    Code, FetchAtt, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet, SeqSet, StatusText,
};
use postcore_storage::mailbox::flag;
use std::collections::{BTreeMap, BTreeSet};
use tokio::sync::watch;

/// The most mailboxes one session watches for message events (each is a watch channel
/// the session waits on); past it NOTIFY is refused or turned off with NOTIFICATIONOVERFLOW.
pub(super) const MAX_WATCHED: usize = 1000;

/// The events postcore reports (RFC 5465 §3.1: BADEVENT lists them).
const SUPPORTED: &str = "MessageNew MessageExpunge FlagChange MailboxName SubscriptionChange \
                         MailboxMetadataChange ServerMetadataChange";

/// The counters of a watched mailbox other than the selected one.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BoxState {
    id: u64,
    uidvalidity: u32,
    uidnext: u32,
    messages: u64,
    unseen: u64,
    highestmodseq: u64,
}

/// The user's mailbox tree as last seen.
#[derive(Debug, Clone, Default)]
struct Tree {
    /// Personal mailboxes by index id (a rename keeps the id).
    names: BTreeMap<u64, String>,
    subscribed: BTreeSet<String>,
    /// Per mailbox name ("" for the server), each metadata entry with a hash of its value.
    metadata: BTreeMap<String, BTreeMap<String, u64>>,
}

/// What the selected mailbox's group asks for.
#[derive(Debug, Clone)]
struct SelectedEvents {
    /// SELECTED-DELAYED: expunges wait for a command that may report them (§6.1.2).
    delayed: bool,
    /// MessageNew's FETCH items.
    fetch: Vec<FetchAtt>,
}

/// A session's NOTIFY state (RFC 5465 §3.1).
pub(super) struct Notifier {
    groups: Vec<NotifyGroup>,
    selected: Option<SelectedEvents>,
    boxes: BTreeMap<String, BoxState>,
    tree: Tree,
    /// Watches of the watched mailboxes (by name) and of the user's tree (`None`).
    watches: Vec<(Option<String>, watch::Receiver<u64>)>,
    /// The next UID of the selected mailbox (`.0` its id) not yet sent MessageNew's FETCH.
    fetched_to: (u64, u32),
}

impl Notifier {
    fn wants(&self, pred: impl Fn(&NotifyEvent) -> bool) -> bool {
        self.groups
            .iter()
            .filter(|g| !g.filter.is_selected())
            .any(|g| g.events.iter().any(&pred))
    }

    /// The events wanted for mailbox `name` (other than the selected one): those of every
    /// group covering it (as Dovecot does; RFC 5465 §6 sets no precedence).
    fn events_for(&self, name: &str, personal: bool) -> Vec<&NotifyEvent> {
        self.groups
            .iter()
            .filter(|g| covers(&g.filter, name, personal, &self.tree.subscribed))
            .flat_map(|g| g.events.iter())
            .collect()
    }

    fn wants_for(&self, name: &str, personal: bool, pred: impl Fn(&NotifyEvent) -> bool) -> bool {
        self.events_for(name, personal).into_iter().any(pred)
    }

    /// Takes the watches out while the session waits on them.
    pub(super) fn take_watches(&mut self) -> Vec<(Option<String>, watch::Receiver<u64>)> {
        std::mem::take(&mut self.watches)
    }

    /// Puts the watches back, each marked seen.
    pub(super) fn restore_watches(&mut self, mut w: Vec<(Option<String>, watch::Receiver<u64>)>) {
        if self.watches.is_empty() {
            self.watches = std::mem::take(&mut w);
        }
    }

    /// Whether the session pushes the selected mailbox's changes.
    pub(super) fn watches_selected(&self) -> bool {
        self.selected.is_some()
    }

    /// Whether anything watched changed since it was last looked at.
    pub(super) fn pending(&self) -> bool {
        self.watches
            .iter()
            .any(|(_, w)| w.has_changed().unwrap_or(false))
    }
}

/// Whether a (non-selected) filter covers mailbox `name` (RFC 5465 §6.2–6.6).
fn covers(f: &NotifyFilter, name: &str, personal: bool, subscribed: &BTreeSet<String>) -> bool {
    match f {
        NotifyFilter::Selected | NotifyFilter::SelectedDelayed => false,
        // §6.3: where mail may be delivered — with Sieve's fileinto that is any personal
        // mailbox (Dovecot answers the same).
        NotifyFilter::Inboxes | NotifyFilter::Personal => personal,
        NotifyFilter::Subscribed => subscribed.contains(name),
        NotifyFilter::Subtree(names) => names.iter().any(|n| {
            name == n
                || name
                    .strip_prefix(n.as_str())
                    .is_some_and(|r| r.starts_with(SEP))
        }),
        NotifyFilter::Mailboxes(names) => names.iter().any(|n| n == name),
    }
}

/// Waits until one of `watches` changes (never, when there are none). The watches are not
/// marked seen: the scan that follows asks each whether it changed.
pub(super) async fn changed(watches: &mut [(Option<String>, watch::Receiver<u64>)]) {
    if watches.is_empty() {
        return std::future::pending().await;
    }
    let futs = watches.iter().map(|(_, w)| {
        let mut w = w.clone();
        Box::pin(async move {
            if w.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        })
    });
    let _ = futures_util::future::select_all(futs).await;
}

fn hash(v: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.hash(&mut h);
    h.finish()
}

impl Session {
    /// NOTIFY (RFC 5465 §3.1).
    pub(super) async fn notify(&mut self, set: Option<NotifySet>) -> Done {
        let Some(set) = set else {
            self.notifier = None;
            return Done::ok("NOTIFY completed");
        };
        // §3.1: events this server does not report are refused, naming those it does.
        if set
            .groups
            .iter()
            .flat_map(|g| g.events.iter())
            .any(|e| matches!(e, NotifyEvent::AnnotationChange | NotifyEvent::Other(_)))
        {
            return Done::no_with(
                Code::BadEvent(SUPPORTED.into()),
                "Unsupported NOTIFY events",
            );
        }
        let selected = set
            .groups
            .iter()
            .find(|g| g.filter.is_selected() && !g.events.is_empty())
            .map(|g| SelectedEvents {
                delayed: g.filter == NotifyFilter::SelectedDelayed,
                fetch: g
                    .events
                    .iter()
                    .find_map(|e| match e {
                        NotifyEvent::MessageNew(a) => Some(a.clone()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            });
        let next = self
            .sel
            .as_ref()
            .map_or((0, 0), |s| (s.id(), s.msgs.last().map_or(1, |m| m.uid + 1)));
        self.notifier = Some(Notifier {
            groups: set.groups,
            selected,
            boxes: BTreeMap::new(),
            tree: Tree::default(),
            watches: Vec::new(),
            fetched_to: next,
        });
        self.no_access_lines();
        if !self.notify_scan(false) {
            // §3.1: too expensive to watch: refused.
            return Done::no_with(Code::NotificationOverflow, "Too many mailboxes to watch");
        }
        if set.status {
            self.status_of_watched();
        }
        // §3.1: a successful NOTIFY SET is also a NOOP for the selected mailbox.
        if self.sel.is_some() {
            self.refresh(true).await;
        }
        Done::ok("NOTIFY completed")
    }

    /// §3.1: named mailboxes the user may see but not read get `LIST (\NoAccess)`.
    fn no_access_lines(&mut self) {
        let Some(n) = self.notifier.as_ref() else {
            return;
        };
        let names: Vec<String> = n
            .groups
            .iter()
            .filter(|g| g.events.iter().any(NotifyEvent::is_message_event))
            .flat_map(|g| match &g.filter {
                NotifyFilter::Subtree(v) | NotifyFilter::Mailboxes(v) => v.clone(),
                _ => Vec::new(),
            })
            .collect();
        for name in names {
            if let Some(m) = self.resolve(&name)
                && !m.may('r')
            {
                self.notify_list(&["\\NoAccess"], &m.display, None);
            }
        }
    }

    /// `* STATUS` of every watched mailbox (NOTIFY SET STATUS, §3.1).
    fn status_of_watched(&mut self) {
        let Some(n) = self.notifier.as_ref() else {
            return;
        };
        let flags = n.wants(|e| matches!(e, NotifyEvent::FlagChange));
        let boxes: Vec<(String, BoxState)> = n
            .boxes
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let selected = self.sel.as_ref().map(|s| s.id());
        for (name, st) in boxes {
            if Some(st.id) == selected {
                continue;
            }
            let mut items = vec![
                ("MESSAGES", st.messages),
                ("UIDNEXT", st.uidnext as u64),
                ("UIDVALIDITY", st.uidvalidity as u64),
                ("UNSEEN", st.unseen),
            ];
            if flags || self.condstore {
                items.push(("HIGHESTMODSEQ", st.highestmodseq));
            }
            self.status_line(&name, &items);
        }
    }

    fn notify_list(&mut self, attrs: &[&str], name: &str, old: Option<&str>) {
        let mut l = format!("* LIST ({}) \"{SEP}\" ", attrs.join(" ")).into_bytes();
        encode::mailbox(&mut l, name);
        if let Some(old) = old {
            // RFC 5465 §5.4: the extended LIST response with OLDNAME (RFC 5258 §6).
            l.extend_from_slice(b" (\"OLDNAME\" (");
            encode::mailbox(&mut l, old);
            l.extend_from_slice(b"))");
        }
        l.extend_from_slice(b"\r\n");
        self.conn.out.extend_from_slice(&l);
    }

    /// The mailboxes whose message events are watched, with their client names.
    fn watched_mailboxes(&self, tree: &Tree) -> Vec<(MailboxRef, bool)> {
        let Some(n) = self.notifier.as_ref() else {
            return Vec::new();
        };
        let message_event = |e: &NotifyEvent| e.is_message_event();
        let mut names: BTreeSet<String> = tree.names.values().cloned().collect();
        names.extend(tree.subscribed.iter().cloned());
        for g in &n.groups {
            if let NotifyFilter::Subtree(v) | NotifyFilter::Mailboxes(v) = &g.filter {
                names.extend(v.iter().cloned());
            }
        }
        // The user's own mailboxes from one listing (not a lookup each: there may be a
        // thousand); others' (shared, public) by name.
        let user = self.user();
        let root = self.user_root(user);
        let mut own: BTreeMap<String, postcore_storage::mailbox::MailboxMeta> = self
            .ctx
            .shared
            .mailboxes
            .list(user)
            .unwrap_or_default()
            .into_iter()
            .collect();
        let mut out = Vec::new();
        for name in names {
            let is_personal = own.contains_key(&name);
            let wanted = n
                .groups
                .iter()
                .filter(|g| covers(&g.filter, &name, is_personal, &tree.subscribed))
                .any(|g| g.events.iter().any(message_event));
            if !wanted {
                continue;
            }
            let m = match own.remove(&name) {
                Some(meta) => Some(MailboxRef {
                    owner: user.to_string(),
                    path: postcore_storage::mailbox::folder_path(&root, &name),
                    display: name.clone(),
                    name,
                    meta,
                    rights: super::folders::ALL_RIGHTS.into(),
                }),
                None => self.resolve(&name),
            };
            if let Some(m) = m.filter(|m| m.may('r')) {
                out.push((m, is_personal));
            }
        }
        out
    }

    fn box_state(&self, m: &MailboxRef) -> Option<BoxState> {
        let (meta, mut msgs) = self.load(m).ok()?;
        if let Some(set) = self.private_seen(m) {
            for (u, r) in msgs.iter_mut() {
                r.flags = super::seen::overlay(*u, r.flags, Some(&set));
            }
        }
        Some(BoxState {
            id: meta.id,
            uidvalidity: meta.uidvalidity,
            uidnext: meta.uidnext,
            messages: msgs.len() as u64,
            unseen: msgs
                .iter()
                .filter(|(_, r)| r.flags & flag::SEEN == 0)
                .count() as u64,
            highestmodseq: meta.highestmodseq,
        })
    }

    /// The user's tree now: personal names, subscriptions, and (when asked for) metadata.
    fn read_tree(&self, metadata: bool) -> Tree {
        let idx = &self.ctx.shared.mailboxes;
        let user = self.user();
        let list = idx.list(user).unwrap_or_default();
        let mut t = Tree {
            names: list.iter().map(|(n, m)| (m.id, n.clone())).collect(),
            subscribed: idx.subscriptions(user).unwrap_or_default(),
            metadata: BTreeMap::new(),
        };
        if metadata {
            let ids = std::iter::once((String::new(), 0))
                .chain(list.iter().map(|(n, m)| (n.clone(), m.id)));
            for (name, id) in ids {
                let mut entries = BTreeMap::new();
                for scope in ["/private/", "/shared/"] {
                    for (e, v) in idx.metadata_scope(id, user, scope).unwrap_or_default() {
                        entries.insert(e, hash(&v));
                    }
                }
                t.metadata.insert(name, entries);
            }
        }
        t
    }

    /// Compares the watched state with the store's; sends what changed when `report`, and
    /// keeps the new state either way (a command's own changes are absorbed unreported).
    /// `false` when the mailboxes to watch grew past [`MAX_WATCHED`]: NOTIFY is then off.
    pub(super) fn notify_scan(&mut self, report: bool) -> bool {
        let Some(n) = self.notifier.as_mut() else {
            return true;
        };
        let first = n.watches.is_empty();
        let tree_changed = first
            || n.watches
                .iter()
                .any(|(k, w)| k.is_none() && w.has_changed().unwrap_or(true));
        let changed_boxes: BTreeSet<String> = n
            .watches
            .iter()
            .filter(|(k, w)| k.is_some() && w.has_changed().unwrap_or(true))
            .filter_map(|(k, _)| k.clone())
            .collect();
        for (_, w) in n.watches.iter_mut() {
            w.borrow_and_update();
        }
        let metadata = n.wants(|e| {
            matches!(
                e,
                NotifyEvent::MailboxMetadataChange | NotifyEvent::ServerMetadataChange
            )
        });
        let old_tree = n.tree.clone();
        let tree = if tree_changed {
            self.read_tree(metadata)
        } else {
            old_tree.clone()
        };
        if report && tree_changed {
            self.report_tree(&old_tree, &tree);
        }
        // The watched mailboxes: again when the tree changed (names, subscriptions).
        let watched = if tree_changed {
            Some(self.watched_mailboxes(&tree))
        } else {
            None
        };
        if watched.as_ref().is_some_and(|w| w.len() > MAX_WATCHED) {
            // More than this session will watch: notifications stop, as if NOTIFY NONE.
            self.notifier = None;
            return false;
        }
        let selected = self.sel.as_ref().map(|s| s.id());
        let idx = self.ctx.shared.mailboxes.clone();
        let tree_watch = idx.watch_tree(self.user());
        let Some(n) = self.notifier.as_mut() else {
            return true;
        };
        n.tree = tree;
        if let Some(watched) = watched {
            let mut watches = vec![(None, tree_watch)];
            let mut boxes = BTreeMap::new();
            let old = std::mem::take(&mut n.boxes);
            let mut pending = Vec::new();
            for (m, personal) in watched {
                let mut w = idx.watch(m.meta.id, &m.path);
                w.borrow_and_update();
                watches.push((Some(m.display.clone()), w));
                match old.get(&m.display) {
                    Some(st) if !changed_boxes.contains(&m.display) => {
                        boxes.insert(m.display.clone(), st.clone());
                    }
                    _ => pending.push((m, personal)),
                }
            }
            n.watches = watches;
            n.boxes = boxes;
            for (m, personal) in pending {
                self.report_box(&m, personal, old.get(&m.display), report, selected);
            }
        } else {
            let names: Vec<String> = changed_boxes.into_iter().collect();
            for name in names {
                let Some(m) = self.resolve(&name) else {
                    continue;
                };
                let personal = m.owner == self.user();
                let old = self
                    .notifier
                    .as_ref()
                    .and_then(|n| n.boxes.get(&name).cloned());
                self.report_box(&m, personal, old.as_ref(), report, selected);
            }
        }
        true
    }

    /// Reads mailbox `m`'s counters, keeps them, and (when `report`) sends the STATUS its
    /// change calls for (RFC 5465 §5.1–5.3; the selected mailbox has its own responses).
    fn report_box(
        &mut self,
        m: &MailboxRef,
        personal: bool,
        old: Option<&BoxState>,
        report: bool,
        selected: Option<u64>,
    ) {
        let Some(new) = self.box_state(m) else {
            return;
        };
        let condstore = self.condstore;
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        n.boxes.insert(m.display.clone(), new.clone());
        let Some(old) = old else {
            return;
        };
        if !report || Some(new.id) == selected || *old == new {
            return;
        }
        let msg =
            |e: &NotifyEvent| matches!(e, NotifyEvent::MessageNew(_) | NotifyEvent::MessageExpunge);
        let flags = |e: &NotifyEvent| matches!(e, NotifyEvent::FlagChange);
        let wants_msgs = n.wants_for(&m.display, personal, msg);
        let wants_flags = n.wants_for(&m.display, personal, flags);
        let mut items: Vec<(&str, u64)> = Vec::new();
        if old.uidvalidity != new.uidvalidity || old.id != new.id {
            items.extend([
                ("MESSAGES", new.messages),
                ("UIDNEXT", new.uidnext as u64),
                ("UIDVALIDITY", new.uidvalidity as u64),
                ("UNSEEN", new.unseen),
            ]);
        } else if wants_msgs && (old.messages != new.messages || old.uidnext != new.uidnext) {
            items.extend([
                ("MESSAGES", new.messages),
                ("UIDNEXT", new.uidnext as u64),
                ("UNSEEN", new.unseen),
            ]);
        } else if wants_flags && old.highestmodseq != new.highestmodseq {
            // §5.1: a flag change elsewhere: at least UIDVALIDITY and HIGHESTMODSEQ.
            items.extend([
                ("UIDVALIDITY", new.uidvalidity as u64),
                ("UNSEEN", new.unseen),
                ("HIGHESTMODSEQ", new.highestmodseq),
            ]);
        }
        if items.is_empty() {
            return;
        }
        if (condstore || wants_flags) && !items.iter().any(|(k, _)| *k == "HIGHESTMODSEQ") {
            items.push(("HIGHESTMODSEQ", new.highestmodseq));
        }
        self.status_line(&m.display, &items);
    }

    /// LIST and METADATA responses for what changed in the tree (RFC 5465 §5.4–5.7).
    fn report_tree(&mut self, old: &Tree, new: &Tree) {
        let Some(n) = self.notifier.as_ref() else {
            return;
        };
        let mut lines: Vec<(Vec<&'static str>, String, Option<String>)> = Vec::new();
        let name_ev = |e: &NotifyEvent| matches!(e, NotifyEvent::MailboxName);
        let has_children = |name: &str| {
            new.names
                .values()
                .any(|o| o.strip_prefix(name).is_some_and(|r| r.starts_with(SEP)))
        };
        let children = |name: &str| {
            if has_children(name) {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }
        };
        for (id, name) in &old.names {
            match new.names.get(id) {
                None if n.wants_for(name, true, name_ev) => {
                    lines.push((vec!["\\NonExistent"], name.clone(), None));
                }
                Some(now)
                    if now != name
                        && (n.wants_for(now, true, name_ev)
                            || n.wants_for(name, true, name_ev)) =>
                {
                    lines.push((vec![children(now)], now.clone(), Some(name.clone())));
                }
                _ => {}
            }
        }
        for (id, name) in &new.names {
            if !old.names.contains_key(id) && n.wants_for(name, true, name_ev) {
                lines.push((vec![children(name)], name.clone(), None));
            }
        }
        let sub_ev = |e: &NotifyEvent| matches!(e, NotifyEvent::SubscriptionChange);
        let personal: BTreeSet<&String> = new.names.values().collect();
        for name in new.subscribed.symmetric_difference(&old.subscribed) {
            let is_personal = personal.contains(name);
            // Under a SUBSCRIBED filter: the name is covered before (unsubscribed) or after
            // (subscribed) the change (§6.4: the set follows the subscriptions).
            let wanted = [&old.subscribed, &new.subscribed].into_iter().any(|subs| {
                n.groups.iter().any(|g| {
                    covers(&g.filter, name, is_personal, subs) && g.events.iter().any(sub_ev)
                })
            });
            if !wanted {
                continue;
            }
            let mut attrs = Vec::new();
            if new.subscribed.contains(name) {
                attrs.push("\\Subscribed");
            }
            if !is_personal && self.resolve(name).is_none() {
                attrs.push("\\NonExistent");
            }
            lines.push((attrs, name.clone(), None));
        }
        let mut meta_lines = Vec::new();
        for (name, entries) in &new.metadata {
            let before = old.metadata.get(name);
            let mut changed: Vec<&String> = entries
                .iter()
                .filter(|(e, h)| before.and_then(|b| b.get(*e)) != Some(*h))
                .map(|(e, _)| e)
                .collect();
            if let Some(b) = before {
                changed.extend(b.keys().filter(|e| !entries.contains_key(*e)));
            }
            let wanted = if name.is_empty() {
                n.wants(|e| matches!(e, NotifyEvent::ServerMetadataChange))
            } else {
                n.wants_for(name, true, |e| {
                    matches!(e, NotifyEvent::MailboxMetadataChange)
                })
            };
            if !changed.is_empty() && wanted && !old.metadata.is_empty() {
                changed.sort();
                meta_lines.push((
                    name.clone(),
                    changed.into_iter().cloned().collect::<Vec<_>>(),
                ));
            }
        }
        for (attrs, name, old) in lines {
            self.notify_list(&attrs, &name, old.as_deref());
        }
        for (name, entries) in meta_lines {
            // RFC 5464 §4.4.2: the unsolicited form names the entries that changed.
            let mut l = b"* METADATA ".to_vec();
            encode::mailbox(&mut l, &name);
            for e in entries {
                l.push(b' ');
                encode::mailbox(&mut l, &e);
            }
            l.extend_from_slice(b"\r\n");
            self.conn.out.extend_from_slice(&l);
        }
    }

    /// Pushes what happened since the last look: the selected mailbox's changes when a
    /// SELECTED group asks for them, then the other mailboxes and the tree.
    pub(super) async fn notify_push(&mut self) {
        let Some(n) = self.notifier.as_ref() else {
            return;
        };
        if let Some(sel) = n.selected.clone()
            && self.sel.is_some()
        {
            self.refresh(!sel.delayed).await;
            self.notify_new_messages().await;
            self.update_contexts().await;
        }
        self.notify_scan_or_stop(true);
    }

    /// A scan whose overflow (RFC 5465 §5.8) turns notifications off and says so with an
    /// untagged `OK [NOTIFICATIONOVERFLOW]`.
    fn notify_scan_or_stop(&mut self, report: bool) {
        if !self.notify_scan(report) {
            let t = StatusText::with(Code::NotificationOverflow, "Too many mailboxes to watch");
            self.respond("*", postcore_protocol::imap::Status::Ok, &t);
        }
    }

    /// A wake between commands: pushes the events and writes them out; `false` when the
    /// connection is gone.
    pub(super) async fn notify_pushed(&mut self) -> bool {
        self.notify_push().await;
        if let Some(s) = self.sel.as_mut() {
            // The selected mailbox's changes are now reported: its wake is consumed.
            s.watch.borrow_and_update();
        }
        self.flush().await
    }

    /// RFC 5465 §5.2: after the EXISTS of new messages in the selected mailbox, a FETCH of
    /// the items MessageNew asked for.
    pub(super) async fn notify_new_messages(&mut self) {
        let Some(n) = self.notifier.as_ref() else {
            return;
        };
        let Some(atts) = n.selected.as_ref().map(|s| s.fetch.clone()) else {
            return;
        };
        let Some(sel) = self.sel.as_ref() else {
            return;
        };
        let (id, last) = (sel.id(), sel.msgs.last().map_or(0, |m| m.uid));
        let (seen_id, from) = n.fetched_to;
        let Some(n) = self.notifier.as_mut() else {
            return;
        };
        n.fetched_to = (id, last + 1);
        if atts.is_empty() || seen_id != id || last < from {
            return;
        }
        let uids: Vec<u32> = (from..=last).collect();
        let _ = self
            .fetch_current(true, SeqSet::of(&uids), atts, None, false)
            .await;
    }

    /// Before a command: reports changes that arrived while the client was sending it.
    pub(super) async fn notify_before_command(&mut self) {
        if self.notifier.as_ref().is_some_and(Notifier::pending) {
            self.notify_scan_or_stop(true);
        }
    }

    /// After a command: its own changes are absorbed (RFC 5465 §5: not reported back), and
    /// new messages its responses announced get MessageNew's FETCH.
    pub(super) async fn notify_after_command(&mut self) {
        if self.notifier.is_none() {
            return;
        }
        self.notify_new_messages().await;
        self.notify_scan_or_stop(false);
    }
}
