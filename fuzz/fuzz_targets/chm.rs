//! Any bytes through the compiled-help reader (LZX included): no panic, never more files
//! than asked for, never more octets than the budget.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::chm::files;

fuzz_target!(|data: &[u8]| {
    if let Some(f) = files(data, 8, 1 << 16) {
        assert!(f.len() <= 8);
        assert!(f.iter().map(|x| x.data.len()).sum::<usize>() <= 1 << 16);
    }
});
