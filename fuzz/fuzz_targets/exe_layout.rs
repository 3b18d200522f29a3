//! Any bytes through the executable-layout reader (behind each magic it dispatches on): no
//! panic, the entry point (when found) inside the file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::clamav::exe::layout;

fuzz_target!(|data: &[u8]| {
    for magic in [&b""[..], b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xce"] {
        let input = [magic, data].concat();
        if let Some(l) = layout(&input) {
            assert!(l.entry.is_none_or(|e| e < input.len() as u64));
        }
    }
});
