//! Envelope paths and mailboxes, RFC 5321 §4.1.2 (and RFC 6531 for SMTPUTF8).
//!
//! The parser is strict about structure: one `@`, a non-empty domain that is a valid
//! hostname or an address literal, a dot-string or quoted-string local part. Source routes
//! (`<@a,@b:user@d>`) are accepted and dropped as RFC 5321 §4.1.1.3 and Appendix C require,
//! so relay decisions are always taken on the final mailbox.

use std::fmt;

/// RFC 5321 §4.5.3.1.1: maximum local-part length.
pub const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.2: maximum domain length.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: maximum path length including the angle brackets.
pub const MAX_PATH: usize = 256;

/// A mailbox `local@domain`. The local part is kept as the sender wrote it (unquoted form);
/// the domain is lower-cased (domains are case-insensitive, RFC 5321 §2.4).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// Local part in its unquoted form.
    pub local: String,
    /// Domain (lower case) or address literal such as `[192.0.2.1]`.
    pub domain: String,
}

impl Address {
    /// Parses `local@domain` without angle brackets.
    pub fn parse(s: &str, utf8: bool) -> Result<Address, AddressError> {
        let at = find_domain_at(s).ok_or(AddressError::MissingAt)?;
        let (lp, dom) = (&s[..at], &s[at + 1..]);
        let local = parse_local_part(lp, utf8)?;
        let domain = parse_domain(dom, utf8)?;
        Ok(Address { local, domain })
    }

    /// Local part lower-cased, the key used for directory look-ups.
    pub fn local_lower(&self) -> String {
        self.local.to_lowercase()
    }

    /// True if the address needs SMTPUTF8 to be transported.
    pub fn is_utf8(&self) -> bool {
        !self.local.is_ascii() || !self.domain.is_ascii()
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if needs_quoting(&self.local) {
            write!(f, "\"")?;
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    write!(f, "\\")?;
                }
                write!(f, "{c}")?;
            }
            write!(f, "\"@{}", self.domain)
        } else {
            write!(f, "{}@{}", self.local, self.domain)
        }
    }
}

/// Why a path or mailbox was refused; maps to `501 5.1.3` / `553 5.1.3` replies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// No angle brackets around the path.
    MissingBrackets,
    /// No `@` separating local part and domain.
    MissingAt,
    /// Empty or malformed local part.
    BadLocalPart,
    /// Empty or malformed domain.
    BadDomain,
    /// A length limit of RFC 5321 §4.5.3.1 was exceeded.
    TooLong,
    /// Non-ASCII without SMTPUTF8.
    NonAscii,
}

impl fmt::Display for AddressError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            AddressError::MissingBrackets => "path must be enclosed in <>",
            AddressError::MissingAt => "mailbox needs local-part@domain",
            AddressError::BadLocalPart => "invalid local part",
            AddressError::BadDomain => "invalid domain",
            AddressError::TooLong => "address too long",
            AddressError::NonAscii => "non-ASCII address requires SMTPUTF8",
        };
        f.write_str(s)
    }
}

/// Parses `<path>` as in MAIL FROM / RCPT TO. `Ok(None)` is the null path `<>`.
pub fn parse_path(s: &str, utf8: bool) -> Result<Option<Address>, AddressError> {
    if s.len() > MAX_PATH {
        return Err(AddressError::TooLong);
    }
    let inner = s
        .strip_prefix('<')
        .and_then(|r| r.strip_suffix('>'))
        .ok_or(AddressError::MissingBrackets)?;
    if inner.is_empty() {
        return Ok(None);
    }
    // RFC 5321 §4.1.2 A-d-l: "@host,@host:" source route, accepted and ignored.
    let mailbox = if inner.starts_with('@') {
        let colon = inner.find(':').ok_or(AddressError::BadDomain)?;
        for hop in inner[..colon].split(',') {
            let hop = hop.strip_prefix('@').ok_or(AddressError::BadDomain)?;
            parse_domain(hop, utf8)?;
        }
        &inner[colon + 1..]
    } else {
        inner
    };
    Address::parse(mailbox, utf8).map(Some)
}

/// Finds the `@` that separates the domain: the last one outside a quoted local part.
fn find_domain_at(s: &str) -> Option<usize> {
    if s.starts_with('"') {
        // Skip the quoted string, honouring backslash escapes.
        let b = s.as_bytes();
        let mut i = 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => {
                    return if b.get(i + 1) == Some(&b'@') {
                        Some(i + 1)
                    } else {
                        None
                    };
                }
                _ => i += 1,
            }
        }
        None
    } else {
        s.find('@')
    }
}

fn is_atext(c: char, utf8: bool) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || (utf8 && !c.is_ascii())
}

fn needs_quoting(local: &str) -> bool {
    local.is_empty()
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
        || local.chars().any(|c| c != '.' && !is_atext(c, true))
}

