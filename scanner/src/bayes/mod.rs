//! The statistical filter (Email > Filter, "trained with any IMAP client by simply moving a
//! message in and out of the Junk folder"): a global model of token counts learned from
//! spam and ham, inactive until it has learned [`MIN_LEARNED`] of each, giving the symbol
//! `BAYES_SPAM` or `BAYES_HAM` with the probability and a score scaled by the evidence
//! (see [`symbol`]).
//!
//! A message is learned once (by its digest); learning it as the other class moves its
//! counts. The counts live behind [`BayesStore`] (RocksDB in the server, memory in tests and
//! cross-validation), so a cluster store can replace it.

pub mod classify;
pub mod memory;
pub mod tokens;

use crate::spam::message::View;
pub use classify::{Classification, Counts, Params, Totals};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use std::sync::{Arc, Mutex};
pub use tokens::{Token, TokenOptions};

/// Learned spam and ham each needed before the classifier gives a verdict (the reference;
/// SpamAssassin's `bayes_min_spam_num`/`bayes_min_ham_num`).
pub const MIN_LEARNED: u64 = 200;

/// The two classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    /// Unwanted mail.
    Spam,
    /// Wanted mail.
    Ham,
}

impl Class {
    /// `spam` or `ham`.
    pub fn name(self) -> &'static str {
        match self {
            Class::Spam => "spam",
            Class::Ham => "ham",
        }
    }

    /// The stored byte.
    pub fn to_byte(self) -> u8 {
        match self {
            Class::Spam => b's',
            Class::Ham => b'h',
        }
    }

    /// Reads [`Class::to_byte`]'s form.
    pub fn from_byte(b: u8) -> Option<Class> {
        match b {
            b's' => Some(Class::Spam),
            b'h' => Some(Class::Ham),
            _ => None,
        }
    }
}

/// One learning step, applied atomically: every token's counts move by `spam`/`ham`, the
/// totals by the same, and the digest records `class` (or is removed with `None`).
#[derive(Debug, Clone)]
pub struct Change<'a> {
    /// The message's tokens (each once).
    pub tokens: &'a [Token],
    /// Added to each token's spam count and to the spam total (−1, 0 or 1).
    pub spam: i32,
    /// Added to each token's ham count and to the ham total.
    pub ham: i32,
    /// The message's digest.
    pub digest: &'a [u8],
    /// What the digest now records.
    pub class: Option<Class>,
    /// Today, in days since 1970 (tokens remember when they were last learned, for expiry).
    pub day: u32,
}

/// Where the model is kept.
pub trait BayesStore: Send + Sync {
    /// The counts of each token, in order (zero for unknown ones); one batched read.
    fn counts(&self, tokens: &[Token]) -> Result<Vec<Counts>, String>;
    /// Messages learned.
    fn totals(&self) -> Result<Totals, String>;
    /// The class a message with `digest` was learned as.
    fn learned(&self, digest: &[u8]) -> Result<Option<Class>, String>;
    /// Applies one learning step atomically.
    fn apply(&self, change: &Change<'_>) -> Result<(), String>;
    /// Applies several learning steps atomically (bulk learning); a store may add up the
    /// deltas of a token first. The digests end as the last step of each says.
    fn apply_all(&self, changes: &[Change<'_>]) -> Result<(), String> {
        changes.iter().try_for_each(|c| self.apply(c))
    }
    /// Forgets everything.
    fn clear(&self) -> Result<(), String>;
    /// Tokens kept (an estimate where the store only has one).
    fn token_count(&self) -> Result<u64, String>;
    /// Octets the model takes (an estimate).
    fn size_bytes(&self) -> u64;
    /// Removes tokens so that at most `keep` remain: the least recently learned first, and
    /// among those the rarest. Returns how many were removed.
    fn expire(&self, keep: u64) -> Result<u64, String>;
}

/// What learning a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LearnOutcome {
    /// Learned for the first time.
    Learned,
    /// It had been learned as the other class: moved.
    Relearned,
    /// It had been learned as this class already: nothing changed.
    AlreadyLearned,
    /// It had not been learned (forget only).
    NotLearned,
    /// Forgotten.
    Forgotten,
}

impl LearnOutcome {
    /// As logs, metrics and `bayes learn-…` print it (`already learned`).
    pub fn name(self) -> &'static str {
        match self {
            LearnOutcome::Learned => "learned",
            LearnOutcome::Relearned => "relearned",
            LearnOutcome::AlreadyLearned => "already learned",
            LearnOutcome::NotLearned => "not learned",
            LearnOutcome::Forgotten => "forgotten",
        }
    }

    /// What learning a message as `class` does when it was learned as `before`: the moves
    /// of the spam and ham counts and the outcome (`None`: nothing to do).
    fn step(before: Option<Class>, class: Class) -> Option<(i32, i32, LearnOutcome)> {
        Some(match (before, class) {
            (Some(b), c) if b == c => return None,
            (Some(_), Class::Spam) => (1, -1, LearnOutcome::Relearned),
            (Some(_), Class::Ham) => (-1, 1, LearnOutcome::Relearned),
            (None, Class::Spam) => (1, 0, LearnOutcome::Learned),
            (None, Class::Ham) => (0, 1, LearnOutcome::Learned),
        })
    }
}

