//! Start-up and the thread-per-core runtime.
//!
//! One worker thread per core runs a tokio-uring event loop (a tokio current-thread runtime
//! plus an io_uring driver) with its own actix actors: a [`DeliveryActor`] per worker and, on
//! worker 0, the [`QueueActor`]. Every listener is bound once per worker with SO_REUSEPORT, so
//! the kernel spreads connections and a session never leaves the core that accepted it.
//! Network I/O uses tokio's sockets on that same loop; file writes go through io_uring.

use crate::config::Config;
use crate::context::{ListenerKind, Shared, WorkerCtx};
use crate::delivery::DeliveryActor;
use crate::messages::QueueAddrs;
use crate::queue::QueueActor;
use actix::Actor;
use anyhow::{Context, Result};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;

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
    // An empty file (a power cut right after it was created, by an older version) is replaced.
    if let Ok(t) = std::fs::read_to_string(&p)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    use rand::Rng;
    let token: String = rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(32)
        .map(char::from)
        .collect();
    postcore_storage::durable_file::write(&p, format!("{token}\n").as_bytes(), 0o600)
        .with_context(|| format!("creating {}", p.display()))?;
    Ok(token)
}

/// Sessions that must have ended since the last trim before memory is trimmed again.
const TRIM_AFTER_ENDED: usize = 50;

/// Gives freed memory back to the system after a flood: every 5 s, when at least
/// [`TRIM_AFTER_ENDED`] fewer sessions are open than at the high point since the last trim,
/// `malloc_trim` returns the free pages of every malloc arena (glibc keeps them otherwise:
/// measured 24 MiB before 800 sessions of 200 KB each, 251 MiB during, 95 MiB after them
/// without a trim). Runs on its own thread until the process ends.
fn trim_after_floods(shared: Arc<Shared>) {
    use std::sync::atomic::Ordering;
    let spawned = std::thread::Builder::new()
        .name("mem-trim".into())
        .spawn(move || {
            loop {
                std::thread::sleep(std::time::Duration::from_secs(5));
                let now = shared.active_sessions.load(Ordering::Relaxed);
                let high = shared.sessions_high.load(Ordering::Relaxed);
                if high >= now + TRIM_AFTER_ENDED {
                    shared.sessions_high.store(now, Ordering::Relaxed);
                    // SAFETY: malloc_trim only releases free memory of the allocator.
                    unsafe { libc::malloc_trim(0) };
                    tracing::debug!(sessions = now, high, "memory trimmed after sessions ended");
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("cannot start the mem-trim thread: {e}");
    }
}

/// Runs the server until SIGTERM/SIGINT.
pub fn run(config: Config) -> Result<()> {
    // First, so that start-up (the queue gauges) is already recorded.
    let prometheus = crate::metrics::install()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let shared = Arc::new(Shared::open(config, shutdown_rx)?);
    // Before any listener exists: messages acknowledged before a crash or power cut whose
    // Maildir copies were not yet known to be durable are put back (journal.rs).
    let replayed = postcore_storage::journal::replay(&shared.store, &shared.mail_root)
        .context("journal replay")?;
    if replayed.entries > 0 {
        tracing::warn!(
            entries = replayed.entries,
            rewritten = replayed.rewritten,
            intact = replayed.intact,
            "journal replayed: {} messages, {} copies restored, {} intact",
            replayed.entries,
            replayed.rewritten,
            replayed.intact
        );
    }
    // Before any listener exists: a body being accepted must never look like an orphan.
    crate::queue::remove_orphans(&shared.store, &shared.spool);
    let config = &shared.config;
    let admin_token = load_admin_token(config)?;

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
        (ListenerKind::ManageSieve, &config.listeners.managesieve),
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

    trim_after_floods(shared.clone());
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
    shared.store.flush()?;
    shared.store.db().cancel_all_background_work(true);
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
    let delivery = DeliveryActor::new(shared.clone()).start().recipient();
    if id == 0 {
        let queue = QueueActor::new(shared.clone(), delivery.clone()).start();
        shared.queue.set(QueueAddrs {
            enqueued: queue.clone().recipient(),
            resend: queue.clone().recipient(),
            delete: queue.clone().recipient(),
            inject: queue.recipient(),
        });
    }
    let net = match crate::net_checks::NetChecker::new(
        &shared.config.dns.resolvers,
        shared.net_cache.clone(),
    ) {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::error!("worker {id}: no DNS resolver, network checks off: {e:#}");
            None
        }
    };
    let ctx = Rc::new(WorkerCtx {
        id,
        shared: shared.clone(),
        delivery,
        net,
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
    let mut warned: Option<std::time::Instant> = None;
    let mut suppressed = 0u64;
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or memory: back off instead of
                    // spinning, and say so at most once a second.
                    if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                        tracing::warn!(listener = kind.name(), suppressed, "accept: {e}");
                        warned = Some(std::time::Instant::now());
                        suppressed = 0;
                    } else {
                        suppressed += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = sd.wait_for(|v| *v) => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        // A dual-stack listener (`[::]`, IPV6_V6ONLY off) gives IPv4 clients as
        // `::ffff:a.b.c.d` (RFC 4291 §2.5.5.2): every session, limit and network list sees
        // the IPv4 address.
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let ctx = ctx.clone();
        let io: Box<dyn crate::conn::Transport> = Box::new(stream);
        match kind {
            ListenerKind::Pop3 | ListenerKind::Pop3s => {
                tokio::task::spawn_local(crate::pop3::serve(io, peer, kind, ctx))
            }
            ListenerKind::Imap | ListenerKind::Imaps => {
                tokio::task::spawn_local(crate::imap::serve(io, peer, kind, ctx))
            }
            ListenerKind::ManageSieve => {
                tokio::task::spawn_local(crate::managesieve::serve(io, peer, kind, ctx))
            }
            _ => tokio::task::spawn_local(crate::smtp::session::serve(io, peer, kind, ctx)),
        };
    }
}
