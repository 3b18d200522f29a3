//! The full-text index: posting lists per (mailbox, word), looked up by SEARCH BODY/TEXT and
//! pruned of expunged UIDs in a background pass.

use super::*;

impl MailboxIndex {
    /// UIDs of mailbox `id` whose text has a word starting with `word` (lower case).
    pub fn fts_lookup(&self, id: u64, word: &str) -> Result<std::collections::HashSet<u32>> {
        let mut out = std::collections::HashSet::new();
        for (_, v) in self.store.scan_prefix(CF_FTS, &fts_key(id, word))? {
            out.extend(
                v.chunks_exact(4)
                    .filter_map(|c| c.try_into().ok())
                    .map(u32::from_be_bytes),
            );
        }
        Ok(out)
    }

    /// The UIDs of messages with an indexed word that contains `piece` (lower case): the
    /// substring form of [`MailboxIndex::fts_lookup`], over the mailbox's whole vocabulary
    /// (RFC 9051 §6.4.4: BODY and TEXT match substrings, `sdfghjk` in `asdfghjkl`).
    pub fn fts_lookup_containing(
        &self,
        id: u64,
        piece: &str,
    ) -> Result<std::collections::HashSet<u32>> {
        let prefix = id.to_be_bytes();
        let finder = memchr::memmem::Finder::new(piece.as_bytes());
        let mut out = std::collections::HashSet::new();
        self.store.for_each_prefix(CF_FTS, &prefix, |k, v| {
            if finder.find(&k[prefix.len()..]).is_some() {
                out.extend(
                    v.chunks_exact(4)
                        .filter_map(|c| c.try_into().ok())
                        .map(u32::from_be_bytes),
                );
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Removes the UIDs of expunged messages from the full-text postings of mailbox `name`
    /// (and postings left empty), under the mailbox lock. Unless `force`, only when the
    /// expunged messages since the last prune are at least a quarter of the live ones.
    /// Returns how many UIDs were removed.
    pub fn prune_fts(&self, user: &str, name: &str, force: bool) -> Result<usize> {
        let Some(meta) = self.get(user, name)? else {
            return Ok(0);
        };
        let lock = self.lock(meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut meta) = self.get(user, name)? else {
            return Ok(0);
        };
        let mut live = Vec::new();
        self.store
            .for_each_prefix(CF_MAILBOX, &id_prefix(b'm', meta.id), |k, _| {
                if let Some(uid) = k.get(9..13).and_then(|b| b.try_into().ok()) {
                    live.push(u32::from_be_bytes(uid));
                }
                Ok(())
            })?;
        if !force && (meta.fts_dead as usize) * 4 < live.len() {
            // Not yet worth a pass: look again once a quarter of them are gone.
            let at = (live.len() / 4).min(u32::MAX as usize) as u32;
            self.live().fts_check.insert(meta.id, at.max(FTS_PRUNE_MIN));
            return Ok(0);
        }
        let mut removed = 0;
        let mut ops = Vec::new();
        self.store
            .for_each_prefix(CF_FTS, &meta.id.to_be_bytes(), |k, v| {
                let kept: Vec<u8> = v
                    .chunks_exact(4)
                    .filter(|c| {
                        <[u8; 4]>::try_from(*c)
                            .map(u32::from_be_bytes)
                            .is_ok_and(|u| live.binary_search(&u).is_ok())
                    })
                    .flatten()
                    .copied()
                    .collect();
                if kept.len() < v.len() {
                    removed += (v.len() - kept.len()) / 4;
                    ops.push(if kept.is_empty() {
                        Op::Delete(CF_FTS, k.to_vec())
                    } else {
                        Op::Put(CF_FTS, k.to_vec(), kept)
                    });
                }
                if ops.len() >= 1024 {
                    self.store.write_relaxed(std::mem::take(&mut ops))?;
                }
                Ok(())
            })?;
        meta.fts_dead = 0;
        ops.push(Op::Put(
            CF_MAILBOX,
            meta_key(user, name),
            serde_json::to_vec(&meta)?,
        ));
        self.store.write_relaxed(ops)?;
        self.live().fts_check.remove(&meta.id);
        tracing::info!(
            user,
            mailbox = name,
            removed,
            "full-text index pruned of expunged messages"
        );
        Ok(removed)
    }
}
