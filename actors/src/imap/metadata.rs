//! METADATA (RFC 5464): GETMETADATA and SETMETADATA on mailboxes and on the server ("").
//! `/private/…` entries belong to the user, `/shared/…` ones to the mailbox (anyone who may
//! see it reads them; writing needs the `w` right, RFC 5464 §3.3). Server `/shared/…`
//! entries are read-only: `/shared/admin` names the postmaster (§3.2.1.1).

use super::{Done, Session};
use postcore_protocol::imap::{Code, encode};

/// The largest value stored (§4.3 `[METADATA MAXSIZE n]`; a literal in any command but
/// APPEND is limited to 64 KiB before this).
pub const MAX_VALUE: usize = 16 * 1024;
/// The most entries in one scope of one mailbox (§4.3 `[METADATA TOOMANY]`).
pub const MAX_ENTRIES: usize = 100;

impl Session {
    /// The mailbox id entries are kept under (0 for the server), if the user may `right` it.
    fn metadata_mailbox(&self, mailbox: &str, right: char) -> Result<u64, Done> {
        if mailbox.is_empty() {
            return Ok(0);
        }
        let Some(m) = self.resolve(mailbox) else {
            return Err(Done::no_with(Code::NonExistent, "No such mailbox"));
        };
        if !m.may('l') || !m.may(right) {
            return Err(Done::no_with(Code::NoPerm, "Permission denied"));
        }
        Ok(m.meta.id)
    }

    /// GETMETADATA (§4.2): each entry asked for (NIL when it has no value) and, with DEPTH,
    /// those below it — then the entry itself only "if it exists" (§4.2.2, as Dovecot
    /// answers); values over MAXSIZE are left out and the longest is reported.
    pub(super) fn get_metadata(
        &mut self,
        mailbox: &str,
        entries: &[String],
        max_size: Option<u64>,
        depth: u32,
    ) -> Done {
        let id = match self.metadata_mailbox(mailbox, 'l') {
            Ok(id) => id,
            Err(done) => return done,
        };
        let user = self.user().to_string();
        let mut found: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        let mut longest = 0usize;
        let mut keep =
            |name: String, value: Option<Vec<u8>>, found: &mut Vec<_>| match (&value, max_size) {
                (Some(v), Some(max)) if v.len() as u64 > max => longest = longest.max(v.len()),
                _ => found.push((name, value)),
            };
        for e in entries {
            let scope = match self.ctx.shared.mailboxes.metadata_scope(id, &user, e) {
                Ok(s) => s,
                Err(err) => {
                    tracing::warn!("imap getmetadata: {err:#}");
                    return Done::no_with(Code::ServerBug, "Cannot read metadata");
                }
            };
            let exact = scope
                .iter()
                .find(|(n, _)| n == e)
                .map(|(_, v)| v.clone())
                .or_else(|| self.computed_entry(id, e));
            if depth == 0 || exact.is_some() {
                keep(e.clone(), exact, &mut found);
            }
            if depth > 0 {
                let below = format!("{e}/");
                for (n, v) in scope {
                    if let Some(rest) = n.strip_prefix(&below)
                        && (depth == u32::MAX || !rest.contains('/'))
                    {
                        keep(n, Some(v), &mut found);
                    }
                }
            }
        }
        if !found.is_empty() {
            let mut l = b"* METADATA ".to_vec();
            encode::mailbox(&mut l, mailbox);
            l.extend_from_slice(b" (");
            for (i, (n, v)) in found.iter().enumerate() {
                if i > 0 {
                    l.push(b' ');
                }
                encode::string(&mut l, n.as_bytes());
                l.push(b' ');
                match v {
                    Some(v) if v.contains(&0) => encode::literal8(&mut l, v),
                    v => encode::nstring(&mut l, v.as_deref()),
                }
            }
            l.push(b')');
            self.conn.out.extend_from_slice(&l);
            self.conn.out.extend_from_slice(b"\r\n");
        }
        if longest > 0 {
            return Done::ok_with(
                Code::Metadata(format!("LONGENTRIES {longest}")),
                "GETMETADATA completed",
            );
        }
        Done::ok("GETMETADATA completed")
    }

    /// Server entries the server answers itself.
    fn computed_entry(&self, id: u64, entry: &str) -> Option<Vec<u8>> {
        (id == 0 && entry == "/shared/admin")
            .then(|| format!("mailto:postmaster@{}", self.ctx.shared.config.hostname).into_bytes())
    }

    /// SETMETADATA (§4.3): all entries are set (NIL removes) or none.
    pub(super) fn set_metadata(
        &mut self,
        mailbox: &str,
        entries: &[(String, Option<Vec<u8>>)],
    ) -> Done {
        let shared = entries.iter().any(|(e, _)| e.starts_with("/shared/"));
        if mailbox.is_empty() && shared {
            return Done::no_with(Code::NoPerm, "Server shared entries are read-only");
        }
        let id = match self.metadata_mailbox(mailbox, if shared { 'w' } else { 'l' }) {
            Ok(id) => id,
            Err(done) => return done,
        };
        if entries
            .iter()
            .any(|(_, v)| v.as_ref().is_some_and(|v| v.len() > MAX_VALUE))
        {
            return Done::no_with(
                Code::Metadata(format!("MAXSIZE {MAX_VALUE}")),
                "Value too long",
            );
        }
        let user = self.user().to_string();
        let idx = &self.ctx.shared.mailboxes;
        // The entries each scope would have afterwards.
        for scope in ["/private/", "/shared/"] {
            let Ok(now) = idx.metadata_scope(id, &user, scope) else {
                return Done::no_with(Code::ServerBug, "Cannot read metadata");
            };
            let mut names: std::collections::BTreeSet<String> =
                now.into_iter().map(|(n, _)| n).collect();
            for (e, v) in entries.iter().filter(|(e, _)| e.starts_with(scope)) {
                if v.is_some() {
                    names.insert(e.clone());
                } else {
                    names.remove(e);
                }
            }
            if names.len() > MAX_ENTRIES {
                return Done::no_with(
                    Code::Metadata("TOOMANY".into()),
                    "Too many metadata entries",
                );
            }
        }
        if let Err(e) = idx.metadata_set(id, &user, entries) {
            tracing::warn!("imap setmetadata: {e:#}");
            return Done::no_with(Code::ServerBug, "Cannot store metadata");
        }
        // RFC 5465 §5.6, §5.7: NOTIFY sessions of the owner (and this user) learn of it.
        let owner = if mailbox.is_empty() {
            user.clone()
        } else {
            self.resolve(mailbox)
                .map_or_else(|| user.clone(), |m| m.owner)
        };
        idx.touch_tree(&owner);
        if owner != user {
            idx.touch_tree(&user);
        }
        Done::ok("SETMETADATA completed")
    }
}
