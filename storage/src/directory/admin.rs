//! Changes to the directory: validation, durable write, snapshot swap.
//! Every change is checked against the current snapshot first; bad input changes nothing.

use super::model::*;
use super::resolve::Directory;
use crate::store::{CF_DIRECTORY, Op, Store};
use arc_swap::ArcSwap;
use postcore_protocol::smtp::Address;
use postcore_protocol::smtp::address::parse_domain;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::sync::{Arc, Mutex};

/// Longest domain name as text (RFC 1035 §2.3.4: 255 octets in wire format).
pub const MAX_DOMAIN_NAME: usize = 253;
/// Largest `max_message_size` accepted (1 GiB): messages are held in memory while they
/// arrive, so the bound keeps one session from claiming more.
pub const MAX_MESSAGE_SIZE: u64 = 1 << 30;
/// Largest `max_recipients` accepted (RFC 5321 §4.5.3.1.8 asks for at least 100).
pub const MAX_RECIPIENTS: usize = 100_000;
/// Why an administrative change was refused.
#[derive(Debug)]
pub enum AdminError {
    /// Malformed input (HTTP 400).
    Invalid(String),
    /// The named object does not exist (HTTP 404).
    NotFound(String),
    /// The object exists already or is still in use (HTTP 409).
    Conflict(String),
    /// Storage failure (HTTP 500).
    Internal(anyhow::Error),
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminError::Invalid(s) => write!(f, "invalid: {s}"),
            AdminError::NotFound(s) => write!(f, "not found: {s}"),
            AdminError::Conflict(s) => write!(f, "conflict: {s}"),
            AdminError::Internal(e) => write!(f, "internal error: {e:#}"),
        }
    }
}

impl From<anyhow::Error> for AdminError {
    fn from(e: anyhow::Error) -> Self {
        AdminError::Internal(e)
    }
}

type R<T> = Result<T, AdminError>;

/// The directory's owner: a store and the current snapshot, shared by every worker.
#[derive(Clone)]
pub struct DirectoryHandle {
    store: Store,
    snapshot: Arc<ArcSwap<Directory>>,
    write_lock: Arc<Mutex<()>>,
}

fn invalid<T>(s: impl Into<String>) -> R<T> {
    Err(AdminError::Invalid(s.into()))
}

impl DirectoryHandle {
    /// Loads the directory from the store.
    pub fn load(store: Store) -> anyhow::Result<Self> {
        let dir = read_all(&store)?;
        Ok(DirectoryHandle {
            store,
            snapshot: Arc::new(ArcSwap::from_pointee(dir)),
            write_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The current snapshot (cheap; never blocks).
    pub fn snapshot(&self) -> Arc<Directory> {
        self.snapshot.load_full()
    }

    /// The store behind the directory.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Writes `ops` durably, then swaps in a snapshot with the same changes applied (a copy of
    /// the current one that shares all untouched shards of its maps, see [`super::SharedMap`]:
    /// no re-read and no full copy, so bulk changes stay linear).
    fn apply(&self, ops: Vec<Op>) -> R<()> {
        let mut dir = (*self.snapshot()).clone();
        for op in &ops {
            apply_op(&mut dir, op)?;
        }
        self.store.commit_blocking(ops)?;
        self.snapshot.store(Arc::new(dir));
        Ok(())
    }

    fn put<T: Serialize>(key: String, v: &T) -> R<Op> {
        let json = serde_json::to_vec(v).map_err(|e| AdminError::Internal(e.into()))?;
        Ok(Op::Put(CF_DIRECTORY, key.into_bytes(), json))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.write_lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    // ---- domains ----

    /// Adds a domain.
    pub fn add_domain(&self, mut d: Domain) -> R<()> {
        let _g = self.lock();
        d.name = parse_domain(&d.name, false)
            .map_err(|e| AdminError::Invalid(format!("domain {:?}: {e}", d.name)))?;
        // RFC 1035 §2.3.4: 255 octets on the wire, so at most 253 characters as text; RFC 3696
        // §2: a top-level label is never all digits, so `127.0.0.1` is an address, not a domain.
        let tld_numeric = d
            .name
            .rsplit('.')
            .next()
            .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()));
        if d.name.starts_with('[') || !d.name.contains('.') || tld_numeric {
            return invalid(format!(
                "domain {:?}: need a fully qualified domain name, not an address",
                d.name
            ));
        }
        if d.name.len() > MAX_DOMAIN_NAME {
            return invalid(format!(
                "domain {:?}: longer than {MAX_DOMAIN_NAME} characters",
                d.name
            ));
        }
        let snap = self.snapshot();
        if snap.domains.contains_key(&d.name) {
            return Err(AdminError::Conflict(format!("domain {} exists", d.name)));
        }
        validate_domain(&snap, &d)?;
        self.apply(vec![Self::put(format!("domain/{}", d.name), &d)?])
    }

    /// Replaces a domain's settings (name must exist).
    pub fn update_domain(&self, d: Domain) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        if !snap.domains.contains_key(&d.name) {
            return Err(AdminError::NotFound(format!("domain {}", d.name)));
        }
        validate_domain(&snap, &d)?;
        self.apply(vec![Self::put(format!("domain/{}", d.name), &d)?])
    }

    /// Removes a domain (stored mail is kept) and the addresses bound to it.
    pub fn remove_domain(&self, name: &str) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        if !snap.domains.contains_key(name) {
            return Err(AdminError::NotFound(format!("domain {name}")));
        }
        let mut ops = vec![Op::Delete(
            CF_DIRECTORY,
            format!("domain/{name}").into_bytes(),
        )];
        for a in snap
            .addresses
            .values()
            .filter(|a| a.domain.as_deref() == Some(name))
        {
            ops.push(Op::Delete(
                CF_DIRECTORY,
                format!("address/{}", a.key()).into_bytes(),
            ));
        }
        self.apply(ops)
    }

