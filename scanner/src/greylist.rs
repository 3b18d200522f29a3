//! Greylisting (Email > Filter): a message whose score reaches the greylist threshold is
//! refused for now (`451 4.7.1`) the first time its triplet — client network (/24 for IPv4,
//! /64 for IPv6), envelope sender, recipient — is seen. A retry after the minimum delay and
//! within the retry window passes, and the triplet then passes at once for `pass_days`
//! (auto-pass). A triplet not retried in time, or not seen for `pass_days`, starts over.
//!
//! The state lives behind [`GreylistStore`] (RocksDB in the server, memory in tests), with
//! the store's clock, so a test can move time.

use crate::ScanContext;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What the administrator set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct GreylistPolicy {
    /// Greylist at all (when the score reaches the greylist threshold).
    pub enabled: bool,
    /// Seconds a sender must wait before a retry passes.
    pub delay_secs: u64,
    /// Seconds after the delay in which the retry must come; later, it starts over.
    pub retry_window_secs: u64,
    /// Days a triplet that passed keeps passing without delay (renewed on each message).
    pub pass_days: u64,
}

impl Default for GreylistPolicy {
    fn default() -> Self {
        // Postgrey's and Rspamd's defaults: five minutes, retried within a day, remembered
        // for a month and more.
        GreylistPolicy {
            enabled: true,
            delay_secs: 300,
            retry_window_secs: 86_400,
            pass_days: 36,
        }
    }
}

/// The state of one triplet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// When the triplet was first seen in this round (Unix seconds).
    pub first_seen: u64,
    /// Until when it passes without delay (0: it has not passed yet).
    pub pass_until: u64,
}

impl Entry {
    /// 16 octets: first seen and pass-until, big-endian.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.first_seen.to_be_bytes());
        b[8..].copy_from_slice(&self.pass_until.to_be_bytes());
        b
    }

    /// Reads [`Entry::to_bytes`]'s form.
    pub fn from_bytes(b: &[u8]) -> Option<Entry> {
        Some(Entry {
            first_seen: u64::from_be_bytes(b.get(..8)?.try_into().ok()?),
            pass_until: u64::from_be_bytes(b.get(8..16)?.try_into().ok()?),
        })
    }
}

/// Where triplets are kept, and the clock they are judged by.
pub trait GreylistStore: Send + Sync {
    /// The entry of `key`, if any.
    fn get(&self, key: &[u8]) -> Option<Entry>;
    /// Stores the entry of `key`.
    fn put(&self, key: &[u8], entry: Entry);
    /// Now, in Unix seconds.
    fn now(&self) -> u64;
}

/// What greylisting decided for a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every triplet passed.
    Pass,
    /// At least one triplet must wait: seconds left for the longest.
    Defer(u64),
}

/// The client network of a triplet: /24 for IPv4, /64 for IPv6 (senders' outbound pools).
fn network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The key of one triplet.
pub fn key(ip: IpAddr, sender: &str, rcpt: &str) -> Vec<u8> {
    format!(
        "{}\0{}\0{}",
        network(ip),
        sender.to_ascii_lowercase(),
        rcpt.to_ascii_lowercase()
    )
    .into_bytes()
}

/// Checks (and records) every recipient's triplet of the message in `ctx`.
pub fn check(store: &dyn GreylistStore, ctx: &ScanContext, policy: &GreylistPolicy) -> Outcome {
    let now = store.now();
    let pass_for = policy.pass_days.saturating_mul(86_400);
    let mut wait = 0u64;
    for rcpt in &ctx.rcpts {
        let k = key(ctx.client_ip, &ctx.mail_from, rcpt);
        let fresh = Entry {
            first_seen: now,
            pass_until: 0,
        };
        let next = match store.get(&k) {
            Some(e) if e.pass_until > now => Entry {
                pass_until: now + pass_for,
                ..e
            },
            Some(e) if e.pass_until == 0 && now < e.first_seen + policy.delay_secs => {
                wait = wait.max(e.first_seen + policy.delay_secs - now);
                continue;
            }
            Some(e)
                if e.pass_until == 0
                    && now <= e.first_seen + policy.delay_secs + policy.retry_window_secs =>
            {
                Entry {
                    pass_until: now + pass_for,
                    ..e
                }
            }
            // New, retried too late, or not seen for pass_days: start over.
            _ => {
                wait = wait.max(policy.delay_secs);
                fresh
            }
        };
        store.put(&k, next);
    }
    if wait == 0 {
        Outcome::Pass
    } else {
        Outcome::Defer(wait)
    }
}

