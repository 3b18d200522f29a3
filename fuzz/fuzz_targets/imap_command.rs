//! Any complete command into the IMAP parser: no panic; sequence sets resolve within bounds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::imap::{CommandBody, parse};

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = parse(data) {
        if let CommandBody::Fetch { set, .. } | CommandBody::Store { set, .. } = &c.body {
            let v = set.resolve_seq(50);
            assert!(v.iter().all(|n| (1..=50).contains(n)));
        }
    }
});
