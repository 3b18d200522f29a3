//! Body paragraphs scanned as one text.
//!
//! SpamAssassin runs `body` rules on each paragraph of the rendered text on its own. Scanned
//! one at a time, a message's 20–30 short paragraphs each pay Hyperscan's fixed cost of a
//! scan over every database (several microseconds for SpamAssassin's body rules, more than
//! the octets themselves cost). Joined with a line feed between them they are scanned once:
//!
//! - A pattern that matches a paragraph alone matches the joined text at the same place: the
//!   octets are the same, and the line feed on either side reads to `\b` and `\B` as the
//!   text's edges do (a non-word character). Patterns with assertions tied to the text's
//!   edges or lines (`^`, `$`, `\A`, `\z`) are left out ([`super::superset::edge_anchored`]).
//!   So a pattern that does not match the joined text matches no paragraph.
//! - Each pattern reports its first match only (`SINGLEMATCH`), at the match's end. A match
//!   ending `w` or more octets into a paragraph, for a pattern whose matches are at most `w`
//!   long, lies inside that paragraph: the rule hits. Any other first match may straddle a
//!   line feed; the rule is then confirmed on that paragraph and the ones after it (no
//!   paragraph before it can match, or the first match would have ended there), or on
//!   every paragraph when the pattern's matches may be reported out of order.
//!
//! Only rules Hyperscan decides exactly and that need no count take this path.

use super::superset::{Atom, outside_classes};
use std::borrow::Cow;

/// Whether `expr` (a Hyperscan expression) holds an assertion tied to the text's edges or
/// lines (`^`, `$`, `\A`, `\z`, `\Z`, `\G`), which reads a paragraph differently once it is
/// joined to others; a class opening with `]` (which the class scan may misread) counts too.
pub fn edge_anchored(expr: &str) -> bool {
    expr.contains("[]")
        || expr.contains("[^]")
        || outside_classes(expr, 0).any(|(_, a)| {
            matches!(
                a,
                Atom::Octet(b'^' | b'$') | Atom::Escape(b'A' | b'z' | b'Z' | b'G')
            )
        })
}

/// A pattern scanned over joined paragraphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinedPattern {
    /// The longest match it can make, in octets; `None` when unbounded.
    pub max_width: Option<usize>,
    /// Its matches are reported in the order they end (Hyperscan's `unordered_matches`
    /// unset: a trailing `\b`, for one, is settled a character late), so the first one
    /// reported is the first to end.
    pub ordered: bool,
}

impl JoinedPattern {
    /// Whether a match ending at `end` lies inside a paragraph starting at `start`.
    fn inside(&self, end: usize, start: usize) -> bool {
        self.max_width
            .is_some_and(|w| end.checked_sub(w).is_some_and(|s| s >= start))
    }
}

/// The paragraphs of a message joined with a line feed between each two.
pub struct JoinedText<'a> {
    text: Cow<'a, [u8]>,
    /// Where each paragraph starts in `text`.
    starts: Vec<usize>,
}

/// Where a match ended in a [`JoinedText`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Landing {
    /// Inside paragraph `n` (its last octet included).
    In(usize),
    /// On the line feed after paragraph `n`.
    After(usize),
}

