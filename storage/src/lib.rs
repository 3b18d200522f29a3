//! Everything durable in postcore: the RocksDB store (directory, settings, queue records,
//! usage counters), the group-commit writer, the spool and the Maildir writer (io_uring).

pub mod bayes;
pub mod counts;
pub mod directory;
pub mod dirwatch;
pub mod durable_file;
pub mod greylist;
pub mod handoff;
pub mod journal;
pub mod mailbox;
pub mod maildir;
pub mod password;
pub mod queue;
pub mod sieve;
pub mod spool;
pub mod store;

pub use store::{CF_DIRECTORY, CF_QUEUE, CF_SPOOL, CF_USAGE, Store};
