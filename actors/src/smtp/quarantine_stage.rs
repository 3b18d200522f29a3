//! End of DATA, quarantine mode ([`crate::quarantine`]): the held copies are sealed with
//! their envelope before they are stored, and once the message is durable the postmaster
//! gets a notice when that is enabled.

use super::session::{Session, Transaction};
use crate::delivery::{Delivery, IncomingMessage};
use crate::pipeline::{self, EnvelopeRcpt};
use crate::quarantine::{self, NoticeFacts, Stamp};
use bytes::Bytes;
use postcore_scanner::{Disposition, Verdict};
use postcore_storage::directory::Target;
use postcore_storage::queue::{new_qid, now_secs};

impl Session {
    /// Seals the copies a quarantine-mode verdict redirected to the quarantine mailbox;
    /// the stamp when there were any.
    pub(super) fn seal_quarantined(
        &self,
        qid: &str,
        tx: &Transaction,
        verdict: &Verdict,
        rcpts: &[EnvelopeRcpt],
        data: &[u8],
        deliveries: &mut [Delivery],
    ) -> Option<Stamp> {
        let to = tx.dir.settings.filter.spam.quarantine_to.as_deref()?;
        let held = held_rcpts(verdict, rcpts, to);
        if held.is_empty() {
            return None;
        }
        let targets = pipeline::resolve_redirect(&tx.dir, to).unwrap_or_default();
        let stamp = Stamp {
            qid: qid.to_string(),
            from: tx.from.as_ref().map(|a| a.to_string()).unwrap_or_default(),
            rcpts: held,
            score: verdict.score,
        };
        let field = self.ctx.shared.quarantine_key.field(&stamp);
        let n = seal(&field, data, &stamp.rcpts, &targets, deliveries);
        tracing::info!(
            qid,
            "{qid}: quarantine: {} recipient(s) held in <{to}> ({n} cop{} sealed), score {:.2}",
            stamp.rcpts.len(),
            if n == 1 { "y" } else { "ies" },
            stamp.score
        );
        Some(stamp)
    }

    /// Queues the postmaster's notice about a quarantined message (when enabled).
    pub(super) async fn notify_quarantined(
        &self,
        tx: &Transaction,
        stamp: &Stamp,
        verdict: &Verdict,
        data: &[u8],
    ) {
        let spam = &tx.dir.settings.filter.spam;
        if !spam.quarantine_notice {
            return;
        }
        let qid = &stamp.qid;
        let to = match spam.quarantine_notice_to.contains('@') {
            true => spam.quarantine_notice_to.clone(),
            false => match tx.dir.primary_domain() {
                Some(d) => format!("{}@{d}", spam.quarantine_notice_to),
                None => return,
            },
        };
        let Some(targets) = pipeline::resolve_redirect(&tx.dir, &to) else {
            tracing::warn!(
                qid,
                "{qid}: quarantine notice: <{to}> does not exist, not sent"
            );
            return;
        };
        let head = postcore_protocol::sieve::mail::Mail::new(data);
        let field = |n: &str| head.named(n).next().map(|f| f.value());
        let (subject, mid) = (field("subject"), field("message-id"));
        let facts = NoticeFacts {
            host: &self.ctx.shared.config.hostname,
            to: &to,
            stamp,
            subject: subject.as_deref(),
            message_id: mid.as_deref(),
            symbols: &verdict.symbols_text(),
            deny: spam.deny_score.unwrap_or(0.0),
            mailbox: spam.quarantine_to.as_deref().unwrap_or_default(),
            now: now_secs(),
        };
        let body = match quarantine::notice(&facts) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(qid, "{qid}: quarantine notice: {e:#}");
                return;
            }
        };
        let notice_qid = new_qid(self.ctx.id);
        let msg = IncomingMessage {
            qid: notice_qid.clone(),
            from: String::new(),
            message_id: None,
            data: Bytes::from(body),
            arrival: now_secs(),
            deliveries: targets
                .into_iter()
                .map(|t| Delivery::plain(t, to.clone()))
                .collect(),
            scan: None,
            extra_ops: Vec::new(),
        };
        let shared = &self.ctx.shared;
        match crate::sieve_stage::accept_generated(shared, &self.ctx.delivery, msg).await {
            Ok(()) => tracing::info!(
                qid,
                "{qid}: quarantine notice to <{to}> queued as {notice_qid}"
            ),
            Err(e) => tracing::error!(qid, "{qid}: quarantine notice not queued: {e:#}"),
        }
    }
}

/// The RCPT TO addresses whose copies `verdict` sends to the quarantine address `to` (quarantine
/// mode redirects each held recipient's copy there).
fn held_rcpts(verdict: &Verdict, rcpts: &[EnvelopeRcpt], to: &str) -> Vec<String> {
    rcpts
        .iter()
        .enumerate()
        .filter(|(i, _)| {
            matches!(verdict.disposition(*i), Disposition::Redirect(v)
                if v.len() == 1 && v[0].eq_ignore_ascii_case(to))
        })
        .map(|(_, r)| r.address.clone())
        .collect()
}

/// Gives each copy in `deliveries` that goes to one of `targets` (the quarantine address's
/// mailboxes) on behalf of a held recipient its own content: the message with `field` on top.
/// Returns how many copies were sealed.
fn seal(
    field: &str,
    data: &[u8],
    held: &[String],
    targets: &[Target],
    deliveries: &mut [Delivery],
) -> usize {
    let mut n = 0;
    for d in deliveries.iter_mut() {
        if targets.contains(&d.target) && held.iter().any(|h| h.eq_ignore_ascii_case(&d.orig_to)) {
            let base = d.content.as_deref().unwrap_or(data);
            d.content = Some(bytes::Bytes::from(quarantine::stamped(base, field)));
            n += 1;
        }
    }
    n
}