    // ---- users ----

    /// Adds a user with a plain-text password (hashed here).
    pub fn add_user(&self, mut u: User, password: &str) -> R<()> {
        let _g = self.lock();
        u.login = u.login.to_lowercase();
        if !valid_name(&u.login) {
            return invalid(format!(
                "login {:?}: use a-z, 0-9, '.', '_', '-' (max 64)",
                u.login
            ));
        }
        if password.len() < 4 {
            return invalid("password too short (at least 4 characters)");
        }
        let snap = self.snapshot();
        if snap.users.contains_key(&u.login) {
            return Err(AdminError::Conflict(format!("user {} exists", u.login)));
        }
        validate_user(&u)?;
        u.password_hash = crate::password::hash(password)?;
        self.apply(vec![Self::put(format!("user/{}", u.login), &u)?])
    }

    /// Updates a user's settings; the stored password hash is kept unless `password` is given.
    pub fn update_user(&self, mut u: User, password: Option<&str>) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        let Some(old) = snap.users.get(&u.login) else {
            return Err(AdminError::NotFound(format!("user {}", u.login)));
        };
        validate_user(&u)?;
        u.password_hash = match password {
            Some(p) if p.len() < 4 => return invalid("password too short (at least 4 characters)"),
            Some(p) => crate::password::hash(p)?,
            None => old.password_hash.clone(),
        };
        self.apply(vec![Self::put(format!("user/{}", u.login), &u)?])
    }

    /// Removes a user and their group memberships (the Maildir is kept).
    pub fn remove_user(&self, login: &str) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        if !snap.users.contains_key(login) {
            return Err(AdminError::NotFound(format!("user {login}")));
        }
        if let Some(a) = snap
            .addresses
            .values()
            .find(|a| a.destinations.contains(&Destination::User(login.into())))
        {
            return Err(AdminError::Conflict(format!(
                "user {login} is a destination of address {}",
                a.key()
            )));
        }
        let mut ops = vec![Op::Delete(
            CF_DIRECTORY,
            format!("user/{login}").into_bytes(),
        )];
        for g in snap
            .groups
            .values()
            .filter(|g| g.members.iter().any(|m| m == login))
        {
            let mut g = g.clone();
            g.members.retain(|m| m != login);
            ops.push(Self::put(format!("group/{}", g.name), &g)?);
        }
        self.apply(ops)
    }

    // ---- groups ----

    /// Adds or replaces a group (`create` refuses an existing name).
    pub fn put_group(&self, mut g: Group, create: bool) -> R<()> {
        let _g = self.lock();
        g.name = g.name.to_lowercase();
        if !valid_name(&g.name) {
            return invalid(format!("group name {:?}", g.name));
        }
        let snap = self.snapshot();
        match (create, snap.groups.contains_key(&g.name)) {
            (true, true) => return Err(AdminError::Conflict(format!("group {} exists", g.name))),
            (false, false) => return Err(AdminError::NotFound(format!("group {}", g.name))),
            _ => {}
        }
        for m in &mut g.members {
            *m = m.to_lowercase();
            if !snap.users.contains_key(m.as_str()) {
                return Err(AdminError::NotFound(format!("user {m}")));
            }
        }
        g.members.sort();
        g.members.dedup();
        self.apply(vec![Self::put(format!("group/{}", g.name), &g)?])
    }

    /// Removes a group (refused while an address or public mailbox uses it).
    pub fn remove_group(&self, name: &str) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        if !snap.groups.contains_key(name) {
            return Err(AdminError::NotFound(format!("group {name}")));
        }
        if let Some(a) = snap
            .addresses
            .values()
            .find(|a| a.destinations.contains(&Destination::Group(name.into())))
        {
            return Err(AdminError::Conflict(format!(
                "group {name} is a destination of address {}",
                a.key()
            )));
        }
        if let Some(p) = snap
            .public
            .values()
            .find(|p| p.owners.iter().any(|o| o == name))
        {
            return Err(AdminError::Conflict(format!(
                "group {name} owns public mailbox {}",
                p.name
            )));
        }
        self.apply(vec![Op::Delete(
            CF_DIRECTORY,
            format!("group/{name}").into_bytes(),
        )])
    }

    // ---- public mailboxes ----

    /// Adds or replaces a public mailbox.
    pub fn put_public(&self, mut p: PublicMailbox, create: bool) -> R<()> {
        let _g = self.lock();
        p.name = p.name.to_lowercase();
        if !valid_name(&p.name) {
            return invalid(format!("public mailbox name {:?}", p.name));
        }
        let snap = self.snapshot();
        match (create, snap.public.contains_key(&p.name)) {
            (true, true) => {
                return Err(AdminError::Conflict(format!(
                    "public mailbox {} exists",
                    p.name
                )));
            }
            (false, false) => {
                return Err(AdminError::NotFound(format!("public mailbox {}", p.name)));
            }
            _ => {}
        }
        if p.owners.is_empty() {
            return invalid("a public mailbox needs at least one owning group");
        }
        for o in &p.owners {
            if !snap.groups.contains_key(o) {
                return Err(AdminError::NotFound(format!("group {o}")));
            }
        }
        self.apply(vec![Self::put(format!("public/{}", p.name), &p)?])
    }

    /// Removes a public mailbox (its Maildir is kept).
    pub fn remove_public(&self, name: &str) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        if !snap.public.contains_key(name) {
            return Err(AdminError::NotFound(format!("public mailbox {name}")));
        }
        if let Some(a) = snap
            .addresses
            .values()
            .find(|a| a.destinations.contains(&Destination::Public(name.into())))
        {
            return Err(AdminError::Conflict(format!(
                "public mailbox {name} is a destination of address {}",
                a.key()
            )));
        }
        self.apply(vec![Op::Delete(
            CF_DIRECTORY,
            format!("public/{name}").into_bytes(),
        )])
    }

    // ---- addresses ----

    /// Adds or replaces an address.
    pub fn put_address(&self, mut a: AddressEntry, create: bool) -> R<()> {
        let _g = self.lock();
        let snap = self.snapshot();
        a.local = a.local.to_lowercase();
        if Address::parse(&format!("{}@x.test", a.local), false).is_err() {
            return invalid(format!("local part {:?}", a.local));
        }
        if let Some(d) = &a.domain
            && !snap.is_local_domain(d)
        {
            return Err(AdminError::NotFound(format!("local domain {d}")));
        }
        match (create, snap.addresses.contains_key(&a.key())) {
            (true, true) => {
                return Err(AdminError::Conflict(format!("address {} exists", a.key())));
            }
            (false, false) => return Err(AdminError::NotFound(format!("address {}", a.key()))),
            _ => {}
        }
        if a.destinations.is_empty() {
            return invalid("an address needs at least one destination");
        }
        for d in &a.destinations {
            validate_destination(&snap, d)?;
        }
        self.apply(vec![Self::put(format!("address/{}", a.key()), &a)?])
    }

    /// Removes an address by key (`local@domain` or `local@*`).
    pub fn remove_address(&self, key: &str) -> R<()> {
        let _g = self.lock();
        if !self.snapshot().addresses.contains_key(key) {
            return Err(AdminError::NotFound(format!("address {key}")));
        }
        self.apply(vec![Op::Delete(
            CF_DIRECTORY,
            format!("address/{key}").into_bytes(),
        )])
    }

    // ---- settings ----

    /// Merges a partial JSON object into the settings (RFC 7386 merge patch semantics).
    pub fn patch_settings(&self, patch: serde_json::Value) -> R<Settings> {
        let _g = self.lock();
        let snap = self.snapshot();
        let mut cur =
            serde_json::to_value(&snap.settings).map_err(|e| AdminError::Internal(e.into()))?;
        if !patch.is_object() {
            return invalid("settings patch must be a JSON object");
        }
        merge(&mut cur, patch);
        let s: Settings = serde_json::from_value(cur)
            .map_err(|e| AdminError::Invalid(format!("settings: {e}")))?;
        if !(1024..=MAX_MESSAGE_SIZE).contains(&s.max_message_size) {
            return invalid(format!(
                "max_message_size must be between 1024 and {MAX_MESSAGE_SIZE}"
            ));
        }
        if !(1..=MAX_RECIPIENTS).contains(&s.max_recipients) {
            return invalid(format!(
                "max_recipients must be between 1 and {MAX_RECIPIENTS}"
            ));
        }
        for a in s.always_bcc.iter() {
            Address::parse(a, true)
                .map_err(|e| AdminError::Invalid(format!("always_bcc {a:?}: {e}")))?;
        }
        s.filter
            .validate()
            .map_err(|e| AdminError::Invalid(format!("filter: {e}")))?;
        self.apply(vec![Self::put("settings".into(), &s)?])?;
        Ok(s)
    }
}

