//! What the network says about a message: DNS block lists for the client address (DNSBL)
//! and for the domains its links point to (URIBL), the client's reverse DNS (iprev, RFC 8601
//! §3), whether its HELO name resolves, and the sender authentication results — SPF (RFC
//! 7208), DKIM (RFC 6376), DMARC (RFC 7489), ARC (RFC 8617).
//!
//! The lookups themselves happen in `postcore-actors` (asynchronously, all of a message's at
//! once, inside a time budget); this module holds the facts they produce ([`NetFacts`], part
//! of the [`crate::ScanContext`]) and turns them into symbols with scores, so the analysis
//! stays pure and tests feed facts directly. Symbol names follow Rspamd's where it has one.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// A DNS block list: where to ask and what an answer is worth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DnsList {
    /// The list's zone (`zen.spamhaus.org`, `dbl.spamhaus.org`, `multi.surbl.org`).
    pub zone: String,
    /// The symbol a listing adds (`RBL_SPAMHAUS`).
    pub symbol: String,
    /// The score of a listing whose return code has no score of its own.
    pub score: f64,
    /// Scores by return code (`"127.0.0.2" = 3.0`); when set, only these codes count.
    pub codes: BTreeMap<String, f64>,
}

impl Default for DnsList {
    fn default() -> Self {
        DnsList {
            zone: String::new(),
            symbol: String::new(),
            score: 3.0,
            codes: BTreeMap::new(),
        }
    }
}

impl DnsList {
    /// Checks what an administrator gives: a zone name, a symbol, codes that are addresses.
    pub fn validate(&self) -> Result<(), String> {
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if self.zone.len() > 200 || !self.zone.trim_end_matches('.').split('.').all(label_ok) {
            return Err(format!(
                "DNS list zone {:?} is not a domain name",
                self.zone
            ));
        }
        if self.symbol.is_empty()
            || !self
                .symbol
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(format!(
                "DNS list symbol {:?} must be letters, digits and _",
                self.symbol
            ));
        }
        if !self.score.is_finite() || self.codes.values().any(|s| !s.is_finite()) {
            return Err(format!("DNS list {}: scores must be numbers", self.zone));
        }
        for c in self.codes.keys() {
            if c.parse::<Ipv4Addr>().is_err() {
                return Err(format!(
                    "DNS list {}: return code {c:?} is not an IPv4 address",
                    self.zone
                ));
            }
        }
        Ok(())
    }

    /// The score of a listing answered with `codes`, if any of them counts. Answers in
    /// 127.255.255.0/24 are the lists' own error codes (refused queries, e.g. through a
    /// public resolver) and answers outside 127.0.0.0/8 are not listings: neither counts.
    pub fn score_of(&self, codes: &[Ipv4Addr]) -> Option<(f64, Ipv4Addr)> {
        let listing = |c: &&Ipv4Addr| {
            let o = c.octets();
            o[0] == 127 && !(o[1] == 255 && o[2] == 255)
        };
        let mut best: Option<(f64, Ipv4Addr)> = None;
        for c in codes.iter().filter(listing) {
            let s = if self.codes.is_empty() {
                Some(self.score)
            } else {
                self.codes.get(&c.to_string()).copied()
            };
            if let Some(s) = s
                && best.is_none_or(|(b, _)| s > b)
            {
                best = Some((s, *c));
            }
        }
        best
    }
}

/// The DNS name to ask `zone` about `ip` (RFC 5782 §2.1 IPv4: octets reversed; §2.4 IPv6:
/// nibbles reversed).
pub fn dnsbl_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(80);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            format!("{s}{zone}.")
        }
    }
}

/// The domain a URI block list is asked about for a link host: its registered domain,
/// approximated as the last two labels, or three under a two-letter country code whose
/// second level is short (`example.co.uk`, `example.com.au`). `None` for an address literal
/// or a name without a dot.
pub fn uribl_domain(host: &str) -> Option<String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
        return None;
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 || labels.iter().any(|l| l.is_empty()) {
        return None;
    }
    let n = labels.len();
    let cc_second = labels[n - 1].len() == 2
        && labels[n - 2].len() <= 3
        && matches!(
            labels[n - 2],
            "co" | "com" | "net" | "org" | "ac" | "gov" | "edu" | "ne" | "or" | "go" | "gob"
        );
    let keep = if cc_second && n >= 3 { 3 } else { 2 };
    Some(labels[n - keep..].join("."))
}

