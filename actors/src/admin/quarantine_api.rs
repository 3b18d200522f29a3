//! `/api/quarantine`: the messages quarantine mode held (the INBOX of the
//! `filter.spam.quarantine_to` mailbox), and their release or deletion. A message is named by
//! the queue id its seal records ([`crate::quarantine`]); a message in that mailbox without
//! a valid seal (mail sent to it directly, an IMAP APPEND) is listed as `uid<N>`, can be
//! deleted, and is never released.

use super::{ApiError, ApiResult, AppState, json_ok, not_found};
use crate::context::Shared;
use crate::messages::Inject;
use crate::quarantine::{self, Stamp};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use postcore_storage::directory::{Mailbox, Target};
use postcore_storage::mailbox::MailboxMeta;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// The quarantine mailbox's INBOX: index owner, mailbox, folder path, address.
struct QuarantineBox {
    owner: String,
    mailbox: Mailbox,
    path: PathBuf,
    address: String,
}

/// One message in the quarantine mailbox.
struct Entry {
    uid: u32,
    size: u64,
    internal_date: i64,
    file: PathBuf,
    stamp: Option<Stamp>,
    /// Its header section.
    head: Vec<u8>,
}

impl Entry {
    fn id(&self) -> String {
        match &self.stamp {
            Some(s) => s.qid.clone(),
            None => format!("uid{}", self.uid),
        }
    }

    fn view(&self) -> Value {
        let head = postcore_protocol::sieve::mail::Mail::new(&self.head);
        let field = |n: &str| head.named(n).next().map(|f| f.value());
        json!({
            "id": self.id(),
            "uid": self.uid,
            "verified": self.stamp.is_some(),
            "envelope_from": self.stamp.as_ref().map(|s| s.from.clone()),
            "recipients": self.stamp.as_ref().map(|s| s.rcpts.clone()),
            "score": self.stamp.as_ref().map(|s| s.score),
            "from": field("from"),
            "subject": field("subject"),
            "date": field("date"),
            "message_id": field("message-id"),
            "size": self.size,
            "received": self.internal_date,
        })
    }
}

/// Held while a quarantined message is released or deleted.
static CHANGING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn conflict(why: impl Into<String>) -> ApiError {
    ApiError(StatusCode::CONFLICT, why.into())
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn quarantine_box(shared: &Shared) -> Result<QuarantineBox, ApiError> {
    let dir = shared.directory.snapshot();
    let Some(address) = dir.settings.filter.spam.quarantine_to.clone() else {
        return Err(conflict(
            "quarantine mode is off (set filter.spam.quarantine_to)",
        ));
    };
    let targets = crate::pipeline::resolve_redirect(&dir, &address).unwrap_or_default();
    let Some(mailbox) = targets.into_iter().find_map(|t| match t {
        Target::Mailbox(m) => Some(m),
        Target::Remote(_) => None,
    }) else {
        return Err(conflict(format!(
            "the quarantine address <{address}> is not a mailbox on this server"
        )));
    };
    let owner = match &mailbox {
        Mailbox::User(u) => u.clone(),
        Mailbox::Public(p) => format!("#public/{p}"),
    };
    let root = crate::usage::mailbox_path(&shared.mail_root, &mailbox);
    let path = postcore_storage::mailbox::folder_path(&root, "INBOX");
    Ok(QuarantineBox {
        owner,
        mailbox,
        path,
        address,
    })
}

/// The INBOX's index entry, made when nobody has opened it yet.
fn inbox_meta(shared: &Shared, q: &QuarantineBox) -> anyhow::Result<MailboxMeta> {
    let idx = &shared.mailboxes;
    if let Some(m) = idx.get(&q.owner, "INBOX")? {
        return Ok(m);
    }
    match idx.create(&q.owner, "INBOX", &q.path, None) {
        Ok(m) => Ok(m),
        // Created meanwhile by a login or a delivery.
        Err(e) => idx.get(&q.owner, "INBOX")?.ok_or(e),
    }
}

/// Reads the quarantine mailbox (brought up to date with its folder first).
fn entries(shared: &Shared, q: &QuarantineBox) -> anyhow::Result<Vec<Entry>> {
    let idx = &shared.mailboxes;
    let meta = inbox_meta(shared, q)?;
    let msgs = idx.with_locked_meta(meta.id, &q.owner, "INBOX", |meta| {
        idx.sync(&q.owner, "INBOX", meta, &q.path)?;
        idx.messages(meta.id)
    })?;
    let mut out = Vec::with_capacity(msgs.len());
    for (uid, rec) in msgs {
        let file = q.path.join(rec.relative_path());
        // The header the index cached at delivery; the file only when it has none.
        let cached = idx.header(meta.id, uid).ok().flatten();
        let head = match cached {
            Some(h) => h,
            None => match std::fs::read(&file) {
                Ok(data) => postcore_protocol::message::header_section(&data).to_vec(),
                Err(_) => continue, // expunged meanwhile
            },
        };
        let stamp = quarantine::field_value(&head).and_then(|v| shared.quarantine_key.verify(&v));
        out.push(Entry {
            uid,
            size: rec.size,
            internal_date: rec.internal_date,
            file,
            stamp,
            head,
        });
    }
    Ok(out)
}

/// Runs `f` on the blocking pool with the quarantine mailbox.
async fn blocking<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&Shared, &QuarantineBox) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let shared: Arc<Shared> = st.shared.clone();
    tokio::task::spawn_blocking(move || {
        let q = quarantine_box(&shared)?;
        f(&shared, &q)
    })
    .await
    .map_err(internal)?
}

