//! Any text as a ReplaceTags value (before the first NUL) and any octets as a text (after it):
//! narrowing the value never panics, and where the value and its narrowed form both compile
//! (the `regex` crate over octets), they find the same matches in the text made plain
//! (octets folded below 0x80, `&#` broken up), as the engine relies on.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::spam::ascii_tags::{ascii_tag, is_plain};

fuzz_target!(|data: &[u8]| {
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(value) = std::str::from_utf8(&data[..cut]) else {
        return;
    };
    let Some(narrowed) = ascii_tag(value) else {
        return;
    };
    let mut text: Vec<u8> = data.get(cut + 1..).unwrap_or(&[]).iter().map(|b| b & 0x7f).collect();
    for i in 1..text.len() {
        if text[i - 1] == b'&' && text[i] == b'#' {
            text[i] = b'_';
        }
    }
    assert!(is_plain(&text));
    let compile = |p: &str| regex::bytes::Regex::new(&format!("(?-u:{p})")).ok();
    let (Some(whole), Some(narrow)) = (compile(value), compile(&narrowed)) else {
        return;
    };
    let spans = |re: &regex::bytes::Regex| re.find_iter(&text).map(|m| m.range()).collect::<Vec<_>>();
    assert_eq!(spans(&whole), spans(&narrow), "{value:?} narrowed to {narrowed:?}");
});
