//! Any HTML through the `data:` URI finder: no panic, within the count and octet limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::data_uri::base64_payloads;

fuzz_target!(|data: &[u8]| {
    let p = base64_payloads(data, 4, 4096);
    assert!(p.len() <= 4);
    assert!(p.iter().map(Vec::len).sum::<usize>() <= 4096);
});
