//! QUOTA (RFC 9208): quota roots are users and public mailboxes; storage usage from the
//! usage tracker, limits from the directory.

use super::{Done, Session};
use postcore_protocol::imap::Code;
use postcore_protocol::imap::encode;

impl Session {
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
    pub(super) fn quota_limit(&self, owner: &str) -> Option<u64> {
        self.ctx
            .shared
            .directory
            .snapshot()
            .quota_bytes(&Self::quota_box(owner))
    }

    pub(super) fn quota_line(&mut self, owner: &str) {
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
}
