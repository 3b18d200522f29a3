//! Status responses (RFC 9051 §7.1) and their response codes, as types with one serializer:
//! sessions say `Status::No` with `Code::NonExistent`, never `"NO [NONEXISTENT] …"`.

use std::borrow::Cow;
use std::fmt;

/// The kind of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `OK`: success (tagged) or information (untagged).
    Ok,
    /// `NO`: the command failed.
    No,
    /// `BAD`: protocol or syntax error.
    Bad,
    /// `BYE`: the server is closing the connection (untagged only).
    Bye,
}

impl Status {
    /// The keyword on the wire.
    pub fn keyword(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
            Status::Bye => "BYE",
        }
    }
}

/// A response code (RFC 9051 §7.1 and the extensions that define their own), written
/// `[NAME arguments]` in front of the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// RFC 5530: the mailbox name exists.
    AlreadyExists,
    /// RFC 4315: the UIDVALIDITY and UID an APPEND gave the message.
    AppendUid {
        /// UIDVALIDITY of the target mailbox.
        uidvalidity: u32,
        /// UIDs of the messages (a uid-set: several after MULTIAPPEND, RFC 4315 §3).
        uids: String,
    },
    /// RFC 5530: wrong credentials.
    AuthenticationFailed,
    /// RFC 5530: the operation violates a server rule.
    Cannot,
    /// RFC 9051 §7.1: the capability list (with the greeting or after login).
    Capability(String),
    /// RFC 7162 §3.2.11: the previous mailbox was closed by SELECT.
    Closed,
    /// RFC 4315: source and destination UIDs of COPY/MOVE (sets in sequence-set syntax).
    CopyUid {
        /// UIDVALIDITY of the target mailbox.
        uidvalidity: u32,
        /// Source UIDs.
        from: String,
        /// Destination UIDs.
        to: String,
    },
    /// RFC 7162 §3.1.2: the mailbox's highest mod-sequence.
    HighestModSeq(u64),
    /// RFC 9051 §7.1: a search charset the server does not support, with those it does.
    BadCharset(String),
    /// RFC 5530: a per-user or per-address limit was reached.
    Limit,
    /// RFC 7162 §3.1.3: messages an UNCHANGEDSINCE STORE did not change.
    Modified(String),
    /// RFC 7162 §3.1.2: the mailbox keeps no mod-sequences.
    NoModSeq,
    /// NOUPDATE "tag" (RFC 5267 §4.3.1): the search's UPDATE is refused.
    NoUpdate(String),
    /// URLMECH mechanisms (RFC 4467 §6): the URLAUTH mechanisms a mailbox has keys for.
    UrlMech(String),
    /// BADEVENT (events…) (RFC 5465 §3.1): the events the server supports.
    BadEvent(String),
    /// NOTIFICATIONOVERFLOW (RFC 5465 §5.8): notifications were turned off.
    NotificationOverflow,
    /// RFC 5530: not permitted by the access control list.
    NoPerm,
    /// RFC 5530: no such mailbox (or user, or quota root).
    NonExistent,
    /// RFC 5530 / RFC 9208: a quota would be exceeded.
    OverQuota,
    /// RFC 9051 §7.1: flags the client may change permanently.
    PermanentFlags(String),
    /// RFC 5530: the operation needs TLS.
    PrivacyRequired,
    /// RFC 9051 §7.1: the mailbox is selected read-only.
    ReadOnly,
    /// RFC 9051 §7.1: the mailbox is selected read-write.
    ReadWrite,
    /// RFC 5530: a server fault.
    ServerBug,
    /// COMPRESSIONACTIVE (RFC 4978 §3): COMPRESS again.
    CompressionActive,
    /// BADURL url (RFC 4469 §6): a CATENATE URL that names nothing the user can read.
    BadUrl(String),
    /// METADATA (RFC 5464 §4.2.1, §4.3): `LONGENTRIES n`, `MAXSIZE n`, `TOOMANY`, `NOPRIVATE`.
    Metadata(String),
    /// RFC 7889: a command or literal over the server's limit.
    TooBig,
    /// RFC 9051 §7.1: the target mailbox does not exist, CREATE may help.
    TryCreate,
    /// RFC 9051 §7.1: the next UID.
    UidNext(u32),
    /// RFC 9051 §7.1: the UIDVALIDITY of the mailbox.
    UidValidity(u32),
    /// RFC 5530: a temporary failure.
    Unavailable,
    /// RFC 3516: BINARY of a part with an unknown content transfer encoding.
    UnknownCte,
    /// RFC 3501: the first unseen message (IMAP4rev1 sessions).
    Unseen(u32),
    /// RFC 6154: a special-use attribute the server does not support.
    UseAttr,
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::AlreadyExists => f.write_str("ALREADYEXISTS"),
            Code::AppendUid { uidvalidity, uids } => write!(f, "APPENDUID {uidvalidity} {uids}"),
            Code::AuthenticationFailed => f.write_str("AUTHENTICATIONFAILED"),
            Code::BadCharset(list) => write!(f, "BADCHARSET ({list})"),
            Code::Cannot => f.write_str("CANNOT"),
            Code::Capability(c) => write!(f, "CAPABILITY {c}"),
            Code::Closed => f.write_str("CLOSED"),
            Code::CopyUid {
                uidvalidity,
                from,
                to,
            } => write!(f, "COPYUID {uidvalidity} {from} {to}"),
            Code::HighestModSeq(m) => write!(f, "HIGHESTMODSEQ {m}"),
            Code::Limit => f.write_str("LIMIT"),
            Code::Modified(s) => write!(f, "MODIFIED {s}"),
            Code::NoModSeq => f.write_str("NOMODSEQ"),
            Code::NoUpdate(t) => write!(f, "NOUPDATE \"{t}\""),
            Code::BadEvent(e) => write!(f, "BADEVENT ({e})"),
            Code::UrlMech(m) => write!(f, "URLMECH {m}"),
            Code::NotificationOverflow => f.write_str("NOTIFICATIONOVERFLOW"),
            Code::NoPerm => f.write_str("NOPERM"),
            Code::NonExistent => f.write_str("NONEXISTENT"),
            Code::OverQuota => f.write_str("OVERQUOTA"),
            Code::PermanentFlags(p) => write!(f, "PERMANENTFLAGS ({p})"),
            Code::PrivacyRequired => f.write_str("PRIVACYREQUIRED"),
            Code::ReadOnly => f.write_str("READ-ONLY"),
            Code::ReadWrite => f.write_str("READ-WRITE"),
            Code::ServerBug => f.write_str("SERVERBUG"),
            Code::CompressionActive => f.write_str("COMPRESSIONACTIVE"),
            Code::BadUrl(u) => write!(f, "BADURL {u}"),
            Code::Metadata(m) => write!(f, "METADATA {m}"),
            Code::TooBig => f.write_str("TOOBIG"),
            Code::TryCreate => f.write_str("TRYCREATE"),
            Code::UidNext(u) => write!(f, "UIDNEXT {u}"),
            Code::UidValidity(u) => write!(f, "UIDVALIDITY {u}"),
            Code::Unavailable => f.write_str("UNAVAILABLE"),
            Code::UnknownCte => f.write_str("UNKNOWN-CTE"),
            Code::Unseen(n) => write!(f, "UNSEEN {n}"),
            Code::UseAttr => f.write_str("USEATTR"),
        }
    }
}

