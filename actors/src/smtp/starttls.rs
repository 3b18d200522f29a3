//! STARTTLS (RFC 3207); implicit TLS (RFC 8314) is negotiated at admission
//! ([`crate::conn::admit`]).

use super::session::{Next, Session};
use postcore_protocol::smtp::codes;

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
        // RFC 3207 §5 / CVE-2011-0411: the connection core discards anything pipelined
        // after STARTTLS in plain text; it is never executed inside the TLS session.
        if let Err(e) = self.conn.start_tls().await {
            tracing::info!(client = %self.peer, "{e}");
            return Next::Close;
        }
        if let Some(info) = self.conn.tls_info() {
            tracing::info!(client = %self.peer, "TLS established: {info}");
        }
        // RFC 3207 §4.2: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.tx = None;
        self.auth = None;
        Next::Continue
    }
}
