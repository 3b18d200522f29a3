//! COPY, MOVE (RFC 6851) and APPEND (RFC 9051 §6.3.12) with UIDPLUS responses (RFC 4315)
//! and quota refusal (RFC 9208 `[OVERQUOTA]`).
//!
//! New files are written and fsynced in `tmp/`, then renamed (APPEND) or hard-linked
//! (COPY) into `cur/` and added to the index while the target mailbox's lock is held, so a
//! concurrent folder scan can never index them twice; the directory is fsynced before the
//! tagged OK.

use super::folders::MailboxRef;
use super::{Done, Session};
use postcore_protocol::imap::{AppendMessage, SeqSet};
use postcore_protocol::imap::{Code, Status, StatusText};
use postcore_storage::mailbox::{MessageRecord, flag, info_letters};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A unique Maildir base name for a message created by IMAP.
fn unique_name(host: &str) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::random();
    let host: String = host
        .chars()
        .map(|c| if c == '/' || c == ':' { '_' } else { c })
        .collect();
    format!("{secs}.P{}Q{n}R{r:08x}.{host}", std::process::id())
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(std::io::Error::other)?
}

impl Session {
    pub(super) async fn copy(&mut self, uid: bool, set: SeqSet, target: &str, mv: bool) -> Done {
        self.copy_inner(uid, set, target, mv, false).await
    }

    /// COPY/MOVE; `clear_deleted` drops \Deleted on the copies (move-to-trash).
    pub(super) async fn copy_inner(
        &mut self,
        uid: bool,
        set: SeqSet,
        target: &str,
        mv: bool,
        clear_deleted: bool,
    ) -> Done {
        if !clear_deleted {
            self.refresh(uid).await;
        }
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        if !uid && set.out_of_range(sel.msgs.len() as u32) {
            return Done::bad("Invalid message sequence number");
        }
        let Some(dst) = self.resolve(target) else {
            return Done::no_with(Code::TryCreate, "Mailbox does not exist");
        };
        if !dst.may('i') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        if mv && (sel.read_only || !sel.mbox.may('t') || !sel.mbox.may('e')) {
            return Done::no_with(Code::ReadOnly, "Mailbox is read-only");
        }
        let positions: Vec<usize> = sel
            .resolve(&set, uid)
            .into_iter()
            .filter(|p| !sel.msgs[*p].gone)
            .collect();
        if positions.is_empty() {
            return Done::ok(if mv {
                "MOVE completed"
            } else {
                "COPY completed"
            });
        }
        let src_path = sel.path.clone();
        let records = self.records(&positions);
        let mut items: Vec<(u32, MessageRecord)> = positions
            .iter()
            .filter_map(|p| {
                let u = sel.msgs[*p].uid;
                records.get(&u).map(|r| (u, r.clone()))
            })
            .collect();
        items.sort_by_key(|(u, _)| *u);
        let total: u64 = items.iter().map(|(_, r)| r.size).sum();
        let qbox = Self::quota_box(&dst.owner);
        let quota = self.ctx.shared.directory.snapshot().quota_bytes(&qbox);
        if !(mv && dst.owner == sel.mbox.owner)
            && self.ctx.shared.usage.would_exceed(&qbox, total, quota)
        {
            return Done::no_with(Code::OverQuota, "Quota exceeded");
        }
        let (uidvalidity, pairs) =
            match self.copy_files(&dst, &src_path, &items, clear_deleted, &qbox) {
                Ok(x) => x,
                Err(done) => return done,
            };
        // Into Junk or out of it: the Bayes filter learns (the source files still exist; a
        // MOVE expunges them below).
        if let Some(class) = self
            .sel
            .as_ref()
            .and_then(|s| super::training::class_of_copy(&s.mbox, &dst, mv))
        {
            let files: Vec<PathBuf> = items
                .iter()
                .map(|(_, r)| src_path.join(r.relative_path()))
                .collect();
            self.train(class, &files);
        }
        let idx = self.ctx.shared.mailboxes.clone();
        let cur = dst.path.join("cur");
        if let Err(e) = blocking(move || fsync_dir(&cur)).await {
            tracing::warn!("imap copy fsync: {e}");
            return Done::no_with(Code::ServerBug, "Copy not durable");
        }
        idx.notify(dst.meta.id);
        let src: Vec<u32> = pairs.iter().map(|p| p.0).collect();
        let dstu: Vec<u32> = pairs.iter().map(|p| p.1).collect();
        let code = (!pairs.is_empty()).then(|| Code::CopyUid {
            uidvalidity,
            from: super::view::compress(&src),
            to: super::view::compress(&dstu),
        });
        if mv {
            let Some(sel) = self.sel.as_ref() else {
                return Done::bad("No mailbox selected");
            };
            let moved: Vec<usize> = src.iter().filter_map(|u| sel.pos_of_uid(*u)).collect();
            if let Err(e) = self.expunge_positions(&moved) {
                tracing::warn!("imap move expunge: {e:#}");
                return Done::no_with(Code::ServerBug, "Move incomplete");
            }
            // RFC 6851 §4.3: COPYUID in an untagged OK before the expunges.
            if let (Some(c), false) = (&code, clear_deleted) {
                self.respond("*", Status::Ok, &StatusText::with(c.clone(), "Moved"));
            }
            if !clear_deleted {
                self.refresh(true).await;
            }
            return Done::ok("MOVE completed");
        }
        Done::Ok(StatusText {
            code,
            text: "COPY completed".into(),
        })
    }

