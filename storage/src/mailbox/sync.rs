//! Reconciling the index with the Maildir folder (files added, removed or renamed by anyone),
//! expunge, and the QRESYNC expunge log.

use super::*;

/// Sort key for Maildir names: the leading seconds numerically, then the rest.
pub(super) fn natural_key(name: &str) -> (u64, &str) {
    let (secs, rest) = name.split_once('.').unwrap_or(("", name));
    (secs.parse().unwrap_or(u64::MAX), rest)
}

impl MailboxIndex {
    /// Reconciles mailbox `name` with its Maildir folder `path` (see the module doc). Skips
    /// the directory scan when neither `new/` nor `cur/` changed since the last one. Call
    /// with the mailbox lock held.
    pub fn sync(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        path: &Path,
    ) -> Result<SyncReport> {
        if meta.fts_format != FTS_FORMAT {
            self.start_fts_rebuild(user, name, meta.id, path);
        }
        let stamp = (mtime(&path.join("new")), mtime(&path.join("cur")));
        if self.live().scanned.get(&meta.id) == Some(&stamp) && stamp.0.is_some() {
            return Ok(SyncReport::default());
        }
        let mut on_disk: HashMap<String, (bool, u8)> = HashMap::new();
        for (sub, in_new) in [("new", true), ("cur", false)] {
            let Ok(rd) = std::fs::read_dir(path.join(sub)) else {
                continue;
            };
            for e in rd.flatten() {
                let f = e.file_name();
                let f = f.to_string_lossy();
                if f.starts_with('.') {
                    continue;
                }
                let (base, flags) = split_name(&f);
                on_disk.insert(base.to_string(), (in_new, flags));
            }
        }
        let mut report = SyncReport::default();
        let mut gone = Vec::new();
        let mut changed = Vec::new();
        for (uid, mut rec) in self.messages(meta.id)? {
            match on_disk.remove(&rec.name) {
                None => gone.push(uid),
                Some((in_new, flags)) => {
                    if in_new != rec.in_new || (!in_new && flags != rec.flags) {
                        rec.in_new = in_new;
                        if !in_new {
                            rec.flags = flags;
                        }
                        changed.push((uid, rec));
                    }
                }
            }
        }
        report.expunged = gone.len();
        report.flag_changes = changed.len();
        self.expunge(user, name, meta, &gone)?;
        if !changed.is_empty() {
            self.update(user, name, meta, &mut changed)?;
        }
        // New files, in arrival order (Maildir names start with the delivery time).
        let mut fresh: Vec<(String, bool, u8)> =
            on_disk.into_iter().map(|(b, (n, f))| (b, n, f)).collect();
        fresh.sort_by(|a, b| natural_key(&a.0).cmp(&natural_key(&b.0)));
        for (base, in_new, flags) in fresh {
            let rec = MessageRecord {
                name: base,
                flags,
                keywords: Vec::new(),
                size: 0,
                internal_date: 0,
                modseq: 0,
                in_new,
                saved: None,
            };
            let file = path.join(rec.relative_path());
            let Ok((data, size, date)) = read_message(&file) else {
                continue;
            };
            let rec = MessageRecord {
                size,
                internal_date: date,
                ..rec
            };
            self.add(user, name, meta, rec, &data, path)?;
            report.added += 1;
        }
        // Re-read the stamps: our own renames above may have changed them.
        let stamp = (mtime(&path.join("new")), mtime(&path.join("cur")));
        self.live().scanned.insert(meta.id, stamp);
        Ok(report)
    }

    /// Removes records (after their files were removed); logs them for VANISHED.
    pub fn expunge(
        &self,
        user: &str,
        name: &str,
        meta: &mut MailboxMeta,
        uids: &[u32],
    ) -> Result<()> {
        if uids.is_empty() {
            return Ok(());
        }
        meta.highestmodseq += 1;
        let mut ops = Vec::with_capacity(uids.len() * 4 + 2);
        let mut log = Vec::with_capacity(uids.len() * 4);
        for uid in uids {
            if let Some(rec) = self.message(meta.id, *uid)? {
                ops.push(Op::Delete(CF_MAILBOX, name_key(meta.id, &rec.name)));
            }
            ops.push(Op::Delete(CF_MAILBOX, msg_key(b'm', meta.id, *uid)));
            ops.push(Op::Delete(CF_MAILBOX, msg_key(b'h', meta.id, *uid)));
            // Words not yet inverted need not be (a Delete of an absent key is cheap).
            ops.push(Op::Delete(CF_MAILBOX, msg_key(b'w', meta.id, *uid)));
            log.extend_from_slice(&uid.to_be_bytes());
        }
        // Postings of expunged UIDs are harmless (UIDs are never reused and searches only
        // consider messages that exist) and are pruned in batches: see `prune_fts`.
        meta.fts_dead = meta.fts_dead.saturating_add(uids.len() as u32);
        let mut xk = id_prefix(b'x', meta.id);
        xk.extend_from_slice(&meta.highestmodseq.to_be_bytes());
        ops.push(Op::Put(CF_MAILBOX, xk, log));
        ops.push(Op::Put(
            CF_MAILBOX,
            meta_key(user, name),
            serde_json::to_vec(meta)?,
        ));
        self.store.write_relaxed(ops)?;
        if meta.fts_dead >= FTS_PRUNE_MIN {
            let due = {
                let mut live = self.live();
                let at = live.fts_check.entry(meta.id).or_insert(FTS_PRUNE_MIN);
                let due = meta.fts_dead >= *at;
                if due {
                    *at = u32::MAX;
                }
                due
            };
            if due {
                // In the background: the caller holds the mailbox lock, which pruning takes.
                let (idx, user, name) = (self.clone(), user.to_string(), name.to_string());
                let _ = std::thread::Builder::new()
                    .name("fts-prune".into())
                    .spawn(move || {
                        if let Err(e) = idx.prune_fts(&user, &name, false) {
                            tracing::warn!(user, mailbox = name, "full-text prune: {e:#}");
                        }
                    });
            }
        }
        Ok(())
    }

    /// UIDs expunged in mailbox `id` after `modseq` (RFC 7162 VANISHED (EARLIER)).
    pub fn vanished_since(&self, id: u64, modseq: u64) -> Result<Vec<u32>> {
        let prefix = id_prefix(b'x', id);
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(CF_MAILBOX, &prefix)? {
            let Some(ms) = k.get(9..17).and_then(|b| b.try_into().ok()) else {
                continue;
            };
            if u64::from_be_bytes(ms) > modseq {
                out.extend(
                    v.chunks_exact(4)
                        .filter_map(|c| c.try_into().ok())
                        .map(u32::from_be_bytes),
                );
            }
        }
        out.sort_unstable();
        Ok(out)
    }
}
