//! Any bytes through the PDF stream finder: no panic, and every stream lies inside the file.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let range = data.as_ptr_range();
    for s in postcore_scanner::pdf::streams(data, 1000) {
        let r = s.raw.as_ptr_range();
        assert!(range.start <= r.start && r.end <= range.end);
    }
});
