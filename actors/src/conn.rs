//! The connection core every protocol session runs on (SMTP, IMAP, POP3, ManageSieve):
//! the transport (TCP, TLS over it, or an in-memory duplex in tests), input and output
//! buffering, reads with deadlines from the configuration, the STARTTLS upgrade with its
//! buffer discard, and admission (per-IP connection slots, the open-connection gauges,
//! implicit TLS). A protocol is its session logic on top: it frames lines or literals out of
//! [`Conn::inbuf`] with its sans-IO reader and writes replies into [`Conn::out`].

use crate::context::{ListenerKind, SessionGuard, Shared};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::server::TlsStream;

/// A byte stream a session can run over.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + 'static {
    /// Asks for received data to be acknowledged at once (see [`Conn::quickack`]); a no-op
    /// where there is no TCP underneath.
    fn quickack(&self) {}
}

impl Transport for tokio::net::TcpStream {
    fn quickack(&self) {
        let _ = socket2::SockRef::from(self).set_quickack(true);
    }
}

impl Transport for tokio::io::DuplexStream {}

/// The session's transport, plain or TLS.
enum Stream {
    Plain(Box<dyn Transport>),
    Tls(Box<TlsStream<Box<dyn Transport>>>),
}

/// A protocol's sans-IO framer (its line or command reader): takes one frame out of the input
/// buffer, or `None` when more input is needed.
pub trait Framer {
    /// What it yields: a line, a command with its literals, or a framing error.
    type Frame;
    /// The next frame in `buf` (consumed from it), if a whole one is there.
    fn frame(&mut self, buf: &mut Vec<u8>) -> Option<Self::Frame>;
}

impl Framer for postcore_protocol::smtp::LineReader {
    type Frame = postcore_protocol::smtp::LineEvent;
    fn frame(&mut self, buf: &mut Vec<u8>) -> Option<Self::Frame> {
        match self.ingest(buf) {
            postcore_protocol::smtp::LineEvent::NeedMore => None,
            e => Some(e),
        }
    }
}

impl Framer for postcore_protocol::imap::CommandReader {
    type Frame = postcore_protocol::imap::ReadEvent;
    fn frame(&mut self, buf: &mut Vec<u8>) -> Option<Self::Frame> {
        match self.ingest(buf) {
            postcore_protocol::imap::ReadEvent::NeedMore => None,
            e => Some(e),
        }
    }
}

impl Framer for postcore_protocol::managesieve::CommandReader {
    type Frame = postcore_protocol::managesieve::ReadEvent;
    fn frame(&mut self, buf: &mut Vec<u8>) -> Option<Self::Frame> {
        match self.ingest(buf) {
            postcore_protocol::managesieve::ReadEvent::NeedMore => None,
            e => Some(e),
        }
    }
}

/// Why a read ended without data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The peer closed the connection, or it failed.
    Closed,
    /// Nothing arrived before the deadline.
    Timeout,
}

/// One connection: its transport and its buffers.
pub struct Conn {
    stream: Option<Stream>,
    /// Received octets not yet consumed by the session's reader.
    pub inbuf: Vec<u8>,
    /// Replies not yet written (sent by [`Conn::flush`], so pipelined replies go together).
    pub out: Vec<u8>,
    /// The client's address.
    pub peer: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    handshake_timeout: Duration,
    /// COMPRESS=DEFLATE state once the session turned it on (RFC 4978).
    deflate: Option<crate::deflate::Deflate>,
}

/// Output buffers that grew past this (a large FETCH) are given back after a flush.
const KEEP_OUT: usize = 1024 * 1024;

impl Conn {
    /// A plain connection over `io` from `peer`; TLS handshakes use `tls` and must finish
    /// within `handshake_timeout`.
    pub fn new(
        io: Box<dyn Transport>,
        peer: SocketAddr,
        tls: Arc<rustls::ServerConfig>,
        handshake_timeout: Duration,
    ) -> Conn {
        Conn {
            stream: Some(Stream::Plain(io)),
            inbuf: Vec::with_capacity(4096),
            out: Vec::with_capacity(4096),
            peer,
            tls,
            handshake_timeout,
            deflate: None,
        }
    }

    /// True once COMPRESS=DEFLATE is on.
    pub fn is_compressed(&self) -> bool {
        self.deflate.is_some()
    }

    /// Turns on deflate both ways (RFC 4978 §3: right after the OK, which must have been
    /// flushed). Octets already received are taken as compressed.
    pub fn start_deflate(&mut self) {
        let mut d = crate::deflate::Deflate::new();
        d.receive(&std::mem::take(&mut self.inbuf));
        self.deflate = Some(d);
    }

    /// True until the connection failed or was closed by [`Conn::close`].
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Marks the connection closed: nothing more is read or written.
    pub fn close(&mut self) {
        self.stream = None;
    }

