//! The queue actor (one per process, on worker 0): retries deliveries that could not complete
//! at once, recovers after a crash, and keeps the queue gauges current.
//!
//! Recovery relies on deterministic Maildir names: a delivery recorded as deferred whose file
//! already exists in `new/` or `cur/` was completed just before a crash and is not repeated.

use crate::context::Shared;
use crate::delivery::{Delivery, IncomingMessage, accept_message};
use crate::messages::{Delete, DeliverLocal, Enqueued, Resend};
use crate::outbound::dsn::{Action, Report};
use crate::outbound::{
    self, Job, Outbound, Outcome,
    route::{self, Route},
};
use crate::usage::mailbox_path;
use actix::{
    Actor, ActorFutureExt, AsyncContext, Context, Handler, Recipient, ResponseFuture, WrapFuture,
};
use bytes::Bytes;
use postcore_protocol::smtp::Address;
use postcore_scanner::Flag;
use postcore_storage::directory::{RcptResolution, Target};
use postcore_storage::maildir;
use postcore_storage::queue::{
    Failure, QueueRecord, QueuedRcpt, QueuedTarget, RcptStatus, new_qid, now_secs,
};
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
    outbound: Option<Rc<Outbound>>,
    in_flight: InFlightMap,
    control: Rc<RefCell<Control>>,
    deletions: Rc<Cell<u64>>,
    busy: bool,
    again: bool,
    first_run: bool,
}

/// What the administrator asked for since the last queue run (the actor's own state, changed
/// only by its message handlers and read by its runs on the same thread).
#[derive(Default)]
struct Control {
    /// Retry every queued message now.
    resend_all: bool,
    /// Retry these messages now.
    resend: HashSet<String>,
    /// Removed by the administrator while a delivery was running: never write these back.
    deleted: HashSet<String>,
}