/// The text of a status response: an optional code and human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusText {
    /// The response code, if any.
    pub code: Option<Code>,
    /// Text for people; never contains CR or LF (replaced when written).
    pub text: Cow<'static, str>,
}

impl StatusText {
    /// Text without a code.
    pub fn new(text: impl Into<Cow<'static, str>>) -> StatusText {
        StatusText {
            code: None,
            text: text.into(),
        }
    }

    /// Text with a code.
    pub fn with(code: Code, text: impl Into<Cow<'static, str>>) -> StatusText {
        StatusText {
            code: Some(code),
            text: text.into(),
        }
    }
}

impl fmt::Display for StatusText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = &self.code {
            write!(f, "[{c}] ")?;
        }
        if self.text.contains(['\r', '\n']) {
            f.write_str(&self.text.replace(['\r', '\n'], " "))
        } else {
            f.write_str(&self.text)
        }
    }
}

/// Appends `tag STATUS [CODE] text` CRLF (RFC 9051 §7.1); `tag` `*` for untagged.
pub fn write_status(out: &mut Vec<u8>, tag: &str, status: Status, text: &StatusText) {
    use std::io::Write as _;
    let _ = write!(out, "{tag} {} {text}\r\n", status.keyword());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(tag: &str, s: Status, t: StatusText) -> String {
        let mut out = Vec::new();
        write_status(&mut out, tag, s, &t);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn status_lines_with_and_without_codes() {
        assert_eq!(
            line(
                "a1",
                Status::No,
                StatusText::with(Code::NonExistent, "Mailbox does not exist")
            ),
            "a1 NO [NONEXISTENT] Mailbox does not exist\r\n"
        );
        assert_eq!(
            line(
                "*",
                Status::Ok,
                StatusText::with(Code::PermanentFlags("\\Seen \\*".into()), "Flags permitted")
            ),
            "* OK [PERMANENTFLAGS (\\Seen \\*)] Flags permitted\r\n"
        );
        assert_eq!(
            line(
                "b",
                Status::Ok,
                StatusText::with(
                    Code::CopyUid {
                        uidvalidity: 7,
                        from: "1:3".into(),
                        to: "10:12".into()
                    },
                    "Done"
                )
            ),
            "b OK [COPYUID 7 1:3 10:12] Done\r\n"
        );
        assert_eq!(
            line("c", Status::Bad, StatusText::new("x\r\ny")),
            "c BAD x  y\r\n"
        );
        assert_eq!(
            line(
                "*",
                Status::Bye,
                StatusText::with(Code::Unavailable, "Server shutting down")
            ),
            "* BYE [UNAVAILABLE] Server shutting down\r\n"
        );
    }
}
