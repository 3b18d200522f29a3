//! Local delivery: the per-core [`DeliveryActor`] that writes Maildir files on io_uring, and
//! [`accept_message`], which decides per delivery between "now" and "queued" and makes the
//! message durable before the session may answer 250.
//!
//! Local copies are written straight into the Maildirs, then the message is made durable in
//! one group-committed database write before the session may answer 250:
//! - bodies up to [`JOURNAL_MAX`]: the Maildir files are written without a flush and the
//!   intake journal ([`postcore_storage::journal`]) records the body and where each copy is;
//!   the `maildir-sync` thread makes the files durable in shared `syncfs` rounds and then
//!   drops the entry, and start-up replays what is left. One WAL fsync, shared by every
//!   session committing at that moment, is all a 250 waits for.
//! - larger bodies: each Maildir copy is fsynced (file after it has its name, then directory).
//!
//! Anything that cannot complete now (remote recipients, mailboxes over quota, I/O errors) is
//! spooled and recorded as a queue record in the same write.

use crate::context::Shared;
use crate::messages::DeliverLocal;
use crate::usage::mailbox_path;
use actix::{Actor, Context, Handler, Recipient, ResponseFuture};
use bytes::Bytes;
use postcore_scanner::Flag;
use postcore_storage::directory::{Mailbox, Target};
use postcore_storage::journal::{self, JournalEntry, JournalFile};
use postcore_storage::maildir::{self, Durability, MaildirWriter};
use postcore_storage::queue::{
    Failure, QueueRecord, QueuedRcpt, QueuedTarget, RcptStatus, ScanNote,
};
/// Messages up to this size go through the intake journal (body in the group-committed WAL,
/// Maildir copies flushed later in shared rounds); larger ones are written once, to their
/// Maildirs, each fsynced: past this size writing the octets twice costs more than a flush.
pub const JOURNAL_MAX: usize = 64 * 1024;
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

impl Handler<DeliverLocal> for DeliveryActor {
    type Result = ResponseFuture<Result<u64, String>>;

    fn handle(&mut self, m: DeliverLocal, _: &mut Self::Context) -> Self::Result {
        let writer = self.writer.clone();
        let shared = self.shared.clone();
        Box::pin(async move {
            // IMAP's name of the mailbox's owner: a user's login, or the public mailbox.
            let owner = match &m.mailbox {
                Mailbox::User(u) => u.clone(),
                Mailbox::Public(p) => format!("#public/{p}"),
            };
            let folder = m.folder.as_deref().unwrap_or("INBOX");
            let (dir, info) = place(&shared, &m.mailbox, m.folder.as_deref(), &m.flags);
            // Keywords live in the mailbox index only: the folder must have one now.
            if folder != "INBOX" || !m.keywords.is_empty() {
                ensure_folder(&shared, &owner, folder, &dir);
            }
            // Load (or scan) the usage before the file exists, so it is counted exactly once.
            shared.usage.get(&m.mailbox);
            let data = m.data.clone();
            match writer
                .deliver_with(&dir, &m.file, info.as_deref(), m.data, m.durability)
                .await
            {
                Ok(n) => {
                    shared.usage.add(&m.mailbox, n);
                    // The IMAP index (UID, header cache, full-text index) learns about the
                    // message now, and sessions with this folder selected (IDLE) are woken.
                    let file = postcore_storage::mailbox::Delivered {
                        base: &m.file,
                        info: info.as_deref(),
                        keywords: &m.keywords,
                        data: &data,
                    };
                    if let Err(e) = shared
                        .mailboxes
                        .index_delivered(&owner, folder, &dir, &file)
                    {
                        // Not fatal: the next folder scan indexes the file.
                        tracing::warn!(mailbox = %m.mailbox, folder, "imap index at delivery: {e:#}");
                    }
                    shared.mailboxes.touch_path(&dir);
                    Ok(n)
                }
                Err(e) => Err(format!("maildir write to {}: {e}", dir.display())),
            }
        })
    }
}

/// Where a copy goes: the Maildir folder's directory, and the info part (`2,FS`) when it
/// carries flags (then it goes to `cur/`).
fn place(
    shared: &Shared,
    mailbox: &Mailbox,
    folder: Option<&str>,
    flags: &[Flag],
) -> (std::path::PathBuf, Option<String>) {
    let root = mailbox_path(&shared.mail_root, mailbox);
    let dir = postcore_storage::mailbox::folder_path(&root, folder.unwrap_or("INBOX"));
    (dir, (!flags.is_empty()).then(|| Flag::maildir_info(flags)))
}

