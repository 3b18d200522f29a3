//! SASL helpers for SMTP AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN.
//! Base64 decoding is done by the caller; these functions work on decoded octets.

/// Credentials from a PLAIN response `authzid NUL authcid NUL passwd` (RFC 4616 §2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainCredentials {
    /// Authorization identity (may be empty).
    pub authzid: String,
    /// Authentication identity (the login).
    pub authcid: String,
    /// Password.
    pub password: String,
}

/// Parses a decoded PLAIN response. `None` if it is malformed.
pub fn parse_plain(decoded: &[u8]) -> Option<PlainCredentials> {
    let mut parts = decoded.split(|b| *b == 0);
    let authzid = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let authcid = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let password = std::str::from_utf8(parts.next()?).ok()?.to_string();
    if parts.next().is_some() || authcid.is_empty() {
        return None;
    }
    Some(PlainCredentials {
        authzid,
        authcid,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain() {
        let c = parse_plain(b"\0alice\0secret").unwrap();
        assert_eq!(
            (c.authcid.as_str(), c.password.as_str()),
            ("alice", "secret")
        );
        assert!(parse_plain(b"alice").is_none());
        assert!(parse_plain(b"\0\0pw").is_none());
        assert!(parse_plain(b"a\0b\0c\0d").is_none());
    }
}
