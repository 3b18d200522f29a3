//! The Bayes model in RocksDB ([`CF_BAYES`]): token counts and the learned totals updated
//! with a merge operator (deltas added inside RocksDB, so learners on several cores never
//! read-modify-write), the learned-message digests, and expiry of the least recently
//! learned tokens. Learning is written with a WAL fsync (nothing learned is lost or learned
//! twice across a restart); bulk learning can write relaxed and flush once at the end.
//!
//! Keys: `t` + token (8 octets, big-endian) → [`Entry`]; `T` → totals as an [`Entry`];
//! `d` + digest → class (`s`/`h`).

use crate::counts::Entry;
use crate::store::{CF_BAYES, Op, Store};
use postcore_scanner::bayes::{BayesStore, Change, Class, Counts, Token, Totals};

const TOKEN: u8 = b't';
const TOTALS: &[u8] = b"T";
const DIGEST: u8 = b'd';

fn token_key(t: Token) -> [u8; 9] {
    let mut k = [TOKEN; 9];
    k[1..].copy_from_slice(&t.to_be_bytes());
    k
}

fn digest_key(d: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(d.len() + 1);
    k.push(DIGEST);
    k.extend_from_slice(d);
    k
}

/// The server's Bayes store.
pub struct BayesDb {
    store: Store,
    durable: bool,
    cache: std::sync::Mutex<Cache>,
}

/// Tokens' stored entries as read, kept in this process: every learn goes through this
/// process (RocksDB admits one), so applying each write's deltas keeps them exact. Absent
/// tokens are kept too (most of a message's words are known, the rest absent each time).
#[derive(Default)]
struct Cache {
    entries: std::collections::HashMap<Token, Entry>,
    /// Bumped by every write: a read that missed before a write must not insert what it
    /// read after it.
    generation: u64,
}

/// Entries kept at most (about 24 MB); when full, the cache starts over.
const CACHE_MAX: usize = 1 << 20;

impl BayesDb {
    /// The model in `store`; every learn written with a WAL fsync.
    pub fn new(store: Store) -> BayesDb {
        BayesDb {
            store,
            durable: true,
            cache: Default::default(),
        }
    }

    /// The model in `store`, learns written without a flush each (bulk learning: call
    /// [`BayesDb::flush`] at the end).
    pub fn bulk(store: Store) -> BayesDb {
        BayesDb {
            store,
            durable: false,
            cache: Default::default(),
        }
    }

    /// Makes every relaxed write durable.
    pub fn flush(&self) -> Result<(), String> {
        self.store.flush().map_err(|e| format!("{e:#}"))
    }

    fn write(&self, ops: Vec<Op>) -> Result<(), String> {
        let r = if self.durable {
            self.store.commit_blocking(ops)
        } else {
            self.store.write_relaxed(ops)
        };
        r.map_err(|e| format!("bayes store: {e:#}"))
    }

    /// Drops every cached entry (after writes the cache cannot follow: clear, expiry).
    fn forget_cache(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.entries.clear();
            c.generation += 1;
        }
    }

    fn property(&self, name: &str) -> u64 {
        let db = self.store.db();
        db.cf_handle(CF_BAYES)
            .and_then(|h| db.property_int_value_cf(&h, name).ok().flatten())
            .unwrap_or(0)
    }
}

