//! Start-up and the thread-per-core runtime.
//!
//! One worker thread per core runs a tokio-uring event loop (a tokio current-thread runtime
//! plus an io_uring driver) with its own actix actors: a [`DeliveryActor`] per worker and, on
//! worker 0, the [`QueueActor`]. Every listener is bound once per worker with SO_REUSEPORT, so
//! the kernel spreads connections and a session never leaves the core that accepted it.
//! Network I/O uses tokio's sockets on that same loop; file writes go through io_uring.

use crate::config::Config;
use crate::delivery::DeliveryActor;
use crate::limits::IpLimits;
use crate::queue::QueueActor;
use crate::usage::UsageTracker;
use actix::{Actor, Addr};
use anyhow::{Context, Result};
use postcore_storage::Store;
use postcore_storage::directory::DirectoryHandle;
use postcore_storage::spool::Spool;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, watch};

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
        }
    }
}

/// State shared by every worker (all of it thread-safe).
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
    /// TLS server configuration.
    pub tls: Arc<rustls::ServerConfig>,
    /// Per-IP limits.
    pub limits: Arc<IpLimits>,
    /// Mailbox usage for quotas.
    pub usage: UsageTracker,
    /// Wakes the queue actor (new queued mail, admin resend).
    pub queue_kick: Notify,
    /// Becomes true on SIGTERM/SIGINT.
    pub shutdown: watch::Receiver<bool>,
    /// Sessions in progress (all workers).
    pub active_sessions: AtomicUsize,
    /// Queue records removed so far (drives compaction of the queue column families).
    pub queue_deletions: std::sync::atomic::AtomicU64,
    /// Logins holding a POP3 maildrop lock (RFC 1939 §8).
    pub pop3_locks: std::sync::Mutex<std::collections::HashSet<String>>,
    /// DKIM signing keys.
    pub dkim: crate::dkim::DkimKeys,
    /// IMAP mailbox index.
    pub mailboxes: postcore_storage::mailbox::MailboxIndex,
    /// Open IMAP sessions per (user, client IP).
    pub imap_sessions:
        std::sync::Mutex<std::collections::HashMap<(String, std::net::IpAddr), usize>>,
    /// Administrator requests for the queue actor (resend, delete).
    pub queue_control: std::sync::Mutex<QueueControl>,
}

/// Pending administrator requests to the queue.
#[derive(Default)]
pub struct QueueControl {
    /// Retry every queued message now.
    pub resend_all: bool,
    /// Retry these messages now.
    pub resend: std::collections::HashSet<String>,
    /// Deleted by the administrator: never write these records back.
    pub deleted: std::collections::HashSet<String>,
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
        shared.active_sessions.fetch_add(1, Ordering::SeqCst);
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

/// Per-worker context, shared by the sessions of one core.
pub struct WorkerCtx {
    /// Worker number.
    pub id: usize,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// This core's delivery actor.
    pub delivery: Addr<DeliveryActor>,
    /// This core's Maildir writer (IMAP APPEND).
    pub maildir: Rc<postcore_storage::maildir::MaildirWriter>,
}

fn bind_reuseport(addr: SocketAddr) -> Result<std::net::TcpListener> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("binding {addr}"))?;
    sock.listen(1024)?;
    Ok(sock.into())
}

fn load_admin_token(cfg: &Config) -> Result<String> {
    if let Some(t) = &cfg.admin.token {
        return Ok(t.clone());
    }
    let p = cfg.admin_token_path();
    if let Ok(t) = std::fs::read_to_string(&p) {
        return Ok(t.trim().to_string());
    }
    use rand::Rng;
    let token: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
            .with_context(|| format!("creating {}", p.display()))?;
        writeln!(f, "{token}")?;
    }
    Ok(token)
}