/// A store in memory with a clock the caller sets (for tests and `filter check`).
#[derive(Default)]
pub struct MemoryStore {
    map: std::sync::Mutex<std::collections::HashMap<Vec<u8>, Entry>>,
    /// Now, in Unix seconds.
    pub clock: std::sync::atomic::AtomicU64,
}

impl GreylistStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Option<Entry> {
        self.map.lock().ok()?.get(key).copied()
    }

    fn put(&self, key: &[u8], entry: Entry) {
        if let Ok(mut m) = self.map.lock() {
            m.insert(key.to_vec(), entry);
        }
    }

    fn now(&self) -> u64 {
        self.clock.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn at(store: &MemoryStore, t: u64) {
        store.clock.store(t, Ordering::Relaxed);
    }

    #[test]
    fn first_attempt_waits_retry_after_delay_passes_then_auto_pass() {
        let store = MemoryStore::default();
        let p = GreylistPolicy::default();
        let ctx = ScanContext::for_test(&["a@example.test"]);
        at(&store, 1_000);
        assert_eq!(check(&store, &ctx, &p), Outcome::Defer(300));
        at(&store, 1_100);
        assert_eq!(check(&store, &ctx, &p), Outcome::Defer(200), "too early");
        at(&store, 1_300);
        assert_eq!(check(&store, &ctx, &p), Outcome::Pass);
        // Auto-pass: the next message of the triplet goes through at once.
        at(&store, 50_000);
        assert_eq!(check(&store, &ctx, &p), Outcome::Pass);
        // Same /24, same sender and recipient: same triplet.
        let mut other = ctx.clone();
        other.client_ip = IpAddr::from([127, 0, 0, 99]);
        assert_eq!(check(&store, &other, &p), Outcome::Pass);
        // Another recipient is another triplet.
        other.rcpts = vec!["b@example.test".into()];
        assert_eq!(check(&store, &other, &p), Outcome::Defer(300));
    }

    #[test]
    fn late_retries_and_expired_passes_start_over() {
        let store = MemoryStore::default();
        let p = GreylistPolicy::default();
        let ctx = ScanContext::for_test(&["a@example.test"]);
        at(&store, 0);
        assert_eq!(check(&store, &ctx, &p), Outcome::Defer(300));
        at(&store, 300 + 86_400 + 1);
        assert_eq!(
            check(&store, &ctx, &p),
            Outcome::Defer(300),
            "retry window missed"
        );
        at(&store, 300 + 86_400 + 301);
        assert_eq!(check(&store, &ctx, &p), Outcome::Pass);
        at(&store, 300 + 86_400 + 301 + 37 * 86_400);
        assert_eq!(check(&store, &ctx, &p), Outcome::Defer(300), "pass expired");
    }

    #[test]
    fn entries_round_trip_and_keys_group_networks() {
        let e = Entry {
            first_seen: 7,
            pass_until: 9,
        };
        assert_eq!(Entry::from_bytes(&e.to_bytes()), Some(e));
        assert_eq!(Entry::from_bytes(b"short"), None);
        let v6a: IpAddr = "2001:db8:1:2::5".parse().expect("ip");
        let v6b: IpAddr = "2001:db8:1:2:ffff::1".parse().expect("ip");
        assert_eq!(key(v6a, "S@x", "r@y"), key(v6b, "s@x", "R@Y"));
    }
}
