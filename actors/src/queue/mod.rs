//! The queue actor (one per process, on worker 0): retries deliveries that could not complete
//! at once, recovers after a crash, and keeps the queue gauges current.
//!
//! Recovery relies on deterministic Maildir names: a delivery recorded as deferred whose file
//! already exists in `new/` or `cur/` was completed just before a crash and is not repeated.

mod bounce;
mod local;
mod run;
mod state;

use run::run_queue;
use state::{Control, InFlightMap, Runner, gauges_removed};

use crate::context::Shared;
use crate::messages::OutboundAddrs;
use crate::messages::{Delete, DeliverLocal, Enqueued, Inject, Resend};
use crate::outbound::Outbound;
use crate::outbound::actor::OutboundActor;
use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseFuture, WrapFuture,
};
use postcore_storage::queue::QueueRecord;
use postcore_storage::spool::Spool;
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// The queue manager.
pub struct QueueActor {
    shared: Arc<Shared>,
    delivery: Recipient<DeliverLocal>,
    outbound: Option<OutboundAddrs>,
    in_flight: InFlightMap,
    control: Rc<RefCell<Control>>,
    deletions: Rc<Cell<u64>>,
    busy: bool,
    again: bool,
    first_run: bool,
}

impl QueueActor {
    /// A queue actor that delivers through `delivery`, and through an outbound actor it
    /// starts beside itself (on the same core).
    pub fn new(shared: Arc<Shared>, delivery: Recipient<DeliverLocal>) -> Self {
        let outbound = match Outbound::new(&shared.config) {
            Ok(o) => {
                let addr = OutboundActor::new(o).start();
                Some(OutboundAddrs {
                    send: addr.clone().recipient(),
                    close_idle: addr.recipient(),
                })
            }
            Err(e) => {
                tracing::error!("outbound delivery disabled: {e:#}");
                None
            }
        };
        QueueActor {
            shared,
            delivery,
            outbound,
            in_flight: Rc::new(RefCell::new(HashMap::new())),
            control: Rc::default(),
            deletions: Rc::default(),
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
        let fut = run_queue(
            Runner {
                shared: self.shared.clone(),
                delivery: self.delivery.clone(),
                control: self.control.clone(),
                deletions: self.deletions.clone(),
            },
            self.outbound.clone(),
            self.in_flight.clone(),
            all,
        );
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            if let Err(e) = res {
                tracing::error!("queue run failed: {e:#}");
            }
            act.busy = false;
            if std::mem::replace(&mut act.again, false) {
                // Kicks arrive with every queued message: gather them for a moment so a busy
                // server does not re-read the whole queue once per message.
                ctx.run_later(Duration::from_millis(100), |act, ctx| act.tick(ctx));
            }
        }));
    }
}

impl Actor for QueueActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_secs(self.shared.config.queue.scan_interval_secs.max(1));
        ctx.run_interval(every, |act, ctx| act.tick(ctx));
        self.tick(ctx);
    }
}

impl Handler<Enqueued> for QueueActor {
    type Result = ();
    fn handle(&mut self, _: Enqueued, ctx: &mut Context<Self>) {
        self.tick(ctx);
    }
}

impl Handler<Resend> for QueueActor {
    type Result = bool;
    fn handle(&mut self, m: Resend, ctx: &mut Context<Self>) -> bool {
        let found = match &m.qid {
            None => true,
            Some(q) => {
                self.in_flight.borrow().contains_key(q)
                    || matches!(
                        self.shared
                            .store
                            .get(postcore_storage::CF_QUEUE, q.as_bytes()),
                        Ok(Some(_))
                    )
            }
        };
        if found {
            let mut c = self.control.borrow_mut();
            match m.qid {
                None => c.resend_all = true,
                Some(q) => {
                    c.resend.insert(q);
                }
            }
            drop(c);
            self.tick(ctx);
        }
        found
    }
}

