//! The scanner actors: a pool of threads off the SMTP event loops (one per core unless set),
//! each taking [`Scan`] messages from one shared mailbox and answering with a
//! [`postcore_scanner::Verdict`]. At most a bound of messages are in flight (handed to the
//! threads or being scanned); a session past it waits for a place, and the whole wait — for a
//! place and for the verdict — has one time limit, past which it answers `451 4.3.2`. Waiting
//! sessions hold nothing the bound protects (their message is received already, counted by
//! the memory budget); refusing them at once turned a busy minute into tempfails: 100
//! sessions on a 2-core machine (bound 32) had `451 4.3.2` while the CPU was merely full.
//!
//! The pool also owns the signature database's life: a watcher thread reloads it when the
//! signature directory changes (compiled on that thread, swapped atomically; scans in
//! progress finish on the database they started with).

use crate::config::ScannerConfig;
use crate::messages::Scan;
use postcore_scanner::filter::Filter;
use postcore_scanner::{ScanInput, Verdict};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// Why a scan did not produce a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanError {
    /// No place in flight came free within the time limit.
    Busy,
    /// The time limit passed.
    Timeout,
    /// The pool is gone (shutting down).
    Unavailable,
}

struct Job {
    work: Work,
    /// The message's place in flight, freed when the job is dropped (after the scan, even if
    /// the session stopped waiting).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// What a scanner thread is asked to do.
enum Work {
    /// Judge a message.
    Scan(Box<Scan>, tokio::sync::oneshot::Sender<Verdict>),
    /// Find the hosts a message's links point to (at most this many), for the URI block
    /// lists, before it is judged.
    Links(
        bytes::Bytes,
        usize,
        tokio::sync::oneshot::Sender<Vec<String>>,
    ),
}

/// A handle on the pool, cheap to clone into every worker.
#[derive(Clone)]
pub struct ScannerPool {
    tx: SyncSender<Job>,
    /// Places for messages in flight (the bound).
    slots: Arc<tokio::sync::Semaphore>,
    timeout: Duration,
    /// The filter the threads run (also read by `av status`).
    pub filter: Arc<Filter>,
    signature_dir: PathBuf,
    spam_rules: Vec<PathBuf>,
    spam_cache: PathBuf,
}

impl ScannerPool {
    /// Loads the signatures and starts the threads and the directory watcher.
    pub fn start(config: &ScannerConfig, data_dir: &Path) -> ScannerPool {
        let dir = config.signature_dir(data_dir);
        let _ = std::fs::create_dir_all(&dir);
        let started = Instant::now();
        let cache = data_dir.join("av-cache");
        let filter = Arc::new(Filter::with_cache(&dir, Some(&cache)));
        trim();
        log_status(&filter, started.elapsed());
        let max = config.max_in_flight();
        let (tx, rx) = sync_channel::<Job>(max);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..config.threads() {
            let (rx, filter) = (rx.clone(), filter.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("scanner-{n}"))
                .spawn(move || scanner_thread(rx, filter));
            if let Err(e) = spawned {
                tracing::error!("cannot start scanner thread: {e}");
            }
        }
        let pool = ScannerPool {
            tx,
            slots: Arc::new(tokio::sync::Semaphore::new(max)),
            timeout: Duration::from_millis(config.timeout_ms.max(1)),
            filter,
            signature_dir: dir,
            spam_rules: config.spam_rules.clone(),
            spam_cache: data_dir.join("spam-cache"),
        };
        pool.watch(Duration::from_secs(config.reload_check_secs.max(1)));
        pool.load_spam_rules(pool.spam_rules.clone(), pool.spam_cache.clone());
        pool
    }

