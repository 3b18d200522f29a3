//! Spam/ham count pairs as RocksDB stores them (the Bayes model's tokens and totals), and
//! the merge operator that adds deltas to them inside RocksDB.

use postcore_scanner::bayes::Counts;

/// A token's (or the totals') spam and ham counts and the day it was last learned; also the
/// form of a merge operand, whose counts are deltas. 12 octets little-endian.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Entry {
    /// Spam count (a delta in an operand).
    pub spam: i32,
    /// Ham count (a delta in an operand).
    pub ham: i32,
    /// Day last learned (days since 1970).
    pub day: u32,
}

impl Entry {
    /// The stored form.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&self.spam.to_le_bytes());
        b[4..8].copy_from_slice(&self.ham.to_le_bytes());
        b[8..].copy_from_slice(&self.day.to_le_bytes());
        b
    }

    /// Reads [`Entry::to_bytes`]'s form.
    pub fn from_bytes(b: &[u8]) -> Option<Entry> {
        Some(Entry {
            spam: i32::from_le_bytes(b.get(..4)?.try_into().ok()?),
            ham: i32::from_le_bytes(b.get(4..8)?.try_into().ok()?),
            day: u32::from_le_bytes(b.get(8..12)?.try_into().ok()?),
        })
    }

    /// The counts, never below zero.
    pub fn counts(self) -> Counts {
        Counts {
            spam: self.spam.max(0) as u32,
            ham: self.ham.max(0) as u32,
        }
    }
}

/// Merge operator of [`CF_BAYES`]: counts added, the latest day kept. Associative (RocksDB
/// also uses it to combine operands with no base value), so nothing is clamped here: reads
/// clamp at zero. Digest values are plain puts and never merged.
pub fn add_merge(
    _key: &[u8],
    existing: Option<&[u8]>,
    operands: &rocksdb::MergeOperands,
) -> Option<Vec<u8>> {
    let mut acc = existing.and_then(Entry::from_bytes).unwrap_or_default();
    for op in operands {
        if let Some(d) = Entry::from_bytes(op) {
            acc.spam = acc.spam.saturating_add(d.spam);
            acc.ham = acc.ham.saturating_add(d.ham);
            acc.day = acc.day.max(d.day);
        }
    }
    Some(acc.to_bytes().to_vec())
}
