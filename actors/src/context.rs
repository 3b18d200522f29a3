//! The services every component works with, as narrow handles: nothing here imports a
//! session, the admin API or the start-up code, so every other module can depend on it
//! without an import cycle. Start-up (`server::run`) builds them once.

use crate::config::Config;
use crate::limits::IpLimits;
use crate::messages::{DeliverLocal, QueueHandle};
use crate::usage::UsageTracker;
use actix::Recipient;
use postcore_storage::Store;
use postcore_storage::directory::DirectoryHandle;
use postcore_storage::spool::Spool;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::watch;

/// Which listener a connection came in on; decides TLS and AUTH rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    /// Port 25: MTA to MTA.
    Smtp,
    /// Port 587: submission, STARTTLS then AUTH (RFC 6409).
    Submission,
    /// Port 465: submission over implicit TLS (RFC 8314).
    Submissions,
    /// Port 110: POP3, STLS.
    Pop3,
    /// Port 995: POP3 over implicit TLS.
    Pop3s,
    /// Port 143: IMAP, STARTTLS.
    Imap,
    /// Port 993: IMAP over implicit TLS.
    Imaps,
    /// Port 4190: ManageSieve, STARTTLS (RFC 5804).
    ManageSieve,
}

impl ListenerKind {
    /// Name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            ListenerKind::Smtp => "smtp",
            ListenerKind::Submission => "submission",
            ListenerKind::Submissions => "submissions",
            ListenerKind::Pop3 => "pop3",
            ListenerKind::Pop3s => "pop3s",
            ListenerKind::Imap => "imap",
            ListenerKind::Imaps => "imaps",
            ListenerKind::ManageSieve => "managesieve",
        }
    }
}

/// Process-wide services (all of them thread-safe), shared by every worker and the admin API.
pub struct Shared {
    /// Start-up configuration.
    pub config: Config,
    /// Directory and settings.
    pub directory: DirectoryHandle,
    /// The store.
    pub store: Store,
    /// Spool of queued message bodies.
    pub spool: Spool,
    /// Root of all Maildirs.
    pub mail_root: PathBuf,
    /// Makes journaled Maildir copies durable in shared `syncfs` rounds.
    pub syncer: postcore_storage::journal::Syncer,
    /// The syncer's counts.
    pub sync_stats: Arc<postcore_storage::journal::SyncStats>,
    /// TLS server configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// Per-IP limits.
    pub limits: Arc<IpLimits>,
    /// The memory budget for mail in flight (and the free-space check).
    pub budget: Arc<crate::budget::MemoryBudget>,
    /// Mailbox usage for quotas.
    pub usage: UsageTracker,
    /// The queue actor's address (one per process).
    pub queue: QueueHandle,
    /// Becomes true on SIGTERM/SIGINT.
    pub shutdown: watch::Receiver<bool>,
    /// Sessions in progress (all workers).
    pub active_sessions: AtomicUsize,
    /// The most sessions open at once since the memory was last trimmed
    /// (`server.rs` trims after floods).
    pub sessions_high: AtomicUsize,
    /// The cap on `active_sessions` (`limits.max_connections`, or derived from the
    /// descriptor limit).
    pub max_connections: usize,
    /// Logins holding a POP3 maildrop lock (RFC 1939 §8).
    pub pop3_locks: std::sync::Mutex<std::collections::HashSet<String>>,
    /// DKIM signing keys.
    pub dkim: crate::dkim::DkimKeys,
    /// IMAP mailbox index.
    pub mailboxes: postcore_storage::mailbox::MailboxIndex,
    /// IMAP views shared by sessions that see the same mailbox state.
    pub imap_views: crate::imap::view::ViewCache,
    /// SORT and THREAD keys of recently sorted mailboxes, shared by every IMAP session.
    pub imap_sort_keys: crate::imap::sort_keys::SortKeyCache,
    /// Open IMAP sessions per (user, client IP).
    pub imap_sessions:
        std::sync::Mutex<std::collections::HashMap<(String, std::net::IpAddr), usize>>,
    /// The content scanner pool and its signature database.
    pub scanner: crate::scanner::ScannerPool,
    /// The statistical classifier's model (also in the scanner's filter).
    pub bayes: Arc<postcore_scanner::bayes::Bayes>,
    /// Learning from IMAP, off the sessions' path.
    pub bayes_trainer: Arc<crate::bayes_trainer::Trainer>,
    /// DNS answers of the network checks, shared by every core.
    pub net_cache: Arc<crate::net_checks::NetCache>,
    /// Sieve scripts (compiled, cached) and Sieve's records.
    pub sieve: crate::sieve_scripts::SieveScripts,
    /// The sender rewriting key for forwarded mail.
    pub srs: crate::srs::Srs,
    /// Seals the envelope record of quarantined copies.
    pub quarantine_key: crate::quarantine::QuarantineKey,
}

