//! Objects embedded in RTF documents, read without I/O (ClamAV's `libclamav/rtf.c` opens
//! them too): each `\objdata` destination's hexadecimal text decoded, then its OLE 1.0
//! wrapper taken off — the native data of the object, and for a "Package" object the file it
//! packages ([MS-OLEDS] §2.2.4 ObjectHeader/EmbeddedObject; the Packager's native format).
//! A native stream that is itself a compound file (an embedded Word or Excel document) is
//! opened by the content walk like any other OLE2 file.

/// The container name in ClamAV's terms (for `.ldb` container conditions).
pub const CONTAINER: &str = "CL_TYPE_RTF";

/// The control word that starts an embedded object's data (RTF 1.9.1, "Objects").
const OBJDATA: &[u8] = b"\\objdata";
/// [MS-OLEDS] §2.2.4: FormatID of an embedded object (a linked one, 1, carries no data).
const EMBEDDED: u32 = 2;
/// The Packager's type of a packaged file (its contents follow): "embedded file".
const PACKAGED_FILE: u16 = 3;

/// One object found in a document.
#[derive(Debug, PartialEq, Eq)]
pub struct Object {
    /// The packaged file's label, or the object's class name.
    pub name: String,
    /// The file, native data, or (when not an OLE 1.0 object) the decoded octets.
    pub data: Vec<u8>,
}

/// The embedded objects of `rtf`, at most `max`, with at most `budget` octets decoded in
/// all. `None` when `rtf` holds no `\objdata`.
pub fn objects(rtf: &[u8], max: usize, mut budget: usize) -> Option<Vec<Object>> {
    let mut out = Vec::new();
    let mut from = 0;
    while out.len() < max && budget > 0 {
        let Some(i) = memchr::memmem::find(&rtf[from..], OBJDATA) else {
            break;
        };
        let start = from + i + OBJDATA.len();
        // A longer control word (`\objdatax`) is another word.
        if rtf.get(start).is_some_and(u8::is_ascii_alphabetic) {
            from = start;
            continue;
        }
        let (raw, end) = hex_until_group_end(&rtf[start..], budget);
        from = start + end;
        if raw.is_empty() {
            continue;
        }
        budget = budget.saturating_sub(raw.len());
        out.push(unwrap_ole1(raw));
    }
    (!out.is_empty()).then_some(out)
}

/// Decodes the hexadecimal digits of a destination up to the `}` that closes it (white
/// space, control words and nested groups skipped), at most `cap` octets. Returns the octets
/// and where the scan stopped.
fn hex_until_group_end(text: &[u8], cap: usize) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let (mut depth, mut high, mut i) = (0u32, None::<u8>, 0);
    while i < text.len() && out.len() < cap {
        let c = text[i];
        i += 1;
        match c {
            b'{' => depth += 1,
            b'}' if depth == 0 => break,
            b'}' => depth -= 1,
            b'\\' => {
                // A control word or symbol inside the data: skip it and its parameter.
                while i < text.len() && (text[i].is_ascii_alphabetic() || text[i] == b'-') {
                    i += 1;
                }
                while i < text.len() && text[i].is_ascii_digit() {
                    i += 1;
                }
            }
            // Text of a group nested in the data is not part of it.
            _ if depth > 0 => {}
            _ => {
                let Some(v) = (c as char).to_digit(16) else {
                    continue;
                };
                match high.take() {
                    Some(h) => out.push((h << 4) | v as u8),
                    None => high = Some(v as u8),
                }
            }
        }
    }
    (out, i)
}

/// Little-endian reader over an object's octets.
struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.data.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    /// A length-prefixed string ([MS-OLEDS] §2.1.4 LengthPrefixedAnsiString).
    fn prefixed(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.u32()?).ok()?;
        self.take(n)
    }

    /// A NUL-terminated string (the Packager's fields).
    fn cstr(&mut self) -> Option<&'a [u8]> {
        let rest = self.data.get(self.at..)?;
        let n = memchr::memchr(0, rest)?;
        self.at += n + 1;
        Some(&rest[..n])
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b.strip_suffix(b"\0").unwrap_or(b)).into_owned()
}

/// The object inside an OLE 1.0 wrapper, or the octets as they are when they are not one.
fn unwrap_ole1(raw: Vec<u8>) -> Object {
    match native(&raw) {
        Some((class, data)) => {
            if class == "Package"
                && let Some((label, file)) = packaged(data)
            {
                return Object {
                    name: label,
                    data: file.to_vec(),
                };
            }
            Object {
                name: class,
                data: data.to_vec(),
            }
        }
        None => Object {
            name: "objdata".into(),
            data: raw,
        },
    }
}

