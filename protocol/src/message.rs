//! Whole-message octet helpers (RFC 5322 §2.1): the header/body split and header-field edits,
//! sans-IO so they can be fuzzed.

/// The header section of a message: up to and including the CRLF before the empty line that
/// ends it (the whole message when there is none; empty when the message starts with one).
pub fn header_section(msg: &[u8]) -> &[u8] {
    if msg.starts_with(b"\r\n") {
        return &[];
    }
    match memchr::memmem::find(msg, b"\r\n\r\n") {
        Some(p) => &msg[..p + 2],
        None => msg,
    }
}

/// True for a header field name: printable US-ASCII except `:` (RFC 5322 §2.2).
pub fn valid_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

/// Removes every field named in `remove` (case-insensitive, with its continuation lines) and
/// puts the `add` fields on top, in order. A value is put on one line (CR and LF become
/// spaces), so no edit can add a second field or end the header section; invalid names are
/// ignored on both sides (an empty name would otherwise match the line that ends the header
/// section). The body is not touched. `content` has CRLF line ends, as the DATA/BDAT receiver
/// delivers it (bare CR and LF are normalised there, RFC 5321 §2.3.8).
pub fn edit_header_section(content: Vec<u8>, remove: &[&str], add: &[(&str, &str)]) -> Vec<u8> {
    if remove.is_empty() && add.is_empty() {
        return content;
    }
    let mut out = Vec::with_capacity(content.len() + 256);
    for (name, value) in add {
        if !valid_field_name(name) {
            continue;
        }
        let clean: String = value
            .chars()
            .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
            .collect();
        out.extend_from_slice(format!("{name}: {}\r\n", clean.trim()).as_bytes());
    }
    let remove: Vec<&str> = remove
        .iter()
        .copied()
        .filter(|n| valid_field_name(n))
        .collect();
    let header_len = header_section(&content).len();
    let (head, body) = content.split_at(header_len.min(content.len()));
    let mut skipping = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        if !continuation {
            let name = line.split(|&b| b == b':').next().unwrap_or(&[]);
            skipping = remove
                .iter()
                .any(|r| name.trim_ascii().eq_ignore_ascii_case(r.as_bytes()));
        }
        if !skipping {
            out.extend_from_slice(line);
        }
    }
    out.extend_from_slice(body);
    out
}

/// The header fields of `content` for which `drop(name, value)` is true removed (each with its
/// continuation lines; `value` is everything after the colon, folded lines included); the body
/// is not touched. `None` when no field was removed.
pub fn remove_fields_where(content: &[u8], drop: impl Fn(&[u8], &[u8]) -> bool) -> Option<Vec<u8>> {
    let header_len = header_section(content).len();
    let (head, body) = content.split_at(header_len);
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    for (i, line) in head.split_inclusive(|&b| b == b'\n').scan(0, |at, l| {
        let i = *at;
        *at += l.len();
        Some((i, l))
    }) {
        if i > 0 && !matches!(line.first(), Some(b' ' | b'\t')) {
            fields.push(&head[start..i]);
            start = i;
        }
    }
    if start < head.len() {
        fields.push(&head[start..]);
    }
    let dropped = |f: &[u8]| {
        f.iter()
            .position(|&b| b == b':')
            .is_some_and(|c| drop(f[..c].trim_ascii(), &f[c + 1..]))
    };
    if !fields.iter().any(|f| dropped(f)) {
        return None;
    }
    let mut out = Vec::with_capacity(content.len());
    for f in fields.into_iter().filter(|f| !dropped(f)) {
        out.extend_from_slice(f);
    }
    out.extend_from_slice(body);
    Some(out)
}

/// The authserv-id of an `Authentication-Results` value (RFC 8601 §2.2: its first token,
/// after any comments).
pub fn authserv_id(value: &[u8]) -> String {
    let mut id = String::new();
    let mut depth = 0u32;
    let mut escaped = false;
    for &b in value {
        let c = b as char;
        if depth > 0 {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '(' => depth += 1,
                ')' => depth -= 1,
                _ => {}
            }
        } else if c == '(' {
            depth = 1;
        } else if c == ';' || c.is_ascii_whitespace() {
            if !id.is_empty() {
                break;
            }
        } else {
            id.push(c);
        }
    }
    id
}

/// `content` without the `Authentication-Results` fields that claim `authserv_id` as their
/// author: RFC 8601 §5 — a receiver must not trust, and should delete, fields with its own id
/// that arrived from outside. `None` when there were none.
pub fn strip_own_auth_results(content: &[u8], authserv_id_of_ours: &str) -> Option<Vec<u8>> {
    remove_fields_where(content, |name, value| {
        name.eq_ignore_ascii_case(b"Authentication-Results")
            && authserv_id(value).eq_ignore_ascii_case(authserv_id_of_ours)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_authentication_results_are_removed_others_kept() {
        let msg = b"Received: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Authentication-Results: mx.postcore.test;\r\n\tspf=pass smtp.mailfrom=a@b.test\r\n\
Authentication-Results: (forged (nested)) MX.Postcore.Test; dkim=pass\r\n\
Authentication-Results: other.test; dkim=fail\r\n\
Subject: hi\r\n\r\nAuthentication-Results: mx.postcore.test; in the body\r\n";
        let out = strip_own_auth_results(msg, "mx.postcore.test").unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(
            out,
            "Received: from x\r\n\tby y; Mon, 1 Jan 2024 00:00:00 +0000\r\n\
Authentication-Results: other.test; dkim=fail\r\nSubject: hi\r\n\r\n\
Authentication-Results: mx.postcore.test; in the body\r\n"
        );
        assert!(strip_own_auth_results(b"Subject: x\r\n\r\n", "mx.postcore.test").is_none());
        assert_eq!(authserv_id(b" (c) example.org 1; none"), "example.org");
        assert_eq!(authserv_id(b"example.org;spf=pass"), "example.org");
    }

    #[test]
    fn sections() {
        let m = b"Subject: a\r\nMessage-ID:\r\n <x@y>\r\n\r\nMessage-ID: <body@z>\r\n";
        assert_eq!(
            header_section(m),
            b"Subject: a\r\nMessage-ID:\r\n <x@y>\r\n"
        );
        assert_eq!(header_section(b"\r\nbody"), b"");
        assert_eq!(header_section(b"no end"), b"no end");
    }

    /// Found by the `header_edit` fuzz target: an empty name removed the line that ended the
    /// header section, so the body became part of it.
    #[test]
    fn invalid_names_change_nothing() {
        let msg = b"\x08\n\n\r\n\r\n)\xff".to_vec();
        assert_eq!(edit_header_section(msg.clone(), &[""], &[("", "")]), msg);
    }

    #[test]
    fn edits_remove_folded_fields_add_on_top_and_never_inject() {
        let msg = b"X-Spam: old\r\n\tcontinued\r\nSubject: hi\r\nx-spam: again\r\n\r\nX-Spam: in body\r\n";
        let out = edit_header_section(
            msg.to_vec(),
            &["X-Spam", ""],
            &[
                ("X-Spam", "yes\r\nBcc: evil@example.test\r\n\r\nbody"),
                ("Bad Name", "x"),
            ],
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "X-Spam: yes  Bcc: evil@example.test    body\r\nSubject: hi\r\n\r\nX-Spam: in body\r\n"
        );
    }
}
