//! IMAP command parser (RFC 9051 §6 and §9, RFC 3501, and the extensions postcore announces).
//!
//! Input is one whole command as assembled by [`super::reader::CommandReader`]: literals are
//! inline as `{N}` CRLF followed by N octets. Nesting (search keys, parenthesised lists) is
//! bounded, so hostile input costs bounded stack.

mod cursor;
mod dispatch;
mod fetch;
mod mailbox;
mod metadata;
mod notify;
mod search;

use super::response::Code;
use super::types::*;
use cursor::{Cur, is_atom_char};
pub use notify::{MAX_NOTIFY_MAILBOXES, NotifyEvent, NotifyFilter, NotifyGroup, NotifySet};

/// Deepest nesting of parentheses accepted in a command.
pub const MAX_DEPTH: usize = 32;

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The client's tag.
    pub tag: String,
    /// What to do.
    pub body: CommandBody,
}

/// A message given to APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    /// Flags to set.
    pub flags: Vec<String>,
    /// INTERNALDATE as Unix seconds, if given.
    pub date: Option<i64>,
    /// The message (empty when it is built from `catenate`).
    pub data: Vec<u8>,
    /// CATENATE (RFC 4469): the parts the message is made of, in order.
    pub catenate: Vec<CatPart>,
}

/// One part of a CATENATE (RFC 4469 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatPart {
    /// Octets given in the command.
    Text(Vec<u8>),
    /// A message or part named by an IMAP URL.
    Url(String),
}

/// QRESYNC parameters of SELECT (RFC 7162 §3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResync {
    /// The client's last known UIDVALIDITY.
    pub uidvalidity: u32,
    /// The client's last known HIGHESTMODSEQ.
    pub modseq: u64,
    /// UIDs the client knows (optional).
    pub known_uids: Option<SeqSet>,
}

/// The commands postcore understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    /// CAPABILITY.
    Capability,
    /// NOOP.
    Noop,
    /// LOGOUT.
    Logout,
    /// STARTTLS.
    StartTls,
    /// AUTHENTICATE mechanism [initial-response] (SASL-IR, RFC 4959).
    Authenticate {
        /// Mechanism name, upper case.
        mechanism: String,
        /// Initial response (base64, or `=` for empty).
        initial: Option<String>,
    },
    /// LOGIN user password.
    Login {
        /// User name.
        user: String,
        /// Password.
        password: String,
    },
    /// ENABLE capabilities (RFC 5161).
    Enable(Vec<String>),
    /// SELECT / EXAMINE.
    Select {
        /// Mailbox name.
        mailbox: String,
        /// EXAMINE.
        read_only: bool,
        /// (CONDSTORE) parameter.
        condstore: bool,
        /// (QRESYNC (...)) parameter.
        qresync: Option<QResync>,
    },
    /// CREATE mailbox [(USE (\Special))].
    Create {
        /// Mailbox name.
        mailbox: String,
        /// RFC 6154 §3 special-use attributes.
        special_use: Vec<String>,
    },
    /// DELETE.
    Delete(String),
    /// RENAME.
    Rename {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// SUBSCRIBE.
    Subscribe(String),
    /// UNSUBSCRIBE.
    Unsubscribe(String),
    /// LIST / LSUB (with LIST-EXTENDED options).
    List {
        /// Reference name.
        reference: String,
        /// Patterns.
        patterns: Vec<String>,
        /// Selection and return options.
        options: ListOptions,
    },
    /// NAMESPACE (RFC 2342).
    Namespace,
    /// COMPRESS mechanism (RFC 4978).
    Compress(String),
    /// GETMETADATA (RFC 5464 §4.2).
    GetMetadata {
        /// The mailbox, or "" for server entries.
        mailbox: String,
        /// Entry names asked for.
        entries: Vec<String>,
        /// MAXSIZE: longer values are left out (and counted in LONGENTRIES).
        max_size: Option<u64>,
        /// DEPTH: 0, 1, or `u32::MAX` for infinity.
        depth: u32,
    },
    /// SETMETADATA (RFC 5464 §4.3): entries with values, `None` removes.
    SetMetadata {
        /// The mailbox, or "" for server entries.
        mailbox: String,
        /// (entry, value).
        entries: Vec<(String, Option<Vec<u8>>)>,
    },
    /// STATUS mailbox (items).
    Status {
        /// Mailbox name.
        mailbox: String,
        /// Items asked for.
        items: Vec<StatusItem>,
    },
    /// APPEND, one message or several (MULTIAPPEND, RFC 3502).
    Append {
        /// Target mailbox.
        mailbox: String,
        /// The messages, at least one.
        messages: Vec<AppendMessage>,
    },
    /// IDLE (RFC 2177).
    Idle,
    /// CHECK.
    Check,
    /// CLOSE.
    Close,
    /// UNSELECT (RFC 3691).
    Unselect,
    /// EXPUNGE, or UID EXPUNGE set (UIDPLUS).
    Expunge(Option<SeqSet>),
    /// SEARCH / UID SEARCH.
    Search {
        /// UID SEARCH.
        uid: bool,
        /// RETURN options (ESEARCH).
        ret: SearchReturn,
        /// Criteria (all must match).
        key: SearchKey,
    },
    /// GENURLAUTH (RFC 4467 §7.2): (URL rump, mechanism) pairs.
    GenUrlAuth(Vec<(String, String)>),
    /// URLFETCH (RFC 4467 §7.3): the URLs.
    UrlFetch(Vec<String>),
    /// RESETKEY (RFC 4467 §7.1): every key (`None`), or one mailbox's for mechanisms.
    ResetKey(Option<(String, Vec<String>)>),
    /// NOTIFY SET (`Some`) or NOTIFY NONE (RFC 5465 §3.1).
    Notify(Option<NotifySet>),
    /// CANCELUPDATE (RFC 5267 §4.3.5): the tags of the searches whose updates stop.
    CancelUpdate(Vec<String>),
    /// THREAD / UID THREAD (RFC 5256).
    Thread {
        /// UID THREAD.
        uid: bool,
        /// The threading algorithm.
        algorithm: crate::imap::thread::Algorithm,
        /// Search criteria: which messages are threaded.
        key: SearchKey,
    },
    /// SORT / UID SORT (RFC 5256), with ESORT's RETURN options (RFC 5267).
    Sort {
        /// UID SORT.
        uid: bool,
        /// RETURN options (`extended` when given: answer with ESEARCH).
        ret: SearchReturn,
        /// Criteria: (reverse, key).
        criteria: Vec<(bool, SortKey)>,
        /// Search criteria.
        key: SearchKey,
    },
    /// FETCH / UID FETCH.
    Fetch {
        /// UID FETCH.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Items.
        atts: Vec<FetchAtt>,
        /// CHANGEDSINCE modifier (RFC 7162).
        changed_since: Option<u64>,
        /// VANISHED modifier (RFC 7162 §3.2.6).
        vanished: bool,
    },
    /// STORE / UID STORE.
    Store {
        /// UID STORE.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// UNCHANGEDSINCE modifier.
        unchanged_since: Option<u64>,
        /// Replace / add / remove.
        mode: StoreMode,
        /// .SILENT.
        silent: bool,
        /// Flags.
        flags: Vec<String>,
    },
    /// COPY / UID COPY.
    Copy {
        /// UID COPY.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Target.
        mailbox: String,
    },
    /// MOVE / UID MOVE (RFC 6851).
    Move {
        /// UID MOVE.
        uid: bool,
        /// Messages.
        set: SeqSet,
        /// Target.
        mailbox: String,
    },
    /// ID (RFC 2971).
    Id(Vec<(String, Option<String>)>),
    /// GETQUOTA root (RFC 9208).
    GetQuota(String),
    /// GETQUOTAROOT mailbox.
    GetQuotaRoot(String),
    /// SETQUOTA root (...) — only administrators set quotas.
    SetQuota(String),
    /// GETACL mailbox (RFC 4314).
    GetAcl(String),
    /// SETACL mailbox identifier rights.
    SetAcl {
        /// Mailbox.
        mailbox: String,
        /// User the rights are for.
        identifier: String,
        /// Rights, with an optional leading `+` or `-`.
        rights: String,
    },
    /// DELETEACL mailbox identifier.
    DeleteAcl {
        /// Mailbox.
        mailbox: String,
        /// User.
        identifier: String,
    },
    /// LISTRIGHTS mailbox identifier.
    ListRights {
        /// Mailbox.
        mailbox: String,
        /// User.
        identifier: String,
    },
    /// MYRIGHTS mailbox.
    MyRights(String),
}