/// Makes sure folder `name` of `owner` exists (Maildir++ directory and IMAP index entry) before
/// a message is filed into it: a scanner or Sieve may file into `Junk` before the user has
/// ever logged in.
fn ensure_folder(shared: &Shared, owner: &str, name: &str, dir: &std::path::Path) {
    match shared.mailboxes.get(owner, name) {
        Ok(Some(_)) => {}
        Ok(None) => {
            // A folder delivery creates (Junk, a Sieve target) is subscribed, so that clients
            // showing subscribed folders only see what arrives there.
            let created = shared.mailboxes.create(owner, name, dir, None);
            if created.is_ok() {
                let _ = shared.mailboxes.set_subscribed(owner, name, true);
            }
            if let Err(e) = created
                && shared.mailboxes.get(owner, name).ok().flatten().is_none()
            {
                tracing::warn!(
                    owner,
                    folder = name,
                    "cannot create folder for delivery: {e:#}"
                );
            }
        }
        Err(e) => tracing::warn!(owner, folder = name, "mailbox index: {e:#}"),
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
    /// Where it goes.
    pub deliveries: Vec<Delivery>,
    /// The scan verdict's score and symbols (kept in the queue record if it is queued).
    pub scan: Option<ScanNote>,
    /// More writes that must be durable together with the message (e.g. the record that it
    /// was forwarded).
    pub extra_ops: Vec<postcore_storage::store::Op>,
}

/// One delivery of an accepted message, as the scan verdict left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Mailbox or remote address.
    pub target: Target,
    /// The RCPT TO address that produced it.
    pub orig_to: String,
    /// Folder of a local mailbox to file into; `None` for INBOX.
    pub folder: Option<String>,
    /// Flags the stored copy carries (local only).
    pub flags: Vec<Flag>,
    /// This copy's own content, when it differs from the message's (Sieve's editheader).
    pub content: Option<Bytes>,
    /// IMAP keywords the stored copy carries (Sieve's imap4flags; local only).
    pub keywords: Vec<String>,
}

impl Delivery {
    /// A delivery to `target`'s INBOX (or onward), no flags.
    pub fn plain(target: Target, orig_to: impl Into<String>) -> Delivery {
        Delivery {
            target,
            orig_to: orig_to.into(),
            folder: None,
            flags: Vec::new(),
            content: None,
            keywords: Vec::new(),
        }
    }
}

/// A local delivery decided now: where, under which file name, for whom.
struct LocalNow {
    mailbox: Mailbox,
    file: String,
    orig_to: String,
    folder: Option<String>,
    flags: Vec<Flag>,
    content: Option<Bytes>,
    keywords: Vec<String>,
}

impl LocalNow {
    fn queued(self, failure: Failure) -> QueuedRcpt {
        QueuedRcpt {
            target: QueuedTarget::Local {
                mailbox: self.mailbox,
                file: self.file,
                folder: self.folder,
                flags: self.flags.iter().map(|f| f.maildir_letter()).collect(),
                keywords: self.keywords,
            },
            orig_to: self.orig_to,
            status: RcptStatus::Deferred,
            last_error: Some(failure),
        }
    }
}

fn log_delivered(qid: &str, mb: &Mailbox, orig_to: &str, folder: Option<&str>, started: Instant) {
    let delay = started.elapsed().as_secs_f64();
    let into = folder.map(|f| format!(" folder {f}")).unwrap_or_default();
    tracing::info!(qid, mailbox = %mb, orig_to, status = "sent", "{qid}: to=<{mb}>, orig_to=<{orig_to}>, relay=local, delay={delay:.3}, dsn=2.0.0, status=sent (delivered to maildir{into})");
    metrics::counter!(crate::metrics::DELIVERIES, "kind" => "local", "status" => "sent")
        .increment(1);
    metrics::histogram!(crate::metrics::DELIVERY_SECONDS).record(delay);
}

fn log_deferred(qid: &str, mb: &Mailbox, orig_to: &str, f: &Failure) {
    tracing::info!(qid, mailbox = %mb, orig_to, status = "deferred", "{qid}: to=<{mb}>, orig_to=<{orig_to}>, relay=local, dsn={}, status=deferred ({})", f.dsn, f.reason);
    metrics::counter!(crate::metrics::DELIVERIES, "kind" => "local", "status" => "deferred")
        .increment(1);
}

