//! A scanner's judgement of one message.
//!
//! SMTP answers the end of data once for the whole message (RFC 5321 §4.1.1.4), so reject,
//! tempfail and discard are decisions about the message ([`MessageAction`]); what happens to
//! the copy of each recipient (kept in INBOX, filed into a folder with flags, redirected,
//! quarantined, dropped) is a [`Disposition`] per recipient.

use serde::{Deserialize, Serialize};

/// An SMTP reply the session sends instead of accepting the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Reply code: 4xx for a tempfail, 5xx for a reject (RFC 5321 §4.2).
    pub code: u16,
    /// Enhanced status code (RFC 3463), e.g. `5.7.1`.
    pub status: String,
    /// Human-readable text.
    pub text: String,
}

impl Reply {
    /// A reply of `code` with enhanced status `status` and `text`.
    pub fn new(code: u16, status: &str, text: &str) -> Reply {
        Reply {
            code,
            status: status.into(),
            text: text.into(),
        }
    }
}

/// What happens to the message as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "action")]
pub enum MessageAction {
    /// Accept it; each recipient's [`Disposition`] says where its copy goes.
    #[default]
    Accept,
    /// Accept it (250) and deliver it nowhere.
    Discard,
    /// Refuse it with a permanent (5xx) reply.
    Reject(Reply),
    /// Refuse it for now with a transient (4xx) reply: greylisting, a scanner that is not
    /// ready, a lookup that timed out.
    Tempfail(Reply),
}

/// An IMAP system flag set on a message as it is filed (RFC 9051 §2.3.2), stored as a
/// Maildir info letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub enum Flag {
    /// `\Draft` (Maildir `D`).
    Draft,
    /// `\Flagged` (Maildir `F`).
    Flagged,
    /// `\Answered` (Maildir `R`).
    Answered,
    /// `\Seen` (Maildir `S`).
    Seen,
    /// `\Deleted` (Maildir `T`).
    Deleted,
}

impl Flag {
    /// The Maildir info letter of the flag.
    pub fn maildir_letter(self) -> char {
        match self {
            Flag::Draft => 'D',
            Flag::Flagged => 'F',
            Flag::Answered => 'R',
            Flag::Seen => 'S',
            Flag::Deleted => 'T',
        }
    }

    /// The Maildir info part (`2,FS`) for a set of flags: letters in ASCII order, once each.
    pub fn maildir_info(flags: &[Flag]) -> String {
        let mut letters: Vec<char> = flags.iter().map(|f| f.maildir_letter()).collect();
        letters.sort_unstable();
        letters.dedup();
        let mut info = String::from("2,");
        info.extend(letters);
        info
    }
}

/// Where one recipient's copy goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase", tag = "disposition")]
pub enum Disposition {
    /// Deliver as the directory says (INBOX of each mailbox, or onward to another server).
    #[default]
    Keep,
    /// File into `mailbox` (a folder name such as `Junk`, `/` as separator) of each local
    /// mailbox the recipient resolves to, with `flags` set. Remote copies are sent as usual.
    FileInto {
        /// Folder name; `INBOX` for the inbox.
        mailbox: String,
        /// Flags set on the stored message.
        flags: Vec<Flag>,
    },
    /// Flagged as spam: filed into the `Junk` folder of each local mailbox whose owner wants
    /// spam moved there (the user's own "move spam to Junk", else the global setting), kept
    /// in INBOX otherwise. Remote copies are sent as usual.
    Junk,
    /// Do not deliver this recipient's copy at all.
    Discard,
    /// Deliver this recipient's copy to these addresses instead (resolved like RCPT TO).
    Redirect(Vec<String>),
    /// Hold this recipient's copy in the quarantine instead of delivering it.
    Quarantine {
        /// Why, for the administrator.
        reason: String,
    },
}

/// The disposition of one envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientVerdict {
    /// Index of the recipient in [`crate::ScanContext::rcpts`].
    pub recipient: usize,
    /// Where its copy goes.
    pub disposition: Disposition,
}

/// A change to the message's header section, made before it is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "edit")]
pub enum HeaderEdit {
    /// Prepend `name: value` (RFC 5322 §3.6: trace and filter fields go on top).
    Add {
        /// Field name.
        name: String,
        /// Field body, without the CRLF.
        value: String,
    },
    /// Remove every field called `name` (case-insensitive).
    Remove {
        /// Field name.
        name: String,
    },
}

