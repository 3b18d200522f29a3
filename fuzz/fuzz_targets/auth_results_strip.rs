//! Any message through the removal of our own `Authentication-Results` fields (RFC 8601 §5):
//! the body is kept byte for byte, no field with our authserv-id survives in the header, every
//! other field is kept, and a second pass finds nothing more to remove.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::message::{authserv_id, header_section, strip_own_auth_results};

fuzz_target!(|input: (&[u8], &str)| {
    let (msg, id) = input;
    let head_len = header_section(msg).len();
    let Some(out) = strip_own_auth_results(msg, id) else {
        return;
    };
    assert!(out.ends_with(&msg[head_len..]), "the body changed");
    assert!(out.len() < msg.len(), "something was removed");
    assert!(
        strip_own_auth_results(&out, id).is_none(),
        "a field of ours survived: {:?}",
        String::from_utf8_lossy(&out)
    );
    let _ = authserv_id(&out);
});
