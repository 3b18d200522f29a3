//! Private \Seen: per-user read state on shared mailboxes (`imap.shared_seen` off), one key
//! per (mailbox, user, UID).

use super::*;

impl MailboxIndex {
    /// The UIDs `user` has seen in mailbox `id`, when \Seen is kept per user (shared
    /// mailboxes with "shared seen" off). A set written whole by an earlier version is
    /// converted to one key per UID on first read.
    pub fn private_seen(&self, id: u64, user: &str) -> Result<std::collections::HashSet<u32>> {
        let legacy = seen_user_prefix(id, user);
        if let Some(v) = self.store.get(CF_MAILBOX, &legacy)? {
            let uids: Vec<u32> = v
                .chunks_exact(4)
                .filter_map(|c| c.try_into().ok())
                .map(u32::from_be_bytes)
                .collect();
            let mut ops = vec![Op::Delete(CF_MAILBOX, legacy)];
            ops.extend(
                uids.iter()
                    .map(|u| Op::Put(CF_MAILBOX, seen_key(id, user, *u), vec![])),
            );
            self.store.write_relaxed(ops)?;
        }
        let prefix = seen_key_prefix(id, user);
        let mut out = std::collections::HashSet::new();
        self.store.for_each_prefix(CF_MAILBOX, &prefix, |k, _| {
            if let Some(u) = k[prefix.len()..].try_into().ok().map(u32::from_be_bytes) {
                out.insert(u);
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// Records that `user` has seen (`seen` true) or not seen the messages `uids` of mailbox
    /// `id`, when \Seen is kept per user: one key per UID, so a change costs the UIDs it
    /// touches, not the size of the set.
    /// The user's other sessions on the mailbox are woken to report the change. Returns the
    /// set's generation after the change (see [`Self::private_seen_generation`]).
    pub fn set_private_seen(&self, id: u64, user: &str, uids: &[u32], seen: bool) -> Result<u64> {
        if uids.is_empty() {
            return Ok(self.private_seen_generation(id, user));
        }
        let ops = uids
            .iter()
            .map(|u| {
                let k = seen_key(id, user, *u);
                if seen {
                    Op::Put(CF_MAILBOX, k, vec![])
                } else {
                    Op::Delete(CF_MAILBOX, k)
                }
            })
            .collect();
        self.store.write_relaxed(ops)?;
        let generation = {
            let mut live = self.live();
            let g = live.seen_gen.entry((id, user.to_string())).or_default();
            *g += 1;
            *g
        };
        self.notify(id);
        Ok(generation)
    }

    /// How many times `user`'s private \Seen set of mailbox `id` has changed since start-up.
    pub fn private_seen_generation(&self, id: u64, user: &str) -> u64 {
        self.live()
            .seen_gen
            .get(&(id, user.to_string()))
            .copied()
            .unwrap_or(0)
    }
}
