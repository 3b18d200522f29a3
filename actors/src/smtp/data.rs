//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030), and the end of a transaction: size and
//! newline checks, the Received header (RFC 5321 §4.4, RFC 3848), durable acceptance.

use super::session::{Next, ReadEnd, Session, Transaction};
use crate::delivery::{IncomingMessage, accept_message};
use crate::server::ListenerKind;
use crate::util::{header_section, header_value, rfc5322_date};
use bytes::Bytes;
use postcore_protocol::smtp::{DataEvent, DataReceiver};
use postcore_storage::directory::{BareNewline, Target};
use postcore_storage::queue::{new_qid, now_secs};
use std::collections::HashSet;
use std::time::{Duration, Instant};

impl Session {
    fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.ctx.shared.config.limits.data_timeout_secs)
    }

    fn transaction_ready(&mut self) -> bool {
        match &self.tx {
            None => {
                self.reply_str(503, "5.5.1", "Error: need RCPT command");
                false
            }
            Some(t) if t.rcpts.is_empty() => {
                self.reply_str(554, "5.5.1", "Error: no valid recipients");
                false
            }
            Some(_) => true,
        }
    }

    async fn read_timeout_close(&mut self) -> Next {
        self.reply_str(
            421,
            "4.4.2",
            &format!("{} Error: timeout exceeded", self.hostname()),
        );
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
        self.reply_str(354, "", "End data with <CR><LF>.<CR><LF>");
        if self.flush().await.is_err() {
            return Next::Close;
        }
        let mut rx = DataReceiver::for_data(max);
        loop {
            match rx.ingest(&self.inbuf) {
                DataEvent::End { consumed } => {
                    self.inbuf.drain(..consumed);
                    break;
                }
                DataEvent::NeedMore => self.inbuf.clear(),
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
        self.finish(rx).await
    }

    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Next {
        // RFC 3030 §2: the chunk is always read, even when it will be refused, so the
        // session stays in step with the client.
        let refusal = match &self.tx {
            None => Some((503, "5.5.1", "Error: need MAIL command")),
            Some(t) if t.rcpts.is_empty() => Some((554, "5.5.1", "Error: no valid recipients")),
            _ => None,
        };
        let max = self
            .tx
            .as_ref()
            .map_or(0, |t| t.dir.settings.max_message_size) as usize;
        let mut rx = match self.tx.as_mut() {
            Some(t) if refusal.is_none() => {
                t.bdat.take().unwrap_or_else(|| DataReceiver::for_bdat(max))
            }
            _ => DataReceiver::for_bdat(0),
        };
        let mut remaining = size;
        loop {
            let n = (remaining.min(self.inbuf.len() as u64)) as usize;
            if n > 0 {
                rx.ingest(&self.inbuf[..n]);
                self.inbuf.drain(..n);
                remaining -= n as u64;
            }
            if remaining == 0 {
                break;
            }
            match self.fill(self.data_timeout()).await {
                Ok(_) => {}
                Err(ReadEnd::Closed) => return Next::Close,
                Err(ReadEnd::Timeout) => return self.read_timeout_close().await,
            }
        }
        if let Some((code, st, text)) = refusal {
            self.reply_str(code, st, text);
            return Next::Continue;
        }
        if !last {
            if let Some(t) = self.tx.as_mut() {
                t.bdat = Some(rx);
            }
            self.reply_str(250, "2.0.0", &format!("{size} octets received"));
            return Next::Continue;
        }
        rx.finish_chunks();
        self.finish(rx).await
    }

    /// Ends the transaction: checks, Received header, durable acceptance, reply.
    async fn finish(&mut self, rx: DataReceiver) -> Next {
        let started = Instant::now();
        let Some(tx) = self.tx.take() else {
            self.reply_str(503, "5.5.1", "Error: no transaction");
            return Next::Continue;
        };
        if rx.overflowed() {
            let max = tx.dir.settings.max_message_size;
            self.reject(
                "size",
                552,
                "5.3.4",
                "Error: message file too big",
                &format!("message over {max} octets"),
            );
            return Next::Continue;
        }
        let issue = rx.newline_issue();
        if issue.bare_cr || issue.bare_lf {
            if tx.dir.settings.bare_newline == BareNewline::Reject {
                let detail = format!("bare_lf={} bare_cr={}", issue.bare_lf, issue.bare_cr);
                self.reject(
                    "bare_newline",
                    550,
                    "5.5.2",
                    "Error: bare <CR> or <LF> in message data (RFC 5321 section 2.3.8)",
                    &detail,
                );
                return Next::Continue;
            }
            tracing::info!(client = %self.peer, bare_lf = issue.bare_lf, bare_cr = issue.bare_cr, "bare CR/LF in message data normalised to CRLF");
        }
        let content = rx.into_content();
        let arrival = now_secs();
        let qid = new_qid(self.ctx.id);
        let headers = header_section(&content);
        let mut message_id = header_value(headers, "Message-ID");
        let received = self.received_header(&qid, &tx, arrival);
        let mut added = String::new();
        if self.kind != ListenerKind::Smtp && self.auth.is_some() {
            // RFC 6409 §8.1/§8.3: a submission server may add missing Date and Message-ID.
            if header_value(headers, "Date").is_none() {
                added.push_str(&format!("Date: {}\r\n", rfc5322_date(arrival)));
            }
            if message_id.is_none() {
                let id = format!("<{qid}@{}>", self.hostname());
                added.push_str(&format!("Message-ID: {id}\r\n"));
                message_id = Some(id);
            }
        }
        let mut body = Vec::with_capacity(added.len() + content.len());
        body.extend_from_slice(added.as_bytes());
        body.extend_from_slice(&content);
        drop(content);
        let mut signature = String::new();
        if self.auth.is_some()
            && let Some(dom) = crate::util::from_domain(header_section(&body))
                .and_then(|d| tx.dir.domains.get(&d).cloned())
        {
            if let Some(notice) = &dom.legal_notice {
                body = crate::legal_notice::append(&body, notice, &qid);
            }
            if let Some(setting) = &dom.dkim {
                match self.ctx.shared.dkim.sign(&dom.name, setting, &body) {
                    Ok(h) => signature = h,
                    Err(e) => tracing::error!(qid, "{qid}: not DKIM-signed: {e:#}"),
                }
            }
        }
        let mut data = Vec::with_capacity(received.len() + signature.len() + body.len());
        data.extend_from_slice(received.as_bytes());
        data.extend_from_slice(signature.as_bytes());
        data.extend_from_slice(&body);
        drop(body);

        let mut deliveries: Vec<(Target, String)> = Vec::new();
        let mut seen = HashSet::new();
        for r in &tx.rcpts {
            for t in &r.targets {
                if seen.insert(t.clone()) {
                    deliveries.push((t.clone(), r.address.to_string()));
                }
            }
        }
        let rcpt_domains: Vec<&str> = tx.rcpts.iter().map(|r| r.address.domain.as_str()).collect();
        for t in tx.dir.hidden_copies(&rcpt_domains) {
            if seen.insert(t.clone()) {
                deliveries.push((t, "hidden-copy".into()));
            }
        }
        let from = tx.from.as_ref().map(|a| a.to_string()).unwrap_or_default();
        let size = data.len();
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
        let mid = message_id.as_deref().unwrap_or("");
        tracing::info!(qid, message_id = mid, "{qid}: message-id={mid}");
        tracing::info!(qid, from = %from, size, nrcpt = tx.rcpts.len(), "{qid}: from=<{from}>, size={size}, nrcpt={}", tx.rcpts.len());
        let msg = IncomingMessage {
            qid: qid.clone(),
            from,
            message_id,
            data: Bytes::from(data),
            arrival,
            deliveries,
        };
        match accept_message(&self.ctx.shared, &self.ctx.delivery, msg, started).await {
            Ok(()) => {
                metrics::counter!(crate::metrics::MESSAGES_RECEIVED).increment(1);
                metrics::counter!(crate::metrics::BYTES_RECEIVED).increment(size as u64);
                self.reply_str(250, "2.0.0", &format!("Ok: queued as {qid}"));
            }
            Err(e) => {
                tracing::error!(qid, "{qid}: not accepted, storage failure: {e:#}");
                metrics::counter!(crate::metrics::REJECTED, "reason" => "storage").increment(1);
                self.reply_str(
                    451,
                    "4.3.0",
                    "Error: queue file write error, try again later",
                );
            }
        }
        Next::Continue
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
