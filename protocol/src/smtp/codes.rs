//! The SMTP server's replies as named values (RFC 5321 §4.2 codes with RFC 3463 enhanced
//! status codes), so call sites say what they answer, not how it is spelled.

use super::command::CommandError;
use super::reply::Reply;

/// A reply known when the program is built: code, enhanced status, text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code (`""` for none: greeting, 354).
    pub status: &'static str,
    /// Text.
    pub text: &'static str,
}

impl Code {
    /// A named reply.
    pub const fn new(code: u16, status: &'static str, text: &'static str) -> Code {
        Code { code, status, text }
    }

    /// The same code and status with other text (a queue id, a count).
    pub fn with_text(self, text: impl Into<String>) -> Reply {
        Reply::new(self.code, self.status, text)
    }

    /// The reply with our host name in front, as RFC 5321 §4.2 asks of 421 (and 220) replies.
    pub fn from_host(self, host: &str) -> Reply {
        Reply::new(self.code, self.status, format!("{host} {}", self.text))
    }
}

impl From<Code> for Reply {
    fn from(c: Code) -> Reply {
        Reply::new(c.code, c.status, c.text)
    }
}

// 2xx / 3xx
/// Generic success (RSET, NOOP).
pub const OK: Code = Code::new(250, "2.0.0", "Ok");
/// MAIL accepted (RFC 3463 X.1.0: other address status).
pub const SENDER_OK: Code = Code::new(250, "2.1.0", "Ok");
/// RCPT accepted (X.1.5: destination address valid).
pub const RECIPIENT_OK: Code = Code::new(250, "2.1.5", "Ok");
/// Message accepted; text replaced by `Ok: queued as <QID>`.
pub const QUEUED: Code = Code::new(250, "2.0.0", "Ok: queued");
/// A BDAT chunk that is not the last (RFC 3030 §2); text replaced by the octet count.
pub const CHUNK_RECEIVED: Code = Code::new(250, "2.0.0", "octets received");
/// QUIT (RFC 5321 §4.1.1.10).
pub const BYE: Code = Code::new(221, "2.0.0", "Bye");
/// VRFY is not answered (RFC 5321 §3.5.3: 252 when not verifying).
pub const CANNOT_VRFY: Code = Code::new(
    252,
    "2.0.0",
    "Cannot VRFY user, but will accept message and attempt delivery",
);
/// HELP (RFC 5321 §4.1.1.8).
pub const HELP: Code = Code::new(
    214,
    "2.0.0",
    "See RFC 5321; commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY STARTTLS AUTH",
);
/// STARTTLS accepted (RFC 3207 §4).
pub const READY_FOR_TLS: Code = Code::new(220, "2.0.0", "Ready to start TLS");
/// AUTH succeeded (RFC 4954 §6).
pub const AUTH_OK: Code = Code::new(235, "2.7.0", "Authentication successful");
/// DATA: send the message (RFC 5321 §4.1.1.4).
pub const START_DATA: Code = Code::new(354, "", "End data with <CR><LF>.<CR><LF>");

// 4xx
/// Shutting down (sent with the host name in front).
pub const SHUTTING_DOWN: Code = Code::new(421, "4.3.2", "Service shutting down");
/// A command or the data took too long (sent with the host name in front).
pub const TIMEOUT: Code = Code::new(421, "4.4.2", "Error: timeout exceeded");
/// Too many bad commands (sent with the host name in front).
pub const TOO_MANY_ERRORS: Code = Code::new(421, "4.7.0", "Error: too many errors");
/// Too many connections from one address.
pub const TOO_MANY_CONNECTIONS: Code = Code::new(
    421,
    "4.7.0",
    "Error: too many connections from your IP address",
);
/// AUTH failures over the limit in this session.
pub const TOO_MANY_AUTH_FAILURES: Code =
    Code::new(421, "4.7.0", "Error: too many failed authentications");
