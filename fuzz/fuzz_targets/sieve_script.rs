//! Any script through the Sieve compiler; one that compiles runs over a fixed message (and the
//! message part of the input over a fixed script): no panic, the step limit holds.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::sieve::{self, Envelope, Host, Limits, dates::Moment};

struct World;

impl Host for World {
    fn now(&self) -> Moment {
        Moment { utc: 1_764_763_200, offset: 3600 }
    }
    fn spam_test(&self, percent: bool) -> String {
        sieve::interp::spamtest_value(7.5, 15.0, percent)
    }
}

const MESSAGE: &[u8] = b"From: A <a+x@example.org>\r\nTo: b@example.com, g: c@d.e;\r\nSubject: hello *world*\r\n\
Date: Sun, 25 Mar 2007 00:00:00 +0200\r\nMessage-ID: <m@x>\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n\
--q\r\nContent-Type: text/plain\r\n\r\nbody text\r\n--q--\r\n";

const SCRIPT: &str = "require [\"variables\", \"body\", \"regex\", \"editheader\", \"date\", \"fileinto\"];\n\
if header :matches \"subject\" \"*\" { set \"s\" \"${1}\"; }\n\
if body :text :contains \"x\" { fileinto \"b/${s}\"; }\n\
if header :regex \"from\" \"^(.*)<\" { addheader \"X-A\" \"${1}\"; }\n\
deleteheader :index 1 \"to\";\n\
if date :originalzone \"date\" \"weekday\" \"0\" { discard; }\n";

fuzz_target!(|data: &[u8]| {
    let env = Envelope { from: "s@example.org".into(), to: "b@example.com".into() };
    let limits = Limits { max_steps: 20_000, ..Limits::default() };
    if let Ok(src) = std::str::from_utf8(data)
        && let Ok(script) = sieve::compile(src)
    {
        let out = sieve::run(&script, MESSAGE, &env, &World, limits);
        let _ = sieve::report(&out);
    }
    if let Ok(script) = sieve::compile(SCRIPT) {
        let out = sieve::run(&script, data, &env, &World, limits);
        assert!(out.actions.len() <= limits.max_actions);
    }
});
