//! Sieve at local delivery (RFC 5228): for every copy that goes to a user's mailbox, the
//! administrator's "before" script, the user's active script and the "after" script run over
//! the message (after the filter, before the commit), and their actions become the copy's
//! deliveries: folders and flags, redirects (more deliveries of the same accepted message),
//! discard, reject (the SMTP reply when the message has one recipient, else a notice to the
//! sender), vacation replies (once per sender per period) and duplicate tracking.
//!
//! Side effects happen once: a vacation reply is recorded (durably) and queued before the
//! original is committed, so when the sender retries after a crash, the record stops a second
//! reply; redirects are deliveries of the original and share its commit; duplicate ids are
//! recorded after it.

use crate::context::Shared;
use crate::delivery::{Delivery, IncomingMessage, accept_message};
use crate::messages::DeliverLocal;
use bytes::Bytes;
use postcore_protocol::sieve::{
    self, Action, Envelope, Host, Limits, Outcome, Script,
    dates::Moment,
    interp::{DuplicateMark, VacationAction},
};
use postcore_scanner::Flag;
use postcore_storage::directory::{Directory, Mailbox, Target};
use postcore_storage::sieve::GLOBAL;
use std::sync::Arc;

/// What the filter knew, for spamtest and virustest (RFC 5235).
#[derive(Debug, Clone, Copy)]
pub struct ScanFacts {
    /// The antispam score and the deny threshold it is measured against, when judged.
    pub spam: Option<(f64, f64)>,
    /// Whether the antivirus scanned the message (delivered mail is then clean).
    pub virus_scanned: bool,
}

struct World<'a> {
    shared: &'a Shared,
    owner: &'a str,
    facts: ScanFacts,
}

impl Host for World<'_> {
    fn mailbox_exists(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("INBOX")
            || self
                .shared
                .mailboxes
                .get(self.owner, name)
                .ok()
                .flatten()
                .is_some()
    }
    fn duplicate_seen(&self, id: &str) -> bool {
        self.shared.sieve.store.duplicate_seen(self.owner, id)
    }
    fn spam_test(&self, percent: bool) -> String {
        match self.facts.spam {
            Some((score, max)) => sieve::interp::spamtest_value(score, max, percent),
            None => "0".into(),
        }
    }
    fn virus_test(&self) -> String {
        if self.facts.virus_scanned {
            "1".into()
        } else {
            "0".into()
        }
    }
    fn now(&self) -> Moment {
        let utc = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Moment { utc, offset: 0 }
    }
    fn include(&self, name: &str, global: bool) -> Result<Option<Arc<Script>>, String> {
        self.shared
            .sieve
            .compiled(if global { GLOBAL } else { self.owner }, name)
    }
}

/// A message the stage wants sent (vacation reply, rejection notice): to `to`, from the null
/// sender.
pub struct Generated {
    /// Recipient (the original's envelope sender).
    pub to: String,
    /// The message.
    pub data: Vec<u8>,
    /// What it is, for the log.
    pub what: &'static str,
}

/// The stage's result.
#[derive(Default)]
pub struct SieveResult {
    /// The deliveries after the scripts.
    pub deliveries: Vec<Delivery>,
    /// Refuse the whole message with this reason (a reject for its only recipient).
    pub refuse: Option<String>,
    /// Messages to send before the original is committed.
    pub generated: Vec<Generated>,
    /// Duplicate ids to record after the commit: (owner, mark).
    pub track: Vec<(String, DuplicateMark)>,
}

/// The inputs of one message.
pub struct SieveInput<'a> {
    /// Queue id, for the log.
    pub qid: &'a str,
    /// Envelope sender.
    pub from: &'a str,
    /// The message as it will be stored.
    pub data: &'a Bytes,
    /// Number of RCPT TO recipients.
    pub rcpt_count: usize,
    /// The filter's facts.
    pub facts: ScanFacts,
}