/// Makes an accepted message durable; `Ok` means the session may reply 250.
pub async fn accept_message(
    shared: &Arc<Shared>,
    delivery: &Recipient<DeliverLocal>,
    msg: IncomingMessage,
    started: Instant,
) -> anyhow::Result<()> {
    let dir = shared.directory.snapshot();
    let size = msg.data.len() as u64;
    let mut immediate: Vec<LocalNow> = Vec::new();
    let mut later: Vec<QueuedRcpt> = Vec::new();
    // Bodies of copies with their own content, by Maildir file name.
    let mut bodies = std::collections::HashMap::new();
    for (i, d) in msg.deliveries.iter().enumerate() {
        match &d.target {
            Target::Mailbox(mb) => {
                let local = LocalNow {
                    mailbox: mb.clone(),
                    file: maildir::file_name(msg.arrival, &msg.qid, i, &shared.config.hostname),
                    orig_to: d.orig_to.clone(),
                    folder: d.folder.clone(),
                    flags: d.flags.clone(),
                    content: d.content.clone(),
                    keywords: d.keywords.clone(),
                };
                if let Some(c) = &local.content {
                    bodies.insert(local.file.clone(), c.clone());
                }
                if shared.usage.would_exceed(mb, size, dir.quota_bytes(mb)) {
                    let f = Failure::new("4.2.2", "mailbox over quota");
                    log_deferred(&msg.qid, mb, &d.orig_to, &f);
                    later.push(local.queued(f));
                } else {
                    immediate.push(local);
                }
            }
            Target::Remote(a) => later.push(QueuedRcpt {
                target: QueuedTarget::Remote { address: a.clone() },
                orig_to: d.orig_to.clone(),
                status: RcptStatus::Deferred,
                last_error: Some(Failure::new("4.4.0", "queued for outbound delivery")),
            }),
        }
    }
    // The journal holds one body for every copy: copies with their own content (Sieve's
    // editheader) are written with their own flush instead.
    let journaled = msg.data.len() <= JOURNAL_MAX
        && !immediate.is_empty()
        && immediate.iter().all(|l| l.content.is_none());
    let mut record = QueueRecord {
        qid: msg.qid.clone(),
        from: msg.from.clone(),
        message_id: msg.message_id.clone(),
        size,
        arrival: msg.arrival,
        attempts: 0,
        next_attempt: msg.arrival,
        rcpts: later,
        warned: false,
        scan: msg.scan.clone(),
    };
    if journaled {
        // Journal first: once this write is durable, every copy below is too (replay
        // rewrites whatever a power cut leaves missing or partial), so they need no flush.
        let entry = journal_entry(shared, &msg.qid, &immediate);
        let mut ops = vec![journal::put_op(&entry, &msg.data)?];
        ops.extend(msg.extra_ops.iter().cloned());
        shared.store.commit(ops).await?;
    }
    let durability = if journaled {
        Durability::Deferred
    } else {
        Durability::Now
    };
    let written = deliver_now(delivery, &msg, immediate, durability, &mut record.rcpts).await;
    // Copies with their own content (Sieve's editheader) that must wait go as records of their
    // own, with that content as their body.
    for (rcpt, body) in own_content(&bodies, &mut record.rcpts) {
        let mut own = record.clone();
        own.qid = postcore_storage::queue::new_qid(0);
        own.size = body.len() as u64;
        own.rcpts = vec![rcpt];
        tracing::info!(qid = %msg.qid, "{}: the copy for <{}> waits as {} (its own header)", msg.qid, own.rcpts[0].orig_to, own.qid);
        enqueue(shared, &own, &body, Vec::new()).await?;
        shared.queue.enqueued(&own.qid);
    }
    // What is left is queued, after the local copies: the queue runner never sees a record
    // that this function would still change.
    if !record.rcpts.is_empty() {
        let extra = if journaled {
            Vec::new()
        } else {
            msg.extra_ops.clone()
        };
        enqueue(shared, &record, &msg.data, extra).await?;
    } else if !journaled && !msg.extra_ops.is_empty() {
        shared.store.commit(msg.extra_ops.clone()).await?;
    }
    if journaled {
        shared.syncer.release(&msg.qid);
    }
    for l in &written {
        log_delivered(
            &msg.qid,
            &l.mailbox,
            &l.orig_to,
            l.folder.as_deref(),
            started,
        );
    }
    if record.rcpts.is_empty() {
        tracing::info!(qid = %msg.qid, "{}: removed", msg.qid);
    } else {
        tracing::info!(qid = %msg.qid, "{}: queued, {} deliveries waiting", msg.qid, record.rcpts.len());
        shared.queue.enqueued(&msg.qid);
    }
    Ok(())
}