fn merge(target: &mut serde_json::Value, patch: serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.insert(k, serde_json::Value::Null);
                } else {
                    merge(t.entry(k).or_insert(serde_json::Value::Null), v);
                }
            }
        }
        (t, p) => *t = p,
    }
}

fn validate_domain(snap: &Directory, d: &Domain) -> R<()> {
    if let Some(b) = &d.bcc {
        Address::parse(b, true).map_err(|e| AdminError::Invalid(format!("bcc {b:?}: {e}")))?;
    }
    if d.accept_unknown && d.catch_all.is_none() {
        return invalid("accept_unknown needs a catch_all destination");
    }
    if let Some(c) = &d.catch_all {
        validate_destination(snap, c)?;
    }
    if d.kind == DomainKind::Local && d.relay_host.is_some() {
        return invalid("relay_host is only for relay domains");
    }
    Ok(())
}

fn validate_user(u: &User) -> R<()> {
    for f in &u.forward {
        Address::parse(f, true).map_err(|e| AdminError::Invalid(format!("forward {f:?}: {e}")))?;
    }
    Ok(())
}

fn validate_destination(snap: &Directory, d: &Destination) -> R<()> {
    let missing = |what: &str, n: &str| Err(AdminError::NotFound(format!("{what} {n}")));
    match d {
        Destination::User(u) if !snap.users.contains_key(u) => missing("user", u),
        Destination::Group(g) if !snap.groups.contains_key(g) => missing("group", g),
        Destination::Public(p) if !snap.public.contains_key(p) => missing("public mailbox", p),
        Destination::External(a) => Address::parse(a, true)
            .map(|_| ())
            .map_err(|e| AdminError::Invalid(format!("address {a:?}: {e}"))),
        _ => Ok(()),
    }
}