impl BayesStore for BayesDb {
    fn counts(&self, tokens: &[Token]) -> Result<Vec<Counts>, String> {
        let mut out = vec![Counts::default(); tokens.len()];
        let mut missing = Vec::new();
        let generation = {
            let c = self.cache.lock().map_err(|_| "bayes cache poisoned")?;
            for (i, t) in tokens.iter().enumerate() {
                match c.entries.get(t) {
                    Some(e) => out[i] = e.counts(),
                    None => missing.push(i),
                }
            }
            c.generation
        };
        if missing.is_empty() {
            return Ok(out);
        }
        let db = self.store.db();
        let h = db.cf_handle(CF_BAYES).ok_or("no bayes column family")?;
        let keys: Vec<[u8; 9]> = missing.iter().map(|i| token_key(tokens[*i])).collect();
        // Tokens come sorted from the tokenizer; big-endian keys sort the same way, which
        // spares RocksDB a sort of the batch.
        let sorted = keys.windows(2).all(|w| w[0] <= w[1]);
        let mut read = Vec::with_capacity(keys.len());
        for r in db.batched_multi_get_cf(&h, keys.iter(), sorted) {
            read.push(match r {
                Ok(Some(v)) => Entry::from_bytes(&v).unwrap_or_default(),
                Ok(None) => Entry::default(),
                Err(e) => return Err(format!("bayes store read: {e}")),
            });
        }
        let mut c = self.cache.lock().map_err(|_| "bayes cache poisoned")?;
        let keep = c.generation == generation;
        if keep && c.entries.len() + read.len() > CACHE_MAX {
            c.entries.clear();
        }
        for (i, e) in missing.iter().zip(read) {
            out[*i] = e.counts();
            if keep {
                c.entries.insert(tokens[*i], e);
            }
        }
        Ok(out)
    }

    fn totals(&self) -> Result<Totals, String> {
        let v = self
            .store
            .get(CF_BAYES, TOTALS)
            .map_err(|e| format!("bayes store read: {e:#}"))?;
        let e = v.as_deref().and_then(Entry::from_bytes).unwrap_or_default();
        Ok(Totals {
            spam: e.spam.max(0) as u64,
            ham: e.ham.max(0) as u64,
        })
    }

    fn learned(&self, digest: &[u8]) -> Result<Option<Class>, String> {
        let v = self
            .store
            .get(CF_BAYES, &digest_key(digest))
            .map_err(|e| format!("bayes store read: {e:#}"))?;
        Ok(v.and_then(|v| v.first().copied())
            .and_then(Class::from_byte))
    }

    fn apply(&self, c: &Change<'_>) -> Result<(), String> {
        self.apply_all(std::slice::from_ref(c))
    }

