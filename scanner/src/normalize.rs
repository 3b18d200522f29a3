//! The text and HTML forms ClamAV matches target-type 7 (ASCII text) and 3 (HTML)
//! signatures against — and target-0 signatures too — so that case, runs of white space and
//! character references do not hide a match.
//!
//! Text (ClamAV `textnorm`): `\t \n \v \f \r` and space become one space per run, upper case
//! letters become lower case, other control characters and every byte above 0x7f are dropped.
//! HTML: the same, after character references (`&#32;`, `&#x4E;`, `&amp;` …) are decoded.

/// Bytes ClamAV's text detection accepts in ASCII text: BEL to CR, ESC, and printable ASCII.
fn text_byte(b: u8) -> bool {
    matches!(b, 0x07..=0x0d | 0x1b | 0x20..=0x7e)
}

/// Whether `data` is text in ClamAV's sense (ASCII, or UTF-8 with text characters), judged on
/// its first 1,028 bytes (ClamAV's magic buffer).
pub fn is_text(data: &[u8]) -> bool {
    let head = &data[..data.len().min(1028)];
    if head.is_empty() {
        return false;
    }
    if head.iter().all(|&b| text_byte(b)) {
        return true;
    }
    // UTF-8: a cut at 1,028 bytes may split the last character.
    let valid = match std::str::from_utf8(head) {
        Ok(s) => s,
        Err(e) if e.error_len().is_none() => {
            std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or("")
        }
        Err(_) => return false,
    };
    !valid.is_empty() && valid.bytes().all(|b| b >= 0x80 || text_byte(b))
}

/// What the text rules do with each byte value.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Copy,
    Skip,
    Space,
    Lower,
}

const ACTIONS: [Action; 256] = {
    let mut t = [Action::Skip; 256];
    let mut b = 0x21;
    while b < 0x80 {
        t[b] = Action::Copy;
        b += 1;
    }
    let mut u = b'A' as usize;
    while u <= b'Z' as usize {
        t[u] = Action::Lower;
        u += 1;
    }
    t[b'\t' as usize] = Action::Space;
    t[b'\n' as usize] = Action::Space;
    t[0x0b] = Action::Space;
    t[0x0c] = Action::Space;
    t[b'\r' as usize] = Action::Space;
    t[b' ' as usize] = Action::Space;
    t
};

/// Appends `b` to `out` under the text rules; `space` tracks a pending run of white space.
#[inline]
fn push_text(out: &mut Vec<u8>, b: u8, space: &mut bool) {
    match ACTIONS[usize::from(b)] {
        Action::Copy => {
            out.push(b);
            *space = false;
        }
        Action::Lower => {
            out.push(b + 32);
            *space = false;
        }
        Action::Space if !*space => {
            out.push(b' ');
            *space = true;
        }
        _ => {}
    }
}

/// The normalised text form of `data`.
pub fn text(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut space = false;
    data.iter()
        .for_each(|&b| push_text(&mut out, b, &mut space));
    out
}

/// Decodes a character reference starting after `&`; returns the character and the bytes
/// consumed (up to and including `;`).
fn reference(rest: &[u8]) -> Option<(u32, usize)> {
    let end = rest.iter().take(12).position(|&b| b == b';')?;
    let body = std::str::from_utf8(&rest[..end]).ok()?;
    let c = if let Some(num) = body.strip_prefix('#') {
        match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        }
    } else {
        match body.to_ascii_lowercase().as_str() {
            "amp" => u32::from(b'&'),
            "lt" => u32::from(b'<'),
            "gt" => u32::from(b'>'),
            "quot" => u32::from(b'"'),
            "apos" => u32::from(b'\''),
            "nbsp" => u32::from(b' '),
            _ => return None,
        }
    };
    Some((c, end + 1))
}

/// The normalised HTML form of `data`: references decoded, then the text rules.
pub fn html(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut space = false;
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        if b == b'&'
            && let Some((c, used)) = reference(&data[i + 1..])
        {
            if let Ok(c) = u8::try_from(c) {
                push_text(&mut out, c, &mut space);
            }
            i += 1 + used;
            continue;
        }
        push_text(&mut out, b, &mut space);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_rules() {
        assert_eq!(text(b"MXC  Text\n\tNORM one\x01\xff"), b"mxc text norm one");
        assert!(is_text(b"plain words\r\n") && is_text("grüße\n".as_bytes()));
        assert!(!is_text(b"\x00\x01MXC") && !is_text(b""));
    }

    #[test]
    fn html_rules() {
        assert_eq!(
            html(b"<div>mxc&#32;html a &#x4E;orm &amp; <B>Tail</B></div>"),
            b"<div>mxc html a norm & <b>tail</b></div>"
        );
        assert_eq!(html(b"<IFRAME   SRC=\"x\">"), b"<iframe src=\"x\">");
    }
}
