//! When a vacation reply may be sent, and the reply itself (RFC 5230 §4.5–§5, RFC 3834).
//! The once-per-period record is the caller's; everything here is pure.

use super::interp::{Envelope, VacationAction};
use super::mail::{self, Mail};

/// Why no reply goes out, or `Ok` when one may.
pub fn eligible(
    message: &[u8],
    envelope: &Envelope,
    action: &VacationAction,
    own: &[String],
) -> Result<(), &'static str> {
    let sender = envelope.from.trim();
    // RFC 5230 §4.6 / RFC 3834 §2: never to the null reverse-path.
    if sender.is_empty() {
        return Err("null sender");
    }
    let local = sender
        .rsplit_once('@')
        .map_or(sender, |(l, _)| l)
        .to_ascii_lowercase();
    // RFC 5230 §4.6: not to list and system addresses.
    if matches!(
        local.as_str(),
        "mailer-daemon" | "listserv" | "majordomo" | "postmaster" | "noreply" | "no-reply"
    ) || local.starts_with("owner-")
        || local.ends_with("-request")
        || local.ends_with("-owner")
        || local.ends_with("-bounces")
    {
        return Err("sender is a list or system address");
    }
    let m = Mail::new(message);
    let value = |n: &str| m.named(n).next().map(|f| f.value().to_ascii_lowercase());
    // RFC 3834 §2: nothing automatic gets an automatic answer.
    if value("auto-submitted").is_some_and(|v| !v.starts_with("no")) {
        return Err("message is auto-submitted");
    }
    if [
        "list-id",
        "list-help",
        "list-subscribe",
        "list-unsubscribe",
        "list-post",
        "list-owner",
        "list-archive",
    ]
    .iter()
    .any(|h| m.named(h).next().is_some())
    {
        return Err("message is from a mailing list");
    }
    if value("precedence").is_some_and(|v| matches!(v.as_str(), "bulk" | "list" | "junk")) {
        return Err("message is bulk");
    }
    if value("x-auto-response-suppress").is_some_and(|v| v.contains("oof") || v.contains("all")) {
        return Err("sender asked for no automatic reply");
    }
    // RFC 5230 §4.5: only when one of the user's addresses is a recipient in the header.
    let mine: Vec<String> = std::iter::once(envelope.to.clone())
        .chain(action.addresses.iter().cloned())
        .chain(own.iter().cloned())
        .map(|a| a.to_ascii_lowercase())
        .collect();
    if mine.iter().any(|a| *a == sender.to_ascii_lowercase()) {
        return Err("message is from the user");
    }
    let named = ["to", "cc", "bcc", "resent-to", "resent-cc", "resent-bcc"]
        .iter()
        .any(|h| {
            m.named(h).any(|f| {
                mail::addresses(&f.raw)
                    .iter()
                    .filter_map(|a| a.part(super::program::AddressPart::All))
                    .any(|a| mine.contains(&a.to_ascii_lowercase()))
            })
        });
    if !named {
        return Err("user is not a recipient in the header");
    }
    Ok(())
}

