//! The queue actor (one per process, on worker 0): retries deliveries that could not complete
//! at once, recovers after a crash, and keeps the queue gauges current.
//!
//! Recovery relies on deterministic Maildir names: a delivery recorded as deferred whose file
//! already exists in `new/` or `cur/` was completed just before a crash and is not repeated.

use crate::delivery::{DeliverLocal, DeliveryActor};
use crate::server::Shared;
use crate::usage::mailbox_path;
use actix::{Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, WrapFuture};
use postcore_storage::maildir;
use postcore_storage::queue::{QueueRecord, QueuedTarget, RcptStatus, now_secs};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// The queue manager.
pub struct QueueActor {
    shared: Arc<Shared>,
    delivery: Addr<DeliveryActor>,
    busy: bool,
    again: bool,
    first_run: bool,
}

/// Look at the queue now.
pub struct Kick;

impl Message for Kick {
    type Result = ();
}

impl QueueActor {
    /// A queue actor that delivers through `delivery`.
    pub fn new(shared: Arc<Shared>, delivery: Addr<DeliveryActor>) -> Self {
        QueueActor {
            shared,
            delivery,
            busy: false,
            again: false,
            first_run: true,
        }
    }

    fn tick(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            self.again = true;
            return;
        }
        self.busy = true;
        let all = std::mem::replace(&mut self.first_run, false);
        let fut = run_queue(self.shared.clone(), self.delivery.clone(), all);
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                tracing::error!("queue run failed: {e:#}");
            }
            act.busy = false;
            if std::mem::replace(&mut act.again, false) {
                act.tick(ctx);
            }
        }));
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        remove_orphans(&self.shared);
        let every = Duration::from_secs(self.shared.config.queue.scan_interval_secs.max(1));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
        let addr = ctx.address();
        let shared = self.shared.clone();
        tokio::task::spawn_local(async move {
            loop {
                shared.queue_kick.notified().await;
                if addr.try_send(Kick).is_err() && !addr.connected() {
                    break;
                }
            }
        });
        self.tick(ctx);
    }
}

impl Handler<Kick> for QueueActor {
    type Result = ();
    fn handle(&mut self, _: Kick, ctx: &mut Context<Self>) {
        self.tick(ctx);
    }
}

/// Spool files that no queue record refers to were never acknowledged: remove them.
fn remove_orphans(shared: &Shared) {
    let records = match QueueRecord::load_all(&shared.store) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read queue: {e:#}");
            return;
        }
    };
    let known: HashSet<&str> = records.iter().map(|r| r.qid.as_str()).collect();
    for name in shared.spool.list().unwrap_or_default() {
        if !known.contains(name.as_str()) {
            tracing::info!(file = %name, "removing unreferenced spool file (never acknowledged)");
            let _ = shared.spool.remove(&name);
        }
    }
    tracing::info!(messages = records.len(), "queue loaded");
}

fn backoff(cfg: &crate::config::QueueConfig, attempts: u32) -> u64 {
    let f = 1u64 << attempts.saturating_sub(1).min(16);
    cfg.retry_min_secs
        .saturating_mul(f)
        .min(cfg.retry_max_secs)
        .max(1)
}

async fn run_queue(
    shared: Arc<Shared>,
    delivery: Addr<DeliveryActor>,
    all: bool,
) -> anyhow::Result<()> {
    let records = QueueRecord::load_all(&shared.store)?;
    let now = now_secs();
    let (mut n, mut bytes) = (0u64, 0u64);
    for mut rec in records {
        if !all && rec.next_attempt > now {
            n += 1;
            bytes += rec.size;
            continue;
        }
        process(&shared, &delivery, &mut rec, now).await;
        if rec.is_final() {
            shared
                .store
                .commit(vec![QueueRecord::delete_op(&rec.qid)])
                .await?;
            if rec.rcpts.iter().all(|r| r.status == RcptStatus::Delivered) {
                shared.spool.remove(&rec.qid)?;
                tracing::info!(qid = %rec.qid, "{}: removed", rec.qid);
            } else {
                // Failed deliveries keep their spool file for the bounce (DSN) machinery.
                tracing::warn!(qid = %rec.qid, "{}: final with failures, spool file kept", rec.qid);
            }
        } else {
            n += 1;
            bytes += rec.size;
            shared.store.commit(vec![rec.put_op()?]).await?;
        }
    }
    metrics::gauge!(crate::metrics::QUEUE_LENGTH).set(n as f64);
    metrics::gauge!(crate::metrics::QUEUE_BYTES).set(bytes as f64);
    Ok(())
}

