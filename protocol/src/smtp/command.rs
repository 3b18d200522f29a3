//! SMTP command lines, RFC 5321 §4.1.1 plus the extensions postcore offers:
//! SIZE (RFC 1870), 8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), CHUNKING/BDAT (RFC 3030),
//! STARTTLS (RFC 3207), AUTH (RFC 4954).
//!
//! Command names are matched as integers built from their upper-cased first four (or, for
//! STARTTLS, eight) octets, so the parser never allocates to find out what a line is.

use super::address::{self, Address, AddressError};
use std::fmt;

/// Body type declared with `BODY=` at MAIL FROM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    /// No BODY parameter or `BODY=7BIT`.
    #[default]
    SevenBit,
    /// `BODY=8BITMIME` (RFC 6152).
    EightBitMime,
    /// `BODY=BINARYMIME` (RFC 3030); only valid with BDAT.
    BinaryMime,
}

/// Parameters of MAIL FROM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=` declared message size (RFC 1870 §3).
    pub size: Option<u64>,
    /// `BODY=` (RFC 6152).
    pub body: BodyType,
    /// `SMTPUTF8` (RFC 6531 §3.4).
    pub smtputf8: bool,
    /// `AUTH=` mailbox (RFC 4954 §5), kept verbatim.
    pub auth: Option<String>,
}

/// Parameters of RCPT TO (none are offered yet; kept for DSN later).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {}

/// One parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `EHLO domain` (RFC 5321 §4.1.1.1).
    Ehlo(String),
    /// `HELO domain`.
    Helo(String),
    /// `MAIL FROM:<path> params`; `None` is the null reverse-path.
    Mail {
        /// Reverse-path.
        from: Option<Address>,
        /// ESMTP parameters.
        params: MailParams,
    },
    /// `RCPT TO:<path>`; `<postmaster>` without domain is returned with an empty domain.
    Rcpt {
        /// Forward-path.
        to: Address,
        /// ESMTP parameters.
        params: RcptParams,
    },
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030 §2).
    Bdat {
        /// Chunk size in octets.
        size: u64,
        /// True for the last chunk.
        last: bool,
    },
    /// `BURL imap-url [LAST]` (RFC 4468 §3): the next chunk is the message or part the
    /// authorized URL names.
    Burl {
        /// The URL (an RFC 4467 authorized IMAP URL).
        url: String,
        /// True for the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY string`.
    Vrfy(String),
    /// `EXPN string`.
    Expn(String),
    /// `HELP [topic]`.
    Help,
    /// `STARTTLS` (RFC 3207).
    StartTls,
    /// `AUTH mechanism [initial-response]` (RFC 4954 §4).
    Auth {
        /// Mechanism name, upper case.
        mechanism: String,
        /// Initial response, base64 (or `=` for empty).
        initial: Option<String>,
    },
}

/// A command line that could not be accepted, with the reply class it deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// Unknown command verb: 500 5.5.2.
    Unrecognized,
    /// Known verb, bad syntax: 501 5.5.4 with a reason.
    Syntax(&'static str),
    /// Bad address: 501/553 5.1.x.
    Address(AddressError),
    /// Unknown or unsupported ESMTP parameter: 555 5.5.4.
    Parameter(String),
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unrecognized => f.write_str("command not recognized"),
            CommandError::Syntax(s) => f.write_str(s),
            CommandError::Address(e) => write!(f, "{e}"),
            CommandError::Parameter(p) => write!(f, "unsupported parameter {p}"),
        }
    }
}

const fn tag4(s: &[u8; 4]) -> u32 {
    u32::from_be_bytes(*s)
}