/// An authentication method's result, as RFC 8601 §2.7 names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthResult {
    /// Authenticated.
    Pass,
    /// Explicitly not authorised / verification failed.
    Fail,
    /// SPF `~all`.
    SoftFail,
    /// SPF `?all`, or a DKIM signature that could not be checked.
    Neutral,
    /// Nothing to check (no record, no signature).
    None,
    /// A transient error (DNS timeout, SERVFAIL).
    TempError,
    /// A permanent error (a broken record).
    PermError,
}

impl AuthResult {
    /// The RFC 8601 keyword.
    pub fn name(self) -> &'static str {
        match self {
            AuthResult::Pass => "pass",
            AuthResult::Fail => "fail",
            AuthResult::SoftFail => "softfail",
            AuthResult::Neutral => "neutral",
            AuthResult::None => "none",
            AuthResult::TempError => "temperror",
            AuthResult::PermError => "permerror",
        }
    }
}

/// A DMARC policy (RFC 7489 §6.3 `p=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmarcPolicy {
    /// Monitor only.
    None,
    /// Treat failing mail as suspicious.
    Quarantine,
    /// Refuse failing mail.
    Reject,
}

/// The DMARC evaluation of the `From:` domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmarcFact {
    /// `pass`, `fail`, `none`, `temperror`, `permerror`.
    pub result: AuthResult,
    /// The policy that applies to this message (the subdomain policy where it applies).
    pub policy: DmarcPolicy,
    /// The `From:` domain evaluated.
    pub domain: String,
}

/// One DKIM signature's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DkimFact {
    /// Its result.
    pub result: AuthResult,
    /// The signing domain (`d=`), when the signature could be read.
    pub domain: String,
}

/// A block list that listed something.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    /// The list's zone.
    pub zone: String,
    /// What was looked up (the client address, or a link's domain).
    pub item: String,
    /// The return codes.
    pub codes: Vec<Ipv4Addr>,
}

/// Whether the HELO name resolves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeloFact {
    /// It has an address (A or AAAA) or an MX.
    Resolves,
    /// It has neither (NXDOMAIN or no records).
    NoSuchHost,
}

/// Everything the network checks found for one message. A check that was not made (turned
/// off, not applicable, or out of time) is `None` or empty, and adds no symbol.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetFacts {
    /// SPF for the envelope sender (or the HELO name with the null sender), and the
    /// domain checked.
    pub spf: Option<(AuthResult, String)>,
    /// One entry per DKIM signature, when DKIM was checked (empty: no signature).
    pub dkim: Option<Vec<DkimFact>>,
    /// DMARC, when the `From:` domain could be evaluated.
    pub dmarc: Option<DmarcFact>,
    /// ARC chain validation (RFC 8617 §5.2), when the message has an ARC set.
    pub arc: Option<AuthResult>,
    /// Reverse DNS of the client: `pass` (a PTR name that resolves back to the address),
    /// `fail` (a PTR that does not confirm), `permerror` (no PTR), `temperror`; with the
    /// PTR name when there is one.
    pub iprev: Option<(AuthResult, Option<String>)>,
    /// Whether the HELO name resolves (not checked for address literals).
    pub helo: Option<HeloFact>,
    /// DNSBL listings of the client address.
    pub dnsbl: Vec<Listing>,
    /// URIBL listings of link domains.
    pub uribl: Vec<Listing>,
    /// Checks the DNS budget cut off (their symbols are left out).
    pub timed_out: Vec<String>,
    /// Lookups started: one per list entry, iprev, HELO, and one per SPF, DKIM, ARC or DMARC
    /// evaluation (which may itself ask several questions); cache hits included.
    pub lookups: u32,
    /// Milliseconds the checks took.
    pub millis: u64,
}