impl<'a> JoinedText<'a> {
    /// Joins `units` (borrowed when there is only one).
    pub fn new(units: Vec<&'a [u8]>) -> JoinedText<'a> {
        if let [one] = units[..] {
            return JoinedText {
                text: Cow::Borrowed(one),
                starts: vec![0],
            };
        }
        let len = units.iter().map(|u| u.len() + 1).sum();
        let mut text = Vec::with_capacity(len);
        let mut starts = Vec::with_capacity(units.len());
        for (i, u) in units.iter().enumerate() {
            if i > 0 {
                text.push(b'\n');
            }
            starts.push(text.len());
            text.extend_from_slice(u);
        }
        JoinedText {
            text: Cow::Owned(text),
            starts,
        }
    }

    /// The joined octets.
    pub fn bytes(&self) -> &[u8] {
        &self.text
    }

    /// Where a match ending at `end` (the offset after its last octet) ended.
    pub fn landing(&self, end: usize) -> Landing {
        // The last paragraph starting before `end`.
        let n = self.starts.partition_point(|&s| s < end).saturating_sub(1);
        let para_end = self.starts.get(n + 1).map_or(self.text.len(), |s| s - 1);
        if end <= para_end {
            Landing::In(n)
        } else {
            Landing::After(n)
        }
    }

    /// For a pattern whose first reported match in the joined text ended at `end`: `Ok(())`
    /// when that match lies inside one paragraph (the rule hits), else the first paragraph
    /// that may hold a match (every paragraph before it holds none, when the pattern's
    /// matches come in order; else it is the first paragraph).
    pub fn decide(&self, pattern: &JoinedPattern, end: usize) -> Result<(), usize> {
        match self.landing(end) {
            Landing::In(n) if pattern.inside(end, self.starts[n]) => Ok(()),
            _ if !pattern.ordered => Err(0),
            Landing::In(n) => Err(n),
            Landing::After(n) => Err(n + 1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units<'a>(parts: &[&'a str]) -> Vec<&'a [u8]> {
        parts.iter().map(|p| p.as_bytes()).collect()
    }

    #[test]
    fn edge_assertions_are_found_outside_classes_only() {
        for anchored in [
            r"^Dear",
            r"foo$",
            r"(?:^|\s)win",
            r"\Afoo",
            r"bar\z",
            r"x[]a]",
        ] {
            assert!(edge_anchored(anchored), "{anchored}");
        }
        for free in [
            r"[^a-z]foo",
            r"\$\d+",
            r"\^_\^",
            r"[$^]x",
            r"\bfoo\b",
            r"\\A",
        ] {
            assert!(!edge_anchored(free), "{free}");
        }
    }

    #[test]
    fn paragraphs_are_joined_with_a_line_feed() {
        let u = units(&["ab", "", "cde"]);
        let j = JoinedText::new(u);
        assert_eq!(j.bytes(), b"ab\n\ncde");
        assert_eq!(j.starts, vec![0, 3, 4]);
        let one = units(&["xyz"]);
        assert!(matches!(JoinedText::new(one).text, Cow::Borrowed(_)));
    }

    #[test]
    fn a_match_end_lands_in_its_paragraph_or_on_the_line_feed_after_it() {
        let u = units(&["ab", "", "cde"]);
        let j = JoinedText::new(u);
        assert_eq!(j.landing(1), Landing::In(0));
        assert_eq!(j.landing(2), Landing::In(0));
        assert_eq!(j.landing(3), Landing::After(0));
        // The empty paragraph holds no octet: a match ending at 4 ends on the line feed
        // after it.
        assert_eq!(j.landing(4), Landing::After(1));
        assert_eq!(j.landing(5), Landing::In(2));
        assert_eq!(j.landing(7), Landing::In(2));
    }

    #[test]
    fn only_a_match_too_short_to_reach_back_past_its_paragraph_decides() {
        let u = units(&["abcd", "efgh"]);
        let j = JoinedText::new(u);
        let three = JoinedPattern {
            max_width: Some(3),
            ordered: true,
        };
        let unbounded = JoinedPattern {
            max_width: None,
            ..three
        };
        let unordered = JoinedPattern {
            ordered: false,
            ..three
        };
        // "efg" ends at 8: at most 3 long, it starts at 5 or later, inside "efgh".
        assert_eq!(j.decide(&three, 8), Ok(()));
        // Ending at 7 it may start at 4, the line feed.
        assert_eq!(j.decide(&three, 7), Err(1));
        assert_eq!(j.decide(&unbounded, 9), Err(1));
        assert_eq!(j.decide(&three, 5), Err(1));
        assert_eq!(j.decide(&three, 3), Ok(()));
        assert_eq!(j.decide(&three, 2), Err(0));
        // Out of order, an earlier match may have been left unreported.
        assert_eq!(j.decide(&unordered, 8), Ok(()));
        assert_eq!(j.decide(&unordered, 7), Err(0));
    }
}
