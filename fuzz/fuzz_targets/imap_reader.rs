//! Bytes in arbitrary chunks through the IMAP command reader, each command into the parser:
//! nothing panics, and memory stays within the configured limits.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::imap::{CommandReader, Limits, ReadEvent, parse};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_line: 512,
        max_append_literal: 4096,
        max_literal: 256,
    };
    let mut r = CommandReader::new(limits);
    let mut buf = Vec::new();
    for chunk in data.chunks(7) {
        buf.extend_from_slice(chunk);
        loop {
            match r.ingest(&mut buf) {
                ReadEvent::Command(c) => {
                    assert!(c.len() <= limits.max_append_literal + 65536 + 4 * 512);
                    let _ = parse(&c);
                }
                ReadEvent::NeedMore => break,
                ReadEvent::Continue | ReadEvent::TooBig { .. } => {}
            }
        }
    }
});
