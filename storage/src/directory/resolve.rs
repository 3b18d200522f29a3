//! The immutable directory snapshot and recipient resolution.

use super::SharedMap;
use super::model::*;
use postcore_protocol::smtp::Address;
use std::collections::HashSet;

/// A place mail is stored.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase", tag = "type", content = "name")]
pub enum Mailbox {
    /// A user's personal Maildir.
    User(String),
    /// A public (shared) Maildir.
    Public(String),
}

impl std::fmt::Display for Mailbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailbox::User(u) => write!(f, "user:{u}"),
            Mailbox::Public(p) => write!(f, "public:{p}"),
        }
    }
}

/// One delivery a recipient expands to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// Store into a local mailbox.
    Mailbox(Mailbox),
    /// Send to another server (external address or relay domain).
    Remote(String),
}

/// What a RCPT TO address means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptResolution {
    /// A local or relay-domain address we accept; `internal` ones only from inside.
    Accept {
        /// Deliveries (deduplicated).
        targets: Vec<Target>,
        /// The address is internal.
        internal: bool,
    },
    /// Local domain, no such recipient: 550 5.1.1.
    Unknown,
    /// Not our domain: needs relay permission.
    Foreign,
}

/// Read-only view of the whole directory at one moment.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    /// Domains by name.
    pub domains: SharedMap<Domain>,
    /// Users by login.
    pub users: SharedMap<User>,
    /// Groups by name.
    pub groups: SharedMap<Group>,
    /// Public mailboxes by name.
    pub public: SharedMap<PublicMailbox>,
    /// Addresses by key `local@domain` / `local@*`.
    pub addresses: SharedMap<AddressEntry>,
    /// Settings.
    pub settings: Settings,
}

const MAX_DEPTH: usize = 8;

impl Directory {
    /// True if `domain` is one of ours and delivered locally.
    pub fn is_local_domain(&self, domain: &str) -> bool {
        self.domains
            .get(domain)
            .is_some_and(|d| d.kind == DomainKind::Local)
    }

    /// The first local domain (for `<postmaster>` and generated addresses).
    pub fn primary_domain(&self) -> Option<&str> {
        self.domains
            .values()
            .find(|d| d.kind == DomainKind::Local)
            .map(|d| d.name.as_str())
    }

    /// Resolves a recipient (RFC 5321 forward-path) into deliveries.
    pub fn resolve(&self, addr: &Address) -> RcptResolution {
        let domain = if addr.domain.is_empty() {
            match self.primary_domain() {
                Some(d) => d.to_string(),
                None => return RcptResolution::Unknown,
            }
        } else {
            addr.domain.clone()
        };
        let Some(dom) = self.domains.get(&domain) else {
            return RcptResolution::Foreign;
        };
        if dom.kind == DomainKind::Relay {
            let targets = vec![Target::Remote(format!("{}@{}", addr.local, domain))];
            return RcptResolution::Accept {
                targets,
                internal: false,
            };
        }
        let local = addr.local.to_lowercase();
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let internal = match self.expand_local(&local, &domain, 0, &mut out, &mut seen) {
            Some(internal) => internal,
            None => match (&dom.accept_unknown, &dom.catch_all) {
                (true, Some(dest)) => {
                    self.expand_destination(dest, 0, &mut out, &mut seen);
                    false
                }
                _ => return RcptResolution::Unknown,
            },
        };
        if out.is_empty() {
            return RcptResolution::Unknown;
        }
        RcptResolution::Accept {
            targets: out,
            internal,
        }
    }

    /// Expands `local@domain` (a local domain). Returns `None` if nothing matches,
    /// otherwise whether the matching address is internal.
    fn expand_local(
        &self,
        local: &str,
        domain: &str,
        depth: usize,
        out: &mut Vec<Target>,
        seen: &mut HashSet<Target>,
    ) -> Option<bool> {
        let entry = self
            .addresses
            .get(&format!("{local}@{domain}"))
            .or_else(|| self.addresses.get(&format!("{local}@*")));
        if let Some(entry) = entry {
            for d in &entry.destinations {
                self.expand_destination(d, depth + 1, out, seen);
            }
            return Some(entry.internal);
        }
        if self.users.contains_key(local) {
            self.expand_destination(&Destination::User(local.to_string()), depth + 1, out, seen);
            return Some(false);
        }
        if self.settings.group_addresses
            && let Some(g) = self.groups.get(local)
            && g.address_enabled
        {
            self.expand_destination(&Destination::Group(local.to_string()), depth + 1, out, seen);
            return Some(false);
        }
        None
    }

