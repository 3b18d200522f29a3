//! Email > Filter's Allow From / Allow To / Block From lists. An entry is an address
//! (`user@example.com`) or a domain (`example.com` or `@example.com`), and a domain matches
//! its subdomains too. Allow From and Block From match the envelope sender or the `From:`
//! address; Allow To matches an envelope recipient. An allowed sender skips the antivirus and
//! the antispam and wins over Block From; a blocked sender is refused.

use crate::ScanInput;
use crate::verdict::{Disposition, MessageAction, Reply, Symbol, Verdict};
use serde::{Deserialize, Serialize};

/// The three lists.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessLists {
    /// Senders whose mail is not checked.
    pub allow_from: Vec<String>,
    /// Recipients whose copy is not checked.
    pub allow_to: Vec<String>,
    /// Senders whose mail is refused.
    pub block_from: Vec<String>,
}

/// What the lists say of a message before any check runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Nothing listed: check as usual (with these recipient indexes allowed, if any).
    Check(Vec<usize>),
    /// The sender, or every recipient, is allowed: no check; the entry that matched.
    Allowed(String),
    /// The sender is blocked; the entry that matched, and the recipients allowed (who get
    /// their copy all the same).
    Blocked(String, Vec<usize>),
}

impl AccessLists {
    /// Checks the entries an administrator gives.
    pub fn validate(&self) -> Result<(), String> {
        for e in self
            .allow_from
            .iter()
            .chain(&self.allow_to)
            .chain(&self.block_from)
        {
            let t = e.trim_start_matches('@');
            let ok = !t.is_empty()
                && t.len() <= 254
                && t.matches('@').count() <= 1
                && !t.ends_with('@')
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'<' && b != b'>' && b != b',');
            if !ok {
                return Err(format!(
                    "bad address or domain {e:?} in an allow/block list"
                ));
            }
        }
        Ok(())
    }

    /// Whether no list has an entry.
    pub fn is_empty(&self) -> bool {
        self.allow_from.is_empty() && self.allow_to.is_empty() && self.block_from.is_empty()
    }

    /// Applies the lists to `input`.
    pub fn check(&self, input: &ScanInput<'_>) -> Access {
        if self.is_empty() {
            return Access::Check(Vec::new());
        }
        let ctx = input.context;
        let from_header = input
            .parsed()
            .and_then(|m| m.from())
            .and_then(|a| a.first())
            .and_then(|a| a.address())
            .map(str::to_string);
        let senders: Vec<&str> = [Some(ctx.mail_from.as_str()), from_header.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect();
        if let Some(e) = first_match(&self.allow_from, &senders) {
            return Access::Allowed(format!("allow_from {e}"));
        }
        let allowed: Vec<usize> = ctx
            .rcpts
            .iter()
            .enumerate()
            .filter(|(_, r)| first_match(&self.allow_to, &[r.as_str()]).is_some())
            .map(|(i, _)| i)
            .collect();
        if !ctx.rcpts.is_empty() && allowed.len() == ctx.rcpts.len() {
            return Access::Allowed("allow_to (every recipient)".into());
        }
        if let Some(e) = first_match(&self.block_from, &senders) {
            return Access::Blocked(e.to_string(), allowed);
        }
        Access::Check(allowed)
    }
}

/// The first entry of `list` matching any of `addrs`.
fn first_match<'a>(list: &'a [String], addrs: &[&str]) -> Option<&'a str> {
    list.iter()
        .find(|e| addrs.iter().any(|a| matches(e, a)))
        .map(String::as_str)
}

/// Whether `entry` (address, `domain` or `@domain`) matches address `addr`; a domain matches
/// its subdomains (case-insensitive).
pub fn matches(entry: &str, addr: &str) -> bool {
    let entry = entry.trim().to_ascii_lowercase();
    let addr = addr
        .trim()
        .trim_matches(|c| c == '<' || c == '>')
        .to_ascii_lowercase();
    if entry.contains('@') && !entry.starts_with('@') {
        return entry == addr;
    }
    let domain = entry.trim_start_matches('@');
    let Some((_, d)) = addr.rsplit_once('@') else {
        return false;
    };
    d == domain || d.ends_with(&format!(".{domain}"))
}

