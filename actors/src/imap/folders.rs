//! Mailbox management: LIST with LIST-EXTENDED / LIST-STATUS / SPECIAL-USE (RFC 5258, 5819,
//! 6154), NAMESPACE, CREATE, DELETE, RENAME, SUBSCRIBE; the shared vocabulary of mailbox
//! names ([`MailboxRef`], separators, rights). Names are resolved in [`super::namespace`];
//! STATUS, QUOTA and ACL have their own files.
//!
//! Names: the personal namespace is the user's own mailboxes (`INBOX`, `Sent`, `a/b`);
//! `Shared/<user>/<mailbox>` are other users' mailboxes shared through ACL; and
//! `Public/<name>[/<sub>]` are the public mailboxes of the groups the user belongs to.

use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::ListOptions;
use postcore_protocol::imap::encode;
use postcore_storage::mailbox::{MailboxMeta, folder_path};
use std::path::PathBuf;

/// Hierarchy separator.
pub(super) const SEP: char = '/';
/// Prefix of other users' shared mailboxes.
pub(super) const SHARED: &str = "Shared/";
/// Prefix of public mailboxes.
pub(super) const PUBLIC: &str = "Public/";
/// Every right (RFC 4314 §2.1).
pub(super) const ALL_RIGHTS: &str = "lrswipkxtea";

/// A mailbox as seen by the session: who owns it, its name there, its folder and meta.
#[derive(Debug, Clone)]
pub(super) struct MailboxRef {
    /// Index owner: a login, or `#public/<name>`.
    pub owner: String,
    /// Name in the owner's tree.
    pub name: String,
    /// The name the client uses.
    pub display: String,
    /// Maildir folder.
    pub path: PathBuf,
    /// Index meta.
    pub meta: MailboxMeta,
    /// The session user's rights.
    pub rights: String,
}

impl MailboxRef {
    /// True if the user holds right `r`.
    pub fn may(&self, r: char) -> bool {
        self.rights.contains(r)
    }

    /// True for mailboxes of others (shared or public).
    pub fn is_shared(&self, user: &str) -> bool {
        self.owner != user
    }
}

/// Matches a LIST pattern (`*` anything, `%` anything but the separator).
pub(super) fn pattern_match(pat: &[u8], name: &[u8]) -> bool {
    match pat.first() {
        None => name.is_empty(),
        Some(b'*') => (0..=name.len()).any(|i| pattern_match(&pat[1..], &name[i..])),
        Some(b'%') => {
            for i in 0..=name.len() {
                if pattern_match(&pat[1..], &name[i..]) {
                    return true;
                }
                if i < name.len() && name[i] == SEP as u8 {
                    return false;
                }
            }
            false
        }
        Some(c) => name.first() == Some(c) && pattern_match(&pat[1..], &name[1..]),
    }
}

/// A name a user may give a new mailbox: no control characters, wildcards or empty,
/// blank, `.` or `..` levels; for clients that speak modified UTF-7 (RFC 3501 §5.1.3, no
/// `UTF8=ACCEPT`), every `&` starts a well-formed shift sequence.
pub(super) fn valid_new_name(name: &str, utf8: bool) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(SEP)
        && !name.ends_with(SEP)
        && !name.contains("//")
        && !name.contains(['*', '%'])
        && !name.chars().any(char::is_control)
        && name
            .split(SEP)
            .all(|p| p != "." && p != ".." && !p.trim().is_empty())
        && (utf8 || valid_modified_utf7(name))
        && !name.starts_with(SHARED)
        && !name.starts_with(PUBLIC)
}

/// RFC 3501 §5.1.3: `&-` is `&`; otherwise `&` opens modified BASE64 (`A-Z a-z 0-9 + ,`)
/// that a `-` closes, holding whole UTF-16 code units (the leftover bits are zero-padding).
pub(super) fn valid_modified_utf7(name: &str) -> bool {
    let mut rest = name;
    while let Some(p) = rest.find('&') {
        let after = &rest[p + 1..];
        let Some(end) = after.find('-') else {
            return false;
        };
        let b64 = &after[..end];
        let chars_ok = b64
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b',');
        // 6 bits a character; what is left over after the last 16-bit unit is padding.
        let units_ok = b64.is_empty() || (b64.len() * 6 / 16 >= 1 && b64.len() * 6 % 16 < 6);
        if !chars_ok || !units_ok {
            return false;
        }
        rest = &after[end + 1..];
    }
    true
}

