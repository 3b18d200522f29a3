//! A readable account of an [`Outcome`], laid out like Pigeonhole's `sieve-test` so an
//! administrator (and the differential test) can hold the two side by side.

use std::fmt::Write;

use super::interp::{Action, Outcome};

/// The outcome as "Performed actions:" and "Implicit keep:" sections.
pub fn report(o: &Outcome) -> String {
    let mut s = String::new();
    if let Some(e) = &o.error {
        let _ = writeln!(s, "error: {e}");
    }
    s.push_str("\nPerformed actions:\n\n");
    if o.actions.is_empty() {
        s.push_str("  (none)\n");
    }
    for a in &o.actions {
        match a {
            Action::Store {
                mailbox,
                flags,
                create,
                ..
            } => {
                let _ = writeln!(s, " * store message in folder: {mailbox}");
                if *create {
                    s.push_str("        + create mailbox if it does not exist\n");
                }
                if !flags.is_empty() {
                    let _ = writeln!(s, "        + add IMAP flags: {}", flags.join(" "));
                }
            }
            Action::Redirect { address, copy } => {
                let _ = writeln!(s, " * redirect message to: <{address}>");
                if *copy {
                    s.push_str("        + preserve implicit keep\n");
                }
            }
            Action::Reject { reason, .. } => {
                let _ = writeln!(s, " * reject message with reason: {reason}");
            }
            Action::Discard => s.push_str(" * discard\n"),
            Action::TrackDuplicate(d) => {
                let last = if d.last { "last " } else { "" };
                match &d.handle {
                    Some(h) => {
                        let _ = writeln!(s, " * track {last}duplicate with handle: {h}");
                    }
                    None => {
                        let _ = writeln!(s, " * track {last}duplicate");
                    }
                }
            }
            Action::Vacation(v) => {
                s.push_str(" * send vacation message:\n");
                let _ = writeln!(s, "    => seconds : {}", v.period);
                if let Some(subject) = &v.subject {
                    let _ = writeln!(s, "    => subject : {subject}");
                }
                if let Some(from) = &v.from {
                    let _ = writeln!(s, "    => from    : {from}");
                }
                let _ = writeln!(s, "    => handle  : {}", v.handle);
                let _ = write!(s, "\nSTART MESSAGE\n{}\nEND MESSAGE\n", v.reason);
            }
        }
    }
    s.push_str("\nImplicit keep:\n\n");
    if o.implicit_keep {
        s.push_str(" * store message in folder: INBOX\n");
        if !o.keep_flags.is_empty() {
            let _ = writeln!(s, "        + add IMAP flags: {}", o.keep_flags.join(" "));
        }
    } else {
        s.push_str("  (none)\n");
    }
    s
}
