//! BinHex 4.0 (RFC 1741, the classic Macintosh mail encoding; ClamAV's `CL_TYPE_BINHEX`):
//! after the line `(This file must be converted with BinHex 4.0)`, characters between two
//! colons carry 6 bits each (white space ignored); the octets they make are run-length
//! encoded (`0x90 n`: the previous octet n times in all; `0x90 0x00`: the octet 0x90). The
//! result is a header (name, type, creator, flags, the two forks' lengths, a CRC), the data
//! fork and its CRC, the resource fork and its CRC. CRCs are not checked (ClamAV scans a
//! file whose CRC is wrong too).

/// ClamAV's container type name.
pub const CONTAINER: &str = "CL_TYPE_BINHEX";

/// The line that starts BinHex data (RFC 1741 §"Format").
pub const BANNER: &[u8] = b"(This file must be converted with BinHex";

/// The 64 characters of the encoding, in the order of their values.
const ALPHABET: &[u8; 64] = b"!\"#$%&'()*+,-012345689@ABCDEFGHIJKLMNPQRSTUVXYZ[`abcdefhijklmpqr";

/// Each octet's value in the encoding, or 0xff for octets outside it.
const VALUES: [u8; 256] = {
    let mut t = [0xff; 256];
    let mut i = 0;
    while i < 64 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// The run-length marker.
const RLE: u8 = 0x90;

/// A decoded BinHex file.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    /// The file name in the header.
    pub name: String,
    /// The data fork.
    pub data: Vec<u8>,
    /// The resource fork.
    pub resource: Vec<u8>,
}

/// Decodes the BinHex file in `text` (other text may come before the banner), producing at
/// most `cap` octets after run-length expansion, and says whether the cap cut the output
/// short; `None` when there is no banner, no colon after it, or no complete header. Forks cut
/// short by the end of the data or by `cap` are returned as far as they go.
pub fn decode_capped(text: &[u8], cap: usize) -> Option<(Decoded, bool)> {
    let start = memchr::memmem::find(text, BANNER)?;
    let after = &text[start + BANNER.len()..];
    let colon = after.iter().position(|&b| b == b':')?;
    let (octets, capped) = expand(&after[colon + 1..], cap);
    let (name, data_len, res_len, head) = header(&octets)?;
    // The header's CRC may be cut off.
    let head = head.min(octets.len());
    let data_end = head.saturating_add(data_len).min(octets.len());
    let data = octets[head..data_end].to_vec();
    // The data fork's CRC (2 octets), then the resource fork.
    let res_start = data_end.saturating_add(2).min(octets.len());
    let res_end = res_start.saturating_add(res_len).min(octets.len());
    let resource = octets[res_start..res_end].to_vec();
    Some((
        Decoded {
            name,
            data,
            resource,
        },
        capped,
    ))
}