    fn apply_all(&self, changes: &[Change<'_>]) -> Result<(), String> {
        // Deltas added up per token first: one merge operand per distinct token instead of
        // one per token and message (bulk learning spent half its time inserting operands
        // into the memtable); one batch built against the column family handle directly.
        let mut sum: std::collections::HashMap<Token, Entry> = Default::default();
        let mut totals = Entry::default();
        for c in changes {
            for t in c.tokens {
                let e = sum.entry(*t).or_default();
                e.spam += c.spam;
                e.ham += c.ham;
                e.day = e.day.max(c.day);
            }
            totals.spam += c.spam;
            totals.ham += c.ham;
            totals.day = totals.day.max(c.day);
        }
        let db = self.store.db();
        let h = db.cf_handle(CF_BAYES).ok_or("no bayes column family")?;
        let mut batch = rocksdb::WriteBatch::default();
        for (t, e) in &sum {
            batch.merge_cf(&h, token_key(*t), e.to_bytes());
        }
        batch.merge_cf(&h, TOTALS, totals.to_bytes());
        for c in changes {
            match c.class {
                Some(class) => batch.put_cf(&h, digest_key(c.digest), [class.to_byte()]),
                None => batch.delete_cf(&h, digest_key(c.digest)),
            }
        }
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(self.durable);
        // The cache follows under its lock, so no read sees the store and the cache disagree
        // for long, and none that missed before inserts what it read.
        let mut cache = self.cache.lock().map_err(|_| "bayes cache poisoned")?;
        let written = db
            .write_opt(batch, &wo)
            .map_err(|e| format!("bayes store write: {e}"));
        cache.generation += 1;
        if written.is_err() {
            cache.entries.clear();
        }
        for (t, d) in &sum {
            if let Some(e) = cache.entries.get_mut(t) {
                e.spam += d.spam;
                e.ham += d.ham;
                e.day = e.day.max(d.day);
            }
        }
        written
    }

    fn clear(&self) -> Result<(), String> {
        let r = self.write(vec![Op::DeleteRange(CF_BAYES, vec![0], vec![0xff])]);
        self.forget_cache();
        r?;
        self.store.compact(CF_BAYES);
        Ok(())
    }

    fn token_count(&self) -> Result<u64, String> {
        Ok(self.property("rocksdb.estimate-num-keys"))
    }

    fn size_bytes(&self) -> u64 {
        self.property("rocksdb.total-sst-files-size") + self.property("rocksdb.size-all-mem-tables")
    }

    fn expire(&self, keep: u64) -> Result<u64, String> {
        // Every token with its day and count; zero-count ones go first whatever their day.
        let mut all: Vec<(u32, u32, [u8; 9])> = Vec::new();
        self.store
            .for_each_prefix(CF_BAYES, &[TOKEN], |k, v| {
                if let (Ok(key), Some(e)) = (<[u8; 9]>::try_from(k), Entry::from_bytes(v)) {
                    let n = e.counts();
                    let day = if n.spam + n.ham == 0 { 0 } else { e.day };
                    all.push((day, n.spam + n.ham, key));
                }
                Ok(())
            })
            .map_err(|e| format!("bayes store scan: {e:#}"))?;
        let zero = all.iter().filter(|e| e.1 == 0).count();
        let excess = (all.len() as u64).saturating_sub(keep) as usize;
        let remove = excess.max(zero);
        if remove == 0 {
            return Ok(0);
        }
        all.sort_unstable();
        let ops = all
            .iter()
            .take(remove)
            .map(|(_, _, k)| Op::Delete(CF_BAYES, k.to_vec()))
            .collect();
        let r = self.write(ops);
        self.forget_cache();
        r?;
        self.store.compact(CF_BAYES);
        Ok(remove as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use postcore_scanner::bayes::{Bayes, LearnOutcome};
    use std::sync::Arc;

    fn msg(i: u32, words: &str) -> Vec<u8> {
        format!(
            "From: a{i}@example.org\r\nMessage-ID: <{i}@x>\r\nSubject: s\r\n\r\n{words} {i}\r\n"
        )
        .into_bytes()
    }

    #[test]
    fn learns_merge_and_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let spam = msg(1, "cheap pills casino");
        {
            let store = Store::open(dir.path()).expect("open");
            let b = Bayes::new(Arc::new(BayesDb::new(store)));
            assert_eq!(b.learn(&spam, Class::Spam), Ok(LearnOutcome::Learned));
            assert_eq!(
                b.learn(&msg(2, "meeting agenda"), Class::Ham),
                Ok(LearnOutcome::Learned)
            );
            assert_eq!(
                b.learn(&spam, Class::Spam),
                Ok(LearnOutcome::AlreadyLearned)
            );
            // Relearned as ham, then back: merges of −1/+1 on both counts.
            assert_eq!(b.learn(&spam, Class::Ham), Ok(LearnOutcome::Relearned));
            assert_eq!(b.learn(&spam, Class::Spam), Ok(LearnOutcome::Relearned));
        }
        // The commit thread lets go of the database a moment after the last handle drops.
        let mut reopened = Store::open(dir.path());
        for _ in 0..100 {
            if reopened.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
            reopened = Store::open(dir.path());
        }
        let store = reopened.expect("reopen");
        let db = BayesDb::new(store);
        assert_eq!(db.totals(), Ok(Totals { spam: 1, ham: 1 }));
        let b = Bayes::new(Arc::new(db));
        assert_eq!(
            b.learn(&spam, Class::Spam),
            Ok(LearnOutcome::AlreadyLearned)
        );
        let (toks, _) = b.tokens_of(&spam);
        let counts = b.store().counts(&toks).expect("counts");
        // Tokens it shares with the ham message (the field names) have a ham count too.
        assert!(
            counts.iter().all(|c| c.spam == 1 && c.ham <= 1),
            "{counts:?}"
        );
        let only_spam = counts.iter().filter(|c| c.ham == 0).count() as u64;
        let casino = postcore_scanner::bayes::tokens::hash(b"casino");
        assert!(toks.contains(&casino));
        assert_eq!(b.forget(&spam), Ok(LearnOutcome::Forgotten));
        assert_eq!(b.store().counts(&[casino]), Ok(vec![Counts::default()]));
        // Zero-count tokens go at the next expiry; the ham message's stay.
        let removed = b.store().expire(1_000_000).expect("expire");
        assert_eq!(removed, only_spam);
        assert_eq!(b.store().token_count().map(|n| n > 0), Ok(true));
        b.store().clear().expect("clear");
        assert_eq!(b.store().totals(), Ok(Totals::default()));
    }

    #[test]
    fn a_bulk_batch_adds_up_per_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Arc::new(BayesDb::bulk(Store::open(dir.path()).expect("open")));
        let b = Bayes::new(db.clone());
        let items: Vec<(Vec<Token>, [u8; 16], Class)> = (0..4u32)
            .map(|i| {
                let raw = msg(i, "cheap pills");
                let (toks, d) = b.tokens_of(&raw);
                (toks, d, if i < 3 { Class::Spam } else { Class::Ham })
            })
            .collect();
        let out = b.learn_batch(&items).expect("batch");
        assert!(out.iter().all(|o| *o == LearnOutcome::Learned));
        db.flush().expect("flush");
        assert_eq!(db.totals(), Ok(Totals { spam: 3, ham: 1 }));
        let pills = postcore_scanner::bayes::tokens::hash(b"pills");
        assert_eq!(db.counts(&[pills]), Ok(vec![Counts { spam: 3, ham: 1 }]));
        assert_eq!(db.learned(&items[3].1), Ok(Some(Class::Ham)));
    }

    #[test]
    fn cached_counts_follow_every_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let db = Arc::new(BayesDb::new(store.clone()));
        let b = Bayes::new(db.clone());
        let spam = msg(1, "cheap pills");
        let (toks, _) = b.tokens_of(&spam);
        // Read first: every token absent, and cached so.
        assert!(
            db.counts(&toks)
                .expect("counts")
                .iter()
                .all(|c| *c == Counts::default())
        );
        // A new handle on the same store has an empty cache: it reads what is written.
        let check = |what: &str| {
            let fresh = BayesDb::new(store.clone());
            assert_eq!(db.counts(&toks), fresh.counts(&toks), "{what}");
        };
        b.learn(&spam, Class::Spam).expect("learn");
        check("learned");
        assert!(
            db.counts(&toks)
                .expect("counts")
                .iter()
                .all(|c| c.spam == 1)
        );
        b.learn(&spam, Class::Ham).expect("relearn");
        check("relearned");
        b.forget(&spam).expect("forget");
        check("forgotten");
        b.learn(&spam, Class::Spam).expect("learn again");
        db.expire(0).expect("expire");
        check("expired");
        b.learn(&spam, Class::Spam).expect("learn after expiry");
        db.clear().expect("clear");
        check("cleared");
    }

    #[test]
    fn merge_operands_combine_in_any_grouping() {
        // RocksDB may first combine operands without the base value: −1 then +1 on a
        // count of 1 must give 1 whichever way it groups them.
        let e = |s, h, d| {
            Entry {
                spam: s,
                ham: h,
                day: d,
            }
            .to_bytes()
            .to_vec()
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let k = token_key(7).to_vec();
        for v in [e(1, 0, 5), e(-1, 1, 6), e(1, -1, 7)] {
            store
                .write_relaxed(vec![Op::Merge(CF_BAYES, k.clone(), v)])
                .expect("merge");
        }
        let v = store.get(CF_BAYES, &k).expect("get").expect("value");
        assert_eq!(
            Entry::from_bytes(&v),
            Some(Entry {
                spam: 1,
                ham: 0,
                day: 7
            })
        );
    }
}
