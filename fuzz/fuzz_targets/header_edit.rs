//! Any message and any edit through the header editor: the body is kept byte for byte, every
//! added field is exactly one line, and no removed field survives in the header section.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::message::{edit_header_section, header_section};

/// CRLF line ends, as the DATA receiver delivers messages (bare CR and LF become CRLF).
fn crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 16);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

fuzz_target!(|input: (&[u8], &str, &str)| {
    let (raw, name, value) = input;
    let msg = &crlf(raw)[..];
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
    // Invalid names are ignored: nothing was removed.
    for line in lines.filter(|_| valid) {
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