fn parse<T: DeserializeOwned>(v: &[u8]) -> R<T> {
    serde_json::from_slice(v).map_err(|e| AdminError::Internal(e.into()))
}

/// Applies one stored change to an in-memory directory, mirroring [`read_all`].
fn apply_op(d: &mut Directory, op: &Op) -> R<()> {
    let (key, value) = match op {
        Op::Put(_, k, v) => (k, Some(v)),
        Op::Delete(_, k) => (k, None),
        // The directory never merges or deletes ranges.
        Op::Merge(..) | Op::DeleteRange(..) => return Ok(()),
    };
    let key = String::from_utf8_lossy(key);
    let Some((kind, name)) = key.split_once('/') else {
        if key == "settings" {
            d.settings = value.map(|v| parse(v)).transpose()?.unwrap_or_default();
        }
        return Ok(());
    };
    let name = name.to_string();
    match (kind, value) {
        ("domain", Some(v)) => drop(d.domains.insert(name, parse(v)?)),
        ("domain", None) => drop(d.domains.remove(&name)),
        ("user", Some(v)) => drop(d.users.insert(name, parse(v)?)),
        ("user", None) => drop(d.users.remove(&name)),
        ("group", Some(v)) => drop(d.groups.insert(name, parse(v)?)),
        ("group", None) => drop(d.groups.remove(&name)),
        ("public", Some(v)) => drop(d.public.insert(name, parse(v)?)),
        ("public", None) => drop(d.public.remove(&name)),
        ("address", Some(v)) => drop(d.addresses.insert(name, parse(v)?)),
        ("address", None) => drop(d.addresses.remove(&name)),
        _ => {}
    }
    Ok(())
}

