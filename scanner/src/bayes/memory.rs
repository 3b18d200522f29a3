//! A [`BayesStore`] in memory: for tests and for cross-validation, where a model is built
//! and thrown away for each fold.

use super::{BayesStore, Change, Class, Counts, Token, Totals};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct Model {
    tokens: HashMap<Token, (Counts, u32)>,
    totals: Totals,
    digests: HashMap<Vec<u8>, Class>,
}

/// The model in a hash map.
#[derive(Default)]
pub struct MemoryStore {
    model: Mutex<Model>,
}

impl MemoryStore {
    /// An empty model.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Model) -> T) -> Result<T, String> {
        let mut m = self
            .model
            .lock()
            .map_err(|_| "bayes memory store poisoned")?;
        Ok(f(&mut m))
    }
}

/// `n` moved by `d`, never below zero.
fn add(n: u32, d: i32) -> u32 {
    n.saturating_add_signed(d)
}

/// `n` moved by `d`, never below zero.
fn add64(n: u64, d: i32) -> u64 {
    n.saturating_add_signed(i64::from(d))
}

impl BayesStore for MemoryStore {
    fn counts(&self, tokens: &[Token]) -> Result<Vec<Counts>, String> {
        self.with(|m| {
            tokens
                .iter()
                .map(|t| m.tokens.get(t).map(|e| e.0).unwrap_or_default())
                .collect()
        })
    }

    fn totals(&self) -> Result<Totals, String> {
        self.with(|m| m.totals)
    }

    fn learned(&self, digest: &[u8]) -> Result<Option<Class>, String> {
        self.with(|m| m.digests.get(digest).copied())
    }

    fn apply(&self, c: &Change<'_>) -> Result<(), String> {
        self.with(|m| {
            for t in c.tokens {
                let e = m.tokens.entry(*t).or_default();
                e.0.spam = add(e.0.spam, c.spam);
                e.0.ham = add(e.0.ham, c.ham);
                e.1 = e.1.max(c.day);
                if e.0.spam == 0 && e.0.ham == 0 {
                    m.tokens.remove(t);
                }
            }
            m.totals.spam = add64(m.totals.spam, c.spam);
            m.totals.ham = add64(m.totals.ham, c.ham);
            match c.class {
                Some(class) => m.digests.insert(c.digest.to_vec(), class),
                None => m.digests.remove(c.digest),
            };
        })
    }

    fn clear(&self) -> Result<(), String> {
        self.with(|m| *m = Model::default())
    }

    fn token_count(&self) -> Result<u64, String> {
        self.with(|m| m.tokens.len() as u64)
    }

    fn size_bytes(&self) -> u64 {
        self.with(|m| (m.tokens.len() * 20 + m.digests.len() * 24) as u64)
            .unwrap_or(0)
    }

    fn expire(&self, keep: u64) -> Result<u64, String> {
        self.with(|m| {
            let excess = (m.tokens.len() as u64).saturating_sub(keep) as usize;
            if excess == 0 {
                return 0;
            }
            let mut order: Vec<(u32, u32, Token)> = m
                .tokens
                .iter()
                .map(|(t, (c, day))| (*day, c.spam + c.ham, *t))
                .collect();
            order.sort_unstable();
            for (_, _, t) in order.into_iter().take(excess) {
                m.tokens.remove(&t);
            }
            excess as u64
        })
    }
}
