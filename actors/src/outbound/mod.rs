//! Outbound delivery: routes, DNS, the SMTP client, and delivery of queued messages to other
//! servers, several messages per connection and up to `max_per_destination` connections per
//! destination.

pub mod actor;
pub mod client;
pub mod dsn;
pub mod route;

use crate::config::OutboundConfig;
use bytes::Bytes;
use client::{ClientError, SmtpClient};
use hickory_resolver::TokioResolver;
use postcore_protocol::smtp::client::ServerReply;
use postcore_storage::queue::Failure;
use route::{ResolveError, Route, TlsPolicy};
use std::sync::Arc;
use std::time::Duration;

/// How long an idle connection is kept for the next message to the same destination.
pub const IDLE_REUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// One message to send over a route.
pub struct Job {
    /// Queue id, for logs.
    pub qid: String,
    /// Envelope sender.
    pub from: String,
    /// (index in the queue record, recipient address).
    pub rcpts: Vec<(usize, String)>,
    /// Message octets.
    pub data: Bytes,
    /// Arrival (Unix seconds), for the delay in logs.
    pub arrival: u64,
}

/// What happened to one recipient.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Accepted by the peer; the reply.
    Sent(String),
    /// Try again later: status and reason.
    Deferred(Failure),
    /// Permanent failure: status and diagnostic.
    Failed(Failure),
}

/// The outbound SMTP engine.
pub struct Outbound {
    resolver: TokioResolver,
    tls: Arc<rustls::ClientConfig>,
    cfg: OutboundConfig,
    /// Idle connections kept for reuse (a connection cache, like Postfix's scache).
    idle:
        std::cell::RefCell<std::collections::HashMap<Route, Vec<(SmtpClient, std::time::Instant)>>>,
    /// Connections per destination across all queue runs (`max_per_destination`).
    slots:
        std::cell::RefCell<std::collections::HashMap<Route, std::rc::Rc<tokio::sync::Semaphore>>>,
}

/// The enhanced status code in a reply (`5.1.1`), or one derived from its class.
pub fn status_of(r: &ServerReply) -> String {
    let first = r.text.split_whitespace().next().unwrap_or("");
    let parts: Vec<&str> = first.split('.').collect();
    if parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && matches!(parts[0], "2" | "4" | "5")
    {
        return first.to_string();
    }
    format!("{}.0.0", r.code / 100)
}

fn outcome_of(r: &ServerReply) -> Outcome {
    if r.is_positive() {
        Outcome::Sent(r.one_line())
    } else if r.is_permanent() {
        Outcome::Failed(Failure::new(&status_of(r), r.one_line()))
    } else {
        Outcome::Deferred(Failure::new(&status_of(r), r.one_line()))
    }
}

impl Outbound {
    /// An engine with the given resolvers (empty: the system's).
    pub fn new(cfg: &crate::config::Config) -> anyhow::Result<Outbound> {
        Ok(Outbound {
            resolver: route::resolver(&cfg.dns.resolvers)?,
            tls: client::tls_config()?,
            cfg: cfg.outbound.clone(),
            slots: Default::default(),
            idle: Default::default(),
        })
    }

