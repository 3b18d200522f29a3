//! The SMTP session state machine and its I/O loop (RFC 5321 §3, §4.1.4 command order).
//!
//! Replies to pipelined commands (RFC 2920) are collected and written when the input buffer
//! holds no further complete command, so a pipelining client gets them in one write.

pub(super) use crate::conn::ReadEnd;
use crate::conn::{Conn, Transport};
use crate::context::{ListenerKind, WorkerCtx};
use postcore_protocol::smtp::{Address, Command, LineEvent, LineReader, MailParams, Reply, codes};
use postcore_storage::directory::{Directory, Target};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An accepted recipient and what it expands to.
pub struct AcceptedRcpt {
    /// The address as given in RCPT TO.
    pub address: Address,
    /// Deliveries.
    pub targets: Vec<Target>,
}

/// One mail transaction (MAIL … DATA/BDAT LAST).
pub struct Transaction {
    /// Reverse-path (`None` = null sender).
    pub from: Option<Address>,
    /// MAIL parameters.
    pub params: MailParams,
    /// Accepted recipients.
    pub rcpts: Vec<AcceptedRcpt>,
    /// BDAT content received so far (large content already on disk).
    pub bdat: Option<(
        postcore_protocol::smtp::DataReceiver,
        crate::body::BodySpool,
    )>,
    /// Directory snapshot the transaction was checked against.
    pub dir: Arc<Directory>,
    /// RCPTs refused because the recipient limit was reached.
    pub over_limit: u32,
    /// This transaction's share of the memory budget (given back when it ends).
    pub _reservation: crate::budget::Reservation,
}

/// What the loop does after a command.
pub enum Next {
    /// Read the next command.
    Continue,
    /// Close the connection (after writing pending replies).
    Close,
}

/// One SMTP session.
pub struct Session {
    pub(super) ctx: Rc<WorkerCtx>,
    pub(super) kind: ListenerKind,
    pub(super) peer: SocketAddr,
    pub(super) conn: Conn,
    pub(super) lines: LineReader,
    pub(super) helo: Option<String>,
    pub(super) esmtp: bool,
    pub(super) auth: Option<String>,
    pub(super) auth_failures: u32,
    pub(super) errors: u32,
    /// End of the AUTH exchange in progress: all its steps share one deadline.
    pub(super) sasl_deadline: Option<Instant>,
    pub(super) tx: Option<Transaction>,
    pub(super) started: Instant,
}

/// Entry point for an accepted connection on an SMTP listener (`io`: TCP, or a duplex
/// stream in tests).
pub async fn serve(
    io: Box<dyn Transport>,
    peer: SocketAddr,
    kind: ListenerKind,
    ctx: Rc<WorkerCtx>,
) {
    let shared = ctx.shared.clone();
    let Some((conn, _admitted)) = crate::conn::admit(io, peer, kind, &shared).await else {
        return;
    };
    tracing::info!(client = %peer, listener = kind.name(), "connect from [{}]", peer.ip());
    let max_line = shared.config.limits.max_line_length;
    let mut s = Session {
        ctx,
        kind,
        peer,
        conn,
        lines: LineReader::new(max_line),
        helo: None,
        esmtp: false,
        auth: None,
        auth_failures: 0,
        errors: 0,
        sasl_deadline: None,
        tx: None,
        started: Instant::now(),
    };
    s.run().await;
    s.conn.shutdown().await;
    tracing::info!(client = %peer, listener = kind.name(), duration_ms = s.started.elapsed().as_millis() as u64, "disconnect from [{}]", peer.ip());
}

impl Session {
    pub(super) fn hostname(&self) -> &str {
        &self.ctx.shared.config.hostname
    }

    pub(super) fn is_tls(&self) -> bool {
        self.conn.is_tls()
    }

    /// True for clients that count as "inside": authenticated, or from trusted networks.
    pub(super) fn is_inside(&self, dir: &Directory) -> bool {
        self.auth.is_some() || self.in_trusted_networks(dir)
    }