const EHLO: u32 = tag4(b"EHLO");
const HELO: u32 = tag4(b"HELO");
const MAIL: u32 = tag4(b"MAIL");
const RCPT: u32 = tag4(b"RCPT");
const DATA: u32 = tag4(b"DATA");
const BDAT: u32 = tag4(b"BDAT");
const BURL: u32 = tag4(b"BURL");
const RSET: u32 = tag4(b"RSET");
const NOOP: u32 = tag4(b"NOOP");
const QUIT: u32 = tag4(b"QUIT");
const VRFY: u32 = tag4(b"VRFY");
const EXPN: u32 = tag4(b"EXPN");
const HELP: u32 = tag4(b"HELP");
const AUTH: u32 = tag4(b"AUTH");
const STARTTLS: u64 = u64::from_be_bytes(*b"STARTTLS");

fn verb_tag(line: &[u8]) -> (u32, usize) {
    let end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    if end != 4 {
        return (0, end);
    }
    let mut t = [0u8; 4];
    for (d, s) in t.iter_mut().zip(line) {
        *d = s.to_ascii_uppercase();
    }
    (u32::from_be_bytes(t), end)
}

impl Command {
    /// Parses one command line (without CRLF). `utf8_allowed` says whether non-ASCII
    /// addresses may appear (the server offers SMTPUTF8; MAIL must still request it).
    pub fn parse(line: &[u8]) -> Result<Command, CommandError> {
        let (tag, verb_len) = verb_tag(line);
        let rest_bytes = line.get(verb_len..).unwrap_or(&[]);
        let rest_bytes = rest_bytes.strip_prefix(b" ").unwrap_or(rest_bytes);
        if verb_len == 8 {
            let mut t = [0u8; 8];
            for (d, s) in t.iter_mut().zip(line) {
                *d = s.to_ascii_uppercase();
            }
            if u64::from_be_bytes(t) == STARTTLS {
                return if rest_bytes.iter().all(|b| *b == b' ') {
                    Ok(Command::StartTls)
                } else {
                    Err(CommandError::Syntax("STARTTLS takes no argument"))
                };
            }
            return Err(CommandError::Unrecognized);
        }
        let rest = std::str::from_utf8(rest_bytes)
            .map_err(|_| CommandError::Syntax("invalid UTF-8 in command"))?
            .trim_end_matches(' ');
        let no_arg = |c: Command| {
            if rest.is_empty() {
                Ok(c)
            } else {
                Err(CommandError::Syntax("no argument expected"))
            }
        };
        match tag {
            EHLO | HELO => {
                let name = rest.trim();
                if name.is_empty() || name.contains(' ') && tag == HELO {
                    return Err(CommandError::Syntax("hostname required"));
                }
                let name = name.split(' ').next().unwrap_or_default().to_string();
                Ok(if tag == EHLO {
                    Command::Ehlo(name)
                } else {
                    Command::Helo(name)
                })
            }
            MAIL => parse_mail(rest),
            RCPT => parse_rcpt(rest),
            DATA => no_arg(Command::Data),
            BDAT => parse_bdat(rest),
            BURL => parse_burl(rest),
            RSET => no_arg(Command::Rset),
            NOOP => Ok(Command::Noop),
            QUIT => no_arg(Command::Quit),
            VRFY => Ok(Command::Vrfy(rest.to_string())),
            EXPN => Ok(Command::Expn(rest.to_string())),
            HELP => Ok(Command::Help),
            AUTH => {
                let mut parts = rest.split(' ').filter(|s| !s.is_empty());
                let mechanism = parts
                    .next()
                    .ok_or(CommandError::Syntax("mechanism required"))?
                    .to_ascii_uppercase();
                let initial = parts.next().map(str::to_string);
                if parts.next().is_some() {
                    return Err(CommandError::Syntax("too many arguments"));
                }
                Ok(Command::Auth { mechanism, initial })
            }
            _ => Err(CommandError::Unrecognized),
        }
    }
}