    /// Links (or copies) the messages of `items` into `dst` under the target's lock and
    /// indexes them (their text too); returns the target's UIDVALIDITY and the
    /// (source, destination) UID pairs for COPYUID (RFC 4315).
    fn copy_files(
        &self,
        dst: &MailboxRef,
        src_path: &std::path::Path,
        items: &[(u32, MessageRecord)],
        clear_deleted: bool,
        qbox: &postcore_storage::directory::Mailbox,
    ) -> Result<(u32, Vec<(u32, u32)>), Done> {
        let host = &self.ctx.shared.config.hostname;
        let idx = &self.ctx.shared.mailboxes;
        let mut pairs = Vec::new();
        let lock = idx.lock(dst.meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(Some(mut meta)) = idx.get(&dst.owner, &dst.name) else {
            return Err(Done::no_with(Code::TryCreate, "Mailbox does not exist"));
        };
        for (u, rec) in items {
            let from = src_path.join(rec.relative_path());
            let mut flags = rec.flags;
            if clear_deleted {
                flags &= !flag::DELETED;
            }
            // RFC 4314: flags the user may not set on the target are dropped.
            if !dst.may('s') {
                flags &= !flag::SEEN;
            }
            let name = unique_name(host);
            let new = MessageRecord {
                name: name.clone(),
                flags,
                keywords: rec.keywords.clone(),
                size: rec.size,
                internal_date: rec.internal_date,
                modseq: 0,
                in_new: false,
                saved: None,
            };
            let to = dst.path.join(new.relative_path());
            if std::fs::create_dir_all(dst.path.join("cur")).is_err() {
                return Err(Done::no_with(
                    Code::ServerBug,
                    "Target mailbox not writable",
                ));
            }
            let linked =
                std::fs::hard_link(&from, &to).or_else(|_| std::fs::copy(&from, &to).map(|_| ()));
            if let Err(e) = linked {
                if e.kind() == std::io::ErrorKind::NotFound {
                    continue;
                }
                tracing::warn!(user = %self.user(), "imap copy {}: {e}", from.display());
                return Err(Done::no_with(Code::ServerBug, "Copy failed"));
            }
            // The full text goes into the target's full-text index.
            let data = match super::fetch::open_body(&to) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!("imap copy read {}: {e}", to.display());
                    return Err(Done::no_with(Code::ServerBug, "Copy failed"));
                }
            };
            match idx.add(
                &dst.owner,
                &dst.name,
                &mut meta,
                new,
                data.bytes(),
                &dst.path,
            ) {
                Ok(nu) => pairs.push((*u, nu)),
                Err(e) => {
                    tracing::warn!("imap copy index: {e:#}");
                    return Err(Done::no_with(Code::ServerBug, "Copy failed"));
                }
            }
            self.ctx.shared.usage.add(qbox, rec.size);
        }
        Ok((meta.uidvalidity, pairs))
    }

    /// APPEND of one message or several (MULTIAPPEND, RFC 3502): all of them are stored,
    /// or none (§6.3.11), under consecutive UIDs in the order given.
    pub(super) async fn append(&mut self, target: &str, mut messages: Vec<AppendMessage>) -> Done {
        let Some(dst) = self.resolve(target) else {
            return Done::no_with(Code::TryCreate, "Mailbox does not exist");
        };
        if !dst.may('i') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        // CATENATE (RFC 4469): messages made of parts, before anything is stored.
        let max = self
            .ctx
            .shared
            .directory
            .snapshot()
            .settings
            .max_message_size as usize;
        for m in &mut messages {
            if !m.catenate.is_empty() {
                match self.catenate(&m.catenate, max) {
                    Ok(data) => m.data = data,
                    Err(done) => return done,
                }
            }
        }
        if messages.iter().any(|m| m.data.is_empty()) {
            return Done::no("Empty message");
        }
        let qbox = Self::quota_box(&dst.owner);
        let quota = self.ctx.shared.directory.snapshot().quota_bytes(&qbox);
        let size: u64 = messages.iter().map(|m| m.data.len() as u64).sum();
        if self.ctx.shared.usage.would_exceed(&qbox, size, quota) {
            return Done::no_with(Code::OverQuota, "Quota exceeded");
        }
        let mut staged = Vec::with_capacity(messages.len());
        for m in messages {
            match self.stage(&dst, m).await {
                Ok(s) => staged.push(s),
                Err(e) => {
                    tracing::warn!(user = %self.user(), "imap append write: {e}");
                    for s in &staged {
                        let _ = std::fs::remove_file(&s.tmp);
                    }
                    return Done::no_with(Code::ServerBug, "Cannot store message");
                }
            }
        }
        let (uidvalidity, uids) = match self.commit_staged(&dst, staged) {
            Ok(r) => r,
            Err(done) => return done,
        };
        self.ctx.shared.usage.add(&qbox, size);
        let cur = dst.path.join("cur");
        if let Err(e) = blocking(move || fsync_dir(&cur)).await {
            tracing::warn!("imap append fsync: {e}");
            return Done::no_with(Code::ServerBug, "Message not durable");
        }
        self.ctx.shared.mailboxes.notify(dst.meta.id);
        if self.sel.as_ref().is_some_and(|s| s.id() == dst.meta.id) {
            self.refresh(true).await;
        }
        Done::ok_with(
            Code::AppendUid {
                uidvalidity,
                uids: super::view::compress(&uids),
            },
            "APPEND completed",
        )
    }

    /// Writes one message to the target's `tmp/` (internal date as its mtime) and fsyncs it.
    async fn stage(&self, dst: &MailboxRef, m: AppendMessage) -> std::io::Result<Staged> {
        let mut flags = 0u8;
        let mut keywords = Vec::new();
        for f in &m.flags {
            match flag::bit(f) {
                Some(b) => flags |= b,
                None if f.starts_with('\\') => {}
                None => keywords.push(f.clone()),
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let date = m.date.unwrap_or(now);
        let name = unique_name(&self.ctx.shared.config.hostname);
        let tmp: PathBuf = dst.path.join("tmp").join(&name);
        let data = std::sync::Arc::new(m.data);
        let (tmp2, data2) = (tmp.clone(), data.clone());
        let written = blocking(move || {
            use std::io::Write;
            if let Some(d) = tmp2.parent() {
                std::fs::create_dir_all(d)?;
            }
            let mut f = std::fs::File::create(&tmp2)?;
            f.write_all(&data2)?;
            if date > 0 {
                let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(date as u64);
                let _ = f.set_modified(t);
            }
            f.sync_all()
        })
        .await;
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let rec = MessageRecord {
            name,
            flags,
            keywords,
            size: data.len() as u64,
            internal_date: date,
            modseq: 0,
            in_new: false,
            saved: None,
        };
        Ok(Staged { tmp, rec, data })
    }

    /// Moves the staged messages into `cur/` and indexes them, with the mailbox lock held;
    /// if one fails, those already in are taken out again and the files removed.
    fn commit_staged(
        &self,
        dst: &MailboxRef,
        staged: Vec<Staged>,
    ) -> Result<(u32, Vec<u32>), Done> {
        let idx = self.ctx.shared.mailboxes.clone();
        let lock = idx.lock(dst.meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(Some(mut meta)) = idx.get(&dst.owner, &dst.name) else {
            for s in &staged {
                let _ = std::fs::remove_file(&s.tmp);
            }
            return Err(Done::no_with(Code::TryCreate, "Mailbox does not exist"));
        };
        let _ = std::fs::create_dir_all(dst.path.join("cur"));
        let mut done: Vec<(u32, PathBuf)> = Vec::with_capacity(staged.len());
        let mut failed = None;
        let mut rest = staged.into_iter();
        for s in rest.by_ref() {
            let target = dst.path.join(format!(
                "cur/{}:2,{}",
                s.rec.name,
                info_letters(s.rec.flags)
            ));
            if let Err(e) = std::fs::rename(&s.tmp, &target) {
                let _ = std::fs::remove_file(&s.tmp);
                failed = Some(format!("rename: {e}"));
                break;
            }
            match idx.add(&dst.owner, &dst.name, &mut meta, s.rec, &s.data, &dst.path) {
                Ok(u) => done.push((u, target)),
                Err(e) => {
                    let _ = std::fs::remove_file(&target);
                    failed = Some(format!("index: {e:#}"));
                    break;
                }
            }
        }
        let Some(why) = failed else {
            return Ok((meta.uidvalidity, done.into_iter().map(|(u, _)| u).collect()));
        };
        // RFC 3502 §6.3.11: none of them, then.
        tracing::warn!(user = %self.user(), "imap append: {why}; {} message(s) taken back", done.len());
        for s in rest {
            let _ = std::fs::remove_file(&s.tmp);
        }
        for (_, path) in &done {
            let _ = std::fs::remove_file(path);
        }
        let uids: Vec<u32> = done.iter().map(|(u, _)| *u).collect();
        if let Err(e) = idx.expunge(&dst.owner, &dst.name, &mut meta, &uids) {
            tracing::warn!("imap append undo: {e:#}");
        }
        Err(Done::no_with(Code::ServerBug, "Cannot store message"))
    }
}

/// A message written to `tmp/` and fsynced, waiting to be moved into `cur/`.
struct Staged {
    tmp: PathBuf,
    rec: MessageRecord,
    data: std::sync::Arc<Vec<u8>>,
}
