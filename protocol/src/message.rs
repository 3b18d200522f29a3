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

#[cfg(test)]
mod tests {
    use super::*;

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