fn parse_local_part(lp: &str, utf8: bool) -> Result<String, AddressError> {
    if !utf8 && !lp.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    let local = if let Some(q) = lp.strip_prefix('"') {
        let q = q.strip_suffix('"').ok_or(AddressError::BadLocalPart)?;
        let mut out = String::new();
        let mut chars = q.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    let n = chars.next().ok_or(AddressError::BadLocalPart)?;
                    if n.is_control() && n != '\t' {
                        return Err(AddressError::BadLocalPart);
                    }
                    out.push(n);
                }
                '"' => return Err(AddressError::BadLocalPart),
                c if c.is_control() => return Err(AddressError::BadLocalPart),
                c => out.push(c),
            }
        }
        out
    } else {
        if lp.is_empty()
            || lp
                .split('.')
                .any(|atom| atom.is_empty() || !atom.chars().all(|c| is_atext(c, utf8)))
        {
            return Err(AddressError::BadLocalPart);
        }
        lp.to_string()
    };
    if local.is_empty() {
        return Err(AddressError::BadLocalPart);
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(AddressError::TooLong);
    }
    Ok(local)
}

/// Validates a domain name or address literal and returns it lower-cased.
pub fn parse_domain(d: &str, utf8: bool) -> Result<String, AddressError> {
    if d.is_empty() {
        return Err(AddressError::BadDomain);
    }
    if d.len() > MAX_DOMAIN {
        return Err(AddressError::TooLong);
    }
    if !utf8 && !d.is_ascii() {
        return Err(AddressError::NonAscii);
    }
    if let Some(lit) = d.strip_prefix('[') {
        // RFC 5321 §4.1.3 address literal.
        let lit = lit.strip_suffix(']').ok_or(AddressError::BadDomain)?;
        let ok = if let Some(v6) = lit.strip_prefix("IPv6:") {
            v6.parse::<std::net::Ipv6Addr>().is_ok()
        } else {
            lit.parse::<std::net::Ipv4Addr>().is_ok()
        };
        return if ok {
            Ok(d.to_ascii_lowercase())
        } else {
            Err(AddressError::BadDomain)
        };
    }
    let d = d.strip_suffix('.').unwrap_or(d);
    for label in d.split('.') {
        let valid = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || (utf8 && !c.is_ascii()));
        if !valid {
            return Err(AddressError::BadDomain);
        }
    }
    Ok(d.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Option<Address>, AddressError> {
        parse_path(s, false)
    }

    #[test]
    fn plain_and_null() {
        let a = p("<Alice@Example.COM>").unwrap().unwrap();
        assert_eq!(a.local, "Alice");
        assert_eq!(a.domain, "example.com");
        assert_eq!(p("<>").unwrap(), None);
    }

    #[test]
    fn source_route_is_dropped() {
        let a = p("<@relay.example,@other.example:bob@local.test>")
            .unwrap()
            .unwrap();
        assert_eq!(a.to_string(), "bob@local.test");
    }

    #[test]
    fn relay_tricks_keep_their_literal_local_part() {
        let a = p("<user%remote.example@local.test>").unwrap().unwrap();
        assert_eq!(
            (a.local.as_str(), a.domain.as_str()),
            ("user%remote.example", "local.test")
        );
        let a = p("<remote.example!user@local.test>").unwrap().unwrap();
        assert_eq!(a.domain, "local.test");
        let a = p("<\"user@remote.example\"@local.test>").unwrap().unwrap();
        assert_eq!(
            (a.local.as_str(), a.domain.as_str()),
            ("user@remote.example", "local.test")
        );
        assert_eq!(a.to_string(), "\"user@remote.example\"@local.test");
    }

    #[test]
    fn malformed() {
        assert_eq!(p("user@local.test"), Err(AddressError::MissingBrackets));
        assert!(p("<user@@local.test>").is_err());
        assert!(p("<user@>").is_err());
        assert!(p("<@local.test>").is_err());
        assert!(p("<user>").is_err());
        assert!(p("<a..b@local.test>").is_err());
        assert!(p("<user@-bad.test>").is_err());
        assert!(p("<user@[999.1.1.1]>").is_err());
        assert!(p("<\"unterminated@local.test>").is_err());
        assert_eq!(p("<jörg@local.test>"), Err(AddressError::NonAscii));
        assert!(parse_path("<jörg@local.test>", true).is_ok());
        let long = format!("<{}@local.test>", "a".repeat(65));
        assert_eq!(p(&long), Err(AddressError::TooLong));
    }

    #[test]
    fn address_literal() {
        let a = p("<postmaster@[127.0.0.1]>").unwrap().unwrap();
        assert_eq!(a.domain, "[127.0.0.1]");
        assert!(p("<x@[IPv6:::1]>").is_ok());
    }
}
