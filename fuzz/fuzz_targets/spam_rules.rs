//! Any text as a SpamAssassin rule file (directives, conditionals, regex literals, meta
//! expressions, ReplaceTags), compiled and run over a message: no panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postcore_scanner::spam::engine::Engine;
use postcore_scanner::spam::message::View;
use postcore_scanner::spam::rules::RuleSet;

fuzz_target!(|data: &[u8]| {
    let text: String = data.iter().map(|&b| b as char).collect();
    let mut set = RuleSet::default();
    if set.add_text("fuzz.cf", &text, None).is_err() {
        return;
    }
    set.finish();
    // Hyperscan compiles are slow: keep the run to small rule sets.
    if set.rules.len() > 16 {
        return;
    }
    let engine = Engine::compile(set);
    let raw = b"From: a@b.test\r\nSubject: hi there\r\n\r\nbody text http://x.test/\r\n";
    let msg = mail_parser::MessageParser::default().parse(&raw[..]);
    let view = View::new(raw, msg.as_ref(), "a@b.test");
    let _ = engine.run(&view, raw, 0);
});
