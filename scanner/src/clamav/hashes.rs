//! Hash signatures in tables keyed by digest (`.hdb`, `.hsb`, and the `.fp`/`.sfp` allow
//! lists), filled line by line as the files are read: a million MD5 signatures cost their
//! digests and names, with no intermediate list.

use md5::{Digest, Md5};
use std::cell::OnceCell;

/// The digest algorithm of a hash signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashKind {
    /// MD5 (32 hex digits).
    Md5,
    /// SHA-1 (40 hex digits).
    Sha1,
    /// SHA-256 (64 hex digits).
    Sha256,
}

/// A hash signature: a whole file with this digest (and size, unless `None` for `*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashSig {
    /// Digest algorithm.
    pub kind: HashKind,
    /// The digest.
    pub digest: Vec<u8>,
    /// File size, or `None` for any size (`*`, FLEVEL 73 and later).
    pub size: Option<u64>,
    /// Signature name.
    pub name: String,
}

/// Names stored end to end (a million hash signatures cost their bytes, not a `String` each).
#[derive(Default)]
pub struct Names {
    text: String,
    ends: Vec<u32>,
}

impl Names {
    /// Number of names stored.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no name is stored.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Appends `other`'s names after these: its index `i` becomes `self.len() + i`.
    fn append(&mut self, other: Names) {
        let base = self.text.len() as u32;
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    /// Stores a name; returns its index.
    pub fn push(&mut self, n: &str) -> u32 {
        self.text.push_str(n);
        self.ends.push(self.text.len() as u32);
        (self.ends.len() - 1) as u32
    }

    /// The name at `index`.
    pub fn get(&self, i: u32) -> &str {
        let i = i as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        self.text.get(start..self.ends[i] as usize).unwrap_or("")
    }
}

/// Hash signatures of one digest length: exact size, or any size.
struct HashTable<const N: usize> {
    /// (digest, size or `ANY`, name), sorted by digest once loading ends: 32 bytes an MD5
    /// entry, no hash-map slack.
    entries: Vec<([u8; N], u64, u32)>,
    sorted: bool,
    /// Distinct sizes with an entry (sorted), and whether any entry is for every size: a
    /// digest is computed only for data whose size some entry names.
    sizes: Vec<u64>,
    any_size: bool,
}

/// The size field of a `*` entry.
const ANY: u64 = u64::MAX;

impl<const N: usize> Default for HashTable<N> {
    fn default() -> Self {
        HashTable {
            entries: Vec::new(),
            sorted: true,
            sizes: Vec::new(),
            any_size: false,
        }
    }
}

impl<const N: usize> HashTable<N> {
    /// Takes `other`'s entries, their name indexes moved up by `base`.
    fn append(&mut self, other: HashTable<N>, base: u32) {
        if !other.entries.is_empty() {
            self.entries
                .extend(other.entries.into_iter().map(|(d, s, n)| (d, s, n + base)));
            self.sorted = false;
        }
    }

    fn insert(&mut self, h: &HashSig, name: u32) {
        let Ok(d) = <[u8; N]>::try_from(h.digest.as_slice()) else {
            return;
        };
        self.entries.push((d, h.size.unwrap_or(ANY), name));
        self.sorted = false;
    }

    fn finish(&mut self) {
        if !self.sorted {
            self.entries.sort_unstable_by_key(|e| e.0);
            self.entries.shrink_to_fit();
            self.sorted = true;
            self.any_size = self.entries.iter().any(|e| e.1 == ANY);
            self.sizes = self
                .entries
                .iter()
                .map(|e| e.1)
                .filter(|&s| s != ANY)
                .collect();
            self.sizes.sort_unstable();
            self.sizes.dedup();
            self.sizes.shrink_to_fit();
        }
    }

    /// Whether data of `size` bytes could match an entry (worth its digest).
    fn wants(&self, size: u64) -> bool {
        self.any_size || self.sizes.binary_search(&size).is_ok()
    }

    fn find(&self, d: &[u8], size: u64) -> Option<u32> {
        let d = <[u8; N]>::try_from(d).ok()?;
        let start = self.entries.partition_point(|e| e.0 < d);
        let same = self.entries[start..].iter().take_while(|e| e.0 == d);
        let mut any = None;
        for e in same {
            if e.1 == size {
                return Some(e.2);
            }
            if e.1 == ANY {
                any = Some(e.2);
            }
        }
        any
    }
}

/// Hash signatures (or allow-list entries) by digest, with their names.
#[derive(Default)]
pub struct Hashes {
    md5: HashTable<16>,
    sha1: HashTable<20>,
    sha256: HashTable<32>,
    names: Names,
}

impl Hashes {
    /// Sorts the tables for lookup (call once loading is over; `find` on an unsorted table
    /// sorts nothing and may miss).
    pub fn finish(&mut self) {
        self.md5.finish();
        self.sha1.finish();
        self.sha256.finish();
    }