/// Runs the scripts of every user copy in `deliveries`.
pub fn apply(
    shared: &Shared,
    dir: &Directory,
    input: &SieveInput<'_>,
    deliveries: Vec<Delivery>,
) -> SieveResult {
    let mut out = SieveResult::default();
    let mut rejected: Vec<String> = Vec::new();
    for d in deliveries {
        let Target::Mailbox(Mailbox::User(login)) = &d.target else {
            out.deliveries.push(d);
            continue;
        };
        if d.orig_to == "hidden-copy" {
            out.deliveries.push(d);
            continue;
        }
        let login = login.clone();
        let chain = shared.sieve.chain(&login);
        if chain.is_empty() {
            out.deliveries.push(d);
            continue;
        }
        let env = Envelope {
            from: input.from.to_string(),
            to: d.orig_to.clone(),
        };
        let world = World {
            shared,
            owner: &login,
            facts: input.facts,
        };
        let outcome = run_chain(input.qid, &login, &chain, input.data, &env, &world);
        carry_out(
            shared,
            dir,
            input,
            &d,
            &login,
            &env,
            outcome,
            &mut out,
            &mut rejected,
        );
    }
    // RFC 5429 §2.1: with a single recipient the refusal is the SMTP reply; otherwise the
    // sender gets a notice (never the null sender or automatic mail: no backscatter loops).
    if !rejected.is_empty() {
        if input.rcpt_count == 1 && out.deliveries.is_empty() {
            out.refuse = rejected.into_iter().next();
        } else if let Some(n) = reject_notice(shared, input, &rejected) {
            out.generated.push(n);
        }
    }
    out
}

/// Mail the server makes itself (delivery status notifications, vacation replies and
/// rejection notices to local senders) goes through its local recipients' scripts like mail
/// from outside, then is committed. It comes from the null sender, so nothing a script does
/// can answer it (no vacation, no notice), and a reject just drops the copy.
pub async fn accept_generated(
    shared: &Arc<Shared>,
    delivery: &actix::Recipient<DeliverLocal>,
    mut msg: IncomingMessage,
) -> anyhow::Result<()> {
    let dir = shared.directory.snapshot();
    let data = msg.data.clone();
    let qid = msg.qid.clone();
    let from = msg.from.clone();
    let input = SieveInput {
        qid: &qid,
        from: &from,
        data: &data,
        rcpt_count: 0,
        facts: ScanFacts {
            spam: None,
            virus_scanned: false,
        },
    };
    let result = apply(shared, &dir, &input, std::mem::take(&mut msg.deliveries));
    msg.deliveries = result.deliveries;
    accept_message(shared, delivery, msg, std::time::Instant::now()).await?;
    for (owner, mark) in result.track {
        if let Err(e) =
            shared
                .sieve
                .store
                .duplicate_track(&owner, &mark.id, mark.seconds, mark.last)
        {
            tracing::warn!(owner, "sieve duplicate record: {e:#}");
        }
    }
    Ok(())
}

/// Runs before, user and after scripts; actions add up, the implicit keep stands only if no
/// script cancelled it, `stop` in one ends the chain. A script that fails keeps its copy
/// (its own actions dropped, RFC 5228 §2.10.6).
fn run_chain(
    qid: &str,
    login: &str,
    chain: &[crate::sieve_scripts::ChainEntry],
    data: &[u8],
    env: &Envelope,
    world: &World<'_>,
) -> Outcome {
    let mut total = Outcome {
        implicit_keep: true,
        ..Outcome::default()
    };
    let mut message: Option<Vec<u8>> = None;
    for (owner, name, script) in chain {
        let started = std::time::Instant::now();
        let o = match script {
            Ok(s) => {
                let input: &[u8] = message.as_deref().unwrap_or(data);
                sieve::run(s, input, env, world, Limits::default())
            }
            Err(e) => Outcome {
                implicit_keep: true,
                error: Some(format!("does not compile: {e}")),
                ..Outcome::default()
            },
        };
        metrics::counter!(crate::metrics::SIEVE_RUNS).increment(1);
        metrics::histogram!(crate::metrics::SIEVE_SECONDS).record(started.elapsed().as_secs_f64());
        let who = if owner == GLOBAL {
            format!("global script {name}")
        } else {
            format!("script {name}")
        };
        if let Some(e) = &o.error {
            metrics::counter!(crate::metrics::SIEVE_ERRORS).increment(1);
            tracing::warn!(
                qid,
                user = login,
                "{qid}: sieve: user={login} {who}: error: {e}; message kept"
            );
        }
        let stopped = o.stopped;
        if let Some(h) = &o.header {
            // editheader: the next script and the stored copy see the edited header.
            let body = postcore_protocol::imap::mime::split(message.as_deref().unwrap_or(data))
                .1
                .to_vec();
            let mut m = h.clone();
            m.extend_from_slice(&body);
            message = Some(m);
        }
        total.implicit_keep &= o.implicit_keep;
        total.keep_flags = o.keep_flags;
        total.actions.extend(o.actions);
        if stopped {
            break;
        }
    }
    total.header = message;
    total
}

