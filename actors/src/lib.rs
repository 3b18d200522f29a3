//! The running postcore system: per-core workers (tokio-uring event loops) with their actix
//! actors, SMTP listeners and sessions, the queue, local delivery, and the admin HTTP API.

pub mod admin;
pub mod bayes_trainer;
pub mod body;
pub mod budget;
pub mod config;
pub mod conn;
pub mod context;
pub mod deflate;
pub mod delivery;
pub mod dkim;
pub mod headers;
pub mod imap;
pub mod legal_notice;
pub mod limits;
pub mod login;
pub mod managesieve;
pub mod message_file;
pub mod messages;
pub mod metrics;
pub mod net_checks;
pub mod outbound;
pub mod pipeline;
pub mod pop3;
pub mod quarantine;
pub mod queue;
pub mod scanner;
pub mod server;
pub mod sieve_admin;
pub mod sieve_scripts;
pub mod sieve_stage;
pub mod smtp;
pub mod srs;
pub mod tls;
pub mod usage;
pub mod util;

pub use config::Config;
pub use server::run;
