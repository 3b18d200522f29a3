//! Building blocks of server responses (RFC 9051 §7 and §9): strings that are sent as atoms,
//! quoted strings or literals depending on their content.

/// Appends `s` as an IMAP string: quoted if it is short, 7-bit and has no CR/LF, else a literal.
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    let quotable = s.len() < 1024 && s.iter().all(|b| *b >= 0x20 && *b < 0x7f);
    if quotable {
        out.push(b'"');
        for &b in s {
            if b == b'"' || b == b'\\' {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        literal(out, s);
    }
}

/// Appends `s` as a literal `{N}` CRLF data. RFC 9051 §4.3: a literal is any octet but NUL,
/// so a NUL in `s` goes out as 0x80 (as Dovecot sends it; the length stays); the octets as
/// they are go out only as a [`literal8`] where the client asked for BINARY (RFC 3516).
pub fn literal(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("{{{}}}\r\n", s.len()).as_bytes());
    if s.contains(&0) {
        out.extend(s.iter().map(|&b| if b == 0 { 0x80 } else { b }));
    } else {
        out.extend_from_slice(s);
    }
}

/// Appends `s` as an RFC 3516 literal8 `~{N}` CRLF data, NUL octets included.
pub fn literal8(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(format!("~{{{}}}\r\n", s.len()).as_bytes());
    out.extend_from_slice(s);
}

/// Appends an nstring: `NIL` for `None`.
pub fn nstring(out: &mut Vec<u8>, s: Option<&[u8]>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"NIL"),
    }
}

/// Appends a mailbox name: an atom when it is one (INBOX, Sent), otherwise a string.
pub fn mailbox(out: &mut Vec<u8>, name: &str) {
    let atom = !name.is_empty()
        && name.bytes().all(|b| {
            b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\')
        });
    if atom {
        out.extend_from_slice(name.as_bytes());
    } else {
        string(out, name.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_never_carry_nul() {
        let mut out = Vec::new();
        literal(&mut out, b"a\0b");
        assert_eq!(out, b"{3}\r\na\x80b");
        out.clear();
        literal8(&mut out, b"a\0b");
        assert_eq!(out, b"~{3}\r\na\0b");
    }

    #[test]
    fn strings() {
        let mut o = Vec::new();
        string(&mut o, b"a \"b\"");
        assert_eq!(o, b"\"a \\\"b\\\"\"");
        o.clear();
        string(&mut o, b"x\r\ny");
        assert_eq!(o, b"{4}\r\nx\r\ny");
        o.clear();
        mailbox(&mut o, "Sent Items");
        assert_eq!(o, b"\"Sent Items\"");
    }
}