/// Scores of the built-in network symbols (Rspamd's defaults where it has the symbol);
/// `filter.spam.symbol_scores` overrides any of them by name.
pub const DEFAULT_SCORES: &[(&str, f64)] = &[
    ("R_SPF_ALLOW", -0.2),
    ("R_SPF_FAIL", 1.0),
    ("R_SPF_SOFTFAIL", 0.0),
    ("R_SPF_NEUTRAL", 0.0),
    ("R_SPF_NA", 0.0),
    ("R_SPF_DNSFAIL", 0.0),
    ("R_SPF_PERMFAIL", 0.0),
    ("R_DKIM_ALLOW", -0.2),
    ("R_DKIM_REJECT", 1.0),
    ("R_DKIM_TEMPFAIL", 0.0),
    ("R_DKIM_PERMFAIL", 0.0),
    ("R_DKIM_NA", 0.0),
    ("DMARC_POLICY_ALLOW", -0.5),
    ("DMARC_POLICY_REJECT", 2.0),
    ("DMARC_POLICY_QUARANTINE", 1.5),
    ("DMARC_POLICY_SOFTFAIL", 0.1),
    ("DMARC_NA", 0.0),
    ("DMARC_DNSFAIL", 0.0),
    ("DMARC_BAD_POLICY", 0.5),
    ("ARC_ALLOW", -1.0),
    ("ARC_REJECT", 1.0),
    ("ARC_INVALID", 0.5),
    ("ARC_DNSFAIL", 0.0),
    ("RDNS_NONE", 1.0),
    ("RDNS_MISMATCH", 0.5),
    ("RDNS_DNSFAIL", 0.0),
    ("HFILTER_HELO_NORES_A_OR_MX", 0.3),
];

/// One symbol the facts give: name, score, detail.
pub type NetSymbol = (String, f64, Option<String>);

fn score(name: &str, overrides: &BTreeMap<String, f64>) -> f64 {
    overrides.get(name).copied().unwrap_or_else(|| {
        DEFAULT_SCORES
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(0.0, |(_, s)| *s)
    })
}

/// The symbols of `facts`: authentication results, reverse DNS, HELO, and one symbol per
/// listing list (its best-scoring code), with `overrides` applied to the built-in scores.
pub fn symbols(
    facts: &NetFacts,
    dnsbl: &[DnsList],
    uribl: &[DnsList],
    overrides: &BTreeMap<String, f64>,
) -> Vec<NetSymbol> {
    let mut out: Vec<NetSymbol> = Vec::new();
    let mut push = |name: &str, detail: Option<String>| {
        out.push((name.to_string(), score(name, overrides), detail));
    };
    if let Some((r, domain)) = &facts.spf {
        push(spf_symbol(*r), Some(domain.clone()));
    }
    if let Some(sigs) = &facts.dkim {
        let domains: Vec<&str> = sigs.iter().map(|d| d.domain.as_str()).collect();
        push(
            dkim_symbol(sigs),
            (!domains.is_empty()).then(|| domains.join(",")),
        );
    }
    if let Some(d) = &facts.dmarc {
        push(dmarc_symbol(d), Some(d.domain.clone()));
    }
    if let Some(a) = facts.arc {
        let name = match a {
            AuthResult::Pass => Some("ARC_ALLOW"),
            AuthResult::Fail => Some("ARC_REJECT"),
            AuthResult::PermError => Some("ARC_INVALID"),
            AuthResult::TempError => Some("ARC_DNSFAIL"),
            _ => None,
        };
        if let Some(n) = name {
            push(n, None);
        }
    }
    match &facts.iprev {
        Some((AuthResult::PermError, _)) => push("RDNS_NONE", None),
        Some((AuthResult::Fail, ptr)) => push("RDNS_MISMATCH", ptr.clone()),
        Some((AuthResult::TempError, _)) => push("RDNS_DNSFAIL", None),
        _ => {}
    }
    if facts.helo == Some(HeloFact::NoSuchHost) {
        push("HFILTER_HELO_NORES_A_OR_MX", None);
    }
    out.extend(list_symbols(&facts.dnsbl, dnsbl));
    out.extend(list_symbols(&facts.uribl, uribl));
    out
}

