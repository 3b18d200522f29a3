//! Running a `compcol` decoder over a packed member within a byte budget.

use compcol::{Decoder, Status};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Decodes `input` with `dec` until the stream ends, the input runs out or `cap` octets were
/// written; returns what was decoded (a damaged stream gives what came before the damage).
/// The decoder is a dependency fed with mail: a panic in it gives nothing, never takes the
/// scanner thread down.
pub fn drain<D: Decoder>(mut dec: D, input: &[u8], cap: usize) -> Vec<u8> {
    catch_unwind(AssertUnwindSafe(|| {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 << 10];
        let mut at = 0;
        while out.len() < cap {
            let n = (cap - out.len()).min(buf.len());
            let step = match input.get(at..).filter(|rest| !rest.is_empty()) {
                Some(rest) => dec.decode(rest, &mut buf[..n]),
                None => dec.finish(&mut buf[..n]),
            };
            let Ok((p, status)) = step else {
                break;
            };
            at += p.consumed;
            out.extend_from_slice(&buf[..p.written]);
            if status == Status::StreamEnd || (p.consumed == 0 && p.written == 0) {
                break;
            }
        }
        out
    }))
    .unwrap_or_default()
}
