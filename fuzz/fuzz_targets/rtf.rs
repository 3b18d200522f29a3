//! Any bytes through the RTF object reader, alone and inside an `\objdata` destination: no
//! panic, never more objects than asked for, never more octets decoded than the budget
//! (nor than half the input).
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::rtf::objects;

fuzz_target!(|data: &[u8]| {
    let wrapped = [&b"{\\rtf1{\\object{\\*\\objdata "[..], data, b"}}}"].concat();
    for input in [data, &wrapped[..]] {
        if let Some(o) = objects(input, 8, 1 << 16) {
            assert!(o.len() <= 8);
            let total: usize = o.iter().map(|x| x.data.len()).sum();
            assert!(total <= 1 << 16 && total <= input.len() / 2);
        }
    }
});