/// The model's state, for `bayes status`.
#[derive(Debug, Clone, Serialize)]
pub struct BayesStatus {
    /// Spam learned.
    pub spam: u64,
    /// Ham learned.
    pub ham: u64,
    /// Tokens kept.
    pub tokens: u64,
    /// Octets the store takes (estimate).
    pub size_bytes: u64,
    /// Whether it gives verdicts (at least [`MIN_LEARNED`] of each).
    pub active: bool,
    /// Progress towards activity, 0–100 (the reference's training progress bar).
    pub progress_percent: u8,
    /// Spam and ham needed each.
    pub needed: u64,
}

/// The classifier over a store.
pub struct Bayes {
    store: Arc<dyn BayesStore>,
    /// Tokenizer choices.
    pub options: TokenOptions,
    /// Classifier constants.
    pub params: Params,
    /// Learned spam and ham each needed before verdicts (tests lower it).
    pub min_learned: u64,
    /// Learning reads the digest, then writes: one learner at a time, so two sessions
    /// learning the same message count it once. Token counts themselves are merged.
    learning: Mutex<()>,
}

/// The digest that makes a message learned once: SHA-256 of its Message-ID and its body
/// (what follows the first empty line), so the same message learned from a Maildir and
/// from an mbox, with different trace fields, is one message. 16 octets.
pub fn digest(raw: &[u8], message_id: Option<&str>) -> [u8; 16] {
    let body_at = memchr::memmem::find(raw, b"\r\n\r\n")
        .map(|i| i + 4)
        .or_else(|| memchr::memmem::find(raw, b"\n\n").map(|i| i + 2))
        .unwrap_or(0);
    let mut h = Sha256::new();
    h.update(message_id.unwrap_or("").trim().as_bytes());
    h.update([0u8]);
    // Line ends do not make two messages (a Maildir file has LF, SMTP had CRLF).
    for line in raw[body_at..].split(|&b| b == b'\n') {
        h.update(line.strip_suffix(b"\r").unwrap_or(line));
        h.update(b"\n");
    }
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Today in days since 1970.
pub fn today() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| (d.as_secs() / 86_400) as u32)
}

/// What `BAYES_SPAM` scores at certainty: the default spam-flag threshold, so that a certain
/// verdict flags a message by itself. Chosen by 5-fold cross-validation inside each training
/// half of the SpamAssassin corpus (`bench/filter_cv.py`), among 5–10: recall rises up to 6
/// and stays flat above it, false positives stay at most 1 of 2,075 throughout (with
/// [`BAYES_SCORE_SHARPNESS`] 24: 5.0, Rspamd's weight, caught 84.1 % and 83.7 %; 6.0 catches
/// 94.2 % and 96.5 %).
pub const BAYES_SPAM_MAX: f64 = 6.0;

/// How much faster `BAYES_SPAM`'s score nears [`BAYES_SPAM_MAX`] than the probability nears
/// 1: the score reads the log-odds multiplied by this. Brown's correction (see
/// [`Params::dependence`]) divides the evidence by about twelve, which ranks messages better
/// but leaves many a spam at 0.6–0.9, where the score alone would no longer flag it; chosen
/// by the same cross-validation of the whole filter as the weight (`bench/filter_cv.py`,
/// among 12–48 at weight 6: the smallest where recall stops rising on both halves).
pub const BAYES_SCORE_SHARPNESS: f64 = 24.0;