#[allow(clippy::too_many_arguments)]
fn carry_out(
    shared: &Shared,
    dir: &Directory,
    input: &SieveInput<'_>,
    d: &Delivery,
    login: &str,
    env: &Envelope,
    outcome: Outcome,
    out: &mut SieveResult,
    rejected: &mut Vec<String>,
) {
    let qid = input.qid;
    let content = outcome.header.map(Bytes::from);
    let mut done: Vec<String> = Vec::new();
    let start = out.deliveries.len();
    // RFC 5228 §2.10.3: one copy per mailbox (the implicit keep, keep and fileinto, and the
    // chained scripts' stores, merge); the later flags win.
    let store = |out: &mut SieveResult,
                 folder: Option<String>,
                 (flags, keywords): (Vec<Flag>, Vec<String>)| {
        let same = |x: &&mut Delivery| x.target == d.target && x.folder == folder;
        if let Some(existing) = out.deliveries[start..].iter_mut().find(same) {
            existing.flags = flags;
            existing.keywords = keywords;
            return;
        }
        out.deliveries.push(Delivery {
            target: d.target.clone(),
            orig_to: d.orig_to.clone(),
            folder,
            flags,
            content: content.clone(),
            keywords,
        });
    };
    for a in outcome.actions {
        metrics::counter!(crate::metrics::SIEVE_ACTIONS, "action" => action_name(&a)).increment(1);
        match a {
            Action::Store {
                mailbox,
                flags,
                create,
                keep,
            } => {
                let folder = if keep {
                    d.folder.clone()
                } else {
                    target_folder(shared, login, &mailbox, create, qid)
                };
                done.push(format!("fileinto {}", folder.as_deref().unwrap_or("INBOX")));
                store(out, folder, merge_flags(&d.flags, &flags));
            }
            Action::Redirect { address, .. } => {
                match crate::pipeline::resolve_redirect(dir, &address) {
                    Some(targets) => {
                        done.push(format!("redirect <{address}>"));
                        for t in targets {
                            out.deliveries.push(Delivery {
                                target: t,
                                orig_to: d.orig_to.clone(),
                                folder: None,
                                flags: Vec::new(),
                                content: content.clone(),
                                keywords: Vec::new(),
                            });
                        }
                    }
                    None => tracing::warn!(
                        qid,
                        "{qid}: sieve: user={login} redirect <{address}> cannot be resolved: dropped"
                    ),
                }
            }
            Action::Discard => done.push("discard".into()),
            Action::Reject { reason, .. } => {
                done.push("reject".into());
                rejected.push(reason);
            }
            Action::Vacation(v) => {
                let note = vacation(shared, input, login, env, &v, &mut out.generated);
                done.push(format!("vacation ({note})"));
            }
            Action::TrackDuplicate(m) => out.track.push((login.to_string(), m)),
        }
    }
    if outcome.implicit_keep {
        let flags = merge_flags(&d.flags, &outcome.keep_flags);
        done.push(format!("keep {}", d.folder.as_deref().unwrap_or("INBOX")));
        store(out, d.folder.clone(), flags);
    }
    tracing::info!(
        qid,
        user = login,
        "{qid}: sieve: user={login} to=<{}> actions: {}",
        d.orig_to,
        done.join(", ")
    );
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Store { keep: true, .. } => "keep",
        Action::Store { .. } => "fileinto",
        Action::Redirect { .. } => "redirect",
        Action::Discard => "discard",
        Action::Reject { .. } => "reject",
        Action::Vacation(_) => "vacation",
        Action::TrackDuplicate(_) => "duplicate",
    }
}

/// Where fileinto stores: the folder when it exists or `:create` asks for it (RFC 5490 §3.2);
/// otherwise INBOX (RFC 5228 §4.1 lets a failed fileinto keep the message).
fn target_folder(
    shared: &Shared,
    login: &str,
    mailbox: &str,
    create: bool,
    qid: &str,
) -> Option<String> {
    if mailbox.eq_ignore_ascii_case("INBOX") {
        return None;
    }
    let exists = shared
        .mailboxes
        .get(login, mailbox)
        .ok()
        .flatten()
        .is_some();
    let valid =
        !mailbox.is_empty() && !mailbox.contains(['\r', '\n', '\0']) && !mailbox.starts_with('.');
    if valid && (exists || create) {
        Some(mailbox.to_string())
    } else {
        tracing::info!(
            qid,
            "{qid}: sieve: user={login} folder \"{mailbox}\" does not exist: kept in INBOX"
        );
        None
    }
}

