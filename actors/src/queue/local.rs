//! Retrying queued local deliveries (over quota, failed writes), with recovery of those a
//! crash interrupted after the file was written.

use super::bounce::expire;
use super::state::{NewFailure, Runner};
use crate::messages::DeliverLocal;
use crate::usage::mailbox_path;
use postcore_scanner::Flag;
use postcore_storage::maildir;
use postcore_storage::queue::{Failure, QueueRecord, QueuedTarget, RcptStatus};

/// Flags stored in a queued local delivery (Maildir letters) as the delivery actor takes them.
pub(super) fn flags_of(letters: &str) -> Vec<Flag> {
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

pub(super) async fn process_local(
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
            keywords,
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
                keywords: keywords.clone(),
                file: file.clone(),
                data: d,
                // The queue record says "delivered" right after: the file must be durable.
                durability: postcore_storage::maildir::Durability::Now,
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
