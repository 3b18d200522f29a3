//! Any message through the MIME structure parser, BODYSTRUCTURE, ENVELOPE, section
//! resolution and the full-text extraction: no panic, sections stay inside the message.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::imap::{mime, text};

fuzz_target!(|data: &[u8]| {
    let p = mime::parse(data);
    let mut out = Vec::new();
    p.write_structure(&mut out, true);
    let (h, _) = mime::split(data);
    mime::write_envelope(&mut out, h);
    for path in [&[1u32][..], &[1, 1], &[2, 1], &[3]] {
        if let Some(part) = p.resolve(path) {
            let base = data.as_ptr() as usize;
            let b = part.body.as_ptr() as usize;
            assert!(part.body.is_empty() || (b >= base && b + part.body.len() <= base + data.len()));
        }
    }
    let t = text::body_text(data);
    let _ = text::tokens(&t);
    let _ = text::decode_words(h);
});