/// AUTH failures over the limit for this address.
pub const AUTH_RATE_LIMITED: Code = Code::new(
    421,
    "4.7.0",
    "Error: too many failed authentications, try later",
);
/// The message could not be made durable (X.3.0: other mail system status).
pub const STORAGE_FAILURE: Code = Code::new(
    451,
    "4.3.0",
    "Error: queue file write error, try again later",
);
/// No room to hold the message (RFC 3463 X.3.1: mail system full).
pub const INSUFFICIENT_STORAGE: Code = Code::new(
    452,
    "4.3.1",
    "Error: insufficient system storage, try again later",
);
/// An authenticated user reached the hourly message limit (X.7.1: delivery not authorized).
pub const SEND_RATE_LIMITED: Code = Code::new(
    451,
    "4.7.1",
    "Error: too many messages from this account, try again later",
);
/// The content scanner did not answer.
pub const SCANNER_UNAVAILABLE: Code = Code::new(
    451,
    "4.3.0",
    "Error: content scanner unavailable, try again later",
);
/// Too many messages are waiting for the content scanner, or one ran out of time (RFC 3463
/// X.3.2: system not accepting network messages).
pub const SCANNER_BUSY: Code =
    Code::new(451, "4.3.2", "Error: content scanner busy, try again later");
/// A scanner tempfail whose own reply was unusable (X.7.1: delivery not authorized).
pub const POLICY_DEFERRED: Code = Code::new(
    451,
    "4.7.1",
    "Error: message deferred by policy, try again later",
);
/// RCPT over the recipient limit (RFC 5321 §4.5.3.1.8: 452, X.5.3).
pub const TOO_MANY_RECIPIENTS: Code = Code::new(452, "4.5.3", "Error: too many recipients");

// 5xx: syntax and sequence
/// A command line over the limit (RFC 5321 §4.5.3.1.4).
pub const LINE_TOO_LONG: Code = Code::new(500, "5.5.2", "Error: line too long");
/// AUTH cancelled by the client (RFC 4954 §4: `*`).
pub const AUTH_CANCELLED: Code = Code::new(501, "5.7.0", "Error: authentication cancelled");
/// An AUTH response that is not base64.
pub const AUTH_UNDECODABLE: Code = Code::new(501, "5.5.2", "Error: cannot decode response");
/// EXPN is not offered (RFC 5321 §3.5.3).
pub const EXPN_UNAVAILABLE: Code = Code::new(502, "5.5.1", "EXPN not available");
/// MAIL before HELO/EHLO.
pub const NEED_HELO: Code = Code::new(503, "5.5.1", "Error: send HELO/EHLO first");
/// AUTH before EHLO.
pub const NEED_EHLO: Code = Code::new(503, "5.5.1", "Error: send EHLO first");
/// MAIL inside a transaction.
pub const NESTED_MAIL: Code = Code::new(503, "5.5.1", "Error: nested MAIL command");
/// RCPT or BDAT without MAIL.
pub const NEED_MAIL: Code = Code::new(503, "5.5.1", "Error: need MAIL command");
/// DATA without RCPT.
pub const NEED_RCPT: Code = Code::new(503, "5.5.1", "Error: need RCPT command");
/// End of data with no transaction.
pub const NO_TRANSACTION: Code = Code::new(503, "5.5.1", "Error: no transaction");
/// Another command while BDAT chunks are being sent (RFC 3030 §2).
pub const BDAT_IN_PROGRESS: Code = Code::new(
    503,
    "5.5.1",
    "Error: BDAT transfer in progress, send BDAT, RSET or QUIT",
);
/// STARTTLS on an encrypted session.
pub const TLS_ALREADY_ACTIVE: Code = Code::new(503, "5.5.1", "Error: TLS already active");
/// AUTH after a successful AUTH (RFC 4954 §4).
pub const ALREADY_AUTHENTICATED: Code = Code::new(503, "5.5.1", "Error: already authenticated");
/// AUTH inside a mail transaction (RFC 4954 §4).
pub const AUTH_IN_TRANSACTION: Code = Code::new(
    503,
    "5.5.1",
    "Error: AUTH not permitted during a mail transaction",
);
/// AUTH where it is not offered.
pub const AUTH_NOT_ENABLED: Code = Code::new(503, "5.5.1", "Error: authentication not enabled");
/// An AUTH mechanism we do not offer (RFC 4954 §4).
pub const UNSUPPORTED_MECHANISM: Code =
    Code::new(504, "5.5.4", "Error: unsupported authentication mechanism");
/// DATA or BDAT LAST with no accepted recipient.
pub const NO_VALID_RECIPIENTS: Code = Code::new(554, "5.5.1", "Error: no valid recipients");
/// BODY=BINARYMIME (RFC 3030 §3) is not offered.
pub const BINARYMIME_UNSUPPORTED: Code =
    Code::new(555, "5.5.4", "Error: BODY=BINARYMIME not supported");

