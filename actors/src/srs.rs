//! The Sender Rewriting Scheme (SRS0, as Postfix's postsrsd and most forwarders write it):
//! mail that a user's forward or a Sieve redirect sends on to another domain leaves with the
//! envelope sender `SRS0=HHHH=TT=domain=local@<our domain>`, so the receiving side's SPF check
//! sees our domain, and a bounce to that address comes back to us and is sent on to the
//! original sender. `HHHH` is a keyed hash (HMAC-SHA1 under a secret kept in the data
//! directory) of the time stamp and the original address, `TT` the day in base32 (mod 1024);
//! an address is honoured for [`MAX_AGE_DAYS`] days.

use anyhow::{Context, Result};
use base64::Engine;
use std::path::Path;

/// How long a rewritten address is accepted back (days).
pub const MAX_AGE_DAYS: u64 = 21;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// The rewriting key.
pub struct Srs {
    key: ring::hmac::Key,
}

impl Srs {
    /// The secret from `data_dir/srs.secret`, made (durably) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<Srs> {
        let p = data_dir.join("srs.secret");
        let secret = match std::fs::read_to_string(&p) {
            Ok(s) if s.trim().len() >= 32 => s.trim().to_string(),
            _ => {
                use rand::Rng;
                let s: String = rand::thread_rng()
                    .sample_iter(&rand::distributions::Alphanumeric)
                    .take(48)
                    .map(char::from)
                    .collect();
                postcore_storage::durable_file::write(&p, format!("{s}\n").as_bytes(), 0o600)
                    .with_context(|| format!("creating {}", p.display()))?;
                s
            }
        };
        Ok(Srs::with_secret(secret.as_bytes()))
    }

    /// A key from `secret` (tests).
    pub fn with_secret(secret: &[u8]) -> Srs {
        Srs {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret),
        }
    }

    fn hash(&self, stamp: &str, domain: &str, local: &str) -> String {
        let data = format!("{stamp}{domain}{local}").to_ascii_lowercase();
        let tag = ring::hmac::sign(&self.key, data.as_bytes());
        let b64 = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        b64[..4].to_string()
    }

    /// The rewritten sender for mail from `sender` sent on by `our_domain`; the null sender
    /// stays null, and an address already rewritten (by us or another forwarder) is kept.
    pub fn forward(&self, sender: &str, our_domain: &str, now_secs: u64) -> String {
        let Some((local, domain)) = sender.rsplit_once('@') else {
            return sender.to_string();
        };
        let rewritten = local
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("SRS0="));
        if sender.is_empty() || rewritten || domain.eq_ignore_ascii_case(our_domain) {
            return sender.to_string();
        }
        let stamp = stamp(now_secs / 86400);
        let hash = self.hash(&stamp, domain, local);
        format!("SRS0={hash}={stamp}={domain}={local}@{our_domain}")
    }

    /// The original sender an `SRS0=…` local part stands for, if its hash is right and its
    /// time stamp not older than [`MAX_AGE_DAYS`].
    pub fn reverse(&self, local: &str, now_secs: u64) -> Option<String> {
        if !local
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case("SRS0="))
        {
            return None;
        }
        let mut parts = local[5..].splitn(4, '=');
        let (hash, stamp, domain, user) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if domain.is_empty()
            || user.is_empty()
            || !self.hash(stamp, domain, user).eq_ignore_ascii_case(hash)
        {
            return None;
        }
        let then = day_of(stamp)?;
        let today = (now_secs / 86400) % 1024;
        let age = (today + 1024 - then) % 1024;
        (age <= MAX_AGE_DAYS).then(|| format!("{user}@{domain}"))
    }
}

/// Two base32 characters for a day number mod 1024.
fn stamp(day: u64) -> String {
    let d = (day % 1024) as usize;
    [BASE32[d >> 5] as char, BASE32[d & 31] as char]
        .iter()
        .collect()
}

fn day_of(stamp: &str) -> Option<u64> {
    let b = stamp.as_bytes();
    if b.len() != 2 {
        return None;
    }
    let v = |c: u8| {
        BASE32
            .iter()
            .position(|x| *x == c.to_ascii_uppercase())
            .map(|p| p as u64)
    };
    Some(v(b[0])? << 5 | v(b[1])?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_796_299_200;

    #[test]
    fn round_trip_and_refusals() {
        let s = Srs::with_secret(b"a secret of at least thirty-two octets");
        let f = s.forward("alice@origin.test", "forward.test", NOW);
        assert!(
            f.starts_with("SRS0=") && f.ends_with("=origin.test=alice@forward.test"),
            "{f}"
        );
        let local = f.rsplit_once('@').unwrap().0;
        assert_eq!(s.reverse(local, NOW).as_deref(), Some("alice@origin.test"));
        assert_eq!(
            s.reverse(&local.to_ascii_lowercase(), NOW + 86400 * 3)
                .as_deref(),
            Some("alice@origin.test")
        );
        // Too old, tampered, or keyed differently: refused.
        assert_eq!(s.reverse(local, NOW + 86400 * 30), None);
        assert_eq!(s.reverse(&local.replace("alice", "mallory"), NOW), None);
        assert_eq!(
            Srs::with_secret(b"another secret of thirty-two octets!").reverse(local, NOW),
            None
        );
        // Null, already rewritten and our own senders stay as they are.
        assert_eq!(s.forward("", "forward.test", NOW), "");
        assert_eq!(s.forward(&f, "other.test", NOW), f);
        assert_eq!(
            s.forward("bob@forward.test", "forward.test", NOW),
            "bob@forward.test"
        );
        assert_eq!(day_of(&stamp(1023)), Some(1023));
    }
}
