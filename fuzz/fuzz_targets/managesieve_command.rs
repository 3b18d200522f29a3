//! Any input through the ManageSieve command reader, split at every position the first byte
//! names: no panic, the buffer only shrinks, and a reader fed the same octets in one piece
//! or in two finds the same first command.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::managesieve::{CommandReader, ReadEvent, response, string};

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else { return };
    let cut = (cut as usize).min(rest.len());
    let mut whole = rest.to_vec();
    let mut a = CommandReader::new(256, 4096);
    let first_whole = a.ingest(&mut whole);
    let mut b = CommandReader::new(256, 4096);
    let mut part = rest[..cut].to_vec();
    let mut ev = b.ingest(&mut part);
    if ev == ReadEvent::NeedMore {
        part.extend_from_slice(&rest[cut..]);
        ev = b.ingest(&mut part);
    }
    if !matches!(first_whole, ReadEvent::TooLong) && !matches!(ev, ReadEvent::TooLong) {
        assert_eq!(first_whole, ev);
    }
    let mut n = 0;
    while n < 64 && a.ingest(&mut whole) != ReadEvent::NeedMore {
        n += 1;
    }
    let _ = response("NO", Some("QUOTA"), &String::from_utf8_lossy(rest));
    let _ = string(rest);
});
