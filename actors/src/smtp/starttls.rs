//! STARTTLS (RFC 3207) and implicit TLS (RFC 8314).

use super::session::{Next, Session};
use crate::stream::Stream;
use postcore_protocol::smtp::codes;
use std::time::Duration;

impl Session {
    pub(super) async fn starttls(&mut self) -> Next {
        if self.is_tls() {
            self.send(codes::TLS_ALREADY_ACTIVE);
            return Next::Continue;
        }
        self.send(codes::READY_FOR_TLS);
        if self.flush().await.is_err() {
            return Next::Close;
        }
        // RFC 3207 §5 / CVE-2011-0411: anything pipelined after STARTTLS was sent in plain
        // text and must not be executed inside the TLS session.
        if !self.inbuf.is_empty() {
            tracing::warn!(client = %self.peer, octets = self.inbuf.len(), "discarding plaintext pipelined after STARTTLS");
            self.inbuf.clear();
        }
        if !self.start_tls().await {
            return Next::Close;
        }
        // RFC 3207 §4.2: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.auth = None;
        Next::Continue
    }

    /// Runs the TLS handshake on the current plain stream.
    pub(super) async fn start_tls(&mut self) -> bool {
        let Some(Stream::Plain(tcp)) = self.stream.take() else {
            return false;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(self.ctx.shared.tls.clone());
        let timeout =
            Duration::from_secs(self.ctx.shared.config.limits.command_timeout_secs.min(60));
        match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => {
                self.stream = Some(Stream::Tls(Box::new(tls)));
                if let Some(info) = self.stream.as_ref().and_then(Stream::tls_info) {
                    tracing::info!(client = %self.peer, "TLS established: {info}");
                }
                true
            }
            Ok(Err(e)) => {
                tracing::info!(client = %self.peer, "TLS handshake failed: {e}");
                false
            }
            Err(_) => {
                tracing::info!(client = %self.peer, "TLS handshake timed out");
                false
            }
        }
    }
}
