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
