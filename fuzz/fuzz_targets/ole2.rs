//! Any bytes as a compound file, an Ole10Native stream and a PowerPoint document stream: no
//! panic, and the budgets hold.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::ole2::{ole10native, ppt_objects, streams};

fuzz_target!(|data: &[u8]| {
    if let Some(s) = streams(data, 1 << 16, 64) {
        assert!(s.len() <= 64);
        assert!(s.iter().map(|(_, b)| b.len()).sum::<usize>() <= 1 << 16);
    }
    let _ = ole10native(data);
    for o in ppt_objects(data, 1 << 16) {
        assert!(o.len() <= data.len().max(1 << 16));
    }
});
