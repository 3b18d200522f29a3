//! The classifier: Gary Robinson's token probabilities, the strongest tokens combined with
//! Fisher's chi-square method (Robinson, "A Statistical Approach to the Spam Problem",
//! Linux Journal 2003; as SpamAssassin's `CombineChi` and Rspamd's Bayes do), corrected for
//! tokens that come in correlated clusters by Brown's method (M. B. Brown, "A Method for
//! Combining Non-Independent, One-Sided Tests of Significance", Biometrics 31, 1975).

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
    /// Brown's correction for dependent evidence: the n combined tokens count as n / c
    /// independent ones (Fisher's statistic divided by c, on 2·round(n / c) degrees of
    /// freedom, at least 2). 1: Fisher's method as is, every token independent.
    pub dependence: f64,
}

impl Default for Params {
    fn default() -> Self {
        // SpamAssassin's x and minimum strength; s, the dependence and the bias chosen by
        // cross-validation inside each training half of the corpus (the dependence that
        // separated both halves best, then the smallest bias with at most one false
        // positive in both; bench/RESULTS.md).
        Params {
            s: 0.01,
            x: 0.538,
            min_strength: 0.346,
            max_tokens: 150,
            min_count: 1,
            ham_weight: 1.0,
            bias: 1.0,
            cap: 1.0,
            dependence: 12.0,
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
        chi_log_odds(&probs, p.dependence) - p.bias
    };
    Classification {
        probability: logistic(log_odds),
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
/// `dependence` is Brown's c (see [`Params::dependence`]; 1: independent tokens).
pub fn chi_combine(probs: &[f64], dependence: f64) -> f64 {
    logistic(chi_log_odds(probs, dependence))
}

/// The probability of log-odds `x`: 1 / (1 + e^−x).
pub fn logistic(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ln Qh − ln Qs of [`chi_combine`]. Brown's method: with correlated tests Fisher's statistic
/// X is distributed as c·χ² on f = 2n / c degrees of freedom rather than as χ² on 2n, so X / c
/// is compared with χ²(f); f is rounded to an even number (the tail's series needs one).
/// Both tails use the same f, so the sign — which class the evidence favours — does not
/// depend on c; only how strongly, and so how messages rank, does.
pub fn chi_log_odds(probs: &[f64], dependence: f64) -> f64 {
    if probs.is_empty() {
        return 0.0;
    }
    let c = dependence.max(1.0);
    let ln_f: f64 = probs.iter().map(|f| f.max(1e-200).ln()).sum();
    let ln_1f: f64 = probs.iter().map(|f| (1.0 - f).max(1e-200).ln()).sum();
    let df = 2 * ((probs.len() as f64 / c).round() as usize).max(1);
    let ln_qs = ln_chi2q(-2.0 * ln_1f / c, df);
    let ln_qh = ln_chi2q(-2.0 * ln_f / c, df);
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
        let p = chi_combine(&probs, 1.0);
        assert!(p > 0.5 && p < 1.0, "{p}");
        let balanced: Vec<f64> = [0.99, 0.01].repeat(60);
        assert!((chi_combine(&balanced, 1.0) - 0.5).abs() < 1e-9);
    }

    #[test]
    fn dependence_weakens_evidence_but_never_turns_it() {
        let mixed: Vec<f64> = [0.99, 0.95, 0.2, 0.9, 0.4].repeat(24);
        let fisher = chi_log_odds(&mixed, 1.0);
        let brown = chi_log_odds(&mixed, 12.0);
        assert!(fisher > 0.0 && brown > 0.0, "{fisher} {brown}");
        assert!(brown < fisher / 4.0, "{fisher} {brown}");
        let hammy: Vec<f64> = mixed.iter().map(|f| 1.0 - f).collect();
        assert!((chi_log_odds(&hammy, 12.0) + brown).abs() < 1e-9);
        // Below 1 counts as 1: no correction that strengthens the evidence.
        assert_eq!(chi_log_odds(&mixed, 0.5), fisher);
        // Fewer tokens than c: one degree of freedom pair, the statistic still divided.
        let few = chi_log_odds(&[0.99, 0.99, 0.99], 12.0);
        let one = chi_log_odds(&[0.99, 0.99, 0.99], 1.0);
        assert!(few > 0.0 && few < one, "{few} {one}");
    }

    #[test]
    fn with_dependence_one_it_is_fishers_method() {
        // Fisher: ln Qh − ln Qs with 2n degrees of freedom on −2·Σln f and −2·Σln(1 − f).
        let probs = [0.9, 0.8, 0.3];
        let x_h = -2.0 * probs.iter().map(|f: &f64| f.ln()).sum::<f64>();
        let x_s = -2.0 * probs.iter().map(|f: &f64| (1.0 - f).ln()).sum::<f64>();
        let expected = chi2q(x_h, 6).ln() - chi2q(x_s, 6).ln();
        assert!((chi_log_odds(&probs, 1.0) - expected).abs() < 1e-12);
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
        assert!(classify(&[spammy; 30], t, &p).probability > 0.99);
        assert!(classify(&[hammy; 30], t, &p).probability < 0.01);
        // A handful of tokens counts as about one piece of evidence (Brown's correction):
        // still spam, but far from certain.
        let few = classify(&[spammy; 5], t, &p).probability;
        assert!(few > 0.5 && few < 0.99, "{few}");
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
