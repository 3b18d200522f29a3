//! Any bytes through the ARJ reader, and the same after a valid archive header: no panic,
//! never more members than asked for, never more octets than the budget.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::arj::members;

fuzz_target!(|data: &[u8]| {
    for input in [data.to_vec(), [&MAIN[..], data].concat()] {
        if let Some(m) = members(&input, 8, 1 << 16) {
            assert!(m.len() <= 8);
            assert!(m.iter().map(|x| x.data.len()).sum::<usize>() <= 1 << 16);
        }
    }
});

/// A minimal archive header (`60 EA`, size 30, file type 2, no extended headers).
const MAIN: [u8; 40] = [
    0x60, 0xea, 30, 0, 30, 11, 1, 2, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
];
