//! The users' and global Sieve scripts, compiled once and cached by owner and name (a script
//! is compiled again only when its source changed), and the order they run in at delivery.

use postcore_protocol::sieve::{self, Script};
use postcore_storage::sieve::{GLOBAL, SieveStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One script of a delivery's chain: owner, name, and the compiled script or why it fails.
pub type ChainEntry = (String, String, Result<Arc<Script>, String>);

/// (owner, name) → (the source it was compiled from, the script).
type Cache = HashMap<(String, String), (String, Arc<Script>)>;

/// Compiled scripts, cached by owner and name, recompiled when the source changes.
pub struct SieveScripts {
    /// The stored scripts.
    pub store: SieveStore,
    cache: Mutex<Cache>,
}

impl SieveScripts {
    /// Scripts in `store`.
    pub fn new(store: SieveStore) -> Self {
        SieveScripts {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The compiled script `name` of `owner`; `Ok(None)` when there is none.
    pub fn compiled(&self, owner: &str, name: &str) -> Result<Option<Arc<Script>>, String> {
        let Some(src) = self.store.get(owner, name).map_err(|e| format!("{e:#}"))? else {
            return Ok(None);
        };
        let k = (owner.to_string(), name.to_string());
        if let Ok(cache) = self.cache.lock()
            && let Some((seen, s)) = cache.get(&k)
            && *seen == src
        {
            return Ok(Some(s.clone()));
        }
        let script = Arc::new(sieve::compile(&src).map_err(|e| e.to_string())?);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(k, (src, script.clone()));
        }
        Ok(Some(script))
    }

    /// The scripts that run for `user`, in order: global before, the user's active, global
    /// after — each with its name.
    pub fn chain(&self, user: &str) -> Vec<ChainEntry> {
        let mut out = Vec::new();
        let mut add = |owner: &str, name: Option<String>| {
            if let Some(n) = name {
                match self.compiled(owner, &n) {
                    Ok(Some(s)) => out.push((owner.to_string(), n, Ok(s))),
                    Ok(None) => {}
                    Err(e) => out.push((owner.to_string(), n, Err(e))),
                }
            }
        };
        add(GLOBAL, self.store.global_active(false).ok().flatten());
        add(user, self.store.active(user).ok().flatten());
        add(GLOBAL, self.store.global_active(true).ok().flatten());
        out
    }
}
