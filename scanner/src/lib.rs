//! Content analysis for postcore: what the end-of-data pipeline's scan stage hands a scanner
//! ([`ScanInput`]: the message and its SMTP context) and what a scanner answers (a
//! [`Verdict`]: one action for the message, a disposition per recipient, header edits, and
//! the symbols and score that explain it).
//!
//! This crate knows nothing of sessions, actors or storage: the filter (attachment rules,
//! antivirus, antispam, Bayes) and Sieve produce the same [`Verdict`] types, and the
//! pipeline in `postcore-actors` carries them out.

pub mod access;
pub mod arj;
pub mod bayes;
pub mod binhex;
pub mod chm;
pub mod clamav;
pub mod codec;
pub mod content;
pub mod cpio;
pub mod data_uri;
pub mod filetype;
pub mod filter;
pub mod greylist;
pub mod hs_cache;
pub mod input;
pub mod le;
pub mod network;
pub mod normalize;
pub mod nsis;
pub mod ole2;
pub mod parallel;
pub mod pdf;
pub mod pe_packers;
pub mod rtf;
pub mod scratch;
pub mod sfx;
pub mod sis;
pub mod spam;
pub mod szdd;
#[cfg(test)]
mod test_rng;
pub mod tnef;
pub mod unpacked;
pub mod verdict;

pub use input::{ScanContext, ScanInput};
pub use verdict::{
    Disposition, Flag, HeaderEdit, MessageAction, RecipientVerdict, Reply, Symbol, Verdict,
};

/// A content scanner: looks at one message and judges it. Implementations must be cheap to
/// share between worker threads and must not block on I/O of their own (DNS answers and
/// stored state are handed in through their own handles).
pub trait Scanner: Send + Sync {
    /// The scanner's name, for logs.
    fn name(&self) -> &'static str;
    /// Judges one message.
    fn scan(&self, input: &ScanInput<'_>) -> Verdict;
}

/// The scanner of a server with no filter configured: every message is accepted unchanged
/// and delivered to each recipient's INBOX.
#[derive(Debug, Default, Clone, Copy)]
pub struct AcceptAll;

impl Scanner for AcceptAll {
    fn name(&self) -> &'static str {
        "accept-all"
    }

    fn scan(&self, _: &ScanInput<'_>) -> Verdict {
        Verdict::accept()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_all_accepts_unchanged() {
        let ctx = ScanContext::for_test(&["a@example.test", "b@example.test"]);
        let input = ScanInput::new(&ctx, b"Subject: hi\r\n\r\nbody\r\n");
        let v = AcceptAll.scan(&input);
        assert_eq!(v.action, MessageAction::Accept);
        assert!(v.headers.is_empty());
        assert_eq!(v.disposition(0), &Disposition::Keep);
        assert_eq!(v.disposition(1), &Disposition::Keep);
    }
}
