//! Local delivery: the per-core [`DeliveryActor`] that writes Maildir files on io_uring, and
//! [`accept_message`], which decides per delivery between "now" and "queued" and makes the
//! message durable before the session may answer 250.
//!
//! Fast path: when every delivery is to a local mailbox with room, the message is written
//! straight into the Maildirs (each file and directory entry fsynced) and no spool file or
//! queue record is written at all. Anything that cannot complete now (remote recipients,
//! mailboxes over quota, I/O errors) is spooled and recorded durably, in one write after the
//! local deliveries, before the 250.

use crate::server::Shared;
use crate::usage::mailbox_path;
use actix::{Actor, Addr, Context, Handler, Message, ResponseFuture};
use bytes::Bytes;
use postcore_storage::directory::{Mailbox, Target};
use postcore_storage::maildir::{self, MaildirWriter};
use postcore_storage::queue::{QueueRecord, QueuedRcpt, QueuedTarget, RcptStatus};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

/// Per-core actor that owns this core's Maildir writer.
pub struct DeliveryActor {
    shared: Arc<Shared>,
    writer: Rc<MaildirWriter>,
}

impl DeliveryActor {
    /// A delivery actor for one worker.
    pub fn new(shared: Arc<Shared>) -> Self {
        DeliveryActor {
            shared,
            writer: Rc::new(MaildirWriter::new()),
        }
    }
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;
}

/// Store one message durably into one mailbox under a given file name.
pub struct DeliverLocal {
    /// Target mailbox.
    pub mailbox: Mailbox,
    /// Maildir base name.
    pub file: String,
    /// Message octets.
    pub data: Bytes,
}

impl Message for DeliverLocal {
    type Result = Result<u64, String>;
}

impl Handler<DeliverLocal> for DeliveryActor {
    type Result = ResponseFuture<Result<u64, String>>;

    fn handle(&mut self, m: DeliverLocal, _: &mut Self::Context) -> Self::Result {
        let writer = self.writer.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            let root = mailbox_path(&shared.mail_root, &m.mailbox);
            // Load (or scan) the usage before the file exists, so it is counted exactly once.
            shared.usage.get(&m.mailbox);
            let data = m.data.clone();
            match writer.deliver(&root, &m.file, m.data).await {
                Ok(n) => {
                    shared.usage.add(&m.mailbox, n);
                    // The IMAP index (UID, header cache, full-text index) learns about the
                    // message now, and sessions with this INBOX selected (IDLE) are woken.
                    let owner = match &m.mailbox {
                        Mailbox::User(u) => u.clone(),
                        Mailbox::Public(p) => format!("#public/{p}"),
                    };
                    if let Err(e) = shared
                        .mailboxes
                        .index_delivered(&owner, "INBOX", &root, &m.file, &data)
                    {
                        // Not fatal: the next folder scan indexes the file.
                        tracing::warn!(mailbox = %m.mailbox, "imap index at delivery: {e:#}");
                    }
                    shared.mailboxes.touch_path(&root);
                    Ok(n)
                }
                Err(e) => Err(format!("maildir write to {}: {e}", root.display())),
            }
        })
    }
}

/// A message whose data phase completed, ready to be made durable.
pub struct IncomingMessage {
    /// Queue id.
    pub qid: String,
    /// Envelope sender (empty = null sender).
    pub from: String,
    /// Message-ID header, for logs.
    pub message_id: Option<String>,
    /// Complete message including our Received header.
    pub data: Bytes,
    /// Unix arrival time.
    pub arrival: u64,
    /// Deliveries with the RCPT TO address that produced each.
    pub deliveries: Vec<(Target, String)>,
}

fn log_delivered(qid: &str, mb: &Mailbox, orig_to: &str, started: Instant) {
    let delay = started.elapsed().as_secs_f64();
    tracing::info!(qid, mailbox = %mb, orig_to, status = "sent", "{qid}: to=<{mb}>, orig_to=<{orig_to}>, relay=local, delay={delay:.3}, dsn=2.0.0, status=sent (delivered to maildir)");
    metrics::counter!(crate::metrics::DELIVERIES, "kind" => "local", "status" => "sent")
        .increment(1);
    metrics::histogram!(crate::metrics::DELIVERY_SECONDS).record(delay);
}

