//! COMPRESS (RFC 4978): after the tagged OK, both directions are deflate streams
//! (the connection core does the work, `crate::deflate`).

use super::{Done, Session};
use postcore_protocol::imap::Code;

impl Session {
    /// COMPRESS DEFLATE, in the authenticated or selected state (§3).
    pub(super) async fn compress(&mut self, tag: &str, mechanism: &str) -> Done {
        if self.conn.is_compressed() {
            return Done::no_with(Code::CompressionActive, "DEFLATE is already active");
        }
        if !mechanism.eq_ignore_ascii_case("DEFLATE") {
            return Done::bad("Unknown compression mechanism");
        }
        self.line(&format!("{tag} OK DEFLATE active"));
        if !self.flush().await {
            self.conn.close();
            return Done::Silent;
        }
        self.conn.start_deflate();
        tracing::info!(client = %self.peer, user = %self.user(), "imap: COMPRESS=DEFLATE on");
        Done::Silent
    }
}
