//! Password checks shared by SMTP AUTH and POP3 (and IMAP later): the directory lookup, the
//! "mail access" switch, and Argon2 verification on the blocking pool.

use crate::context::Shared;
use std::net::IpAddr;
use std::time::Duration;

fn window(shared: &Shared) -> Duration {
    Duration::from_secs(shared.config.limits.auth_failure_window_secs)
}

/// True if a password may be sent on this connection: inside TLS, or anywhere when the
/// "allow unencrypted connections" setting is on (POP3 and IMAP; SMTP AUTH needs TLS).
pub fn plaintext_allowed(shared: &Shared, tls: bool) -> bool {
    tls || shared.directory.snapshot().settings.allow_unencrypted
}

/// True if `ip` has used up its failed logins for the configured window (all protocols).
pub fn blocked(shared: &Shared, ip: IpAddr) -> bool {
    shared.limits.auth_blocked(
        ip,
        shared.config.limits.max_auth_failures_per_ip,
        window(shared),
    )
}

/// Counts a failed login from `ip` towards the per-IP limit.
pub fn record_failure(shared: &Shared, ip: IpAddr) {
    shared.limits.auth_failed(ip, window(shared));
}

/// How long a verified password is remembered (Dovecot's `auth_cache_ttl` idea): mail
/// clients log in again and again with the same credentials, and each Argon2 verification
/// costs tens of milliseconds of CPU.
const AUTH_CACHE_TTL: Duration = Duration::from_secs(300);

/// Successful verifications: keyed digest of (login, password, stored hash) → when.
/// Only a salted SHA-256 is kept, never the password; a password change changes the stored
/// hash and so misses the cache.
struct AuthCache {
    salt: [u8; 32],
    ok: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
}

static AUTH_CACHE: std::sync::LazyLock<AuthCache> = std::sync::LazyLock::new(|| AuthCache {
    salt: rand::random(),
    ok: Default::default(),
});

fn cache_key(login: &str, password: &str, hash: &str) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(&AUTH_CACHE.salt);
    for part in [login, password, hash] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Waiting room in front of the blocking pool: a login storm queues here rather than
/// starting a blocking thread per attempt (the Argon2 work itself is bounded in
/// `postcore_storage::password`).
static VERIFY_SLOTS: std::sync::LazyLock<tokio::sync::Semaphore> = std::sync::LazyLock::new(|| {
    tokio::sync::Semaphore::new(postcore_storage::password::max_concurrent())
});

/// Verifies `password` against the PHC `hash` on the blocking pool, at most
/// `password::max_concurrent()` at a time.
pub async fn check_password(password: String, hash: String) -> bool {
    let Ok(_permit) = VERIFY_SLOTS.acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || postcore_storage::password::verify(&password, &hash))
        .await
        .unwrap_or(false)
}

/// Returns the login (lower case) if `password` is right and the user may use mail services.
pub async fn verify(shared: &Shared, login: &str, password: String) -> Option<String> {
    let login = login.to_lowercase();
    let dir = shared.directory.snapshot();
    let user = dir.users.get(&login)?;
    if !user.mail_access {
        tracing::info!(user = %login, "login refused: mail access disabled");
        return None;
    }
    let limits = &shared.config.limits;
    if shared
        .limits
        .account_blocked(&login, limits.max_auth_failures_per_account, window(shared))
    {
        crate::limits::log_limited_by(&login, || {
            tracing::warn!(user = %login, "login refused: account failure limit reached (limits.max_auth_failures_per_account)");
        });
        return None;
    }
    let hash = user.password_hash.clone();
    let key = cache_key(&login, &password, &hash);
    {
        let mut c = AUTH_CACHE.ok.lock().unwrap_or_else(|p| p.into_inner());
        match c.get(&key) {
            Some(t) if t.elapsed() < AUTH_CACHE_TTL => return Some(login),
            Some(_) => {
                c.remove(&key);
            }
            None => {}
        }
    }
    let ok = check_password(password, hash).await;
    if ok {
        let mut c = AUTH_CACHE.ok.lock().unwrap_or_else(|p| p.into_inner());
        if c.len() > 100_000 {
            c.retain(|_, t| t.elapsed() < AUTH_CACHE_TTL);
        }
        c.insert(key, std::time::Instant::now());
    } else {
        shared.limits.account_failed(&login, window(shared));
    }
    ok.then_some(login)
}