    /// Reads and compiles the antispam rule directories now, on the calling thread (`spam
    /// reload`); the loaded rules stay if it fails.
    pub fn reload_spam(&self) -> Result<(), String> {
        let started = Instant::now();
        let r = self
            .filter
            .antispam
            .load(&self.spam_rules, Some(&self.spam_cache));
        trim();
        match &r {
            Ok(_) => log_spam_status(&self.filter, started.elapsed()),
            Err(e) => tracing::error!("antispam: reload failed, keeping the loaded rules: {e}"),
        }
        r.map(|_| ())
    }

    /// Compiles the antispam rule directories on a thread of their own (the first compile of
    /// a large set takes a while; compiled databases are cached under the data directory).
    /// Until it is done, the built-in rules judge.
    fn load_spam_rules(&self, dirs: Vec<PathBuf>, cache: PathBuf) {
        if dirs.is_empty() {
            log_spam_status(&self.filter, Duration::ZERO);
            return;
        }
        let filter = self.filter.clone();
        let spawned = std::thread::Builder::new()
            .name("spam-rules".into())
            .spawn(move || {
                let started = Instant::now();
                let result = filter.antispam.load(&dirs, Some(&cache));
                trim();
                match result {
                    Ok(_) => log_spam_status(&filter, started.elapsed()),
                    Err(e) => {
                        tracing::error!("antispam: rules not loaded ({e}); built-in rules only")
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the antispam rule loader: {e}");
        }
    }

    /// Scans one message: `Busy` when no place in flight came free within the time limit,
    /// `Timeout` when the verdict did not come within it.
    pub async fn scan(&self, scan: Scan) -> Result<Verdict, ScanError> {
        self.run(|reply| Work::Scan(Box::new(scan), reply)).await
    }

    /// The distinct hosts of the message's links (at most `max`), found on a scanner thread
    /// (the message is parsed off the event loop), under the same bound and time limit.
    pub async fn link_hosts(
        &self,
        data: bytes::Bytes,
        max: usize,
    ) -> Result<Vec<String>, ScanError> {
        self.run(|reply| Work::Links(data, max, reply)).await
    }

    /// Hands one piece of work to the threads and waits for its answer.
    async fn run<T>(
        &self,
        work: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Work,
    ) -> Result<T, ScanError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let slot = match tokio::time::timeout_at(deadline, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(slot)) => slot,
            Ok(Err(_)) => return Err(ScanError::Unavailable),
            Err(_) => {
                metrics::counter!(crate::metrics::SCANS, "result" => "busy").increment(1);
                return Err(ScanError::Busy);
            }
        };
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            work: work(reply),
            _slot: slot,
        };
        // The channel holds as many jobs as there are places: a full one means the threads
        // are gone.
        if self.tx.try_send(job).is_err() {
            return Err(ScanError::Unavailable);
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(_)) => Err(ScanError::Unavailable),
            Err(_) => {
                metrics::counter!(crate::metrics::SCANS, "result" => "timeout").increment(1);
                Err(ScanError::Timeout)
            }
        }
    }

    /// Reloads the signature directory now (`av reload`); the old database stays on failure.
    pub fn reload(&self) -> Result<(), String> {
        reload(&self.filter, &self.signature_dir)
    }

