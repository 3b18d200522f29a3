//! Quarantine mode's mailbox (the reference's "Quarantine": spam is held in a mailbox for an
//! administrator to check instead of being refused, with an optional notice to the
//! postmaster).
//!
//! The copy delivered to the quarantine mailbox carries one field naming what the release
//! needs — the queue id, the envelope sender, the recipients whose copies were held, the score
//! — sealed with an HMAC-SHA-256 under a secret of the data directory
//! (`quarantine.secret`), so that a message someone else puts into that mailbox (by mail to
//! it, by IMAP APPEND) cannot make a release send it to recipients of its choosing:
//!
//! ```text
//! X-Postcore-Quarantine: qid=19A0B1C2D3E4F00001; score=1000.00;
//!  from=<spammer@remote.test>;
//!  to=<alice@example.test>,
//!  <bob@example.test>;
//!  mac=…
//! ```
//!
//! Addresses are percent-encoded outside a conservative set (RFC 3986 §2.1 style), so quoted
//! local parts and UTF-8 addresses (RFC 6531) stay one unambiguous ASCII token; the field is
//! folded between items (RFC 5322 §2.2.3) so no line passes 998 octets.

use anyhow::{Context, Result};
use base64::Engine;
use postcore_protocol::message::{edit_header_section, header_section};
pub use postcore_protocol::quarantine_seal::Stamp;
use postcore_protocol::quarantine_seal::{items, parse, split};
use std::path::Path;

/// The field the quarantined copy carries.
pub const FIELD: &str = "X-Postcore-Quarantine";

/// The sealing key.
pub struct QuarantineKey {
    key: ring::hmac::Key,
}

impl QuarantineKey {
    /// The secret from `data_dir/quarantine.secret`, made (durably, mode 0600) on first use.
    pub fn load_or_create(data_dir: &Path) -> Result<QuarantineKey> {
        let p = data_dir.join("quarantine.secret");
        let secret = match std::fs::read(&p) {
            Ok(s) if s.len() >= 32 => s,
            _ => {
                let mut s = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut s)
                    .map_err(|_| anyhow::anyhow!("no random numbers"))?;
                postcore_storage::durable_file::write(&p, &s, 0o600)
                    .with_context(|| format!("creating {}", p.display()))?;
                s.to_vec()
            }
        };
        Ok(QuarantineKey::with_secret(&secret))
    }

    /// A key from `secret` (tests).
    pub fn with_secret(secret: &[u8]) -> QuarantineKey {
        QuarantineKey {
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret),
        }
    }

    fn mac(&self, canonical: &str) -> String {
        let tag = ring::hmac::sign(&self.key, canonical.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(tag.as_ref())
    }

    /// The whole field (name, folded value, CRLF) for `s`.
    pub fn field(&self, s: &Stamp) -> String {
        let items = items(s);
        let mac = self.mac(&items.concat());
        let mut out = format!("{FIELD}: ");
        let mut line = out.len();
        for item in items
            .iter()
            .map(String::as_str)
            .chain([&*format!("mac={mac}")])
        {
            // RFC 5322 §2.2.3: fold before an item that would make the line long.
            if line > FIELD.len() + 2 && line + 1 + item.len() > 76 {
                out.push_str("\r\n ");
                line = 1;
            } else if line > FIELD.len() + 2 {
                out.push(' ');
                line += 1;
            }
            out.push_str(item);
            line += item.len();
        }
        out.push_str("\r\n");
        out
    }

    /// The stamp a field value (folded or not) records, if its seal is ours and intact.
    pub fn verify(&self, value: &str) -> Option<Stamp> {
        let (body, mac) = split(value)?;
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(mac)
            .ok()?;
        ring::hmac::verify(&self.key, body.as_bytes(), &tag).ok()?;
        parse(&body)
    }
}