fn load_kind<T: DeserializeOwned>(store: &Store, prefix: &str) -> anyhow::Result<Vec<T>> {
    store
        .scan_prefix(CF_DIRECTORY, prefix.as_bytes())?
        .into_iter()
        .map(|(k, v)| {
            serde_json::from_slice(&v).map_err(|e| {
                anyhow::anyhow!(
                    "corrupt directory record {}: {e}",
                    String::from_utf8_lossy(&k)
                )
            })
        })
        .collect()
}

fn read_all(store: &Store) -> anyhow::Result<Directory> {
    let mut d = Directory::default();
    for x in load_kind::<Domain>(store, "domain/")? {
        d.domains.insert(x.name.clone(), x);
    }
    for x in load_kind::<User>(store, "user/")? {
        d.users.insert(x.login.clone(), x);
    }
    for x in load_kind::<Group>(store, "group/")? {
        d.groups.insert(x.name.clone(), x);
    }
    for x in load_kind::<PublicMailbox>(store, "public/")? {
        d.public.insert(x.name.clone(), x);
    }
    for x in load_kind::<AddressEntry>(store, "address/")? {
        d.addresses.insert(x.key(), x);
    }
    if let Some(s) = store.get(CF_DIRECTORY, b"settings")? {
        d.settings = serde_json::from_slice(&s)
            .map_err(|e| anyhow::anyhow!("corrupt settings record: {e}"))?;
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap_eq(a: &Directory, b: &Directory) -> bool {
        a.domains == b.domains
            && a.users == b.users
            && a.groups == b.groups
            && a.public == b.public
            && a.addresses == b.addresses
            && a.settings == b.settings
    }

    #[test]
    fn incremental_snapshot_matches_a_full_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let h = DirectoryHandle::load(store.clone()).unwrap();
        let dom = |n: &str| Domain {
            name: n.into(),
            kind: DomainKind::Local,
            relay_host: None,
            bcc: None,
            accept_unknown: false,
            catch_all: None,
            dkim: None,
            legal_notice: None,
        };
        let user = |l: &str| User {
            login: l.into(),
            password_hash: String::new(),
            mail_access: true,
            quota_mb: None,
            keep_spam_days: None,
            spam_to_junk: None,
            forward: vec![],
            keep_copy: true,
        };
        h.add_domain(dom("a.test")).unwrap();
        h.add_domain(dom("b.test")).unwrap();
        h.add_user(user("alice"), "pw-pw").unwrap();
        h.add_user(user("bob"), "pw-pw").unwrap();
        h.put_group(
            Group {
                name: "g".into(),
                members: vec!["alice".into(), "bob".into()],
                address_enabled: true,
            },
            true,
        )
        .unwrap();
        h.put_public(
            PublicMailbox {
                name: "p".into(),
                owners: vec!["g".into()],
            },
            true,
        )
        .unwrap();
        let a = AddressEntry {
            local: "x".into(),
            domain: Some("b.test".into()),
            destinations: vec![Destination::Public("p".into())],
            internal: false,
        };
        h.put_address(a, true).unwrap();
        h.patch_settings(serde_json::json!({"max_recipients": 7}))
            .unwrap();
        h.remove_user("bob").unwrap();
        h.remove_domain("b.test").unwrap();
        assert!(
            h.snapshot().addresses.is_empty(),
            "domain removal drops its addresses"
        );
        assert_eq!(
            h.snapshot().groups.get("g").unwrap().members,
            vec!["alice".to_string()]
        );
        let reloaded = read_all(&store).unwrap();
        assert!(snap_eq(&h.snapshot(), &reloaded));
        assert_eq!(reloaded.settings.max_recipients, 7);
        // Bad input changes nothing, in memory or on disk.
        assert!(matches!(
            h.add_user(user("alice"), "pw-pw"),
            Err(AdminError::Conflict(_))
        ));
        assert!(matches!(
            h.put_group(
                Group {
                    name: "h".into(),
                    members: vec!["ghost".into()],
                    address_enabled: true
                },
                true
            ),
            Err(AdminError::NotFound(_))
        ));
        assert!(snap_eq(&h.snapshot(), &read_all(&store).unwrap()));
    }
}