/// [MS-OLEDS] §2.2.4 EmbeddedObject: header (version, format, class, topic, item), then the
/// native data's size and octets.
fn native(raw: &[u8]) -> Option<(String, &[u8])> {
    let mut r = Reader { data: raw, at: 0 };
    let _version = r.u32()?;
    if r.u32()? != EMBEDDED {
        return None;
    }
    let class = text(r.prefixed()?);
    let _topic = r.prefixed()?;
    let _item = r.prefixed()?;
    let size = usize::try_from(r.u32()?).ok()?;
    // A size past the end keeps what is there (as ClamAV scans a truncated object).
    let data = &raw[r.at..];
    Some((class, &data[..size.min(data.len())]))
}

/// The Packager's native data: a signature, the label, the source path, then for a packaged
/// file its type (3), temporary path and contents.
fn packaged(native: &[u8]) -> Option<(String, &[u8])> {
    let mut r = Reader {
        data: native,
        at: 0,
    };
    let _signature = r.u16()?;
    let label = text(r.cstr()?);
    let _source = r.cstr()?;
    let _reserved = r.u16()?;
    if r.u16()? != PACKAGED_FILE {
        return None;
    }
    let _temp_path = r.prefixed()?;
    let size = usize::try_from(r.u32()?).ok()?;
    let rest = &native[r.at..];
    Some((label, &rest[..size.min(rest.len())]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// clamav-testfiles' `clam.exe.rtf`: clam.exe packaged as an object in a Word document.
    #[test]
    fn packaged_program_in_the_clamav_sample() {
        let rtf = std::fs::read("/usr/share/clamav-testfiles/clam.exe.rtf")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
        let got = objects(&rtf, 10, 1 << 20).expect("an object");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].name, "Clam.exe");
        assert!(got[0].data == exe);
    }

    fn ole1(class: &str, native: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(0x0501u32.to_le_bytes());
        v.extend(EMBEDDED.to_le_bytes());
        let c = format!("{class}\0");
        v.extend((c.len() as u32).to_le_bytes());
        v.extend(c.as_bytes());
        v.extend(0u32.to_le_bytes());
        v.extend(0u32.to_le_bytes());
        v.extend((native.len() as u32).to_le_bytes());
        v.extend(native);
        v
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn native_data_and_plain_hex_and_nested_groups() {
        let word = ole1("Word.Document.8", b"\xd0\xcf\x11\xe0 compound file");
        let h = hex(&word);
        let (a, b) = h.split_at(20);
        let rtf = format!(
            "{{\\rtf1 {{\\object\\objemb{{\\*\\objclass Word.Document.8}}{{\\*\\objdata {a}\r\n{{\\*\\x 1}}{b}}}}} \
             {{\\object{{\\*\\objdata 4d5a9000}}}} {{\\*\\objdatax 41}} }}"
        );
        let got = objects(rtf.as_bytes(), 10, 1 << 20).expect("objects");
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name, "Word.Document.8");
        assert_eq!(got[0].data, b"\xd0\xcf\x11\xe0 compound file");
        assert_eq!(got[1].name, "objdata");
        assert_eq!(got[1].data, b"MZ\x90\x00");
        assert_eq!(
            objects(rtf.as_bytes(), 1, 1 << 20).map(|v| v.len()),
            Some(1)
        );
        let capped = objects(rtf.as_bytes(), 10, 4).expect("objects");
        assert_eq!(capped.len(), 1);
        assert_eq!(objects(b"{\\rtf1 nothing}", 10, 100), None);
    }

    #[test]
    fn damaged_wrappers_give_the_octets_without_a_panic() {
        let word = ole1("Package", b"\x02\x00label");
        for cut in 0..word.len() {
            let rtf = format!("{{\\rtf1{{\\*\\objdata {}}}}}", hex(&word[..cut]));
            let _ = objects(rtf.as_bytes(), 10, 1 << 20);
        }
        let mut big = ole1("X", b"abc");
        let n = big.len();
        big[n - 7..n - 3].copy_from_slice(&u32::MAX.to_le_bytes());
        let rtf = format!("{{\\rtf1{{\\*\\objdata {}}}}}", hex(&big));
        let got = objects(rtf.as_bytes(), 10, 1 << 20).expect("object");
        assert_eq!(got[0].data, b"abc");
    }
}
