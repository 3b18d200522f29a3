//! Any field value through the quarantine seal's parser, and every stamp it yields written
//! back and parsed again to the same stamp (the writer and the parser agree).
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::quarantine_seal::{items, parse, split};

fuzz_target!(|value: &str| {
    let Some((body, _mac)) = split(value) else {
        return;
    };
    if let Some(stamp) = parse(&body) {
        let again = parse(&items(&stamp).concat());
        if stamp.score.is_finite() {
            // The score is written with two decimals: compare the rest.
            let again = again.expect("a written stamp parses");
            assert_eq!(
                (&again.qid, &again.from, &again.rcpts),
                (&stamp.qid, &stamp.from, &stamp.rcpts)
            );
        }
    }
});
