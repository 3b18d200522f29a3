//! SMTP (RFC 5321) and its extensions as used by postcore: command lines, paths,
//! the DATA/BDAT content receiver, SASL helpers and replies.

pub mod address;
pub mod client;
pub mod codes;
pub mod command;
pub mod data;
pub mod line;
pub mod reply;
pub mod sasl;

pub use address::{Address, AddressError};
pub use command::{BodyType, Command, CommandError, MailParams, RcptParams};
pub use data::{DataEvent, DataReceiver, NewlineIssue};
pub use line::{LineEvent, LineReader};
pub use reply::Reply;