    /// True once TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Some(Stream::Tls(_)))
    }

    /// The negotiated TLS version and cipher, for the Received header and logs.
    pub fn tls_info(&self) -> Option<String> {
        let Some(Stream::Tls(s)) = &self.stream else {
            return None;
        };
        let (_, conn) = s.get_ref();
        let v = conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        let c = conn
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default();
        Some(format!("version={v} cipher={c}"))
    }

    /// Asks the kernel to acknowledge received data at once (Linux `TCP_QUICKACK`, which
    /// lasts until the next delayed ACK decision). Used while a command is incomplete: a
    /// client with Nagle's algorithm on (imaplib) holds back the CRLF after a literal until
    /// the literal is acknowledged, and a delayed ACK would cost it 40 ms per APPEND.
    pub fn quickack(&self) {
        match &self.stream {
            Some(Stream::Plain(s)) => s.quickack(),
            Some(Stream::Tls(s)) => s.get_ref().0.quickack(),
            None => {}
        }
    }

    /// Writes [`Conn::out`] and flushes; the connection is closed if that fails.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        if let Some(d) = self.deflate.as_mut() {
            let mut packed = Vec::new();
            let packed_ok = d.compress(&self.out, &mut packed);
            // No compressor is kept between replies (an IDLE session may wait for hours).
            d.rest();
            if let Err(e) = packed_ok {
                self.stream = None;
                return Err(e);
            }
            self.out = packed;
        }
        let res = match self.stream.as_mut() {
            Some(Stream::Plain(s)) => write_flush(s, &self.out).await,
            Some(Stream::Tls(s)) => write_flush(s, &self.out).await,
            None => Err(std::io::ErrorKind::NotConnected.into()),
        };
        self.out.clear();
        if self.out.capacity() > KEEP_OUT {
            self.out = Vec::with_capacity(4096);
        }
        if res.is_err() {
            self.stream = None;
        }
        res
    }

    /// Reads what is available (at most 16 KiB, or with deflate on at most
    /// [`crate::deflate::INFLATE_STEP`] inflated) into [`Conn::inbuf`], without a deadline.
    pub async fn read_some(&mut self) -> Result<usize, ReadEnd> {
        if self.deflate.is_some() {
            return self.read_inflated().await;
        }
        let mut tmp = [0u8; 16 * 1024];
        let n = self.read_raw(&mut tmp).await?;
        self.inbuf.extend_from_slice(&tmp[..n]);
        Ok(n)
    }

    /// With deflate on: inflates input already received, or reads more and inflates it.
    async fn read_inflated(&mut self) -> Result<usize, ReadEnd> {
        loop {
            let Some(d) = self.deflate.as_mut() else {
                return Err(ReadEnd::Closed);
            };
            if d.has_pending() {
                match d.inflate(&mut self.inbuf) {
                    Ok(n) if n > 0 => return Ok(n),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::info!(client = %self.peer, "deflate input: {e}");
                        self.stream = None;
                        return Err(ReadEnd::Closed);
                    }
                }
            }
            let mut tmp = [0u8; 16 * 1024];
            let n = self.read_raw(&mut tmp).await?;
            if let Some(d) = self.deflate.as_mut() {
                d.receive(&tmp[..n]);
            }
        }
    }

    /// One read from the transport into `tmp`: how many octets.
    async fn read_raw(&mut self, tmp: &mut [u8]) -> Result<usize, ReadEnd> {
        let n = match self.stream.as_mut() {
            Some(Stream::Plain(s)) => s.read(tmp).await,
            Some(Stream::Tls(s)) => s.read(tmp).await,
            None => return Err(ReadEnd::Closed),
        };
        match n {
            Ok(n) if n > 0 => Ok(n),
            _ => {
                self.stream = None;
                Err(ReadEnd::Closed)
            }
        }
    }

    /// Reads more input into [`Conn::inbuf`], waiting at most `timeout`.
    pub async fn fill(&mut self, timeout: Duration) -> Result<usize, ReadEnd> {
        match tokio::time::timeout(timeout, self.read_some()).await {
            Ok(r) => r,
            Err(_) => Err(ReadEnd::Timeout),
        }
    }

    /// Reads more input, waiting until `deadline` at most: a total for a whole command,
    /// which a client sending one octet at a time cannot stretch (each octet would restart
    /// a plain idle timeout).
    pub async fn fill_until(&mut self, deadline: Instant) -> Result<usize, ReadEnd> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ReadEnd::Timeout);
        }
        self.fill(left).await
    }

    /// The next frame of `framer`, reading more input as needed; the whole frame must arrive
    /// within `timeout`.
    pub async fn next_frame<F: Framer>(
        &mut self,
        framer: &mut F,
        timeout: Duration,
    ) -> Result<F::Frame, ReadEnd> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(f) = framer.frame(&mut self.inbuf) {
                return Ok(f);
            }
            self.fill_until(deadline).await?;
        }
    }

    /// Upgrades a plain connection to TLS (STARTTLS, STLS, or implicit TLS at admission).
    /// Octets the client pipelined after the command in plain text are discarded, never
    /// read inside TLS (RFC 3207 §5, RFC 2595 §3.1, CVE-2011-0411). On failure the
    /// connection is closed.
    pub async fn start_tls(&mut self) -> Result<(), String> {
        if !self.inbuf.is_empty() {
            tracing::warn!(client = %self.peer, octets = self.inbuf.len(), "discarding plaintext pipelined after STARTTLS");
            self.inbuf.clear();
        }
        let Some(Stream::Plain(io)) = self.stream.take() else {
            return Err("TLS is already active".into());
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.clone());
        match tokio::time::timeout(self.handshake_timeout, acceptor.accept(io)).await {
            Ok(Ok(tls)) => {
                self.stream = Some(Stream::Tls(Box::new(tls)));
                Ok(())
            }
            Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
            Err(_) => Err("TLS handshake timed out".into()),
        }
    }

    /// Writes what is pending and closes the write side (TLS close_notify first).
    pub async fn shutdown(&mut self) {
        let _ = self.flush().await;
        let _ = match self.stream.as_mut() {
            Some(Stream::Plain(s)) => s.shutdown().await,
            Some(Stream::Tls(s)) => s.shutdown().await,
            None => Ok(()),
        };
        self.stream = None;
    }
}

