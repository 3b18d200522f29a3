//! RCPT TO (RFC 5321 §4.1.1.3): recipient resolution, relay control, internal addresses,
//! recipient limit (RFC 5321 §4.5.3.1.8).

use super::session::{AcceptedRcpt, Session};
use postcore_protocol::smtp::Address;
use postcore_protocol::smtp::codes;
use postcore_storage::directory::{RcptResolution, Target};

impl Session {
    /// RFC 5321 §4.5.3.1.8: `452` past the limit. Each counts as a protocol error (so a flood
    /// of RCPTs ends at `max_errors`), and only the first of a transaction is logged.
    fn over_recipient_limit(&mut self) {
        let n = self.tx.as_mut().map_or(1, |t| {
            t.over_limit += 1;
            t.over_limit
        });
        self.errors += 1;
        if n == 1 {
            self.reject(
                "too_many_recipients",
                codes::TOO_MANY_RECIPIENTS,
                "recipient limit reached (further ones in this transaction are not logged)",
            );
        } else {
            metrics::counter!(crate::metrics::REJECTED, "reason" => "too_many_recipients")
                .increment(1);
            self.send(codes::TOO_MANY_RECIPIENTS);
        }
    }

    /// A reply or bounce to an address we rewrote with SRS when forwarding (`SRS0=…@` one of
    /// our domains): where it goes back to, if the address is genuine and recent.
    fn srs_bounce_path(
        &self,
        dir: &postcore_storage::directory::Directory,
        to: &Address,
    ) -> Option<Vec<Target>> {
        let now = postcore_storage::queue::now_secs();
        let original = self.ctx.shared.srs.reverse(&to.local, now)?;
        tracing::info!(client = %self.peer, "srs: <{to}> is the return path of <{original}>");
        crate::pipeline::resolve_redirect(dir, &original)
    }

    pub(super) fn rcpt(&mut self, to: Address) {
        let Some(tx) = self.tx.as_ref() else {
            return self.send(codes::NEED_MAIL);
        };
        let dir = tx.dir.clone();
        if tx.rcpts.len() >= dir.settings.max_recipients {
            return self.over_recipient_limit();
        }
        if to.is_utf8() && !tx.params.smtputf8 {
            // RFC 6531 §3.5: non-ASCII address without SMTPUTF8.
            return self.send(codes::NEEDS_SMTPUTF8);
        }
        let targets = match dir.resolve(&to) {
            RcptResolution::Accept { targets, internal } => {
                if internal && !self.is_inside(&dir) {
                    let detail = format!("<{to}> is internal");
                    return self.reject(
                        "internal_address",
                        codes::RECIPIENT_ACCESS_DENIED,
                        &detail,
                    );
                }
                targets
            }
            RcptResolution::Unknown => match self.srs_bounce_path(&dir, &to) {
                Some(targets) => targets,
                None => {
                    let detail = format!("<{to}>");
                    return self.reject("unknown_recipient", codes::USER_UNKNOWN, &detail);
                }
            },
            RcptResolution::Foreign => {
                if !self.may_relay(&dir) {
                    let detail = format!("<{to}> from unauthenticated client");
                    return self.reject("relay_denied", codes::RELAY_DENIED, &detail);
                }
                vec![Target::Remote(to.to_string())]
            }
        };
        if let Some(tx) = self.tx.as_mut() {
            tx.rcpts.push(AcceptedRcpt {
                address: to,
                targets,
            });
        }
        self.send(codes::RECIPIENT_OK);
    }
}
