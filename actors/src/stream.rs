//! A connection that is plain TCP or TLS (after STARTTLS, or from the start on 465).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// The session's transport.
pub enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Reads what is available into `buf`; 0 means the peer closed.
    pub async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf).await,
            Stream::Tls(s) => s.read(buf).await,
        }
    }

    /// Writes all of `data` and flushes.
    pub async fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Stream::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
        }
    }

    /// Closes the write side (TLS close_notify first).
    pub async fn shutdown(&mut self) {
        let _ = match self {
            Stream::Plain(s) => s.shutdown().await,
            Stream::Tls(s) => s.shutdown().await,
        };
    }

    /// Asks the kernel to acknowledge received data at once (Linux `TCP_QUICKACK`, which
    /// lasts until the next delayed ACK decision). Used while a command is incomplete: a
    /// client with Nagle's algorithm on (imaplib) holds back the CRLF after a literal until
    /// the literal is acknowledged, and a delayed ACK would cost it 40 ms per APPEND.
    pub fn quickack(&self) {
        let tcp = match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        };
        let _ = socket2::SockRef::from(tcp).set_quickack(true);
    }

    /// True once TLS is active.
    pub fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// The negotiated TLS version and cipher, for the Received header and logs.
    pub fn tls_info(&self) -> Option<String> {
        match self {
            Stream::Tls(s) => {
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
            Stream::Plain(_) => None,
        }
    }
}

/// Runs the server side of a TLS handshake on a plain connection, within `timeout`.
pub async fn accept_tls(
    tcp: TcpStream,
    cfg: std::sync::Arc<rustls::ServerConfig>,
    timeout: std::time::Duration,
) -> Result<Stream, String> {
    match tokio::time::timeout(timeout, tokio_rustls::TlsAcceptor::from(cfg).accept(tcp)).await {
        Ok(Ok(tls)) => Ok(Stream::Tls(Box::new(tls))),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err("TLS handshake timed out".into()),
    }
}

/// What a mail-reading session (IMAP, POP3) holds while it runs: its per-IP connection
/// slot, its place in the open-sessions gauge, and the (possibly TLS) stream.
pub struct Admitted {
    /// The connection, TLS already negotiated on implicit-TLS ports.
    pub stream: Stream,
    /// Keep this alive for the session: it releases the slot and the gauge on drop.
    pub guard: AdmissionGuard,
}

/// The per-IP connection slot and the open-sessions count of one session.
pub struct AdmissionGuard {
    _slot: crate::limits::ConnSlot,
    _counted: crate::context::SessionGuard,
}

/// Admits a connection: the per-IP connection limit (`refusal` is written on plain ports
/// when it is reached), the open-sessions gauge, and the TLS handshake on implicit-TLS ports.
/// `None` when refused or when the handshake fails.
pub async fn admit(
    tcp: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
    implicit_tls: bool,
    shared: &std::sync::Arc<crate::context::Shared>,
    gauge: &'static str,
    refusal: &[u8],
) -> Option<Admitted> {
    let Some(slot) = shared
        .limits
        .connect(peer.ip(), shared.config.limits.max_connections_per_ip)
    else {
        let mut s = Stream::Plain(tcp);
        if !implicit_tls {
            let _ = s.write_all(refusal).await;
        }
        s.shutdown().await;
        return None;
    };
    let counted = crate::context::SessionGuard::new(shared, gauge);
    let timeout = std::time::Duration::from_secs(shared.config.limits.command_timeout_secs.min(60));
    let stream = if implicit_tls {
        match accept_tls(tcp, shared.tls.clone(), timeout).await {
            Ok(s) => s,
            Err(e) => {
                tracing::info!(client = %peer, gauge, "implicit TLS: {e}");
                return None;
            }
        }
    } else {
        Stream::Plain(tcp)
    };
    Some(Admitted {
        stream,
        guard: AdmissionGuard {
            _slot: slot,
            _counted: counted,
        },
    })
}
