//! Mailbox names and namespaces (RFC 2342), LIST with LIST-EXTENDED / LIST-STATUS /
//! SPECIAL-USE (RFC 5258, 5819, 6154), CREATE, DELETE, RENAME, SUBSCRIBE, STATUS
//! (with SIZE, RFC 8438), QUOTA (RFC 9208) and ACL (RFC 4314).
//!
//! Names: the personal namespace is the user's own mailboxes (`INBOX`, `Sent`, `a/b`);
//! `Shared/<user>/<mailbox>` are other users' mailboxes shared through ACL; and
//! `Public/<name>[/<sub>]` are the public mailboxes of the groups the user belongs to.

use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::encode;
use postcore_protocol::imap::{ListOptions, StatusItem};
use postcore_storage::mailbox::{MailboxMeta, flag, folder_path};
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

fn valid_new_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && !name.starts_with(SEP)
        && !name.ends_with(SEP)
        && !name.contains("//")
        && !name.contains(['*', '%', '\r', '\n', '\0'])
        && name.split(SEP).all(|p| p != "." && p != "..")
        && !name.starts_with(SHARED)
        && !name.starts_with(PUBLIC)
}

impl Session {
    pub(super) fn user(&self) -> &str {
        self.login.as_ref().map(|l| l.user.as_str()).unwrap_or("")
    }

    fn public_root(&self, name: &str) -> PathBuf {
        crate::usage::mailbox_path(
            &self.ctx.shared.mail_root,
            &postcore_storage::directory::Mailbox::Public(name.to_string()),
        )
    }

    fn member_of_public(&self, public: &str) -> bool {
        let dir = self.ctx.shared.directory.snapshot();
        let user = self.user();
        dir.public.get(public).is_some_and(|p| {
            p.owners.iter().any(|g| {
                dir.groups
                    .get(g)
                    .is_some_and(|g| g.members.iter().any(|m| m == user))
            })
        })
    }

    fn rights_for(&self, owner: &str, meta: &MailboxMeta) -> String {
        let user = self.user();
        if owner == user {
            return ALL_RIGHTS.into();
        }
        let mut r: String = meta
            .acl
            .get(user)
            .or_else(|| meta.acl.get("anyone"))
            .cloned()
            .unwrap_or_default();
        if let Some(p) = owner.strip_prefix("#public/")
            && self.member_of_public(p)
        {
            r.push_str("lrswipkxte");
        }
        let mut v: Vec<char> = r.chars().filter(|c| ALL_RIGHTS.contains(*c)).collect();
        v.sort_unstable_by_key(|c| ALL_RIGHTS.find(*c));
        v.dedup();
        v.into_iter().collect()
    }

    /// Splits a client name into (owner, name in owner's tree, folder root).
    fn locate(&self, display: &str) -> Option<(String, String, PathBuf)> {
        if let Some(rest) = display.strip_prefix(SHARED) {
            let (owner, name) = rest.split_once(SEP).unwrap_or((rest, "INBOX"));
            let owner = owner.to_lowercase();
            self.ctx.shared.directory.snapshot().users.get(&owner)?;
            let name = if name.eq_ignore_ascii_case("INBOX") {
                "INBOX"
            } else {
                name
            };
            let root = self.user_root(&owner);
            return Some((owner, name.to_string(), root));
        }
        if let Some(rest) = display.strip_prefix(PUBLIC) {
            let (public, name) = rest.split_once(SEP).unwrap_or((rest, "INBOX"));
            self.ctx.shared.directory.snapshot().public.get(public)?;
            return Some((
                format!("#public/{public}"),
                name.to_string(),
                self.public_root(public),
            ));
        }
        Some((
            self.user().to_string(),
            display.to_string(),
            self.user_root(self.user()),
        ))
    }

    /// Resolves a client mailbox name; `None` if it does not exist or is not visible.
    pub(super) fn resolve(&self, display: &str) -> Option<MailboxRef> {
        let (owner, name, root) = self.locate(display)?;
        let idx = &self.ctx.shared.mailboxes;
        let meta = match idx.get(&owner, &name).ok()? {
            Some(m) => m,
            None if owner.starts_with("#public/") && name == "INBOX" => {
                // A public mailbox's index is created on first use.
                idx.create(&owner, "INBOX", &root, None).ok()?
            }
            None => return None,
        };
        let rights =
            if self.login.as_ref().is_some_and(|l| l.master.is_some()) && owner == self.user() {
                ALL_RIGHTS.to_string()
            } else {
                self.rights_for(&owner, &meta)
            };
        if !rights.contains('l') && !rights.contains('r') {
            return None;
        }
        Some(MailboxRef {
            path: folder_path(&root, &name),
            owner,
            name,
            display: display.to_string(),
            meta,
            rights,
        })
    }