/// Splits `FROM:<path> params` after the keyword; tolerates one space after the colon,
/// as many clients send it.
fn split_path<'a>(rest: &'a str, keyword: &str) -> Result<(&'a str, &'a str), CommandError> {
    let head = rest
        .get(..keyword.len())
        .ok_or(CommandError::Syntax("syntax error in parameters"))?;
    if !head.eq_ignore_ascii_case(keyword) {
        return Err(CommandError::Syntax("syntax error in parameters"));
    }
    let after = rest[keyword.len()..].trim_start_matches(' ');
    if !after.starts_with('<') {
        return Err(CommandError::Address(AddressError::MissingBrackets));
    }
    // The path ends at the first '>' that is not inside a quoted local part.
    let bytes = after.as_bytes();
    let (mut i, mut quoted) = (0, false);
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if quoted => i += 1,
            b'"' => quoted = !quoted,
            b'>' if !quoted => break,
            _ => {}
        }
        i += 1;
    }
    if i >= bytes.len() {
        return Err(CommandError::Address(AddressError::MissingBrackets));
    }
    Ok((&after[..=i], after[i + 1..].trim_start_matches(' ')))
}

fn parse_mail(rest: &str) -> Result<Command, CommandError> {
    let (path, params_str) = split_path(rest, "FROM:")?;
    let mut params = MailParams::default();
    for p in params_str.split(' ').filter(|s| !s.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        match k.to_ascii_uppercase().as_str() {
            "SIZE" => {
                params.size = Some(
                    v.parse()
                        .map_err(|_| CommandError::Syntax("bad SIZE value"))?,
                )
            }
            "BODY" => {
                params.body = match v.to_ascii_uppercase().as_str() {
                    "7BIT" => BodyType::SevenBit,
                    "8BITMIME" => BodyType::EightBitMime,
                    "BINARYMIME" => BodyType::BinaryMime,
                    _ => return Err(CommandError::Parameter(p.to_string())),
                }
            }
            "SMTPUTF8" if v.is_empty() => params.smtputf8 = true,
            "AUTH" if !v.is_empty() => params.auth = Some(v.to_string()),
            _ => return Err(CommandError::Parameter(p.to_string())),
        }
    }
    let from = address::parse_path(path, params.smtputf8).map_err(CommandError::Address)?;
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(rest: &str) -> Result<Command, CommandError> {
    let (path, params_str) = split_path(rest, "TO:")?;
    if let Some(p) = params_str.split(' ').find(|s| !s.is_empty()) {
        return Err(CommandError::Parameter(p.to_string()));
    }
    // RFC 5321 §4.1.1.3: "<Postmaster>" without a domain must be accepted.
    if path.eq_ignore_ascii_case("<postmaster>") {
        let to = Address {
            local: "postmaster".into(),
            domain: String::new(),
        };
        return Ok(Command::Rcpt {
            to,
            params: RcptParams {},
        });
    }
    // Non-ASCII recipients are accepted here; the session refuses them unless MAIL said SMTPUTF8.
    match address::parse_path(path, true).map_err(CommandError::Address)? {
        Some(to) => Ok(Command::Rcpt {
            to,
            params: RcptParams {},
        }),
        None => Err(CommandError::Address(AddressError::MissingAt)),
    }
}

fn parse_bdat(rest: &str) -> Result<Command, CommandError> {
    let mut parts = rest.split(' ').filter(|s| !s.is_empty());
    let size = parts
        .next()
        .and_then(|s| {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse().ok()
            } else {
                None
            }
        })
        .ok_or(CommandError::Syntax("BDAT needs a chunk size"))?;
    let last = end_marker(parts, "BDAT size [LAST]")?;
    Ok(Command::Bdat { size, last })
}

