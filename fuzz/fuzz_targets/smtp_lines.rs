//! The line reader keeps memory bounded and never loses sync.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::smtp::{LineEvent, LineReader};

fuzz_target!(|chunks: Vec<Vec<u8>>| {
    let mut r = LineReader::new(64);
    let mut buf = Vec::new();
    for c in chunks {
        buf.extend_from_slice(&c);
        loop {
            match r.ingest(&mut buf) {
                LineEvent::Line(l) => assert!(l.len() <= 64 && !l.contains(&b'\n')),
                LineEvent::TooLong => {}
                LineEvent::NeedMore => break,
            }
        }
        assert!(buf.len() <= 65, "buffer bounded by the line limit");
    }
});
