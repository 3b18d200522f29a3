//! MAIL FROM (RFC 5321 §4.1.1.2) with SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531).

use super::session::{Session, Transaction};
use crate::context::ListenerKind;
use postcore_protocol::smtp::{Address, BodyType, MailParams};

impl Session {
    pub(super) fn mail(&mut self, from: Option<Address>, params: MailParams) {
        if self.helo.is_none() {
            return self.reply_str(503, "5.5.1", "Error: send HELO/EHLO first");
        }
        if self.tx.is_some() {
            return self.reply_str(503, "5.5.1", "Error: nested MAIL command");
        }
        if self.kind != ListenerKind::Smtp && self.auth.is_none() {
            // RFC 6409 §4.3 / RFC 4954 §6: submission requires authentication.
            if !self.is_tls() {
                return self.reject(
                    "tls_required",
                    530,
                    "5.7.0",
                    "Must issue a STARTTLS command first",
                    "MAIL before STARTTLS on submission",
                );
            }
            return self.reject(
                "auth_required",
                530,
                "5.7.0",
                "Authentication required",
                "MAIL before AUTH on submission",
            );
        }
        if params.body == BodyType::BinaryMime {
            return self.reply_str(555, "5.5.4", "Error: BODY=BINARYMIME not supported");
        }
        let dir = self.ctx.shared.directory.snapshot();
        let max = dir.settings.max_message_size;
        if params.size.is_some_and(|s| s > max) {
            let detail = format!("SIZE={} over {max}", params.size.unwrap_or(0));
            return self.reject(
                "size",
                552,
                "5.3.4",
                "Error: message size exceeds fixed limit",
                &detail,
            );
        }
        if let (Some(login), true) = (&self.auth, dir.settings.relay.enforce_sender_login_match)
            && let Some(f) = &from
            && !dir.sender_allowed(login, f)
        {
            let detail = format!("<{f}> not owned by user {login}");
            return self.reject(
                "sender_login_mismatch",
                553,
                "5.7.1",
                "Sender address rejected: not owned by user",
                &detail,
            );
        }
        self.tx = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
            bdat: None,
            dir,
        });
        self.reply_str(250, "2.1.0", "Ok");
    }
}
