//! IMAP URLs as CATENATE (RFC 4469 §5) takes them: `/<mailbox>[;UIDVALIDITY=<n>]/;UID=<n>`
//! `[/;SECTION=<section>][/;PARTIAL=<start>[.<length>]]` (RFC 5092 §6), relative to the
//! server, or the same after `imap://<authority>`; and the authorized URLs of URLAUTH
//! (RFC 4467 §3, RFC 5092 §6.1): `imap://<user>@<host>/<message>[;EXPIRE=<date-time>]`
//! `;URLAUTH=<access>[:<mechanism>:<token>]`.

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
pub fn percent_decode(s: &str) -> Option<String> {
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

/// Who may use an authorized URL (RFC 4467 §3: `access`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// `submit+<user>`: the submission server acting for that user (BURL, RFC 4468).
    Submit(String),
    /// `user+<user>`: that user, logged in.
    User(String),
    /// `authuser`: any user logged in to this server.
    AuthUser,
    /// `anonymous`: anyone.
    Anonymous,
}

/// An authorized IMAP URL (RFC 4467 §3), with or without its `:mechanism:token` tail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUrl {
    /// The user in the authority: whose mailbox (and mailbox access key) the URL names.
    pub user: String,
    /// The host in the authority (port removed), lower case.
    pub host: String,
    /// The message or part.
    pub message: MessageUrl,
    /// `;EXPIRE=`: Unix seconds after which the URL no longer works.
    pub expire: Option<i64>,
    /// `;URLAUTH=` access identifier.
    pub access: Access,
    /// The URL up to and including the access identifier: what the token authenticates.
    pub rump: String,
    /// The mechanism and token, when the URL is complete (`urlauthfull`).
    pub auth: Option<(String, String)>,
}

/// Parses an authorized URL; `None` when `url` is not one (RFC 4467 §3's grammar).
pub fn parse_auth(url: &str) -> Option<AuthUrl> {
    if !url.get(..7)?.eq_ignore_ascii_case("imap://") {
        return None;
    }
    let upper = url.to_ascii_uppercase();
    let at = upper.find(";URLAUTH=")?;
    let tail = &url[at + 9..];
    let (access_text, auth) = match tail.split_once(':') {
        None => (tail, None),
        Some((a, rest)) => {
            let (mech, token) = rest.split_once(':')?;
            let hex = token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit());
            if mech.is_empty() || !hex {
                return None;
            }
            (
                a,
                Some((mech.to_ascii_uppercase(), token.to_ascii_lowercase())),
            )
        }
    };
    let access = match access_text.to_ascii_lowercase().as_str() {
        "authuser" => Access::AuthUser,
        "anonymous" => Access::Anonymous,
        a => match a.split_once('+') {
            Some(("submit", u)) if !u.is_empty() => Access::Submit(percent_decode(u)?),
            Some(("user", u)) if !u.is_empty() => Access::User(percent_decode(u)?),
            _ => return None,
        },
    };
    let rump = url[..at + 9 + access_text.len()].to_string();
    let (message_end, expire) = match upper[..at].rfind(";EXPIRE=") {
        Some(e) => (e, Some(parse_date_time(&url[e + 8..at])?)),
        None => (at, None),
    };
    let authority = &url[7..7 + url[7..].find('/')?];
    let (userinfo, hostport) = authority.rsplit_once('@')?;
    // `enc-user [iauth]`: the user, then an optional ";AUTH=" we have no use for.
    let user = percent_decode(userinfo.split(';').next()?)?;
    let host = hostport
        .rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(hostport, |(h, _)| h)
        .to_ascii_lowercase();
    if user.is_empty() || host.is_empty() {
        return None;
    }
    let message = parse(&url[..message_end])?;
    Some(AuthUrl {
        user,
        host,
        message,
        expire,
        access,
        rump,
        auth,
    })
}

/// An RFC 3339 `date-time` (`2026-12-04T10:00:00Z`, `…+01:00`, fractions allowed) as Unix
/// seconds.
pub fn parse_date_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let o = num(i + 1..i + 3)? * 3600 + num(i + 4..i + 6)? * 60;
            if *sign == b'+' { o } else { -o }
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian.
    let (yy, m) = if mo <= 2 {
        (y - 1, mo + 9)
    } else {
        (y, mo - 3)
    };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86400 + h * 3600 + mi * 60 + sec - offset)
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

    /// RFC 4467 §4's examples.
    #[test]
    fn authorized_urls() {
        let u = parse_auth(
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred:internal:91354a473744909de610943775f92038",
        )
        .expect("full");
        assert_eq!((u.user.as_str(), u.host.as_str()), ("joe", "example.com"));
        assert_eq!(u.access, Access::Submit("fred".into()));
        assert_eq!(
            u.rump,
            "imap://joe@example.com/INBOX/;uid=20/;section=1.2;urlauth=submit+fred"
        );
        assert_eq!(
            u.auth,
            Some(("INTERNAL".into(), "91354a473744909de610943775f92038".into()))
        );
        assert_eq!(
            (u.message.uid, u.message.section.as_deref()),
            (20, Some("1.2"))
        );
        let u = parse_auth(
            "imap://joe@example.com:143/INBOX/;uid=20/;partial=0.10;expire=2026-12-04T10:00:00Z;urlauth=anonymous",
        )
        .expect("rump");
        assert_eq!(u.expire, Some(1_796_378_400));
        assert_eq!((u.access, u.auth), (Access::Anonymous, None));
        assert_eq!(u.message.partial, Some((0, Some(10))));
        assert_eq!(u.host, "example.com");
        for bad in [
            "/INBOX/;uid=20;urlauth=anonymous",
            "imap://example.com/INBOX/;uid=20;urlauth=anonymous",
            "imap://joe@example.com/INBOX/;uid=20",
            "imap://joe@example.com/INBOX/;uid=20;urlauth=nobody",
            "imap://joe@example.com/INBOX/;uid=20;urlauth=user+",
            "imap://joe@example.com/INBOX/;uid=20;urlauth=authuser:internal:xyz",
            "imap://joe@example.com/INBOX/;uid=20;expire=tomorrow;urlauth=authuser",
        ] {
            assert_eq!(parse_auth(bad), None, "{bad}");
        }
        assert_eq!(parse_date_time("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_date_time("2000-02-29T00:00:00.5Z"), Some(951_782_400));
        assert_eq!(parse_date_time("2000-13-01T00:00:00Z"), None);
    }
}
