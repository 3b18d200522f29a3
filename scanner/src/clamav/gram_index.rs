//! A multi-literal matcher that builds in linear time, for the signature anchors.
//!
//! With a stride of `s`, each literal is filed under `s` consecutive 4-octet windows of its
//! own (the run least likely to occur in mail: few NULs, spaces or letters, buckets not yet
//! crowded), and the data is looked at every `s`-th position: whatever position a literal
//! sits at, exactly one of its filed windows starts on a position looked at. A blocked Bloom
//! filter (three bits of one 64-bit word per window) turns most positions away; a hit is
//! confirmed in an open-addressed table of the windows and against the literal's own octets.
//! It reports exactly the literals that occur in the data, as Hyperscan's literal mode does,
//! but builds the anchors of 200,000 signatures in about 0.15 s and 40 MiB where Hyperscan's
//! literal compiler takes seconds and hundreds of MiB, and scans them faster at stride 8
//! (bench/RESULTS.md, "The anchors without a compile, session 18").

use std::collections::BTreeSet;

/// Shortest literal the index takes (one window).
pub const MIN_LEN: usize = 4;

/// A window whose best score is this or more (a run of NULs, say) is too common in files to
/// file a literal under: such literals are left to Hyperscan.
pub const HOT: u32 = 28;

/// Fibonacci hashing: the high bits of the product pick the filter word and the slot, three
/// groups of middle bits the three bits set in that word.
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// `Entry::packed` of an empty slot.
const EMPTY: u32 = u32::MAX;

/// Filter bits per filed window (about), as a power of two.
const FILTER_BITS_LOG: u32 = 4;

/// The hash of a window.
fn hash(g: u32) -> u64 {
    u64::from(g).wrapping_mul(MUL)
}

/// `1 << i` for each bit of a word, looked up: without BMI2 a shift by a computed count costs
/// several instructions, and the scan does three per position.
const BIT: [u64; 64] = {
    let mut t = [0u64; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = 1 << i;
        i += 1;
    }
    t
};

/// The three bits of a filter word a hash stands for.
#[inline(always)]
fn word_bits(h: u64) -> u64 {
    BIT[((h >> 14) & 63) as usize] | BIT[((h >> 20) & 63) as usize] | BIT[((h >> 26) & 63) as usize]
}

/// One literal to index: its octets, whether ASCII letters match in either case, its id.
#[derive(Debug, Clone)]
pub struct Literal<'a> {
    /// The octets.
    pub bytes: &'a [u8],
    /// ASCII letters match in either case.
    pub caseless: bool,
    /// Reported when the literal occurs.
    pub id: u32,
}

/// Where a literal's octets are kept.
#[derive(Debug, Clone, Copy)]
struct Stored {
    start: u32,
    len: u16,
    caseless: bool,
    id: u32,
}

/// A filed window: its four octets, and the literal it stands for with where in the literal
/// it sits (`lit << 6 | at`).
#[derive(Debug, Clone, Copy)]
struct Entry {
    gram: u32,
    packed: u32,
}

impl Entry {
    fn lit(self) -> usize {
        (self.packed >> 6) as usize
    }

    fn at(self) -> usize {
        (self.packed & 63) as usize
    }
}

/// Most literals one index holds (the packed entry's 26 bits, one value kept for `EMPTY`).
pub const MAX_LITERALS: usize = (1 << 26) - 1;

/// Largest stride: a window is filed at most 64 octets into its literal.
pub const MAX_STRIDE: usize = 8;

/// The built index (immutable, shared by every scanning thread).
///
/// With a stride of `s`, only every `s`-th position of the data is looked at, and each
/// literal is filed under `s` consecutive windows of its own: whichever position the
/// literal occurs at, exactly one of them starts on a position looked at. Literals shorter
/// than `MIN_LEN + s - 1` octets cannot be filed so and are left out (see [`GramIndex::takes`]).
#[derive(Debug, Default)]
pub struct GramIndex {
    stride: usize,
    /// A blocked Bloom filter: a word per hash, three bits in it per filed window.
    bits: Vec<u64>,
    word_shift: u32,
    /// Open addressing, linear probing; an empty slot has `packed == EMPTY`.
    slots: Vec<Entry>,
    slot_shift: u32,
    lits: Vec<Stored>,
    pool: Vec<u8>,
}