/// The copy's flags and the script's (RFC 5232 §3): system flags, and keywords that are
/// valid IMAP atoms (RFC 9051 §9 `flag-keyword`); `\Recent` and unknown system flags dropped.
fn merge_flags(base: &[Flag], sieve: &[String]) -> (Vec<Flag>, Vec<String>) {
    let mut flags = base.to_vec();
    let mut keywords: Vec<String> = Vec::new();
    for f in sieve {
        let flag = match f.to_ascii_lowercase().as_str() {
            "\\seen" => Flag::Seen,
            "\\flagged" => Flag::Flagged,
            "\\answered" => Flag::Answered,
            "\\deleted" => Flag::Deleted,
            "\\draft" => Flag::Draft,
            _ if keyword(f) => {
                if !keywords.iter().any(|k| k.eq_ignore_ascii_case(f)) {
                    keywords.push(f.clone());
                }
                continue;
            }
            _ => continue,
        };
        if !flags.contains(&flag) {
            flags.push(flag);
        }
    }
    (flags, keywords)
}

/// RFC 9051 §9: a keyword is an atom (no `\`, no specials, no controls, not too long).
fn keyword(f: &str) -> bool {
    !f.is_empty()
        && f.len() <= 100
        && f.bytes()
            .all(|c| c > b' ' && c < 0x7f && !b"(){%*\"\\]".contains(&c))
}

/// RFC 5230: decides, records and composes a vacation reply; returns what happened, for the log.
fn vacation(
    shared: &Shared,
    input: &SieveInput<'_>,
    login: &str,
    env: &Envelope,
    v: &VacationAction,
    generated: &mut Vec<Generated>,
) -> String {
    if let Err(why) = sieve::vacation::eligible(input.data, env, v, &[]) {
        return format!("not sent: {why}");
    }
    match shared
        .sieve
        .store
        .vacation_claim(login, &v.handle, &env.from, v.period)
    {
        Ok(true) => {}
        Ok(false) => return "not sent: already replied in this period".into(),
        Err(e) => return format!("not sent: {e:#}"),
    }
    let now = postcore_storage::queue::now_secs();
    let mid = format!(
        "<{}.vacation.{login}@{}>",
        input.qid, shared.config.hostname
    );
    let data = sieve::vacation::compose(input.data, env, v, &mid, &crate::util::rfc5322_date(now));
    generated.push(Generated {
        to: env.from.clone(),
        data,
        what: "vacation reply",
    });
    "sent".into()
}

/// RFC 5429 §2.1 / RFC 3798: a disposition notification telling the sender the message was
/// refused, with the reason and the original's header; `None` for the null sender and for
/// automatic mail.
fn reject_notice(shared: &Shared, input: &SieveInput<'_>, reasons: &[String]) -> Option<Generated> {
    let env = Envelope {
        from: input.from.to_string(),
        to: String::new(),
    };
    if env.from.is_empty() {
        return None;
    }
    let m = sieve::mail::Mail::new(input.data);
    if m.named("auto-submitted")
        .next()
        .is_some_and(|f| !f.value().to_ascii_lowercase().starts_with("no"))
    {
        return None;
    }
    let host = &shared.config.hostname;
    let now = postcore_storage::queue::now_secs();
    let subject = m
        .named("subject")
        .next()
        .map(|f| f.value())
        .unwrap_or_default();
    let header = postcore_protocol::imap::mime::split(input.data).0;
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    let mut msg = format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\r\nTo: <{}>\r\nSubject: Rejected: {}\r\n\
         Date: {}\r\nMessage-ID: <{}.reject@{host}>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=disposition-notification; boundary=\"{}\"\r\n\r\n",
        clean(&env.from),
        clean(&subject),
        crate::util::rfc5322_date(now),
        input.qid,
        input.qid
    );
    msg.push_str(&format!(
        "--{}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour message was refused by the recipient's mail filter:\r\n\r\n{}\r\n\r\n",
        input.qid,
        reasons.iter().map(|r| clean(r)).collect::<Vec<_>>().join("\r\n")
    ));
    msg.push_str(&format!(
        "--{}\r\nContent-Type: message/disposition-notification\r\n\r\nReporting-UA: {host}; postcore\r\n\
         Final-Recipient: rfc822; {}\r\nDisposition: automatic-action/MDN-sent-automatically; deleted\r\n\r\n",
        input.qid,
        "undisclosed"
    ));
    msg.push_str(&format!(
        "--{}\r\nContent-Type: text/rfc822-headers\r\n\r\n",
        input.qid
    ));
    msg.push_str(&String::from_utf8_lossy(header));
    msg.push_str(&format!("\r\n--{}--\r\n", input.qid));
    Some(Generated {
        to: env.from,
        data: msg.into_bytes(),
        what: "rejection notice",
    })
}