fn spf_symbol(r: AuthResult) -> &'static str {
    match r {
        AuthResult::Pass => "R_SPF_ALLOW",
        AuthResult::Fail => "R_SPF_FAIL",
        AuthResult::SoftFail => "R_SPF_SOFTFAIL",
        AuthResult::Neutral => "R_SPF_NEUTRAL",
        AuthResult::None => "R_SPF_NA",
        AuthResult::TempError => "R_SPF_DNSFAIL",
        AuthResult::PermError => "R_SPF_PERMFAIL",
    }
}

/// One DKIM symbol for the message: any valid signature allows, else any failed one
/// rejects, else the errors, else `R_DKIM_NA` when there is no signature at all.
fn dkim_symbol(sigs: &[DkimFact]) -> &'static str {
    let any = |r: AuthResult| sigs.iter().any(|s| s.result == r);
    if any(AuthResult::Pass) {
        "R_DKIM_ALLOW"
    } else if any(AuthResult::Fail) {
        "R_DKIM_REJECT"
    } else if any(AuthResult::TempError) {
        "R_DKIM_TEMPFAIL"
    } else if any(AuthResult::PermError) || any(AuthResult::Neutral) {
        "R_DKIM_PERMFAIL"
    } else {
        "R_DKIM_NA"
    }
}

fn dmarc_symbol(d: &DmarcFact) -> &'static str {
    match (d.result, d.policy) {
        (AuthResult::Pass, _) => "DMARC_POLICY_ALLOW",
        (AuthResult::Fail, DmarcPolicy::Reject) => "DMARC_POLICY_REJECT",
        (AuthResult::Fail, DmarcPolicy::Quarantine) => "DMARC_POLICY_QUARANTINE",
        (AuthResult::Fail, DmarcPolicy::None) => "DMARC_POLICY_SOFTFAIL",
        (AuthResult::TempError, _) => "DMARC_DNSFAIL",
        (AuthResult::PermError, _) => "DMARC_BAD_POLICY",
        _ => "DMARC_NA",
    }
}

/// One symbol per configured list that listed something: its best code's score, with what
/// was listed and the code as detail.
fn list_symbols(found: &[Listing], lists: &[DnsList]) -> Vec<NetSymbol> {
    let mut out: Vec<NetSymbol> = Vec::new();
    for list in lists {
        let mut best: Option<(f64, String)> = None;
        for l in found.iter().filter(|l| l.zone == list.zone) {
            if let Some((s, code)) = list.score_of(&l.codes)
                && best.as_ref().is_none_or(|(b, _)| s > *b)
            {
                best = Some((s, format!("{}:{code}", l.item)));
            }
        }
        if let Some((s, detail)) = best {
            out.push((list.symbol.clone(), s, Some(detail)));
        }
    }
    out
}

/// What DMARC asks of a failing message, when the administrator honours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmarcDemand {
    /// Refuse it (`p=reject`).
    Reject,
    /// File it as spam (`p=quarantine`).
    Quarantine,
}