/// `data` with `field` on top and any field of that name it already had removed.
pub fn stamped(data: &[u8], field: &str) -> Vec<u8> {
    let hl = header_section(data).len();
    let head = edit_header_section(data[..hl].to_vec(), &[FIELD], &[]);
    let mut out = Vec::with_capacity(field.len() + data.len());
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(&data[hl..]);
    out
}

/// `data` as a release delivers it: without the stamp and the spam fields postcore added,
/// and with the Subject prefix of flagged mail taken off again.
pub fn released(data: &[u8], subject_prefix: &str) -> Vec<u8> {
    let hl = header_section(data).len();
    let mut remove: Vec<&str> = postcore_scanner::spam::OWN_HEADERS.to_vec();
    remove.push(FIELD);
    let mut add = Vec::new();
    let subject = subject_of(&data[..hl]);
    let unprefixed = subject.as_deref().and_then(|s| {
        let rest = s.strip_prefix(subject_prefix)?;
        (!subject_prefix.is_empty()).then(|| rest.trim_start().to_string())
    });
    if let Some(s) = &unprefixed {
        remove.push("Subject");
        add.push(("Subject", s.as_str()));
    }
    let head = edit_header_section(data[..hl].to_vec(), &remove, &add);
    let mut out = head;
    out.extend_from_slice(&data[hl..]);
    out
}

/// The unfolded raw value of the first Subject field of a header section.
fn subject_of(head: &[u8]) -> Option<String> {
    let m = postcore_protocol::sieve::mail::Mail::new(head);
    m.named("subject").next().map(|f| {
        postcore_protocol::sieve::mail::unfold(&f.raw)
            .trim()
            .to_string()
    })
}

/// The field's raw value in a message's header section, if it has one.
pub fn field_value(data: &[u8]) -> Option<String> {
    let head = header_section(data);
    let m = postcore_protocol::sieve::mail::Mail::new(head);
    m.named(FIELD).next().map(|f| f.raw.clone())
}

/// What the postmaster's notice says about one quarantined message.
pub struct NoticeFacts<'a> {
    /// Our host name.
    pub host: &'a str,
    /// Where the notice goes.
    pub to: &'a str,
    /// The envelope of the held copies.
    pub stamp: &'a Stamp,
    /// The message's Subject and Message-ID, as received.
    pub subject: Option<&'a str>,
    /// The message's Message-ID.
    pub message_id: Option<&'a str>,
    /// The symbols that fired, as `NAME(score) …`.
    pub symbols: &'a str,
    /// The deny threshold the score reached.
    pub deny: f64,
    /// The quarantine address.
    pub mailbox: &'a str,
    /// Unix time now.
    pub now: u64,
}

/// The notice to the postmaster (the reference's "mail notification … for each quarantined
/// email"), from the mail system, `Auto-Submitted: auto-generated` (RFC 3834 §5) so that no
/// vacation answers it.
pub fn notice(f: &NoticeFacts<'_>) -> Result<Vec<u8>> {
    let s = f.stamp;
    let from = if s.from.is_empty() {
        "<>".to_string()
    } else {
        format!("<{}>", s.from)
    };
    let rcpts: Vec<String> = s.rcpts.iter().map(|r| format!("<{r}>")).collect();
    let subject = f.subject.unwrap_or("(no subject)");
    let text = format!(
        "A message was put in quarantine instead of being refused as spam.\r\n\r\n\
         Queue id:   {qid}\r\n\
         From:       {from}\r\n\
         To:         {to}\r\n\
         Subject:    {subject}\r\n\
         Message-ID: {mid}\r\n\
         Score:      {score:.2} (refused from {deny:.2})\r\n\
         Symbols:    {symbols}\r\n\
         Held in:    {mailbox}\r\n\r\n\
         To deliver it to its recipients (without the spam fields):\r\n\
         \x20 postcore admin quarantine release {qid}\r\n\
         To delete it:\r\n\
         \x20 postcore admin quarantine delete {qid}\r\n",
        qid = s.qid,
        to = rcpts.join(", "),
        mid = f.message_id.unwrap_or("(none)"),
        score = s.score,
        deny = f.deny,
        symbols = wrap(f.symbols, 60).join("\r\n            "),
        mailbox = f.mailbox,
    );
    let msg = mail_builder::MessageBuilder::new()
        .from((
            "Mail Delivery System".to_string(),
            format!("MAILER-DAEMON@{}", f.host),
        ))
        .to(f.to.to_string())
        .subject(format!("Quarantined: {subject}"))
        .date(f.now as i64)
        .message_id(format!("{}.quarantine@{}", s.qid, f.host))
        .header(
            "Auto-Submitted",
            mail_builder::headers::raw::Raw::new("auto-generated"),
        )
        .text_body(text);
    msg.write_to_vec().context("writing the quarantine notice")
}

