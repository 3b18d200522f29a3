//! One queue run: which records are due, local retries first, then remote recipients grouped
//! by route, and the durable write that ends each attempt (back-off, removal, compaction).

use super::bounce::{delay_warning, expire, send_bounce};
use super::local::process_local;
use super::state::{InFlight, InFlightMap, NewFailure, Runner, gauges_removed};
use crate::messages::{CloseIdle, OutboundAddrs, SendRoute};
use crate::outbound::dsn::Action;
use crate::outbound::{
    Job, Outcome,
    route::{self, Route},
};
use postcore_storage::queue::{Failure, QueueRecord, QueuedTarget, RcptStatus, now_secs};
use postcore_storage::spool::Spool;
use std::collections::{HashMap, HashSet};

pub(super) fn backoff(cfg: &crate::config::QueueConfig, attempts: u32) -> u64 {
    let f = 1u64 << attempts.saturating_sub(1).min(16);
    cfg.retry_min_secs
        .saturating_mul(f)
        .min(cfg.retry_max_secs)
        .max(1)
}

pub(super) fn deferred_count(rec: &QueueRecord) -> usize {
    rec.rcpts
        .iter()
        .filter(|r| r.status == RcptStatus::Deferred)
        .count()
}

pub(super) async fn run_queue(
    run: Runner,
    outbound: Option<OutboundAddrs>,
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
    ob.close_idle.do_send(CloseIdle);
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
            let rcpts: Vec<(usize, usize)> = jobs
                .iter()
                .enumerate()
                .flat_map(|(j, job)| job.rcpts.iter().map(move |(i, _)| (j, *i)))
                .collect();
            let results = match ob
                .send
                .send(SendRoute {
                    route: route.clone(),
                    helo,
                    jobs,
                })
                .await
            {
                Ok(r) => r,
                // The outbound actor is gone (shutting down): every recipient stays queued.
                Err(e) => rcpts
                    .into_iter()
                    .map(|(j, i)| {
                        let f =
                            Failure::new("4.3.0", format!("outbound delivery unavailable: {e}"));
                        (j, i, Outcome::Deferred(f))
                    })
                    .collect(),
            };
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
pub(super) fn group_by_route(
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
pub(super) fn record_outcomes(
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

/// Ends an attempt on `recs`: bounces and delay warnings, back-off, then one durable write
/// that updates or removes every record; spool files go only after it.
pub(super) async fn finalize(
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
    // Removing the record of a message delivered to every recipient needs no flush: if a
    // power cut loses the removal, the message is sent once more (SMTP delivers at least
    // once; Postfix, too, unlinks its queue file without a flush). Anything else is synced.
    let mut sync = false;
    for (mut rec, failures) in recs {
        sync |= !failures.is_empty() || !rec.is_final();
        if !failures.is_empty() {
            send_bounce(run, &rec, &failures, Action::Failed).await;
        }
        let waiting = delay_warning(&dir, &rec, now);
        sync |= !waiting.is_empty();
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
    if sync {
        shared.store.commit(ops).await?;
    } else if !ops.is_empty() {
        shared.store.write_relaxed(ops)?;
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
pub(super) const COMPACT_EVERY: u64 = 2000;