async fn process(
    shared: &Arc<Shared>,
    delivery: &Addr<DeliveryActor>,
    rec: &mut QueueRecord,
    now: u64,
) {
    let dir = shared.directory.snapshot();
    let qid = rec.qid.clone();
    let expired = now.saturating_sub(rec.arrival) > dir.settings.queue_lifetime_secs;
    let mut data = None;
    for r in rec
        .rcpts
        .iter_mut()
        .filter(|r| r.status == RcptStatus::Deferred)
    {
        match &r.target {
            QueuedTarget::Local { mailbox, file } => {
                let root = mailbox_path(&shared.mail_root, mailbox);
                if maildir::delivered(&root, file) {
                    tracing::info!(
                        qid,
                        "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, dsn=2.0.0, status=sent (found delivered during recovery)",
                        r.orig_to
                    );
                    r.status = RcptStatus::Delivered;
                    continue;
                }
                if expired {
                    r.status = RcptStatus::Failed;
                    r.last_error = Some("5.4.7 message queue lifetime expired".into());
                    tracing::warn!(
                        qid,
                        "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, dsn=5.4.7, status=expired ({})",
                        r.orig_to,
                        r.last_error.as_deref().unwrap_or("")
                    );
                    continue;
                }
                if data.is_none() {
                    match shared.spool.read(&qid) {
                        Ok(d) => data = Some(d),
                        Err(e) => {
                            tracing::error!(qid, "{qid}: spool file unreadable: {e}");
                            return;
                        }
                    }
                }
                let Some(d) = data.clone() else { return };
                if shared
                    .usage
                    .would_exceed(mailbox, d.len() as u64, dir.quota_bytes(mailbox))
                {
                    r.last_error = Some("4.2.2 mailbox over quota".into());
                    tracing::info!(
                        qid,
                        "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, dsn=4.2.2, status=deferred (mailbox over quota)",
                        r.orig_to
                    );
                    continue;
                }
                let res = delivery
                    .send(DeliverLocal {
                        mailbox: mailbox.clone(),
                        file: file.clone(),
                        data: d,
                    })
                    .await;
                match res.map_err(|e| e.to_string()).and_then(|x| x) {
                    Ok(_) => {
                        let delay = now.saturating_sub(rec.arrival);
                        tracing::info!(
                            qid,
                            "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, delay={delay}, dsn=2.0.0, status=sent (delivered to maildir)",
                            r.orig_to
                        );
                        metrics::counter!(crate::metrics::DELIVERIES, "kind" => "local", "status" => "sent").increment(1);
                        metrics::histogram!(crate::metrics::DELIVERY_SECONDS).record(delay as f64);
                        r.status = RcptStatus::Delivered;
                        r.last_error = None;
                    }
                    Err(e) => {
                        tracing::warn!(
                            qid,
                            "{qid}: to=<{mailbox}>, relay=local, dsn=4.3.0, status=deferred ({e})"
                        );
                        r.last_error = Some(format!("4.3.0 {e}"));
                    }
                }
            }
            // Outbound SMTP comes with its own actor; until then remote mail waits here.
            QueuedTarget::Remote { .. } => {}
        }
    }
    rec.attempts += 1;
    rec.next_attempt = now + backoff(&shared.config.queue, rec.attempts);
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = crate::config::QueueConfig {
            retry_min_secs: 60,
            retry_max_secs: 600,
            scan_interval_secs: 1,
        };
        let v: Vec<u64> = (1..7).map(|a| super::backoff(&cfg, a)).collect();
        assert_eq!(v, vec![60, 120, 240, 480, 600, 600]);
    }
}
