//! Any POP3 command line: the parser never panics and message numbers start at 1.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::pop3::Command;

fuzz_target!(|data: &[u8]| {
    if let Ok(Command::Retr(n) | Command::Dele(n) | Command::Top(n, _)) = Command::parse(data) {
        assert!(n < 1_000_000_000);
    }
});
