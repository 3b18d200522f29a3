//! TNEF, Outlook's "Transport Neutral Encapsulation Format" (`winmail.dat`,
//! `application/ms-tnef`; [MS-OXTNEF] §2.1): a signature, a legacy key, then attributes —
//! level (1 message, 2 attachment), id (low 16 bits) and type (high 16 bits), length, data,
//! a 16-bit checksum. Each attachment's octets are its `attAttachData` attribute, its name
//! `attAttachTitle`; `attAttachRendData` opens the next attachment. ClamAV extracts the same
//! attribute (`CL_TYPE_TNEF`).

/// ClamAV's container type name.
pub const CONTAINER: &str = "CL_TYPE_TNEF";

/// The signature, `0x223E9F78` little-endian ([MS-OXTNEF] §2.1.3.1).
pub const MAGIC: &[u8] = b"\x78\x9f\x3e\x22";

/// Attribute levels ([MS-OXTNEF] §2.1.3.2).
const LEVEL_ATTACHMENT: u8 = 2;
/// `attAttachRendData`: the first attribute of each attachment.
const ATT_ATTACH_REND_DATA: u16 = 0x9002;
/// `attAttachTitle`: the attachment's file name.
const ATT_ATTACH_TITLE: u16 = 0x8010;
/// `attAttachData`: the attachment's contents.
const ATT_ATTACH_DATA: u16 = 0x800F;

/// One attachment found in a TNEF stream.
#[derive(Debug, PartialEq, Eq)]
pub struct Attachment<'a> {
    /// `attAttachTitle`, when it came before the data (NUL and what follows removed).
    pub name: Option<String>,
    /// The attachment's octets.
    pub data: &'a [u8],
}

/// The attachments of `data`, at most `max`; `None` when it is not TNEF. A truncated or
/// malformed stream yields the attachments before the damage.
pub fn attachments(data: &[u8], max: usize) -> Option<Vec<Attachment<'_>>> {
    if !data.starts_with(MAGIC) || data.len() < 6 {
        return None;
    }
    let mut out = Vec::new();
    let mut name: Option<String> = None;
    // Signature (4) and legacy key (2).
    let mut at = 6;
    while out.len() < max {
        let Some((level, id, body, next)) = attribute(data, at) else {
            break;
        };
        at = next;
        if level != LEVEL_ATTACHMENT {
            continue;
        }
        match id {
            ATT_ATTACH_REND_DATA => name = None,
            ATT_ATTACH_TITLE => {
                let end = body.iter().position(|&b| b == 0).unwrap_or(body.len());
                name = Some(String::from_utf8_lossy(&body[..end]).into_owned());
            }
            ATT_ATTACH_DATA => out.push(Attachment {
                name: name.take(),
                data: body,
            }),
            _ => {}
        }
    }
    Some(out)
}

/// The attribute at `at`: level, id, data and where the next one starts (after the
/// checksum, which is not checked: ClamAV does not either).
fn attribute(data: &[u8], at: usize) -> Option<(u8, u16, &[u8], usize)> {
    let level = *data.get(at)?;
    let id = u16::from_le_bytes(data.get(at + 1..at + 3)?.try_into().ok()?);
    let len = u32::from_le_bytes(data.get(at + 5..at + 9)?.try_into().ok()?) as usize;
    let start = at + 9;
    let end = start.checked_add(len)?;
    let body = data.get(start..end)?;
    Some((level, id, body, end + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(level: u8, id: u16, kind: u16, body: &[u8]) -> Vec<u8> {
        let mut v = vec![level];
        v.extend_from_slice(&id.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v.extend_from_slice(&(body.len() as u32).to_le_bytes());
        v.extend_from_slice(body);
        let sum = body.iter().map(|&b| u32::from(b)).sum::<u32>() as u16;
        v.extend_from_slice(&sum.to_le_bytes());
        v
    }

    fn tnef(attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = MAGIC.to_vec();
        v.extend_from_slice(&[0x01, 0x00]);
        for a in attrs {
            v.extend_from_slice(a);
        }
        v
    }

    #[test]
    fn attachments_with_their_names() {
        let t = tnef(&[
            attr(1, 0x8008, 7, b"IPM.Microsoft Mail.Note\0"),
            attr(2, ATT_ATTACH_REND_DATA, 2, &[0; 14]),
            attr(2, ATT_ATTACH_TITLE, 1, b"report.exe\0"),
            attr(2, ATT_ATTACH_DATA, 6, b"MZ first"),
            attr(2, ATT_ATTACH_REND_DATA, 2, &[0; 14]),
            attr(2, ATT_ATTACH_DATA, 6, b"second"),
        ]);
        let a = attachments(&t, 10).expect("TNEF");
        assert_eq!(
            a,
            vec![
                Attachment {
                    name: Some("report.exe".into()),
                    data: b"MZ first"
                },
                Attachment {
                    name: None,
                    data: b"second"
                },
            ]
        );
        assert_eq!(attachments(&t, 1).map(|a| a.len()), Some(1), "capped");
    }

    #[test]
    fn damage_and_other_formats() {
        assert!(attachments(b"PK\x03\x04", 10).is_none());
        let mut t = tnef(&[attr(2, ATT_ATTACH_DATA, 6, b"whole")]);
        t.extend_from_slice(&attr(2, ATT_ATTACH_DATA, 6, b"cut short"));
        t.truncate(t.len() - 5);
        let a = attachments(&t, 10).expect("TNEF");
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].data, b"whole");
        // A length past the end of the data.
        let mut t = tnef(&[]);
        t.extend_from_slice(&[2, 0x0f, 0x80, 6, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(attachments(&t, 10).map(|a| a.len()), Some(0));
    }

    #[test]
    fn clamav_test_file() {
        let data = std::fs::read("/usr/share/clamav-testfiles/clam.tnef")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let a = attachments(&data, 10).expect("TNEF");
        assert!(a.iter().any(|x| x.data.starts_with(b"MZ")), "{a:?}");
    }
}
