//! URLAUTH (RFC 4467) with URL-PARTIAL (RFC 5550 §5): a user hands out a URL to one of
//! their messages (or a part of one) that a named party may fetch without the user's
//! password — GENURLAUTH signs it, URLFETCH fetches it, RESETKEY revokes every URL of a
//! mailbox — and the resolver the submission server's BURL (RFC 4468) uses.
//!
//! The INTERNAL mechanism: the token is HMAC-SHA-256, under the mailbox's access key
//! (`postcore_storage` keeps one per mailbox), of the URL up to and including its access
//! identifier, in hex. URLs name messages of the issuing user's personal mailboxes, on this
//! server (the URL's host is the configured host name).

use super::catenate::url_part;
use super::fetch::open_body;
use super::{Done, Session};
use crate::context::Shared;
use postcore_protocol::imap::encode;
use postcore_protocol::imap::url::{Access, AuthUrl, parse_auth};
use postcore_protocol::imap::{Code, StatusText};
use postcore_storage::mailbox::folder_path;

/// The one mechanism (RFC 4467 §5: INTERNAL is the server's own).
const INTERNAL: &str = "INTERNAL";

/// Who asks to follow a URL (RFC 4467 §3: the access identifiers).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Requester<'a> {
    /// An IMAP session logged in as this user (URLFETCH).
    Imap(&'a str),
    /// The submission server acting for this authenticated user (BURL).
    Submit(&'a str),
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The INTERNAL token of `rump` under `key`.
fn token(key: &[u8], rump: &str) -> String {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key);
    hex(ring::hmac::sign(&k, rump.as_bytes()).as_ref())
}

/// The personal mailbox name a URL names ("inbox" in any case is INBOX).
fn mailbox_name(name: &str) -> String {
    if name.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        name.to_string()
    }
}

/// Whether `requester` is the party `access` names (RFC 4467 §3).
fn permitted(access: &Access, requester: Requester) -> bool {
    match (access, requester) {
        (Access::Anonymous | Access::AuthUser, _) => true,
        (Access::User(u), Requester::Imap(r)) => u == r,
        (Access::Submit(u), Requester::Submit(r)) => u == r,
        _ => false,
    }
}

/// The octets an authorized URL names, if it is valid now, its token checks out, and
/// `requester` is whom it was issued for (RFC 4467 §7.3: anything else is NIL, with no
/// reason given).
pub(crate) fn fetch_authorized(
    shared: &Shared,
    url: &str,
    requester: Requester,
) -> Option<Vec<u8>> {
    let u = parse_auth(url)?;
    let (mech, tok) = u.auth.as_ref()?;
    if mech != INTERNAL
        || !u.host.eq_ignore_ascii_case(&shared.config.hostname)
        || !permitted(&u.access, requester)
    {
        return None;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if u.expire.is_some_and(|e| e <= now) {
        return None;
    }
    let idx = &shared.mailboxes;
    let name = mailbox_name(&u.message.mailbox);
    let meta = idx.get(&u.user, &name).ok()??;
    let key = idx.urlauth_key_if_any(meta.id).ok()??;
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key);
    ring::hmac::verify(&k, u.rump.as_bytes(), &unhex(tok)?).ok()?;
    if u.message.uidvalidity.is_some_and(|v| v != meta.uidvalidity) {
        return None;
    }
    let rec = idx.message(meta.id, u.message.uid).ok()??;
    let root = crate::usage::mailbox_path(
        &shared.mail_root,
        &postcore_storage::directory::Mailbox::User(u.user.clone()),
    );
    let body = open_body(&folder_path(&root, &name).join(rec.relative_path())).ok()?;
    url_part(body.bytes(), &u.message)
}

impl Session {
    /// GENURLAUTH (RFC 4467 §7.2): the URLs with their tokens, all or none.
    pub(super) fn genurlauth(&mut self, pairs: &[(String, String)]) -> Done {
        let mut out = Vec::new();
        for (url, mech) in pairs {
            let Some(u) = parse_auth(url).filter(|u| u.auth.is_none()) else {
                return Done::bad(format!("Not a URLAUTH rump URL: {url}"));
            };
            if mech != INTERNAL {
                return Done::no(format!("Unsupported URLAUTH mechanism {mech}"));
            }
            match self.url_key(&u) {
                Ok(key) => out.push(format!("{}:{INTERNAL}:{}", u.rump, token(&key, &u.rump))),
                Err(done) => return done,
            }
        }
        let mut l = b"* GENURLAUTH".to_vec();
        for full in out {
            l.push(b' ');
            encode::string(&mut l, full.as_bytes());
        }
        l.extend_from_slice(b"\r\n");
        self.conn.out.extend_from_slice(&l);
        Done::ok("GENURLAUTH completed")
    }

