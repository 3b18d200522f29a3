//! STORE and UID STORE (RFC 9051 §6.4.6), UNCHANGEDSINCE (RFC 7162 §3.1.3), ACL rights for
//! flags (RFC 4314 §4), and "move deleted email to trash".

use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::{SeqSet, StoreMode};
use postcore_storage::mailbox::{MessageRecord, flag};

impl Session {
    /// Changes flags of messages at `positions`; returns (changed positions, UIDs refused
    /// because they changed after `unchanged_since`). Files are renamed so the Maildir info
    /// (`:2,FS`) keeps the flags; the view is updated.
    pub(super) async fn apply_flags(
        &mut self,
        positions: &[usize],
        mode: StoreMode,
        names: &[String],
        unchanged_since: Option<u64>,
    ) -> anyhow::Result<(Vec<usize>, Vec<u32>)> {
        let Some(sel) = self.sel.as_ref() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let private = sel.private_seen.is_some();
        let change = FlagChange::new(names, mode, &sel.mbox, private);
        let targets: Vec<(usize, u32)> = positions
            .iter()
            .filter(|p| !sel.msgs[**p].gone)
            .map(|p| (*p, sel.msgs[*p].uid))
            .collect();
        let seen_named = change.bits & flag::SEEN != 0;
        let mut touched = Vec::new();
        if private && sel.mbox.may('s') && (seen_named || mode == StoreMode::Replace) {
            let want = match mode {
                StoreMode::Add => true,
                StoreMode::Remove => false,
                StoreMode::Replace => seen_named,
            };
            self.store_private_seen(&targets, want, &mut touched)?;
        }
        let (changes, modified) =
            self.store_shared(targets, &change, unchanged_since, &mut touched)?;
        if let Some(sel) = self.sel.as_mut() {
            for (uid, rec) in &changes {
                if let Some(p) = sel.pos_of_uid(*uid) {
                    let m = &mut std::sync::Arc::make_mut(&mut sel.msgs)[p];
                    m.flags = super::seen::overlay(*uid, rec.flags, sel.private_seen.as_ref());
                    m.keywords = rec.keywords.clone();
                    m.modseq = rec.modseq;
                }
            }
        }
        touched.sort_unstable();
        touched.dedup();
        Ok((touched, modified))
    }

    /// Sets or clears this user's private \Seen (shared mailbox, `imap.shared_seen` off) on
    /// `targets` (view position, UID); the positions that changed go to `touched`.
    fn store_private_seen(
        &mut self,
        targets: &[(usize, u32)],
        want: bool,
        touched: &mut Vec<usize>,
    ) -> anyhow::Result<()> {
        let idx = self.ctx.shared.mailboxes.clone();
        let user = self.user().to_string();
        let Some(sel) = self.sel.as_mut() else {
            return Ok(());
        };
        let id = sel.id();
        let Some(set) = sel.private_seen.as_mut() else {
            return Ok(());
        };
        let mut changed_uids = Vec::new();
        for (pos, uid) in targets {
            let changed = if want {
                set.insert(*uid)
            } else {
                set.remove(uid)
            };
            if changed {
                let m = &mut std::sync::Arc::make_mut(&mut sel.msgs)[*pos];
                m.flags = super::seen::overlay(*uid, m.flags, Some(set));
                touched.push(*pos);
                changed_uids.push(*uid);
            }
        }
        let before = idx.private_seen_generation(id, &user);
        let after = idx.set_private_seen(id, &user, &changed_uids, want)?;
        // This session's set is current unless another session changed it meanwhile.
        if sel.private_gen == before && after <= before + 1 {
            sel.private_gen = after;
        }
        Ok(())
    }