/// How common an octet is in mail and its attachments (higher: more common).
fn commonness(b: u8) -> u32 {
    match b {
        0x00 => 10,
        0xff | b' ' => 6,
        b'a'..=b'z' | b'\r' | b'\n' | b'\t' => 4,
        b'0'..=b'9' | b'A'..=b'Z' | 0x21..=0x7e => 3,
        0x01..=0x1f => 2,
        _ => 1,
    }
}

/// How likely a window is to occur in scanned data; letters count more in a caseless
/// literal (each doubles the windows filed for it).
pub fn window_score(w: &[u8], caseless: bool) -> u32 {
    let mut s: u32 = w.iter().map(|&b| commonness(b)).sum();
    if w.iter().all(|&b| b == w[0]) {
        s += 12;
    }
    if caseless {
        s += 2 * w.iter().filter(|b| b.is_ascii_alphabetic()).count() as u32;
    }
    s
}

/// The best window of `bytes` (the lowest score) and its score.
pub fn best_window(bytes: &[u8], caseless: bool) -> Option<(usize, u32)> {
    bytes
        .windows(MIN_LEN)
        .enumerate()
        .map(|(i, w)| (i, window_score(w, caseless)))
        .min_by_key(|&(i, s)| (s, i))
}

fn gram_of(w: &[u8]) -> u32 {
    u32::from_le_bytes([w[0], w[1], w[2], w[3]])
}

/// Every case variant of a window (itself alone when `caseless` is off).
fn variants(w: &[u8], caseless: bool) -> Vec<u32> {
    let mut out = vec![gram_of(w)];
    if caseless {
        for (i, b) in w.iter().enumerate() {
            if b.is_ascii_alphabetic() {
                let flip = 0x20u32 << (8 * i);
                let more: Vec<u32> = out.iter().map(|g| g ^ flip).collect();
                out.extend(more);
            }
        }
    }
    out
}

fn log2_ceil(n: usize) -> u32 {
    usize::BITS - n.saturating_sub(1).leading_zeros()
}

fn bucket_of(g: u32, bucket_log: u32) -> usize {
    (hash(g) >> (64 - bucket_log)) as usize
}

impl GramIndex {
    /// Whether a literal of `len` octets can be filed in an index of `stride`.
    pub fn takes(len: usize, stride: usize) -> bool {
        len >= MIN_LEN + stride.max(1) - 1 && len <= usize::from(u16::MAX)
    }

