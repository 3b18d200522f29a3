//! Greylisting triplets in RocksDB ([`CF_GREYLIST`]), with the system clock. Written without
//! a flush of their own: a triplet lost at a crash only means one more deferral.

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

#[cfg(test)]
mod tests {
    use super::*;
    use postcore_scanner::ScanContext;
    use postcore_scanner::greylist::{GreylistPolicy, Outcome, check};

    #[test]
    fn triplets_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ctx = ScanContext::for_test(&["a@example.test"]);
        let p = GreylistPolicy::default();
        {
            let db = GreylistDb::new(Store::open(dir.path()).expect("open"));
            assert!(matches!(check(&db, &ctx, &p), Outcome::Defer(_)));
            let k = postcore_scanner::greylist::key(ctx.client_ip, &ctx.mail_from, &ctx.rcpts[0]);
            assert!(db.get(&k).is_some());
        }
        let db = GreylistDb::new(Store::open(dir.path()).expect("reopen"));
        // Seen before, still inside the delay: deferred with less than the full delay left.
        match check(&db, &ctx, &p) {
            Outcome::Defer(left) => assert!(left <= 300),
            o => panic!("{o:?}"),
        }
    }
}
