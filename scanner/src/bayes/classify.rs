//! The classifier: Gary Robinson's token probabilities, the strongest tokens combined with
//! Fisher's chi-square method (Robinson, "A Statistical Approach to the Spam Problem",
//! Linux Journal 2003; as SpamAssassin's `CombineChi` and Rspamd's Bayes do).

use serde::Serialize;

/// How often a token was seen in learned spam and ham.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Learned spam messages containing it.
    pub spam: u32,
    /// Learned ham messages containing it.
    pub ham: u32,
}

/// Messages learned in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Spam messages learned.
    pub spam: u64,
    /// Ham messages learned.
    pub ham: u64,
}

/// The classifier's constants (chosen by cross-validation on the training half of the
/// corpus; see bench/RESULTS.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// Robinson's `s`: the strength of the prior for rarely seen tokens.
    pub s: f64,
    /// Robinson's `x`: the prior probability of an unknown token.
    pub x: f64,
    /// Tokens whose probability is within this distance of 0.5 are left out.
    pub min_strength: f64,
    /// At most this many of the strongest tokens are combined.
    pub max_tokens: usize,
    /// Tokens seen fewer times than this (spam + ham) are left out.
    pub min_count: u32,
    /// A token's ham ratio counts this many times (Paul Graham's bias against false
    /// positives: losing a wanted message costs more than letting a spam through).
    pub ham_weight: f64,
    /// Natural log of the odds against spam that the evidence must overcome: the prior
    /// that a message is ham, and the cost of a false positive (0: even odds).
    pub bias: f64,
    /// A token's probability is kept within [1 − cap, cap] (Graham's 0.01–0.99): no single
    /// token is near-certain evidence (1: no cap; below 0.5 counts as 0.5).
    pub cap: f64,
}

impl Default for Params {
    fn default() -> Self {
        // SpamAssassin's x and minimum strength; s and the bias chosen by cross-validation
        // inside each training half of the corpus (the smallest bias with at most one
        // false positive in both).
        Params {
            s: 0.01,
            x: 0.538,
            min_strength: 0.346,
            max_tokens: 150,
            min_count: 1,
            ham_weight: 1.0,
            bias: 6.0,
            cap: 1.0,
        }
    }
}

/// The result for one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Classification {
    /// The probability that the message is spam (0.5 when no token is strong enough).
    pub probability: f64,
    /// The evidence as a log-odds: ln Qh − ln Qs − bias (positive: spam). Unlike the
    /// probability it never saturates, so it ranks messages that are all but certain.
    pub log_odds: f64,
    /// Tokens combined.
    pub used: usize,
    /// Tokens known to the store.
    pub known: usize,
}

/// Robinson's f(w) of a token: its spam ratio, pulled towards `x` when seen rarely.
pub fn token_probability(c: Counts, t: Totals, p: &Params) -> Option<f64> {
    let n = f64::from(c.spam) + f64::from(c.ham);
    if c.spam + c.ham < p.min_count || t.spam == 0 || t.ham == 0 {
        return None;
    }
    let rs = f64::from(c.spam) / t.spam as f64;
    let rh = p.ham_weight * f64::from(c.ham) / t.ham as f64;
    let pw = rs / (rs + rh);
    // A cap below 0.5 would cross its mirror (and make `clamp` panic): 0.5 at least.
    let cap = p.cap.clamp(0.5, 1.0);
    Some(((p.s * p.x + n * pw) / (p.s + n)).clamp(1.0 - cap, cap))
}

/// Combines the tokens of one message (their counts) into a probability.
pub fn classify(counts: &[Counts], totals: Totals, p: &Params) -> Classification {
    let mut probs: Vec<f64> = counts
        .iter()
        .filter_map(|c| token_probability(*c, totals, p))
        .collect();
    let known = probs.len();
    probs.retain(|f| (f - 0.5).abs() >= p.min_strength);
    // The strongest first.
    probs.sort_by(|a, b| (b - 0.5).abs().total_cmp(&(a - 0.5).abs()));
    probs.truncate(p.max_tokens);
    // No usable token: no evidence either way, and no bias applied (0.5, not spam).
    let log_odds = if probs.is_empty() {
        0.0
    } else {
        chi_log_odds(&probs) - p.bias
    };
    Classification {
        probability: 1.0 / (1.0 + (-log_odds).exp()),
        log_odds,
        used: probs.len(),
        known,
    }
}

/// Fisher's combining: the chi-square tails (2n degrees of freedom) of −2·Σln(1−f) and of
/// −2·Σln f, Qs and Qh. Robinson's indicator is (1 + Qh − Qs)/2; when both tails are tiny
/// (strong evidence both ways) it rounds to exactly 0.5 and the evidence is lost in the
/// rounding, so the tails are compared in logarithms: Qh / (Qh + Qs), which is above 0.5
/// exactly when Robinson's indicator is, and 0.5 when the evidence is truly balanced.
pub fn chi_combine(probs: &[f64]) -> f64 {
    1.0 / (1.0 + (-chi_log_odds(probs)).exp())
}

