//! Any set of messages (headers from the fuzzer: Message-ID, References, In-Reply-To,
//! Subject, dates) through the three THREAD algorithms: no panic, and every message appears
//! exactly once in each answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_protocol::imap::thread::{self, Algorithm, Message};

fuzz_target!(|data: &[u8]| {
    // Messages separated by 0xff; fields within one by 0xfe, in the order Message-ID,
    // References, In-Reply-To, Subject; the first octet of each is its date.
    let msgs: Vec<Message> = data
        .split(|b| *b == 0xff)
        .take(300)
        .enumerate()
        .map(|(i, m)| {
            let mut f = m.split(|b| *b == 0xfe);
            let mut next = || f.next().map(<[u8]>::to_vec);
            Message {
                id: i as u32 + 1,
                sent: i64::from(m.first().copied().unwrap_or(0) % 8),
                message_id: next(),
                references: next(),
                in_reply_to: next(),
                subject: next().unwrap_or_default(),
            }
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