    /// True if the client's address is in one of `networks`.
    fn peer_in(&self, networks: &[ipnet::IpNet]) -> bool {
        let ip = self.peer.ip();
        networks.iter().any(|n| n.contains(&ip))
    }

    /// True if the client's address is in `relay.trusted_networks`.
    pub(super) fn in_trusted_networks(&self, dir: &Directory) -> bool {
        self.peer_in(&dir.settings.relay.trusted_networks)
    }

    /// True if this client is in "Allow relay from IP addresses", which the filter leaves
    /// alone (the reference excludes those networks from all checks).
    pub(super) fn filter_exempt(&self, dir: &Directory) -> bool {
        self.peer_in(&dir.settings.relay.allow_relay_from)
    }

    /// True if this client may send to foreign domains.
    pub(super) fn may_relay(&self, dir: &Directory) -> bool {
        self.auth.is_some()
            || self.filter_exempt(dir)
            || (dir.settings.relay.allow_relay_from_trusted && self.in_trusted_networks(dir))
    }

    /// Queues a reply; 5xx replies count towards the error limit (RFC 5321 §4.3.2 hard errors).
    pub(super) fn reply(&mut self, r: Reply) {
        if r.code >= 500 {
            self.errors += 1;
        }
        r.write_to(&mut self.conn.out);
    }

    /// Queues a named reply (see [`codes`]) or one built from it.
    pub(super) fn send(&mut self, r: impl Into<Reply>) {
        self.reply(r.into());
    }

    /// Counts a rejection for metrics, logs it maillog-style and queues the reply.
    pub(super) fn reject(&mut self, reason: &'static str, code: codes::Code, detail: &str) {
        self.reject_reply(reason, code.into(), detail);
    }

    /// [`Session::reject`] with a reply built at run time.
    pub(super) fn reject_reply(&mut self, reason: &'static str, reply: Reply, detail: &str) {
        let code = reply.code;
        let status = reply.status.as_deref().unwrap_or("");
        let text = reply.lines.join(" ");
        // At most LOG_LINES_PER_WINDOW lines per client address and window: a client that
        // repeats a refused command cannot flood the log (the metric counts every one).
        crate::limits::log_limited(self.peer.ip(), || {
            tracing::info!(client = %self.peer, reason, code, "reject: {detail}: {code} {status} {text}");
        });
        metrics::counter!(crate::metrics::REJECTED, "reason" => reason).increment(1);
        self.reply(reply);
    }

    pub(super) async fn flush(&mut self) -> std::io::Result<()> {
        self.conn.flush().await
    }

    /// Reads more input, waiting at most `timeout`.
    pub(super) async fn fill(&mut self, timeout: Duration) -> Result<usize, ReadEnd> {
        self.conn.fill(timeout).await
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_secs(self.ctx.shared.config.limits.command_timeout_secs)
    }

    /// Reads one line for a multi-step exchange (AUTH); `None` if the client went away.
    pub(super) async fn read_line(&mut self) -> Option<Vec<u8>> {
        if self.flush().await.is_err() {
            return None;
        }
        let timeout = self.sasl_deadline.map_or_else(
            || self.command_timeout(),
            |d| d.saturating_duration_since(Instant::now()),
        );
        match self.conn.next_frame(&mut self.lines, timeout).await {
            Ok(LineEvent::Line(l)) => Some(l),
            Ok(_) => Some(Vec::new()),
            Err(_) => None,
        }
    }

    async fn greet(&mut self) -> bool {
        if let (ListenerKind::Submissions, Some(info)) = (self.kind, self.conn.tls_info()) {
            tracing::info!(client = %self.peer, "TLS established: {info}");
        }
        if *self.ctx.shared.shutdown.borrow() {
            self.send(codes::SHUTTING_DOWN.from_host(self.hostname()));
            let _ = self.flush().await;
            return false;
        }
        let banner = format!("{} ESMTP postcore", self.hostname());
        self.reply(Reply::new(220, "", banner));
        self.flush().await.is_ok()
    }