/// The reply (RFC 5230 §5): to the envelope sender, `Auto-Submitted: auto-replied`,
/// `In-Reply-To`/`References` to the original, subject "Auto: …" unless given. It goes out
/// with the null reverse-path (RFC 3834 §3.3).
pub fn compose(
    message: &[u8],
    envelope: &Envelope,
    action: &VacationAction,
    message_id: &str,
    date: &str,
) -> Vec<u8> {
    let m = Mail::new(message);
    let value = |n: &str| m.named(n).next().map(|f| f.value());
    let from = action.from.clone().unwrap_or_else(|| envelope.to.clone());
    let subject = action
        .subject
        .clone()
        .unwrap_or_else(|| format!("Auto: {}", value("subject").unwrap_or_default()));
    let mut out = String::new();
    let clean = |s: &str| s.replace(['\r', '\n'], " ");
    out.push_str(&format!("From: {}\r\n", clean(&from)));
    out.push_str(&format!("To: <{}>\r\n", clean(&envelope.from)));
    out.push_str(&format!("Subject: {}\r\n", encode_header(&clean(&subject))));
    out.push_str(&format!("Date: {date}\r\n"));
    out.push_str(&format!("Message-ID: {message_id}\r\n"));
    if let Some(id) = value("message-id") {
        let id = clean(&id);
        out.push_str(&format!("In-Reply-To: {id}\r\n"));
        let refs = value("references")
            .map(|r| clean(&r) + " ")
            .unwrap_or_default();
        out.push_str(&format!("References: {refs}{id}\r\n"));
    }
    out.push_str(
        "Auto-Submitted: auto-replied (vacation)\r\nPrecedence: bulk\r\nMIME-Version: 1.0\r\n",
    );
    if action.mime {
        // RFC 5230 §4.7: with :mime the reason is a MIME entity, its own header first.
        out.push_str(&action.reason.replace("\r\n", "\n").replace('\n', "\r\n"));
    } else {
        out.push_str(
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
        );
        out.push_str(&action.reason.replace("\r\n", "\n").replace('\n', "\r\n"));
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.into_bytes()
}

/// RFC 2047 B-encoding for a non-ASCII subject.
fn encode_header(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    use base64::Engine;
    format!(
        "=?utf-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(s)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action() -> VacationAction {
        VacationAction {
            period: 86400,
            subject: None,
            from: None,
            addresses: vec!["bob@alias.test".into()],
            mime: false,
            handle: "h".into(),
            reason: "Away until Monday.\n".into(),
        }
    }

    fn env(from: &str) -> Envelope {
        Envelope {
            from: from.into(),
            to: "bob@ex.test".into(),
        }
    }

    #[test]
    fn who_gets_a_reply() {
        let msg = b"From: a@b.test\r\nTo: Bob <bob@ex.test>\r\nSubject: hi\r\nMessage-ID: <1@b>\r\n\r\nx\r\n";
        assert!(eligible(msg, &env("a@b.test"), &action(), &[]).is_ok());
        assert!(eligible(msg, &env(""), &action(), &[]).is_err());
        assert!(eligible(msg, &env("owner-list@b.test"), &action(), &[]).is_err());
        assert!(eligible(msg, &env("list-request@b.test"), &action(), &[]).is_err());
        assert!(eligible(msg, &env("MAILER-DAEMON@b.test"), &action(), &[]).is_err());
        let auto = b"Auto-Submitted: auto-replied\r\nTo: bob@ex.test\r\n\r\nx";
        assert!(eligible(auto, &env("a@b.test"), &action(), &[]).is_err());
        let list = b"List-Id: <l.b.test>\r\nTo: bob@ex.test\r\n\r\nx";
        assert!(eligible(list, &env("a@b.test"), &action(), &[]).is_err());
        let bulk = b"Precedence: bulk\r\nTo: bob@ex.test\r\n\r\nx";
        assert!(eligible(bulk, &env("a@b.test"), &action(), &[]).is_err());
        let bcc = b"To: someone@else.test\r\n\r\nx";
        assert!(eligible(bcc, &env("a@b.test"), &action(), &[]).is_err());
        let alias = b"To: bob@alias.test\r\n\r\nx";
        assert!(eligible(alias, &env("a@b.test"), &action(), &[]).is_ok());
        assert!(eligible(msg, &env("bob@ex.test"), &action(), &[]).is_err());
    }

    #[test]
    fn reply_fields() {
        let msg = b"From: a@b.test\r\nTo: bob@ex.test\r\nSubject: caf\xc3\xa9\r\nMessage-ID: <1@b>\r\n\r\nx\r\n";
        let r = String::from_utf8(compose(
            msg,
            &env("a@b.test"),
            &action(),
            "<r@ex.test>",
            "Thu, 3 Dec 2026 10:00:00 +0000",
        ))
        .unwrap();
        assert!(r.contains("To: <a@b.test>\r\n"), "{r}");
        assert!(r.contains("In-Reply-To: <1@b>\r\n"), "{r}");
        assert!(r.contains("Auto-Submitted: auto-replied"), "{r}");
        assert!(r.contains("Subject: =?utf-8?B?"), "{r}");
        assert!(r.ends_with("\r\n\r\nAway until Monday.\r\n"), "{r}");
    }
}
