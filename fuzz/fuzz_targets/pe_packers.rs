//! Any bytes through the packer unpackers (the corpus starts from clamav-testfiles' MEW and
//! Upack samples, so mutations reach deep into both loaders): no panic, and whatever comes
//! out is a PE file within the image bound.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::pe_packers::unpack;

fuzz_target!(|data: &[u8]| {
    if let Some(u) = unpack(data) {
        assert!(u.file.starts_with(b"MZ"));
        assert!(u.file.len() <= 64 << 20);
    }
});
