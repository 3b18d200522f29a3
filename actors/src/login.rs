//! Password checks shared by SMTP AUTH and POP3 (and IMAP later): the directory lookup, the
//! "mail access" switch, and Argon2 verification on the blocking pool.

use crate::server::Shared;

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