async fn write_flush<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    data: &[u8],
) -> std::io::Result<()> {
    w.write_all(data).await?;
    w.flush().await
}

/// What a session holds while it runs: its per-IP connection slot and its place in the
/// open-connection gauge (released on drop, however the session ends).
pub struct AdmissionGuard {
    _slot: crate::limits::ConnSlot,
    _counted: SessionGuard,
}

/// The open-connection gauge and the refusal line of a listener's protocol.
fn protocol_of(kind: ListenerKind) -> (&'static str, &'static [u8]) {
    use crate::metrics::{CONNECTIONS_OPEN, IMAP_OPEN, MANAGESIEVE_OPEN, POP3_OPEN};
    match kind {
        ListenerKind::Smtp | ListenerKind::Submission | ListenerKind::Submissions => (
            CONNECTIONS_OPEN,
            b"421 4.7.0 Error: too many connections from your IP address\r\n",
        ),
        ListenerKind::Pop3 | ListenerKind::Pop3s => (
            POP3_OPEN,
            b"-ERR [SYS/TEMP] Too many connections from your IP address\r\n",
        ),
        ListenerKind::Imap | ListenerKind::Imaps => (
            IMAP_OPEN,
            b"* BYE [UNAVAILABLE] Too many connections from your IP address\r\n",
        ),
        ListenerKind::ManageSieve => (
            MANAGESIEVE_OPEN,
            b"BYE (TRYLATER) \"Too many connections from your IP address\"\r\n",
        ),
    }
}

/// True for the listeners that speak TLS from the first octet (RFC 8314).
pub fn implicit_tls(kind: ListenerKind) -> bool {
    matches!(
        kind,
        ListenerKind::Submissions | ListenerKind::Pop3s | ListenerKind::Imaps
    )
}

/// Admits a connection on listener `kind`: the per-IP and per-network connection limits (the protocol's
/// refusal is written on plain ports when it is reached), the open-connection gauge, and the
/// TLS handshake on implicit-TLS ports. `None` when refused or when the handshake fails.
pub async fn admit(
    io: Box<dyn Transport>,
    peer: SocketAddr,
    kind: ListenerKind,
    shared: &Arc<Shared>,
) -> Option<(Conn, AdmissionGuard)> {
    let limits = &shared.config.limits;
    let mut conn = Conn::new(
        io,
        peer,
        shared.tls.clone(),
        Duration::from_secs(limits.command_timeout_secs),
    );
    let (gauge, refusal) = protocol_of(kind);
    if gauge == crate::metrics::CONNECTIONS_OPEN {
        metrics::counter!(crate::metrics::CONNECTIONS, "listener" => kind.name()).increment(1);
    }
    let over_total = shared
        .active_sessions
        .load(std::sync::atomic::Ordering::Relaxed)
        >= shared.max_connections;
    let slot = if over_total {
        None
    } else {
        let per_net = match limits.max_connections_per_network {
            0 => 0,
            n => n.max(limits.max_connections_per_ip),
        };
        shared
            .limits
            .connect(peer.ip(), limits.max_connections_per_ip, per_net)
    };
    let Some(slot) = slot else {
        let (reason, what) = if over_total {
            ("connection_limit_total", "too many connections in all")
        } else {
            (
                "connection_limit",
                "too many connections from this IP or its network (/24, /64)",
            )
        };
        tracing::warn!(client = %peer.ip(), listener = kind.name(), "reject: {what}");
        metrics::counter!(crate::metrics::REJECTED, "reason" => reason).increment(1);
        if !implicit_tls(kind) {
            conn.out.extend_from_slice(refusal);
        }
        conn.shutdown().await;
        return None;
    };
    let counted = SessionGuard::new(shared, gauge);
    if implicit_tls(kind)
        && let Err(e) = conn.start_tls().await
    {
        tracing::info!(client = %peer, listener = kind.name(), "implicit TLS: {e}");
        return None;
    }
    Some((
        conn,
        AdmissionGuard {
            _slot: slot,
            _counted: counted,
        },
    ))
}