/// `s` cut at spaces into lines of at most `width` characters (a longer word stays whole).
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for w in s.split_whitespace() {
        match lines.last_mut() {
            Some(l) if l.len() + 1 + w.len() <= width => {
                l.push(' ');
                l.push_str(w);
            }
            _ => lines.push(w.to_string()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp() -> Stamp {
        Stamp {
            qid: "19A0B1C2D3E4F00001".into(),
            from: "\"odd, <one>;\"@remote.test".into(),
            rcpts: (0..40).map(|i| format!("user{i}@example.test")).collect(),
            score: 1000.0,
        }
    }

    #[test]
    fn a_field_round_trips_and_folds_short_lines() {
        let k = QuarantineKey::with_secret(b"0123456789abcdef0123456789abcdef");
        let f = k.field(&stamp());
        assert!(f.lines().all(|l| l.len() <= 78), "{f}");
        assert!(f.ends_with("\r\n"));
        let value = f.split_once(':').unwrap().1;
        assert_eq!(k.verify(value), Some(stamp()));
    }

    #[test]
    fn a_changed_or_foreign_field_does_not_verify() {
        let k = QuarantineKey::with_secret(b"0123456789abcdef0123456789abcdef");
        let other = QuarantineKey::with_secret(b"another secret, also 32 bytes!!!");
        let f = k.field(&stamp());
        let value = f.split_once(':').unwrap().1;
        assert_eq!(other.verify(value), None);
        let forged = value.replace("user1@", "victim@");
        assert_eq!(k.verify(&forged), None);
        assert_eq!(k.verify("qid=1; to=<x@y>; mac=AAAA"), None);
    }

    #[test]
    fn the_null_sender_and_no_recipients_round_trip() {
        let k = QuarantineKey::with_secret(b"0123456789abcdef0123456789abcdef");
        let s = Stamp {
            qid: "Q".into(),
            from: String::new(),
            rcpts: Vec::new(),
            score: 15.5,
        };
        let f = k.field(&s);
        assert_eq!(k.verify(f.split_once(':').unwrap().1), Some(s));
    }

    #[test]
    fn stamping_replaces_a_field_the_sender_wrote_and_release_takes_ours_off() {
        let msg = b"X-Postcore-Quarantine: qid=evil; mac=x\r\nX-Spam: Yes\r\nSubject: [SPAM] hello\r\n\r\nbody\r\n";
        let out = stamped(msg, "X-Postcore-Quarantine: qid=ours\r\n");
        let text = String::from_utf8(out.clone()).unwrap();
        assert_eq!(text.matches("X-Postcore-Quarantine").count(), 1, "{text}");
        assert!(text.starts_with("X-Postcore-Quarantine: qid=ours\r\n"));
        let back = String::from_utf8(released(&out, "[SPAM]")).unwrap();
        assert!(!back.contains("X-Postcore-Quarantine") && !back.contains("X-Spam"));
        assert!(back.contains("Subject: hello\r\n"), "{back}");
        assert!(back.ends_with("\r\n\r\nbody\r\n"));
        let kept = String::from_utf8(released(&out, "")).unwrap();
        assert!(kept.contains("Subject: [SPAM] hello"), "{kept}");
    }
}
