//! COMPRESS=DEFLATE (RFC 4978) for a connection: raw deflate (RFC 1951, no zlib header) in
//! both directions, inside TLS when TLS is on.
//!
//! Output is compressed per flush and ends with a sync flush (§4: the peer can decode
//! everything sent so far). The compressor is dropped after each flush and made again for
//! the next one: the stream stays valid (a new compressor refers only to what it has seen,
//! and the sync flush byte-aligns), and a connection between replies (an IDLE session for
//! hours) keeps no compressor state (≈ 300 KB) — only the decompressor's 32 KB window,
//! which the client's stream may still refer to. The price: no dictionary shared across
//! replies. Input is inflated at most [`INFLATE_STEP`] octets at a time,
//! so a small compressed burst cannot grow the input buffer past what the protocol reader
//! checks its limits on.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The most octets one inflate step adds to the input buffer.
pub const INFLATE_STEP: usize = 64 * 1024;

/// The deflate state of one connection.
pub struct Deflate {
    enc: Option<Box<Compress>>,
    dec: Box<Decompress>,
    /// Compressed input received and not inflated yet.
    pending: Vec<u8>,
}

impl Default for Deflate {
    fn default() -> Self {
        Deflate::new()
    }
}

impl Deflate {
    /// Fresh state for both directions.
    pub fn new() -> Deflate {
        Deflate {
            enc: None,
            dec: Box::new(Decompress::new(false)),
            pending: Vec::new(),
        }
    }

    /// Appends `data` compressed to `out`, ending with a sync flush.
    pub fn compress(&mut self, data: &[u8], out: &mut Vec<u8>) -> std::io::Result<()> {
        let enc = self
            .enc
            .get_or_insert_with(|| Box::new(Compress::new(Compression::default(), false)));
        let mut input = data;
        loop {
            out.reserve(input.len() / 2 + 128);
            let before = enc.total_in();
            enc.compress_vec(input, out, FlushCompress::Sync)
                .map_err(std::io::Error::other)?;
            let used = (enc.total_in() - before) as usize;
            input = &input[used..];
            // Done when all input is in and the flush fitted (spare room was left).
            if input.is_empty() && out.len() < out.capacity() {
                return Ok(());
            }
        }
    }

    /// Lets go of the compressor while nothing is being sent (see the module comment).
    pub fn rest(&mut self) {
        self.enc = None;
    }

    /// Whether compressed input is waiting to be inflated.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes compressed octets received from the peer.
    pub fn receive(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
    }

    /// Inflates waiting input into `out`, at most [`INFLATE_STEP`] octets; returns how many
    /// were added. An error (input that is not deflate) ends the connection.
    pub fn inflate(&mut self, out: &mut Vec<u8>) -> std::io::Result<usize> {
        let start = out.len();
        out.resize(start + INFLATE_STEP, 0);
        let (mut consumed, mut produced) = (0, 0);
        while consumed < self.pending.len() && produced < INFLATE_STEP {
            let (in_before, out_before) = (self.dec.total_in(), self.dec.total_out());
            let status = self
                .dec
                .decompress(
                    &self.pending[consumed..],
                    &mut out[start + produced..],
                    FlushDecompress::None,
                )
                .map_err(std::io::Error::other);
            let status = match status {
                Ok(s) => s,
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            };
            let used = (self.dec.total_in() - in_before) as usize;
            let made = (self.dec.total_out() - out_before) as usize;
            consumed += used;
            produced += made;
            if status == Status::StreamEnd {
                out.truncate(start);
                return Err(std::io::Error::other("deflate stream ended"));
            }
            if used == 0 && made == 0 {
                break;
            }
        }
        out.truncate(start + produced);
        self.pending.drain(..consumed);
        Ok(produced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate_all(d: &mut Deflate) -> Vec<u8> {
        let mut out = Vec::new();
        while d.has_pending() {
            if d.inflate(&mut out).expect("inflates") == 0 {
                break;
            }
        }
        out
    }

    #[test]
    fn both_directions_round_trip_across_compressor_restarts() {
        let (mut a, mut b) = (Deflate::new(), Deflate::new());
        let mut wire = Vec::new();
        let replies: Vec<Vec<u8>> = (0..5)
            .map(|i| {
                format!("* {i} FETCH (FLAGS (\\Seen))\r\n")
                    .repeat(50 + i)
                    .into_bytes()
            })
            .collect();
        let mut expect = Vec::new();
        for r in &replies {
            a.compress(r, &mut wire).expect("compress");
            a.rest();
            expect.extend_from_slice(r);
            // Each flush can be decoded on its own arrival.
            b.receive(&wire);
            wire.clear();
            let got = inflate_all(&mut b);
            assert_eq!(got, *r);
        }
        assert!(expect.len() > 5000);
    }

    #[test]
    fn a_bomb_comes_out_in_steps() {
        let mut a = Deflate::new();
        let mut wire = Vec::new();
        a.compress(&vec![b'a'; 10 * INFLATE_STEP], &mut wire)
            .expect("compress");
        assert!(wire.len() < 20_000, "{}", wire.len());
        let mut b = Deflate::new();
        b.receive(&wire);
        let mut out = Vec::new();
        let n = b.inflate(&mut out).expect("step");
        assert!(n <= INFLATE_STEP && n > 0, "{n}");
        let mut total = n;
        while b.has_pending() {
            let n = b.inflate(&mut out).expect("step");
            assert!(n <= INFLATE_STEP);
            total += n;
            if n == 0 {
                break;
            }
        }
        assert_eq!(total, 10 * INFLATE_STEP);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut b = Deflate::new();
        b.receive(&[0xff; 64]);
        let mut out = Vec::new();
        assert!(b.inflate(&mut out).is_err());
    }
}
