//! Sieve scripts and Sieve's memory in RocksDB ([`CF_SIEVE`]): each owner's scripts by name
//! and which one is active (RFC 5804's model: several scripts, at most one active), the
//! administrator's global scripts (owner [`GLOBAL`], active as "before" and "after"), the
//! vacation replies sent (RFC 5230 §4.1: once per sender per period) and the duplicate ids
//! seen (RFC 7352).
//!
//! Keys: `s\0<owner>\0<name>` → source; `c\0<owner>\0<name>` → the compiled form (opaque
//! here; written with the source in one batch, so the two never disagree); `F` → the format
//! number every compiled form was last written in; `a\0<owner>` → active name (`a\0@global\0before`,
//! `a\0@global\0after`); `v\0<owner>\0<handle>\0<sender>` and `d\0<owner>\0<id>` → expiry
//! (u64 BE, seconds since the epoch); `f\0<message-id>\0<target>` → expiry, for forwarded
//! copies (sent once even when the sender retries after a crash).

use crate::store::{CF_SIEVE, Op, Store};
use anyhow::{Result, bail};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// The owner name of the administrator's global scripts (not a valid login).
pub const GLOBAL: &str = "@global";

/// Longest script name, in octets (RFC 5804 §1.6 lets the server choose).
pub const MAX_NAME: usize = 128;

/// One stored script as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptInfo {
    /// Name.
    pub name: String,
    /// Size of the source in octets.
    pub size: usize,
    /// Whether it is the owner's active script.
    pub active: bool,
}

/// The Sieve store.
#[derive(Clone)]
pub struct SieveStore {
    store: Store,
    /// The active-script keys (`a\0…`) as stored, absent ones too: every delivery reads
    /// three of them (the global scripts before and after, the user's), which were three
    /// RocksDB reads. Every write of such a key goes through [`SieveStore::write_active`],
    /// which holds this lock across the write, and a miss is read under it too, so the
    /// cache never holds a value older than the store's.
    active: Arc<Mutex<HashMap<Vec<u8>, Option<String>>>>,
}

/// Most active-script keys kept (then the cache starts over): one per owner read.
const MAX_CACHED_ACTIVE: usize = 100_000;

