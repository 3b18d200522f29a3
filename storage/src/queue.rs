//! Queue records: the envelope of an accepted message and each recipient's state.
//! A record is written (durably) before the 250 reply whenever a message has deliveries
//! that did not complete at once; it is deleted when every recipient is final.

use crate::directory::Mailbox;
use crate::store::{CF_QUEUE, Op, Store};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// State of one delivery of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RcptStatus {
    /// Waiting for (another) attempt.
    Deferred,
    /// Done.
    Delivered,
    /// Permanently failed (bounce due).
    Failed,
}

/// Where one queued delivery goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum QueuedTarget {
    /// Local mailbox; `file` is the deterministic Maildir base name.
    Local {
        /// Mailbox.
        mailbox: Mailbox,
        /// Maildir file base name.
        file: String,
        /// Folder the scanner's verdict filed it into; `None` for INBOX.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        folder: Option<String>,
        /// Maildir flag letters (`FS`) the verdict set; empty for none.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        flags: String,
        /// IMAP keywords (Sieve's imap4flags) the copy carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        keywords: Vec<String>,
    },
    /// Another server.
    Remote {
        /// Recipient address.
        address: String,
    },
}

/// One delivery of a queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRcpt {
    /// Where it goes.
    pub target: QueuedTarget,
    /// The RCPT TO address that led here.
    pub orig_to: String,
    /// Current state.
    pub status: RcptStatus,
    /// Why the last attempt did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<Failure>,
}

/// Why a delivery did not complete: an enhanced status code (RFC 3463) and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "FailureRepr")]
pub struct Failure {
    /// Enhanced status code, e.g. `4.2.2`.
    pub dsn: String,
    /// What happened, e.g. `mailbox over quota` or the remote server's reply.
    pub reason: String,
}

impl Failure {
    /// A failure with status `dsn` and `reason`.
    pub fn new(dsn: &str, reason: impl Into<String>) -> Failure {
        Failure {
            dsn: dsn.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.dsn, self.reason)
    }
}

/// A failure as stored: typed, or the `"4.2.2 mailbox over quota"` text that records written
/// by earlier versions hold.
#[derive(Deserialize)]
#[serde(untagged)]
enum FailureRepr {
    Typed { dsn: String, reason: String },
    Text(String),
}

impl From<FailureRepr> for Failure {
    fn from(r: FailureRepr) -> Failure {
        match r {
            FailureRepr::Typed { dsn, reason } => Failure { dsn, reason },
            FailureRepr::Text(t) => {
                let (first, rest) = t.split_once(' ').unwrap_or((t.as_str(), ""));
                let is_status = first.split('.').count() == 3
                    && first
                        .split('.')
                        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
                if is_status {
                    Failure::new(first, rest)
                } else {
                    Failure::new("4.0.0", t.as_str())
                }
            }
        }
    }
}

/// The explanation of a message's scan verdict, kept with it while it is queued: a retry or
/// an administrator looking at the queue still sees why it went where it goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ScanNote {
    /// Total score.
    pub score: f64,
    /// Symbols as `NAME(score)`.
    pub symbols: Vec<String>,
}

/// A queued message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueRecord {
    /// Queue id.
    pub qid: String,
    /// Envelope sender (empty for the null sender).
    pub from: String,
    /// Message-ID header, if any.
    #[serde(default)]
    pub message_id: Option<String>,
    /// Size in octets as stored.
    pub size: u64,
    /// Unix time of arrival.
    pub arrival: u64,
    /// Attempts so far.
    pub attempts: u32,
    /// Unix time of the next attempt.
    pub next_attempt: u64,
    /// Deliveries.
    pub rcpts: Vec<QueuedRcpt>,
    /// A delay warning was sent to the sender.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub warned: bool,
    /// The scan verdict's score and symbols, when the scanner gave any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<ScanNote>,
}

impl QueueRecord {
    /// True when no delivery is waiting any more.
    pub fn is_final(&self) -> bool {
        self.rcpts.iter().all(|r| r.status != RcptStatus::Deferred)
    }

    /// The durable write that stores this record.
    pub fn put_op(&self) -> anyhow::Result<Op> {
        Ok(Op::Put(
            CF_QUEUE,
            self.qid.as_bytes().to_vec(),
            serde_json::to_vec(self)?,
        ))
    }

    /// The write that removes it.
    pub fn delete_op(qid: &str) -> Op {
        Op::Delete(CF_QUEUE, qid.as_bytes().to_vec())
    }

    /// All queued records.
    pub fn load_all(store: &Store) -> anyhow::Result<Vec<QueueRecord>> {
        store
            .scan_prefix(CF_QUEUE, b"")?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice(&v).map_err(|e| {
                    anyhow::anyhow!("corrupt queue record {}: {e}", String::from_utf8_lossy(&k))
                })
            })
            .collect()
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A new queue id: 13 hex digits of microseconds, 2 of worker, 3 of sequence — unique in
/// this process and across restarts (time moves on), and sortable by arrival.
pub fn new_qid(worker: usize) -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0) as u64;
    let seq = SEQ.fetch_add(1, Ordering::Relaxed) & 0xfff;
    format!(
        "{:013X}{:02X}{:03X}",
        micros & 0x1F_FFFF_FFFF_FFFF,
        worker & 0xff,
        seq
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn qids_are_unique_and_fixed_length() {
        let mut v: Vec<String> = (0..5000).map(|_| super::new_qid(1)).collect();
        assert!(v.iter().all(|q| q.len() == 18));
        v.sort();
        v.dedup();
        assert_eq!(v.len(), 5000);
    }

    #[test]
    fn failures_are_typed_and_old_text_records_still_read() {
        use super::{Failure, QueuedRcpt};
        let new = QueuedRcpt {
            target: super::QueuedTarget::Remote {
                address: "a@b.test".into(),
            },
            orig_to: "a@b.test".into(),
            status: super::RcptStatus::Deferred,
            last_error: Some(Failure::new("4.2.2", "mailbox over quota")),
        };
        let json = serde_json::to_string(&new).unwrap();
        assert!(json.contains(r#""dsn":"4.2.2""#), "{json}");
        assert_eq!(serde_json::from_str::<QueuedRcpt>(&json).unwrap(), new);
        let old = r#"{"target":{"kind":"local","mailbox":{"type":"user","name":"alice"},"file":"f"},
            "orig_to":"alice@x.test","status":"deferred","last_error":"4.2.2 mailbox over quota"}"#;
        let r: QueuedRcpt = serde_json::from_str(old).unwrap();
        assert_eq!(
            r.last_error,
            Some(Failure::new("4.2.2", "mailbox over quota"))
        );
        let odd: QueuedRcpt =
            serde_json::from_str(&old.replace("4.2.2 mailbox", "mailbox")).unwrap();
        assert_eq!(odd.last_error.unwrap().dsn, "4.0.0");
        assert!(
            matches!(r.target, super::QueuedTarget::Local { folder: None, ref flags, .. } if flags.is_empty())
        );
    }
}