// 5xx: policy
/// MAIL before STARTTLS where TLS is required (RFC 3207 §4).
pub const TLS_REQUIRED: Code = Code::new(530, "5.7.0", "Must issue a STARTTLS command first");
/// MAIL before AUTH on submission (RFC 4954 §6).
pub const AUTH_REQUIRED: Code = Code::new(530, "5.7.0", "Authentication required");
/// BURL: the URL names nothing this user's submission may fetch (RFC 4468 §6: 554 5.6.6).
pub const URL_RESOLUTION_FAILED: Code = Code::new(
    554,
    "5.6.6",
    "Error: the URL cannot be resolved (bad, expired, revoked or not issued for you)",
);
/// Wrong credentials (RFC 4954 §6: 535 5.7.8).
pub const AUTH_FAILED: Code = Code::new(535, "5.7.8", "Error: authentication failed");
/// A plaintext mechanism before TLS (RFC 4954 §6: 538 5.7.11).
pub const ENCRYPTION_REQUIRED: Code = Code::new(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
);
/// An internal-only address from outside.
pub const RECIPIENT_ACCESS_DENIED: Code =
    Code::new(550, "5.7.1", "Recipient address rejected: access denied");
/// No such local recipient (X.1.1: bad destination mailbox address).
pub const USER_UNKNOWN: Code = Code::new(550, "5.1.1", "Recipient address rejected: User unknown");
/// Bare CR or LF in the data where the policy rejects them (RFC 5321 §2.3.8).
pub const BARE_NEWLINE: Code = Code::new(
    550,
    "5.5.2",
    "Error: bare <CR> or <LF> in message data (RFC 5321 section 2.3.8)",
);
/// SIZE= over the limit at MAIL (RFC 1870 §6.1).
pub const SIZE_EXCEEDS_LIMIT: Code =
    Code::new(552, "5.3.4", "Error: message size exceeds fixed limit");
/// The data grew over the limit (RFC 1870 §6.2).
pub const MESSAGE_TOO_BIG: Code = Code::new(552, "5.3.4", "Error: message file too big");
/// A submission sender the login may not use.
pub const SENDER_NOT_OWNED: Code =
    Code::new(553, "5.7.1", "Sender address rejected: not owned by user");
/// A UTF-8 address without SMTPUTF8 (RFC 6531 §3.5).
pub const NEEDS_SMTPUTF8: Code =
    Code::new(553, "5.6.7", "Error: non-ASCII address requires SMTPUTF8");
/// A foreign recipient from a client that may not relay.
pub const RELAY_DENIED: Code = Code::new(554, "5.7.1", "Relay access denied");
/// A scanner reject whose own reply was unusable.
pub const POLICY_REJECTED: Code = Code::new(554, "5.7.1", "Error: message rejected by policy");

/// The reply class for a command that does not parse (RFC 5321 §4.2.4; RFC 3463 X.5.2
/// syntax error, X.5.4 invalid arguments, X.1.3 bad address syntax); its text is the error.
pub fn for_command_error(e: &CommandError) -> Code {
    match e {
        CommandError::Unrecognized => Code::new(500, "5.5.2", "Error: command unrecognized"),
        CommandError::Syntax(_) => Code::new(501, "5.5.4", "Error: syntax error"),
        CommandError::Address(_) => Code::new(501, "5.1.3", "Error: bad address syntax"),
        CommandError::Parameter(_) => Code::new(555, "5.5.4", "Error: parameter not recognized"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_replies_serialize_with_their_status() {
        assert_eq!(
            Reply::from(NEED_RCPT).to_bytes(),
            b"503 5.5.1 Error: need RCPT command\r\n"
        );
        assert_eq!(
            Reply::from(START_DATA).to_bytes(),
            b"354 End data with <CR><LF>.<CR><LF>\r\n"
        );
        assert_eq!(
            TIMEOUT.from_host("mx.test").to_bytes(),
            b"421 4.4.2 mx.test Error: timeout exceeded\r\n"
        );
        assert_eq!(
            QUEUED.with_text("Ok: queued as Q1").to_bytes(),
            b"250 2.0.0 Ok: queued as Q1\r\n"
        );
    }
}