/// Takes the waiting local copies that have their own content (`bodies`, by file name) out of
/// `rcpts`, each with it.
fn own_content(
    bodies: &std::collections::HashMap<String, Bytes>,
    rcpts: &mut Vec<QueuedRcpt>,
) -> Vec<(QueuedRcpt, Bytes)> {
    let body_of = |r: &QueuedRcpt| match &r.target {
        QueuedTarget::Local { file, .. } => bodies.get(file).cloned(),
        QueuedTarget::Remote { .. } => None,
    };
    let mut out = Vec::new();
    let mut keep = Vec::new();
    for r in rcpts.drain(..) {
        match body_of(&r) {
            Some(body) => out.push((r, body)),
            None => keep.push(r),
        }
    }
    *rcpts = keep;
    out
}

/// The journal entry of `copies`: each one's folder (relative to the Maildir root) and name.
fn journal_entry(shared: &Shared, qid: &str, copies: &[LocalNow]) -> JournalEntry {
    JournalEntry {
        qid: qid.to_string(),
        files: copies
            .iter()
            .map(|l| {
                let (dir, info) = place(shared, &l.mailbox, l.folder.as_deref(), &l.flags);
                JournalFile {
                    dir: dir
                        .strip_prefix(&shared.mail_root)
                        .unwrap_or(&dir)
                        .to_path_buf(),
                    name: l.file.clone(),
                    info,
                }
            })
            .collect(),
    }
}

/// Writes the local copies concurrently; those that fail join `queued`. Returns the written.
async fn deliver_now(
    delivery: &Recipient<DeliverLocal>,
    msg: &IncomingMessage,
    copies: Vec<LocalNow>,
    durability: Durability,
    queued: &mut Vec<QueuedRcpt>,
) -> Vec<LocalNow> {
    let sends = copies.iter().map(|l| {
        delivery.send(DeliverLocal {
            mailbox: l.mailbox.clone(),
            folder: l.folder.clone(),
            flags: l.flags.clone(),
            keywords: l.keywords.clone(),
            file: l.file.clone(),
            data: l.content.clone().unwrap_or_else(|| msg.data.clone()),
            durability,
        })
    });
    let results = futures_util::future::join_all(sends).await;
    let mut written = Vec::new();
    for (l, res) in copies.into_iter().zip(results) {
        match res.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(_) => written.push(l),
            Err(e) => {
                let f = Failure::new("4.3.0", e);
                log_deferred(&msg.qid, &l.mailbox, &l.orig_to, &f);
                queued.push(l.queued(f));
            }
        }
    }
    written
}

