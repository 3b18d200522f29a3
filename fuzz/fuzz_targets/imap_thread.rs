//! Any set of messages (headers from the fuzzer: Message-ID, References, In-Reply-To,
//! Subject, dates) through the three THREAD algorithms: no panic, and every message appears
//! exactly once in each answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::imap::thread::{self, Algorithm, Keys, Message};

fuzz_target!(|data: &[u8]| {
    // Messages separated by 0xff; fields within one by 0xfe, in the order Message-ID,
    // References, In-Reply-To, Subject; the first octet of each is its date.
    let parsed: Vec<(i64, Keys)> = data
        .split(|b| *b == 0xff)
        .take(300)
        .map(|m| {
            let mut f = m.split(|b| *b == 0xfe);
            let (mid, refs, irt) = (f.next(), f.next(), f.next());
            let subject = f.next().unwrap_or_default();
            let sent = i64::from(m.first().copied().unwrap_or(0) % 8);
            (sent, Keys::from_fields(subject, mid, refs, irt))
        })
        .collect();
    let msgs: Vec<Message> = parsed
        .iter()
        .enumerate()
        .map(|(i, (sent, keys))| Message {
            id: i as u32 + 1,
            sent: *sent,
            keys,
        })
        .collect();
    for alg in [Algorithm::References, Algorithm::Refs, Algorithm::OrderedSubject] {
        let listed = thread::format(&thread::thread(alg, &msgs));
        let mut seen = vec![0u32; msgs.len() + 1];
        for w in listed.split(|c: char| !c.is_ascii_digit()).filter(|w| !w.is_empty()) {
            let n: usize = w.parse().expect("a number");
            seen[n] += 1;
        }
        assert!(seen[1..].iter().all(|&c| c == 1), "{alg:?}: {listed}");
    }
});
