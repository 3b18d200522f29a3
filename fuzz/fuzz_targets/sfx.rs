//! Any bytes through the embedded-zip finder: no panic, records in order, never
//! overlapping, never more than asked for, each one readable or cleanly refused.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::sfx::{entry, read, zips};
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let found = zips(data, 4);
    assert!(found.len() <= 4);
    let mut end = 1;
    for r in found {
        assert!(r.start >= end && r.end <= data.len());
        end = r.end;
        if let Some(e) = entry(&data[r]) {
            let _ = read(&e, |rd| {
                let mut v = Vec::new();
                let _ = rd.take(1 << 20).read_to_end(&mut v);
            });
        }
    }
});
