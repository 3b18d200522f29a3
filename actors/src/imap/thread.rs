//! THREAD and UID THREAD (RFC 5256): the matching messages' threading keys (base subject,
//! sent date, Message-ID, References/In-Reply-To; cached per mailbox, see `sort_keys`),
//! threaded by `postcore_protocol::imap::thread`.

use super::{Done, Session};
use postcore_protocol::imap::SearchKey;
use postcore_protocol::imap::thread::{self, Algorithm, Message};

impl Session {
    pub(super) async fn thread(&mut self, uid: bool, algorithm: Algorithm, key: SearchKey) -> Done {
        let (hits, keys) = self.matching_keys(uid, &key).await;
        let Some(sel) = self.sel.as_ref() else {
            return Done::bad("No mailbox selected");
        };
        // Mailbox order: the matching positions ascend, so ties break by sequence number.
        let msgs: Vec<Message> = hits
            .iter()
            .zip(&keys)
            .map(|(p, k)| Message {
                id: if uid { sel.msgs[*p].uid } else { *p as u32 + 1 },
                sent: k.sent,
                keys: &k.thread,
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
