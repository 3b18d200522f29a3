//! Sieve (RFC 5228) and the extensions clients and the reference use: a sans-IO compiler
//! (source → checked [`program::Script`]) and interpreter (script + message → [`interp::Outcome`]).
//! Delivery carries the outcome out; ManageSieve stores and checks scripts with [`compile`].
//!
//! Extensions: fileinto, reject/ereject (RFC 5429), envelope, encoded-character, imap4flags
//! (RFC 5232), copy (RFC 3894), body (RFC 5173), variables (RFC 5229), vacation and
//! vacation-seconds (RFC 5230, 6131), relational (RFC 5231), comparator-i;ascii-numeric
//! (RFC 4790), subaddress (RFC 5233), date and index (RFC 5260), mailbox (RFC 5490), include
//! (RFC 6609), duplicate (RFC 7352), editheader (RFC 5293), spamtest/spamtestplus/virustest
//! (RFC 5235), regex (draft-ietf-sieve-regex).

pub mod compile;
pub mod dates;
pub mod error;
pub mod grammar;
pub mod interp;
pub mod lexer;
pub mod mail;
pub mod matching;
pub mod program;
pub mod report;
pub mod stored;
pub mod vacation;

#[cfg(test)]
mod rfc_examples;

pub use compile::{CAPABILITIES, compile};
pub use error::{CompileError, Pos};
pub use interp::{Action, Envelope, Host, Limits, Outcome, run};
pub use program::Script;
pub use report::report;
pub use stored::StoredError;
