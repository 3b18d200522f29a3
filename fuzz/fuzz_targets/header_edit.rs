//! Any message and any edit through the header editor: the body is kept byte for byte, every
//! added field is exactly one line, and no removed field survives in the header section.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::message::{edit_header_section, header_section};

fuzz_target!(|input: (&[u8], &str, &str)| {
    let (msg, name, value) = input;
    let head_len = header_section(msg).len();
    let body = msg[head_len..].to_vec();
    let out = edit_header_section(msg.to_vec(), &[name], &[(name, value)]);
    assert!(out.ends_with(&body), "the body changed");
    let valid = postcore_protocol::message::valid_field_name(name);
    let mut lines = header_section(&out).split_inclusive(|&b| b == b'\n');
    if valid {
        let first = lines.next().unwrap_or_default();
        assert!(first.starts_with(name.as_bytes()), "the added field is first");
        assert!(!first[..first.len().saturating_sub(2)].contains(&b'\r'), "one line");
    }
    for line in lines {
        if matches!(line.first(), Some(b' ' | b'\t')) {
            continue;
        }
        let field = line.split(|&b| b == b':').next().unwrap_or_default();
        assert!(
            !field.trim_ascii().eq_ignore_ascii_case(name.as_bytes()),
            "a removed field survived"
        );
    }
});