    /// Every mailbox the user can see, by client name.
    fn visible(&self) -> Vec<MailboxRef> {
        let idx = &self.ctx.shared.mailboxes;
        let user = self.user().to_string();
        let mut out = Vec::new();
        let root = self.user_root(&user);
        for (name, meta) in idx.list(&user).unwrap_or_default() {
            out.push(MailboxRef {
                path: folder_path(&root, &name),
                owner: user.clone(),
                display: name.clone(),
                name,
                meta,
                rights: ALL_RIGHTS.into(),
            });
        }
        let dir = self.ctx.shared.directory.snapshot();
        // Other users' mailboxes shared with this user.
        for other in dir.users.keys().filter(|u| **u != user) {
            for (name, meta) in idx.list(other).unwrap_or_default() {
                if meta.acl.is_empty() {
                    continue;
                }
                let rights = self.rights_for(other, &meta);
                if rights.contains('l') {
                    out.push(MailboxRef {
                        path: folder_path(&self.user_root(other), &name),
                        owner: other.clone(),
                        display: format!("{SHARED}{other}/{name}"),
                        name,
                        meta,
                        rights,
                    });
                }
            }
        }
        for public in dir.public.keys() {
            if !self.member_of_public(public) {
                continue;
            }
            let display = format!("{PUBLIC}{public}");
            if let Some(r) = self.resolve(&display) {
                out.push(r);
            }
            let owner = format!("#public/{public}");
            for (name, _) in idx.list(&owner).unwrap_or_default() {
                if name != "INBOX"
                    && let Some(r) = self.resolve(&format!("{display}/{name}"))
                {
                    out.push(r);
                }
            }
        }
        out
    }

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
        } else if !valid_new_name(name) {
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
        if !valid_new_name(to) || to == "INBOX" {
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

    /// Syncs a mailbox with its folder and returns fresh meta and records.
    pub(super) fn load(
        &self,
        m: &MailboxRef,
    ) -> anyhow::Result<(
        MailboxMeta,
        Vec<(u32, postcore_storage::mailbox::MessageRecord)>,
    )> {
        let meta = self.synced_meta(m)?;
        let msgs = self.ctx.shared.mailboxes.messages(meta.id)?;
        Ok((meta, msgs))
    }

    /// Reconciles mailbox `m` with its folder (under its lock) and returns fresh meta;
    /// wakes the mailbox's watchers when the folder had changed.
    pub(super) fn synced_meta(&self, m: &MailboxRef) -> anyhow::Result<MailboxMeta> {
        let idx = &self.ctx.shared.mailboxes;
        let lock = idx.lock(m.meta.id);
        let _g = lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut meta = idx
            .get(&m.owner, &m.name)?
            .ok_or_else(|| anyhow::anyhow!("mailbox vanished"))?;
        let r = idx.sync(&m.owner, &m.name, &mut meta, &m.path)?;
        if r.added + r.expunged + r.flag_changes > 0 {
            idx.notify(meta.id);
        }
        Ok(meta)
    }

    fn status_lines(&mut self, m: &MailboxRef, items: &[StatusItem]) {
        let Ok((meta, mut msgs)) = self.load(m) else {
            return;
        };
        if let Some(set) = self.private_seen(m) {
            for (u, r) in msgs.iter_mut() {
                r.flags = super::seen::overlay(*u, r.flags, Some(&set));
            }
        }
        let mut parts = Vec::new();
        for it in items {
            let v: u64 = match it {
                StatusItem::Messages => msgs.len() as u64,
                StatusItem::UidNext => meta.uidnext as u64,
                StatusItem::UidValidity => meta.uidvalidity as u64,
                StatusItem::Unseen => msgs
                    .iter()
                    .filter(|(_, r)| r.flags & flag::SEEN == 0)
                    .count() as u64,
                StatusItem::Deleted => msgs
                    .iter()
                    .filter(|(_, r)| r.flags & flag::DELETED != 0)
                    .count() as u64,
                StatusItem::Size => msgs.iter().map(|(_, r)| r.size).sum(),
                // Not yet told to any session (RFC 3501 §2.3.2); STATUS claims nothing.
                StatusItem::Recent => {
                    let first = self
                        .ctx
                        .shared
                        .mailboxes
                        .first_recent(meta.id)
                        .unwrap_or(u32::MAX);
                    msgs.iter().filter(|(u, _)| *u >= first).count() as u64
                }
                StatusItem::HighestModSeq => meta.highestmodseq,
            };
            parts.push(format!("{} {v}", it.name()));
        }
        let mut l = b"* STATUS ".to_vec();
        encode::mailbox(&mut l, &m.display);
        l.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.conn.out.extend_from_slice(&l);
    }

    pub(super) fn status(&mut self, name: &str, items: &[StatusItem]) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        if !m.may('r') {
            return Done::no_with(Code::NoPerm, "Permission denied");
        }
        if items.contains(&StatusItem::HighestModSeq) {
            self.condstore = true;
        }
        self.status_lines(&m, items);
        Done::ok("STATUS completed")
    }

    /// Recomputes a user's usage after mailboxes were removed.
    pub(super) fn refresh_usage(&self, owner: &str) {
        if !owner.starts_with('#') {
            self.ctx
                .shared
                .usage
                .forget(&postcore_storage::directory::Mailbox::User(
                    owner.to_string(),
                ));
        }
    }

    /// The quota mailbox (for the usage tracker) of an index owner.
    pub(super) fn quota_box(owner: &str) -> postcore_storage::directory::Mailbox {
        match owner.strip_prefix("#public/") {
            Some(p) => postcore_storage::directory::Mailbox::Public(p.to_string()),
            None => postcore_storage::directory::Mailbox::User(owner.to_string()),
        }
    }

    /// The quota limit of an index owner (`None`: unlimited, no quota root).
    fn quota_limit(&self, owner: &str) -> Option<u64> {
        self.ctx
            .shared
            .directory
            .snapshot()
            .quota_bytes(&Self::quota_box(owner))
    }

    fn quota_line(&mut self, owner: &str) {
        let mb = Self::quota_box(owner);
        let usage = self.ctx.shared.usage.get(&mb);
        let limit = self.quota_limit(owner);
        let root = if owner == self.user() {
            String::new()
        } else {
            owner.to_string()
        };
        let mut l = b"* QUOTA ".to_vec();
        encode::string(&mut l, root.as_bytes());
        match limit {
            Some(q) => l.extend_from_slice(
                format!(" (STORAGE {} {})\r\n", usage.bytes.div_ceil(1024), q / 1024).as_bytes(),
            ),
            None => return,
        }
        self.conn.out.extend_from_slice(&l);
    }

    pub(super) fn get_quota(&mut self, root: &str) -> Done {
        let user = self.user().to_string();
        let owner = if root.is_empty() {
            user
        } else {
            root.to_string()
        };
        let own = owner == self.user();
        let visible = own || self.visible().iter().any(|m| m.owner == owner);
        if !visible || self.quota_limit(&owner).is_none() {
            return Done::no_with(Code::NonExistent, "No such quota root");
        }
        self.quota_line(&owner);
        Done::ok("GETQUOTA completed")
    }

    pub(super) fn get_quota_root(&mut self, name: &str) -> Done {
        let Some(m) = self.resolve(name) else {
            return Done::no_with(Code::NonExistent, "Mailbox does not exist");
        };
        let root = if m.owner == self.user() {
            String::new()
        } else {
            m.owner.clone()
        };
        // RFC 9208 §4.3.2: no root when the mailbox has no quota.
        let limited = self.quota_limit(&m.owner).is_some();
        let mut l = b"* QUOTAROOT ".to_vec();
        encode::mailbox(&mut l, &m.display);
        if limited {
            l.push(b' ');
            encode::string(&mut l, root.as_bytes());
        }
        l.extend_from_slice(b"\r\n");
        self.conn.out.extend_from_slice(&l);
        if limited {
            self.quota_line(&m.owner.clone());
        }
        Done::ok("GETQUOTAROOT completed")
    }

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

#[cfg(test)]
mod tests {
    use super::pattern_match;

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
