//! Where a body signature must start (ClamAV manual, "Extended signature format"), and
//! the functionality level signatures are checked against.

/// The functionality level this engine claims (ClamAV 1.4's), against which each signature's
/// `min_flevel`/`max_flevel` is checked (ClamAV manual, "FLEVEL").
pub const FLEVEL: u32 = 216;

use super::exe::Layout;

/// Where in the file a body signature must start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// `*`: anywhere.
    Any,
    /// `n` or `n,shift`: from `n` to `n + shift` bytes from the start.
    Start {
        /// First allowed start.
        at: u64,
        /// Floating range.
        shift: u64,
    },
    /// `EOF-n` or `EOF-n,shift`: `n` bytes before the end, floating `shift` bytes on.
    End {
        /// Distance back from the end.
        back: u64,
        /// Floating range.
        shift: u64,
    },
    /// `EP+n`, `EP-n` (`,shift`): from the executable's entry point.
    Entry {
        /// Distance from the entry point (negative: before it).
        delta: i64,
        /// Floating range.
        shift: u64,
    },
    /// `Sx+n` (`,shift`): from the start of section `x` (counted from 0).
    Section {
        /// The section.
        index: usize,
        /// Distance from its start.
        delta: u64,
        /// Floating range.
        shift: u64,
    },
    /// `SL+n` (`,shift`): from the start of the last section.
    LastSection {
        /// Distance from its start.
        delta: u64,
        /// Floating range.
        shift: u64,
    },
    /// `SEx` (`,shift`): starting anywhere within section `x` (up to its end, and `shift`
    /// octets past it).
    WithinSection {
        /// The section.
        index: usize,
        /// Floating range past the section's end.
        shift: u64,
    },
}

/// Where a match may start in one object, an offset resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Anywhere.
    Anywhere,
    /// From the first to the last octet given (inclusive).
    Between(u64, u64),
    /// Nowhere: the offset cannot be resolved in this object.
    Nowhere,
}

impl Offset {
    /// Parses an offset field; `None` for one this engine does not evaluate (`VI`: the
    /// version information of a PE's resources).
    pub fn parse(s: &str) -> Result<Option<Offset>, String> {
        if s == "*" {
            return Ok(Some(Offset::Any));
        }
        let bad = || format!("bad offset {s:?}");
        let (base, shift) = match s.split_once(',') {
            Some((b, sh)) => (
                b,
                sh.parse::<u64>()
                    .map_err(|_| format!("bad offset shift {s:?}"))?,
            ),
            None => (s, 0),
        };
        if let Some(n) = base.strip_prefix("EOF-") {
            let back = n.parse().map_err(|_| bad())?;
            return Ok(Some(Offset::End { back, shift }));
        }
        if let Some(rest) = base.strip_prefix("EP") {
            let delta = match (rest.strip_prefix('+'), rest.strip_prefix('-')) {
                (Some(n), _) => n.parse::<i64>().map_err(|_| bad())?,
                (_, Some(n)) => -n.parse::<i64>().map_err(|_| bad())?,
                _ => return Err(bad()),
            };
            return Ok(Some(Offset::Entry { delta, shift }));
        }
        if let Some(n) = base.strip_prefix("SL+") {
            let delta = n.parse().map_err(|_| bad())?;
            return Ok(Some(Offset::LastSection { delta, shift }));
        }
        if let Some(x) = base.strip_prefix("SE") {
            let index = x.parse().map_err(|_| bad())?;
            return Ok(Some(Offset::WithinSection { index, shift }));
        }
        if let Some(rest) = base.strip_prefix('S') {
            let (x, n) = rest.split_once('+').ok_or_else(bad)?;
            let (index, delta) = (x.parse().map_err(|_| bad())?, n.parse().map_err(|_| bad())?);
            return Ok(Some(Offset::Section {
                index,
                delta,
                shift,
            }));
        }
        if base.starts_with("VI") {
            return Ok(None);
        }
        let at = base.parse().map_err(|_| bad())?;
        Ok(Some(Offset::Start { at, shift }))
    }

    /// True for the offsets that need the executable's [`Layout`].
    pub fn needs_layout(&self) -> bool {
        !matches!(
            self,
            Offset::Any | Offset::Start { .. } | Offset::End { .. }
        )
    }

    /// Where a match may start in `len` bytes: nowhere when the object is not an executable
    /// the offset can be resolved in, or the place lies outside it.
    pub fn window(&self, len: usize, exe: Option<&Layout>) -> Window {
        let len = len as u64;
        let from = |first: Option<u64>, shift: u64| match first {
            Some(f) if f <= len => Window::Between(f, f.saturating_add(shift).min(len)),
            _ => Window::Nowhere,
        };
        let section = |i: usize| exe.and_then(|l| l.sections.get(i).copied());
        match *self {
            Offset::Any => Window::Anywhere,
            Offset::Start { at, shift } => from(Some(at), shift),
            Offset::End { back, shift } => from(len.checked_sub(back), shift),
            Offset::Entry { delta, shift } => {
                let ep = exe.and_then(|l| l.entry);
                from(ep.and_then(|e| e.checked_add_signed(delta)), shift)
            }
            Offset::Section {
                index,
                delta,
                shift,
            } => from(section(index).map(|(o, _)| o.saturating_add(delta)), shift),
            Offset::LastSection { delta, shift } => {
                let last = exe.and_then(|l| l.sections.last().copied());
                from(last.map(|(o, _)| o.saturating_add(delta)), shift)
            }
            // ClamAV's window: from the section's start to its end, inclusive, plus `shift`.
            Offset::WithinSection { index, shift } => match section(index) {
                Some((o, size)) => from(Some(o), size.saturating_add(shift)),
                None => Window::Nowhere,
            },
        }
    }

    /// Whether a match starting at `start` in `len` bytes satisfies the offset.
    pub fn allows(&self, start: usize, len: usize, exe: Option<&Layout>) -> bool {
        match self.window(len, exe) {
            Window::Anywhere => true,
            Window::Between(first, last) => (first..=last).contains(&(start as u64)),
            Window::Nowhere => false,
        }
    }
}