    async fn run(&mut self) {
        if !self.greet().await {
            return;
        }
        // RFC 5321 §4.5.3.2.7's command timeout, as a total for each command line: it
        // starts when the server waits for a command and is not restarted by each octet.
        let mut deadline = Instant::now() + self.command_timeout();
        loop {
            loop {
                match self.lines.ingest(&mut self.conn.inbuf) {
                    LineEvent::Line(line) => {
                        if let Next::Close = self.command(line).await {
                            let _ = self.flush().await;
                            return;
                        }
                        if self.errors >= self.ctx.shared.config.limits.max_errors {
                            self.reject_reply(
                                "too_many_errors",
                                codes::TOO_MANY_ERRORS.from_host(self.hostname()),
                                "error limit reached",
                            );
                            let _ = self.flush().await;
                            return;
                        }
                        // The next command's time starts when this one is done.
                        deadline = Instant::now() + self.command_timeout();
                    }
                    LineEvent::TooLong => {
                        let max = self.ctx.shared.config.limits.max_line_length;
                        self.reject(
                            "line_too_long",
                            codes::LINE_TOO_LONG,
                            &format!("command line over {max} octets"),
                        );
                    }
                    LineEvent::NeedMore => break,
                }
            }
            if self.flush().await.is_err() {
                return;
            }
            match self.conn.fill_until(deadline).await {
                Ok(_) => {}
                Err(ReadEnd::Closed) => {
                    if self.tx.is_some() {
                        tracing::info!(client = %self.peer, "lost connection during transaction");
                    }
                    return;
                }
                Err(ReadEnd::Timeout) => {
                    self.send(codes::TIMEOUT.from_host(self.hostname()));
                    tracing::info!(client = %self.peer, "timeout after {:?}", self.command_timeout());
                    let _ = self.flush().await;
                    return;
                }
            }
        }
    }

    async fn command(&mut self, line: Vec<u8>) -> Next {
        let cmd = match Command::parse(&line) {
            Ok(c) => c,
            Err(e) => {
                self.send(codes::for_command_error(&e).with_text(format!("Error: {e}")));
                return Next::Continue;
            }
        };
        // RFC 3030 §2: a BDAT sequence can only be followed by BDAT, RSET or QUIT.
        if self.tx.as_ref().is_some_and(|t| t.bdat.is_some())
            && !matches!(
                cmd,
                Command::Bdat { .. }
                    | Command::Burl { .. }
                    | Command::Rset
                    | Command::Quit
                    | Command::Noop
            )
        {
            self.send(codes::BDAT_IN_PROGRESS);
            return Next::Continue;
        }
        match cmd {
            Command::Ehlo(h) => self.ehlo(h, true),
            Command::Helo(h) => self.ehlo(h, false),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, .. } => self.rcpt(to),
            Command::Data => return self.data().await,
            Command::Bdat { size, last } => return self.bdat(size, last).await,
            Command::Burl { url, last } => return self.burl(&url, last).await,
            Command::Rset => {
                self.tx = None;
                self.send(codes::OK);
            }
            Command::Noop => self.send(codes::OK),
            Command::Quit => {
                self.send(codes::BYE);
                return Next::Close;
            }
            // RFC 5321 §3.5.3: 252 when we will not verify; EXPN is not offered (§3.5.2).
            Command::Vrfy(_) => self.send(codes::CANNOT_VRFY),
            Command::Expn(_) => self.send(codes::EXPN_UNAVAILABLE),
            Command::Help => self.send(codes::HELP),
            Command::StartTls => return self.starttls().await,
            Command::Auth { mechanism, initial } => {
                return self.authenticate(mechanism, initial).await;
            }
        }
        Next::Continue
    }
}
