//! Where a body signature must start (ClamAV manual, "Extended signature format"), and
//! the functionality level signatures are checked against.

/// The functionality level this engine claims (ClamAV 1.4's), against which each signature's
/// `min_flevel`/`max_flevel` is checked (ClamAV manual, "FLEVEL").
pub const FLEVEL: u32 = 216;

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
}

impl Offset {
    /// Parses an offset field; `None` for one this engine does not evaluate (`EP+n`, `Sx+n`,
    /// `SL+n`, `SEx`: offsets into executable structure).
    pub fn parse(s: &str) -> Result<Option<Offset>, String> {
        if s == "*" {
            return Ok(Some(Offset::Any));
        }
        let (base, shift) = match s.split_once(',') {
            Some((b, sh)) => (
                b,
                sh.parse::<u64>()
                    .map_err(|_| format!("bad offset shift {s:?}"))?,
            ),
            None => (s, 0),
        };
        if let Some(n) = base.strip_prefix("EOF-") {
            let back = n.parse().map_err(|_| format!("bad offset {s:?}"))?;
            return Ok(Some(Offset::End { back, shift }));
        }
        if base.starts_with("EP") || base.starts_with('S') || base.starts_with("VI") {
            return Ok(None);
        }
        let at = base.parse().map_err(|_| format!("bad offset {s:?}"))?;
        Ok(Some(Offset::Start { at, shift }))
    }

    /// Whether a match starting at `start` in `len` bytes satisfies the offset.
    pub fn allows(&self, start: usize, len: usize) -> bool {
        let (start, len) = (start as u64, len as u64);
        match *self {
            Offset::Any => true,
            Offset::Start { at, shift } => start >= at && start <= at.saturating_add(shift),
            Offset::End { back, shift } => {
                back <= len && start >= len - back && start <= (len - back).saturating_add(shift)
            }
        }
    }
}
