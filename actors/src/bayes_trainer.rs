//! Learning from what users do over IMAP, off the sessions' path: a session hands the
//! trainer a message file (hard-linked into `data_dir/bayes-queue/`, named by time, sequence
//! and class — no copy, a few microseconds) and goes on; one trainer thread learns the
//! queued files in order and removes each once learned. The queue is a directory, so what
//! was handed over survives a restart or a crash of the server; a message is learned once
//! whatever happens, because the model records each message's digest (a file learned again
//! after a crash between the learn and the removal is "already learned").

use postcore_scanner::bayes::{Bayes, Class};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Duration;

/// Messages past this size are not learned (their first part says all there is to say,
/// and a 25 MB attachment is not worth tokenizing): only the first `LEARN_LIMIT` octets.
const LEARN_LIMIT: u64 = 512 * 1024;

/// The queue and the thread that empties it.
pub struct Trainer {
    dir: PathBuf,
    wake: std::sync::Mutex<Sender<()>>,
    seq: AtomicU64,
}

impl Trainer {
    /// Starts the trainer over `bayes`, queue in `data_dir/bayes-queue` (what is left there
    /// from before is learned first).
    pub fn start(
        data_dir: &Path,
        bayes: Arc<Bayes>,
        max_tokens: impl Fn() -> u64 + Send + 'static,
    ) -> std::io::Result<Arc<Trainer>> {
        let dir = data_dir.join("bayes-queue");
        std::fs::create_dir_all(&dir)?;
        let (tx, rx) = channel();
        let t = Arc::new(Trainer {
            dir: dir.clone(),
            wake: std::sync::Mutex::new(tx),
            seq: AtomicU64::new(0),
        });
        std::thread::Builder::new()
            .name("bayes-trainer".into())
            .spawn(move || run(&dir, &rx, &bayes, &max_tokens))?;
        Ok(t)
    }

    /// Hands `file` over to be learned as `class` on behalf of `user` (for the log). Never
    /// waits for the learning.
    pub fn enqueue(&self, file: &Path, class: Class, user: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        // Sorts in arrival order; the user's login is hex-encoded (any characters).
        let user_hex: String = user.bytes().map(|b| format!("{b:02x}")).collect();
        let name = format!(
            "{:012}.{:09}.{n:08}.{}.{user_hex}",
            now.as_secs(),
            now.subsec_nanos(),
            class.name()
        );
        let to = self.dir.join(name);
        // A hard link where the queue is on the Maildirs' file system; a copy elsewhere.
        let queued = std::fs::hard_link(file, &to).or_else(|_| std::fs::copy(file, &to).map(drop));
        match queued {
            Ok(()) => {
                if let Ok(w) = self.wake.lock() {
                    let _ = w.send(());
                }
            }
            Err(e) => tracing::warn!(
                user,
                "bayes: cannot queue {} for learning: {e}",
                file.display()
            ),
        }
    }

    /// Files waiting to be learned.
    pub fn pending(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |d| d.count())
    }
}

/// The class and user a queue file's name carries.
fn parse_name(name: &str) -> Option<(Class, String)> {
    let mut parts = name.split('.');
    let class = match parts.nth(3)? {
        "spam" => Class::Spam,
        "ham" => Class::Ham,
        _ => return None,
    };
    let hex = parts.next().unwrap_or("");
    let bytes: Option<Vec<u8>> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    Some((class, String::from_utf8_lossy(&bytes?).into_owned()))
}

fn run(dir: &Path, wake: &Receiver<()>, bayes: &Bayes, max_tokens: &dyn Fn() -> u64) {
    loop {
        if drain(dir, bayes) > 0 {
            expire(bayes, max_tokens());
        }
        // Woken by a new file, or every few seconds in case a wake-up was missed.
        match wake.recv_timeout(Duration::from_secs(5)) {
            Ok(()) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                while wake.try_recv().is_ok() {}
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Keeps the model near `max` tokens (0: unbounded): once it is a tenth over, the least
/// recently learned tokens go.
fn expire(bayes: &Bayes, max: u64) {
    let Ok(n) = bayes.store().token_count() else {
        return;
    };
    if max == 0 || n <= max + max / 10 {
        return;
    }
    match bayes.store().expire(max) {
        Ok(removed) => tracing::info!("bayes: expiry removed {removed} tokens (kept {max})"),
        Err(e) => tracing::warn!("bayes: expiry: {e}"),
    }
}

/// Learns every queued file, oldest first; returns how many it learned.
fn drain(dir: &Path, bayes: &Bayes) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    let n = names.len();
    for name in names {
        let path = dir.join(&name);
        match parse_name(&name) {
            // The store failed: the file stays for the next round.
            Some((class, user)) if !learn_file(bayes, &path, class, &user) => return 0,
            Some(_) => {}
            None => tracing::warn!(
                "bayes: unknown file {} in the learning queue",
                path.display()
            ),
        }
        if let Err(e) = std::fs::remove_file(&path) {
            tracing::warn!("bayes: cannot remove {}: {e}", path.display());
        }
    }
    n
}

/// Learns one queued file; false when the store failed (the file is kept).
fn learn_file(bayes: &Bayes, path: &Path, class: Class, user: &str) -> bool {
    let raw = match read_head(path) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(user, "bayes: cannot read {}: {e}", path.display());
            return true;
        }
    };
    let started = std::time::Instant::now();
    let outcome = bayes.learn(&raw, class);
    let what = outcome.as_ref().map_or("failed", |o| o.name());
    metrics::counter!(crate::metrics::BAYES_LEARNS, "class" => class.name(), "source" => "imap", "outcome" => what)
        .increment(1);
    match outcome {
        Ok(_) => tracing::info!(
            "bayes: {what} as {} from IMAP: user={user} message_id={} time={} us",
            class.name(),
            message_id(&raw),
            started.elapsed().as_micros()
        ),
        Err(e) => {
            tracing::warn!(user, "bayes: learning {}: {e}", path.display());
            return false;
        }
    }
    true
}

/// The first [`LEARN_LIMIT`] octets of a file.
fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(LEARN_LIMIT)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// The Message-ID of a raw message, for the log (`-` when none).
fn message_id(raw: &[u8]) -> String {
    mail_parser::MessageParser::default()
        .parse_headers(raw)
        .and_then(|m| m.message_id().map(|s| format!("<{s}>")))
        .unwrap_or_else(|| "-".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_carry_class_and_user() {
        assert_eq!(
            parse_name("000001700000.000000001.00000007.spam.616c69636540782e6f7267"),
            Some((Class::Spam, "alice@x.org".into()))
        );
        assert_eq!(
            parse_name("000001700000.000000001.00000007.ham."),
            Some((Class::Ham, String::new()))
        );
        assert_eq!(parse_name("junk"), None);
    }
}