    /// The access key for a URL this user may issue: their own message, on this server.
    fn url_key(&self, u: &AuthUrl) -> Result<[u8; 32], Done> {
        if u.user != self.user() {
            return Err(Done::no("A URL can only be issued for your own mailboxes"));
        }
        if !u
            .host
            .eq_ignore_ascii_case(&self.ctx.shared.config.hostname)
        {
            return Err(Done::no("The URL names another server"));
        }
        let idx = &self.ctx.shared.mailboxes;
        let meta = idx
            .get(self.user(), &mailbox_name(&u.message.mailbox))
            .ok()
            .flatten()
            .ok_or_else(|| Done::no_with(Code::NonExistent, "No such mailbox"))?;
        let exists = u.message.uidvalidity.is_none_or(|v| v == meta.uidvalidity)
            && idx.message(meta.id, u.message.uid).ok().flatten().is_some();
        if !exists {
            return Err(Done::no("No such message"));
        }
        idx.urlauth_key(meta.id).map_err(|e| {
            tracing::warn!("imap genurlauth: {e:#}");
            Done::no_with(Code::ServerBug, "Cannot make a key")
        })
    }

    /// URLFETCH (RFC 4467 §7.3): each URL's octets, or NIL.
    pub(super) fn urlfetch(&mut self, urls: &[String]) -> Done {
        let user = self.user().to_string();
        for url in urls {
            let data = fetch_authorized(&self.ctx.shared, url, Requester::Imap(&user));
            let mut l = b"* URLFETCH ".to_vec();
            encode::string(&mut l, url.as_bytes());
            l.push(b' ');
            match data {
                // A literal never carries NUL (RFC 9051 §4.3): binary content is a literal8.
                Some(d) if d.contains(&0) => encode::literal8(&mut l, &d),
                Some(d) => encode::literal(&mut l, &d),
                None => l.extend_from_slice(b"NIL"),
            }
            l.extend_from_slice(b"\r\n");
            self.conn.out.extend_from_slice(&l);
        }
        Done::ok("URLFETCH completed")
    }

    /// RESETKEY (RFC 4467 §7.1): new keys for every mailbox of the user, or for one.
    pub(super) fn resetkey(&mut self, arg: Option<(String, Vec<String>)>) -> Done {
        let idx = self.ctx.shared.mailboxes.clone();
        let ids: Vec<u64> = match &arg {
            None => idx
                .list(self.user())
                .unwrap_or_default()
                .into_iter()
                .map(|(_, m)| m.id)
                .collect(),
            Some((name, mechs)) => {
                if let Some(m) = mechs.iter().find(|m| *m != INTERNAL) {
                    return Done::no(format!("Unsupported URLAUTH mechanism {m}"));
                }
                match idx.get(self.user(), &mailbox_name(name)).ok().flatten() {
                    Some(meta) => vec![meta.id],
                    None => return Done::no_with(Code::NonExistent, "No such mailbox"),
                }
            }
        };
        for id in ids {
            if let Err(e) = idx.urlauth_reset(id) {
                tracing::warn!("imap resetkey: {e:#}");
                return Done::no_with(Code::ServerBug, "Cannot reset the key");
            }
        }
        match arg {
            // §6: URLMECH names the mechanisms the mailbox now has keys for.
            Some(_) => Done::Ok(StatusText::with(
                Code::UrlMech(INTERNAL.into()),
                "RESETKEY completed",
            )),
            None => Done::ok("RESETKEY completed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            token(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
    }

    #[test]
    fn access_identifiers() {
        let fred = Access::User("fred".into());
        assert!(permitted(&fred, Requester::Imap("fred")));
        assert!(!permitted(&fred, Requester::Imap("joe")));
        assert!(!permitted(&fred, Requester::Submit("fred")));
        let submit = Access::Submit("fred".into());
        assert!(permitted(&submit, Requester::Submit("fred")));
        assert!(!permitted(&submit, Requester::Imap("fred")));
        assert!(permitted(&Access::AuthUser, Requester::Imap("anyone")));
    }
}