/// The symbol for a classification: `BAYES_SPAM` above 0.5, scored up to
/// [`BAYES_SPAM_MAX`] as the log-odds times [`BAYES_SCORE_SHARPNESS`] grows (the shown
/// probability stays the classifier's); `BAYES_HAM` when the evidence itself
/// (before the bias against false positives) is at least 70:30 for ham, scored down to −3.0
/// as it nears certainty (Rspamd's weight, rounded); nothing otherwise, nor without a usable
/// token.
pub fn symbol(c: &Classification, params: &Params) -> Option<(&'static str, f64)> {
    if c.used == 0 {
        return None;
    }
    if c.probability > 0.5 {
        let sharp = classify::logistic(BAYES_SCORE_SHARPNESS * c.log_odds);
        let score = BAYES_SPAM_MAX * (sharp - 0.5) * 2.0;
        return Some(("BAYES_SPAM", round2(score)));
    }
    let evidence = classify::logistic(c.log_odds + params.bias);
    (evidence <= 0.3).then(|| ("BAYES_HAM", round2(-3.0 * (0.5 - evidence) * 2.0)))
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Bayes {
    /// The classifier over `store`, with the measured defaults.
    pub fn new(store: Arc<dyn BayesStore>) -> Bayes {
        Bayes {
            store,
            options: TokenOptions::default(),
            params: Params::default(),
            min_learned: MIN_LEARNED,
            learning: Mutex::new(()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn BayesStore> {
        &self.store
    }

    /// The tokens of a raw message and its [`digest`] (one parse for both).
    pub fn tokens_of(&self, raw: &[u8]) -> (Vec<Token>, [u8; 16]) {
        let msg = mail_parser::MessageParser::default().parse(raw);
        let view = View::new(raw, msg.as_ref(), "");
        let mid = msg.as_ref().and_then(|m| m.message_id());
        (tokens::tokens(&view, &self.options), digest(raw, mid))
    }

    /// Learns a raw message as `class` (once; as the other class, moves it).
    pub fn learn(&self, raw: &[u8], class: Class) -> Result<LearnOutcome, String> {
        let (toks, d) = self.tokens_of(raw);
        self.learn_tokens(&toks, &d, class)
    }

    /// Learns many messages (tokens, digest, class) at once, as [`Bayes::learn_tokens`]
    /// would one by one, in one write (`sa-learn`'s bulk case).
    pub fn learn_batch(
        &self,
        msgs: &[(Vec<Token>, [u8; 16], Class)],
    ) -> Result<Vec<LearnOutcome>, String> {
        let _one = self.learning.lock().map_err(|_| "bayes lock poisoned")?;
        // What the digests say, with the batch's own steps on top.
        let mut now: std::collections::HashMap<[u8; 16], Option<Class>> = Default::default();
        let mut outcomes = Vec::with_capacity(msgs.len());
        let mut changes = Vec::with_capacity(msgs.len());
        let day = today();
        for (toks, digest, class) in msgs {
            let before = match now.get(digest) {
                Some(c) => *c,
                None => self.store.learned(digest)?,
            };
            let Some((spam, ham, outcome)) = LearnOutcome::step(before, *class) else {
                outcomes.push(LearnOutcome::AlreadyLearned);
                continue;
            };
            now.insert(*digest, Some(*class));
            outcomes.push(outcome);
            changes.push(Change {
                tokens: toks,
                spam,
                ham,
                digest,
                class: Some(*class),
                day,
            });
        }
        self.store.apply_all(&changes)?;
        Ok(outcomes)
    }

    /// Learns a message's tokens under its digest.
    pub fn learn_tokens(
        &self,
        toks: &[Token],
        digest: &[u8],
        class: Class,
    ) -> Result<LearnOutcome, String> {
        let _one = self.learning.lock().map_err(|_| "bayes lock poisoned")?;
        let before = self.store.learned(digest)?;
        let Some((spam, ham, outcome)) = LearnOutcome::step(before, class) else {
            return Ok(LearnOutcome::AlreadyLearned);
        };
        self.store.apply(&Change {
            tokens: toks,
            spam,
            ham,
            digest,
            class: Some(class),
            day: today(),
        })?;
        Ok(outcome)
    }

    /// Takes a learned message back out of the model.
    pub fn forget(&self, raw: &[u8]) -> Result<LearnOutcome, String> {
        let (toks, d) = self.tokens_of(raw);
        let _one = self.learning.lock().map_err(|_| "bayes lock poisoned")?;
        let (spam, ham) = match self.store.learned(&d)? {
            None => return Ok(LearnOutcome::NotLearned),
            Some(Class::Spam) => (-1, 0),
            Some(Class::Ham) => (0, -1),
        };
        self.store.apply(&Change {
            tokens: &toks,
            spam,
            ham,
            digest: &d,
            class: None,
            day: today(),
        })?;
        Ok(LearnOutcome::Forgotten)
    }

    /// Whether the model gives verdicts.
    pub fn active(&self, totals: Totals) -> bool {
        totals.spam >= self.min_learned && totals.ham >= self.min_learned
    }

    /// The probability for a message seen as `view`; `None` while inactive.
    pub fn classify_view(&self, view: &View) -> Result<Option<Classification>, String> {
        let totals = self.store.totals()?;
        if !self.active(totals) {
            return Ok(None);
        }
        let toks = tokens::tokens(view, &self.options);
        Ok(Some(self.classify_tokens(&toks, totals)?.1))
    }

    /// A message's tokens' counts and what they make of it, against `totals` (whether or
    /// not the model is active: callers that report on an inactive model decide).
    pub fn classify_tokens(
        &self,
        toks: &[Token],
        totals: Totals,
    ) -> Result<(Vec<Counts>, Classification), String> {
        let counts = self.store.counts(toks)?;
        let c = classify::classify(&counts, totals, &self.params);
        Ok((counts, c))
    }

    /// The probability for a raw message; `None` while inactive.
    pub fn classify(&self, raw: &[u8]) -> Result<Option<Classification>, String> {
        let msg = mail_parser::MessageParser::default().parse(raw);
        self.classify_view(&View::new(raw, msg.as_ref(), ""))
    }

    /// The model's state.
    pub fn status(&self) -> Result<BayesStatus, String> {
        let t = self.store.totals()?;
        let need = self.min_learned.max(1);
        let progress = (t.spam.min(need) + t.ham.min(need)) * 100 / (2 * need);
        Ok(BayesStatus {
            spam: t.spam,
            ham: t.ham,
            tokens: self.store.token_count()?,
            size_bytes: self.store.size_bytes(),
            active: self.active(t),
            progress_percent: progress as u8,
            needed: self.min_learned,
        })
    }
}

#[cfg(test)]
mod tests;
