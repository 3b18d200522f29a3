//! Any bytes through the packer unpackers (the corpus starts from clamav-testfiles' MEW and
//! Upack samples, so mutations reach deep into both loaders): no panic, and whatever comes
//! out is within the image bound (a PE file, or for UPX a bare image when the original
//! header does not fit, as ClamAV does).
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::pe_packers::unpack;

fuzz_target!(|data: &[u8]| {
    if let Some(u) = unpack(data) {
        assert!(u.file.starts_with(b"MZ") || u.packer == "UPX");
        assert!(!u.file.is_empty() && u.file.len() <= (64 << 20) + 8192);
    }
});