impl Handler<Inject> for QueueActor {
    type Result = ResponseFuture<Result<(), String>>;

    fn handle(&mut self, m: Inject, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let delivery = self.delivery.clone();
        Box::pin(async move {
            let msg = crate::delivery::IncomingMessage {
                qid: m.qid,
                from: m.from,
                message_id: None,
                data: m.data,
                arrival: postcore_storage::queue::now_secs(),
                deliveries: m
                    .deliveries
                    .into_iter()
                    .map(|(t, orig)| crate::delivery::Delivery::plain(t, orig))
                    .collect(),
                scan: None,
                extra_ops: Vec::new(),
            };
            crate::sieve_stage::accept_generated(&shared, &delivery, msg)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }
}

impl Handler<Delete> for QueueActor {
    type Result = ResponseFuture<Result<usize, String>>;

    /// Removes records and bodies now; a message whose delivery is running is also marked so
    /// the run's result is not written back.
    fn handle(&mut self, m: Delete, _: &mut Context<Self>) -> Self::Result {
        let shared = self.shared.clone();
        let control = self.control.clone();
        Box::pin(async move {
            let recs = QueueRecord::load_all(&shared.store).map_err(|e| format!("{e:#}"))?;
            let chosen: Vec<QueueRecord> = recs
                .into_iter()
                .filter(|r| m.qid.as_ref().is_none_or(|q| &r.qid == q))
                .collect();
            let ops = chosen
                .iter()
                .map(|r| QueueRecord::delete_op(&r.qid))
                .collect();
            shared
                .store
                .commit(ops)
                .await
                .map_err(|e| format!("{e:#}"))?;
            for r in &chosen {
                control.borrow_mut().deleted.insert(r.qid.clone());
                if let Err(e) = shared.spool.remove(&r.qid) {
                    tracing::warn!(qid = %r.qid, "cannot remove spool file: {e:#}");
                }
                gauges_removed(r.size);
                tracing::info!(qid = %r.qid, "{}: removed by administrator", r.qid);
            }
            Ok(chosen.len())
        })
    }
}

/// Spool bodies that no queue record refers to were never acknowledged (the process stopped
/// between writing a large body's file and committing its record): removes them.
///
/// Must run before any listener accepts: a message being accepted has its body written
/// before (file) or with (database) its record, so a body seen here without a record may be
/// one that is about to be acknowledged. `server::run` calls it at start-up.
pub fn remove_orphans(store: &postcore_storage::store::Store, spool: &Spool) {
    let records = match QueueRecord::load_all(store) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot read queue: {e:#}");
            return;
        }
    };
    let known: HashSet<&str> = records.iter().map(|r| r.qid.as_str()).collect();
    for name in spool.list().unwrap_or_default() {
        if !known.contains(name.as_str()) {
            tracing::info!(file = %name, "removing unreferenced spool file (never acknowledged)");
            if let Err(e) = spool.remove(&name) {
                tracing::warn!(file = %name, "cannot remove unreferenced spool file: {e:#}");
            }
        }
    }
    tracing::info!(messages = records.len(), "queue loaded");
    // The gauges start from what the store holds; from here on every commit that adds or
    // removes a record moves them.
    metrics::gauge!(crate::metrics::QUEUE_LENGTH).set(records.len() as f64);
    metrics::gauge!(crate::metrics::QUEUE_BYTES)
        .set(records.iter().map(|r| r.size).sum::<u64>() as f64);
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
        let v: Vec<u64> = (1..7).map(|a| super::run::backoff(&cfg, a)).collect();
        assert_eq!(v, vec![60, 120, 240, 480, 600, 600]);
    }

    #[test]
    fn queued_flag_letters_come_back_as_flags() {
        use postcore_scanner::Flag;
        assert_eq!(
            super::local::flags_of("FS"),
            vec![Flag::Flagged, Flag::Seen]
        );
        assert_eq!(super::local::flags_of(""), Vec::<Flag>::new());
    }
}
