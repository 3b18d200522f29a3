//! Delivery status notifications (RFC 3464): bounces for failed recipients, the optional
//! delay warning, and expiry at the end of the queue lifetime (RFC 3463 4.4.7).

use super::state::{NewFailure, Runner};
use crate::delivery::{Delivery, IncomingMessage};
use crate::outbound::dsn::{Action, Report};
use crate::outbound::{self};
use bytes::Bytes;
use postcore_protocol::smtp::Address;
use postcore_storage::directory::{RcptResolution, Target};
use postcore_storage::queue::{
    Failure, QueueRecord, QueuedRcpt, QueuedTarget, RcptStatus, new_qid, now_secs,
};

/// The delay warning (RFC 3464 Action: delayed) for `rec`, once per message, if it is due:
/// the recipients still waiting, each with its last status.
pub(super) fn delay_warning(
    dir: &postcore_storage::directory::Directory,
    rec: &QueueRecord,
    now: u64,
) -> Vec<NewFailure> {
    let due = dir
        .settings
        .delay_warning_secs
        .is_some_and(|after| now.saturating_sub(rec.arrival) >= after);
    if !due || rec.warned || rec.from.is_empty() {
        return Vec::new();
    }
    rec.rcpts
        .iter()
        .enumerate()
        .filter(|(_, r)| r.status == RcptStatus::Deferred)
        .map(|(i, r)| NewFailure {
            record: 0,
            rcpt: i,
            failure: r
                .last_error
                .clone()
                .unwrap_or_else(|| Failure::new("4.0.0", "not yet delivered")),
            remote_mta: None,
        })
        .collect()
}

/// Sends the delivery status notification for `failed` recipients of `rec` to its sender.
/// RFC 5321 §6.1 / RFC 3464: never for the null sender.
pub(super) async fn send_bounce(
    run: &Runner,
    rec: &QueueRecord,
    failed: &[NewFailure],
    action: Action,
) {
    let shared = &run.shared;
    if rec.from.is_empty() {
        tracing::info!(qid = %rec.qid, "{}: no bounce for the null sender", rec.qid);
        return;
    }
    let original = shared.spool.read(&rec.qid).unwrap_or_default();
    let list: Vec<outbound::dsn::FailedRcpt<'_>> = failed
        .iter()
        .map(|f| {
            let r = &rec.rcpts[f.rcpt];
            let rcpt = match &r.target {
                QueuedTarget::Remote { address } => address.as_str(),
                QueuedTarget::Local { .. } => r.orig_to.as_str(),
            };
            outbound::dsn::FailedRcpt {
                rcpt,
                orig: &r.orig_to,
                status: &f.failure.dsn,
                diagnostic: &f.failure.reason,
                remote_mta: f.remote_mta.as_deref(),
            }
        })
        .collect();
    let now = now_secs();
    let host = &shared.config.hostname;
    let report = Report {
        action,
        hostname: host,
        qid: &rec.qid,
        sender: &rec.from,
        arrival: rec.arrival,
        now,
        rcpts: &list,
    };
    let data = outbound::dsn::build_report(&report, &original);
    let dir = shared.directory.snapshot();
    let targets = match Address::parse(&rec.from, true).map(|a| dir.resolve(&a)) {
        Ok(RcptResolution::Accept { targets, .. }) => targets,
        Ok(RcptResolution::Foreign) => vec![Target::Remote(rec.from.clone())],
        _ => {
            tracing::warn!(qid = %rec.qid, "{}: sender <{}> unknown, bounce discarded", rec.qid, rec.from);
            return;
        }
    };
    let qid = new_qid(0);
    let deliveries = targets
        .into_iter()
        .map(|t| Delivery::plain(t, rec.from.clone()))
        .collect();
    tracing::info!(
        qid,
        "{qid}: sender non-delivery notification for {} (to <{}>)",
        rec.qid,
        rec.from
    );
    let msg = IncomingMessage {
        qid,
        from: String::new(),
        message_id: None,
        data: Bytes::from(data),
        arrival: now,
        deliveries,
        scan: None,
        extra_ops: Vec::new(),
    };
    if let Err(e) = crate::sieve_stage::accept_generated(shared, &run.delivery, msg).await {
        tracing::error!(qid = %rec.qid, "{}: bounce not queued: {e:#}", rec.qid);
    }
}

/// Marks a waiting delivery failed because the message queue lifetime is over (RFC 3463
/// 4.4.7); the bounce goes out with the others of this run.
pub(super) fn expire(
    qid: &str,
    r: &mut QueuedRcpt,
    to: &str,
    ri: usize,
    i: usize,
    failures: &mut Vec<NewFailure>,
) {
    let last = r
        .last_error
        .as_ref()
        .map(|f| f.reason.clone())
        .unwrap_or_default();
    let failure = Failure::new(
        "4.4.7",
        format!("message queue lifetime expired; last error: {last}"),
    );
    r.status = RcptStatus::Failed;
    r.last_error = Some(failure.clone());
    tracing::warn!(
        qid,
        status = "expired",
        "{qid}: to=<{to}>, orig_to=<{}>, dsn=4.4.7, status=expired ({last})",
        r.orig_to
    );
    failures.push(NewFailure {
        record: ri,
        rcpt: i,
        failure,
        remote_mta: None,
    });
}
