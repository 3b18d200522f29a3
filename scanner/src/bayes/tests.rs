use super::memory::MemoryStore;
use super::*;
use crate::test_rng::Rng;

const SPAM_WORDS: &[&str] = &[
    "viagra",
    "winner",
    "prize",
    "casino",
    "mortgage",
    "refinance",
    "pills",
    "discount",
    "unsubscribe",
    "guaranteed",
    "investment",
    "opportunity",
    "bitcoin",
    "lottery",
];
const HAM_WORDS: &[&str] = &[
    "meeting",
    "agenda",
    "report",
    "kernel",
    "patch",
    "review",
    "budget",
    "minutes",
    "schedule",
    "deadline",
    "project",
    "release",
    "changelog",
    "thanks",
];
const COMMON: &[&str] = &[
    "the", "and", "please", "today", "about", "your", "with", "this", "that", "from",
];

/// Message `i` of a class: words mostly from its vocabulary, a sender domain of its own.
fn message(class: Class, i: u64) -> Vec<u8> {
    let mut r = Rng(0x9e37_79b9_7f4a_7c15 ^ (i * 2 + u64::from(class == Class::Spam)));
    let (words, from) = match class {
        Class::Spam => (SPAM_WORDS, "offers@promo-deals.example"),
        Class::Ham => (HAM_WORDS, "colleague@work.example"),
    };
    let mut body = String::new();
    for n in 0..60 {
        let w = if n % 3 == 0 {
            r.pick(COMMON)
        } else {
            r.pick(words)
        };
        body.push_str(w);
        body.push(if n % 12 == 11 { '\n' } else { ' ' });
    }
    format!(
        "From: {from}\r\nTo: user@example.test\r\nSubject: {} {}\r\nMessage-ID: <{i}.{}@gen.example>\r\n\r\n{body}\r\n",
        r.pick(words),
        r.pick(words),
        class.name()
    )
    .into_bytes()
}

fn trained(spam: u64, ham: u64) -> Bayes {
    let b = Bayes::new(Arc::new(MemoryStore::new()));
    for i in 0..spam {
        assert_eq!(
            b.learn(&message(Class::Spam, i), Class::Spam),
            Ok(LearnOutcome::Learned)
        );
    }
    for i in 0..ham {
        assert_eq!(
            b.learn(&message(Class::Ham, i), Class::Ham),
            Ok(LearnOutcome::Learned)
        );
    }
    b
}

#[test]
fn inactive_until_two_hundred_of_each() {
    let b = trained(200, 199);
    let st = b.status().expect("status");
    assert!(!st.active);
    assert_eq!((st.spam, st.ham), (200, 199));
    assert_eq!(st.progress_percent, 99);
    assert_eq!(b.classify(&message(Class::Spam, 1000)), Ok(None));
    b.learn(&message(Class::Ham, 199), Class::Ham)
        .expect("learn");
    let st = b.status().expect("status");
    assert!(st.active);
    assert_eq!(st.progress_percent, 100);
    let spam = b.classify(&message(Class::Spam, 1000)).expect("classify");
    let ham = b.classify(&message(Class::Ham, 1000)).expect("classify");
    let (spam, ham) = (spam.expect("active"), ham.expect("active"));
    assert!(spam.probability > 0.99, "{spam:?}");
    assert!(ham.probability < 0.01, "{ham:?}");
    let spam_sym = symbol(&spam, &b.params);
    assert_eq!(spam_sym.map(|s| s.0), Some("BAYES_SPAM"));
    assert!(spam_sym.is_some_and(|s| s.1 > 4.9), "{spam_sym:?}");
    let ham_sym = symbol(&ham, &b.params);
    assert_eq!(ham_sym.map(|s| s.0), Some("BAYES_HAM"));
    assert!(ham_sym.is_some_and(|s| s.1 < -2.9), "{ham_sym:?}");
}

#[test]
fn a_message_counts_once_and_relearning_moves_it() {
    let b = trained(3, 3);
    let m = message(Class::Spam, 0);
    assert_eq!(b.learn(&m, Class::Spam), Ok(LearnOutcome::AlreadyLearned));
    // The same message with other trace fields and LF line ends is the same message.
    let mut relayed =
        b"Received: from relay.example by mx.example; Mon, 1 Jan 2024 00:00:00 +0000\n".to_vec();
    relayed.extend(
        String::from_utf8_lossy(&m)
            .replace("\r\n", "\n")
            .into_bytes(),
    );
    assert_eq!(
        b.learn(&relayed, Class::Spam),
        Ok(LearnOutcome::AlreadyLearned)
    );
    assert_eq!(b.store().totals(), Ok(Totals { spam: 3, ham: 3 }));
    let (toks, _) = b.tokens_of(&m);
    let before = b.store().counts(&toks).expect("counts");
    assert_eq!(b.learn(&m, Class::Ham), Ok(LearnOutcome::Relearned));
    assert_eq!(b.store().totals(), Ok(Totals { spam: 2, ham: 4 }));
    let after = b.store().counts(&toks).expect("counts");
    for (x, y) in before.iter().zip(&after) {
        assert_eq!((x.spam - 1, x.ham + 1), (y.spam, y.ham));
    }
    assert_eq!(b.forget(&m), Ok(LearnOutcome::Forgotten));
    assert_eq!(b.forget(&m), Ok(LearnOutcome::NotLearned));
    assert_eq!(b.store().totals(), Ok(Totals { spam: 2, ham: 3 }));
}