    fn push(out: &mut Vec<Target>, seen: &mut HashSet<Target>, t: Target) {
        if seen.insert(t.clone()) {
            out.push(t);
        }
    }

    /// Expands one destination; recursion is bounded so alias loops cannot hang a session.
    fn expand_destination(
        &self,
        d: &Destination,
        depth: usize,
        out: &mut Vec<Target>,
        seen: &mut HashSet<Target>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        match d {
            Destination::User(login) => {
                if let Some(u) = self.users.get(login) {
                    if u.forward.is_empty() || u.keep_copy {
                        Self::push(out, seen, Target::Mailbox(Mailbox::User(login.clone())));
                    }
                    for f in &u.forward {
                        self.expand_address_string(f, depth + 1, out, seen);
                    }
                }
            }
            Destination::Group(g) => {
                if let Some(g) = self.groups.get(g) {
                    for m in &g.members {
                        self.expand_destination(
                            &Destination::User(m.clone()),
                            depth + 1,
                            out,
                            seen,
                        );
                    }
                }
            }
            Destination::Public(p) => {
                if self.public.contains_key(p) {
                    Self::push(out, seen, Target::Mailbox(Mailbox::Public(p.clone())));
                }
            }
            Destination::External(a) => self.expand_address_string(a, depth + 1, out, seen),
        }
    }

    /// An address written in the directory (forward, bcc, external destination): local
    /// addresses are expanded again, others become remote targets.
    pub fn expand_address_string(
        &self,
        a: &str,
        depth: usize,
        out: &mut Vec<Target>,
        seen: &mut HashSet<Target>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        match Address::parse(a, true) {
            Ok(addr) if self.is_local_domain(&addr.domain) => {
                self.expand_local(
                    &addr.local.to_lowercase(),
                    &addr.domain,
                    depth + 1,
                    out,
                    seen,
                );
            }
            Ok(addr) => Self::push(out, seen, Target::Remote(addr.to_string())),
            Err(_) => tracing::warn!(address = a, "invalid address in directory ignored"),
        }
    }

