//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), and the end of a transaction: size and
//! newline checks, the Received header (RFC 5321 §4.4, RFC 3848), durable acceptance.

use super::session::{Next, ReadEnd, Session, Transaction};
use crate::body::{BodySpool, Content};
use crate::config::OnTimeout;
use crate::context::ListenerKind;
use crate::delivery::{Delivery, IncomingMessage, accept_message};
use crate::messages::Scan;
use crate::pipeline::{self, EnvelopeRcpt, HeaderView, Plan};
use crate::scanner::ScanError;
use crate::util::{header_section, rfc5322_date};
use bytes::Bytes;
use postcore_protocol::smtp::{DataEvent, DataReceiver, Reply, codes};
use postcore_scanner::{ScanContext, Verdict};
use postcore_storage::directory::{Directory, Mailbox, Target};
use postcore_storage::queue::{ScanNote, new_qid, now_secs};
use std::time::{Duration, Instant};

/// The verdict's score and symbols for the queue record; `None` when it has neither.
fn scan_note(v: &Verdict) -> Option<ScanNote> {
    (v.score != 0.0 || !v.symbols.is_empty()).then(|| ScanNote {
        score: v.score,
        symbols: v
            .symbols
            .iter()
            .map(|s| format!("{}({:.2})", s.name, s.score))
            .collect(),
    })
}

/// Copies held in quarantine: (RCPT TO address, reason).
type Held = Vec<(String, String)>;

/// Where a redirect address delivers: resolved like RCPT TO (local mailboxes, aliases), or
/// onward to another server for a foreign domain. `None` for an unknown local address.
/// Whether flagged mail for `t` goes into its Junk folder: the user's own choice, else the
/// global `filter.spam.move_to_junk`.
fn wants_junk(dir: &Directory, t: &Target) -> bool {
    let global = dir.settings.filter.spam.move_to_junk;
    match t {
        Target::Mailbox(Mailbox::User(login)) => dir
            .users
            .get(login)
            .and_then(|u| u.spam_to_junk)
            .unwrap_or(global),
        Target::Mailbox(_) => global,
        Target::Remote(_) => false,
    }
}

