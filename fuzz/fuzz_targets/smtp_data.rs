//! DATA content: whatever the split into reads, the receiver finds the same end and stores
//! the same content, and stored content never holds a bare CR or LF; output taken out after
//! each read (as a session streaming a large body to disk does) adds up to the same content,
//! and the size limit counts it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::smtp::{DataEvent, DataReceiver};

fuzz_target!(|input: (u8, Vec<u8>)| {
    let (split, data) = input;
    let mut whole = DataReceiver::for_data(1 << 16);
    let end_whole = match whole.ingest(&data) {
        DataEvent::End { consumed } => Some(consumed),
        DataEvent::NeedMore => None,
    };
    let step = usize::from(split.max(1));
    let mut parts = DataReceiver::for_data(1 << 16);
    let mut end_parts = None;
    let mut offset = 0;
    let mut taken = Vec::new();
    for (i, chunk) in data.chunks(step).enumerate() {
        let ev = parts.ingest(chunk);
        if i % 2 == 1 {
            taken.extend_from_slice(&parts.take_output());
        }
        if let DataEvent::End { consumed } = ev {
            end_parts = Some(offset + consumed);
            break;
        }
        offset += chunk.len();
    }
    assert_eq!(end_whole, end_parts);
    assert_eq!(whole.overflowed(), parts.overflowed());
    if !whole.overflowed() {
        taken.extend_from_slice(parts.content());
        assert_eq!(whole.content(), &taken[..]);
        assert_eq!(parts.size(), taken.len());
        let c = whole.content();
        for (i, b) in c.iter().enumerate() {
            if *b == b'\n' {
                assert!(i > 0 && c[i - 1] == b'\r');
            }
            if *b == b'\r' {
                assert_eq!(c.get(i + 1), Some(&b'\n'));
            }
        }
    }
});