/// Runs the server until SIGTERM/SIGINT.
pub fn run(config: Config) -> Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let store = Store::open(&config.data_dir.join("db"))?;
    let directory = DirectoryHandle::load(store.clone())?;
    let spool =
        Spool::open(&config.data_dir.join("spool"), store.clone()).context("opening spool")?;
    // Before any listener exists: a body being accepted must never look like an orphan.
    crate::queue::remove_orphans(&store, &spool);
    let mail_root = config.data_dir.join("mail");
    std::fs::create_dir_all(&mail_root)?;
    let tls = crate::tls::server_config(
        config.tls.cert.as_deref(),
        config.tls.key.as_deref(),
        &config.data_dir,
        &config.hostname,
    )?;
    let admin_token = load_admin_token(&config)?;
    let prometheus = crate::metrics::install()?;

    let workers = config.worker_count();
    let mut per_worker: Vec<Vec<(ListenerKind, std::net::TcpListener)>> =
        (0..workers).map(|_| Vec::new()).collect();
    for (kind, addr) in [
        (ListenerKind::Smtp, &config.listeners.smtp),
        (ListenerKind::Submission, &config.listeners.submission),
        (ListenerKind::Submissions, &config.listeners.submissions),
        (ListenerKind::Pop3, &config.listeners.pop3),
        (ListenerKind::Pop3s, &config.listeners.pop3s),
        (ListenerKind::Imap, &config.listeners.imap),
        (ListenerKind::Imaps, &config.listeners.imaps),
    ] {
        if let Some(sa) = Config::listener(addr)? {
            // SO_REUSEPORT would let a second server share the port silently: a plain bind
            // first makes "address in use" an error, as it is for any other daemon.
            drop(
                std::net::TcpListener::bind(sa)
                    .with_context(|| format!("{} listener {sa}", kind.name()))?,
            );
            for w in per_worker.iter_mut() {
                w.push((kind, bind_reuseport(sa)?));
            }
            tracing::info!(listener = kind.name(), addr = %sa, workers, "listening");
        }
    }
    let admin_listener = match Config::listener(&config.listeners.admin)? {
        Some(sa) => {
            let l =
                std::net::TcpListener::bind(sa).with_context(|| format!("binding admin {sa}"))?;
            l.set_nonblocking(true)?;
            tracing::info!(listener = "admin", addr = %sa, "listening");
            Some(l)
        }
        None => None,
    };

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let config_data_dir = config.data_dir.clone();
    let shared = Arc::new(Shared {
        usage: UsageTracker::new(store.clone(), mail_root.clone()),
        config,
        directory,
        store: store.clone(),
        spool,
        mail_root,
        tls,
        limits: Arc::new(IpLimits::default()),
        queue_kick: Notify::new(),
        shutdown: shutdown_rx,
        active_sessions: AtomicUsize::new(0),
        queue_control: std::sync::Mutex::new(QueueControl::default()),
        dkim: crate::dkim::DkimKeys::new(&config_data_dir),
        pop3_locks: std::sync::Mutex::new(std::collections::HashSet::new()),
        mailboxes: postcore_storage::mailbox::MailboxIndex::new(store.clone())?,
        imap_sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
        queue_deletions: std::sync::atomic::AtomicU64::new(0),
    });

    let mut handles = Vec::new();
    for (id, listeners) in per_worker.into_iter().enumerate() {
        let shared = shared.clone();
        handles.push(
            std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || tokio_uring::start(worker_main(id, shared, listeners)))
                .context("spawning worker")?,
        );
    }

    let admin_shared = shared.clone();
    let admin = std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || -> Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async move {
                if let Some(l) = admin_listener {
                    let l = tokio::net::TcpListener::from_std(l)?;
                    let app = crate::admin::router(admin_shared.clone(), admin_token, prometheus);
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(l, app).await {
                            tracing::error!("admin API stopped: {e}");
                        }
                    });
                }
                wait_for_signal().await;
                tracing::info!(
                    "shutdown requested: no new connections, sessions get {}s",
                    admin_shared.config.limits.shutdown_grace_secs
                );
                let _ = shutdown_tx.send(true);
                Ok(())
            })
        })?;
    tracing::info!("postcore ready");

    for h in handles {
        match h.join() {
            Ok(()) => {}
            Err(_) => tracing::error!("a worker thread panicked"),
        }
    }
    let _ = admin.join();
    // Every acknowledged write was synced already; make the WAL durable, stop RocksDB's
    // background jobs, and let the caller leave without running C++ static destructors
    // under threads that may still hold the database.
    store.flush()?;
    store.db().cancel_all_background_work(true);
    tracing::info!("postcore stopped");
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

async fn worker_main(
    id: usize,
    shared: Arc<Shared>,
    listeners: Vec<(ListenerKind, std::net::TcpListener)>,
) {
    let delivery = DeliveryActor::new(shared.clone()).start();
    if id == 0 {
        QueueActor::new(shared.clone(), delivery.clone()).start();
    }
    let ctx = Rc::new(WorkerCtx {
        id,
        shared: shared.clone(),
        delivery,
        maildir: Rc::new(postcore_storage::maildir::MaildirWriter::new()),
    });
    for (kind, l) in listeners {
        let ctx = ctx.clone();
        tokio::task::spawn_local(async move {
            if let Err(e) = accept_loop(kind, l, ctx).await {
                tracing::error!(listener = kind.name(), "accept loop failed: {e:#}");
            }
        });
    }
    let mut sd = shared.shutdown.clone();
    let _ = sd.wait_for(|v| *v).await;
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(shared.config.limits.shutdown_grace_secs);
    while shared.active_sessions.load(Ordering::SeqCst) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn accept_loop(
    kind: ListenerKind,
    l: std::net::TcpListener,
    ctx: Rc<WorkerCtx>,
) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(l)?;
    let mut sd = ctx.shared.shutdown.clone();
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(listener = kind.name(), "accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = sd.wait_for(|v| *v) => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        match kind {
            ListenerKind::Pop3 | ListenerKind::Pop3s => tokio::task::spawn_local(
                crate::pop3::serve(stream, peer, kind == ListenerKind::Pop3s, ctx),
            ),
            ListenerKind::Imap | ListenerKind::Imaps => tokio::task::spawn_local(
                crate::imap::serve(stream, peer, kind == ListenerKind::Imaps, ctx),
            ),
            _ => tokio::task::spawn_local(crate::smtp::session::serve(stream, peer, kind, ctx)),
        };
    }
}
