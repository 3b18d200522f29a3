//! Any bytes through the packer unpackers (the corpus starts from clamav-testfiles' MEW and
//! Upack samples and the other packed samples, so mutations reach deep into the loaders): no
//! panic, and whatever comes out is within the image bound. (It need not start with `MZ`:
//! UPX gives the bare image when the original header does not fit, and WWPack may decompress
//! over the headers, as they do in ClamAV.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::pe_packers::unpack;

fuzz_target!(|data: &[u8]| {
    if let Some(u) = unpack(data) {
        assert!(!u.file.is_empty() && u.file.len() <= (64 << 20) + 8192);
    }
});
