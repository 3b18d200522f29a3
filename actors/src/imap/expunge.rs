//! EXPUNGE and UID EXPUNGE (RFC 9051 §6.4.3, RFC 4315), CLOSE and UNSELECT (RFC 3691), and
//! the "keep spam N days" expiry of Junk.

use super::folders::MailboxRef;
use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::SeqSet;
use postcore_storage::mailbox::flag;

impl Session {
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
        let qbox = Self::quota_box(&m.owner);
        let done = idx.with_locked_meta(m.meta.id, &m.owner, &m.name, |meta| {
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
            idx.expunge(&m.owner, &m.name, meta, &done)?;
            Ok(done)
        })?;
        idx.notify(m.meta.id);
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