/// RFC 4468 §3: `"BURL" SP absolute-URI [SP end-marker]`, `end-marker = "LAST"`.
fn parse_burl(rest: &str) -> Result<Command, CommandError> {
    let mut parts = rest.split(' ').filter(|s| !s.is_empty());
    let url = parts
        .next()
        .filter(|u| u.contains(':') && u.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(CommandError::Syntax("BURL needs an absolute URL"))?
        .to_string();
    let last = end_marker(parts, "BURL url [LAST]")?;
    Ok(Command::Burl { url, last })
}

/// The optional `LAST` that ends BDAT and BURL (RFC 3030 §2, RFC 4468 §3), and nothing
/// after it.
fn end_marker<'a>(
    mut rest: impl Iterator<Item = &'a str>,
    usage: &'static str,
) -> Result<bool, CommandError> {
    let last = match rest.next() {
        None => false,
        Some(s) if s.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::Syntax(usage)),
    };
    match rest.next() {
        Some(_) => Err(CommandError::Syntax(usage)),
        None => Ok(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_are_case_insensitive() {
        assert_eq!(
            Command::parse(b"ehlo client.test"),
            Ok(Command::Ehlo("client.test".into()))
        );
        assert_eq!(Command::parse(b"StartTLS"), Ok(Command::StartTls));
        assert_eq!(Command::parse(b"QUIT"), Ok(Command::Quit));
        assert_eq!(Command::parse(b"XYZZ"), Err(CommandError::Unrecognized));
        assert_eq!(Command::parse(b""), Err(CommandError::Unrecognized));
        assert_eq!(Command::parse(b"DATAX"), Err(CommandError::Unrecognized));
    }

    #[test]
    fn mail_with_params() {
        let c = Command::parse(b"MAIL FROM:<a@b.test> SIZE=1000 BODY=8BITMIME SMTPUTF8").unwrap();
        match c {
            Command::Mail { from, params } => {
                assert_eq!(from.unwrap().to_string(), "a@b.test");
                assert_eq!(params.size, Some(1000));
                assert_eq!(params.body, BodyType::EightBitMime);
                assert!(params.smtputf8);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Command::parse(b"MAIL FROM: <>"),
            Ok(Command::Mail { from: None, .. })
        ));
        assert!(matches!(
            Command::parse(b"MAIL FROM:<> FOO=1"),
            Err(CommandError::Parameter(_))
        ));
        assert!(matches!(
            Command::parse(b"MAIL TO:<a@b.test>"),
            Err(CommandError::Syntax(_))
        ));
        assert!(matches!(
            Command::parse(b"MAIL FROM:a@b.test"),
            Err(CommandError::Address(_))
        ));
    }

    #[test]
    fn rcpt_and_postmaster() {
        match Command::parse(b"RCPT TO:<PostMaster>").unwrap() {
            Command::Rcpt { to, .. } => {
                assert_eq!((to.local.as_str(), to.domain.as_str()), ("postmaster", ""))
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            Command::parse(b"RCPT TO:<>"),
            Err(CommandError::Address(_))
        ));
        assert!(matches!(
            Command::parse(b"RCPT TO:<\"a>b\"@x.test>"),
            Ok(Command::Rcpt { .. })
        ));
    }

    #[test]
    fn bdat() {
        assert_eq!(
            Command::parse(b"BDAT 100 LAST"),
            Ok(Command::Bdat {
                size: 100,
                last: true
            })
        );
        assert_eq!(
            Command::parse(b"BDAT 0"),
            Ok(Command::Bdat {
                size: 0,
                last: false
            })
        );
        assert!(Command::parse(b"BDAT -1").is_err());
        assert!(Command::parse(b"BDAT 99999999999999999999999").is_err());
    }

    #[test]
    fn auth() {
        assert_eq!(
            Command::parse(b"AUTH plain AGFAYg=="),
            Ok(Command::Auth {
                mechanism: "PLAIN".into(),
                initial: Some("AGFAYg==".into())
            })
        );
        assert!(Command::parse(b"AUTH").is_err());
    }

    #[test]
    fn burl_forms() {
        assert_eq!(
            Command::parse(b"BURL imap://a@h/INBOX/;uid=1;urlauth=authuser:internal:00 LAST"),
            Ok(Command::Burl {
                url: "imap://a@h/INBOX/;uid=1;urlauth=authuser:internal:00".into(),
                last: true
            })
        );
        assert!(matches!(
            Command::parse(b"burl imap://x"),
            Ok(Command::Burl { last: false, .. })
        ));
        for bad in [
            "BURL",
            "BURL nourl",
            "BURL imap://x FIRST",
            "BURL imap://x LAST more",
        ] {
            assert!(Command::parse(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
