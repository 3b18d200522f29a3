//! Any signature file text through the ClamAV parsers (hash, body, logical, allow lists) and,
//! when it loads, the compiled engine over the same bytes: no panic, bounded work.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::clamav::{Engine, SignatureSet, Targets};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for ext in ["x.ndb", "x.ldb", "x.hdb", "x.fp", "x.ign2"] {
        let mut set = SignatureSet::default();
        if set.add_file(ext, &text).is_ok() && set.body.len() + set.logical.len() <= 8 {
            let _ = Engine::compile(set).scan(data, Targets::default());
        }
    }
    let _ = postcore_scanner::clamav::container::unpack(data);
});