/// Makes an accepted message durable; `Ok` means the session may reply 250.
pub async fn accept_message(
    shared: &Arc<Shared>,
    delivery: &Addr<DeliveryActor>,
    msg: IncomingMessage,
    started: Instant,
) -> anyhow::Result<()> {
    let dir = shared.directory.snapshot();
    let size = msg.data.len() as u64;
    let mut immediate = Vec::new();
    let mut later: Vec<QueuedRcpt> = Vec::new();
    for (i, (target, orig_to)) in msg.deliveries.iter().enumerate() {
        match target {
            Target::Mailbox(mb) => {
                let file = maildir::file_name(msg.arrival, &msg.qid, i, &shared.config.hostname);
                if shared.usage.would_exceed(mb, size, dir.quota_bytes(mb)) {
                    tracing::info!(qid = %msg.qid, "{}: to=<{mb}>, orig_to=<{orig_to}>, relay=local, dsn=4.2.2, status=deferred (mailbox over quota)", msg.qid);
                    metrics::counter!(crate::metrics::DELIVERIES, "kind" => "local", "status" => "deferred").increment(1);
                    later.push(QueuedRcpt {
                        target: QueuedTarget::Local {
                            mailbox: mb.clone(),
                            file,
                        },
                        orig_to: orig_to.clone(),
                        status: RcptStatus::Deferred,
                        last_error: Some("4.2.2 mailbox over quota".into()),
                    });
                } else {
                    immediate.push((mb.clone(), file, orig_to.clone()));
                }
            }
            Target::Remote(a) => later.push(QueuedRcpt {
                target: QueuedTarget::Remote { address: a.clone() },
                orig_to: orig_to.clone(),
                status: RcptStatus::Deferred,
                last_error: Some("4.4.0 queued for outbound delivery".into()),
            }),
        }
    }
    // Local deliveries run concurrently; each is durable when its future completes.
    let sends = immediate.iter().map(|(mb, file, _)| {
        delivery.send(DeliverLocal {
            mailbox: mb.clone(),
            file: file.clone(),
            data: msg.data.clone(),
        })
    });
    let results = futures_util::future::join_all(sends).await;
    for ((mb, file, orig_to), res) in immediate.into_iter().zip(results) {
        match res.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(_) => log_delivered(&msg.qid, &mb, &orig_to, started),
            Err(e) => {
                tracing::warn!(qid = %msg.qid, "{}: to=<{mb}>, orig_to=<{orig_to}>, relay=local, dsn=4.3.0, status=deferred ({e})", msg.qid);
                metrics::counter!(crate::metrics::DELIVERIES, "kind" => "local", "status" => "deferred").increment(1);
                later.push(QueuedRcpt {
                    target: QueuedTarget::Local { mailbox: mb, file },
                    orig_to,
                    status: RcptStatus::Deferred,
                    last_error: Some(format!("4.3.0 {e}")),
                });
            }
        }
    }
    // What is left is recorded once, after the local deliveries: the queue runner never sees
    // a record that this function would still change (and overwrite its results).
    if later.is_empty() {
        tracing::info!(qid = %msg.qid, "{}: removed", msg.qid);
        return Ok(());
    }
    let record = QueueRecord {
        qid: msg.qid.clone(),
        from: msg.from.clone(),
        message_id: msg.message_id.clone(),
        size,
        arrival: msg.arrival,
        attempts: 0,
        next_attempt: msg.arrival,
        rcpts: later,
        warned: false,
    };
    enqueue(shared, &record, &msg.data).await?;
    tracing::info!(qid = %msg.qid, "{}: queued, {} deliveries waiting", msg.qid, record.rcpts.len());
    shared.queue_kick.notify_one();
    Ok(())
}

/// Body and queue record, durably (one group-committed batch for small bodies).
async fn enqueue(shared: &Shared, record: &QueueRecord, data: &Bytes) -> anyhow::Result<()> {
    shared
        .spool
        .store_with(&record.qid, data.clone(), vec![record.put_op()?])
        .await?;
    metrics::gauge!(crate::metrics::QUEUE_LENGTH).increment(1.0);
    metrics::gauge!(crate::metrics::QUEUE_BYTES).increment(record.size as f64);
    Ok(())
}
