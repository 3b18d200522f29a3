//! Delivery status notifications (bounces), RFC 3464 `multipart/report` with
//! `message/delivery-status` and the original headers (`text/rfc822-headers`, RFC 6522).

use crate::util::{header_section, rfc5322_date};

/// One failed recipient for the report.
pub struct FailedRcpt<'a> {
    /// Final recipient address.
    pub rcpt: &'a str,
    /// The address given at RCPT TO, if different.
    pub orig: &'a str,
    /// Enhanced status (RFC 3463), e.g. `5.1.1`.
    pub status: &'a str,
    /// Diagnostic text (the remote reply or our reason).
    pub diagnostic: &'a str,
    /// The remote MTA, if one answered.
    pub remote_mta: Option<&'a str>,
}

/// What the report says happened (RFC 3464 §2.3.3 Action).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Delivery failed for good: a bounce.
    Failed,
    /// Still being retried: a delay warning.
    Delayed,
}

/// The message and its recipients a report is about.
pub struct Report<'a> {
    /// Failed or delayed.
    pub action: Action,
    /// Our host name.
    pub hostname: &'a str,
    /// Queue id of the original message.
    pub qid: &'a str,
    /// Its envelope sender (the report's recipient).
    pub sender: &'a str,
    /// Its arrival time.
    pub arrival: u64,
    /// Now.
    pub now: u64,
    /// The recipients concerned.
    pub rcpts: &'a [FailedRcpt<'a>],
}

/// Builds a delivery status notification (bounce or delay warning).
pub fn build_report(r: &Report<'_>, original: &[u8]) -> Vec<u8> {
    let Report {
        action,
        hostname,
        qid,
        sender,
        arrival,
        now,
        rcpts: failed,
    } = *r;
    let (subject, intro, action_word) = match action {
        Action::Failed => (
            "Undelivered Mail Returned to Sender",
            "I'm sorry to have to inform you that your message could not\r\nbe delivered to one or more recipients.",
            "failed",
        ),
        Action::Delayed => (
            "Delayed Mail (still being retried)",
            "Your message could not be delivered yet to one or more recipients.\r\nIt will be retried until the message queue lifetime ends;\r\nyou do not have to resend it.",
            "delayed",
        ),
    };
    let boundary = format!("{qid}.{now}/{hostname}");
    let mut m = String::new();
    m.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{hostname}>\r\n"
    ));
    m.push_str(&format!("To: <{sender}>\r\n"));
    m.push_str(&format!("Subject: {subject}\r\n"));
    m.push_str(&format!("Date: {}\r\n", rfc5322_date(now)));
    m.push_str(&format!("Message-ID: <{qid}.bounce.{now}@{hostname}>\r\n"));
    m.push_str("Auto-Submitted: auto-replied\r\n");
    m.push_str("MIME-Version: 1.0\r\n");
    m.push_str(&format!("Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary=\"{boundary}\"\r\n\r\n"));
    m.push_str("This is a MIME-encapsulated message.\r\n\r\n");
    m.push_str(&format!("--{boundary}\r\nContent-Description: Notification\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"));
    m.push_str(&format!(
        "This is the mail system at host {hostname}.\r\n\r\n{intro}\r\n\r\n"
    ));
    for f in failed {
        m.push_str(&format!(
            "<{}>: {}\r\n",
            f.rcpt,
            f.diagnostic.replace(['\r', '\n'], " ")
        ));
    }
    m.push_str(&format!("\r\n--{boundary}\r\nContent-Description: Delivery report\r\nContent-Type: message/delivery-status\r\n\r\n"));
    m.push_str(&format!(
        "Reporting-MTA: dns; {hostname}\r\nX-Postcore-Queue-ID: {qid}\r\nArrival-Date: {}\r\n",
        rfc5322_date(arrival)
    ));
    for f in failed {
        m.push_str(&format!("\r\nFinal-Recipient: rfc822; {}\r\n", f.rcpt));
        if !f.orig.is_empty() && f.orig != f.rcpt && f.orig.contains('@') {
            m.push_str(&format!("Original-Recipient: rfc822; {}\r\n", f.orig));
        }
        m.push_str(&format!(
            "Action: {action_word}\r\nStatus: {}\r\n",
            f.status
        ));
        if let Some(mta) = f.remote_mta {
            m.push_str(&format!("Remote-MTA: dns; {mta}\r\n"));
        }
        m.push_str(&format!(
            "Diagnostic-Code: smtp; {}\r\n",
            f.diagnostic.replace(['\r', '\n'], " ")
        ));
    }
    m.push_str(&format!("\r\n--{boundary}\r\nContent-Description: Undelivered Message Headers\r\nContent-Type: text/rfc822-headers\r\n\r\n"));
    let mut out = m.into_bytes();
    out.extend_from_slice(header_section(original));
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

#[cfg(test)]
mod tests {
    fn build_for_test(
        hostname: &str,
        qid: &str,
        sender: &str,
        arrival: u64,
        now: u64,
        rcpts: &[super::FailedRcpt<'_>],
        original: &[u8],
    ) -> Vec<u8> {
        let r = super::Report {
            action: super::Action::Failed,
            hostname,
            qid,
            sender,
            arrival,
            now,
            rcpts,
        };
        super::build_report(&r, original)
    }

    #[test]
    fn report_structure() {
        let f = [super::FailedRcpt {
            rcpt: "bob@remote.test",
            orig: "bob@remote.test",
            status: "5.1.1",
            diagnostic: "550 5.1.1 no such user",
            remote_mta: Some("mx.remote.test"),
        }];
        let b = build_for_test(
            "mx.test",
            "QID1",
            "alice@example.test",
            0,
            60,
            &f,
            b"Subject: hi\r\nFrom: a\r\n\r\nsecret body\r\n",
        );
        let s = String::from_utf8(b).unwrap();
        assert!(s.contains("Content-Type: multipart/report; report-type=delivery-status;"));
        assert!(s.contains("Final-Recipient: rfc822; bob@remote.test\r\nAction: failed\r\nStatus: 5.1.1\r\nRemote-MTA: dns; mx.remote.test\r\n"));
        assert!(s.contains("Content-Type: text/rfc822-headers\r\n\r\nSubject: hi\r\nFrom: a\r\n"));
        assert!(!s.contains("secret body"), "only the headers are returned");
    }
}
