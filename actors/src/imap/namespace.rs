//! Mailbox names and namespaces (RFC 2342): the personal namespace, `Shared/<user>/…` through
//! ACL, `Public/<name>/…` for members of a public mailbox's groups; resolving a name to its
//! owner, folder and rights.

use super::Session;
use super::folders::*;
use postcore_storage::mailbox::{MailboxMeta, folder_path};
use std::path::PathBuf;

impl Session {
    pub(super) fn user(&self) -> &str {
        self.login.as_ref().map(|l| l.user.as_str()).unwrap_or("")
    }

    pub(super) fn public_root(&self, name: &str) -> PathBuf {
        crate::usage::mailbox_path(
            &self.ctx.shared.mail_root,
            &postcore_storage::directory::Mailbox::Public(name.to_string()),
        )
    }

    pub(super) fn member_of_public(&self, public: &str) -> bool {
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

    pub(super) fn rights_for(&self, owner: &str, meta: &MailboxMeta) -> String {
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
    pub(super) fn locate(&self, display: &str) -> Option<(String, String, PathBuf)> {
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
    pub(super) fn visible(&self) -> Vec<MailboxRef> {
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
        idx.with_locked_meta(m.meta.id, &m.owner, &m.name, |meta| {
            let r = idx.sync(&m.owner, &m.name, meta, &m.path)?;
            if r.added + r.expunged + r.flag_changes > 0 {
                idx.notify(meta.id);
            }
            Ok(meta.clone())
        })
    }
}
