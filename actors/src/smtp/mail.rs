//! MAIL FROM (RFC 5321 §4.1.1.2) with SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531).

use super::session::{Session, Transaction};
use crate::budget::Shortage;
use crate::context::ListenerKind;
use postcore_protocol::smtp::codes;
use postcore_protocol::smtp::{Address, BodyType, MailParams};

impl Session {
    pub(super) fn mail(&mut self, from: Option<Address>, params: MailParams) {
        if self.helo.is_none() {
            return self.send(codes::NEED_HELO);
        }
        if self.tx.is_some() {
            return self.send(codes::NESTED_MAIL);
        }
        if self.kind != ListenerKind::Smtp && self.auth.is_none() {
            // RFC 6409 §4.3 / RFC 4954 §6: submission requires authentication.
            if !self.is_tls() {
                return self.reject(
                    "tls_required",
                    codes::TLS_REQUIRED,
                    "MAIL before STARTTLS on submission",
                );
            }
            return self.reject(
                "auth_required",
                codes::AUTH_REQUIRED,
                "MAIL before AUTH on submission",
            );
        }
        if params.body == BodyType::BinaryMime {
            return self.send(codes::BINARYMIME_UNSUPPORTED);
        }
        let dir = self.ctx.shared.directory.snapshot();
        let max = dir.settings.max_message_size;
        if params.size.is_some_and(|s| s > max) {
            let detail = format!("SIZE={} over {max}", params.size.unwrap_or(0));
            return self.reject("size", codes::SIZE_EXCEEDS_LIMIT, &detail);
        }
        if let (Some(login), true) = (&self.auth, dir.settings.relay.enforce_sender_login_match)
            && let Some(f) = &from
            && !dir.sender_allowed(login, f)
        {
            let detail = format!("<{f}> not owned by user {login}");
            return self.reject("sender_login_mismatch", codes::SENDER_NOT_OWNED, &detail);
        }
        if let Some(login) = &self.auth
            && self.ctx.shared.limits.send_limited(
                login,
                self.ctx.shared.config.limits.max_messages_per_hour_per_user,
            )
        {
            let detail = format!("{login} reached limits.max_messages_per_hour_per_user");
            return self.reject_reply("send_rate", codes::SEND_RATE_LIMITED.into(), &detail);
        }
        let reservation = match self.ctx.shared.budget.start_transaction(max) {
            Ok(r) => r,
            Err(short) => {
                let detail = match short {
                    Shortage::Memory => "memory budget for mail in flight spent",
                    Shortage::Disk => "too little free disk space",
                };
                self.send(codes::INSUFFICIENT_STORAGE);
                metrics::counter!(crate::metrics::REJECTED, "reason" => "resources").increment(1);
                crate::limits::log_limited(self.peer.ip(), || {
                    tracing::warn!(client = %self.peer, "MAIL refused, 452 4.3.1: {detail}");
                });
                return;
            }
        };
        self.tx = Some(Transaction {
            from,
            params,
            rcpts: Vec::new(),
            bdat: None,
            dir,
            over_limit: 0,
            _reservation: reservation,
        });
        self.send(codes::SENDER_OK);
    }
}
