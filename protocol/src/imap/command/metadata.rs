//! GETMETADATA and SETMETADATA arguments (RFC 5464 §4.2, §4.3, §5).

use super::*;

/// The most entries one command may name (a bound on the work one command asks for).
pub const MAX_ENTRIES: usize = 100;

impl<'a> Cur<'a> {
    /// `[SP "(" option *(SP option) ")"] SP mailbox SP entries`, options MAXSIZE and DEPTH.
    pub(super) fn getmetadata_args(&mut self) -> R<CommandBody> {
        self.sp()?;
        let (mut max_size, mut depth) = (None, 0);
        if self.eat(b'(') {
            loop {
                match self.keyword()?.as_str() {
                    "MAXSIZE" => {
                        self.sp()?;
                        max_size = Some(self.number()?);
                    }
                    "DEPTH" => {
                        self.sp()?;
                        depth = match self.keyword()?.as_str() {
                            "0" => 0,
                            "1" => 1,
                            "INFINITY" => u32::MAX,
                            d => return Err(format!("bad DEPTH {d}").into()),
                        };
                    }
                    o => return Err(format!("unknown GETMETADATA option {o}").into()),
                }
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
            self.sp()?;
        }
        let mailbox = self.mailbox()?;
        self.sp()?;
        let mut entries = Vec::new();
        if self.eat(b'(') {
            loop {
                if entries.len() == MAX_ENTRIES {
                    return Err("too many entries".into());
                }
                entries.push(self.entry()?);
                if self.eat(b')') {
                    break;
                }
                self.sp()?;
            }
        } else {
            entries.push(self.entry()?);
        }
        self.end()?;
        Ok(CommandBody::GetMetadata {
            mailbox,
            entries,
            max_size,
            depth,
        })
    }

    /// `SP mailbox SP "(" entry SP value *(SP entry SP value) ")"`, value `nstring` or
    /// `literal8`.
    pub(super) fn setmetadata_args(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mailbox = self.mailbox()?;
        self.sp()?;
        self.expect(b'(')?;
        let mut entries = Vec::new();
        loop {
            if entries.len() == MAX_ENTRIES {
                return Err("too many entries".into());
            }
            let entry = self.entry()?;
            self.sp()?;
            let value = if self.peek() == Some(b'N') || self.peek() == Some(b'n') {
                let nil = self.keyword()?;
                if nil != "NIL" {
                    return Err("expected a value or NIL".into());
                }
                None
            } else {
                let _ = self.eat(b'~');
                Some(self.string_bytes()?)
            };
            entries.push((entry, value));
            if self.eat(b')') {
                break;
            }
            self.sp()?;
        }
        self.end()?;
        Ok(CommandBody::SetMetadata { mailbox, entries })
    }

    /// One entry name, checked (§3.2): `/private/…` or `/shared/…`, no `*`, `%`, `//` or
    /// trailing `/`, printable ASCII; lower-cased (entry names compare without case).
    fn entry(&mut self) -> R<String> {
        let e = self.astring()?;
        let lower = e.to_ascii_lowercase();
        let ok = (lower.starts_with("/private/") || lower.starts_with("/shared/"))
            && !lower.ends_with('/')
            && !lower.contains("//")
            && lower
                .bytes()
                .all(|b| (0x21..0x7f).contains(&b) && b != b'*' && b != b'%');
        if !ok {
            return Err(format!("invalid metadata entry name {e}").into());
        }
        Ok(lower)
    }
}
