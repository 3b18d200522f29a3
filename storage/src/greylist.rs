//! Greylisting triplets in RocksDB ([`CF_GREYLIST`]), with the system clock. Written without
//! a flush of their own: a triplet lost at a crash only means one more deferral. (Covered by
//! `tests/antispam.rs` through a running server; the rules are tested in the scanner crate
//! over a memory store with a clock the test moves.)

use crate::store::{CF_GREYLIST, Op, Store};
use postcore_scanner::greylist::{Entry, GreylistStore};

/// The server's greylist store.
pub struct GreylistDb {
    store: Store,
}

impl GreylistDb {
    /// Triplets in `store`.
    pub fn new(store: Store) -> GreylistDb {
        GreylistDb { store }
    }
}

impl GreylistStore for GreylistDb {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        let v = self.store.get(CF_GREYLIST, key).ok()??;
        Entry::from_bytes(&v)
    }

    fn put(&self, key: &[u8], entry: Entry) {
        let op = Op::Put(CF_GREYLIST, key.to_vec(), entry.to_bytes().to_vec());
        if let Err(e) = self.store.write_relaxed(vec![op]) {
            tracing::warn!("greylist: cannot store a triplet: {e:#}");
        }
    }

    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}
