//! ACL (RFC 4314): GETACL, MYRIGHTS, LISTRIGHTS, SETACL, DELETEACL on a user's own mailboxes.

use super::folders::*;
use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::encode;

impl Session {
    pub(super) fn get_acl(&mut self, name: &str) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('a') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        let mut l = b"* ACL ".to_vec();
        encode::mailbox(&mut l, &m.display);
        if !m.owner.starts_with('#') {
            l.push(b' ');
            encode::string(&mut l, m.owner.as_bytes());
            l.extend_from_slice(format!(" {ALL_RIGHTS}").as_bytes());
        }
        for (who, r) in &m.meta.acl {
            l.push(b' ');
            encode::string(&mut l, who.as_bytes());
            l.push(b' ');
            encode::string(&mut l, r.as_bytes());
        }
        l.extend_from_slice(b"\r\n");
        self.conn.out.extend_from_slice(&l);
        Done::ok("GETACL completed")
    }

    pub(super) fn my_rights(&mut self, name: &str) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        let mut l = b"* MYRIGHTS ".to_vec();
        encode::mailbox(&mut l, &m.display);
        l.push(b' ');
        encode::string(&mut l, m.rights.as_bytes());
        l.extend_from_slice(b"\r\n");
        self.conn.out.extend_from_slice(&l);
        Done::ok("MYRIGHTS completed")
    }

    pub(super) fn list_rights(&mut self, name: &str, who: &str) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('a') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        let mut l = b"* LISTRIGHTS ".to_vec();
        encode::mailbox(&mut l, &m.display);
        l.push(b' ');
        encode::string(&mut l, who.as_bytes());
        let required = if who == m.owner { ALL_RIGHTS } else { "" };
        l.push(b' ');
        encode::string(&mut l, required.as_bytes());
        l.extend_from_slice(b" l r s w i p k x t e a\r\n");
        self.conn.out.extend_from_slice(&l);
        Done::ok("LISTRIGHTS completed")
    }

    /// SETACL (rights `Some`) and DELETEACL (`None`), RFC 4314 §3.1–3.2.
    pub(super) fn set_acl(&mut self, name: &str, who: &str, rights: Option<&str>) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('a') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        let who = who.to_lowercase();
        if who == m.owner {
            return Done::no_with(Code::Cannot, "The owner always has every right");
        }
        if who != "anyone"
            && !self
                .ctx
                .shared
                .directory
                .snapshot()
                .users
                .contains_key(&who)
        {
            return Done::no_with(Code::NonExistent, "No such user");
        }
        let idx = self.ctx.shared.mailboxes.clone();
        let lock = idx.lock(m.meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let Ok(Some(mut meta)) = idx.get(&m.owner, &m.name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        match rights {
            None => {
                meta.acl.remove(&who);
            }
            Some(r) => {
                let (mode, letters) = match r.as_bytes().first() {
                    Some(b'+') => (1, &r[1..]),
                    Some(b'-') => (-1, &r[1..]),
                    _ => (0, r),
                };
                if let Some(bad) = letters.chars().find(|c| !"lrswipkxteacd".contains(*c)) {
                    return Done::bad(format!("Unknown right '{bad}'"));
                }
                // Obsolete c/d map to k/x and t/e (RFC 4314 §2.1.1).
                let letters: String = letters
                    .chars()
                    .flat_map(|c| match c {
                        'c' => vec!['k', 'x'],
                        'd' => vec!['t', 'e'],
                        c => vec![c],
                    })
                    .collect();
                let cur = meta.acl.get(&who).cloned().unwrap_or_default();
                let new: String = match mode {
                    1 => cur + &letters,
                    -1 => cur.chars().filter(|c| !letters.contains(*c)).collect(),
                    _ => letters,
                };
                let mut v: Vec<char> = new.chars().collect();
                v.sort_unstable_by_key(|c| ALL_RIGHTS.find(*c));
                v.dedup();
                let new: String = v.into_iter().collect();
                if new.is_empty() {
                    meta.acl.remove(&who);
                } else {
                    meta.acl.insert(who.clone(), new);
                }
            }
        }
        if idx.put_meta(&m.owner, &m.name, &meta).is_err() {
            return Done::no_with(Code::ServerBug, "Cannot save ACL");
        }
        tracing::info!(user = %self.user(), mailbox = %m.display, identifier = %who, rights = rights.unwrap_or("(deleted)"), "imap acl change");
        Done::ok(if rights.is_some() {
            "SETACL completed"
        } else {
            "DELETEACL completed"
        })
    }
}
