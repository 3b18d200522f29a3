//! Any bytes as a Nullsoft installer's data (a first header put in front, its archive size
//! the input's): no panic, at most the members and octets asked for.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::nsis::{SIGNATURE, members};

fuzz_target!(|data: &[u8]| {
    let mut f = vec![0u8; 4];
    f.extend_from_slice(SIGNATURE);
    f.extend_from_slice(&0u32.to_le_bytes());
    f.extend_from_slice(&((28 + data.len()) as u32).to_le_bytes());
    f.extend_from_slice(data);
    if let Some(m) = members(&f, 8, 1 << 16) {
        assert!(m.len() <= 8);
        assert!(m.iter().map(|x| x.data.len()).sum::<usize>() <= 1 << 16);
    }
    let _ = members(data, 8, 1 << 16);
});
