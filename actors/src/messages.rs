//! The messages the actors exchange, and the handles that send them.
//!
//! ```text
//!   SMTP session ──Scan──▶ scanner pool (threads off the event loops) ──▶ Verdict
//!        │
//!        └─ end-of-data pipeline ──DeliverLocal──▶ DeliveryActor (per core) ──▶ Maildir + index
//!                     │
//!                     └──Enqueued──▶ QueueActor (one per process, on worker 0)
//!   admin API ──Resend / Delete / Inject──▶ QueueActor ──DeliverLocal──▶ DeliveryActor
//!                                      └──SendRoute──▶ OutboundActor ──▶ Vec<Outcome>
//! ```
//!
//! This module names no actor type, only messages and the data they carry, so a component
//! holds the address of another as a [`Recipient`] of the messages it sends.

use crate::outbound::route::Route;
use crate::outbound::{Job, Outcome};
use actix::{Message, Recipient};
use bytes::Bytes;
use postcore_scanner::{Flag, ScanContext};
use postcore_storage::directory::Mailbox;
use postcore_storage::maildir::Durability;
use std::sync::OnceLock;

/// Store one message into one mailbox under a given file name; answers the size written.
pub struct DeliverLocal {
    /// Target mailbox.
    pub mailbox: Mailbox,
    /// Folder inside the mailbox; `None` for INBOX. Created when missing.
    pub folder: Option<String>,
    /// Flags the stored message carries (it goes to `cur/` when there are any).
    pub flags: Vec<Flag>,
    /// IMAP keywords it carries (Sieve's imap4flags), kept in the mailbox index.
    pub keywords: Vec<String>,
    /// Maildir base name.
    pub file: String,
    /// Message octets.
    pub data: Bytes,
    /// Flushed before the reply ([`Durability::Now`]), or left to a later `syncfs` round
    /// while the intake journal holds the message ([`Durability::Deferred`]).
    pub durability: Durability,
}

impl Message for DeliverLocal {
    type Result = Result<u64, String>;
}

/// Judge a message that has completed its data phase (the pipeline's scan stage).
pub struct Scan {
    /// Where and how it arrived.
    pub context: ScanContext,
    /// The message octets.
    pub data: Bytes,
}

/// A message was queued durably: look at the queue soon.
pub struct Enqueued {
    /// Its queue id.
    pub qid: String,
}

impl Message for Enqueued {
    type Result = ();
}

/// Retry queued messages now: one (`Some(qid)`) or all. Answers whether anything matched.
pub struct Resend {
    /// The message, or `None` for every queued message.
    pub qid: Option<String>,
}

impl Message for Resend {
    type Result = bool;
}

/// Remove queued messages without a bounce: one (`Some(qid)`) or all. Answers how many were
/// removed.
pub struct Delete {
    /// The message, or `None` for every queued message.
    pub qid: Option<String>,
}

impl Message for Delete {
    type Result = Result<usize, String>;
}

/// Store a message the server puts together itself outside a session (a release from the
/// quarantine): its local recipients' scripts run, then it is committed like mail from
/// outside. Answers once it is durable.
pub struct Inject {
    /// Queue id to store it under.
    pub qid: String,
    /// Envelope sender (empty = null sender).
    pub from: String,
    /// The message.
    pub data: Bytes,
    /// Where it goes, each with the address that produced it.
    pub deliveries: Vec<(postcore_storage::directory::Target, String)>,
}

impl Message for Inject {
    type Result = Result<(), String>;
}

/// One recipient's outcome of a [`SendRoute`]: (job index, recipient index in the queue
/// record, outcome).
pub type RouteOutcome = (usize, usize, Outcome);

/// Send these queued messages to one destination (several per connection); answers every
/// recipient's outcome.
pub struct SendRoute {
    /// Where: the MX of a domain, or a relay host.
    pub route: Route,
    /// Our HELO name.
    pub helo: String,
    /// The messages and their recipients on this route.
    pub jobs: Vec<Job>,
}

impl Message for SendRoute {
    type Result = Vec<RouteOutcome>;
}

/// Close cached connections that have been idle too long (QUIT).
pub struct CloseIdle;

impl Message for CloseIdle {
    type Result = ();
}

/// The outbound actor's addresses.
#[derive(Clone)]
pub struct OutboundAddrs {
    /// Sends to one destination.
    pub send: Recipient<SendRoute>,
    /// Closes idle cached connections.
    pub close_idle: Recipient<CloseIdle>,
}

/// The queue actor's addresses, set once when it starts (on worker 0).
#[derive(Default)]
pub struct QueueHandle {
    addrs: OnceLock<QueueAddrs>,
}

/// The messages the queue actor takes.
pub struct QueueAddrs {
    /// New queued mail.
    pub enqueued: Recipient<Enqueued>,
    /// Administrator: retry now.
    pub resend: Recipient<Resend>,
    /// Administrator: remove.
    pub delete: Recipient<Delete>,
    /// Administrator: store a message (a quarantine release).
    pub inject: Recipient<Inject>,
}

impl QueueHandle {
    /// Records the queue actor's addresses; the first call wins.
    pub fn set(&self, addrs: QueueAddrs) {
        let _ = self.addrs.set(addrs);
    }

    fn get(&self) -> Result<&QueueAddrs, String> {
        self.addrs
            .get()
            .ok_or_else(|| "the queue is not running yet".to_string())
    }

    /// Tells the queue that `qid` was queued (the queue also finds it on its next scan).
    pub fn enqueued(&self, qid: &str) {
        if let Ok(a) = self.get() {
            a.enqueued.do_send(Enqueued { qid: qid.into() });
        }
    }

    /// Asks the queue to retry `qid` (or everything) now; true if anything matched.
    pub async fn resend(&self, qid: Option<String>) -> Result<bool, String> {
        self.get()?
            .resend
            .send(Resend { qid })
            .await
            .map_err(|e| format!("queue actor: {e}"))
    }

    /// Stores a message through the queue actor (see [`Inject`]); `Ok` once it is durable.
    pub async fn inject(&self, m: Inject) -> Result<(), String> {
        self.get()?
            .inject
            .send(m)
            .await
            .map_err(|e| format!("queue actor: {e}"))?
    }

    /// Asks the queue to remove `qid` (or everything) without a bounce; the number removed.
    pub async fn delete(&self, qid: Option<String>) -> Result<usize, String> {
        self.get()?
            .delete
            .send(Delete { qid })
            .await
            .map_err(|e| format!("queue actor: {e}"))?
    }
}