    /// Delivers `jobs` over `route`; returns (job index, record rcpt index, outcome).
    pub async fn deliver(
        &self,
        route: &Route,
        helo: &str,
        jobs: Vec<Job>,
    ) -> Vec<(usize, usize, Outcome)> {
        let targets = match route::targets(&self.resolver, route, self.cfg.mx_port).await {
            Ok(t) => t,
            Err(e) => {
                // RFC 3463: 4.4.3 directory server failure, 5.1.2 bad destination system.
                let o = match e {
                    ResolveError::Temporary(m) => Outcome::Deferred(Failure::new("4.4.3", m)),
                    ResolveError::Permanent(m) => Outcome::Failed(Failure::new("5.1.2", m)),
                };
                // Every recipient gets its line, as for any other attempt.
                for job in &jobs {
                    log_attempts(job, "none", &o);
                }
                return jobs
                    .iter()
                    .enumerate()
                    .flat_map(|(j, job)| job.rcpts.iter().map(move |(i, _)| (j, *i)))
                    .map(|(j, i)| (j, i, o.clone()))
                    .collect();
            }
        };
        let lanes = self.cfg.max_per_destination.max(1).min(jobs.len().max(1));
        let mut chunks: Vec<Vec<(usize, Job)>> = (0..lanes).map(|_| Vec::new()).collect();
        for (j, job) in jobs.into_iter().enumerate() {
            chunks[j % lanes].push((j, job));
        }
        let runs = chunks
            .into_iter()
            .map(|chunk| self.run_lane(route, helo, &targets, chunk));
        futures_util::future::join_all(runs)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    async fn connect(
        &self,
        route: &Route,
        helo: &str,
        targets: &[(std::net::SocketAddr, String)],
        skip: usize,
    ) -> Result<(SmtpClient, usize), String> {
        let (auth, tls) = match route {
            Route::Host { auth, tls, .. } => (auth.clone(), *tls),
            Route::Mx(_) => (None, TlsPolicy::Opportunistic),
        };
        let mut last = String::from("no address to connect to");
        for (n, (addr, name)) in targets.iter().enumerate().skip(skip) {
            let implicit = (tls == TlsPolicy::Implicit).then_some(&self.tls);
            let conn = SmtpClient::connect(
                *addr,
                name,
                Duration::from_secs(self.cfg.connect_timeout_secs),
                Duration::from_secs(self.cfg.command_timeout_secs),
                implicit,
            )
            .await;
            let mut c = match conn {
                Ok(c) => c,
                Err(e) => {
                    tracing::info!(relay = %addr, "connect to {name}[{addr}]: {e}");
                    last = format!("{name}[{addr}]: {e}");
                    continue;
                }
            };
            let use_tls = if tls == TlsPolicy::Never {
                None
            } else {
                Some(&self.tls)
            };
            let creds = auth.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
            let hello = match use_tls {
                Some(t) => {
                    c.hello(helo, t, name, tls == TlsPolicy::Required, creds)
                        .await
                }
                None => c.hello_plain(helo, creds).await,
            };
            match hello {
                Ok(()) => {
                    c.peer = format!("{name}[{}]:{}", addr.ip(), addr.port());
                    return Ok((c, n));
                }
                Err(e) => {
                    tracing::info!(relay = %addr, "session setup with {name}[{addr}]: {e}");
                    last = format!("{name}[{addr}]: {e}");
                    c.quit().await;
                }
            }
        }
        Err(last)
    }

    async fn run_lane(
        &self,
        route: &Route,
        helo: &str,
        targets: &[(std::net::SocketAddr, String)],
        chunk: Vec<(usize, Job)>,
    ) -> Vec<(usize, usize, Outcome)> {
        let slots = self
            .slots
            .borrow_mut()
            .entry(route.clone())
            .or_insert_with(|| {
                std::rc::Rc::new(tokio::sync::Semaphore::new(
                    self.cfg.max_per_destination.max(1),
                ))
            })
            .clone();
        // Held for the lane's whole connection: at most max_per_destination at a time,
        // across every queue run.
        let _slot = slots.acquire().await;
        let mut out = Vec::new();
        let mut client: Option<SmtpClient> = None;
        let mut next_target = 0;
        for (j, job) in chunk {
            let addrs: Vec<String> = job.rcpts.iter().map(|(_, a)| a.clone()).collect();
            let utf8 = !job.from.is_ascii() || addrs.iter().any(|a| !a.is_ascii());
            // A cached connection the peer has closed meanwhile gets one fresh retry.
            let mut reused = false;
            let result = loop {
                if client.is_none() {
                    client = self.take_idle(route);
                    reused = client.is_some();
                }
                if client.is_none() {
                    match self.connect(route, helo, targets, next_target).await {
                        Ok((c, n)) => {
                            client = Some(c);
                            next_target = n;
                        }
                        Err(e) => break Err((String::from("none"), ClientError::Io(e))),
                    }
                }
                let Some(c) = client.as_mut() else { continue };
                let peer = c.peer.clone();
                match c.send(&job.from, &addrs, &job.data, utf8).await {
                    Err(ClientError::Io(_)) if reused => {
                        client = None;
                        reused = false;
                    }
                    Ok(replies) => break Ok((peer, replies)),
                    Err(e) => break Err((peer, e)),
                }
            };
            match result {
                Ok((peer, replies)) => {
                    for ((i, a), r) in job.rcpts.iter().zip(replies) {
                        let o = outcome_of(&r);
                        log_attempt(&job, a, &peer, &o);
                        out.push((j, *i, o));
                    }
                }
                Err((peer, ClientError::Reply(r))) => {
                    let o = outcome_of(&r);
                    log_attempts(&job, &peer, &o);
                    out.extend(job.rcpts.iter().map(|(i, _)| (j, *i, o.clone())));
                }
                Err((peer, ClientError::Io(e))) => {
                    // RFC 3463 4.4.1: no answer from host / connection dropped.
                    let o = Outcome::Deferred(Failure::new(
                        "4.4.1",
                        if peer == "none" {
                            e
                        } else {
                            format!("{peer}: {e}")
                        },
                    ));
                    log_attempts(&job, &peer, &o);
                    out.extend(job.rcpts.iter().map(|(i, _)| (j, *i, o.clone())));
                    if peer != "none" {
                        // The connection is unusable; the next message tries the next address.
                        client = None;
                        next_target = (next_target + 1) % targets.len().max(1);
                    }
                }
            }
        }
        if let Some(c) = client {
            self.idle
                .borrow_mut()
                .entry(route.clone())
                .or_default()
                .push((c, std::time::Instant::now()));
        }
        out
    }

    /// A cached connection to `route` that has been idle for less than [`IDLE_REUSE`].
    fn take_idle(&self, route: &Route) -> Option<SmtpClient> {
        let mut idle = self.idle.borrow_mut();
        let list = idle.get_mut(route)?;
        while let Some((c, since)) = list.pop() {
            if since.elapsed() < IDLE_REUSE {
                return Some(c);
            }
            tokio::task::spawn_local(c.quit());
        }
        None
    }

    /// Closes cached connections idle for longer than [`IDLE_REUSE`] (QUIT, RFC 5321 §4.1.1.10).
    pub fn close_idle(&self) {
        let mut idle = self.idle.borrow_mut();
        for list in idle.values_mut() {
            let (keep, old): (Vec<_>, Vec<_>) = list
                .drain(..)
                .partition(|(_, since)| since.elapsed() < IDLE_REUSE);
            *list = keep;
            for (c, _) in old {
                tokio::task::spawn_local(c.quit());
            }
        }
        idle.retain(|_, l| !l.is_empty());
    }
}

fn log_attempts(job: &Job, relay: &str, o: &Outcome) {
    for (_, a) in &job.rcpts {
        log_attempt(job, a, relay, o);
    }
}

fn log_attempt(job: &Job, rcpt: &str, relay: &str, o: &Outcome) {
    let delay = postcore_storage::queue::now_secs().saturating_sub(job.arrival);
    let qid = &job.qid;
    let (dsn, status, text) = match o {
        Outcome::Sent(r) => ("2.0.0", "sent", r.as_str()),
        Outcome::Deferred(f) => (f.dsn.as_str(), "deferred", f.reason.as_str()),
        Outcome::Failed(f) => (f.dsn.as_str(), "bounced", f.reason.as_str()),
    };
    tracing::info!(
        qid,
        status,
        "{qid}: to=<{rcpt}>, relay={relay}, delay={delay}, dsn={dsn}, status={status} ({text})"
    );
    metrics::counter!(crate::metrics::DELIVERIES, "kind" => "remote", "status" => status)
        .increment(1);
}
