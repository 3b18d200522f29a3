//! The end-of-data pipeline, stage by stage. The SMTP session runs it when a message has
//! arrived whole (DATA's final dot, BDAT LAST):
//!
//! 1. **transfer checks** — size limit, bare CR/LF policy ([`check_transfer`]);
//! 2. **parse** — the header fields the later stages need ([`HeaderView`]);
//! 3. **scan** — on port 25 first the DNS and authentication checks
//!    ([`crate::net_checks`]: facts for the scanner and an `Authentication-Results` field),
//!    then a [`crate::messages::Scan`] to the scanner actor, a [`Verdict`] back;
//! 4. **verdict** — reject / tempfail / discard, or a plan of deliveries with each
//!    recipient's disposition ([`plan`]);
//! 5. **header additions** — the scanner's edits ([`edit_headers`]), then the submission
//!    fix-ups, legal notice, DKIM signature and Received field (in the session);
//! 6. **durable commit** — local deliveries and the queue record
//!    ([`crate::delivery::accept_message`]), quarantined copies ([`quarantine`]), and only
//!    then the 250.
//!
//! The stages are plain functions over values, so each is tested without a connection.

use crate::delivery::Delivery;
use postcore_protocol::message;
use postcore_protocol::smtp::{Address, DataReceiver, codes};
use postcore_scanner::{Disposition, HeaderEdit, MessageAction, Reply, Verdict};
use postcore_storage::directory::{BareNewline, Directory, RcptResolution, Target};
use std::collections::HashSet;

/// A refusal at a stage: the reply and the reason for logs and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Metric label (`size`, `bare_newline`, `scanner`).
    pub reason: &'static str,
    /// The reply to send.
    pub reply: codes::Code,
    /// Detail for the log line.
    pub detail: String,
}

/// Stage 1: the size limit and the bare CR/LF policy (RFC 5321 §2.3.8). Returns whether bare
/// line ends were found (already normalised to CRLF by the receiver), or why it is refused.
pub fn check_transfer(
    rx: &DataReceiver,
    max_size: u64,
    bare: BareNewline,
) -> Result<bool, Refusal> {
    if rx.overflowed() {
        return Err(Refusal {
            reason: "size",
            reply: codes::MESSAGE_TOO_BIG,
            detail: format!("message over {max_size} octets"),
        });
    }
    let issue = rx.newline_issue();
    let bare_found = issue.bare_cr || issue.bare_lf;
    if bare_found && bare == BareNewline::Reject {
        return Err(Refusal {
            reason: "bare_newline",
            reply: codes::BARE_NEWLINE,
            detail: format!("bare_lf={} bare_cr={}", issue.bare_lf, issue.bare_cr),
        });
    }
    Ok(bare_found)
}

/// Stage 2: the header fields the pipeline reads, taken from the header section once (and
/// once more only when the verdict edited the header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderView {
    /// `Message-ID`, as written.
    pub message_id: Option<String>,
    /// True if the message has a `Date` field.
    pub has_date: bool,
    /// The domain of the `From:` address (DKIM signing and legal notices go by it).
    pub from_domain: Option<String>,
}

impl HeaderView {
    /// Reads the fields from `content`'s header section.
    pub fn parse(content: &[u8]) -> HeaderView {
        let h = crate::headers::Headers::parse(content);
        HeaderView {
            message_id: h.message_id(),
            has_date: h.has(mail_parser::HeaderName::Date),
            from_domain: h.from_domain(),
        }
    }
}

/// One envelope recipient as the pipeline sees it: the RCPT TO address and what the
/// directory expanded it to.
#[derive(Debug, Clone)]
pub struct EnvelopeRcpt {
    /// The address as given in RCPT TO.
    pub address: String,
    /// Its deliveries.
    pub targets: Vec<Target>,
}

