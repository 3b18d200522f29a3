//! Password hashing with Argon2id (PHC string format), for user and admin secrets.
//!
//! Each Argon2 computation takes 19 MiB of memory (the crate's default, OWASP's minimum) and
//! tens of milliseconds of CPU, so at most [`max_concurrent`] run at once, whoever asks: a
//! burst of logins with wrong passwords from many addresses queues here instead of taking
//! 19 MiB and a thread each.

use anyhow::{Result, anyhow};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use std::sync::{Condvar, Mutex};

/// How many Argon2 computations may run at once: the number of cores, between 2 and 8.
pub fn max_concurrent() -> usize {
    // Looked up once: available_parallelism reads cgroup files on Linux.
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .clamp(2, 8)
    })
}

/// Counting semaphore over Argon2 work (blocking: callers are on blocking threads).
struct Slots {
    busy: Mutex<usize>,
    freed: Condvar,
}

static SLOTS: Slots = Slots {
    busy: Mutex::new(0),
    freed: Condvar::new(),
};

/// Holds one slot; gives it back when dropped.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let max = max_concurrent();
        let mut busy = SLOTS.busy.lock().unwrap_or_else(|p| p.into_inner());
        while *busy >= max {
            busy = SLOTS.freed.wait(busy).unwrap_or_else(|p| p.into_inner());
        }
        *busy += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *SLOTS.busy.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        SLOTS.freed.notify_one();
    }
}

/// Argon2 computations running right now.
pub fn in_flight() -> usize {
    *SLOTS.busy.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hashes `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    let _slot = Slot::take();
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow!("hashing password: {e}"))
}

/// Checks `password` against a PHC hash; a malformed hash never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => {
            let _slot = Slot::take();
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn roundtrip() {
        let h = super::hash("s3cret").unwrap();
        assert!(super::verify("s3cret", &h));
        assert!(!super::verify("wrong", &h));
        assert!(!super::verify("s3cret", "garbage"));
    }

    #[test]
    fn no_more_than_max_concurrent_computations_at_once() {
        let h = super::hash("pw").unwrap();
        let threads: Vec<_> = (0..4 * super::max_concurrent())
            .map(|_| {
                let h = h.clone();
                std::thread::spawn(move || assert!(!super::verify("wrong", &h)))
            })
            .collect();
        let mut peak = 0;
        while !threads.iter().all(|t| t.is_finished()) {
            peak = peak.max(super::in_flight());
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        for t in threads {
            t.join().unwrap();
        }
        // Other tests in this process may hash at the same time: the bound is global.
        assert!(peak >= 1 && peak <= super::max_concurrent(), "peak {peak}");
    }
}
