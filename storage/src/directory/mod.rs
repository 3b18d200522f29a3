//! The directory: domains, users, groups, public mailboxes, addresses, relay policy and
//! settings. Stored as JSON records in the `directory` column family; read through an
//! immutable [`Directory`] snapshot that is rebuilt and swapped atomically after each change,
//! so sessions never lock to look a recipient up.

mod admin;
mod model;
mod resolve;
mod shared_map;

pub use admin::{AdminError, DirectoryHandle};
pub use model::*;
pub use resolve::{Directory, Mailbox, RcptResolution, Target};
pub use shared_map::SharedMap;