/// Stage 4's result: what to answer and what to store.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// Answer with this reply; store nothing.
    Refuse(Reply),
    /// Answer 250; store these.
    Accept {
        /// Deliveries, each with its folder and flags.
        deliveries: Vec<Delivery>,
        /// Copies held in quarantine: (RCPT TO address, reason).
        quarantined: Vec<(String, String)>,
        /// RCPT TO addresses whose copy is dropped.
        discarded: Vec<String>,
    },
}

/// Stage 4: turns the verdict into a plan. `resolve` expands a redirect address (like RCPT
/// TO would); `hidden` are the hidden copies the directory adds (always kept).
pub fn plan(
    verdict: &Verdict,
    rcpts: &[EnvelopeRcpt],
    hidden: Vec<Target>,
    resolve: &dyn Fn(&str) -> Option<Vec<Target>>,
    wants_junk: &dyn Fn(&Target) -> bool,
) -> Plan {
    match &verdict.action {
        MessageAction::Reject(r) | MessageAction::Tempfail(r) => return Plan::Refuse(r.clone()),
        MessageAction::Discard => {
            return Plan::Accept {
                deliveries: Vec::new(),
                quarantined: Vec::new(),
                discarded: rcpts.iter().map(|r| r.address.clone()).collect(),
            };
        }
        MessageAction::Accept => {}
    }
    let mut deliveries = Vec::new();
    let mut quarantined = Vec::new();
    let mut discarded = Vec::new();
    let mut seen = HashSet::new();
    let mut push =
        |t: Target, orig: &str, folder: Option<&str>, flags: &[postcore_scanner::Flag]| {
            if seen.insert(t.clone()) {
                let local = matches!(t, Target::Mailbox(_));
                deliveries.push(Delivery {
                    target: t,
                    orig_to: orig.to_string(),
                    folder: folder.filter(|_| local).map(str::to_string),
                    flags: if local { flags.to_vec() } else { Vec::new() },
                    content: None,
                    keywords: Vec::new(),
                });
            }
        };
    for (i, r) in rcpts.iter().enumerate() {
        match verdict.disposition(i) {
            Disposition::Keep => r
                .targets
                .iter()
                .for_each(|t| push(t.clone(), &r.address, None, &[])),
            Disposition::FileInto { mailbox, flags } => {
                let folder = (mailbox != "INBOX").then_some(mailbox.as_str());
                r.targets
                    .iter()
                    .for_each(|t| push(t.clone(), &r.address, folder, flags));
            }
            Disposition::Junk => r.targets.iter().for_each(|t| {
                let folder = wants_junk(t).then_some("Junk");
                push(t.clone(), &r.address, folder, &[])
            }),
            Disposition::Discard => discarded.push(r.address.clone()),
            Disposition::Quarantine { reason } => {
                quarantined.push((r.address.clone(), reason.clone()))
            }
            Disposition::Redirect(to) => {
                for a in to {
                    match resolve(a) {
                        Some(ts) => ts.into_iter().for_each(|t| push(t, &r.address, None, &[])),
                        None => {
                            tracing::warn!(redirect = %a, "redirect address cannot be resolved: dropped")
                        }
                    }
                }
            }
        }
    }
    for t in hidden {
        push(t, "hidden-copy", None, &[]);
    }
    Plan::Accept {
        deliveries,
        quarantined,
        discarded,
    }
}

/// Where a redirect to `addr` goes, as RCPT TO would resolve it: local mailboxes, or the
/// address itself when its domain is not ours; `None` for a local address that does not exist.
pub fn resolve_redirect(dir: &Directory, addr: &str) -> Option<Vec<Target>> {
    match Address::parse(addr, true).map(|a| dir.resolve(&a)) {
        Ok(RcptResolution::Accept { targets, .. }) => Some(targets),
        Ok(RcptResolution::Foreign) => Some(vec![Target::Remote(addr.to_string())]),
        _ => None,
    }
}

