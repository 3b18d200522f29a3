//! Outbound dot-stuffing and inbound DATA parsing agree: any content, stuffed by our client,
//! is received by our server as exactly that content (line ends as CRLF), ending exactly at the
//! terminator, so relayed mail is never cut short or extended.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::smtp::client::dot_stuff;
use postcore_protocol::smtp::{DataEvent, DataReceiver};

fn normalise(c: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            b'\r' if c.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

fuzz_target!(|content: &[u8]| {
    let wire = dot_stuff(content);
    let mut rx = DataReceiver::for_data(1 << 20);
    match rx.ingest(&wire) {
        DataEvent::End { consumed } => assert_eq!(consumed, wire.len()),
        DataEvent::NeedMore => panic!("terminator not found"),
    }
    assert_eq!(rx.content(), normalise(content).as_slice());
});
