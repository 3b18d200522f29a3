//! Hyperscan scratch space shared by scanning threads: each scan takes one from the pool (or
//! allocates one sized for every database it will scan) and gives it back afterwards.

use hyperscan::prelude::*;
use std::sync::Mutex;

/// A pool of scratch spaces for a fixed set of databases.
#[derive(Default)]
pub struct ScratchPool(Mutex<Vec<Scratch>>);

impl ScratchPool {
    /// Runs `f` with a scratch space valid for every database in `dbs`; `None` when none
    /// could be allocated (or `dbs` is empty).
    pub fn with<R>(&self, dbs: &[BlockDatabase], f: impl FnOnce(&Scratch) -> R) -> Option<R> {
        let scratch = self
            .0
            .lock()
            .ok()
            .and_then(|mut pool| pool.pop())
            .or_else(|| {
                // One scratch space serves every database it was sized for.
                let (first, rest) = dbs.split_first()?;
                let mut s = first.alloc_scratch().ok()?;
                for db in rest {
                    db.realloc_scratch(&mut s).ok()?;
                }
                Some(s)
            })?;
        let r = f(&scratch);
        if let Ok(mut pool) = self.0.lock() {
            pool.push(scratch);
        }
        Some(r)
    }
}
