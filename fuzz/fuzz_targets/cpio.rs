//! Any bytes through the cpio reader: no panic, and every member it returns lies inside the
//! archive.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((_, members)) = postcore_scanner::cpio::members(data, 1000) {
        let range = data.as_ptr_range();
        for m in members {
            let r = m.data.as_ptr_range();
            assert!(range.start <= r.start && r.end <= range.end);
        }
    }
});