impl QueueActor {
    /// A queue actor that delivers through `delivery`.
    pub fn new(shared: Arc<Shared>, delivery: Recipient<DeliverLocal>) -> Self {
        let outbound = match Outbound::new(&shared.config) {
            Ok(o) => Some(Rc::new(o)),
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

/// Takes one removed record off the queue gauges (they move with every durable change:
/// up in the commit that queues a message, down in the one that removes it).
fn gauges_removed(size: u64) {
    metrics::gauge!(crate::metrics::QUEUE_LENGTH).decrement(1.0);
    metrics::gauge!(crate::metrics::QUEUE_BYTES).decrement(size as f64);
}

/// What a queue run works with.
#[derive(Clone)]
struct Runner {
    shared: Arc<Shared>,
    delivery: Recipient<DeliverLocal>,
    control: Rc<RefCell<Control>>,
    deletions: Rc<Cell<u64>>,
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

fn backoff(cfg: &crate::config::QueueConfig, attempts: u32) -> u64 {
    let f = 1u64 << attempts.saturating_sub(1).min(16);
    cfg.retry_min_secs
        .saturating_mul(f)
        .min(cfg.retry_max_secs)
        .max(1)
}

/// A recipient that failed for good in this run, for the bounce.
#[derive(Clone)]
struct NewFailure {
    /// Index of the record in the run (0 once the record is in flight on its own).
    record: usize,
    /// Index of the recipient in the record.
    rcpt: usize,
    /// Status and reason.
    failure: Failure,
    /// The remote server that refused it, if one did.
    remote_mta: Option<String>,
}

/// A record whose remote deliveries are running: the routes still out, and the failures
/// gathered so far. Only the last route to finish writes the record, so concurrent routes
/// never overwrite each other's results.
struct InFlight {
    rec: QueueRecord,
    pending: usize,
    failures: Vec<NewFailure>,
}

/// Records with remote deliveries in progress, by QID (worker 0 only).
type InFlightMap = Rc<RefCell<HashMap<String, InFlight>>>;

fn deferred_count(rec: &QueueRecord) -> usize {
    rec.rcpts
        .iter()
        .filter(|r| r.status == RcptStatus::Deferred)
        .count()
}

async fn run_queue(
    run: Runner,
    outbound: Option<Rc<Outbound>>,
    in_flight: InFlightMap,
    all: bool,
) -> anyhow::Result<()> {
    let records = QueueRecord::load_all(&run.shared.store)?;
    let now = now_secs();
    let (resend_all, resend) = {
        let mut c = run.control.borrow_mut();
        (
            std::mem::take(&mut c.resend_all),
            std::mem::take(&mut c.resend),
        )
    };
    let mut due: Vec<QueueRecord> = records
        .into_iter()
        .filter(|r| !in_flight.borrow().contains_key(&r.qid))
        .filter(|r| all || resend_all || resend.contains(&r.qid) || r.next_attempt <= now)
        .collect();
    let dir = run.shared.directory.snapshot();
    let mut failures: Vec<NewFailure> = Vec::new();
    let mut local_done = Vec::new();
    for (ri, rec) in due.iter_mut().enumerate() {
        let before = deferred_count(rec);
        process_local(&run, rec, now, ri, &mut failures).await;
        if deferred_count(rec) != before {
            local_done.push(rec.put_op()?);
        }
    }
    // Local results are durable before remote attempts start.
    if !local_done.is_empty() {
        run.shared.store.commit(local_done).await?;
    }
    // Remote recipients, grouped by route so one connection carries several messages.
    let (by_route, routes_of) =
        group_by_route(&run, &dir, &mut due, now, outbound.is_some(), &mut failures);
    // Records without remote work are finished now; the others wait for their routes.
    let mut finish_now = Vec::new();
    for (ri, rec) in due.into_iter().enumerate() {
        let mine: Vec<NewFailure> = failures
            .iter()
            .filter(|f| f.record == ri)
            .cloned()
            .collect();
        if routes_of[ri] == 0 {
            finish_now.push((rec, mine));
        } else {
            in_flight.borrow_mut().insert(
                rec.qid.clone(),
                InFlight {
                    rec,
                    pending: routes_of[ri],
                    failures: mine,
                },
            );
        }
    }
    finalize(&run, finish_now, now).await?;
    let Some(ob) = outbound else { return Ok(()) };
    ob.close_idle();
    let helo = dir
        .settings
        .outbound
        .helo_name
        .clone()
        .unwrap_or_else(|| run.shared.config.hostname.clone());
    for (route, jobs) in by_route {
        let (ob, helo, run, in_flight) = (ob.clone(), helo.clone(), run.clone(), in_flight.clone());
        // Each destination runs on its own: a slow or dead one holds back nobody else.
        tokio::task::spawn_local(async move {
            let qids: Vec<String> = jobs.iter().map(|j| j.qid.clone()).collect();
            let results = ob.deliver(&route, &helo, jobs).await;
            let done = record_outcomes(&in_flight, &qids, results, &route);
            let finished: Vec<String> = done.iter().map(|(r, _)| r.qid.clone()).collect();
            if let Err(e) = finalize(&run, done, now_secs()).await {
                tracing::error!("queue update after delivery to {route} failed: {e:#}");
            }
            let mut map = in_flight.borrow_mut();
            for q in finished {
                map.remove(&q);
            }
        });
    }
    Ok(())
}

/// The remote recipients of `due` that are waiting, grouped by route (one connection carries
/// several messages); expired ones are failed into `failures`. Returns the jobs per route and,
/// per record, how many routes it waits for.
fn group_by_route(
    run: &Runner,
    dir: &postcore_storage::directory::Directory,
    due: &mut [QueueRecord],
    now: u64,
    outbound: bool,
    failures: &mut Vec<NewFailure>,
) -> (HashMap<Route, Vec<Job>>, Vec<usize>) {
    let mut by_route: HashMap<Route, Vec<Job>> = HashMap::new();
    let mut routes_of: Vec<usize> = vec![0; due.len()];
    let expired_after = dir.settings.queue_lifetime_secs;
    for (ri, rec) in due.iter_mut().enumerate() {
        let expired = now.saturating_sub(rec.arrival) > expired_after;
        let mut per_route: HashMap<Route, Vec<(usize, String)>> = HashMap::new();
        for (i, r) in rec.rcpts.iter_mut().enumerate() {
            let QueuedTarget::Remote { address } = &r.target else {
                continue;
            };
            if r.status != RcptStatus::Deferred {
                continue;
            }
            if expired {
                let to = address.clone();
                expire(&rec.qid, r, &to, ri, i, failures);
                continue;
            }
            let route = route::route_for(dir, &rec.from, address);
            per_route
                .entry(route)
                .or_default()
                .push((i, address.clone()));
        }
        if per_route.is_empty() || !outbound {
            if !per_route.is_empty() {
                tracing::warn!(
                    "outbound delivery unavailable (no DNS resolver); remote mail stays queued"
                );
            }
            continue;
        }
        let data = match run.shared.spool.read(&rec.qid) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(qid = %rec.qid, "{}: message body unreadable: {e}", rec.qid);
                continue;
            }
        };
        routes_of[ri] = per_route.len();
        for (route, rcpts) in per_route {
            let job = Job {
                qid: rec.qid.clone(),
                from: rec.from.clone(),
                rcpts,
                data: data.clone(),
                arrival: rec.arrival,
            };
            by_route.entry(route).or_default().push(job);
        }
    }
    (by_route, routes_of)
}

/// Writes one route's per-recipient outcomes into the in-flight records; returns the records
/// whose last route this was, ready to be finalized. They stay in the map until written, so
/// no queue run picks them up again in between.
fn record_outcomes(
    in_flight: &InFlightMap,
    qids: &[String],
    results: Vec<(usize, usize, Outcome)>,
    route: &Route,
) -> Vec<(QueueRecord, Vec<NewFailure>)> {
    let mut map = in_flight.borrow_mut();
    for (j, i, o) in results {
        let Some(f) = map.get_mut(&qids[j]) else {
            continue;
        };
        let r = &mut f.rec.rcpts[i];
        match o {
            Outcome::Sent(_) => {
                r.status = RcptStatus::Delivered;
                r.last_error = None;
            }
            Outcome::Deferred(e) => r.last_error = Some(e),
            Outcome::Failed(e) => {
                r.status = RcptStatus::Failed;
                r.last_error = Some(e.clone());
                f.failures.push(NewFailure {
                    record: 0,
                    rcpt: i,
                    failure: e,
                    remote_mta: Some(route.to_string()),
                });
            }
        }
    }
    let mut done = Vec::new();
    let mut seen = HashSet::new();
    for q in qids.iter().filter(|q| seen.insert(q.as_str())) {
        if let Some(f) = map.get_mut(q) {
            f.pending -= 1;
            if f.pending == 0 {
                done.push((f.rec.clone(), std::mem::take(&mut f.failures)));
            }
        }
    }
    done
}

/// The delay warning (RFC 3464 Action: delayed) for `rec`, once per message, if it is due:
/// the recipients still waiting, each with its last status.
fn delay_warning(
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

/// Ends an attempt on `recs`: bounces and delay warnings, back-off, then one durable write
/// that updates or removes every record; spool files go only after it.
async fn finalize(
    run: &Runner,
    recs: Vec<(QueueRecord, Vec<NewFailure>)>,
    now: u64,
) -> anyhow::Result<()> {
    if recs.is_empty() {
        return Ok(());
    }
    let shared = &run.shared;
    let dir = shared.directory.snapshot();
    let mut ops = Vec::new();
    let mut finished = Vec::new();
    for (mut rec, failures) in recs {
        if !failures.is_empty() {
            send_bounce(run, &rec, &failures, Action::Failed).await;
        }
        let waiting = delay_warning(&dir, &rec, now);
        if !waiting.is_empty() {
            send_bounce(run, &rec, &waiting, Action::Delayed).await;
            rec.warned = true;
        }
        if run.control.borrow_mut().deleted.remove(&rec.qid) {
            // Removed by the administrator meanwhile (record, body and gauges already).
            shared.spool.remove(&rec.qid)?;
            continue;
        }
        rec.attempts += 1;
        rec.next_attempt = now + backoff(&shared.config.queue, rec.attempts);
        if rec.is_final() {
            ops.push(QueueRecord::delete_op(&rec.qid));
            ops.push(Spool::delete_op(&rec.qid));
            finished.push((rec.qid, rec.size));
        } else {
            ops.push(rec.put_op()?);
        }
    }
    if !ops.is_empty() {
        shared.store.commit(ops).await?;
    }
    let removed = finished.len() as u64;
    for (qid, size) in finished {
        shared.spool.remove_file(&qid)?;
        gauges_removed(size);
        tracing::info!(qid = %qid, "{qid}: removed");
    }
    // Deleted records leave tombstones that every queue scan has to step over: compact once
    // enough have piled up.
    let before = run.deletions.get();
    run.deletions.set(before + removed);
    if before / COMPACT_EVERY != (before + removed) / COMPACT_EVERY {
        shared
            .store
            .compact_in_background(postcore_storage::CF_QUEUE);
        shared
            .store
            .compact_in_background(postcore_storage::CF_SPOOL);
    }
    Ok(())
}

/// Queue records removed between two compactions of the queue column families.
const COMPACT_EVERY: u64 = 2000;

/// Sends the delivery status notification for `failed` recipients of `rec` to its sender.
/// RFC 5321 §6.1 / RFC 3464: never for the null sender.
async fn send_bounce(run: &Runner, rec: &QueueRecord, failed: &[NewFailure], action: Action) {
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
    };
    if let Err(e) = accept_message(shared, &run.delivery, msg, std::time::Instant::now()).await {
        tracing::error!(qid = %rec.qid, "{}: bounce not queued: {e:#}", rec.qid);
    }
}

/// Marks a waiting delivery failed because the message queue lifetime is over (RFC 3463
/// 4.4.7); the bounce goes out with the others of this run.
fn expire(
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

/// Flags stored in a queued local delivery (Maildir letters) as the delivery actor takes them.
fn flags_of(letters: &str) -> Vec<Flag> {
    letters
        .chars()
        .filter_map(|c| {
            [
                Flag::Draft,
                Flag::Flagged,
                Flag::Answered,
                Flag::Seen,
                Flag::Deleted,
            ]
            .into_iter()
            .find(|f| f.maildir_letter() == c)
        })
        .collect()
}

async fn process_local(
    run: &Runner,
    rec: &mut QueueRecord,
    now: u64,
    ri: usize,
    failures: &mut Vec<NewFailure>,
) {
    let shared = &run.shared;
    let dir = shared.directory.snapshot();
    let qid = rec.qid.clone();
    let expired = now.saturating_sub(rec.arrival) > dir.settings.queue_lifetime_secs;
    let mut data = None;
    for (i, r) in rec
        .rcpts
        .iter_mut()
        .enumerate()
        .filter(|(_, r)| r.status == RcptStatus::Deferred)
    {
        let QueuedTarget::Local {
            mailbox,
            file,
            folder,
            flags,
        } = &r.target
        else {
            continue;
        };
        let root = mailbox_path(&shared.mail_root, mailbox);
        let folder_dir =
            postcore_storage::mailbox::folder_path(&root, folder.as_deref().unwrap_or("INBOX"));
        if maildir::delivered(&folder_dir, file) {
            tracing::info!(
                qid,
                status = "sent",
                "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, dsn=2.0.0, status=sent (found delivered during recovery)",
                r.orig_to
            );
            r.status = RcptStatus::Delivered;
            continue;
        }
        if expired {
            expire(&qid, r, &mailbox.to_string(), ri, i, failures);
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
            r.last_error = Some(Failure::new("4.2.2", "mailbox over quota"));
            tracing::info!(
                qid,
                status = "deferred",
                "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, dsn=4.2.2, status=deferred (mailbox over quota)",
                r.orig_to
            );
            continue;
        }
        let res = run
            .delivery
            .send(DeliverLocal {
                mailbox: mailbox.clone(),
                folder: folder.clone(),
                flags: flags_of(flags),
                file: file.clone(),
                data: d,
            })
            .await;
        match res.map_err(|e| e.to_string()).and_then(|x| x) {
            Ok(_) => {
                let delay = now.saturating_sub(rec.arrival);
                tracing::info!(
                    qid,
                    status = "sent",
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
                    status = "deferred",
                    "{qid}: to=<{mailbox}>, orig_to=<{}>, relay=local, dsn=4.3.0, status=deferred ({e})",
                    r.orig_to
                );
                r.last_error = Some(Failure::new("4.3.0", e));
            }
        }
    }
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

    #[test]
    fn queued_flag_letters_come_back_as_flags() {
        use postcore_scanner::Flag;
        assert_eq!(super::flags_of("FS"), vec![Flag::Flagged, Flag::Seen]);
        assert_eq!(super::flags_of(""), Vec::<Flag>::new());
    }
}
