//! Any bytes as a message and as an attachment through the content walk (MIME, uuencode,
//! zip, gzip, bzip2, xz, tar) with small limits: no panic, the byte budget holds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::content::{Limits, walk, walk_file};
use std::ops::ControlFlow;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_depth: 4,
        max_bytes: 4 << 20,
        max_files: 64,
        max_ratio: 50,
    };
    let s = walk(data, limits, &mut |_| ControlFlow::Continue(()));
    assert!(s.bytes <= limits.max_bytes + 4 * data.len() as u64 + (1 << 20));
    let s = walk_file(data, "f", limits, &mut |o| {
        let _ = postcore_scanner::filetype::detect(&o.data);
        ControlFlow::Continue(())
    });
    assert!(s.bytes <= limits.max_bytes + 4 * data.len() as u64 + (1 << 20));
});
