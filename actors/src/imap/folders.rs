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
        let selecting_subscribed = o.subscribed || o.lsub;
        // A plain LIST does not need the subscriptions (one store scan less per LIST).
        let subs = if selecting_subscribed || o.return_subscribed {
            self.ctx
                .shared
                .mailboxes
                .subscriptions(self.user())
                .unwrap_or_default()
        } else {
            Default::default()
        };
        let names: Vec<&str> = all.iter().map(|m| m.display.as_str()).collect();
        let matches = |name: &str| {
            patterns.iter().any(|p| {
                let full = format!("{reference}{p}");
                pattern_match(full.as_bytes(), name.as_bytes())
                    || (full.eq_ignore_ascii_case("INBOX") && name == "INBOX")
            })
        };
        // RFC 5258 §3.5, RFC 3501 §6.3.9: a name with subscribed names below it.
        let has_subscribed_child = |name: &str| {
            let prefix = format!("{name}{SEP}");
            subs.iter().any(|s| s.starts_with(&prefix))
        };
        for m in &all {
            let name = m.display.as_str();
            if !matches(name) || (o.special_use_only && m.meta.special_use.is_none()) {
                continue;
            }
            let subscribed = subs.contains(name);
            // A mailbox not subscribed itself is listed for a SUBSCRIBED selection only as
            // the parent of subscribed ones: LSUB with `\Noselect` when `%` stops above them
            // (RFC 3501 §6.3.9), LIST with CHILDINFO under RECURSIVEMATCH (RFC 5258 §3.5).
            let childinfo = selecting_subscribed && !subscribed && has_subscribed_child(name);
            if selecting_subscribed && !subscribed && !childinfo {
                continue;
            }
            if childinfo && !o.lsub && !o.recursive_match {
                continue;
            }
            if childinfo && o.lsub && !patterns.iter().any(|p| p.ends_with('%')) {
                continue;
            }
            let mut attrs: Vec<String> = Vec::new();
            if o.lsub {
                if childinfo {
                    attrs.push("\\Noselect".into());
                }
            } else {
                let prefix = format!("{name}{SEP}");
                attrs.push(if names.iter().any(|n| n.starts_with(&prefix)) {
                    "\\HasChildren".into()
                } else {
                    "\\HasNoChildren".into()
                });
                if (o.subscribed || o.return_subscribed) && subscribed {
                    attrs.push("\\Subscribed".into());
                }
                if let Some(su) = &m.meta.special_use {
                    attrs.push(su.clone());
                }
            }
            self.list_line(verb, &attrs, name, childinfo && !o.lsub);
            // RFC 5819 §2: each STATUS right after its LIST line.
            if !o.status.is_empty() && !childinfo {
                self.status_lines(m, &o.status);
            }
        }
        if selecting_subscribed && !o.special_use_only {
            self.list_missing(verb, &names, &subs, o, &matches);
        }
        Done::ok(format!("{verb} completed"))
    }

    /// The subscribed names that match but are no mailbox (RFC 9051 §6.3.7: a subscription
    /// outlives its mailbox): `\NonExistent` in LIST (RFC 5258 §3), and for a SUBSCRIBED
    /// selection with RECURSIVEMATCH (or LSUB with `%`) their missing parents too.
    fn list_missing(
        &mut self,
        verb: &str,
        names: &[&str],
        subs: &std::collections::BTreeSet<String>,
        o: &ListOptions,
        matches: &dyn Fn(&str) -> bool,
    ) {
        let exists = |n: &str| names.contains(&n);
        let mut parents = std::collections::BTreeSet::new();
        for s in subs.iter().filter(|s| !exists(s)) {
            if matches(s) {
                let attrs: &[&str] = if o.lsub {
                    &[]
                } else {
                    &["\\Subscribed", "\\NonExistent"]
                };
                let attrs: Vec<String> = attrs.iter().map(|a| a.to_string()).collect();
                self.list_line(verb, &attrs, s, false);
            }
            let mut at = s.as_str();
            while let Some((p, _)) = at.rsplit_once(SEP) {
                if !exists(p) && !subs.contains(p) && matches(p) {
                    parents.insert(p.to_string());
                }
                at = p;
            }
        }
        for p in parents {
            if o.lsub {
                self.list_line(verb, &["\\Noselect".to_string()], &p, false);
            } else if o.recursive_match {
                self.list_line(verb, &["\\NonExistent".to_string()], &p, true);
            }
        }
    }

    /// One `* LIST`/`* LSUB` line, with `CHILDINFO ("SUBSCRIBED")` extended data when asked.
    fn list_line(&mut self, verb: &str, attrs: &[String], name: &str, childinfo: bool) {
        let mut l = format!("* {verb} ({}) \"/\" ", attrs.join(" ")).into_bytes();
        encode::mailbox(&mut l, name);
        if childinfo {
            l.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
        }
        self.conn.out.extend_from_slice(&l);
        self.conn.out.extend_from_slice(b"\r\n");
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
            // The renamed mailbox stays subscribed under its new name (as Dovecot does).
            if idx.subscriptions(&user).is_ok_and(|subs| subs.contains(a)) {
                let _ = idx.set_subscribed(&user, a, false);
                let _ = idx.set_subscribed(&user, b, true);
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

    /// SUBSCRIBE/UNSUBSCRIBE (RFC 9051 §6.3.7, §6.3.8): the user's list of names, which
    /// may name a mailbox that does not exist.
    pub(super) fn subscribe(&mut self, name: &str, on: bool) -> Done {
        let name = name.trim_end_matches(SEP);
        let name = if name.eq_ignore_ascii_case("INBOX") {
            "INBOX"
        } else {
            name
        };
        if on && self.resolve(name).is_none() && !valid_new_name(name, self.utf8 || self.rev2) {
            return Done::no_with(Code::Cannot, "Invalid mailbox name");
        }
        let user = self.user().to_string();
        if let Err(e) = self.ctx.shared.mailboxes.set_subscribed(&user, name, on) {
            tracing::warn!(user, "imap subscribe {name}: {e:#}");
            return Done::no_with(Code::ServerBug, "Cannot save subscription");
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
