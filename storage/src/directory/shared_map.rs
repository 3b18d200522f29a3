//! A string-keyed map whose clones share structure, for the directory snapshot.
//!
//! Every directory change publishes a new snapshot made from a clone of the current one. With
//! plain `BTreeMap`s that clone copied every domain, user and address, so provisioning n
//! addresses one by one cost O(n²) and left the allocator holding the churn (5,000 addresses:
//! RSS 24 → 141 MiB). Here the entries sit in [`SHARDS`] shards behind `Arc`s: a clone copies
//! the shard pointers, and a change copies only the one shard it touches.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Number of shards (a change copies about 1/SHARDS of the entries).
const SHARDS: usize = 64;

/// See the module documentation. Iteration is in key order, like a `BTreeMap`.
#[derive(Debug, Clone, PartialEq)]
pub struct SharedMap<V> {
    shards: Vec<Arc<BTreeMap<String, V>>>,
    len: usize,
}

impl<V> Default for SharedMap<V> {
    fn default() -> Self {
        SharedMap {
            shards: (0..SHARDS).map(|_| Arc::new(BTreeMap::new())).collect(),
            len: 0,
        }
    }
}

/// The shard of `key` (FNV-1a).
fn shard_of(key: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % SHARDS as u64) as usize
}

impl<V: Clone> SharedMap<V> {
    /// The value at `key`.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.shards[shard_of(key)].get(key)
    }

    /// The value at `key`, for changing it (copies its shard if a snapshot shares it).
    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        Arc::make_mut(&mut self.shards[shard_of(key)]).get_mut(key)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.shards[shard_of(key)].contains_key(key)
    }

    /// Inserts or replaces; returns the old value.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        let old = Arc::make_mut(&mut self.shards[shard_of(&key)]).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        let shard = &mut self.shards[shard_of(key)];
        if !shard.contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(shard).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &V)> {
        let mut all: Vec<(&String, &V)> = self.shards.iter().flat_map(|s| s.iter()).collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all.into_iter()
    }

    /// Keys in order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.iter().map(|(k, _)| k)
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &V> {
        self.iter().map(|(_, v)| v)
    }
}

impl<V: Clone> FromIterator<(String, V)> for SharedMap<V> {
    fn from_iter<I: IntoIterator<Item = (String, V)>>(iter: I) -> Self {
        let mut m = SharedMap::default();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_btreemap_and_clones_share_untouched_shards() {
        let mut m = SharedMap::default();
        let mut reference = BTreeMap::new();
        for i in (0..500).rev() {
            let k = format!("k{i:03}");
            assert_eq!(m.insert(k.clone(), i), reference.insert(k, i));
        }
        assert_eq!(m.insert("k007".into(), 7000), Some(7));
        reference.insert("k007".into(), 7000);
        assert_eq!(m.remove("k010"), reference.remove("k010"));
        assert_eq!(m.remove("absent"), None);
        assert_eq!(m.len(), reference.len());
        assert!(m.iter().eq(reference.iter()), "iteration is in key order");
        assert_eq!(m.get("k007"), Some(&7000));
        assert!(m.contains_key("k499") && !m.contains_key("k010"));

        // A snapshot is unaffected by later changes and shares every other shard.
        let snap = m.clone();
        *m.get_mut("k001").unwrap() += 1;
        assert_eq!((snap.get("k001"), m.get("k001")), (Some(&1), Some(&2)));
        let shared = snap
            .shards
            .iter()
            .zip(&m.shards)
            .filter(|(a, b)| Arc::ptr_eq(a, b))
            .count();
        assert_eq!(shared, SHARDS - 1);
        assert_ne!(snap, m);
        let collected: SharedMap<i32> = snap.iter().map(|(k, v)| (k.clone(), *v)).collect();
        assert_eq!(collected, snap);
    }
}