/// A named finding that explains a verdict, with its weight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Symbol {
    /// Name, e.g. `BAYES_SPAM` or `EICAR_TEST_FILE`.
    pub name: String,
    /// Score it contributed.
    pub score: f64,
    /// Detail for logs (the matched rule, the attachment name, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A scanner's judgement of one message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Verdict {
    /// What happens to the message.
    pub action: MessageAction,
    /// Dispositions of recipients that are not [`Disposition::Keep`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<RecipientVerdict>,
    /// Header changes, applied in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderEdit>,
    /// The findings behind the verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<Symbol>,
    /// Total score.
    #[serde(default)]
    pub score: f64,
}

impl Verdict {
    /// Accept unchanged, every recipient kept.
    pub fn accept() -> Verdict {
        Verdict::default()
    }

    /// Refuse with `reply` (5xx reject or 4xx tempfail, chosen by the code's class).
    pub fn refuse(reply: Reply) -> Verdict {
        let action = if reply.code / 100 == 4 {
            MessageAction::Tempfail(reply)
        } else {
            MessageAction::Reject(reply)
        };
        Verdict {
            action,
            ..Verdict::default()
        }
    }

    /// The disposition of envelope recipient `index` (the last one given wins).
    pub fn disposition(&self, index: usize) -> &Disposition {
        static KEEP: Disposition = Disposition::Keep;
        self.recipients
            .iter()
            .rev()
            .find(|r| r.recipient == index)
            .map_or(&KEEP, |r| &r.disposition)
    }

    /// Sets the disposition of envelope recipient `index`.
    pub fn set_disposition(&mut self, index: usize, disposition: Disposition) {
        self.recipients.retain(|r| r.recipient != index);
        self.recipients.push(RecipientVerdict {
            recipient: index,
            disposition,
        });
    }

    /// Adds a finding and its score.
    pub fn add_symbol(&mut self, name: &str, score: f64, detail: Option<String>) {
        self.score += score;
        self.symbols.push(Symbol {
            name: name.into(),
            score,
            detail,
        });
    }

    /// `NAME(score) NAME(score)`, for the log line of the scan.
    pub fn symbols_text(&self) -> String {
        let parts: Vec<String> = self
            .symbols
            .iter()
            .map(|s| match &s.detail {
                // Rspamd's form: what the check found in brackets.
                Some(d) => format!("{}({:.2})[{d}]", s.name, s.score),
                None => format!("{}({:.2})", s.name, s.score),
            })
            .collect();
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuse_picks_reject_or_tempfail_by_class() {
        let r = Verdict::refuse(Reply::new(554, "5.7.1", "spam"));
        assert!(matches!(r.action, MessageAction::Reject(ref x) if x.code == 554));
        let t = Verdict::refuse(Reply::new(451, "4.7.1", "greylisted"));
        assert!(matches!(t.action, MessageAction::Tempfail(ref x) if x.status == "4.7.1"));
    }

    #[test]
    fn dispositions_default_to_keep_and_last_set_wins() {
        let mut v = Verdict::accept();
        v.set_disposition(1, Disposition::Discard);
        v.set_disposition(
            1,
            Disposition::FileInto {
                mailbox: "Junk".into(),
                flags: vec![Flag::Seen],
            },
        );
        assert_eq!(v.disposition(0), &Disposition::Keep);
        assert!(
            matches!(v.disposition(1), Disposition::FileInto { mailbox, .. } if mailbox == "Junk")
        );
        assert_eq!(v.recipients.len(), 1);
    }

    #[test]
    fn maildir_info_is_sorted_and_unique() {
        assert_eq!(
            Flag::maildir_info(&[Flag::Seen, Flag::Flagged, Flag::Seen]),
            "2,FS"
        );
        assert_eq!(Flag::maildir_info(&[]), "2,");
    }

    #[test]
    fn symbols_add_up_and_print() {
        let mut v = Verdict::accept();
        v.add_symbol("A", 1.5, None);
        v.add_symbol("B", -0.5, Some("x".into()));
        assert!((v.score - 1.0).abs() < 1e-9);
        assert_eq!(v.symbols_text(), "A(1.50) B(-0.50)[x]");
        // Kept with a queued message: must survive serialization.
        let json = serde_json::to_string(&v).expect("serialize");
        let back: Verdict = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, v);
    }
}
