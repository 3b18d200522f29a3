//! The LZ77 coder MEW stores its sections with (a relative of aPLib's, shared with FSG):
//! one literal octet first, then a bit stream interleaved with octets — a 0 bit is a
//! literal; `1 0` a match whose length is an Elias-gamma number and whose distance is a
//! gamma-coded high part plus one octet (or the previous distance again); `1 1 0` a short
//! match (distance in the octet's upper seven bits, length 2 or 3 in its low bit; distance 0
//! ends the stream); `1 1 1` a one-octet match up to 15 back, or a zero octet.
//!
//! Source and destination are regions of one buffer (the program's memory image), as in the
//! packer's own loader, and every read and write is checked against its own region.

use super::Mem;

/// Where a stream ended: the offset after its last source octet and after its last output.
pub(super) struct End {
    pub src: i64,
    pub dst: i64,
}

/// The bit reader: an octet register refilled from the source when only its end marker is
/// left (Petite's coder reads its bits the same way).
pub(super) struct Bits {
    reg: u8,
    /// The next octet to read (the caller's literals are read from here too).
    pub src: i64,
    src_start: i64,
    src_len: i64,
}

impl Bits {
    /// A reader at `at`, refilling only from the `len` octets at `start`.
    pub(super) fn new(start: i64, len: i64, at: i64) -> Bits {
        Bits {
            reg: 0x80,
            src: at,
            src_start: start,
            src_len: len,
        }
    }

    pub(super) fn bit(&mut self, m: &Mem) -> Option<u32> {
        let old = self.reg;
        self.reg = self.reg.wrapping_mul(2);
        if old & 0x7f != 0 {
            return Some(u32::from(old >> 7));
        }
        // The refill may not take the source's last octet (the loader's bound).
        if self.src < self.src_start || self.src >= self.src_start + self.src_len - 1 {
            return None;
        }
        let b = m.u8(self.src)?;
        self.src += 1;
        self.reg = b.wrapping_mul(2).wrapping_add(1);
        Some(u32::from(b >> 7))
    }

    /// Elias gamma: a leading 1, then (bit, continue) pairs.
    fn gamma(&mut self, m: &Mem) -> Option<u32> {
        let mut v: u32 = 1;
        loop {
            v = v.wrapping_mul(2).wrapping_add(self.bit(m)?);
            if self.bit(m)? == 0 {
                return Some(v);
            }
        }
    }

    fn octet(&mut self, m: &Mem) -> Option<u8> {
        if self.src >= self.src_start + self.src_len {
            return None;
        }
        let b = m.u8(self.src)?;
        self.src += 1;
        Some(b)
    }
}

/// Decompresses the stream at `src` (`src_len` octets available) to `dst` (`dst_len`
/// octets of room), both offsets into `m`.
pub(super) fn decompress(
    m: &mut Mem,
    src: i64,
    src_len: i64,
    dst: i64,
    dst_len: i64,
) -> Option<End> {
    let in_dst = |at: i64, n: i64| n > 0 && at >= dst && n <= dst_len && at - dst <= dst_len - n;
    let first = m.u8(src)?;
    m.set_u8(dst, first)?;
    let mut r = Bits::new(src, src_len, src + 1);
    let mut out = dst + 1;
    let mut last_distance: u32 = 0;
    // Whether the previous step was a literal (a gamma-coded match then counts one less).
    let mut after_literal: u32 = 1;
    loop {
        if r.bit(m)? == 0 {
            if !in_dst(out, 1) || r.src < src || r.src >= src + src_len {
                return None;
            }
            let b = m.u8(r.src)?;
            r.src += 1;
            m.set_u8(out, b)?;
            out += 1;
            after_literal = 1;
            continue;
        }
        let (len, distance) = if r.bit(m)? == 0 {
            let high = r.gamma(m)?.wrapping_sub(1).wrapping_sub(after_literal);
            after_literal = 0;
            if high == 0 {
                (r.gamma(m)?, last_distance)
            } else {
                let low = u32::from(r.octet(m)?);
                let distance = low.wrapping_add(high.wrapping_sub(1) << 8);
                let mut len = r.gamma(m)?;
                if distance >= 0x7d00 {
                    len = len.wrapping_add(1);
                }
                if distance >= 0x500 {
                    len = len.wrapping_add(1);
                }
                if distance <= 0x7f {
                    len = len.wrapping_add(2);
                }
                last_distance = distance;
                (len, distance)
            }
        } else if r.bit(m)? == 0 {
            let b = r.octet(m)?;
            let distance = u32::from(b >> 1);
            if distance == 0 {
                return Some(End {
                    src: r.src,
                    dst: out,
                });
            }
            last_distance = distance;
            after_literal = 0;
            (u32::from(b & 1) + 2, distance)
        } else {
            after_literal = 1;
            let mut d: u32 = 0x10;
            while d < 0x100 {
                d = d * 2 + r.bit(m)?;
            }
            let distance = d & 0xff;
            if distance == 0 {
                if out >= dst + dst_len {
                    return None;
                }
                m.set_u8(out, 0)?;
                out += 1;
                continue;
            }
            (1, distance)
        };
        let (n, back) = (i64::from(len), i64::from(distance));
        if !in_dst(out, n) || !in_dst(out - back, n) {
            return None;
        }
        // Byte by byte: a match may overlap what it writes.
        for _ in 0..n {
            let b = m.u8(out - back)?;
            m.set_u8(out, b)?;
            out += 1;
        }
    }
}
