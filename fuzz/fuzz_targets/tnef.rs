//! Any bytes through the TNEF reader (with the signature in front, so attributes are read):
//! no panic, every attachment a slice of the input, never more than asked for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::tnef::{MAGIC, attachments};

fuzz_target!(|data: &[u8]| {
    let mut f = MAGIC.to_vec();
    f.extend_from_slice(data);
    if let Some(a) = attachments(&f, 8) {
        assert!(a.len() <= 8);
        assert!(a.iter().all(|x| x.data.len() <= f.len()));
    }
    let _ = attachments(data, 8);
});
