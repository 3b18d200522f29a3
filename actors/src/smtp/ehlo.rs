//! EHLO / HELO (RFC 5321 §4.1.1.1) and the extensions advertised.

use super::session::Session;
use crate::context::ListenerKind;
use postcore_protocol::smtp::Reply;

impl Session {
    /// True if AUTH may be offered now: inside TLS, and on port 25 only when allowed.
    pub(super) fn auth_offered(&self) -> bool {
        self.is_tls()
            && self.auth.is_none()
            && (self.kind != ListenerKind::Smtp
                || self
                    .ctx
                    .shared
                    .directory
                    .snapshot()
                    .settings
                    .relay
                    .auth_on_port25)
    }

    pub(super) fn ehlo(&mut self, name: String, extended: bool) {
        // RFC 5321 §4.1.4: EHLO resets any transaction in progress.
        self.tx = None;
        self.helo = Some(crate::util::sanitize_token(&name, 255));
        self.esmtp = extended;
        if !extended {
            let text = self.hostname().to_string();
            self.reply(Reply::new(250, "", text));
            return;
        }
        let max = self
            .ctx
            .shared
            .directory
            .snapshot()
            .settings
            .max_message_size;
        let mut lines = vec![
            self.hostname().to_string(),
            "PIPELINING".into(),
            format!("SIZE {max}"),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
            "CHUNKING".into(),
        ];
        if !self.is_tls() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        self.reply(Reply::multi(250, lines));
    }
}
