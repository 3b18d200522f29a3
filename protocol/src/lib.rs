//! Sans-IO protocol codecs for postcore.
//!
//! Every codec here takes bytes and returns typed values (and the reverse); none of them
//! touches a socket, a file or a clock, so they can be unit-tested and fuzzed in isolation.
//! The running server (`postcore-actors`) owns the I/O and feeds bytes in.

pub mod imap;
pub mod managesieve;
pub mod message;
pub mod pop3;
pub mod quarantine_seal;
pub mod sieve;
pub mod smtp;