/// Stage 5: applies a scanner's header edits to `content` (see
/// [`postcore_protocol::message::edit_header_section`]: removals drop every field of that
/// name, additions go on top, no edit can inject a field or end the header section).
pub fn edit_headers(content: Vec<u8>, edits: &[HeaderEdit]) -> Vec<u8> {
    if edits.is_empty() {
        return content;
    }
    let mut remove = Vec::new();
    let mut add = Vec::new();
    for e in edits {
        match e {
            HeaderEdit::Remove { name } => remove.push(name.as_str()),
            HeaderEdit::Add { name, .. } if !message::valid_field_name(name) => {
                tracing::warn!(field = %name, "scanner header edit with an invalid name skipped");
            }
            HeaderEdit::Add { name, value } => add.push((name.as_str(), value.as_str())),
        }
    }
    message::edit_header_section(content, &remove, &add)
}

/// Stage 6, for quarantined copies: stores the message durably under
/// `<data_dir>/quarantine/<qid>` (written to a temporary name, fsynced, renamed, directory
/// fsynced), with the reasons in `<qid>.reason`. Runs before the 250.
pub fn quarantine(
    data_dir: &std::path::Path,
    qid: &str,
    data: &[u8],
    held: &[(String, String)],
) -> std::io::Result<std::path::PathBuf> {
    use std::io::Write;
    let dir = data_dir.join("quarantine");
    std::fs::create_dir_all(&dir)?;
    let write = |name: &str, bytes: &[u8]| -> std::io::Result<std::path::PathBuf> {
        let tmp = dir.join(format!(".{name}.tmp"));
        let dst = dir.join(name);
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &dst)?;
        Ok(dst)
    };
    let reasons: String = held
        .iter()
        .map(|(rcpt, why)| format!("{rcpt}\t{why}\n"))
        .collect();
    write(&format!("{qid}.reason"), reasons.as_bytes())?;
    let path = write(qid, data)?;
    std::fs::File::open(&dir)?.sync_all()?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use postcore_scanner::Flag;
    use postcore_storage::directory::Mailbox;

    fn rcpts() -> Vec<EnvelopeRcpt> {
        vec![
            EnvelopeRcpt {
                address: "alice@example.test".into(),
                targets: vec![Target::Mailbox(Mailbox::User("alice".into()))],
            },
            EnvelopeRcpt {
                address: "bob@example.test".into(),
                targets: vec![Target::Mailbox(Mailbox::User("bob".into()))],
            },
            EnvelopeRcpt {
                address: "far@remote.test".into(),
                targets: vec![Target::Remote("far@remote.test".into())],
            },
        ]
    }

    fn no_resolve(_: &str) -> Option<Vec<Target>> {
        None
    }

    fn no_junk(_: &Target) -> bool {
        false
    }

    #[test]
    fn junk_files_into_junk_where_the_owner_wants_it() {
        let mut v = Verdict::accept();
        v.set_disposition(0, Disposition::Junk);
        v.set_disposition(1, Disposition::Junk);
        v.set_disposition(2, Disposition::Junk);
        // alice wants spam moved, bob does not; the remote copy goes out as usual.
        let wants = |t: &Target| matches!(t, Target::Mailbox(Mailbox::User(u)) if u == "alice");
        let Plan::Accept { deliveries, .. } = plan(&v, &rcpts(), vec![], &no_resolve, &wants)
        else {
            panic!("refused")
        };
        let folders: Vec<Option<&str>> = deliveries.iter().map(|d| d.folder.as_deref()).collect();
        assert_eq!(folders, [Some("Junk"), None, None]);
    }

    #[test]
    fn reject_and_tempfail_answer_with_the_verdicts_reply() {
        let v = Verdict::refuse(Reply::new(554, "5.7.1", "Rejected as spam"));
        assert_eq!(
            plan(&v, &rcpts(), vec![], &no_resolve, &no_junk),
            Plan::Refuse(Reply::new(554, "5.7.1", "Rejected as spam"))
        );
        let v = Verdict::refuse(Reply::new(451, "4.7.1", "Greylisted, try again"));
        assert!(
            matches!(plan(&v, &rcpts(), vec![], &no_resolve, &no_junk), Plan::Refuse(r) if r.code == 451)
        );
    }

    #[test]
    fn accept_keeps_every_recipient_and_hidden_copies() {
        let hidden = vec![Target::Mailbox(Mailbox::User("archive".into()))];
        let Plan::Accept { deliveries, .. } =
            plan(&Verdict::accept(), &rcpts(), hidden, &no_resolve, &no_junk)
        else {
            panic!("refused")
        };
        let to: Vec<&str> = deliveries.iter().map(|d| d.orig_to.as_str()).collect();
        assert_eq!(
            to,
            [
                "alice@example.test",
                "bob@example.test",
                "far@remote.test",
                "hidden-copy"
            ]
        );
        assert!(
            deliveries
                .iter()
                .all(|d| d.folder.is_none() && d.flags.is_empty())
        );
    }

    #[test]
    fn per_recipient_dispositions() {
        let mut v = Verdict::accept();
        v.set_disposition(
            0,
            Disposition::FileInto {
                mailbox: "Junk".into(),
                flags: vec![Flag::Seen],
            },
        );
        v.set_disposition(
            1,
            Disposition::Quarantine {
                reason: "virus".into(),
            },
        );
        v.set_disposition(2, Disposition::Redirect(vec!["carol@example.test".into()]));
        let resolve = |a: &str| {
            (a == "carol@example.test")
                .then(|| vec![Target::Mailbox(Mailbox::User("carol".into()))])
        };
        let Plan::Accept {
            deliveries,
            quarantined,
            discarded,
        } = plan(&v, &rcpts(), vec![], &resolve, &no_junk)
        else {
            panic!("refused")
        };
        assert_eq!(deliveries.len(), 2);
        assert_eq!(deliveries[0].folder.as_deref(), Some("Junk"));
        assert_eq!(deliveries[0].flags, vec![Flag::Seen]);
        assert_eq!(
            deliveries[1].target,
            Target::Mailbox(Mailbox::User("carol".into()))
        );
        assert_eq!(deliveries[1].orig_to, "far@remote.test");
        assert_eq!(
            quarantined,
            vec![("bob@example.test".to_string(), "virus".to_string())]
        );
        assert!(discarded.is_empty());
        let mut v = Verdict::accept();
        v.action = MessageAction::Discard;
        let Plan::Accept {
            deliveries,
            discarded,
            ..
        } = plan(&v, &rcpts(), vec![], &no_resolve, &no_junk)
        else {
            panic!("refused")
        };
        assert!(deliveries.is_empty());
        assert_eq!(discarded.len(), 3);
    }

    #[test]
    fn header_edits_add_on_top_remove_folded_fields_and_never_inject() {
        let msg = b"X-Spam: old\r\n\tcontinued\r\nSubject: hi\r\nx-spam: again\r\n\r\nX-Spam: in body\r\n";
        let edits = vec![
            HeaderEdit::Remove {
                name: "X-Spam".into(),
            },
            HeaderEdit::Add {
                name: "X-Spam".into(),
                value: "yes\r\nBcc: evil@example.test\r\n\r\nbody".into(),
            },
            HeaderEdit::Add {
                name: "Bad Name".into(),
                value: "x".into(),
            },
        ];
        let out = String::from_utf8(edit_headers(msg.to_vec(), &edits)).unwrap();
        assert_eq!(
            out,
            "X-Spam: yes  Bcc: evil@example.test    body\r\nSubject: hi\r\n\r\nX-Spam: in body\r\n"
        );
    }

    #[test]
    fn quarantine_is_written_with_its_reasons() {
        let tmp = tempfile::tempdir().unwrap();
        let held = vec![("bob@example.test".to_string(), "virus Eicar".to_string())];
        let p = quarantine(tmp.path(), "QID1", b"Subject: x\r\n\r\ny\r\n", &held).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"Subject: x\r\n\r\ny\r\n");
        let why = std::fs::read_to_string(tmp.path().join("quarantine/QID1.reason")).unwrap();
        assert_eq!(why, "bob@example.test\tvirus Eicar\n");
    }
}