impl Session {
    fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.ctx.shared.config.limits.data_timeout_secs)
    }

    fn transaction_ready(&mut self) -> bool {
        match &self.tx {
            None => {
                self.send(codes::NEED_RCPT);
                false
            }
            Some(t) if t.rcpts.is_empty() => {
                self.send(codes::NO_VALID_RECIPIENTS);
                false
            }
            Some(_) => true,
        }
    }

    /// True once a transfer that began at `started` is past its grace period and has
    /// averaged less than the configured minimum rate (`received` octets so far): a client
    /// sending a few octets at a time cannot hold a transaction open for ever.
    fn too_slow(&self, started: Instant, received: usize) -> bool {
        let l = &self.ctx.shared.config.limits;
        let elapsed = started.elapsed().as_secs_f64();
        l.data_min_rate > 0
            && elapsed > l.data_grace_secs as f64
            && (received as f64) < l.data_min_rate as f64 * elapsed
    }

    async fn read_timeout_close(&mut self) -> Next {
        self.send(codes::TIMEOUT.from_host(self.hostname()));
        tracing::info!(client = %self.peer, "timeout while receiving message data");
        self.tx = None;
        Next::Close
    }

    pub(super) async fn data(&mut self) -> Next {
        if !self.transaction_ready() {
            return Next::Continue;
        }
        let max = self
            .tx
            .as_ref()
            .map_or(0, |t| t.dir.settings.max_message_size) as usize;
        self.send(codes::START_DATA);
        if self.flush().await.is_err() {
            return Next::Close;
        }
        let mut rx = DataReceiver::for_data(max);
        let mut spool = self.body_spool();
        let started = Instant::now();
        let mut received = 0;
        loop {
            match rx.ingest(&self.conn.inbuf) {
                DataEvent::End { consumed } => {
                    self.conn.inbuf.drain(..consumed);
                    break;
                }
                DataEvent::NeedMore => {
                    received += self.conn.inbuf.len();
                    self.conn.inbuf.clear();
                }
            }
            spool.absorb(&mut rx).await;
            if self.too_slow(started, received) {
                tracing::info!(client = %self.peer, received, "DATA slower than limits.data_min_rate");
                return self.read_timeout_close().await;
            }
            match self.fill(self.data_timeout()).await {
                Ok(_) => {}
                Err(ReadEnd::Closed) => {
                    tracing::info!(client = %self.peer, "lost connection after DATA");
                    return Next::Close;
                }
                Err(ReadEnd::Timeout) => return self.read_timeout_close().await,
            }
        }
        self.finish(rx, spool).await
    }

    fn body_spool(&self) -> BodySpool {
        BodySpool::new(Content::incoming_dir(&self.ctx.shared.config.data_dir))
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Next {
        // RFC 3030 §2: the chunk is always read, even when it will be refused, so the
        // session stays in step with the client.
        let refusal = match &self.tx {
            None => Some(codes::NEED_MAIL),
            Some(t) if t.rcpts.is_empty() => Some(codes::NO_VALID_RECIPIENTS),
            _ => None,
        };
        let max = self
            .tx
            .as_ref()
            .map_or(0, |t| t.dir.settings.max_message_size) as usize;
        let fresh = self.body_spool();
        let (mut rx, mut spool) = match self.tx.as_mut() {
            Some(t) if refusal.is_none() => t
                .bdat
                .take()
                .unwrap_or_else(|| (DataReceiver::for_bdat(max), fresh)),
            _ => (DataReceiver::for_bdat(0), fresh),
        };
        let mut remaining = size;
        let started = Instant::now();
        loop {
            let n = (remaining.min(self.conn.inbuf.len() as u64)) as usize;
            if n > 0 {
                rx.ingest(&self.conn.inbuf[..n]);
                self.conn.inbuf.drain(..n);
                remaining -= n as u64;
                spool.absorb(&mut rx).await;
            }
            if remaining == 0 {
                break;
            }
            if self.too_slow(started, (size - remaining) as usize) {
                tracing::info!(client = %self.peer, "BDAT chunk slower than limits.data_min_rate");
                return self.read_timeout_close().await;
            }
            match self.fill(self.data_timeout()).await {
                Ok(_) => {}
                Err(ReadEnd::Closed) => return Next::Close,
                Err(ReadEnd::Timeout) => return self.read_timeout_close().await,
            }
        }
        if let Some(code) = refusal {
            self.send(code);
            return Next::Continue;
        }
        if !last {
            if let Some(t) = self.tx.as_mut() {
                t.bdat = Some((rx, spool));
            }
            self.send(codes::CHUNK_RECEIVED.with_text(format!("{size} octets received")));
            return Next::Continue;
        }
        rx.finish_chunks();
        self.finish(rx, spool).await
    }

    /// BURL (RFC 4468): a chunk taken from the message or part an authorized IMAP URL names,
    /// fetched for the authenticated user (URLAUTH `submit+<user>`, `authuser` or
    /// `anonymous`); otherwise as BDAT (RFC 3030), which it may follow and precede.
    pub(super) async fn burl(&mut self, url: &str, last: bool) -> Next {
        let Some(user) = self.auth.clone() else {
            self.send(codes::AUTH_REQUIRED);
            return Next::Continue;
        };
        if !self.transaction_ready() {
            return Next::Continue;
        }
        let requester = crate::imap::urlauth::Requester::Submit(&user);
        let Some(data) = crate::imap::urlauth::fetch_authorized(&self.ctx.shared, url, requester)
        else {
            tracing::info!(client = %self.peer, user = %user, "BURL: URL not resolved");
            // The transaction cannot be completed as the client meant it: it is dropped.
            self.tx = None;
            self.send(codes::URL_RESOLUTION_FAILED);
            return Next::Continue;
        };
        let max = self
            .tx
            .as_ref()
            .map_or(0, |t| t.dir.settings.max_message_size) as usize;
        let fresh = self.body_spool();
        let (mut rx, mut spool) = self
            .tx
            .as_mut()
            .and_then(|t| t.bdat.take())
            .unwrap_or_else(|| (DataReceiver::for_bdat(max), fresh));
        rx.ingest(&data);
        spool.absorb(&mut rx).await;
        if !last {
            if let Some(t) = self.tx.as_mut() {
                t.bdat = Some((rx, spool));
            }
            let n = data.len();
            self.send(codes::CHUNK_RECEIVED.with_text(format!("{n} octets received")));
            return Next::Continue;
        }
        rx.finish_chunks();
        self.finish(rx, spool).await
    }

    /// Ends the transaction by running the end-of-data pipeline (see [`crate::pipeline`]):
    /// transfer checks, parse, scan, verdict, header additions, durable commit, reply.
    async fn finish(&mut self, rx: DataReceiver, spool: BodySpool) -> Next {
        let started = Instant::now();
        let Some(tx) = self.tx.take() else {
            self.send(codes::NO_TRANSACTION);
            return Next::Continue;
        };
        if !self.transfer_checks(&tx, &rx) {
            return Next::Continue;
        }
        let content = match spool.finish(rx).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(client = %self.peer, "message content not stored: {e}");
                metrics::counter!(crate::metrics::REJECTED, "reason" => "storage").increment(1);
                self.send(codes::INSUFFICIENT_STORAGE);
                return Next::Continue;
            }
        };
        let arrival = now_secs();
        let qid = new_qid(self.ctx.id);
        let view = HeaderView::parse(&content.bytes);
        let rcpts: Vec<EnvelopeRcpt> = tx
            .rcpts
            .iter()
            .map(|r| EnvelopeRcpt {
                address: r.address.to_string(),
                targets: r.targets.clone(),
            })
            .collect();
        let from = tx.from.as_ref().map(|a| a.to_string()).unwrap_or_default();
        let mid = view.message_id.as_deref();
        self.log_arrival(&qid, mid, &from, content.bytes.len(), rcpts.len());
        let net = self.network_checks(&qid, &from, &content.bytes).await;
        let (facts, auth_results) = match net {
            Some(n) => (Some(n.facts), Some(n.auth_results)),
            None => (None, None),
        };
        let verdict = self
            .scan(&qid, &from, &rcpts, content.bytes.clone(), facts)
            .await;
        let Some((deliveries, quarantined)) = self.judge(&qid, &tx, &verdict, &rcpts) else {
            return Next::Continue;
        };
        // Only the header section is edited and copied; the body stays where it is.
        let header_len = header_section(&content.bytes).len();
        let head = pipeline::edit_headers(content.bytes[..header_len].to_vec(), &verdict.headers);
        // RFC 8601 §5: fields claiming our authserv-id came from outside; they go.
        let head = postcore_protocol::message::strip_own_auth_results(&head, self.hostname())
            .unwrap_or(head);
        // Our own additions go by the header as the verdict left it.
        let view = if verdict.headers.is_empty() {
            view
        } else {
            HeaderView::parse(&head)
        };
        let (data, message_id) = match self.add_headers(
            &qid,
            &tx,
            arrival,
            view,
            &head,
            &content,
            header_len,
            auth_results.as_deref(),
        ) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(qid, "{qid}: not accepted, message not assembled: {e}");
                self.send(codes::INSUFFICIENT_STORAGE);
                return Next::Continue;
            }
        };
        drop(content);
        if !self.hold_quarantined(&qid, &data, &quarantined) {
            return Next::Continue;
        }
        let Some((mut deliveries, track)) = self
            .sieve(&qid, &tx, &from, &data, &verdict, deliveries)
            .await
        else {
            return Next::Continue;
        };
        let held = self.seal_quarantined(&qid, &tx, &verdict, &rcpts, &data, &mut deliveries);
        let deliveries = self
            .forward_with_srs(&qid, &from, message_id.as_deref(), &data, deliveries)
            .await;
        let msg = IncomingMessage {
            qid,
            from,
            message_id,
            data: data.clone(),
            arrival,
            deliveries,
            scan: scan_note(&verdict),
            extra_ops: Vec::new(),
        };
        if self.commit(msg, started).await {
            for (owner, mark) in track {
                let store = &self.ctx.shared.sieve.store;
                if let Err(e) = store.duplicate_track(&owner, &mark.id, mark.seconds, mark.last) {
                    tracing::warn!(owner, "sieve duplicate record: {e:#}");
                }
            }
            if let Some(stamp) = &held {
                self.notify_quarantined(&tx, stamp, &verdict, &data).await;
            }
        }
        Next::Continue
    }

    /// Stage 6, Sieve ([`crate::sieve_stage`]): the users' scripts turn their copies into
    /// deliveries; a reject of the only recipient is the reply (`None`, the reply queued);
    /// vacation replies and rejection notices are queued before the message is committed.
    async fn sieve(
        &mut self,
        qid: &str,
        tx: &Transaction,
        from: &str,
        data: &Bytes,
        verdict: &Verdict,
        deliveries: Vec<Delivery>,
    ) -> Option<(
        Vec<Delivery>,
        Vec<(String, postcore_protocol::sieve::interp::DuplicateMark)>,
    )> {
        let policy = &tx.dir.settings.filter;
        let scanned = !self.filter_exempt(&tx.dir);
        let facts = crate::sieve_stage::ScanFacts {
            spam: (scanned && policy.spam.enabled)
                .then(|| (verdict.score, policy.spam.deny_score.unwrap_or(15.0))),
            virus_scanned: scanned && policy.antivirus,
        };
        let input = crate::sieve_stage::SieveInput {
            qid,
            from,
            data,
            rcpt_count: tx.rcpts.len(),
            facts,
        };
        let shared = self.ctx.shared.clone();
        let result = crate::sieve_stage::apply(&shared, &tx.dir, &input, deliveries);
        if let Some(reason) = result.refuse {
            tracing::info!(qid, client = %self.peer, "{qid}: reject: sieve: {reason}");
            metrics::counter!(crate::metrics::REJECTED, "reason" => "sieve").increment(1);
            let text: String = reason
                .chars()
                .filter(|c| !c.is_control())
                .take(400)
                .collect();
            self.reply(
                Reply::error_from(550, "5.7.1", &text)
                    .unwrap_or_else(|| codes::POLICY_REJECTED.into()),
            );
            return None;
        }
        for g in result.generated {
            let Some(targets) = pipeline::resolve_redirect(&tx.dir, &g.to) else {
                continue;
            };
            let reply_qid = new_qid(self.ctx.id);
            tracing::info!(
                qid,
                "{qid}: sieve: {} to <{}> queued as {reply_qid}",
                g.what,
                g.to
            );
            let msg = IncomingMessage {
                qid: reply_qid,
                from: String::new(),
                message_id: None,
                data: Bytes::from(g.data),
                arrival: now_secs(),
                deliveries: targets
                    .into_iter()
                    .map(|t| Delivery::plain(t, g.to.clone()))
                    .collect(),
                scan: None,
                extra_ops: Vec::new(),
            };
            let shared = &self.ctx.shared;
            if let Err(e) =
                crate::sieve_stage::accept_generated(shared, &self.ctx.delivery, msg).await
            {
                tracing::error!(qid, "{qid}: sieve: {} not queued: {e:#}", g.what);
            }
        }
        Some((result.deliveries, result.track))
    }

    /// Stage 1: size and bare CR/LF; false when refused (the reply is queued).
    fn transfer_checks(&mut self, tx: &Transaction, rx: &DataReceiver) -> bool {
        let settings = &tx.dir.settings;
        match pipeline::check_transfer(rx, settings.max_message_size, settings.bare_newline) {
            Ok(bare) => {
                if bare {
                    tracing::info!(client = %self.peer, "bare CR/LF in message data normalised to CRLF");
                }
                true
            }
            Err(r) => {
                self.refuse(r);
                false
            }
        }
    }

    /// Stage 4: the verdict as deliveries and quarantined copies; `None` when the verdict
    /// refuses the message (the reply is queued). Dropped copies are logged here.
    fn judge(
        &mut self,
        qid: &str,
        tx: &Transaction,
        verdict: &Verdict,
        rcpts: &[EnvelopeRcpt],
    ) -> Option<(Vec<Delivery>, Held)> {
        let rcpt_domains: Vec<&str> = tx.rcpts.iter().map(|r| r.address.domain.as_str()).collect();
        let hidden = tx.dir.hidden_copies(&rcpt_domains);
        let resolve = |a: &str| pipeline::resolve_redirect(&tx.dir, a);
        let wants_junk = |t: &Target| wants_junk(&tx.dir, t);
        match pipeline::plan(verdict, rcpts, hidden, &resolve, &wants_junk) {
            Plan::Refuse(r) => {
                self.refuse_verdict(qid, r);
                None
            }
            Plan::Accept {
                deliveries,
                quarantined,
                discarded,
            } => {
                for d in &discarded {
                    tracing::info!(
                        qid,
                        "{qid}: to=<{d}>, relay=none, dsn=2.0.0, status=discarded (scanner verdict)"
                    );
                }
                Some((deliveries, quarantined))
            }
        }
    }

    /// Stage 6, quarantine: stores quarantined copies durably; false (and a 451 queued)
    /// when that fails.
    fn hold_quarantined(&mut self, qid: &str, data: &[u8], held: &[(String, String)]) -> bool {
        if held.is_empty() {
            return true;
        }
        match pipeline::quarantine(&self.ctx.shared.config.data_dir, qid, data, held) {
            Ok(path) => {
                for (rcpt, why) in held {
                    tracing::info!(
                        qid,
                        "{qid}: to=<{rcpt}>, relay=quarantine, dsn=2.0.0, status=quarantined ({why}) {}",
                        path.display()
                    );
                }
                true
            }
            Err(e) => {
                tracing::error!(qid, "{qid}: not accepted, quarantine write failed: {e:#}");
                self.send(codes::STORAGE_FAILURE);
                false
            }
        }
    }

    /// Stage 6, durable commit: local deliveries and the queue record, then the reply.
    /// Copies that leave for another domain on a local recipient's behalf (a forward, an
    /// external destination, a Sieve redirect) go as their own queued message whose envelope
    /// sender is rewritten with SRS ([`crate::srs`]), so SPF holds at the next hop and bounces
    /// come back through us. Each is recorded by Message-ID and target in the same commit, so
    /// the sender's retry after a crash does not forward it twice. A copy that cannot be
    /// queued that way stays in the message, with the original sender.
    async fn forward_with_srs(
        &mut self,
        qid: &str,
        from: &str,
        message_id: Option<&str>,
        data: &Bytes,
        deliveries: Vec<Delivery>,
    ) -> Vec<Delivery> {
        // A domain's hidden copies (its BCC address) keep the original sender: they are not sent
        // on a recipient's behalf.
        let is_forward = |d: &Delivery| {
            d.orig_to != "hidden-copy"
                && matches!(&d.target, Target::Remote(a) if !a.eq_ignore_ascii_case(&d.orig_to))
        };
        if from.is_empty() || !deliveries.iter().any(is_forward) {
            return deliveries;
        }
        let (forwards, mut keep): (Vec<Delivery>, Vec<Delivery>) =
            deliveries.into_iter().partition(is_forward);
        let shared = self.ctx.shared.clone();
        let mut groups: std::collections::BTreeMap<String, Vec<Delivery>> = Default::default();
        for d in forwards {
            let Target::Remote(to) = &d.target else {
                continue;
            };
            if message_id.is_some_and(|m| shared.sieve.store.forward_seen(m, to)) {
                tracing::info!(
                    qid,
                    "{qid}: to=<{to}>, orig_to=<{}>, status=skipped (already forwarded)",
                    d.orig_to
                );
                continue;
            }
            let domain = d
                .orig_to
                .rsplit_once('@')
                .map_or(shared.config.hostname.as_str(), |(_, dom)| dom);
            groups
                .entry(domain.to_ascii_lowercase())
                .or_default()
                .push(d);
        }
        for (domain, ds) in groups {
            let sender = shared.srs.forward(from, &domain, now_secs());
            let fqid = new_qid(self.ctx.id);
            let extra_ops = message_id
                .map(|m| {
                    ds.iter()
                        .filter_map(|d| match &d.target {
                            Target::Remote(to) => Some(
                                postcore_storage::sieve::SieveStore::forward_op(m, to, 7 * 86400),
                            ),
                            Target::Mailbox(_) => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            let content = ds
                .iter()
                .find_map(|d| d.content.clone())
                .unwrap_or_else(|| data.clone());
            let msg = IncomingMessage {
                qid: fqid.clone(),
                from: sender.clone(),
                message_id: message_id.map(str::to_string),
                data: content,
                arrival: now_secs(),
                deliveries: ds.clone(),
                scan: None,
                extra_ops,
            };
            match accept_message(&shared, &self.ctx.delivery, msg, Instant::now()).await {
                Ok(()) => tracing::info!(qid, "{qid}: forwarded as {fqid}, from=<{sender}>"),
                Err(e) => {
                    tracing::warn!(
                        qid,
                        "{qid}: forward with SRS not queued ({e:#}); kept with the original sender"
                    );
                    keep.extend(ds);
                }
            }
        }
        keep
    }

    /// Commits; true when the message was accepted (and 250 queued).
    async fn commit(&mut self, msg: IncomingMessage, started: Instant) -> bool {
        let (qid, size) = (msg.qid.clone(), msg.data.len());
        match accept_message(&self.ctx.shared, &self.ctx.delivery, msg, started).await {
            Ok(()) => {
                metrics::counter!(crate::metrics::MESSAGES_RECEIVED).increment(1);
                metrics::counter!(crate::metrics::BYTES_RECEIVED).increment(size as u64);
                if let Some(login) = &self.auth {
                    self.ctx.shared.limits.sent_one(login);
                }
                self.send(codes::QUEUED.with_text(format!("Ok: queued as {qid}")));
                true
            }
            Err(e) => {
                tracing::error!(qid, "{qid}: not accepted, storage failure: {e:#}");
                metrics::counter!(crate::metrics::REJECTED, "reason" => "storage").increment(1);
                self.send(codes::STORAGE_FAILURE);
                false
            }
        }
    }

    /// A stage refused the message: log, count, reply.
    fn refuse(&mut self, r: pipeline::Refusal) {
        self.reject(r.reason, r.reply, &r.detail);
    }

    /// The scanner refused the message (reject or tempfail).
    fn refuse_verdict(&mut self, qid: &str, r: postcore_scanner::Reply) {
        let tempfail = r.code / 100 == 4;
        // A reply of the wrong shape still refuses the message, with a standard one.
        let reply = Reply::error_from(r.code, &r.status, &r.text).unwrap_or_else(|| {
            if tempfail {
                codes::POLICY_DEFERRED.into()
            } else {
                codes::POLICY_REJECTED.into()
            }
        });
        let action = if tempfail { "tempfail" } else { "reject" };
        tracing::info!(qid, client = %self.peer, "{qid}: {action}: scanner verdict: {} {} {}", r.code, r.status, r.text);
        metrics::counter!(crate::metrics::REJECTED, "reason" => "scanner").increment(1);
        self.reply(reply);
    }

    /// Logs the arrival lines of a message (client, Message-ID, envelope), Postfix-style.
    fn log_arrival(&self, qid: &str, message_id: Option<&str>, from: &str, size: usize, n: usize) {
        let client = format!(
            "{}[{}]",
            self.helo.as_deref().unwrap_or("unknown"),
            self.peer.ip()
        );
        match &self.auth {
            Some(login) => {
                tracing::info!(qid, client = %client, sasl_username = %login, "{qid}: client={client}, sasl_username={login}")
            }
            None => tracing::info!(qid, client = %client, "{qid}: client={client}"),
        }
        let mid = message_id.unwrap_or("");
        tracing::info!(qid, message_id = mid, "{qid}: message-id={mid}");
        tracing::info!(qid, from = %from, size, nrcpt = n, "{qid}: from=<{from}>, size={size}, nrcpt={n}");
    }

    /// The DNS and authentication checks (see [`crate::net_checks`]) of mail from other
    /// servers: port 25, not authenticated, not from the networks allowed to relay, the
    /// antispam check on. Logged in one line; `None` when not made.
    async fn network_checks(
        &self,
        qid: &str,
        from: &str,
        data: &Bytes,
    ) -> Option<crate::net_checks::NetOutcome> {
        let net = self.ctx.net.as_ref()?;
        let dir = self.ctx.shared.directory.snapshot();
        let settings = &dir.settings;
        let policy = &settings.filter.spam;
        let wanted = policy.network_checks || !policy.dnsbl.is_empty() || !policy.uribl.is_empty();
        if self.kind != ListenerKind::Smtp
            || self.auth.is_some()
            || self.filter_exempt(&dir)
            || !settings.filter.spam.enabled
            || !wanted
        {
            return None;
        }
        let hosts = if policy.uribl.is_empty() {
            Vec::new()
        } else {
            let max = crate::net_checks::MAX_LINK_HOSTS;
            self.ctx
                .shared
                .scanner
                .link_hosts(data.clone(), max)
                .await
                .unwrap_or_default()
        };
        let req = crate::net_checks::NetRequest {
            ip: self.peer.ip(),
            helo: self.helo.as_deref(),
            mail_from: from,
            message: data,
            link_hosts: &hosts,
            hostname: self.hostname(),
            trusted: self.in_trusted_networks(&dir),
        };
        let outcome = net.check(&req, policy).await;
        log_net_facts(qid, &outcome.facts, req.trusted);
        Some(outcome)
    }

    /// The scan stage: asks this core's scanner actor for a verdict and logs it. A scanner
    /// that cannot answer tempfails the message (mail is never accepted unscanned).
    async fn scan(
        &self,
        qid: &str,
        from: &str,
        rcpts: &[EnvelopeRcpt],
        data: Bytes,
        net: Option<postcore_scanner::network::NetFacts>,
    ) -> Verdict {
        let dir = self.ctx.shared.directory.snapshot();
        let settings = &dir.settings;
        if !settings.filter.checks_anything() {
            // Every check off and no list entry: nothing a scanner could find.
            return Verdict::accept();
        }
        let context = ScanContext {
            qid: qid.to_string(),
            listener: self.kind.name().to_string(),
            client_ip: self.peer.ip(),
            helo: self.helo.clone(),
            tls: self.conn.tls_info(),
            auth: self.auth.clone(),
            mail_from: from.to_string(),
            rcpts: rcpts.iter().map(|r| r.address.clone()).collect(),
            exempt: self.filter_exempt(&dir),
            policy: settings.filter.clone(),
            net,
        };
        let tempfail = |c: codes::Code| {
            Verdict::refuse(postcore_scanner::Reply::new(c.code, c.status, c.text))
        };
        match self.ctx.shared.scanner.scan(Scan { context, data }).await {
            Ok(v) => {
                if !v.symbols.is_empty() || v.action != postcore_scanner::MessageAction::Accept {
                    tracing::info!(qid, score = v.score, symbols = %v.symbols_text(), "{qid}: scan: score={:.2} symbols=[{}]", v.score, v.symbols_text());
                }
                v
            }
            Err(ScanError::Timeout)
                if self.ctx.shared.config.scanner.on_timeout == OnTimeout::Accept =>
            {
                tracing::warn!(
                    qid,
                    "{qid}: scan: time limit passed, accepted unscanned (scanner.on_timeout = accept)"
                );
                Verdict::accept()
            }
            Err(e @ (ScanError::Timeout | ScanError::Busy)) => {
                tracing::warn!(qid, "{qid}: scan: {e:?}: tempfail");
                tempfail(codes::SCANNER_BUSY)
            }
            Err(ScanError::Unavailable) => {
                tracing::error!(qid, "{qid}: scanner unavailable");
                tempfail(codes::SCANNER_UNAVAILABLE)
            }
        }
    }

    /// Stage 5's own additions: Date and Message-ID for submissions, the legal notice, the
    /// DKIM signature and the Received field, on top of `head` (the header section as the
    /// verdict left it) and the content's body from `header_len` on. Returns the message and
    /// its Message-ID.
    #[allow(clippy::too_many_arguments)]
    fn add_headers(
        &self,
        qid: &str,
        tx: &Transaction,
        arrival: u64,
        view: HeaderView,
        head: &[u8],
        content: &Content,
        header_len: usize,
        auth_results: Option<&str>,
    ) -> std::io::Result<(Bytes, Option<String>)> {
        let mut message_id = view.message_id.clone();
        let mut received = self.received_header(qid, tx, arrival);
        // RFC 8601 §5: the results go at the top, with our trace field.
        received.push_str(auth_results.unwrap_or(""));
        let mut added = String::new();
        if self.kind != ListenerKind::Smtp && self.auth.is_some() {
            // RFC 6409 §8.1/§8.3: a submission server may add missing Date and Message-ID.
            if !view.has_date {
                added.push_str(&format!("Date: {}\r\n", rfc5322_date(arrival)));
            }
            if message_id.is_none() {
                let id = format!("<{qid}@{}>", self.hostname());
                added.push_str(&format!("Message-ID: {id}\r\n"));
                message_id = Some(id);
            }
        }
        let domain = view
            .from_domain
            .as_ref()
            .filter(|_| self.auth.is_some())
            .and_then(|d| tx.dir.domains.get(d).cloned())
            .filter(|d| d.legal_notice.is_some() || d.dkim.is_some());
        let Some(dom) = domain else {
            let msg =
                content.assemble(&[received.as_bytes(), added.as_bytes(), head], header_len)?;
            return Ok((msg.bytes, message_id));
        };
        // Signed or with a notice: the message as it will be signed, then our fields on top.
        let mut signed = content.assemble(&[added.as_bytes(), head], header_len)?;
        if let Some(notice) = &dom.legal_notice {
            signed = Content::in_memory(Bytes::from(crate::legal_notice::append(
                &signed.bytes,
                notice,
                qid,
            )));
        }
        let mut signature = String::new();
        if let Some(setting) = &dom.dkim {
            match self.ctx.shared.dkim.sign(&dom.name, setting, &signed.bytes) {
                Ok(h) => signature = h,
                Err(e) => tracing::error!(qid, "{qid}: not DKIM-signed: {e:#}"),
            }
        }
        let msg = signed.assemble(&[received.as_bytes(), signature.as_bytes()], 0)?;
        Ok((msg.bytes, message_id))
    }

    fn received_header(&self, qid: &str, tx: &Transaction, arrival: u64) -> String {
        // RFC 3848 protocol types: ESMTP, ESMTPS (TLS), ESMTPA/ESMTPSA (AUTH); RFC 6531 UTF8SMTP.
        let base = if tx.params.smtputf8 {
            "UTF8SMTP"
        } else if self.esmtp {
            "ESMTP"
        } else {
            "SMTP"
        };
        let proto = format!(
            "{base}{}{}",
            if self.is_tls() { "S" } else { "" },
            if self.auth.is_some() { "A" } else { "" }
        );
        let helo = self.helo.as_deref().unwrap_or("unknown");
        let ip = self.peer.ip();
        let mut h = format!(
            "Received: from {helo} ([{ip}])\r\n\tby {} (postcore) with {proto} id {qid}",
            self.hostname()
        );
        if let [only] = tx.rcpts.as_slice() {
            h.push_str(&format!("\r\n\tfor <{}>", only.address));
        }
        h.push_str(&format!("; {}\r\n", rfc5322_date(arrival)));
        h
    }
}

/// One log line with every network check's result, and the metrics.
fn log_net_facts(qid: &str, f: &postcore_scanner::network::NetFacts, trusted: bool) {
    let mut parts: Vec<String> = Vec::new();
    if trusted {
        parts.push("client=trusted".into());
    }
    if let Some((r, d)) = &f.spf {
        parts.push(format!("spf={} ({d})", r.name()));
        metrics::counter!(crate::metrics::AUTH_RESULTS, "method" => "spf", "result" => r.name())
            .increment(1);
    }
    if let Some(sigs) = &f.dkim {
        if sigs.is_empty() {
            parts.push("dkim=none".into());
        }
        for s in sigs {
            parts.push(format!("dkim={} ({})", s.result.name(), s.domain));
            metrics::counter!(crate::metrics::AUTH_RESULTS, "method" => "dkim", "result" => s.result.name()).increment(1);
        }
    }
    if let Some(a) = &f.arc {
        parts.push(format!("arc={}", a.name()));
    }
    if let Some(d) = &f.dmarc {
        let policy = match d.policy {
            postcore_scanner::network::DmarcPolicy::None => "none",
            postcore_scanner::network::DmarcPolicy::Quarantine => "quarantine",
            postcore_scanner::network::DmarcPolicy::Reject => "reject",
        };
        parts.push(format!(
            "dmarc={} ({} p={policy})",
            d.result.name(),
            d.domain
        ));
        metrics::counter!(crate::metrics::AUTH_RESULTS, "method" => "dmarc", "result" => d.result.name()).increment(1);
    }
    if let Some((r, ptr)) = &f.iprev {
        parts.push(format!(
            "iprev={} ({})",
            r.name(),
            ptr.as_deref().unwrap_or("no PTR")
        ));
    }
    if let Some(h) = &f.helo {
        parts.push(format!("helo={h:?}"));
    }
    for l in f.dnsbl.iter().chain(&f.uribl) {
        let codes: Vec<String> = l.codes.iter().map(|c| c.to_string()).collect();
        parts.push(format!("listed={}:{}:{}", l.zone, l.item, codes.join(",")));
        metrics::counter!(crate::metrics::DNS_LISTINGS, "zone" => l.zone.clone()).increment(1);
    }
    if !f.timed_out.is_empty() {
        parts.push(format!("timed_out=[{}]", f.timed_out.join(",")));
        metrics::counter!(crate::metrics::DNS_BUDGET_EXCEEDED).increment(1);
    }
    metrics::histogram!(crate::metrics::NET_CHECK_SECONDS).record(f.millis as f64 / 1000.0);
    tracing::info!(
        qid,
        "{qid}: checks: {} lookups={} time={}ms",
        parts.join(" "),
        f.lookups,
        f.millis
    );
}