    /// Hidden copies for a message with these recipients: per-domain "copy inbound
    /// messages" and the global "forward a copy of all messages".
    pub fn hidden_copies(&self, rcpt_domains: &[&str]) -> Vec<Target> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut doms: Vec<&str> = rcpt_domains.to_vec();
        doms.sort_unstable();
        doms.dedup();
        for d in doms {
            if let Some(bcc) = self.domains.get(d).and_then(|d| d.bcc.as_deref()) {
                self.expand_address_string(bcc, 0, &mut out, &mut seen);
            }
        }
        if let Some(all) = &self.settings.always_bcc {
            self.expand_address_string(all, 0, &mut out, &mut seen);
        }
        out
    }

    /// Addresses a login may use as sender ("enforce sender/login match"): its own
    /// `<login>@<local domain>` and any address with the user among its destinations.
    pub fn sender_allowed(&self, login: &str, sender: &Address) -> bool {
        if !self.is_local_domain(&sender.domain) {
            return false;
        }
        let local = sender.local.to_lowercase();
        if local == login {
            return true;
        }
        let entry = self
            .addresses
            .get(&format!("{local}@{}", sender.domain))
            .or_else(|| self.addresses.get(&format!("{local}@*")));
        entry.is_some_and(|e| {
            e.destinations.iter().any(|d| match d {
                Destination::User(u) => u == login,
                Destination::Group(g) => self
                    .groups
                    .get(g)
                    .is_some_and(|g| g.members.iter().any(|m| m == login)),
                _ => false,
            })
        })
    }

    /// Effective quota of a mailbox in octets (`None` = unlimited).
    pub fn quota_bytes(&self, mb: &Mailbox) -> Option<u64> {
        let q = match mb {
            Mailbox::User(u) => self
                .users
                .get(u)
                .and_then(|u| u.quota_mb)
                .unwrap_or(self.settings.default_quota_mb),
            Mailbox::Public(_) => self.settings.default_quota_mb,
        };
        (q > 0).then(|| q * 1024 * 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(login: &str) -> User {
        User {
            login: login.into(),
            password_hash: String::new(),
            mail_access: true,
            quota_mb: None,
            keep_spam_days: None,
            spam_to_junk: None,
            forward: vec![],
            keep_copy: true,
        }
    }

    fn dir() -> Directory {
        let mut d = Directory::default();
        for (n, kind) in [
            ("a.test", DomainKind::Local),
            ("b.test", DomainKind::Local),
            ("r.test", DomainKind::Relay),
        ] {
            d.domains.insert(
                n.into(),
                Domain {
                    name: n.into(),
                    kind,
                    relay_host: None,
                    bcc: None,
                    accept_unknown: false,
                    catch_all: None,
                    dkim: None,
                    legal_notice: None,
                },
            );
        }
        for u in ["alice", "bob", "carol"] {
            d.users.insert(u.into(), user(u));
        }
        d.groups.insert(
            "sales".into(),
            Group {
                name: "sales".into(),
                members: vec!["alice".into(), "bob".into()],
                address_enabled: true,
            },
        );
        d
    }

    fn addr(s: &str) -> Address {
        Address::parse(s, true).unwrap()
    }

    fn mb(u: &str) -> Target {
        Target::Mailbox(Mailbox::User(u.into()))
    }

    #[test]
    fn users_exist_in_every_local_domain() {
        let d = dir();
        assert_eq!(
            d.resolve(&addr("Alice@a.test")),
            RcptResolution::Accept {
                targets: vec![mb("alice")],
                internal: false
            }
        );
        assert_eq!(
            d.resolve(&addr("alice@b.test")),
            RcptResolution::Accept {
                targets: vec![mb("alice")],
                internal: false
            }
        );
        assert_eq!(d.resolve(&addr("nobody@a.test")), RcptResolution::Unknown);
        assert_eq!(
            d.resolve(&addr("alice@elsewhere.test")),
            RcptResolution::Foreign
        );
        assert!(matches!(
            d.resolve(&addr("x@r.test")),
            RcptResolution::Accept { .. }
        ));
    }

    #[test]
    fn group_address_needs_both_switches() {
        let mut d = dir();
        assert_eq!(d.resolve(&addr("sales@a.test")), RcptResolution::Unknown);
        d.settings.group_addresses = true;
        assert_eq!(
            d.resolve(&addr("sales@a.test")),
            RcptResolution::Accept {
                targets: vec![mb("alice"), mb("bob")],
                internal: false
            }
        );
        d.groups.get_mut("sales").unwrap().address_enabled = false;
        assert_eq!(d.resolve(&addr("sales@a.test")), RcptResolution::Unknown);
    }

    #[test]
    fn address_fanout_forward_and_loops() {
        let mut d = dir();
        d.public.insert(
            "info".into(),
            PublicMailbox {
                name: "info".into(),
                owners: vec![],
            },
        );
        d.addresses.insert(
            "team@a.test".into(),
            AddressEntry {
                local: "team".into(),
                domain: Some("a.test".into()),
                destinations: vec![
                    Destination::User("carol".into()),
                    Destination::Group("sales".into()),
                    Destination::Public("info".into()),
                    Destination::External("x@remote.test".into()),
                    Destination::External("loop@a.test".into()),
                ],
                internal: true,
            },
        );
        d.addresses.insert(
            "loop@*".into(),
            AddressEntry {
                local: "loop".into(),
                domain: None,
                destinations: vec![Destination::External("team@a.test".into())],
                internal: false,
            },
        );
        d.users.get_mut("bob").unwrap().forward = vec!["bob@remote.test".into()];
        d.users.get_mut("bob").unwrap().keep_copy = false;
        let RcptResolution::Accept { targets, internal } = d.resolve(&addr("team@a.test")) else {
            panic!()
        };
        assert!(internal);
        assert_eq!(
            targets,
            vec![
                mb("carol"),
                mb("alice"),
                Target::Remote("bob@remote.test".into()),
                Target::Mailbox(Mailbox::Public("info".into())),
                Target::Remote("x@remote.test".into()),
            ]
        );
        assert_eq!(d.resolve(&addr("team@b.test")), RcptResolution::Unknown);
    }

    #[test]
    fn catch_all_and_sender_match() {
        let mut d = dir();
        let dom = d.domains.get_mut("a.test").unwrap();
        dom.accept_unknown = true;
        dom.catch_all = Some(Destination::User("carol".into()));
        assert_eq!(
            d.resolve(&addr("whoever@a.test")),
            RcptResolution::Accept {
                targets: vec![mb("carol")],
                internal: false
            }
        );
        assert_eq!(d.resolve(&addr("whoever@b.test")), RcptResolution::Unknown);
        assert!(d.sender_allowed("alice", &addr("alice@b.test")));
        assert!(!d.sender_allowed("alice", &addr("bob@a.test")));
        assert!(!d.sender_allowed("alice", &addr("alice@elsewhere.test")));
    }
}
