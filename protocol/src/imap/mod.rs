//! IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) codec: a reader that assembles commands with
//! their literals, a parser into typed commands, and response building blocks.

pub mod command;
pub mod encode;
pub mod mime;
pub mod reader;
pub mod response;
pub mod sort;
pub mod text;
pub mod thread;
pub mod types;
pub mod url;

pub use command::{
    AppendMessage, CatPart, Command, CommandBody, MAX_NOTIFY_MAILBOXES, NotifyEvent, NotifyFilter,
    NotifyGroup, NotifySet, ParseError, QResync, parse, parse_section,
};
pub use reader::{CommandReader, Limits, ReadEvent};
pub use response::{Code, Status, StatusText};
pub use types::*;