    /// True when no signature was added.
    pub fn is_empty(&self) -> bool {
        self.md5.entries.is_empty()
            && self.sha1.entries.is_empty()
            && self.sha256.entries.is_empty()
    }

    /// Takes every signature of `other` (read from a later file).
    pub fn append(&mut self, other: Hashes) {
        let base = self.names.len() as u32;
        self.md5.append(other.md5, base);
        self.sha1.append(other.sha1, base);
        self.sha256.append(other.sha256, base);
        self.names.append(other.names);
    }

    /// Adds a signature.
    pub fn insert(&mut self, h: &HashSig) {
        let name = self.names.push(&h.name);
        match h.kind {
            HashKind::Md5 => self.md5.insert(h, name),
            HashKind::Sha1 => self.sha1.insert(h, name),
            HashKind::Sha256 => self.sha256.insert(h, name),
        }
    }

    /// The name of the first entry matching the object whose digests `d` computes (shared
    /// with other tables: each digest is computed once per object).
    pub fn find_in(&self, d: &Digests<'_>) -> Option<&str> {
        self.find_index(d).map(|i| self.names.get(i))
    }

    fn find_index(&self, d: &Digests<'_>) -> Option<u32> {
        let size = d.data.len() as u64;
        if self.md5.wants(size)
            && let Some(n) = self.md5.find(d.md5(), size)
        {
            return Some(n);
        }
        if self.sha1.wants(size)
            && let Some(n) = self.sha1.find(d.sha1(), size)
        {
            return Some(n);
        }
        if self.sha256.wants(size)
            && let Some(n) = self.sha256.find(d.sha256(), size)
        {
            return Some(n);
        }
        None
    }
}

/// The digests of one object, each computed on first use and kept: the allow list and the
/// hash signatures ask for the same ones (MD5 of a 100 KiB part was computed three times).
pub struct Digests<'a> {
    data: &'a [u8],
    md5: OnceCell<[u8; 16]>,
    sha1: OnceCell<[u8; 20]>,
    sha256: OnceCell<[u8; 32]>,
}

impl<'a> Digests<'a> {
    /// Nothing computed yet.
    pub fn new(data: &'a [u8]) -> Digests<'a> {
        Digests {
            data,
            md5: OnceCell::new(),
            sha1: OnceCell::new(),
            sha256: OnceCell::new(),
        }
    }

    fn md5(&self) -> &[u8; 16] {
        self.md5.get_or_init(|| Md5::digest(self.data).into())
    }

    fn sha1(&self) -> &[u8; 20] {
        self.sha1
            .get_or_init(|| sha1::Sha1::digest(self.data).into())
    }

    fn sha256(&self) -> &[u8; 32] {
        self.sha256
            .get_or_init(|| sha2::Sha256::digest(self.data).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_the_algorithms_and_one_object_serves_every_table() {
        let data = b"some attachment";
        let d = Digests::new(data);
        assert_eq!(d.md5()[..], Md5::digest(data)[..]);
        assert_eq!(d.sha1()[..], sha1::Sha1::digest(data)[..]);
        assert_eq!(d.sha256()[..], sha2::Sha256::digest(data)[..]);
        // Computed once: the same array is handed out again.
        assert!(std::ptr::eq(d.md5(), d.md5()));

        let mut allow = Hashes::default();
        let mut sigs = Hashes::default();
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let line = |name: &str| {
            let l = format!("{}:*:{name}:73", hex(&sha2::Sha256::digest(data)));
            crate::clamav::signatures::parse_hash_line(&l)
                .expect("hsb line")
                .expect("for this engine")
        };
        allow.insert(&line("Allowed"));
        sigs.insert(&line("Bad"));
        allow.finish();
        sigs.finish();
        assert_eq!(allow.find_in(&d), Some("Allowed"));
        assert_eq!(sigs.find_in(&d), Some("Bad"));
        assert_eq!(sigs.find_in(&Digests::new(b"other")), None);
    }
}
