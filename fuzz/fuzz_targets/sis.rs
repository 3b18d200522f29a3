//! Any bytes through the Symbian installation file reader, alone and behind a header with
//! the installer's UIDs: no panic, never more files than asked for, never past the budget.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::sis::files;

fuzz_target!(|data: &[u8]| {
    let mut with_uids = vec![0, 0, 0, 0, 0x12, 0x3a, 0, 0x10, 0x19, 0x04, 0, 0x10];
    with_uids.extend_from_slice(data);
    for input in [data, &with_uids[..]] {
        if let Some(f) = files(input, 8, 1 << 16) {
            assert!(f.len() <= 8);
            assert!(f.iter().map(|x| x.data.len()).sum::<usize>() <= 1 << 16);
        }
    }
});
