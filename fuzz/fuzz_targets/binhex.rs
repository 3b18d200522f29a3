//! Any text through the BinHex decoder (with the banner and colon in front, so the
//! run-length decoder and the header reader are reached): no panic, never more than the cap.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::binhex::{BANNER, decode_capped};

fuzz_target!(|data: &[u8]| {
    let mut f = BANNER.to_vec();
    f.extend_from_slice(b" 4.0)\r\n:");
    f.extend_from_slice(data);
    if let Some((d, _)) = decode_capped(&f, 1 << 16) {
        assert!(d.data.len() + d.resource.len() <= 1 << 16);
    }
    let _ = decode_capped(data, 1 << 16);
});