/// What the `From:` domain's DMARC policy demands of this message: only for a failing
/// result under `p=reject` or `p=quarantine` (RFC 7489 §6.6.4 leaves the final decision
/// to the receiver; postcore follows the policy unless the administrator turned it off).
pub fn dmarc_demand(facts: &NetFacts) -> Option<(DmarcDemand, &str)> {
    let d = facts.dmarc.as_ref()?;
    if d.result != AuthResult::Fail {
        return None;
    }
    match d.policy {
        DmarcPolicy::Reject => Some((DmarcDemand::Reject, &d.domain)),
        DmarcPolicy::Quarantine => Some((DmarcDemand::Quarantine, &d.domain)),
        DmarcPolicy::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(zone: &str, symbol: &str) -> DnsList {
        DnsList {
            zone: zone.into(),
            symbol: symbol.into(),
            ..DnsList::default()
        }
    }

    #[test]
    fn dnsbl_names_reverse_octets_and_nibbles() {
        // RFC 5782 §2.1 and §2.4 examples.
        assert_eq!(
            dnsbl_name("192.168.2.1".parse().unwrap(), "dnsbl.example.net"),
            "1.2.168.192.dnsbl.example.net."
        );
        assert_eq!(
            dnsbl_name(
                "2001:db8:1:2:3:4:567:89ab".parse().unwrap(),
                "ugly.example.com"
            ),
            "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.8.b.d.0.1.0.0.2.ugly.example.com."
        );
        // An IPv4-mapped address is asked about as IPv4.
        assert_eq!(
            dnsbl_name("::ffff:10.0.0.1".parse().unwrap(), "z.test"),
            "1.0.0.10.z.test."
        );
    }

    #[test]
    fn list_scores_by_code_and_ignores_error_codes() {
        let mut l = list("zen.test", "RBL_ZEN");
        let c = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(l.score_of(&[c("127.0.0.2")]), Some((3.0, c("127.0.0.2"))));
        // The list's own error answers and non-loopback answers are not listings.
        assert_eq!(l.score_of(&[c("127.255.255.254")]), None);
        assert_eq!(l.score_of(&[c("10.0.0.1")]), None);
        l.codes.insert("127.0.0.4".into(), 5.0);
        l.codes.insert("127.0.0.10".into(), -1.0);
        assert_eq!(l.score_of(&[c("127.0.0.2")]), None);
        assert_eq!(
            l.score_of(&[c("127.0.0.10"), c("127.0.0.4")]),
            Some((5.0, c("127.0.0.4")))
        );
        assert!(l.validate().is_ok());
        l.codes.insert("x".into(), 1.0);
        assert!(l.validate().is_err());
        assert!(list("bad zone", "S").validate().is_err());
        assert!(list("ok.test", "bad-symbol").validate().is_err());
    }

    #[test]
    fn uribl_domain_is_the_registered_domain() {
        assert_eq!(uribl_domain("www.Example.COM."), Some("example.com".into()));
        assert_eq!(
            uribl_domain("a.b.example.co.uk"),
            Some("example.co.uk".into())
        );
        assert_eq!(uribl_domain("shop.example.de"), Some("example.de".into()));
        assert_eq!(uribl_domain("192.0.2.1"), None);
        assert_eq!(uribl_domain("localhost"), None);
    }

    #[test]
    fn facts_become_symbols_with_overridable_scores() {
        let facts = NetFacts {
            spf: Some((AuthResult::Fail, "spoof.test".into())),
            dkim: Some(vec![
                DkimFact {
                    result: AuthResult::Fail,
                    domain: "a.test".into(),
                },
                DkimFact {
                    result: AuthResult::Pass,
                    domain: "b.test".into(),
                },
            ]),
            dmarc: Some(DmarcFact {
                result: AuthResult::Fail,
                policy: DmarcPolicy::Reject,
                domain: "spoof.test".into(),
            }),
            iprev: Some((AuthResult::PermError, None)),
            helo: Some(HeloFact::NoSuchHost),
            dnsbl: vec![Listing {
                zone: "zen.test".into(),
                item: "192.0.2.1".into(),
                codes: vec!["127.0.0.2".parse().unwrap()],
            }],
            ..NetFacts::default()
        };
        let mut overrides = BTreeMap::new();
        overrides.insert("RDNS_NONE".to_string(), 2.5);
        let s = symbols(&facts, &[list("zen.test", "RBL_ZEN")], &[], &overrides);
        let get = |n: &str| s.iter().find(|x| x.0 == n).map(|x| x.1);
        assert_eq!(get("R_SPF_FAIL"), Some(1.0));
        assert_eq!(get("R_DKIM_ALLOW"), Some(-0.2), "{s:?}");
        assert_eq!(get("DMARC_POLICY_REJECT"), Some(2.0));
        assert_eq!(get("RDNS_NONE"), Some(2.5));
        assert_eq!(get("HFILTER_HELO_NORES_A_OR_MX"), Some(0.3));
        assert_eq!(get("RBL_ZEN"), Some(3.0));
        let detail = s
            .iter()
            .find(|x| x.0 == "RBL_ZEN")
            .and_then(|x| x.2.clone());
        assert_eq!(detail.as_deref(), Some("192.0.2.1:127.0.0.2"));
        assert_eq!(
            dmarc_demand(&facts),
            Some((DmarcDemand::Reject, "spoof.test"))
        );
        // Nothing checked: nothing said.
        assert!(symbols(&NetFacts::default(), &[], &[], &overrides).is_empty());
    }
}