/// The verdict for a blocked sender: `554 5.7.1`.
pub fn blocked_verdict(entry: &str) -> Verdict {
    let mut v = Verdict::refuse(Reply::new(554, "5.7.1", "Error: sender blocked by policy"));
    v.symbols.push(Symbol {
        name: "BLOCK_FROM".into(),
        score: 100.0,
        detail: Some(entry.to_string()),
    });
    v.score = 100.0;
    v
}

/// The verdict for an allowed message: accepted unchecked, the entry in the symbols.
pub fn allowed_verdict(why: &str) -> Verdict {
    let mut v = Verdict::accept();
    v.symbols.push(Symbol {
        name: "ALLOWED".into(),
        score: 0.0,
        detail: Some(why.to_string()),
    });
    v
}

/// Gives the allowed recipients (Allow To) their copy unchecked: a message the checks refuse
/// or discard is accepted for them alone (the others' copies dropped, as the refusal meant
/// for them), and a copy the checks filed elsewhere stays in their INBOX.
pub fn spare_allowed(mut v: Verdict, allowed: &[usize], rcpts: usize) -> Verdict {
    if allowed.is_empty() {
        return v;
    }
    if matches!(v.action, MessageAction::Reject(_) | MessageAction::Discard) {
        v.action = MessageAction::Accept;
        for i in 0..rcpts {
            if !allowed.contains(&i) {
                v.set_disposition(i, Disposition::Discard);
            }
        }
    }
    for &i in allowed {
        v.set_disposition(i, Disposition::Keep);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ScanContext;

    #[test]
    fn entries_match_addresses_domains_and_subdomains() {
        assert!(matches("bob@example.com", "Bob@Example.com"));
        assert!(!matches("bob@example.com", "alice@example.com"));
        assert!(matches("example.com", "x@example.com"));
        assert!(matches("@example.com", "x@mail.example.com"));
        assert!(!matches("example.com", "x@notexample.com"));
        assert!(!matches("example.com", "example.com"));
    }

    fn lists() -> AccessLists {
        AccessLists {
            allow_from: vec!["partner.test".into()],
            allow_to: vec!["abuse@example.test".into()],
            block_from: vec!["spammer.test".into(), "partner.test".into()],
        }
    }

    #[test]
    fn allow_wins_over_block_and_from_header_counts() {
        let l = lists();
        let mut ctx = ScanContext::for_test(&["a@example.test"]);
        ctx.mail_from = "x@mx.partner.test".into();
        let raw = b"From: y@elsewhere.test\r\n\r\nhi\r\n";
        assert!(matches!(
            l.check(&ScanInput::new(&ctx, raw)),
            Access::Allowed(_)
        ));
        ctx.mail_from = "bounce@bulk.test".into();
        let raw = b"From: Spam <y@spammer.test>\r\n\r\nhi\r\n";
        assert_eq!(
            l.check(&ScanInput::new(&ctx, raw)),
            Access::Blocked("spammer.test".into(), vec![])
        );
        let raw = b"From: y@fine.test\r\n\r\nhi\r\n";
        assert_eq!(l.check(&ScanInput::new(&ctx, raw)), Access::Check(vec![]));
    }

    #[test]
    fn allow_to_spares_its_recipient() {
        let l = lists();
        let mut ctx = ScanContext::for_test(&["a@example.test", "abuse@example.test"]);
        ctx.mail_from = "x@spammer.test".into();
        let raw = b"From: x@spammer.test\r\n\r\nhi\r\n";
        // One of two recipients allowed: blocked, but that recipient is spared.
        assert_eq!(
            l.check(&ScanInput::new(&ctx, raw)),
            Access::Blocked("spammer.test".into(), vec![1])
        );
        ctx.rcpts = vec!["abuse@example.test".into()];
        assert!(matches!(
            l.check(&ScanInput::new(&ctx, raw)),
            Access::Allowed(_)
        ));
        let refused = Verdict::refuse(Reply::new(554, "5.7.1", "spam"));
        let v = spare_allowed(refused, &[1], 2);
        assert_eq!(v.action, MessageAction::Accept);
        assert_eq!(v.disposition(0), &Disposition::Discard);
        assert_eq!(v.disposition(1), &Disposition::Keep);
    }

    #[test]
    fn bad_entries_are_refused() {
        let bad = AccessLists {
            block_from: vec!["a b".into()],
            ..AccessLists::default()
        };
        assert!(bad.validate().is_err());
        assert!(lists().validate().is_ok());
    }
}