/// Why a command could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The tag, if one was read (`*` otherwise).
    pub tag: String,
    /// The response code the `BAD` carries, when the failure has one (`BADCHARSET`).
    pub code: Option<Code>,
    /// What was wrong.
    pub message: String,
}

/// Why a parser step failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fail {
    code: Option<Code>,
    text: String,
}

impl Fail {
    /// A search charset other than UTF-8 or US-ASCII (RFC 9051 §6.4.4, §7.1 BADCHARSET).
    fn bad_charset() -> Fail {
        Fail {
            code: Some(Code::BadCharset("UTF-8 US-ASCII".into())),
            text: "unsupported charset".into(),
        }
    }
}

impl From<String> for Fail {
    fn from(text: String) -> Fail {
        Fail { code: None, text }
    }
}

impl From<&str> for Fail {
    fn from(text: &str) -> Fail {
        Fail {
            code: None,
            text: text.into(),
        }
    }
}

/// What the parser's steps return: the value, or why the command is malformed.
type R<T> = Result<T, Fail>;

/// A section in FETCH's syntax without the brackets (`1.2`, `HEADER`, `2.MIME`), as an IMAP
/// URL's `;SECTION=` gives it (RFC 5092 §6).
pub fn parse_section(s: &str) -> Option<Section> {
    let wrapped = format!("[{s}]");
    let mut c = Cur {
        d: wrapped.as_bytes(),
        p: 0,
    };
    let section = c.section().ok()?;
    c.done().then_some(section)
}

/// Parses one command (as returned by the reader).
pub fn parse(input: &[u8]) -> Result<Command, ParseError> {
    let mut c = Cur { d: input, p: 0 };
    let tag = c.take_while(|b| (is_atom_char(b) || b == b']') && b != b'+');
    if tag.is_empty() {
        return Err(ParseError {
            tag: "*".into(),
            code: None,
            message: "missing tag".into(),
        });
    }
    let tag = String::from_utf8_lossy(tag).into_owned();
    let body = c.sp().and_then(|_| c.body());
    match body {
        Ok(body) => Ok(Command { tag, body }),
        Err(f) => Err(ParseError {
            tag,
            code: f.code,
            message: f.text,
        }),
    }
}

#[cfg(test)]
mod tests;