    /// Builds an index that looks at every `stride`-th position (1 to [`MAX_STRIDE`]).
    /// Literals it cannot take ([`GramIndex::takes`]) and those past the first
    /// [`MAX_LITERALS`] are ignored: the caller keeps them elsewhere.
    pub fn build(literals: &[Literal<'_>], stride: usize) -> GramIndex {
        let stride = stride.clamp(1, MAX_STRIDE);
        let usable: Vec<&Literal<'_>> = literals
            .iter()
            .filter(|l| Self::takes(l.bytes.len(), stride))
            .take(MAX_LITERALS)
            .collect();
        if usable.is_empty() {
            return GramIndex::default();
        }
        // About one bucket (for the crowding count that spreads windows) and 16 filter bits
        // per filed window.
        let bucket_log = log2_ceil(usable.len() * stride).clamp(8, 24);
        let word_log = (bucket_log + FILTER_BITS_LOG).clamp(12, 29) - 6;
        let mut load = vec![0u16; 1 << bucket_log];
        let mut lits = Vec::with_capacity(usable.len());
        let mut pool = Vec::new();
        let mut grams: Vec<Entry> = Vec::with_capacity(usable.len() * stride);
        for l in usable {
            let first = Self::choose(l, stride, &load, bucket_log);
            let lit = lits.len() as u32;
            for at in first..first + stride {
                for gram in variants(&l.bytes[at..at + MIN_LEN], l.caseless) {
                    let b = bucket_of(gram, bucket_log);
                    load[b] = load[b].saturating_add(1);
                    grams.push(Entry {
                        gram,
                        packed: lit << 6 | at as u32,
                    });
                }
            }
            lits.push(Stored {
                start: pool.len() as u32,
                len: l.bytes.len() as u16,
                caseless: l.caseless,
                id: l.id,
            });
            pool.extend_from_slice(l.bytes);
        }
        // At least a quarter more slots than windows: probes stay short (a false positive probes
        // a cache line or two).
        let slot_log = log2_ceil(grams.len() + grams.len() / 4).clamp(8, 28);
        let mut slots = vec![
            Entry {
                gram: 0,
                packed: EMPTY
            };
            1 << slot_log
        ];
        let mut bits = vec![0u64; 1 << word_log];
        for e in grams {
            let h = hash(e.gram);
            let mut i = (h >> (64 - slot_log)) as usize;
            while slots[i].packed != EMPTY {
                i = (i + 1) & (slots.len() - 1);
            }
            slots[i] = e;
            bits[(h >> (64 - word_log)) as usize] |= word_bits(h);
        }
        GramIndex {
            stride,
            bits,
            word_shift: 64 - word_log,
            slots,
            slot_shift: 64 - slot_log,
            lits,
            pool,
        }
    }

    /// Where the `stride` windows a literal is filed under begin: the least common run of
    /// them, crowded buckets counting against it.
    fn choose(l: &Literal<'_>, stride: usize, load: &[u16], bucket_log: u32) -> usize {
        let cost: Vec<u32> = l
            .bytes
            .windows(MIN_LEN)
            .take(64)
            .map(|w| {
                let crowd = u32::from(
                    load.get(bucket_of(gram_of(w), bucket_log))
                        .copied()
                        .unwrap_or(0),
                );
                window_score(w, l.caseless) + 2 * crowd
            })
            .collect();
        cost.windows(stride)
            .enumerate()
            .map(|(i, run)| {
                (
                    i,
                    run.iter().copied().max().unwrap_or(0) * 4 + run.iter().sum::<u32>(),
                )
            })
            .min_by_key(|&(i, s)| (s, i))
            .map_or(0, |(i, _)| i)
    }

    /// Every how many positions the data is looked at.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Number of literals indexed.
    pub fn len(&self) -> usize {
        self.lits.len()
    }

    /// Whether no literal is indexed.
    pub fn is_empty(&self) -> bool {
        self.lits.is_empty()
    }

    /// Memory held, in octets.
    pub fn bytes(&self) -> usize {
        self.bits.len() * 8
            + self.slots.len() * std::mem::size_of::<Entry>()
            + self.lits.len() * std::mem::size_of::<Stored>()
            + self.pool.len()
    }

    /// Adds to `ids` the id of every literal that occurs in `data`.
    pub fn scan(&self, data: &[u8], ids: &mut BTreeSet<u32>) {
        if self.lits.is_empty() || data.len() < MIN_LEN {
            return;
        }
        let ends = data.len() - MIN_LEN + 1;
        let step = self.stride;
        let mut pos = 0;
        while pos < ends {
            let g = gram_of(&data[pos..]);
            let h = hash(g);
            if self.passes(h) {
                self.confirm(g, h, pos, data, ids);
            }
            pos += step;
        }
    }

    /// Whether the filter lets a window with hash `h` through.
    #[inline(always)]
    fn passes(&self, h: u64) -> bool {
        let want = word_bits(h);
        self.bits
            .get((h >> self.word_shift) as usize)
            .is_some_and(|w| w & want == want)
    }

    /// The literals filed under window `g` found at `pos` that occur around it.
    #[inline(never)]
    fn confirm(&self, g: u32, h: u64, pos: usize, data: &[u8], ids: &mut BTreeSet<u32>) {
        let mask = self.slots.len() - 1;
        let mut i = (h >> self.slot_shift) as usize;
        loop {
            let e = self.slots[i & mask];
            i += 1;
            if e.packed == EMPTY {
                break;
            }
            if e.gram != g {
                continue;
            }
            let l = self.lits[e.lit()];
            let Some(start) = pos.checked_sub(e.at()) else {
                continue;
            };
            let Some(seen) = data.get(start..start + usize::from(l.len)) else {
                continue;
            };
            let want = &self.pool[l.start as usize..l.start as usize + usize::from(l.len)];
            let equal = if l.caseless {
                seen.eq_ignore_ascii_case(want)
            } else {
                seen == want
            };
            if equal {
                ids.insert(l.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    /// Every id whose literal occurs in `data`, found the slow way.
    fn naive(lits: &[(Vec<u8>, bool)], data: &[u8]) -> BTreeSet<u32> {
        lits.iter()
            .enumerate()
            .filter(|(_, (l, caseless))| {
                data.windows(l.len()).any(|w| {
                    if *caseless {
                        w.eq_ignore_ascii_case(l)
                    } else {
                        w == l.as_slice()
                    }
                })
            })
            .map(|(i, _)| i as u32)
            .collect()
    }

    fn index(lits: &[(Vec<u8>, bool)], stride: usize) -> GramIndex {
        let refs: Vec<Literal<'_>> = lits
            .iter()
            .enumerate()
            .map(|(i, (b, c))| Literal {
                bytes: b,
                caseless: *c,
                id: i as u32,
            })
            .collect();
        GramIndex::build(&refs, stride)
    }

    #[test]
    fn finds_exactly_what_a_naive_search_finds() {
        // A small alphabet so that windows collide, literals overlap and planted copies
        // sit at the very start and end of the data.
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let alphabet = b"aAbB\x00\xff ";
        for round in 0..400 {
            let stride = [1, 2, 4, 8][round % 4];
            let lits: Vec<(Vec<u8>, bool)> = (0..40)
                .map(|_| {
                    let n = MIN_LEN + stride - 1 + (rng.next() % 9) as usize;
                    (rng.bytes(n, alphabet), rng.next().is_multiple_of(3))
                })
                .collect();
            let size = (rng.next() % 300) as usize;
            let mut data = rng.bytes(size, alphabet);
            for _ in 0..3 {
                let (l, caseless) = &lits[(rng.next() % lits.len() as u64) as usize];
                let mut l = l.clone();
                if *caseless {
                    l.iter_mut()
                        .for_each(|b| *b ^= 0x20 * u8::from(b.is_ascii_alphabetic()));
                }
                let at = (rng.next() % (data.len() as u64 + 1)) as usize;
                data.splice(at..at, l);
            }
            let ix = index(&lits, stride);
            assert_eq!(ix.len(), lits.len());
            let mut got = BTreeSet::new();
            ix.scan(&data, &mut got);
            assert_eq!(got, naive(&lits, &data), "round {round}, stride {stride}");
        }
    }

    #[test]
    fn literals_at_the_edges_and_shorter_data() {
        let lits = vec![(b"abcd".to_vec(), false), (b"XYZW12".to_vec(), true)];
        let ix = index(&lits, 1);
        for (data, want) in [
            (&b"abcd"[..], vec![0]),
            (b"abc", vec![]),
            (b"xyzw12abcd", vec![0, 1]),
            (b"--xYzW12", vec![1]),
            (b"ABCD", vec![]),
        ] {
            let mut got = BTreeSet::new();
            ix.scan(data, &mut got);
            assert_eq!(got.into_iter().collect::<Vec<_>>(), want, "{data:?}");
        }
    }

    #[test]
    fn short_and_empty_sets_index_nothing() {
        let ix = index(&[(b"abc".to_vec(), false)], 1);
        assert!(ix.is_empty());
        // Too short for the stride: left to the caller.
        assert!(!GramIndex::takes(6, 4) && GramIndex::takes(7, 4));
        assert!(index(&[(b"abcdef".to_vec(), false)], 4).is_empty());
        let mut got = BTreeSet::new();
        ix.scan(b"abcabc", &mut got);
        assert!(got.is_empty());
    }

    #[test]
    fn every_stride_finds_a_literal_at_every_alignment() {
        let lit = b"\x8a\x91\xc3\x07QRSTUVW".to_vec();
        for stride in [1, 2, 4, 8] {
            let ix = index(&[(lit.clone(), false)], stride);
            for at in 0..20 {
                let mut data = vec![b'.'; 40];
                data[at..at + lit.len()].copy_from_slice(&lit);
                let mut got = BTreeSet::new();
                ix.scan(&data, &mut got);
                assert_eq!(got.len(), 1, "stride {stride}, at {at}");
                // One octet changed: gone.
                data[at + lit.len() - 1] = b'.';
                let mut got = BTreeSet::new();
                ix.scan(&data, &mut got);
                assert!(got.is_empty(), "stride {stride}, at {at}");
            }
        }
    }

    #[test]
    fn windows_of_nuls_score_hot_and_rare_octets_win() {
        assert!(window_score(&[0, 0, 0, 0], false) >= HOT);
        let (at, _) = best_window(b"\0\0\0\0\x8a\x91\xc3\x07  ", false).expect("window");
        assert_eq!(at, 4);
    }
}
