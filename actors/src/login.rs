//! Password checks shared by SMTP AUTH and POP3 (and IMAP later): the directory lookup, the
//! "mail access" switch, and Argon2 verification on the blocking pool.

use crate::server::Shared;
use std::net::IpAddr;
use std::time::Duration;

fn window(shared: &Shared) -> Duration {
    Duration::from_secs(shared.config.limits.auth_failure_window_secs)
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

/// Returns the login (lower case) if `password` is right and the user may use mail services.
pub async fn verify(shared: &Shared, login: &str, password: String) -> Option<String> {
    let login = login.to_lowercase();
    let dir = shared.directory.snapshot();
    let user = dir.users.get(&login)?;
    if !user.mail_access {
        tracing::info!(user = %login, "login refused: mail access disabled");
        return None;
    }
    let hash = user.password_hash.clone();
    let ok =
        tokio::task::spawn_blocking(move || postcore_storage::password::verify(&password, &hash))
            .await
            .unwrap_or(false);
    ok.then_some(login)
}