    /// Changes the flags kept in the Maildir names and the index for `targets`, under the
    /// mailbox lock. Returns the changed records and the UIDs an UNCHANGEDSINCE condition
    /// kept from changing (RFC 7162 §3.1.3); changed or unchanged-but-matched positions go
    /// to `touched`.
    fn store_shared(
        &self,
        targets: Vec<(usize, u32)>,
        change: &FlagChange,
        unchanged_since: Option<u64>,
        touched: &mut Vec<usize>,
    ) -> anyhow::Result<(Changed, Vec<u32>)> {
        let Some(sel) = self.sel.as_ref() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let idx = &self.ctx.shared.mailboxes;
        let (mref, path) = (&sel.mbox, &sel.path);
        let mut changes = Vec::new();
        let mut modified = Vec::new();
        idx.with_locked_meta(mref.meta.id, &mref.owner, &mref.name, |meta| {
            for (pos, uid) in targets {
                let Some(mut rec) = idx.message(meta.id, uid)? else {
                    continue;
                };
                if unchanged_since.is_some_and(|u| rec.modseq > u) {
                    modified.push(uid);
                    continue;
                }
                let old_path = path.join(rec.relative_path());
                let (old_flags, old_kws) = (rec.flags, rec.keywords.clone());
                change.apply(&mut rec);
                if rec.flags == old_flags && rec.keywords == old_kws {
                    touched.push(pos);
                    continue;
                }
                if rec.flags != old_flags || rec.in_new {
                    rec.in_new = false;
                    let new_path = path.join(rec.relative_path());
                    match std::fs::rename(&old_path, &new_path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                changes.push((uid, rec));
                touched.push(pos);
            }
            if !changes.is_empty() {
                idx.update(&mref.owner, &mref.name, meta, &mut changes)?;
            }
            Ok(())
        })?;
        if !changes.is_empty() {
            idx.notify(mref.meta.id);
        }
        Ok((changes, modified))
    }

    pub(super) async fn store(
        &mut self,
        uid: bool,
        set: SeqSet,
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
    ) -> Done {
        self.refresh(uid).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if sel.read_only {
            return Done::no_with(Code::ReadOnly, "Mailbox is read-only");
        }
        if !uid && set.out_of_range(sel.msgs.len() as u32) {
            return Done::bad("Invalid message sequence number");
        }
        let r = &sel.mbox;
        if !(r.may('s') || r.may('w') || r.may('t')) {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        let positions = sel.resolve(&set, uid);
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
        let (touched, modified) = match self
            .apply_flags(&positions, mode, &flags, unchanged_since)
            .await
        {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(user = %self.user(), "imap store: {e:#}");
                return Done::no_with(Code::ServerBug, "Cannot change flags");
            }
        };
        if mode != StoreMode::Remove
            && let Some(class) = super::training::class_of_keywords(&flags)
        {
            self.train_touched(class, &touched);
        }
        self.announce_new_keywords(Some(&touched));
        let condstore = self.condstore;
        let mut lines = Vec::new();
        if let Some(sel) = self.sel.as_ref() {
            for p in &touched {
                let m = &sel.msgs[*p];
                // RFC 7162 §3.1.4: with CONDSTORE, even .SILENT reports the new MODSEQ.
                if silent && !(condstore && unchanged_since.is_some()) {
                    continue;
                }
                let mut l = format!("* {} FETCH (", p + 1);
                if uid {
                    l.push_str(&format!("UID {} ", m.uid));
                }
                if !silent {
                    l.push_str(&format!(
                        "FLAGS {}",
                        m.flag_list(!self.rev2 && sel.is_recent(m.uid))
                    ));
                }
                if condstore {
                    if !l.ends_with('(') {
                        l.push(' ');
                    }
                    l.push_str(&format!("MODSEQ ({})", m.modseq));
                }
                l.push(')');
                lines.push(l);
            }
        }
        for l in lines {
            self.line(&l);
        }
        self.trash_deleted(&touched, mode, &flags).await;
        if !modified.is_empty() {
            let set = if uid {
                super::view::compress(&modified)
            } else {
                let sel = self.sel.as_ref();
                let mut seqs: Vec<u32> = modified
                    .iter()
                    .filter_map(|u| sel.and_then(|s| s.pos_of_uid(*u)).map(|p| p as u32 + 1))
                    .collect();
                seqs.sort_unstable();
                super::view::compress(&seqs)
            };
            return Done::ok_with(Code::Modified(set), "Conditional STORE failed");
        }
        Done::ok(if uid {
            "UID STORE completed"
        } else {
            "STORE completed"
        })
    }

    /// `$Junk`/`$NotJunk` set on `touched`: their files go to the Bayes trainer.
    fn train_touched(&self, class: postcore_scanner::bayes::Class, touched: &[usize]) {
        let Some(sel) = self.sel.as_ref() else {
            return;
        };
        let files: Vec<std::path::PathBuf> = self
            .records(touched)
            .values()
            .map(|r| sel.path.join(r.relative_path()))
            .collect();
        self.train(class, &files);
    }

    /// "Move deleted email to trash": messages that just got \Deleted move to Trash.
    async fn trash_deleted(&mut self, touched: &[usize], mode: StoreMode, flags: &[String]) {
        let adds_deleted =
            mode != StoreMode::Remove && flags.iter().any(|f| f.eq_ignore_ascii_case("\\Deleted"));
        if !adds_deleted || !self.imap_setting(|s| s.move_deleted_to_trash) {
            return;
        }
        let Some(sel) = self.sel.as_ref() else {
            return;
        };
        if sel.mbox.meta.special_use.as_deref() == Some("\\Trash")
            || sel.mbox.is_shared(self.user())
        {
            return;
        }
        let uids: Vec<u32> = touched
            .iter()
            .map(|p| &sel.msgs[*p])
            .filter(|m| m.flags & flag::DELETED != 0)
            .map(|m| m.uid)
            .collect();
        if uids.is_empty() {
            return;
        }
        let set = SeqSet(
            uids.iter()
                .map(|u| {
                    (
                        postcore_protocol::imap::SeqNum::Value(*u),
                        postcore_protocol::imap::SeqNum::Value(*u),
                    )
                })
                .collect(),
        );
        // Trash copies keep \Deleted off, so the messages are not lost at the next EXPUNGE.
        let done = self.copy_inner(true, set, "Trash", true, true).await;
        if let Done::No(t) = done {
            tracing::warn!(user = %self.user(), "move deleted to trash: {t}");
        }
    }
}

/// Records a STORE changed, by UID.
type Changed = Vec<(u32, MessageRecord)>;

/// A STORE's change to one message's flags, limited to what the user's rights allow.
struct FlagChange {
    mode: StoreMode,
    /// System flags named.
    bits: u8,
    /// Keywords named.
    keywords: Vec<String>,
    /// System flags the user may change.
    allowed: u8,
    /// The user may change keywords (`w`).
    keywords_ok: bool,
}

impl FlagChange {
    fn new(
        names: &[String],
        mode: StoreMode,
        mbox: &super::folders::MailboxRef,
        private: bool,
    ) -> FlagChange {
        let mut bits = 0u8;
        let mut keywords: Vec<String> = Vec::new();
        for n in names {
            match flag::bit(n) {
                Some(b) => bits |= b,
                None if n.starts_with('\\') => {}
                None => {
                    if !keywords.iter().any(|k| k.eq_ignore_ascii_case(n)) {
                        keywords.push(n.clone());
                    }
                }
            }
        }
        // RFC 4314 §4: \Seen needs `s`, \Deleted needs `t`, other flags need `w`.
        let mut allowed = (if mbox.may('s') { flag::SEEN } else { 0 })
            | (if mbox.may('t') { flag::DELETED } else { 0 })
            | (if mbox.may('w') {
                !(flag::SEEN | flag::DELETED)
            } else {
                0
            });
        // \Seen kept per user: handled in the private set, never in the shared files.
        if private {
            allowed &= !flag::SEEN;
        }
        FlagChange {
            mode,
            bits,
            keywords,
            allowed,
            keywords_ok: mbox.may('w'),
        }
    }

    /// Applies the change to a record (RFC 9051 §6.4.6: FLAGS replaces, +FLAGS adds,
    /// -FLAGS removes).
    fn apply(&self, rec: &mut MessageRecord) {
        let (bits, allowed) = (self.bits, self.allowed);
        match self.mode {
            StoreMode::Replace => {
                rec.flags = (rec.flags & !allowed) | (bits & allowed);
                if self.keywords_ok {
                    rec.keywords = self.keywords.clone();
                }
            }
            StoreMode::Add => {
                rec.flags |= bits & allowed;
                if self.keywords_ok {
                    for k in &self.keywords {
                        if !rec.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) {
                            rec.keywords.push(k.clone());
                        }
                    }
                }
            }
            StoreMode::Remove => {
                rec.flags &= !(bits & allowed);
                if self.keywords_ok {
                    rec.keywords
                        .retain(|x| !self.keywords.iter().any(|k| k.eq_ignore_ascii_case(x)));
                }
            }
        }
    }
}