/// `GET /api/quarantine`: every message held, newest last.
pub(super) async fn list(State(st): State<AppState>) -> ApiResult {
    let (address, rows) = blocking(&st, |shared, q| {
        let rows: Vec<Value> = entries(shared, q)
            .map_err(|e| internal(format!("{e:#}")))?
            .iter()
            .map(Entry::view)
            .collect();
        Ok((q.address.clone(), rows))
    })
    .await?;
    json_ok(&json!({"mailbox": address, "messages": rows}))
}

/// The entry named `id`.
fn find(shared: &Shared, q: &QuarantineBox, id: &str) -> Result<Entry, ApiError> {
    let all = entries(shared, q).map_err(|e| internal(format!("{e:#}")))?;
    all.into_iter()
        .find(|e| e.id().eq_ignore_ascii_case(id))
        .ok_or_else(|| not_found(format!("quarantined message {id}")))
}

/// Removes the message `uid` (file and index entry).
fn remove(shared: &Shared, q: &QuarantineBox, e: &Entry) -> anyhow::Result<()> {
    let idx = &shared.mailboxes;
    let meta = inbox_meta(shared, q)?;
    idx.with_locked_meta(meta.id, &q.owner, "INBOX", |meta| {
        match std::fs::remove_file(&e.file) {
            Ok(()) => shared.usage.remove(&q.mailbox, e.size),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err.into()),
        }
        idx.expunge(&q.owner, "INBOX", meta, &[e.uid])
    })?;
    idx.notify(meta.id);
    Ok(())
}

/// `DELETE /api/quarantine/{id}`: deletes a held message.
pub(super) async fn delete(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    let _one = CHANGING.lock().await;
    let view = blocking(&st, move |shared, q| {
        let e = find(shared, q, &id)?;
        remove(shared, q, &e).map_err(|err| internal(format!("{err:#}")))?;
        tracing::info!("quarantine: {} deleted by the administrator", e.id());
        Ok(e.view())
    })
    .await?;
    json_ok(&json!({"deleted": view}))
}

/// `POST /api/quarantine/{id}/release`: delivers a held message to the recipients its seal
/// names (without the spam fields), then deletes it from the quarantine. Local recipients'
/// Sieve scripts run as for any delivery; recipients that no longer exist are skipped and
/// listed.
pub(super) async fn release(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult {
    // One release (or delete) at a time: two requests for the same message (a double click)
    // must not both find it and deliver it twice.
    let _one = CHANGING.lock().await;
    let (entry, data, prefix) = blocking(&st, move |shared, q| {
        let e = find(shared, q, &id)?;
        if e.stamp.is_none() {
            return Err(conflict(format!(
                "{} carries no valid quarantine seal: it was not put there by postcore, so it \
                 has no recipients to release it to",
                e.id()
            )));
        }
        let data = std::fs::read(&e.file).map_err(|err| internal(format!("reading: {err}")))?;
        let prefix = shared
            .directory
            .snapshot()
            .settings
            .filter
            .spam
            .subject_prefix
            .clone();
        Ok((e, data, prefix))
    })
    .await?;
    let Some(stamp) = entry.stamp.clone() else {
        return Err(conflict("no seal"));
    };
    let dir = st.shared.directory.snapshot();
    let mut deliveries = Vec::new();
    let mut skipped = Vec::new();
    for r in &stamp.rcpts {
        match crate::pipeline::resolve_redirect(&dir, r) {
            Some(ts) => deliveries.extend(ts.into_iter().map(|t| (t, r.clone()))),
            None => skipped.push(r.clone()),
        }
    }
    if deliveries.is_empty() {
        return Err(conflict(format!(
            "none of the recipients of {} exists now: {}",
            stamp.qid,
            skipped.join(", ")
        )));
    }
    let qid = postcore_storage::queue::new_qid(0);
    {
        let inject = Inject {
            qid: qid.clone(),
            from: stamp.from.clone(),
            data: bytes::Bytes::from(quarantine::released(&data, &prefix)),
            deliveries,
        };
        st.shared.queue.inject(inject).await.map_err(internal)?;
    }
    tracing::info!(
        qid,
        "{qid}: released from quarantine ({}), from=<{}>, to {} recipient(s){}",
        stamp.qid,
        stamp.from,
        stamp.rcpts.len() - skipped.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(", skipped (unknown now): {}", skipped.join(", "))
        }
    );
    blocking(&st, move |shared, q| {
        remove(shared, q, &entry).map_err(|err| internal(format!("{err:#}")))
    })
    .await?;
    json_ok(&json!({
        "released": stamp.qid,
        "queued_as": qid,
        "recipients": stamp.rcpts.iter().filter(|r| !skipped.contains(r)).collect::<Vec<_>>(),
        "skipped": skipped,
    }))
}
