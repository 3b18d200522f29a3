//! Any octets as a message: tokenized (every option), its digest taken, learned into and
//! classified against a memory model: no panic, and a message always counts once.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::bayes::memory::MemoryStore;
use postcore_scanner::bayes::tokens::{Pairs, TokenOptions, texts_of_raw};
use postcore_scanner::bayes::{Bayes, BayesStore, Class, LearnOutcome};
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    for pairs in [Pairs::None, Pairs::Bigrams, Pairs::Osb(3)] {
        let opts = TokenOptions {
            pairs,
            case: pairs != Pairs::None,
            ..TokenOptions::default()
        };
        let _ = texts_of_raw(data, &opts);
    }
    let mut b = Bayes::new(Arc::new(MemoryStore::new()));
    b.min_learned = 0;
    assert_eq!(b.learn(data, Class::Spam), Ok(LearnOutcome::Learned));
    assert_eq!(b.learn(data, Class::Spam), Ok(LearnOutcome::AlreadyLearned));
    assert_eq!(b.learn(data, Class::Ham), Ok(LearnOutcome::Relearned));
    let t = b.store().totals().unwrap_or_default();
    assert_eq!((t.spam, t.ham), (0, 1));
    if let Ok(Some(c)) = b.classify(data) {
        assert!((0.0..=1.0).contains(&c.probability));
    }
});
