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
    /// Last error text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A queued message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
}