/// The octets of the encoded text up to the closing colon (or the end), run-length expanded,
/// at most `cap`; and whether there was more.
fn expand(encoded: &[u8], cap: usize) -> (Vec<u8>, bool) {
    let mut out: Vec<u8> = Vec::new();
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut marker = false;
    for &c in encoded {
        if c == b':' {
            break;
        }
        if c.is_ascii_whitespace() {
            continue;
        }
        let v = VALUES[usize::from(c)];
        if v == 0xff {
            break;
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits < 8 {
            continue;
        }
        bits -= 8;
        let b = (acc >> bits) as u8;
        acc &= (1 << bits) - 1;
        if marker {
            marker = false;
            match (b, out.last().copied()) {
                (0, _) => out.push(RLE),
                (n, Some(prev)) => {
                    let more = usize::from(n).saturating_sub(1);
                    let room = cap.saturating_sub(out.len());
                    if more > room {
                        out.extend(std::iter::repeat_n(prev, room));
                        return (out, true);
                    }
                    out.extend(std::iter::repeat_n(prev, more));
                }
                (_, None) => {}
            }
        } else if b == RLE {
            marker = true;
        } else {
            out.push(b);
        }
        if out.len() > cap {
            out.truncate(cap);
            return (out, true);
        }
    }
    (out, false)
}

/// The header: name, data fork length, resource fork length, and where the data fork starts.
fn header(o: &[u8]) -> Option<(String, usize, usize, usize)> {
    let n = usize::from(*o.first()?);
    let name = String::from_utf8_lossy(o.get(1..1 + n)?).into_owned();
    // Name, version (1), type (4), creator (4), flags (2).
    let lens = 1 + n + 1 + 4 + 4 + 2;
    let data_len = u32::from_be_bytes(o.get(lens..lens + 4)?.try_into().ok()?) as usize;
    let res_len = u32::from_be_bytes(o.get(lens + 4..lens + 8)?.try_into().ok()?) as usize;
    // Then the header's CRC (2).
    Some((name, data_len, res_len, lens + 8 + 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &[u8], cap: usize) -> Option<Decoded> {
        decode_capped(text, cap).map(|(d, _)| d)
    }

    /// Encodes octets (already run-length encoded) in the BinHex alphabet, 64 per line.
    fn encode(octets: &[u8]) -> Vec<u8> {
        let mut out = b"(This file must be converted with BinHex 4.0)\r\n:".to_vec();
        let mut acc: u32 = 0;
        let mut bits = 0;
        let mut col = 1;
        for &b in octets {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                out.push(ALPHABET[((acc >> bits) & 63) as usize]);
                col += 1;
                if col == 64 {
                    out.extend_from_slice(b"\r\n");
                    col = 0;
                }
            }
        }
        if bits > 0 {
            out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize]);
        }
        out.extend_from_slice(b":\r\n");
        out
    }

    fn file(name: &[u8], data: &[u8], resource: &[u8]) -> Vec<u8> {
        let mut o = vec![name.len() as u8];
        o.extend_from_slice(name);
        o.push(0);
        o.extend_from_slice(b"APPLMACS");
        o.extend_from_slice(&[0, 0]);
        o.extend_from_slice(&(data.len() as u32).to_be_bytes());
        o.extend_from_slice(&(resource.len() as u32).to_be_bytes());
        o.extend_from_slice(&[0, 0]);
        o.extend_from_slice(data);
        o.extend_from_slice(&[0, 0]);
        o.extend_from_slice(resource);
        o.extend_from_slice(&[0, 0]);
        o
    }

    #[test]
    fn forks_and_name() {
        let enc = encode(&file(b"hello.txt", b"data fork", b"rsrc"));
        let mut text = b"Some text before.\r\n".to_vec();
        text.extend_from_slice(&enc);
        let d = decode(&text, 1 << 20).expect("BinHex");
        assert_eq!(d.name, "hello.txt");
        assert_eq!(d.data, b"data fork");
        assert_eq!(d.resource, b"rsrc");
        assert!(decode(b"no banner : here", 100).is_none());
    }

    #[test]
    fn run_length_encoding_and_its_cap() {
        // "A" then 0x90 0x05: five A's in all; 0x90 0x00: a literal 0x90.
        let mut o = file(b"r", b"", b"");
        o.truncate(o.len() - 4); // no forks yet
        let body = [b'A', RLE, 5, RLE, 0, b'B'];
        let mut with = o.clone();
        // Data fork length 7 (the expanded size).
        let lens = 1 + 1 + 1 + 4 + 4 + 2;
        with[lens..lens + 4].copy_from_slice(&7u32.to_be_bytes());
        with.extend_from_slice(&body);
        let d = decode(&encode(&with), 1 << 20).expect("BinHex");
        assert_eq!(d.data, b"AAAAA\x90B");
        // A run past the cap stops at the cap and says so.
        let mut bomb = o;
        bomb[lens..lens + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        for _ in 0..1000 {
            bomb.extend_from_slice(&[b'Z', RLE, 255]);
        }
        let (d, capped) = decode_capped(&encode(&bomb), 10_000).expect("BinHex");
        assert!(capped);
        assert!(d.data.len() <= 10_000);
    }

    #[test]
    fn header_without_its_crc() {
        // Found by the fuzz target: a header whose CRC is missing (slicing panicked).
        let text = b"(This file must be converted with BinHex 4.0)\r\n:#########NNNNNNNNNNNNNNNNNNNNNNNN##";
        let d = decode(text, 1 << 16).expect("a header");
        assert!(d.data.len() + d.resource.len() < text.len());
    }

    #[test]
    fn clamav_test_file() {
        let text = std::fs::read("/usr/share/clamav-testfiles/clam.exe.binhex")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let d = decode(&text, 1 << 20).expect("BinHex");
        assert!(d.data.starts_with(b"MZ"), "{d:?}");
    }
}
