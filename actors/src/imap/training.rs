//! Training the statistical filter from what the user does (Email > Filter: "trained with
//! any IMAP client by simply moving a message in and out of the Junk folder"): MOVE or COPY
//! into the `\Junk` mailbox learns spam, MOVE out of it to anywhere but `\Trash` learns ham,
//! and the keywords `$Junk`/`$NotJunk` (RFC 5788's registry; Thunderbird sets them) learn the
//! same. Everyone trains, or only the members of the group `spamtrainers` when it exists.
//! The files go to the trainer's queue; the session never waits for the learning.

use super::Session;
use super::folders::MailboxRef;
use postcore_scanner::bayes::Class;
use std::path::PathBuf;

/// The group whose members alone train, when it exists.
pub const TRAINERS_GROUP: &str = "spamtrainers";

fn is_junk(m: &MailboxRef) -> bool {
    m.meta.special_use.as_deref() == Some("\\Junk")
}

fn is_trash(m: &MailboxRef) -> bool {
    m.meta.special_use.as_deref() == Some("\\Trash")
}

/// What moving or copying from `src` to `dst` teaches, if anything.
pub(super) fn class_of_copy(src: &MailboxRef, dst: &MailboxRef, mv: bool) -> Option<Class> {
    if is_junk(dst) && !is_junk(src) {
        Some(Class::Spam)
    } else if mv && is_junk(src) && !is_junk(dst) && !is_trash(dst) {
        Some(Class::Ham)
    } else {
        None
    }
}

/// What adding the keywords `flags` teaches, if anything (`$Junk` wins when both).
pub(super) fn class_of_keywords(flags: &[String]) -> Option<Class> {
    let has = |k: &str| flags.iter().any(|f| f.eq_ignore_ascii_case(k));
    if has("$Junk") {
        Some(Class::Spam)
    } else if has("$NotJunk") {
        Some(Class::Ham)
    } else {
        None
    }
}

impl Session {
    /// Whether this user's actions train the filter.
    fn trains(&self) -> bool {
        let dir = self.ctx.shared.directory.snapshot();
        if !dir.settings.filter.spam.bayes_learn_from_imap {
            return false;
        }
        match dir.groups.get(TRAINERS_GROUP) {
            None => true,
            Some(g) => g
                .members
                .iter()
                .any(|m| m.eq_ignore_ascii_case(self.user())),
        }
    }

    /// Hands `files` to the trainer as `class`, if this user trains.
    pub(super) fn train(&self, class: Class, files: &[PathBuf]) {
        if files.is_empty() || !self.trains() {
            return;
        }
        for f in files {
            self.ctx.shared.bayes_trainer.enqueue(f, class, self.user());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_teach_spam_or_ham() {
        let k =
            |v: &[&str]| class_of_keywords(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(k(&["$junk"]), Some(Class::Spam));
        assert_eq!(k(&["\\Seen", "$NotJunk"]), Some(Class::Ham));
        assert_eq!(k(&["$NotJunk", "$Junk"]), Some(Class::Spam));
        assert_eq!(k(&["\\Flagged"]), None);
    }
}