fn key(kind: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![kind];
    for p in parts {
        k.push(0);
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// The key of the global script run before (`after` false) or after the users' scripts.
fn global_key(after: bool) -> Vec<u8> {
    key(b'a', &[GLOBAL, if after { "after" } else { "before" }])
}

/// RFC 5804 §1.6: a script name is UTF-8 without control characters (and here without `/`,
/// so it can name a file on import or export), 1 to [`MAX_NAME`] octets.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && !name
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\u{2028}' || c == '\u{2029}')
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl SieveStore {
    /// Scripts in `store`.
    pub fn new(store: Store) -> SieveStore {
        SieveStore {
            store,
            active: Arc::default(),
        }
    }

    fn active_cache(&self) -> MutexGuard<'_, HashMap<Vec<u8>, Option<String>>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value of active-script key `k`, from the cache or the store.
    fn read_active(&self, k: Vec<u8>) -> Result<Option<String>> {
        let mut cache = self.active_cache();
        if let Some(v) = cache.get(&k) {
            return Ok(v.clone());
        }
        let v = self
            .store
            .get(CF_SIEVE, &k)?
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        if cache.len() >= MAX_CACHED_ACTIVE {
            cache.clear();
        }
        cache.insert(k, v.clone());
        Ok(v)
    }

    /// Commits `ops`, among them writes of the active-script keys `changed` (key and new
    /// value); the cache learns them once the commit succeeded, under the lock held across
    /// it.
    fn write_active(&self, ops: Vec<Op>, changed: Vec<(Vec<u8>, Option<String>)>) -> Result<()> {
        let mut cache = self.active_cache();
        let res = self.store.commit_blocking(ops);
        for (k, v) in changed {
            match &res {
                Ok(()) => {
                    cache.insert(k, v);
                }
                // Whatever the store holds now is read again.
                Err(_) => {
                    cache.remove(&k);
                }
            }
        }
        res
    }

    /// A script's source.
    pub fn get(&self, owner: &str, name: &str) -> Result<Option<String>> {
        Ok(self
            .store
            .get(CF_SIEVE, &key(b's', &[owner, name]))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// A script's compiled form, as [`Self::put`] stored it.
    pub fn get_compiled(&self, owner: &str, name: &str) -> Result<Option<Vec<u8>>> {
        self.store.get(CF_SIEVE, &key(b'c', &[owner, name]))
    }

    /// Stores (or replaces) a script with its compiled form, in one write; durable when it
    /// returns.
    pub fn put(&self, owner: &str, name: &str, source: &str, compiled: &[u8]) -> Result<()> {
        if !valid_name(name) {
            bail!("invalid script name");
        }
        self.store.commit_blocking(vec![
            Op::Put(
                CF_SIEVE,
                key(b's', &[owner, name]),
                source.as_bytes().to_vec(),
            ),
            Op::Put(CF_SIEVE, key(b'c', &[owner, name]), compiled.to_vec()),
        ])
    }

    /// The format number the compiled forms were last (re)written in, if recorded.
    pub fn compiled_format(&self) -> Result<Option<u16>> {
        Ok(self
            .store
            .get(CF_SIEVE, b"F")?
            .and_then(|v| Some(u16::from_be_bytes([*v.first()?, *v.get(1)?]))))
    }

    /// Every stored script as (owner, name, source), for recompiling them all.
    pub fn all_sources(&self) -> Result<Vec<(String, String, String)>> {
        let mut out = Vec::new();
        for (k, v) in self.store.scan_prefix(CF_SIEVE, b"s\0")? {
            let mut parts = k[2..].splitn(2, |b| *b == 0);
            if let (Some(o), Some(n)) = (parts.next(), parts.next()) {
                out.push((
                    String::from_utf8_lossy(o).into_owned(),
                    String::from_utf8_lossy(n).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                ));
            }
        }
        Ok(out)
    }

    /// Replaces the compiled forms (`owner`, `name`, bytes) and records `format` as the one
    /// they are all in; durable when it returns.
    pub fn set_compiled(&self, forms: Vec<(String, String, Vec<u8>)>, format: u16) -> Result<()> {
        let mut ops: Vec<Op> = forms
            .into_iter()
            .map(|(o, n, b)| Op::Put(CF_SIEVE, key(b'c', &[&o, &n]), b))
            .collect();
        ops.push(Op::Put(
            CF_SIEVE,
            b"F".to_vec(),
            format.to_be_bytes().to_vec(),
        ));
        self.store.commit_blocking(ops)
    }

    /// The owner's scripts, by name.
    pub fn list(&self, owner: &str) -> Result<Vec<ScriptInfo>> {
        let active = self.active(owner)?;
        let mut prefix = key(b's', &[owner]);
        prefix.push(0);
        let mut out: Vec<ScriptInfo> = self
            .store
            .scan_prefix(CF_SIEVE, &prefix)?
            .into_iter()
            .map(|(k, v)| {
                let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
                ScriptInfo {
                    active: active.as_deref() == Some(name.as_str()),
                    name,
                    size: v.len(),
                }
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The active script's name (for [`GLOBAL`]: use [`Self::global_active`]).
    pub fn active(&self, owner: &str) -> Result<Option<String>> {
        self.read_active(key(b'a', &[owner]))
    }

    /// Makes `name` the active script, or with `None` deactivates (RFC 5804 §2.8: SETACTIVE "").
    pub fn set_active(&self, owner: &str, name: Option<&str>) -> Result<()> {
        self.set_active_key(key(b'a', &[owner]), owner, name)
    }

    /// The global script that runs before (`after` false) or after every user's script.
    pub fn global_active(&self, after: bool) -> Result<Option<String>> {
        self.read_active(global_key(after))
    }

    /// Sets (or with `None` clears) the global script run before or after the users'.
    pub fn set_global_active(&self, after: bool, name: Option<&str>) -> Result<()> {
        self.set_active_key(global_key(after), GLOBAL, name)
    }

    fn set_active_key(&self, k: Vec<u8>, owner: &str, name: Option<&str>) -> Result<()> {
        let op = match name {
            Some(n) => {
                if self.get(owner, n)?.is_none() {
                    bail!("no script named \"{n}\"");
                }
                Op::Put(CF_SIEVE, k.clone(), n.as_bytes().to_vec())
            }
            None => Op::Delete(CF_SIEVE, k.clone()),
        };
        self.write_active(vec![op], vec![(k, name.map(str::to_string))])
    }

    /// Whether `name` is active in any role for `owner`.
    pub fn is_active(&self, owner: &str, name: &str) -> Result<bool> {
        if owner == GLOBAL {
            return Ok(self.global_active(false)?.as_deref() == Some(name)
                || self.global_active(true)?.as_deref() == Some(name));
        }
        Ok(self.active(owner)?.as_deref() == Some(name))
    }

    /// Deletes a script; the active one cannot be (RFC 5804 §2.10).
    pub fn delete(&self, owner: &str, name: &str) -> Result<bool> {
        if self.get(owner, name)?.is_none() {
            return Ok(false);
        }
        if self.is_active(owner, name)? {
            bail!("script \"{name}\" is active");
        }
        self.store.commit_blocking(vec![
            Op::Delete(CF_SIEVE, key(b's', &[owner, name])),
            Op::Delete(CF_SIEVE, key(b'c', &[owner, name])),
        ])?;
        Ok(true)
    }

    /// Renames a script, keeping it active if it was (RFC 5804 §2.11.1); refuses when the new
    /// name is taken or the old one missing.
    pub fn rename(&self, owner: &str, old: &str, new: &str) -> Result<()> {
        if !valid_name(new) {
            bail!("invalid script name");
        }
        let Some(src) = self.get(owner, old)? else {
            bail!("no script named \"{old}\"")
        };
        if self.get(owner, new)?.is_some() {
            bail!("a script named \"{new}\" exists");
        }
        let compiled = self.get_compiled(owner, old)?.unwrap_or_default();
        let mut ops = vec![
            Op::Delete(CF_SIEVE, key(b's', &[owner, old])),
            Op::Delete(CF_SIEVE, key(b'c', &[owner, old])),
            Op::Put(CF_SIEVE, key(b's', &[owner, new]), src.into_bytes()),
            Op::Put(CF_SIEVE, key(b'c', &[owner, new]), compiled),
        ];
        // The roles `old` holds: the owner's active script, or for [`GLOBAL`] the script
        // before and the one after the users'.
        let roles = if owner == GLOBAL {
            vec![global_key(false), global_key(true)]
        } else {
            vec![key(b'a', &[owner])]
        };
        let mut changed = Vec::new();
        for k in roles {
            if self.read_active(k.clone())?.as_deref() == Some(old) {
                ops.push(Op::Put(CF_SIEVE, k.clone(), new.as_bytes().to_vec()));
                changed.push((k, Some(new.to_string())));
            }
        }
        self.write_active(ops, changed)
    }

    /// Whether a vacation reply with `handle` went to `sender` within its period; if not, it
    /// is recorded now for `period` seconds (durably: a reply is never sent twice because a
    /// crash forgot it, RFC 5230 §4.1).
    pub fn vacation_claim(
        &self,
        owner: &str,
        handle: &str,
        sender: &str,
        period: u64,
    ) -> Result<bool> {
        let k = key(b'v', &[owner, handle, &sender.to_ascii_lowercase()]);
        let now = now();
        if self.unexpired(&k, now)? {
            return Ok(false);
        }
        let until = now.saturating_add(period);
        self.store
            .commit_blocking(vec![Op::Put(CF_SIEVE, k, until.to_be_bytes().to_vec())])?;
        Ok(true)
    }

    /// Whether duplicate id `id` was recorded for `owner` and has not expired (RFC 7352).
    pub fn duplicate_seen(&self, owner: &str, id: &str) -> bool {
        self.unexpired(&key(b'd', &[owner, id]), now())
            .unwrap_or(false)
    }

    /// Records duplicate id `id` for `seconds`; with `last`, the period restarts even if it
    /// was recorded (RFC 7352 §3.4), otherwise an unexpired record keeps its expiry.
    pub fn duplicate_track(&self, owner: &str, id: &str, seconds: u64, last: bool) -> Result<()> {
        let k = key(b'd', &[owner, id]);
        let now = now();
        if !last && self.unexpired(&k, now)? {
            return Ok(());
        }
        let until = now.saturating_add(seconds);
        self.store
            .write_relaxed(vec![Op::Put(CF_SIEVE, k, until.to_be_bytes().to_vec())])
    }

    /// Whether the message `message_id` was already forwarded to `target` (a sender's retry
    /// after a crash must not forward it twice).
    pub fn forward_seen(&self, message_id: &str, target: &str) -> bool {
        let k = key(b'f', &[message_id, &target.to_ascii_lowercase()]);
        self.unexpired(&k, now()).unwrap_or(false)
    }

    /// The record that the message was forwarded to `target`, kept `seconds`: written in the
    /// same commit as the forwarded copy.
    pub fn forward_op(message_id: &str, target: &str, seconds: u64) -> Op {
        let k = key(b'f', &[message_id, &target.to_ascii_lowercase()]);
        Op::Put(
            CF_SIEVE,
            k,
            now().saturating_add(seconds).to_be_bytes().to_vec(),
        )
    }

    fn unexpired(&self, k: &[u8], now: u64) -> Result<bool> {
        Ok(self
            .store
            .get(CF_SIEVE, k)?
            .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
            .is_some_and(|b| u64::from_be_bytes(b) > now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_active_rename_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SieveStore::new(Store::open(dir.path()).expect("open"));
        s.put("alice", "work", "keep;", b"W").expect("put");
        s.put("alice", "home", "discard;", b"H").expect("put");
        s.put("bob", "x", "keep;", b"X").expect("put");
        assert!(s.put("alice", "a/b", "keep;", b"").is_err());
        assert!(s.set_active("alice", Some("nosuch")).is_err());
        s.set_active("alice", Some("work")).expect("activate");
        let l = s.list("alice").expect("list");
        assert_eq!(
            l.iter()
                .map(|i| (i.name.as_str(), i.active))
                .collect::<Vec<_>>(),
            [("home", false), ("work", true)]
        );
        assert!(
            s.delete("alice", "work").is_err(),
            "the active script stays"
        );
        s.rename("alice", "work", "job").expect("rename");
        assert_eq!(s.active("alice").expect("active").as_deref(), Some("job"));
        assert_eq!(
            s.get_compiled("alice", "job").expect("c"),
            Some(b"W".to_vec())
        );
        assert_eq!(s.get_compiled("alice", "work").expect("c"), None);
        assert!(s.rename("alice", "home", "job").is_err());
        assert!(s.delete("alice", "home").expect("delete"));
        assert!(!s.delete("alice", "home").expect("gone"));
        assert_eq!(s.get_compiled("alice", "home").expect("c"), None);
        s.set_active("alice", None).expect("deactivate");
        assert_eq!(s.active("alice").expect("active"), None);
        s.put(GLOBAL, "spam", "keep;", b"G").expect("global");
        s.set_global_active(false, Some("spam")).expect("before");
        assert!(s.delete(GLOBAL, "spam").is_err());
        assert_eq!(s.global_active(false).expect("g").as_deref(), Some("spam"));
        let mut all = s.all_sources().expect("all");
        all.sort();
        assert_eq!(
            all,
            [
                (GLOBAL.into(), "spam".into(), "keep;".into()),
                ("alice".into(), "job".into(), "keep;".into()),
                ("bob".into(), "x".into(), "keep;".into()),
            ]
        );
        assert_eq!(s.compiled_format().expect("f"), None);
        s.set_compiled(vec![("bob".into(), "x".into(), b"X2".to_vec())], 7)
            .expect("recompiled");
        assert_eq!(s.compiled_format().expect("f"), Some(7));
        assert_eq!(s.get_compiled("bob", "x").expect("c"), Some(b"X2".to_vec()));
    }

    #[test]
    fn vacation_once_per_period_and_duplicates() {
        let dir = tempfile::tempdir().expect("tempdir");
        let s = SieveStore::new(Store::open(dir.path()).expect("open"));
        assert!(
            s.vacation_claim("bob", "h", "A@x.test", 3600)
                .expect("claim")
        );
        assert!(
            !s.vacation_claim("bob", "h", "a@x.test", 3600)
                .expect("again")
        );
        assert!(
            s.vacation_claim("bob", "other", "a@x.test", 3600)
                .expect("other handle")
        );
        assert!(
            s.vacation_claim("bob", "h", "b@x.test", 0)
                .expect("zero period")
        );
        assert!(
            s.vacation_claim("bob", "h", "b@x.test", 0)
                .expect("expired at once")
        );
        assert!(!s.duplicate_seen("bob", "id1"));
        s.duplicate_track("bob", "id1", 60, false).expect("track");
        assert!(s.duplicate_seen("bob", "id1"));
        assert!(!s.duplicate_seen("alice", "id1"));
    }

    /// What the store itself holds for every active-script key, read without the cache.
    fn stored_roles(store: &Store) -> Vec<Option<Vec<u8>>> {
        [
            key(b'a', &["alice"]),
            key(b'a', &["bob"]),
            global_key(false),
            global_key(true),
        ]
        .iter()
        .map(|k| store.get(CF_SIEVE, k).expect("get"))
        .collect()
    }

    fn cached_roles(s: &SieveStore) -> Vec<Option<Vec<u8>>> {
        let v = |r: Result<Option<String>>| r.expect("read").map(String::into_bytes);
        vec![
            v(s.active("alice")),
            v(s.active("bob")),
            v(s.global_active(false)),
            v(s.global_active(true)),
        ]
    }

    #[test]
    fn cached_active_scripts_follow_every_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let s = SieveStore::new(store.clone());
        let other = s.clone();
        for owner in ["alice", "bob", GLOBAL] {
            for name in ["one", "two"] {
                s.put(owner, name, "keep;", b"K").expect("put");
            }
        }
        // Read once while absent, so that the absence is cached too.
        assert_eq!(cached_roles(&s), vec![None; 4]);
        let steps: [&dyn Fn(&SieveStore); 7] = [
            &|s| s.set_active("alice", Some("one")).expect("set"),
            &|s| s.set_global_active(false, Some("two")).expect("before"),
            &|s| s.set_global_active(true, Some("two")).expect("after"),
            // An active global script renamed stays active in both roles.
            &|s| s.rename(GLOBAL, "two", "three").expect("rename global"),
            &|s| s.rename("alice", "one", "uno").expect("rename"),
            &|s| assert!(s.set_active("bob", Some("nosuch")).is_err()),
            &|s| s.set_active("alice", None).expect("clear"),
        ];
        for (i, step) in steps.iter().enumerate() {
            // Written through one handle, read through the other, which shares the cache.
            step(if i % 2 == 0 { &s } else { &other });
            assert_eq!(cached_roles(&other), stored_roles(&store), "after step {i}");
            assert_eq!(cached_roles(&s), stored_roles(&store), "after step {i}");
        }
        assert_eq!(
            s.global_active(true).expect("after").as_deref(),
            Some("three")
        );
    }

    #[test]
    fn concurrent_activations_leave_the_cache_as_the_store() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let s = SieveStore::new(store.clone());
        for name in ["a", "b"] {
            s.put("alice", name, "keep;", b"K").expect("put");
        }
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let s = s.clone();
                std::thread::spawn(move || {
                    for i in 0..200 {
                        let name = [Some("a"), Some("b"), None][(t + i) % 3];
                        s.set_active("alice", name).expect("set");
                        let _ = s.active("alice").expect("read");
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let stored = store.get(CF_SIEVE, &key(b'a', &["alice"])).expect("get");
        assert_eq!(
            s.active("alice").expect("read").map(String::into_bytes),
            stored
        );
    }
}
