//! THREAD and UID THREAD (RFC 5256): the matching messages' Subject, Date, Message-ID,
//! References and In-Reply-To from the header cache, threaded by
//! `postcore_protocol::imap::thread`.

use super::{Done, Session};
use postcore_protocol::imap::SearchKey;
use postcore_protocol::imap::mime;
use postcore_protocol::imap::thread::{self, Algorithm, Message};

impl Session {
    pub(super) async fn thread(&mut self, uid: bool, algorithm: Algorithm, key: SearchKey) -> Done {
        let (hits, headers) = self.matching_headers(uid, &key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        // Mailbox order: the matching positions ascend, so ties break by sequence number.
        let msgs: Vec<Message> = hits
            .iter()
            .map(|p| {
                let m = &sel.msgs[*p];
                let h = headers.get(m.uid).unwrap_or_default();
                Message {
                    id: if uid { m.uid } else { *p as u32 + 1 },
                    // RFC 5256 §2.2: the Date field, else the internal date.
                    sent: mime::field(h, "Date")
                        .and_then(|d| mime::parse_date(&d))
                        .unwrap_or(m.date),
                    subject: mime::field(h, "Subject").unwrap_or_default(),
                    message_id: mime::field(h, "Message-ID"),
                    references: mime::field(h, "References"),
                    in_reply_to: mime::field(h, "In-Reply-To"),
                }
            })
            .collect();
        let threads = thread::thread(algorithm, &msgs);
        // RFC 5256 §4: `"THREAD" [SP 1*thread-list]`.
        if threads.is_empty() {
            self.line("* THREAD");
        } else {
            self.line(&format!("* THREAD {}", thread::format(&threads)));
        }
        Done::ok(if uid {
            "UID THREAD completed"
        } else {
            "THREAD completed"
        })
    }
}