/// Body and queue record, durably (one group-committed batch for small bodies).
async fn enqueue(
    shared: &Shared,
    record: &QueueRecord,
    data: &Bytes,
    extra: Vec<postcore_storage::store::Op>,
) -> anyhow::Result<()> {
    let mut ops = vec![record.put_op()?];
    ops.extend(extra);
    shared
        .spool
        .store_with(&record.qid, data.clone(), ops)
        .await?;
    metrics::gauge!(crate::metrics::QUEUE_LENGTH).increment(1.0);
    metrics::gauge!(crate::metrics::QUEUE_BYTES).increment(record.size as f64);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{EnvelopeRcpt, Plan, edit_headers, plan};
    use postcore_scanner::{Disposition, HeaderEdit, Verdict};

    fn shared(dir: &std::path::Path) -> Arc<Shared> {
        let cfg = crate::config::Config {
            data_dir: dir.to_path_buf(),
            hostname: "mx.example.test".into(),
            ..crate::config::Config::default()
        };
        let (_tx, rx) = tokio::sync::watch::channel(false);
        Arc::new(Shared::open(cfg, rx).expect("open data directory"))
    }

    fn only_file(dir: &std::path::Path) -> (String, Vec<u8>) {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .flatten()
            .collect();
        assert_eq!(entries.len(), 1, "{}", dir.display());
        let e = &entries[0];
        (
            e.file_name().to_string_lossy().into_owned(),
            std::fs::read(e.path()).unwrap(),
        )
    }

    /// A verdict that files one recipient's copy into Junk with flags and adds a header is
    /// carried out by the pipeline's stages and the delivery actor: the file lands in the
    /// folder's `cur/` with its flags, the IMAP index knows it, the other copy is in INBOX.
    #[test]
    fn a_verdict_files_into_a_folder_with_flags_and_adds_headers() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = shared(tmp.path());
        let mut v = Verdict::accept();
        v.set_disposition(
            0,
            Disposition::FileInto {
                mailbox: "Junk".into(),
                flags: vec![Flag::Seen, Flag::Flagged],
            },
        );
        v.headers.push(HeaderEdit::Add {
            name: "X-Spam-Flag".into(),
            value: "YES".into(),
        });
        let rcpts = ["alice", "bob"].map(|u| EnvelopeRcpt {
            address: format!("{u}@example.test"),
            targets: vec![Target::Mailbox(Mailbox::User(u.into()))],
        });
        let Plan::Accept { deliveries, .. } = plan(&v, &rcpts, vec![], &|_| None, &|_| false)
        else {
            panic!("refused");
        };
        let data = edit_headers(b"Subject: offer\r\n\r\nbuy now\r\n".to_vec(), &v.headers);
        let s = shared.clone();
        tokio_uring::start(async move {
            let delivery = DeliveryActor::new(s.clone()).start().recipient();
            let msg = IncomingMessage {
                qid: "QVERDICT1".into(),
                from: "sender@remote.test".into(),
                message_id: None,
                data: Bytes::from(data),
                arrival: 1_700_000_000,
                deliveries,
                scan: None,
                extra_ops: Vec::new(),
            };
            accept_message(&s, &delivery, msg, Instant::now())
                .await
                .expect("durable");
        });
        let alice = tmp.path().join("mail/users/alice");
        let (name, body) = only_file(&alice.join(".Junk/cur"));
        assert!(name.ends_with(":2,FS"), "{name}");
        assert_eq!(
            body,
            b"X-Spam-Flag: YES\r\nSubject: offer\r\n\r\nbuy now\r\n"
        );
        assert!(!alice.join("new").exists() || only_new_is_empty(&alice.join("new")));
        assert!(alice.join(".Junk/maildirfolder").exists());
        let junk = shared
            .mailboxes
            .get("alice", "Junk")
            .unwrap()
            .expect("Junk is in the IMAP index");
        assert_eq!(junk.uidnext, 2, "the filed message has UID 1");
        let (_, body) = only_file(&tmp.path().join("mail/users/bob/new"));
        assert!(body.starts_with(b"X-Spam-Flag: YES\r\n"));
        // As the server does at exit: no thread closes the database while the process ends.
        shared.store.db().cancel_all_background_work(true);
        std::mem::forget(shared);
    }

    /// A message that is queued (here: for a remote recipient) keeps its verdict's score and
    /// symbols in the queue record, and a filed-into folder with its flags.
    #[test]
    fn a_queued_message_keeps_its_verdict() {
        let tmp = tempfile::tempdir().unwrap();
        let shared = shared(tmp.path());
        let note = ScanNote {
            score: 7.5,
            symbols: vec!["BAYES_SPAM(7.50)".into()],
        };
        let s = shared.clone();
        let n = note.clone();
        tokio_uring::start(async move {
            let delivery = DeliveryActor::new(s.clone()).start().recipient();
            let msg = IncomingMessage {
                qid: "QVERDICT2".into(),
                from: "sender@remote.test".into(),
                message_id: None,
                data: Bytes::from_static(b"Subject: x\r\n\r\ny\r\n"),
                arrival: 1_700_000_000,
                deliveries: vec![Delivery::plain(
                    Target::Remote("far@remote.test".into()),
                    "far@remote.test",
                )],
                scan: Some(n),
                extra_ops: Vec::new(),
            };
            accept_message(&s, &delivery, msg, Instant::now())
                .await
                .expect("durable");
        });
        let recs = QueueRecord::load_all(&shared.store).unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].scan.as_ref(), Some(&note));
        shared.store.db().cancel_all_background_work(true);
        std::mem::forget(shared);
    }

    fn only_new_is_empty(dir: &std::path::Path) -> bool {
        std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(true)
    }
}
