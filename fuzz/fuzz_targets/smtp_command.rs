//! Any command line: the parser must never panic, and parsed paths must round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::smtp::{Address, Command};

fuzz_target!(|data: &[u8]| {
    if let Ok(Command::Rcpt { to, .. } | Command::Mail { from: Some(to), .. }) = Command::parse(data) {
        if !to.domain.is_empty() {
            // What we print (Received headers, logs) must parse back to the same mailbox.
            let again = Address::parse(&to.to_string(), true).expect("printed address parses");
            assert_eq!(again.domain, to.domain);
            assert_eq!(again.local, to.local);
        }
    }
});