    /// Starts the thread that reloads the signatures when the directory changes.
    fn watch(&self, every: Duration) {
        let (filter, dir) = (self.filter.clone(), self.signature_dir.clone());
        let spawned = std::thread::Builder::new()
            .name("av-reload".into())
            .spawn(move || {
                let mut seen = fingerprint(&dir);
                loop {
                    std::thread::sleep(every);
                    let now = fingerprint(&dir);
                    if now != seen {
                        // Let a copy in progress finish before reading it.
                        std::thread::sleep(Duration::from_millis(200));
                        seen = fingerprint(&dir);
                        let _ = reload(&filter, &dir);
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the signature watcher: {e}");
        }
    }
}

fn reload(filter: &Filter, dir: &Path) -> Result<(), String> {
    let started = Instant::now();
    let result = filter.reload(dir);
    // A compile's working memory is free now; give it back (glibc keeps freed pages).
    trim();
    match result {
        Ok(_) => {
            metrics::counter!(crate::metrics::AV_RELOADS, "result" => "ok").increment(1);
            log_status(filter, started.elapsed());
            Ok(())
        }
        Err(e) => {
            metrics::counter!(crate::metrics::AV_RELOADS, "result" => "failed").increment(1);
            tracing::error!(dir = %dir.display(), "antivirus: reload failed, keeping the loaded database: {e}");
            Err(e)
        }
    }
}

/// One line per judged message, as Rspamd's: action, score/threshold, every symbol with its
/// score, scan time; and the metrics for actions, symbols and time.
fn spam_metrics_and_log(
    qid: &str,
    ctx: &postcore_scanner::ScanContext,
    j: &postcore_scanner::spam::Judgement,
) {
    let acted = postcore_scanner::spam::acts_on(ctx);
    metrics::counter!(crate::metrics::SPAM_ACTIONS, "action" => j.action.name()).increment(1);
    metrics::histogram!(crate::metrics::SPAM_SECONDS).record(j.micros as f64 / 1e6);
    for h in &j.symbols {
        metrics::counter!(crate::metrics::SPAM_SYMBOLS, "symbol" => h.name.clone()).increment(1);
    }
    tracing::info!(
        qid,
        action = j.action.name(),
        score = j.score,
        "{qid}: antispam: ({}{}) [{:.2}/{}] [{}] client={} from=<{}> time={} us",
        j.action.name(),
        if acted {
            ""
        } else {
            ", not acted on: authenticated"
        },
        j.score,
        j.threshold.map_or("-".to_string(), |t| format!("{t:.2}")),
        j.symbols_text(),
        ctx.client_ip,
        ctx.mail_from,
        j.micros,
    );
}

/// Returns the allocator's free pages to the system.
fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn log_status(filter: &Filter, took: Duration) {
    let s = filter.status();
    let (loaded, skipped) = (s.stats.loaded_text(), s.stats.skipped_text());
    if s.last_reload != "ok" {
        tracing::error!(dir = %s.directory, "antivirus: signatures not loaded ({}); built-in EICAR signature only", s.last_reload);
        return;
    }
    tracing::info!(
        dir = %s.directory,
        "antivirus: database loaded in {} ms: {} (plus the built-in EICAR signature); skipped: {}; hyperscan {} bytes",
        took.as_millis(),
        if loaded.is_empty() { "no signatures" } else { &loaded },
        if skipped.is_empty() { "none" } else { &skipped },
        s.hyperscan_bytes,
    );
}

fn log_spam_status(filter: &Filter, took: Duration) {
    let s = filter.antispam.status();
    let r = &s.report;
    let skipped: Vec<String> = r.skipped.iter().map(|(k, v)| format!("{v} {k}")).collect();
    tracing::info!(
        "antispam: rules loaded in {} ms from [{}]: {} rules ({:?}); regexes: {} on hyperscan, {} prefiltered, {} on fancy-regex ({} narrowed for plain texts); {} built-in checks; skipped: {}",
        took.as_millis(),
        s.directories.join(", "),
        r.total_loaded(),
        r.loaded,
        r.hyperscan,
        r.prefiltered,
        r.fallback,
        r.narrowed,
        r.evals,
        if skipped.is_empty() {
            "none".to_string()
        } else {
            skipped.join(", ")
        },
    );
}

/// Names, sizes and modification times of the directory's files: a change means a reload.
fn fingerprint(dir: &Path) -> Vec<(String, u64, Option<SystemTime>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let m = e.metadata().ok()?;
                    Some((
                        e.file_name().to_string_lossy().into_owned(),
                        m.len(),
                        m.modified().ok(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn scanner_thread(rx: Arc<Mutex<Receiver<Job>>>, filter: Arc<Filter>) {
    loop {
        let job = match rx.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        match job.work {
            Work::Scan(scan, reply) => {
                let _ = reply.send(scan_one(&filter, &scan));
            }
            Work::Links(data, max, reply) => {
                let hosts = mail_parser::MessageParser::default()
                    .parse(&data[..])
                    .map(|m| postcore_scanner::spam::message::link_hosts(&m, max))
                    .unwrap_or_default();
                let _ = reply.send(hosts);
            }
        }
    }
}

/// Judges one message and logs and counts what was found.
fn scan_one(filter: &Filter, scan: &Scan) -> Verdict {
    let started = Instant::now();
    let input = ScanInput::new(&scan.context, &scan.data);
    let (verdict, report) = filter.scan_report(&input);
    let secs = started.elapsed().as_secs_f64();
    let result = if report.virus.is_some() {
        "infected"
    } else if report.blocked.is_some() {
        "blocked"
    } else {
        "clean"
    };
    metrics::counter!(crate::metrics::SCANS, "result" => result).increment(1);
    metrics::histogram!(crate::metrics::SCAN_SECONDS).record(secs);
    metrics::counter!(crate::metrics::SCAN_BYTES).increment(report.bytes);
    for hit in &report.limits {
        metrics::counter!(crate::metrics::SCAN_LIMITS, "limit" => hit.name()).increment(1);
    }
    let qid = &scan.context.qid;
    if let Some(v) = &report.virus {
        tracing::info!(qid, virus = %v, "{qid}: antivirus: infected: {v}");
    }
    if let Some(a) = &report.access {
        tracing::info!(qid, "{qid}: filter: {a}");
    }
    if let Some(b) = &report.blocked {
        tracing::info!(qid, blocked = %b, "{qid}: attachment blocked: {b}");
    }
    if !report.limits.is_empty() {
        let names: Vec<&str> = report.limits.iter().map(|h| h.name()).collect();
        tracing::info!(qid, "{qid}: scan limits reached: {}", names.join(","));
    }
    if let Some(j) = &report.spam {
        spam_metrics_and_log(qid, &scan.context, j);
    }
    if let Some(g) = verdict.symbols.iter().find(|s| s.name == "GREYLIST") {
        let what = g.detail.as_deref().unwrap_or("");
        let result = if what.starts_with("deferred") {
            "deferred"
        } else {
            "passed"
        };
        metrics::counter!(crate::metrics::GREYLIST, "result" => result).increment(1);
        tracing::info!(
            qid,
            "{qid}: greylist: {what} client={} from=<{}>",
            scan.context.client_ip,
            scan.context.mail_from
        );
    }
    verdict
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(dir: &Path, timeout_ms: u64) -> ScannerPool {
        let config = ScannerConfig {
            threads: 1,
            max_in_flight: 1,
            timeout_ms,
            ..ScannerConfig::default()
        };
        ScannerPool::start(&config, dir)
    }

    /// Past the bound a message waits for a place instead of being refused at once; only a
    /// wait longer than the time limit is `Busy`.
    #[test]
    fn past_the_bound_messages_wait_for_a_place_within_the_time_limit() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let p = pool(dir.path(), 30_000);
        let body = bytes::Bytes::from_static(
            b"Subject: x\r\n\r\nsee http://a.example/ and http://b.example/\r\n",
        );
        let (a, b, c) = rt.block_on(async {
            tokio::join!(
                p.link_hosts(body.clone(), 10),
                p.link_hosts(body.clone(), 10),
                p.link_hosts(body.clone(), 10)
            )
        });
        for r in [a, b, c] {
            assert_eq!(r.unwrap().len(), 2);
        }
        let p = pool(dir.path(), 50);
        let held = p.slots.clone().try_acquire_owned().unwrap();
        let r = rt.block_on(p.link_hosts(body.clone(), 10));
        assert_eq!(r, Err(ScanError::Busy));
        drop(held);
        assert!(rt.block_on(p.link_hosts(body, 10)).is_ok());
    }
}
