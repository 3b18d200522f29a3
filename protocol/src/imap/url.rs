//! IMAP URLs as CATENATE (RFC 4469 §5) takes them: `/<mailbox>[;UIDVALIDITY=<n>]/;UID=<n>`
//! `[/;SECTION=<section>][/;PARTIAL=<start>[.<length>]]` (RFC 5092 §6), relative to the
//! server, or the same after `imap://<authority>`.

/// A message (or part) named by an IMAP URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageUrl {
    /// The mailbox name, percent-decoded.
    pub mailbox: String,
    /// UIDVALIDITY the URL was made for, if it says.
    pub uidvalidity: Option<u32>,
    /// The message's UID.
    pub uid: u32,
    /// The section (FETCH syntax without brackets: `1.2`, `HEADER`, `2.MIME`), if any.
    pub section: Option<String>,
    /// PARTIAL: the first octet and, optionally, how many.
    pub partial: Option<(u64, Option<u64>)>,
}

/// `%XX` sequences decoded (RFC 3986 §2.1); `None` for a broken one or a result that is
/// not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The message URL in `url`, if it is one this server can follow.
pub fn parse(url: &str) -> Option<MessageUrl> {
    let path = match url.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("imap://") => &url[url[7..].find('/')? + 7..],
        _ => url,
    };
    let path = path.strip_prefix('/')?;
    // The mailbox runs to "/;UID=" (a mailbox name may itself contain '/').
    let at = path.to_ascii_uppercase().find("/;UID=")?;
    let (mbox, rest) = (&path[..at], &path[at + 1..]);
    let (mbox, uidvalidity) = match mbox.to_ascii_uppercase().rfind(";UIDVALIDITY=") {
        Some(p) => (&mbox[..p], Some(mbox[p + 13..].parse().ok()?)),
        None => (mbox, None),
    };
    let mailbox = percent_decode(mbox)?;
    if mailbox.is_empty() {
        return None;
    }
    let mut url = MessageUrl {
        mailbox,
        uidvalidity,
        uid: 0,
        section: None,
        partial: None,
    };
    for (i, piece) in rest.split("/;").enumerate() {
        let piece = piece.strip_prefix(';').unwrap_or(piece);
        let (key, value) = piece.split_once('=')?;
        match (i, key.to_ascii_uppercase().as_str()) {
            (0, "UID") => url.uid = value.parse().ok().filter(|u| *u > 0)?,
            (1, "SECTION") if url.section.is_none() => url.section = Some(percent_decode(value)?),
            (1 | 2, "PARTIAL") if url.partial.is_none() => {
                let (start, len) = match value.split_once('.') {
                    Some((s, l)) => (s.parse().ok()?, Some(l.parse().ok()?)),
                    None => (value.parse().ok()?, None),
                };
                url.partial = Some((start, len));
            }
            _ => return None,
        }
    }
    (url.uid > 0).then_some(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4469_and_5092_forms() {
        // RFC 4469 §5's example.
        let u = parse("/Drafts;UIDVALIDITY=385759045/;UID=20/;SECTION=HEADER").expect("url");
        assert_eq!(
            u,
            MessageUrl {
                mailbox: "Drafts".into(),
                uidvalidity: Some(385_759_045),
                uid: 20,
                section: Some("HEADER".into()),
                partial: None,
            }
        );
        let u = parse("imap://alice@mail.example.com/INBOX/;UID=7/;SECTION=1.2/;PARTIAL=10.20")
            .expect("absolute");
        assert_eq!((u.mailbox.as_str(), u.uid), ("INBOX", 7));
        assert_eq!(u.section.as_deref(), Some("1.2"));
        assert_eq!(u.partial, Some((10, Some(20))));
        let u = parse("/Lists%2Frust/;uid=3").expect("encoded, lower-case keys");
        assert_eq!((u.mailbox.as_str(), u.uid), ("Lists/rust", 3));
        let u = parse("/a/b/;UID=1/;PARTIAL=5").expect("hierarchy");
        assert_eq!((u.mailbox.as_str(), u.partial), ("a/b", Some((5, None))));
        for bad in [
            "INBOX/;UID=1",
            "/INBOX",
            "/INBOX/;UID=0",
            "/INBOX/;UID=x",
            "/;UID=1",
            "/INBOX/;UID=1/;BOGUS=2",
            "/INBOX;UIDVALIDITY=z/;UID=1",
            "/IN%ZZBOX/;UID=1",
            "imap://host",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
