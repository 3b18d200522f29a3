//! IMAP URLs (CATENATE's and URLAUTH's, RFC 5092 / RFC 4467) and the i;unicode-casemap form
//! (RFC 5051) from any input: no panic; a parsed authorized URL's rump is a prefix of the
//! input; full-text tokens are never empty. (The casemap form is not idempotent — RFC 5051
//! titlecases before it decomposes, so `ﬁ` becomes a lower-case `fi` — and is not checked
//! for it.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::imap::text::{casemap, tokens};
use postcore_protocol::imap::url;

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let _ = url::parse(&s);
    if let Some(u) = url::parse_auth(&s) {
        assert!(s.starts_with(&u.rump), "{s} / {}", u.rump);
    }
    let _ = url::parse_date_time(&s);
    let _ = casemap(&s);
    assert!(tokens(&s).iter().all(|t| !t.is_empty()));
});