impl Session {
    pub(super) fn list(&mut self, reference: &str, patterns: &[String], o: &ListOptions) -> Done {
        let verb = if o.lsub { "LSUB" } else { "LIST" };
        if patterns.len() == 1 && patterns[0].is_empty() {
            // RFC 9051 §6.3.9: the hierarchy delimiter and root.
            self.line(&format!("* {verb} (\\Noselect) \"/\" \"\""));
            return Done::ok(format!("{verb} completed"));
        }
        let all = self.visible();
        let names: Vec<&str> = all.iter().map(|m| m.display.as_str()).collect();
        for m in &all {
            let matched = patterns.iter().any(|p| {
                let full = format!("{reference}{p}");
                let name = m.display.as_str();
                pattern_match(full.as_bytes(), name.as_bytes())
                    || (full.eq_ignore_ascii_case("INBOX") && name == "INBOX")
            });
            if !matched {
                continue;
            }
            if o.subscribed && !m.meta.subscribed {
                continue;
            }
            if o.special_use_only && m.meta.special_use.is_none() {
                continue;
            }
            let mut attrs: Vec<String> = Vec::new();
            let prefix = format!("{}{SEP}", m.display);
            let has_children = names.iter().any(|n| n.starts_with(&prefix));
            if !o.lsub {
                attrs.push(if has_children {
                    "\\HasChildren".into()
                } else {
                    "\\HasNoChildren".into()
                });
            }
            if (o.subscribed || o.return_subscribed) && m.meta.subscribed {
                attrs.push("\\Subscribed".into());
            }
            if let Some(su) = &m.meta.special_use
                && !o.lsub
            {
                attrs.push(su.clone());
            }
            if m.display == "INBOX" && !o.lsub {
                // not strictly needed; some clients like to see it
            }
            let mut l = format!("* {verb} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            encode::mailbox(&mut l, &m.display);
            self.conn.out.extend_from_slice(&l);
            self.conn.out.extend_from_slice(b"\r\n");
            // RFC 5819 §2: each STATUS right after its LIST line.
            if !o.status.is_empty() {
                self.status_lines(m, &o.status);
            }
        }
        Done::ok(format!("{verb} completed"))
    }

    pub(super) fn namespace(&mut self) -> Done {
        self.line(&format!(
            "* NAMESPACE ((\"\" \"/\")) ((\"{SHARED}\" \"/\")) ((\"{PUBLIC}\" \"/\"))"
        ));
        Done::ok("NAMESPACE completed")
    }

    pub(super) fn create(&mut self, name: &str, special_use: Vec<String>) -> Done {
        if name == "INBOX" {
            return Done::no_with(Code::AlreadyExists, "Mailbox already exists");
        }
        let display = name.trim_end_matches(SEP);
        // In another namespace (Shared/…, Public/…) the parent needs the `k` right.
        let Some((owner, name, root)) = self.locate(display) else {
            return Done::no_with(Code::NonExistent, "No such namespace owner");
        };
        let name = name.as_str();
        if owner != self.user() {
            let parent = match display.rsplit_once(SEP) {
                Some((p, _)) => p.to_string(),
                None => display.to_string(),
            };
            let may = self.resolve(&parent).is_some_and(|p| p.may('k'));
            if !may || name == "INBOX" {
                return Done::no_with(Code::NoPerm, "Permission denied");
            }
        } else if !valid_new_name(name, self.utf8 || self.rev2) {
            return Done::no_with(Code::Cannot, "Invalid mailbox name");
        }
        if name.is_empty()
            || name
                .split(SEP)
                .any(|p| p.is_empty() || p == "." || p == "..")
            || name.contains(['*', '%', '\r', '\n', '\0'])
        {
            return Done::no_with(Code::Cannot, "Invalid mailbox name");
        }
        const ALLOWED: [&str; 7] = [
            "\\All",
            "\\Archive",
            "\\Drafts",
            "\\Flagged",
            "\\Junk",
            "\\Sent",
            "\\Trash",
        ];
        if special_use.len() > 1 || special_use.iter().any(|s| !ALLOWED.contains(&s.as_str())) {
            return Done::no_with(Code::UseAttr, "Unsupported special-use attribute");
        }
        let user = owner;
        let idx = self.ctx.shared.mailboxes.clone();
        // Parents are created as real mailboxes so the hierarchy is always selectable.
        let parts: Vec<&str> = name.split(SEP).collect();
        let max = self.imap_setting(|s| s.max_mailboxes);
        if max > 0 {
            let have = idx.list(&user).map(|l| l.len()).unwrap_or(0);
            let new = (1..=parts.len())
                .filter(|i| {
                    idx.get(&user, &parts[..*i].join("/"))
                        .ok()
                        .flatten()
                        .is_none()
                })
                .count();
            if have + new > max {
                return Done::no_with(Code::Limit, format!("At most {max} mailboxes per user"));
            }
        }
        for i in 1..=parts.len() {
            let n = parts[..i].join("/");
            let exists = idx.get(&user, &n).ok().flatten().is_some();
            if exists {
                if i == parts.len() {
                    return Done::no_with(Code::AlreadyExists, "Mailbox already exists");
                }
                continue;
            }
            let su = (i == parts.len())
                .then(|| special_use.first().cloned())
                .flatten();
            if let Err(e) = idx.create(&user, &n, &folder_path(&root, &n), su) {
                tracing::warn!(user = %user, "imap CREATE {n}: {e:#}");
                return Done::no_with(Code::ServerBug, "Cannot create mailbox");
            }
        }
        Done::ok("CREATE completed")
    }

    pub(super) fn delete(&mut self, name: &str) -> Done {
        if name == "INBOX" {
            return Done::no_with(Code::Cannot, "INBOX cannot be deleted");
        }
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('x') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        if self.sel.as_ref().is_some_and(|s| s.id() == m.meta.id) {
            self.sel = None;
        }
        let prefix = format!("{}{SEP}", m.name);
        let has_children = self
            .ctx
            .shared
            .mailboxes
            .list(&m.owner)
            .unwrap_or_default()
            .iter()
            .any(|(n, _)| n.starts_with(&prefix));
        let idx = &self.ctx.shared.mailboxes;
        if let Err(e) = idx.delete(&m.owner, &m.name) {
            tracing::warn!("imap DELETE {name}: {e:#}");
            return Done::no_with(Code::ServerBug, "Cannot delete mailbox");
        }
        // The folder's messages go; subfolders (separate Maildir++ directories) stay.
        for sub in ["cur", "new", "tmp"] {
            let _ = std::fs::remove_dir_all(m.path.join(sub));
        }
        if !has_children {
            let _ = std::fs::remove_dir_all(&m.path);
        }
        self.refresh_usage(&m.owner);
        idx.notify(m.meta.id);
        Done::ok("DELETE completed")
    }

    pub(super) fn rename(&mut self, from: &str, to: &str) -> Done {
        let Some(src) = self.resolve(from) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        let to = to.trim_end_matches(SEP);
        if src.is_shared(self.user()) || to.starts_with(SHARED) || to.starts_with(PUBLIC) {
            return Done::no_with(Code::Cannot, "Only personal mailboxes can be renamed");
        }
        if !valid_new_name(to, self.utf8 || self.rev2) || to == "INBOX" {
            return Done::no_with(Code::Cannot, "Invalid mailbox name");
        }
        let user = self.user().to_string();
        let idx = self.ctx.shared.mailboxes.clone();
        if idx.get(&user, to).ok().flatten().is_some() {
            return Done::no_with(Code::AlreadyExists, "Mailbox already exists");
        }
        let root = self.user_root(&user);
        if from == "INBOX" {
            // RFC 9051 §6.3.6: renaming INBOX moves its messages to the new mailbox and
            // leaves INBOX empty.
            let target = folder_path(&root, to);
            if let Err(e) = idx.create(&user, to, &target, None) {
                tracing::warn!("imap RENAME INBOX: {e:#}");
                return Done::no_with(Code::ServerBug, "Cannot rename");
            }
            for sub in ["new", "cur"] {
                if let Ok(rd) = std::fs::read_dir(src.path.join(sub)) {
                    for e in rd.flatten() {
                        let _ = std::fs::rename(e.path(), target.join(sub).join(e.file_name()));
                    }
                }
            }
            idx.notify(src.meta.id);
            return Done::ok("RENAME completed");
        }
        let prefix = format!("{from}{SEP}");
        let mut moves = vec![(from.to_string(), to.to_string())];
        for (n, _) in idx.list(&user).unwrap_or_default() {
            if let Some(rest) = n.strip_prefix(&prefix) {
                moves.push((n.clone(), format!("{to}{SEP}{rest}")));
            }
        }
        for (a, b) in &moves {
            let Ok(Some(meta)) = idx.get(&user, a) else {
                continue;
            };
            if let Err(e) = std::fs::rename(folder_path(&root, a), folder_path(&root, b))
                .map_err(anyhow::Error::from)
                .and_then(|_| idx.rename(&user, a, b, &meta))
            {
                tracing::warn!("imap RENAME {a} -> {b}: {e:#}");
                return Done::no_with(Code::ServerBug, "Cannot rename");
            }
            if let Some(s) = self.sel.as_mut()
                && s.id() == meta.id
            {
                s.name = b.clone();
                s.path = folder_path(&root, b);
            }
        }
        // Parents of the new name.
        let parts: Vec<&str> = to.split(SEP).collect();
        for i in 1..parts.len() {
            let n = parts[..i].join("/");
            if idx.get(&user, &n).ok().flatten().is_none() {
                let _ = idx.create(&user, &n, &folder_path(&root, &n), None);
            }
        }
        Done::ok("RENAME completed")
    }

    pub(super) fn subscribe(&mut self, name: &str, on: bool) -> Done {
        let Some(mut m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        m.meta.subscribed = on;
        let idx = &self.ctx.shared.mailboxes;
        let lock = idx.lock(m.meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let cur = idx.get(&m.owner, &m.name).ok().flatten();
        if let Some(mut cur) = cur {
            cur.subscribed = on;
            if idx.put_meta(&m.owner, &m.name, &cur).is_err() {
                return Done::no_with(Code::ServerBug, "Cannot save subscription");
            }
        }
        Done::ok(if on {
            "SUBSCRIBE completed"
        } else {
            "UNSUBSCRIBE completed"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::pattern_match;

    #[test]
    fn new_mailbox_names() {
        use super::{valid_modified_utf7, valid_new_name};
        assert!(valid_new_name("Projects/2026", false));
        assert!(valid_new_name("caf&AOk-", false), "modified UTF-7 for café");
        assert!(valid_new_name("a &- b", false), "&- is a literal &");
        assert!(!valid_new_name("a\tb", true), "control characters");
        assert!(!valid_new_name("   ", true), "blank");
        assert!(!valid_new_name("a/  /b", true), "blank level");
        assert!(!valid_new_name("&Jjo", false), "unterminated shift");
        assert!(
            valid_new_name("&Jjo", true),
            "UTF-8 clients send & as itself"
        );
        assert!(valid_modified_utf7("&Jjo-"));
        assert!(!valid_modified_utf7("&J-"), "6 bits are not a UTF-16 unit");
        assert!(!valid_modified_utf7("&Jjo!-"), "not modified BASE64");
        assert!(
            !valid_modified_utf7("&Jjoa-"),
            "24 bits leave 8, not padding"
        );
    }

    #[test]
    fn list_patterns() {
        assert!(pattern_match(b"*", b"a/b/c"));
        assert!(pattern_match(b"%", b"Sent"));
        assert!(!pattern_match(b"%", b"a/b"));
        assert!(pattern_match(b"a/%", b"a/b"));
        assert!(pattern_match(b"S*t", b"Sent"));
        assert!(!pattern_match(b"S*x", b"Sent"));
    }
}
