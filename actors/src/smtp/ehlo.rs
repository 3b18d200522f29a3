//! EHLO / HELO (RFC 5321 §4.1.1.1) and the extensions advertised.

use super::session::Session;
use crate::context::ListenerKind;
use postcore_protocol::smtp::Reply;

/// The HELO/EHLO name as it goes into logs and the `Received:` field: a domain or an address
/// literal (RFC 5321 §4.1.1.1), lower case; anything else is recorded as `unknown` (the
/// session goes on: §4.1.4 forbids refusing mail because the name does not verify).
fn helo_name(arg: &str) -> String {
    match postcore_protocol::smtp::address::parse_domain(arg, false) {
        Ok(d) => d,
        Err(_) => {
            tracing::info!(helo = %crate::util::sanitize_token(arg, 64), "HELO/EHLO argument is not a domain or address literal");
            "unknown".into()
        }
    }
}

impl Session {
    /// True if AUTH may be offered now: inside TLS, and on port 25 only when allowed.
    pub(super) fn auth_offered(&self) -> bool {
        self.is_tls()
            && self.auth.is_none()
            && (self.kind != ListenerKind::Smtp
                || self
                    .ctx
                    .shared
                    .directory
                    .snapshot()
                    .settings
                    .relay
                    .auth_on_port25)
    }

    pub(super) fn ehlo(&mut self, name: String, extended: bool) {
        // RFC 5321 §4.1.4: EHLO resets any transaction in progress.
        self.tx = None;
        self.helo = Some(helo_name(&name));
        self.esmtp = extended;
        if !extended {
            let text = self.hostname().to_string();
            self.reply(Reply::new(250, "", text));
            return;
        }
        let max = self
            .ctx
            .shared
            .directory
            .snapshot()
            .settings
            .max_message_size;
        let mut lines = vec![
            self.hostname().to_string(),
            "PIPELINING".into(),
            format!("SIZE {max}"),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
            "CHUNKING".into(),
        ];
        if !self.is_tls() {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        // RFC 4468 §3: BURL on submission; "imap" (URLAUTH-authorized IMAP URLs of this
        // server) once the client has authenticated.
        if self.kind != ListenerKind::Smtp {
            lines.push(
                if self.auth.is_some() {
                    "BURL imap"
                } else {
                    "BURL"
                }
                .into(),
            );
        }
        self.reply(Reply::multi(250, lines));
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn helo_names_are_domains_or_literals() {
        assert_eq!(
            super::helo_name("Client.Example.TEST"),
            "client.example.test"
        );
        assert_eq!(super::helo_name("[192.0.2.1]"), "[192.0.2.1]");
        assert_eq!(super::helo_name("localhost"), "localhost");
        assert_eq!(super::helo_name("\u{1b}[31mevil"), "unknown");
        assert_eq!(super::helo_name("a b"), "unknown");
        assert_eq!(super::helo_name("(x)"), "unknown");
    }
}
