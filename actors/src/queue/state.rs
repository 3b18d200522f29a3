//! What the queue actor and its runs share: the administrator's pending requests, the
//! run's handles, failures gathered for bounces, and deliveries in flight.

use crate::context::Shared;
use crate::messages::DeliverLocal;
use actix::Recipient;
use postcore_storage::queue::{Failure, QueueRecord};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

/// What the administrator asked for since the last queue run (the actor's own state, changed
/// only by its message handlers and read by its runs on the same thread).
#[derive(Default)]
pub(super) struct Control {
    /// Retry every queued message now.
    pub(super) resend_all: bool,
    /// Retry these messages now.
    pub(super) resend: HashSet<String>,
    /// Removed by the administrator while a delivery was running: never write these back.
    pub(super) deleted: HashSet<String>,
}

/// Takes one removed record off the queue gauges (they move with every durable change:
/// up in the commit that queues a message, down in the one that removes it).
pub(super) fn gauges_removed(size: u64) {
    metrics::gauge!(crate::metrics::QUEUE_LENGTH).decrement(1.0);
    metrics::gauge!(crate::metrics::QUEUE_BYTES).decrement(size as f64);
}

/// What a queue run works with.
#[derive(Clone)]
pub(super) struct Runner {
    pub(super) shared: Arc<Shared>,
    pub(super) delivery: Recipient<DeliverLocal>,
    pub(super) control: Rc<RefCell<Control>>,
    pub(super) deletions: Rc<Cell<u64>>,
}

/// A recipient that failed for good in this run, for the bounce.
#[derive(Clone)]
pub(super) struct NewFailure {
    /// Index of the record in the run (0 once the record is in flight on its own).
    pub(super) record: usize,
    /// Index of the recipient in the record.
    pub(super) rcpt: usize,
    /// Status and reason.
    pub(super) failure: Failure,
    /// The remote server that refused it, if one did.
    pub(super) remote_mta: Option<String>,
}

/// A record whose remote deliveries are running: the routes still out, and the failures
/// gathered so far. Only the last route to finish writes the record, so concurrent routes
/// never overwrite each other's results.
pub(super) struct InFlight {
    pub(super) rec: QueueRecord,
    pub(super) pending: usize,
    pub(super) failures: Vec<NewFailure>,
}

/// Records with remote deliveries in progress, by QID (worker 0 only).
pub(super) type InFlightMap = Rc<RefCell<HashMap<String, InFlight>>>;
