//! Any bytes through the SZDD expander (with the magic in front, so the LZSS decoder is
//! reached): no panic, and never more than the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::szdd::{MAGIC, expand};

fuzz_target!(|data: &[u8]| {
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(data);
    if let Some(out) = expand(&f, 1 << 16) {
        assert!(out.len() <= 1 << 16);
    }
    let _ = expand(data, 1 << 16);
});