/// ln Qh − ln Qs of [`chi_combine`].
pub fn chi_log_odds(probs: &[f64]) -> f64 {
    if probs.is_empty() {
        return 0.0;
    }
    let ln_f: f64 = probs.iter().map(|f| f.max(1e-200).ln()).sum();
    let ln_1f: f64 = probs.iter().map(|f| (1.0 - f).max(1e-200).ln()).sum();
    let df = 2 * probs.len();
    let ln_qs = ln_chi2q(-2.0 * ln_1f, df);
    let ln_qh = ln_chi2q(-2.0 * ln_f, df);
    ln_qh - ln_qs
}

/// The upper tail of the chi-square distribution with an even number of degrees of freedom
/// `df`: P(X ≥ x2) = e^(−m) Σ_{i<df/2} m^i / i!, m = x2/2.
pub fn chi2q(x2: f64, df: usize) -> f64 {
    ln_chi2q(x2, df).exp().min(1.0)
}

/// The natural logarithm of [`chi2q`], exact where the tail itself underflows.
pub fn ln_chi2q(x2: f64, df: usize) -> f64 {
    let m = (x2 / 2.0).max(0.0);
    if m == 0.0 {
        return 0.0;
    }
    // ln of each term m^i / i!, summed with the log-sum-exp trick.
    let ln_m = m.ln();
    let mut terms = Vec::with_capacity(df / 2);
    let mut t = 0.0;
    terms.push(t);
    for i in 1..(df / 2).max(1) {
        t += ln_m - (i as f64).ln();
        terms.push(t);
    }
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - top).exp()).sum();
    (-m + top + sum.ln()).min(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chi2q_matches_known_values() {
        // P(X ≥ 2) with 2 degrees of freedom is e^-1.
        assert!((chi2q(2.0, 2) - (-1.0f64).exp()).abs() < 1e-12);
        // The median of chi-square with 4 d.o.f. is about 3.357.
        assert!((chi2q(3.357, 4) - 0.5).abs() < 1e-3);
        assert_eq!(chi2q(0.0, 10), 1.0);
        // Far in the tail, where the tail itself underflows: ln P(X ≥ 3000 | 2 d.o.f.) = −1500.
        assert!((ln_chi2q(3000.0, 2) + 1500.0).abs() < 1e-9);
    }

    #[test]
    fn evidence_both_ways_is_weighed_not_rounded_away() {
        // 60 tokens at 0.99 and 60 at 0.01, plus one more at 0.99: both tails underflow,
        // yet the extra spam token must tip the result.
        let mut probs = vec![0.99; 61];
        probs.extend(vec![0.01; 60]);
        let p = chi_combine(&probs);
        assert!(p > 0.5 && p < 1.0, "{p}");
        let balanced: Vec<f64> = [0.99, 0.01].repeat(60);
        assert!((chi_combine(&balanced) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn strong_tokens_decide_and_weak_ones_are_ignored() {
        let t = Totals {
            spam: 100,
            ham: 100,
        };
        let p = Params::default();
        let spammy = Counts { spam: 50, ham: 0 };
        let hammy = Counts { spam: 0, ham: 50 };
        let neutral = Counts { spam: 10, ham: 10 };
        assert!(classify(&[spammy; 5], t, &p).probability > 0.99);
        assert!(classify(&[hammy; 5], t, &p).probability < 0.01);
        let c = classify(&[neutral; 5], t, &p);
        // Nothing strong enough: exactly undecided, whatever the bias.
        assert_eq!(c.used, 0);
        assert_eq!(c.probability, 0.5);
        assert_eq!(c.known, 5);
    }

    #[test]
    fn rare_tokens_are_pulled_towards_x() {
        let t = Totals {
            spam: 100,
            ham: 100,
        };
        let p = Params::default();
        let once = token_probability(Counts { spam: 1, ham: 0 }, t, &p).unwrap_or(0.0);
        let often = token_probability(Counts { spam: 40, ham: 0 }, t, &p).unwrap_or(0.0);
        assert!(once < often && once > 0.9, "{once} {often}");
        assert!(token_probability(Counts::default(), Totals::default(), &p).is_none());
    }

    #[test]
    fn a_cap_bounds_each_token_both_ways() {
        let t = Totals {
            spam: 100,
            ham: 100,
        };
        let p = Params {
            cap: 0.99,
            ..Params::default()
        };
        let spam_only = token_probability(Counts { spam: 40, ham: 0 }, t, &p).unwrap_or(0.0);
        let ham_only = token_probability(Counts { spam: 0, ham: 40 }, t, &p).unwrap_or(1.0);
        assert!((spam_only - 0.99).abs() < 1e-12 && (ham_only - 0.01).abs() < 1e-12);
        let uncapped = token_probability(Counts { spam: 40, ham: 0 }, t, &Params::default());
        assert!(uncapped.is_some_and(|f| f > 0.999));
        let crossed = Params {
            cap: 0.2,
            ..Params::default()
        };
        assert_eq!(
            token_probability(Counts { spam: 40, ham: 0 }, t, &crossed),
            Some(0.5)
        );
    }
}
