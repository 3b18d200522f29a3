//! CATENATE (RFC 4469): an APPEND whose message is put together from literal text and
//! messages or parts the user can read, named by IMAP URLs (`/INBOX;UIDVALIDITY=…/;UID=…`
//! `/;SECTION=…/;PARTIAL=…`).

use super::fetch::{open_body, section_bytes};
use super::{Done, Session};
use postcore_protocol::imap::url::{self, MessageUrl};
use postcore_protocol::imap::{CatPart, Code, mime, parse_section};

impl Session {
    /// The message the parts make, or the refusal (`[BADURL url]` for a URL that names
    /// nothing readable, §5; `[TOOBIG]` past `max`).
    pub(super) fn catenate(&self, parts: &[CatPart], max: usize) -> Result<Vec<u8>, Done> {
        let mut out = Vec::new();
        for part in parts {
            match part {
                CatPart::Text(t) => out.extend_from_slice(t),
                CatPart::Url(u) => {
                    let bad = || Done::no_with(Code::BadUrl(u.clone()), "Cannot follow the URL");
                    let target = url::parse(u).ok_or_else(bad)?;
                    out.extend_from_slice(&self.url_bytes(&target).ok_or_else(bad)?);
                }
            }
            if out.len() > max {
                return Err(Done::no_with(Code::TooBig, "Message too large"));
            }
        }
        if out.is_empty() {
            return Err(Done::no("Empty message"));
        }
        Ok(out)
    }

    /// The octets a message URL names, if the user may read them.
    fn url_bytes(&self, u: &MessageUrl) -> Option<Vec<u8>> {
        let m = self.resolve(&u.mailbox)?;
        if !m.may('r') || u.uidvalidity.is_some_and(|v| v != m.meta.uidvalidity) {
            return None;
        }
        let rec = self.ctx.shared.mailboxes.message(m.meta.id, u.uid).ok()??;
        let body = open_body(&m.path.join(rec.relative_path())).ok()?;
        url_part(body.bytes(), u)
    }
}

/// The octets of message `data` that URL `u` names: its section, then its PARTIAL range
/// (RFC 5092 §6); `None` for a part the message does not have.
pub(super) fn url_part(data: &[u8], u: &MessageUrl) -> Option<Vec<u8>> {
    let bytes = match &u.section {
        None => data.to_vec(),
        Some(s) => {
            let section = parse_section(s)?;
            // A part that is not there names nothing (not an empty part).
            if !section.part.is_empty() && mime::parse(data).resolve(&section.part).is_none() {
                return None;
            }
            section_bytes(data, mime::split(data).0, &section).into_owned()
        }
    };
    Some(match u.partial {
        None => bytes,
        Some((start, len)) => {
            let start = (start as usize).min(bytes.len());
            let end = len.map_or(bytes.len(), |l| (start + l as usize).min(bytes.len()));
            bytes[start..end].to_vec()
        }
    })
}
