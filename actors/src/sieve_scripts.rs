//! The users' and global Sieve scripts as delivery runs them: each loaded from its stored
//! compiled form (compiled once, at upload — [`sieve::stored`]) and cached by owner and name
//! until that form changes, and the order they run in at delivery.

use postcore_protocol::sieve::{self, Script, stored};
use postcore_storage::sieve::{GLOBAL, SieveStore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// One script of a delivery's chain: owner, name, and the compiled script or why it fails.
pub type ChainEntry = (String, String, Result<Arc<Script>, String>);

/// (owner, name) → (the stored form it was loaded from, the script).
type Cache = HashMap<(String, String), (Vec<u8>, Arc<Script>)>;

/// Compiled scripts, cached by owner and name, loaded again when the stored form changes.
pub struct SieveScripts {
    /// The stored scripts.
    pub store: SieveStore,
    cache: Mutex<Cache>,
}

impl SieveScripts {
    /// Scripts in `store`. When the stored forms were written by another [`stored::FORMAT`]
    /// (an upgrade changed the program's shape), every script is compiled again from its
    /// source first, so delivery never has to.
    pub fn open(store: SieveStore) -> anyhow::Result<Self> {
        if store.compiled_format()? != Some(stored::FORMAT) {
            let mut forms = Vec::new();
            for (owner, name, src) in store.all_sources()? {
                match sieve::compile(&src) {
                    Ok(s) => forms.push((owner, name, stored::encode(&s))),
                    // A script that an older build accepted and this one does not stays
                    // stored; delivery logs the error and keeps the message.
                    Err(e) => tracing::warn!(
                        owner,
                        script = name,
                        "sieve: script \"{name}\" of {owner} no longer compiles: {e}"
                    ),
                }
            }
            tracing::info!(
                "sieve: {} stored scripts compiled for format {}",
                forms.len(),
                stored::FORMAT
            );
            store.set_compiled(forms, stored::FORMAT)?;
        }
        Ok(SieveScripts {
            store,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The compiled script `name` of `owner`; `Ok(None)` when there is none.
    pub fn compiled(&self, owner: &str, name: &str) -> Result<Option<Arc<Script>>, String> {
        let loaded = self
            .store
            .get_compiled(owner, name)
            .map_err(|e| format!("{e:#}"))?;
        let k = (owner.to_string(), name.to_string());
        if let (Some(bytes), Ok(cache)) = (&loaded, self.cache.lock())
            && let Some((seen, s)) = cache.get(&k)
            && seen == bytes
        {
            return Ok(Some(s.clone()));
        }
        let script = match loaded.as_deref().map(stored::decode) {
            Some(Ok(s)) => s,
            // No usable stored form (a script that no longer compiles, or damage): the
            // source decides, and its error is the one reported.
            other => {
                let Some(src) = self.store.get(owner, name).map_err(|e| format!("{e:#}"))? else {
                    return Ok(None);
                };
                if let Some(Err(e)) = other {
                    tracing::warn!(owner, script = name, "sieve: {e}; compiling the source");
                }
                sieve::compile(&src).map_err(|e| e.to_string())?
            }
        };
        let script = Arc::new(script);
        if let (Some(bytes), Ok(mut cache)) = (loaded, self.cache.lock()) {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(k, (bytes, script.clone()));
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