#[test]
fn concurrent_learners_count_a_message_once() {
    let b = Arc::new(Bayes::new(Arc::new(MemoryStore::new())));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = b.clone();
            std::thread::spawn(move || {
                for i in 0..50 {
                    b.learn(&message(Class::Spam, i), Class::Spam)
                        .expect("learn");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    assert_eq!(b.store().totals(), Ok(Totals { spam: 50, ham: 0 }));
}

#[test]
fn expiry_keeps_the_newest_and_commonest_tokens() {
    let s = MemoryStore::new();
    let toks: Vec<Token> = (1..=10).collect();
    s.apply(&Change {
        tokens: &toks[..5],
        spam: 1,
        ham: 0,
        digest: b"a",
        class: Some(Class::Spam),
        day: 10,
    })
    .expect("apply");
    s.apply(&Change {
        tokens: &toks[5..],
        spam: 0,
        ham: 1,
        digest: b"b",
        class: Some(Class::Ham),
        day: 20,
    })
    .expect("apply");
    assert_eq!(s.expire(5), Ok(5));
    let c = s.counts(&toks).expect("counts");
    assert!(c[..5].iter().all(|c| *c == Counts::default()));
    assert!(c[5..].iter().all(|c| c.ham == 1));
}

fn texts(raw: &[u8]) -> Vec<String> {
    let msg = mail_parser::MessageParser::default().parse(raw);
    let view = View::new(raw, msg.as_ref(), "");
    tokens::token_texts(&view, &TokenOptions::default())
}

#[test]
fn tokens_of_headers_body_links_and_parts() {
    let raw = b"Received: from mx.sender.example (mx.sender.example [192.0.2.7]) by mx.example.test with ESMTP id 4A1B2C9; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
From: \"Big Sale\" <deals@Shop.Sender.Example>\r\n\
To: user@example.test\r\n\
Subject: Hello\r\n\
X-Spam-Status: Yes, score=99\r\n\
Message-ID: <abc123@mailer.sender.example>\r\n\
X-Mailer: BulkMailer 5.0\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=b\r\n\r\n\
--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
CLICK here NOW for \xef\xbc\xa6\xef\xbc\xb2\xef\xbc\xa5\xef\xbc\xa5 money: http://www.cheap.example.net/buy?x=1 supercalifragilisticexpialidocious ok\r\n\
--b\r\nContent-Type: application/octet-stream; name=\"setup.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVo=\r\n--b--\r\n";
    let t = texts(raw);
    let has = |s: &str| t.iter().any(|x| x == s);
    for want in [
        "click",
        "here",
        "now",
        "free", // full-width letters, NFKC-normalised and folded
        "click",
        "sk:superca:4",
        "hello",
        "H*F:deals@shop.sender.example",
        "H*F:deals@",
        "H*F:@shop.sender.example",
        "H*F:@sender.example",
        "H*F:big",
        "H*M:@mailer.sender.example",
        "H*UA:bulkmailer",
        "R:ip:192.0.2.7",
        "R:ip:192.0.2",
        "R:h:mx.sender.example",
        "R:esmtp",
        "U:www.cheap.example.net",
        "U:example.net",
        "U:scheme:http",
        "M:type:application/octet-stream",
        "M:ext:exe",
        "M:cte:base64",
        "M:charset:utf-8",
        "H:x-mailer",
    ] {
        assert!(has(want), "no token {want:?} in {t:?}");
    }
    // Short words, the Subject as a header, our verdict fields' values, queue IDs and dates
    // are not tokens.
    for not in [
        "ok",
        "Hsubject:hello",
        "Hx-spam-status:yes",
        "H:x-spam-status",
        "R:4a1b2c9",
        "R:jan",
        "abc123",
    ] {
        assert!(!has(not), "token {not:?} in {t:?}");
    }
}

#[test]
fn token_hash_is_stable() {
    // FNV-1a 64 test vectors: the store outlives the binary, so the hash must never change.
    assert_eq!(tokens::hash(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(tokens::hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(tokens::hash(b"foobar"), 0x8594_4171_f739_67e8);
}

#[test]
fn a_batch_learns_as_one_by_one_would() {
    let one = trained(0, 0);
    let batch = Bayes::new(Arc::new(MemoryStore::new()));
    let msgs: Vec<(Vec<Token>, [u8; 16], Class)> =
        [(true, 1), (true, 2), (true, 1), (false, 1), (false, 3)]
            .iter()
            .map(|(spam, i)| {
                let raw = message(Class::Spam, *i);
                let (toks, d) = batch.tokens_of(&raw);
                let class = if *spam { Class::Spam } else { Class::Ham };
                (toks, d, class)
            })
            .collect();
    let got = batch.learn_batch(&msgs).expect("batch");
    let want: Vec<LearnOutcome> = msgs
        .iter()
        .map(|(t, d, c)| one.learn_tokens(t, d, *c).expect("learn"))
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        want,
        [
            LearnOutcome::Learned,
            LearnOutcome::Learned,
            LearnOutcome::AlreadyLearned,
            LearnOutcome::Relearned,
            LearnOutcome::Learned
        ]
    );
    assert_eq!(batch.store().totals(), one.store().totals());
    let toks = &msgs[0].0;
    assert_eq!(batch.store().counts(toks), one.store().counts(toks));
}