impl Shared {
    /// Opens the data directory's services for `config` (store, directory, spool, TLS, DKIM,
    /// mailbox index). `shutdown` turns true when the process is asked to stop.
    pub fn open(config: Config, shutdown: watch::Receiver<bool>) -> anyhow::Result<Shared> {
        use anyhow::Context as _;
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("creating {}", config.data_dir.display()))?;
        let store = Store::open(&config.data_dir.join("db"))?;
        let directory = DirectoryHandle::load(store.clone())?;
        let spool =
            Spool::open(&config.data_dir.join("spool"), store.clone()).context("opening spool")?;
        let mail_root = config.data_dir.join("mail");
        std::fs::create_dir_all(&mail_root)
            .with_context(|| format!("creating {}", mail_root.display()))?;
        // Every file system a journaled copy can be on: the Maildirs, and the data directory
        // (where the journal itself is) in case they differ.
        let (syncer, sync_stats) = postcore_storage::journal::Syncer::start(
            store.clone(),
            vec![mail_root.clone(), config.data_dir.clone()],
        )?;
        let tls = crate::tls::server_config(
            config.tls.cert.as_deref(),
            config.tls.key.as_deref(),
            &config.data_dir,
            &config.hostname,
        )?;
        let config_max = config.limits.max_connections;
        let budget =
            crate::budget::MemoryBudget::new(config.limits.memory_budget_mb, &config.data_dir);
        let scanner = crate::scanner::ScannerPool::start(&config.scanner, &config.data_dir);
        let _ = scanner.filter.greylist.set(std::sync::Arc::new(
            postcore_storage::greylist::GreylistDb::new(store.clone()),
        ));
        let bayes = Arc::new(postcore_scanner::bayes::Bayes::new(Arc::new(
            postcore_storage::bayes::BayesDb::new(store.clone()),
        )));
        let _ = scanner.filter.bayes.set(bayes.clone());
        let settings = directory.clone();
        let bayes_trainer =
            crate::bayes_trainer::Trainer::start(&config.data_dir, bayes.clone(), move || {
                settings.snapshot().settings.filter.spam.bayes_max_tokens
            })
            .context("starting the Bayes trainer")?;
        let srs = crate::srs::Srs::load_or_create(&config.data_dir).context("SRS secret")?;
        let quarantine_key = crate::quarantine::QuarantineKey::load_or_create(&config.data_dir)
            .context("quarantine secret")?;
        Ok(Shared {
            srs,
            quarantine_key,
            sieve: crate::sieve_scripts::SieveScripts::open(
                postcore_storage::sieve::SieveStore::new(store.clone()),
            )
            .context("loading the Sieve scripts")?,
            usage: UsageTracker::new(store.clone(), mail_root.clone()),
            dkim: crate::dkim::DkimKeys::new(&config.data_dir),
            mailboxes: postcore_storage::mailbox::MailboxIndex::new(store.clone())?,
            config,
            directory,
            store,
            spool,
            mail_root,
            syncer,
            sync_stats,
            tls,
            limits: Arc::new(IpLimits::default()),
            budget,
            queue: QueueHandle::default(),
            shutdown,
            active_sessions: AtomicUsize::new(0),
            sessions_high: AtomicUsize::new(0),
            max_connections: crate::limits::connection_cap(config_max),
            pop3_locks: std::sync::Mutex::new(std::collections::HashSet::new()),
            imap_views: Default::default(),
            imap_sort_keys: Default::default(),
            imap_sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
            scanner,
            bayes,
            bayes_trainer,
            net_cache: Arc::default(),
        })
    }
}

/// Counts a session as active (for the SIGTERM drain) and in its protocol's open-connection
/// gauge, for as long as it lives, however it ends.
pub struct SessionGuard {
    shared: Arc<Shared>,
    gauge: &'static str,
}

impl SessionGuard {
    /// Starts counting a session.
    pub fn new(shared: &Arc<Shared>, gauge: &'static str) -> SessionGuard {
        let now = shared.active_sessions.fetch_add(1, Ordering::SeqCst) + 1;
        shared.sessions_high.fetch_max(now, Ordering::Relaxed);
        metrics::gauge!(gauge).increment(1.0);
        SessionGuard {
            shared: shared.clone(),
            gauge,
        }
    }
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        metrics::gauge!(self.gauge).decrement(1.0);
        self.shared.active_sessions.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Per-worker context, shared by the sessions of one core: the process-wide services and the
/// addresses of this core's actors.
pub struct WorkerCtx {
    /// Worker number.
    pub id: usize,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// This core's delivery actor.
    pub delivery: Recipient<DeliverLocal>,
    /// This core's DNS and authentication checker (`None`: no resolver could be made).
    pub net: Option<crate::net_checks::NetChecker>,
}
