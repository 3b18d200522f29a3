//! SMTP sessions: one task per connection on the worker that accepted it. The wire format
//! comes from `postcore_protocol::smtp`; this module holds state, policy and I/O, with one
//! file per command group.

mod auth;
mod data;
mod ehlo;
mod mail;
mod quarantine_stage;
mod rcpt;
pub mod session;
mod starttls;
