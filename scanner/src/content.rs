//! The content walk: every object a message carries, decoded, handed to a visitor one at a
//! time — the raw message, each MIME part (base64 and quoted-printable decoded by
//! mail-parser, uuencoded blocks in text decoded here), nested `message/rfc822` parts, and
//! the members of archives (zip and the formats built on it, its legacy "implode" method too,
//! gzip, bzip2, xz, tar, cpio, cab, ARJ, …), programs compressed by the executable packers
//! [`crate::pe_packers`] knows (unpacked and rebuilt), and files embedded in others as ClamAV
//! finds them ([`crate::sfx`] zip records in any file, programs inside programs and OLE2
//! files, [`crate::nsis`] installers inside programs). rar, 7z, iso and the rest are recognised by type, not opened.
//!
//! Limits in the manner of ClamAV's (`MaxRecursion`, `MaxScanSize`, `MaxFiles`) plus a
//! compression-ratio cap bound the work a zip bomb can cause; hitting one is reported to the
//! visitor's caller as a [`LimitHit`], never an error or a stall.

use crate::filetype::{self, FileType};
use crate::{arj, chm, sis};
use mail_parser::{Encoding, Message, MessageParser, MimeHeaders, PartType};
use std::borrow::Cow;
use std::io::Read;
use std::ops::ControlFlow;

/// Bounds on the walk (ClamAV's names in brackets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Nesting of messages and archives [MaxRecursion].
    pub max_depth: u32,
    /// Bytes decoded and unpacked per message, in all [MaxScanSize].
    pub max_bytes: u64,
    /// Members opened per message [MaxFiles].
    pub max_files: u32,
    /// Largest ratio of unpacked to packed size of one member before it counts as a bomb.
    pub max_ratio: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 16,
            max_bytes: 100 << 20,
            max_files: 10_000,
            max_ratio: 200,
        }
    }
}

/// Nullsoft installers opened in one program at most.
const MAX_INSTALLERS: usize = 16;

/// Largest rest of a file taken as an embedded program (ClamAV's `MaxEmbeddedPE`).
const MAX_EMBEDDED_PROGRAM: usize = 40 << 20;

/// A limit the walk reached (what was past it is not looked at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitHit {
    /// Nested deeper than `max_depth`.
    Depth,
    /// More than `max_bytes` decoded.
    Bytes,
    /// More than `max_files` members.
    Files,
    /// A member unpacks past `max_ratio` times its packed size.
    Ratio,
    /// An encrypted member that cannot be read.
    Encrypted,
}

impl LimitHit {
    /// Name for logs, metrics and replies.
    pub fn name(self) -> &'static str {
        match self {
            LimitHit::Depth => "depth",
            LimitHit::Bytes => "size",
            LimitHit::Files => "files",
            LimitHit::Ratio => "ratio",
            LimitHit::Encrypted => "encrypted",
        }
    }
}

/// One object of the message.
#[derive(Debug)]
pub struct Object<'a> {
    /// The decoded bytes.
    pub data: Cow<'a, [u8]>,
    /// Its type from content.
    pub kind: FileType,
    /// Where it sits: `message`, `part 2`, `part 2/a.zip/b.exe`.
    pub path: String,
    /// The file name it was given (attachment or archive member), if any.
    pub name: Option<String>,
    /// Nesting depth (0 for the message itself).
    pub depth: u32,
    /// The kind of container it came out of, as ClamAV names it (`CL_TYPE_MAIL` for a
    /// message's parts, `CL_TYPE_ZIP`, `CL_TYPE_POSIX_TAR`, `CL_TYPE_GZ` …).
    pub container: Option<&'static str>,
    /// Whether it is the raw message (ClamAV target type 4).
    pub mail: bool,
}

/// What the walk saw beyond its objects.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Objects visited.
    pub objects: u32,
    /// Bytes decoded and unpacked.
    pub bytes: u64,
    /// Limits reached, with the object where each was.
    pub limits: Vec<(LimitHit, String)>,
}

struct Walker<'v> {
    limits: Limits,
    summary: Summary,
    files: u32,
    /// Set for the next object when it was found embedded in another (a program inside a
    /// program): such an object is not searched for embedded files again, as ClamAV does
    /// not type-scan an embedded layer.
    embedded: bool,
    visit: &'v mut dyn FnMut(&Object<'_>) -> ControlFlow<()>,
}

/// Walks one file (an attachment saved to disk, a sample): the file and, for an archive,
/// its members.
pub fn walk_file(
    data: &[u8],
    name: &str,
    limits: Limits,
    visit: &mut dyn FnMut(&Object<'_>) -> ControlFlow<()>,
) -> Summary {
    let mut w = Walker::new(limits, visit);
    let _ = w.object(data, name.to_string(), Some(name.to_string()), 0, None);
    w.summary
}

/// Walks `raw` (a whole message), calling `visit` for each object until it breaks.
pub fn walk(
    raw: &[u8],
    limits: Limits,
    visit: &mut dyn FnMut(&Object<'_>) -> ControlFlow<()>,
) -> Summary {
    let parsed = MessageParser::default().parse(raw);
    walk_parsed(raw, parsed.as_ref(), limits, visit)
}

/// [`walk`] for a message already parsed (`parsed` is `raw` parsed by a default
/// [`MessageParser`]; `None` when it has no header section): the filter parses each message
/// once for every check.
pub fn walk_parsed(
    raw: &[u8],
    parsed: Option<&Message<'_>>,
    limits: Limits,
    visit: &mut dyn FnMut(&Object<'_>) -> ControlFlow<()>,
) -> Summary {
    let mut w = Walker::new(limits, visit);
    let top = Object {
        data: Cow::Borrowed(raw),
        kind: FileType::Other,
        path: "message".into(),
        name: None,
        depth: 0,
        container: None,
        mail: true,
    };
    if w.emit(top).is_continue()
        && let Some(m) = parsed
    {
        let _ = w.message(m, "", 0);
    }
    w.summary
}

impl<'v> Walker<'v> {
    fn new(limits: Limits, visit: &'v mut dyn FnMut(&Object<'_>) -> ControlFlow<()>) -> Self {
        Walker {
            limits,
            summary: Summary::default(),
            files: 0,
            embedded: false,
            visit,
        }
    }

    fn emit(&mut self, o: Object<'_>) -> ControlFlow<()> {
        self.summary.objects += 1;
        (self.visit)(&o)
    }

    fn limit(&mut self, hit: LimitHit, at: &str) {
        self.summary.limits.push((hit, at.to_string()));
    }

    /// Counts `n` more decoded bytes; false once past the budget.
    fn spend(&mut self, n: u64, at: &str) -> bool {
        self.summary.bytes += n;
        if self.summary.bytes > self.limits.max_bytes {
            self.limit(LimitHit::Bytes, at);
            return false;
        }
        true
    }

    fn message(&mut self, m: &Message<'_>, prefix: &str, depth: u32) -> ControlFlow<()> {
        if depth > self.limits.max_depth {
            self.limit(LimitHit::Depth, prefix);
            return ControlFlow::Continue(());
        }
        let raw = m.raw_message.as_ref();
        for (i, part) in m.parts.iter().enumerate() {
            let path = format!("{prefix}part {}", i + 1);
            let name = part.attachment_name().map(str::to_string);
            match &part.body {
                PartType::Multipart(_) => {}
                PartType::Message(inner) => self.message(inner, &format!("{path}/"), depth + 1)?,
                PartType::Binary(b) | PartType::InlineBinary(b) => {
                    // `Content-Transfer-Encoding: x-uuencode` is left as it is by the parser.
                    for (k, (uname, data)) in uudecode(b).into_iter().enumerate() {
                        let upath = format!("{path}/uuencoded {}", k + 1);
                        self.object(&data, upath, Some(uname), depth + 2, Some("CL_TYPE_MAIL"))?;
                    }
                    self.object(b.as_ref(), path, name, depth + 1, Some("CL_TYPE_MAIL"))?
                }
                PartType::Text(_) | PartType::Html(_) => {
                    let body = raw
                        .get(part.offset_body as usize..part.offset_end as usize)
                        .unwrap_or(&[]);
                    let decoded = match part.encoding {
                        Encoding::Base64 => {
                            mail_parser::decoders::base64::base64_decode(body).map(Cow::Owned)
                        }
                        Encoding::QuotedPrintable => {
                            mail_parser::decoders::quoted_printable::quoted_printable_decode(body)
                                .map(Cow::Owned)
                        }
                        Encoding::None => Some(Cow::Borrowed(body)),
                    }
                    .unwrap_or(Cow::Borrowed(body));
                    for (k, (uname, data)) in uudecode(&decoded).into_iter().enumerate() {
                        let upath = format!("{path}/uuencoded {}", k + 1);
                        self.object(&data, upath, Some(uname), depth + 2, Some("CL_TYPE_MAIL"))?;
                    }
                    self.object(&decoded, path, name, depth + 1, Some("CL_TYPE_MAIL"))?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// Visits one decoded object and, for an archive, its members.
    fn object(
        &mut self,
        data: &[u8],
        path: String,
        name: Option<String>,
        depth: u32,
        container: Option<&'static str>,
    ) -> ControlFlow<()> {
        let embedded = std::mem::take(&mut self.embedded);
        if !self.spend(data.len() as u64, &path) {
            return ControlFlow::Continue(());
        }
        let kind = filetype::detect(data);
        let o = Object {
            data: Cow::Borrowed(data),
            kind,
            path: path.clone(),
            name,
            depth,
            container,
            mail: false,
        };
        self.emit(o)?;
        if kind == FileType::Mail {
            // A message carried as a file (a saved .eml, an mbox): walked as a message.
            if depth >= self.limits.max_depth {
                self.limit(LimitHit::Depth, &path);
                return ControlFlow::Continue(());
            }
            let body = match data.strip_prefix(b"From ") {
                Some(rest) => rest
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(&[][..], |i| &rest[i + 1..]),
                None => data,
            };
            if let Some(m) = MessageParser::default().parse(body) {
                return self.message(&m, &format!("{path}/"), depth + 1);
            }
            return ControlFlow::Continue(());
        }
        if kind == FileType::Pe {
            self.packed_program(data, &path, depth)?;
            self.installers(data, &path, depth)?;
        }
        if !embedded
            && !matches!(
                kind,
                FileType::Zip | FileType::Gzip | FileType::Tar | FileType::Cpio | FileType::Tnef
            )
        {
            self.embedded_zips(data, &path, depth)?;
            if matches!(kind, FileType::Pe | FileType::Ole2) {
                self.embedded_programs(data, &path, depth)?;
            }
        }
        match kind {
            FileType::Zip
            | FileType::Gzip
            | FileType::Bzip2
            | FileType::Xz
            | FileType::Tar
            | FileType::Cpio
            | FileType::Cab
            | FileType::Szdd
            | FileType::Tnef
            | FileType::Arj
            | FileType::Rtf
            | FileType::Sis
            | FileType::Chm
            | FileType::Pdf
            | FileType::Ole2 => {
                if depth >= self.limits.max_depth {
                    self.limit(LimitHit::Depth, &path);
                    return ControlFlow::Continue(());
                }
                self.archive(kind, data, &path, depth)
            }
            FileType::Html | FileType::Other => self.carried_in_text(kind, data, &path, depth),
            _ => ControlFlow::Continue(()),
        }
    }

    /// A program compressed by a packer ClamAV unpacks (MEW, Upack): its unpacked form,
    /// rebuilt as a PE file, is walked in turn.
    fn packed_program(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let Some(u) = crate::pe_packers::unpack(data) else {
            return ControlFlow::Continue(());
        };
        let at = format!("{path}/{}-unpacked", u.packer);
        if depth >= self.limits.max_depth {
            self.limit(LimitHit::Depth, &at);
            return ControlFlow::Continue(());
        }
        self.object(&u.file, at, None, depth + 1, Some("CL_TYPE_MSEXE"))
    }

    /// Nullsoft installers inside a program (the first [`MAX_INSTALLERS`]): each first header found past the program's
    /// start (its signature four octets in, as ClamAV's `CL_TYPE_NULSFT` typing places it)
    /// opens the installer's files, from there to the end of the program.
    fn installers(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        // At most a few: a file of repeated signatures must not cost a walk per repeat.
        let starts: Vec<usize> = memchr::memmem::find_iter(data, crate::nsis::SIGNATURE)
            .filter(|&at| at > 4)
            .map(|at| at - 4)
            .take(MAX_INSTALLERS)
            .collect();
        for at in starts {
            let sub = format!("{path}/@{at}-nsis");
            if depth >= self.limits.max_depth {
                self.limit(LimitHit::Depth, &sub);
                return ControlFlow::Continue(());
            }
            self.unpacked(
                crate::nsis::members,
                "CL_TYPE_NULSFT",
                &data[at..],
                &sub,
                depth,
            )?;
        }
        ControlFlow::Continue(())
    }

    /// Programs inside a program or a compound file (a dropper's payload, a program kept
    /// whole in an unpacked image), found as ClamAV finds them: `MZ`, then `PE\0\0` 60 to 300
    /// octets on, where a valid PE header starts; each is the rest of the file from there
    /// (a PE header does not tell a file's length).
    fn embedded_programs(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        for at in memchr::memmem::find_iter(data.get(1..).unwrap_or(&[]), b"MZ").map(|i| i + 1) {
            let rest = &data[at..];
            let window = rest.get(62..rest.len().min(306)).unwrap_or(&[]);
            if rest.len() > MAX_EMBEDDED_PROGRAM
                || memchr::memmem::find(window, b"PE\0\0").is_none()
                || !crate::pe_packers::is_program(rest)
            {
                continue;
            }
            let sub = format!("{path}/@{at}");
            if depth >= self.limits.max_depth {
                self.limit(LimitHit::Depth, &sub);
                return ControlFlow::Continue(());
            }
            if !self.member(&sub) {
                break;
            }
            self.embedded = true;
            self.object(rest, sub, None, depth + 1, Some("CL_TYPE_MSEXE"))?;
        }
        ControlFlow::Continue(())
    }

    /// Zip records inside a file that is not itself a zip (a self-extracting program, a zip
    /// appended to something else, one inside an unpacked program), each opened as an
    /// archive of one member, as ClamAV's "ZIP-SFX" typing opens them. Archives whose members
    /// are opened anyway (zip, tar, cpio, gzip, TNEF) are not searched.
    fn embedded_zips(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let records = crate::sfx::zips(data, self.members_left());
        if records.is_empty() {
            return ControlFlow::Continue(());
        }
        if depth + 1 >= self.limits.max_depth {
            self.limit(LimitHit::Depth, path);
            return ControlFlow::Continue(());
        }
        for r in records {
            let Some(e) = crate::sfx::entry(&data[r.clone()]) else {
                continue;
            };
            let at = format!("{path}/@{}/{}", r.start, e.name);
            if !self.member(&at) {
                break;
            }
            if e.encrypted {
                self.limit(LimitHit::Encrypted, &at);
                continue;
            }
            let name = Some(e.name.clone());
            let packed = e.packed;
            let flow = crate::sfx::read(&e, |reader| {
                self.unpack_one(reader, packed, at, name, depth + 1, Some("CL_TYPE_ZIP"))
            });
            flow.unwrap_or(ControlFlow::Continue(()))?;
        }
        ControlFlow::Continue(())
    }

    /// What a text carries: the programs in an HTML file's base64 `data:` URIs, the file a
    /// BinHex text encodes (its banner within the first KiB).
    fn carried_in_text(
        &mut self,
        kind: FileType,
        data: &[u8],
        path: &str,
        depth: u32,
    ) -> ControlFlow<()> {
        let binhex = kind == FileType::Other
            && memchr::memmem::find(&data[..data.len().min(1024)], crate::binhex::BANNER).is_some();
        if kind != FileType::Html && !binhex {
            return ControlFlow::Continue(());
        }
        if depth >= self.limits.max_depth {
            self.limit(LimitHit::Depth, path);
            return ControlFlow::Continue(());
        }
        if binhex {
            return self.binhex(data, path, depth);
        }
        let budget = usize::try_from(self.room()).unwrap_or(usize::MAX);
        let uris = crate::data_uri::base64_payloads(data, self.members_left(), budget);
        for (i, d) in uris.into_iter().enumerate() {
            let at = format!("{path}/data uri {}", i + 1);
            if !self.member(&at) {
                break;
            }
            self.object(&d, at, None, depth + 1, Some(crate::data_uri::CONTAINER))?;
        }
        ControlFlow::Continue(())
    }

    /// A BinHex file's data and resource forks (run-length expansion within the budget and
    /// the ratio limit).
    fn binhex(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        use crate::binhex::{CONTAINER, decode_capped};
        let at = format!("{path}/binhex");
        let (cap, hit) = Self::unpack_cap(self.room(), data.len() as u64, self.limits.max_ratio);
        let Some((d, capped)) = decode_capped(data, usize::try_from(cap).unwrap_or(usize::MAX))
        else {
            return ControlFlow::Continue(());
        };
        if capped {
            self.limit(hit, &at);
        }
        let name = Some(d.name).filter(|n| !n.is_empty());
        if !d.data.is_empty() {
            self.object(
                &d.data,
                at.clone(),
                name.clone(),
                depth + 1,
                Some(CONTAINER),
            )?;
        }
        if !d.resource.is_empty() {
            self.object(
                &d.resource,
                format!("{at}/resource fork"),
                name,
                depth + 1,
                Some(CONTAINER),
            )?;
        }
        ControlFlow::Continue(())
    }

    /// Room left in the byte budget, for reading one member.
    fn room(&self) -> u64 {
        self.limits.max_bytes.saturating_sub(self.summary.bytes)
    }

    /// How many more archive members a reader needs to list: those the file limit still
    /// allows, and one more so that [`Walker::member`] notes the limit.
    fn members_left(&self) -> usize {
        self.limits.max_files.saturating_sub(self.files) as usize + 1
    }

    fn member(&mut self, at: &str) -> bool {
        self.files += 1;
        if self.files > self.limits.max_files {
            self.limit(LimitHit::Files, at);
            return false;
        }
        true
    }

    /// Reads at most `cap` bytes from `r` into a buffer; `Err(true)` when there were more.
    fn bounded(r: &mut dyn Read, cap: u64) -> Result<Vec<u8>, bool> {
        let mut out = Vec::new();
        match r.take(cap.saturating_add(1)).read_to_end(&mut out) {
            Ok(_) if out.len() as u64 > cap => Err(true),
            Ok(_) => Ok(out),
            Err(_) => Err(false),
        }
    }

    /// The most an object packed in `packed` bytes may unpack to with `room` bytes of the
    /// budget left, and the limit that is: the budget, or `max_ratio` times the packed size
    /// (never below 1 MiB).
    fn unpack_cap(room: u64, packed: u64, max_ratio: u64) -> (u64, LimitHit) {
        let ratio_cap = packed.saturating_mul(max_ratio).max(1 << 20);
        if room < ratio_cap {
            (room, LimitHit::Bytes)
        } else {
            (ratio_cap, LimitHit::Ratio)
        }
    }

    /// Reads one packed stream, capped by the byte budget and the ratio; visits the result.
    fn unpack_one(
        &mut self,
        r: &mut dyn Read,
        packed: u64,
        path: String,
        name: Option<String>,
        depth: u32,
        container: Option<&'static str>,
    ) -> ControlFlow<()> {
        let (cap, hit) = Self::unpack_cap(self.room(), packed, self.limits.max_ratio);
        match Self::bounded(r, cap) {
            Ok(data) => self.object(&data, path, name, depth + 1, container),
            Err(true) => {
                self.limit(hit, &path);
                ControlFlow::Continue(())
            }
            Err(false) => ControlFlow::Continue(()),
        }
    }

    fn archive(&mut self, kind: FileType, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let packed = data.len() as u64;
        match kind {
            FileType::Zip => self.zip(data, path, depth),
            FileType::Tar => self.tar(data, path, depth),
            FileType::Cpio => self.cpio(data, path, depth),
            FileType::Ole2 => self.ole2(data, path, depth),
            FileType::Cab => self.cab(data, path, depth),
            FileType::Pdf => self.pdf(data, path, depth),
            FileType::Tnef => self.tnef(data, path, depth),
            FileType::Rtf => self.rtf(data, path, depth),
            FileType::Arj => self.unpacked(crate::arj::members, arj::CONTAINER, data, path, depth),
            FileType::Sis => self.unpacked(crate::sis::files, sis::CONTAINER, data, path, depth),
            FileType::Chm => self.unpacked(crate::chm::files, chm::CONTAINER, data, path, depth),
            FileType::Szdd => {
                let (cap, hit) = Self::unpack_cap(self.room(), packed, self.limits.max_ratio);
                let at = format!("{path}/expand");
                if crate::szdd::declared_size(data).is_some_and(|n| n > cap) {
                    self.limit(hit, &at);
                    return ControlFlow::Continue(());
                }
                match crate::szdd::expand(data, usize::try_from(cap).unwrap_or(usize::MAX)) {
                    Some(out) => {
                        self.object(&out, at, None, depth + 1, Some(crate::szdd::CONTAINER))
                    }
                    None => ControlFlow::Continue(()),
                }
            }
            FileType::Gzip => {
                let mut r = flate2::read::MultiGzDecoder::new(data);
                self.unpack_one(
                    &mut r,
                    packed,
                    format!("{path}/gunzip"),
                    None,
                    depth,
                    Some("CL_TYPE_GZ"),
                )
            }
            FileType::Bzip2 => {
                let mut r = bzip2::read::BzDecoder::new(data);
                self.unpack_one(
                    &mut r,
                    packed,
                    format!("{path}/bunzip2"),
                    None,
                    depth,
                    Some("CL_TYPE_BZ"),
                )
            }
            FileType::Xz => {
                let (cap, hit) = Self::unpack_cap(self.room(), packed, self.limits.max_ratio);
                let mut out =
                    crate::unpacked::CappedWriter::new(usize::try_from(cap).unwrap_or(usize::MAX));
                let at = format!("{path}/unxz");
                match lzma_rs::xz_decompress(&mut std::io::Cursor::new(data), &mut out) {
                    Ok(()) => self.object(&out.out, at, None, depth + 1, Some("CL_TYPE_XZ")),
                    // The decoder stopped because the writer reached the cap: the stream
                    // unpacks past it (a failure for any other reason is not a bomb).
                    Err(_) if out.hit => {
                        self.limit(hit, &at);
                        ControlFlow::Continue(())
                    }
                    Err(_) => ControlFlow::Continue(()),
                }
            }
            _ => ControlFlow::Continue(()),
        }
    }

    fn zip(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let Ok(mut z) = zip::ZipArchive::new(std::io::Cursor::new(data)) else {
            return ControlFlow::Continue(());
        };
        for i in 0..z.len() {
            let (name, encrypted, packed, dir) = match z.by_index_raw(i) {
                Ok(f) => (
                    f.name().map(|n| n.into_owned()).unwrap_or_default(),
                    f.encrypted(),
                    f.compressed_size(),
                    f.is_dir(),
                ),
                Err(_) => continue,
            };
            if dir {
                continue;
            }
            let at = format!("{path}/{name}");
            if !self.member(&at) {
                break;
            }
            if encrypted {
                self.limit(LimitHit::Encrypted, &at);
                continue;
            }
            let Ok(mut f) = z.by_index(i) else { continue };
            self.unpack_one(&mut f, packed, at, Some(name), depth, Some("CL_TYPE_ZIP"))?;
        }
        ControlFlow::Continue(())
    }

    /// The members of an archive whose reader unpacks within a budget (ARJ, SIS, CHM): the
    /// byte budget and the ratio limit, taken over the whole archive.
    fn unpacked(
        &mut self,
        read: crate::unpacked::Reader,
        container: &'static str,
        data: &[u8],
        path: &str,
        depth: u32,
    ) -> ControlFlow<()> {
        let (cap, hit) = Self::unpack_cap(self.room(), data.len() as u64, self.limits.max_ratio);
        let Some(found) = read(data, self.members_left(), cap) else {
            return ControlFlow::Continue(());
        };
        for m in found {
            let at = format!("{path}/{}", m.name.trim_start_matches('/'));
            if !self.member(&at) {
                break;
            }
            if m.encrypted {
                self.limit(LimitHit::Encrypted, &at);
                continue;
            }
            if m.capped {
                self.limit(hit, &at);
            }
            self.object(&m.data, at, Some(m.name), depth + 1, Some(container))?;
        }
        ControlFlow::Continue(())
    }

    /// The objects embedded in an RTF document (hexadecimal text: at most half its size).
    fn rtf(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        use crate::rtf::{CONTAINER, objects};
        let room = usize::try_from(self.room()).unwrap_or(usize::MAX);
        let Some(found) = objects(data, self.members_left(), room) else {
            return ControlFlow::Continue(());
        };
        for (i, o) in found.into_iter().enumerate() {
            let at = format!("{path}/object {}", i + 1);
            if !self.member(&at) {
                break;
            }
            self.object(&o.data, at, Some(o.name), depth + 1, Some(CONTAINER))?;
        }
        ControlFlow::Continue(())
    }

    /// A TNEF stream's attachments (stored as they are, like cpio members).
    fn tnef(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let max = self.members_left();
        let Some(attachments) = crate::tnef::attachments(data, max) else {
            return ControlFlow::Continue(());
        };
        for (i, a) in attachments.into_iter().enumerate() {
            let at = match &a.name {
                Some(n) => format!("{path}/{n}"),
                None => format!("{path}/attachment {}", i + 1),
            };
            if !self.member(&at) {
                break;
            }
            self.object(a.data, at, a.name, depth + 1, Some(crate::tnef::CONTAINER))?;
        }
        ControlFlow::Continue(())
    }

    /// cpio members are stored, not packed: each is visited as it is (bounded by the byte
    /// budget like any object).
    fn cpio(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let max = self.members_left();
        let Some((format, members)) = crate::cpio::members(data, max) else {
            return ControlFlow::Continue(());
        };
        for m in members {
            let at = format!("{path}/{}", m.name);
            if !self.member(&at) {
                break;
            }
            let container = Some(format.container());
            self.object(m.data, at, Some(m.name), depth + 1, container)?;
        }
        ControlFlow::Continue(())
    }

    /// Every stream of a compound file, the file an embedded object's `Ole10Native` stream
    /// wraps, and a PowerPoint document's embedded storages (walked as compound files again).
    fn ole2(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        use crate::ole2::{CONTAINER, ole10native, ppt_objects, streams};
        let room = self.room();
        let max = self.members_left();
        // The compound-file reader is a dependency fed with mail: a panic in it must not take
        // the scanner thread down with it.
        let read = std::panic::catch_unwind(|| streams(data, room, max));
        let Ok(Some(found)) = read else {
            return ControlFlow::Continue(());
        };
        for (name, bytes) in found {
            let at = format!("{path}/{name}");
            if !self.member(&at) {
                break;
            }
            self.object(
                &bytes,
                at.clone(),
                Some(name.clone()),
                depth + 1,
                Some(CONTAINER),
            )?;
            if name.ends_with("Ole10Native")
                && let Some(inner) = ole10native(&bytes)
            {
                let native = format!("{at}/native");
                self.object(inner, native, None, depth + 1, Some(CONTAINER))?;
            }
            if name.ends_with("PowerPoint Document") {
                let cap = self.room();
                for (i, blob) in ppt_objects(&bytes, cap).into_iter().enumerate() {
                    let obj = format!("{at}/object{i}");
                    self.object(&blob, obj, None, depth + 1, Some(CONTAINER))?;
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// A Microsoft cabinet's files (stored or MSZIP), each read within the byte budget and
    /// the ratio limit (against the whole cabinet's size).
    fn cab(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let room = self.room();
        let (packed, max_ratio) = (data.len() as u64, self.limits.max_ratio);
        let max = self.members_left();
        // The cabinet reader is a dependency fed with mail: a panic in it must not take the
        // scanner thread down with it. Files are read first (bounded), then visited.
        type Read = Result<Vec<u8>, Option<LimitHit>>;
        let read = std::panic::catch_unwind(|| -> Option<Vec<(String, Read)>> {
            let mut c = cab::Cabinet::new(std::io::Cursor::new(data)).ok()?;
            let names: Vec<String> = c
                .folder_entries()
                .flat_map(|f| {
                    f.file_entries()
                        .map(|e| e.name().to_string())
                        .collect::<Vec<_>>()
                })
                .take(max)
                .collect();
            let mut left = room;
            let mut out = Vec::new();
            for n in names {
                let (cap, hit) = Self::unpack_cap(left, packed, max_ratio);
                let got = match c.read_file(&n) {
                    Ok(mut r) => Self::bounded(&mut r, cap).map_err(|over| over.then_some(hit)),
                    Err(_) => Err(None),
                };
                if let Ok(b) = &got {
                    left = left.saturating_sub(b.len() as u64);
                }
                out.push((n, got));
            }
            Some(out)
        });
        let Ok(Some(files)) = read else {
            return ControlFlow::Continue(());
        };
        for (name, got) in files {
            let at = format!("{path}/{name}");
            if !self.member(&at) {
                break;
            }
            match got {
                Ok(b) => self.object(&b, at, Some(name), depth + 1, Some("CL_TYPE_MSCAB"))?,
                Err(Some(hit)) => self.limit(hit, &at),
                Err(None) => {}
            }
        }
        ControlFlow::Continue(())
    }

    /// A PDF's streams, `/FlateDecode` ones inflated (within the budget and the ratio limit).
    fn pdf(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        use crate::pdf::{CONTAINER, streams};
        for (i, s) in streams(data, self.members_left()).into_iter().enumerate() {
            let at = format!("{path}/stream{i}");
            if !self.member(&at) {
                break;
            }
            if s.flate {
                let mut r = flate2::read::ZlibDecoder::new(s.raw);
                let packed = s.raw.len() as u64;
                self.unpack_one(&mut r, packed, at, None, depth, Some(CONTAINER))?;
            } else {
                self.object(s.raw, at, None, depth + 1, Some(CONTAINER))?;
            }
        }
        ControlFlow::Continue(())
    }

    fn tar(&mut self, data: &[u8], path: &str, depth: u32) -> ControlFlow<()> {
        let mut a = tar::Archive::new(data);
        let Ok(entries) = a.entries() else {
            return ControlFlow::Continue(());
        };
        for entry in entries {
            let Ok(mut e) = entry else { break };
            if !e.header().entry_type().is_file() {
                continue;
            }
            let name = e
                .path()
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            let at = format!("{path}/{name}");
            if !self.member(&at) {
                break;
            }
            let size = e.size();
            self.unpack_one(
                &mut e,
                size,
                at,
                Some(name),
                depth,
                Some("CL_TYPE_POSIX_TAR"),
            )?;
        }
        ControlFlow::Continue(())
    }
}

/// Decodes uuencoded blocks (`begin <mode> <name>` … `end`) in a text body.
pub fn uudecode(text: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    if !text.starts_with(b"begin ") && memchr::memmem::find(text, b"\nbegin ").is_none() {
        return out;
    }
    let mut lines = text
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix(b"begin ") else {
            continue;
        };
        let mut fields = rest.splitn(2, |&b| b == b' ');
        let mode_ok = fields
            .next()
            .is_some_and(|m| !m.is_empty() && m.iter().all(|c| (b'0'..=b'7').contains(c)));
        let Some(name) = fields.next().filter(|_| mode_ok) else {
            continue;
        };
        let mut data = Vec::new();
        for l in lines.by_ref() {
            if l == b"end" || l.is_empty() {
                break;
            }
            // A zero-length line (`` ` `` or a space) ends the data.
            let n = usize::from(l[0].wrapping_sub(b' ') & 0x3f);
            if n == 0 {
                break;
            }
            let quad = |i: usize| l.get(i).map_or(0, |c| c.wrapping_sub(b' ') & 0x3f);
            let mut line_out = Vec::with_capacity(n + 2);
            let mut i = 1;
            while line_out.len() < n {
                let (a, b, c, d) = (quad(i), quad(i + 1), quad(i + 2), quad(i + 3));
                line_out.extend_from_slice(&[a << 2 | b >> 4, b << 4 | c >> 2, c << 6 | d]);
                i += 4;
            }
            line_out.truncate(n);
            data.extend_from_slice(&line_out);
        }
        out.push((String::from_utf8_lossy(name).trim().to_string(), data));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn objects(raw: &[u8], limits: Limits) -> (Vec<(String, FileType, Vec<u8>)>, Summary) {
        let mut seen = Vec::new();
        let s = walk_file(raw, "f", limits, &mut |o| {
            seen.push((o.path.clone(), o.kind, o.data.to_vec()));
            ControlFlow::Continue(())
        });
        (seen, s)
    }

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (n, d) in files {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated);
            w.start_file(*n, opts).expect("start");
            w.write_all(d).expect("write");
        }
        w.finish().expect("finish").into_inner()
    }

    #[test]
    fn decodes_parts_nested_messages_and_uuencode() {
        let raw = b"Subject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nhello=3Dworld\r\nbegin 644 x.bin\r\n#86)C\r\n`\r\nend\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAA==\r\n--b--\r\n";
        let mut seen = Vec::new();
        walk(raw, Limits::default(), &mut |o| {
            seen.push((o.path.clone(), o.kind, o.data.to_vec()));
            ControlFlow::Continue(())
        });
        assert!(seen.iter().any(|(_, _, d)| d.starts_with(b"hello=world")));
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("uuencoded 1") && d == b"abc")
        );
        assert!(
            seen.iter()
                .any(|(p, k, _)| p == "part 3/part 1" && *k == FileType::Pe)
        );
    }

    #[test]
    fn opens_zip_in_zip_and_tar_gz() {
        let inner = zip_of(&[("e.txt", b"payload-in-inner")]);
        let outer = zip_of(&[("inner.zip", &inner)]);
        let (seen, _) = objects(&outer, Limits::default());
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("inner.zip/e.txt") && d == b"payload-in-inner")
        );
        let mut t = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(7);
        h.set_cksum();
        t.append_data(&mut h, "a.txt", &b"tarred!"[..])
            .expect("append");
        let tar = t.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&tar).expect("gz");
        let (seen, _) = objects(&gz.finish().expect("gz"), Limits::default());
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("gunzip/a.txt") && d == b"tarred!")
        );
    }

    /// clamav-testfiles' samples of the formats opened by their own readers (and zip's
    /// legacy "implode" method): each gives clam.exe, recognised as a program by content.
    #[test]
    fn opens_implode_arj_rtf_sis_chm_and_packed_samples() {
        let dir = std::path::Path::new("/usr/share/clamav-testfiles");
        let exe = std::fs::read(dir.join("clam.exe"))
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        for (sample, kind) in [
            ("clam.impl.zip", FileType::Zip),
            ("clam.arj", FileType::Arj),
            ("clam.exe.rtf", FileType::Rtf),
            ("clam.sis", FileType::Sis),
            ("clam.chm", FileType::Chm),
            // Packed programs: unpacked, then the zip inside the unpacked program opened.
            ("clam-mew.exe", FileType::Pe),
            ("clam-upack.exe", FileType::Pe),
            // UPX: unpacked, clam.exe a program inside the unpacked one; FSG: clam.exe kept
            // whole inside the packed file itself.
            ("clam-upx.exe", FileType::Pe),
            ("clam-fsg.exe", FileType::Pe),
            ("clam-wwpack.exe", FileType::Pe),
            ("clam-yc.exe", FileType::Pe),
            ("clam-petite.exe", FileType::Pe),
            ("clam-aspack.exe", FileType::Pe),
        ] {
            let data = std::fs::read(dir.join(sample)).expect("sample");
            let (seen, _) = objects(&data, Limits::default());
            assert_eq!(seen[0].1, kind, "{sample}");
            assert!(
                seen.iter().any(|(_, k, d)| *k == FileType::Pe && *d == exe),
                "{sample}: {:?}",
                seen.iter().map(|x| (&x.0, x.1)).collect::<Vec<_>>()
            );
        }
    }

    /// A Nullsoft installer inside a program gives its files (clam.exe among them); past
    /// [`MAX_INSTALLERS`] first headers, no more are opened.
    #[test]
    fn opens_nullsoft_installers_a_bounded_number_of_times() {
        let dir = std::path::Path::new("/usr/share/clamav-testfiles");
        let exe = std::fs::read(dir.join("clam.exe")).expect("sample");
        let mut data = std::fs::read(dir.join("clam-nsis.exe")).expect("sample");
        let (seen, _) = objects(&data, Limits::default());
        let from_installer = |seen: &[(String, FileType, Vec<u8>)]| {
            seen.iter()
                .filter(|(p, _, _)| p.contains("-nsis/"))
                .map(|(p, _, d)| (p.rsplit('/').next().unwrap_or("").to_string(), d.clone()))
                .collect::<Vec<_>>()
        };
        let got = from_installer(&seen);
        assert_eq!(
            got.len(),
            2,
            "{:?}",
            got.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
        assert_eq!((got[1].0.as_str(), &got[1].1), ("content.001", &exe));
        // Fifteen more first headers of junk, then the real installer again: that one is the
        // seventeenth and is not opened.
        let at = memchr::memmem::find(&data, crate::nsis::SIGNATURE).expect("installer") - 4;
        let installer = data[at..].to_vec();
        for _ in 0..MAX_INSTALLERS - 1 {
            data.extend_from_slice(&[0, 0, 0, 0]);
            data.extend_from_slice(crate::nsis::SIGNATURE);
            data.extend_from_slice(&[0; 4]);
            data.extend_from_slice(&u32::MAX.to_le_bytes());
        }
        let mut twice = data.clone();
        twice.extend_from_slice(&installer);
        assert_eq!(
            from_installer(&objects(&twice, Limits::default()).0).len(),
            2
        );
        // One junk header fewer: the copy is the sixteenth, and opened.
        let mut data = data[..data.len() - 28].to_vec();
        data.extend_from_slice(&installer);
        assert_eq!(
            from_installer(&objects(&data, Limits::default()).0).len(),
            4
        );
    }

    /// A zip record inside another file is opened as a one-member archive (a zip appended
    /// to a program, as self-extractors are made), but not inside a zip itself, and not
    /// past the depth limit.
    #[test]
    fn opens_zip_records_inside_other_files() {
        let inner = zip_of(&[("payload.txt", b"the hidden member")]);
        let mut sfx = b"MZ\x90\x00 a self-extracting stub, then its archive: ".to_vec();
        sfx.extend_from_slice(&inner);
        let (seen, _) = objects(&sfx, Limits::default());
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("/payload.txt") && d == b"the hidden member"),
            "{:?}",
            seen.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
        // Inside a zip, the records are its own members: opened once, not again as records.
        let outer = zip_of(&[("a.txt", b"first"), ("b.txt", b"second")]);
        let (seen, _) = objects(&outer, Limits::default());
        assert_eq!(
            seen.len(),
            3,
            "{:?}",
            seen.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
        let shallow = Limits {
            max_depth: 1,
            ..Limits::default()
        };
        let (seen, s) = objects(&sfx, shallow);
        assert_eq!(seen.len(), 1);
        assert_eq!(s.limits[0].0, LimitHit::Depth);
    }

    /// Programs inside a program are found from each `MZ` whose PE header is valid, each
    /// the rest of the file; one found that way is not searched again, and a text file is
    /// not searched at all.
    #[test]
    fn finds_programs_inside_programs_once() {
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let triple = [&exe[..], &exe[..], &exe[..]].concat();
        let (seen, _) = objects(&triple, Limits::default());
        let programs: Vec<_> = seen
            .iter()
            .filter(|x| x.1 == FileType::Pe)
            .map(|x| (x.0.as_str(), x.2.len()))
            .collect();
        let n = exe.len();
        assert_eq!(
            programs,
            [
                ("f", 3 * n),
                (format!("f/@{n}").as_str(), 2 * n),
                (format!("f/@{}", 2 * n).as_str(), n)
            ]
        );
        let mut text = b"a text that quotes a program: ".to_vec();
        text.extend_from_slice(&exe);
        let (seen, _) = objects(&text, Limits::default());
        assert_eq!(
            seen.len(),
            1,
            "{:?}",
            seen.iter().map(|x| &x.0).collect::<Vec<_>>()
        );
    }

    #[test]
    fn opens_cabinets_within_the_ratio_limit() {
        let cabinet = |files: &[(&str, &[u8])]| {
            let mut b = cab::CabinetBuilder::new();
            let folder = b.add_folder(cab::CompressionType::MsZip);
            for (n, _) in files {
                folder.add_file(*n);
            }
            let mut w = b.build(std::io::Cursor::new(Vec::new())).expect("cab");
            for (_, d) in files {
                let mut f = w.next_file().expect("next").expect("file");
                f.write_all(d).expect("write");
            }
            w.finish().expect("finish").into_inner()
        };
        let c = cabinet(&[("a.txt", b"in a cabinet"), ("b.txt", b"another")]);
        let (seen, _) = objects(&c, Limits::default());
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("/a.txt") && d == b"in a cabinet")
        );
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("/b.txt") && d == b"another")
        );
        // 8 MiB of zeros packs to a few KiB: past 200x the cabinet's size it stops.
        let zeros = vec![0u8; 8 << 20];
        let bomb = cabinet(&[("z.bin", &zeros)]);
        let (seen, summary) = objects(&bomb, Limits::default());
        assert!(!seen.iter().any(|(p, _, _)| p.ends_with("/z.bin")));
        assert!(
            summary.limits.iter().any(|(l, _)| *l == LimitHit::Ratio),
            "{summary:?}"
        );
    }

    #[test]
    fn bombs_hit_limits() {
        let zeros = vec![0u8; 8 << 20];
        let bomb = zip_of(&[("z.bin", &zeros)]);
        let (_, s) = objects(&bomb, Limits::default());
        assert!(s.limits.iter().any(|(h, _)| *h == LimitHit::Ratio), "{s:?}");
        let mut nested = zip_of(&[("x", b"x")]);
        for _ in 0..20 {
            nested = zip_of(&[("n.zip", &nested)]);
        }
        let (_, s) = objects(&nested, Limits::default());
        assert!(s.limits.iter().any(|(h, _)| *h == LimitHit::Depth), "{s:?}");
    }

    fn xz_of(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut std::io::Cursor::new(data), &mut out).expect("xz");
        out
    }

    /// An xz bomb is reported as one (the ratio limit, or the byte budget when that is the
    /// smaller), and a stream within both is opened and its content seen. The bomb is 64 MiB
    /// of zeros packed by `xz -9` into 9.9 KB (lzma-rs only writes literals, so it cannot
    /// make one).
    #[test]
    fn xz_bombs_hit_limits_and_small_streams_open() {
        let bomb = include_bytes!("../testdata/xz/zeros-64m.xz");
        let (_, s) = objects(bomb, Limits::default());
        assert!(
            s.limits
                .iter()
                .any(|(h, at)| *h == LimitHit::Ratio && at.ends_with("/unxz")),
            "{s:?}"
        );
        let small = Limits {
            max_bytes: 512 << 10,
            ..Limits::default()
        };
        let (_, s) = objects(bomb, small);
        assert!(s.limits.iter().any(|(h, _)| *h == LimitHit::Bytes), "{s:?}");
        let text = b"plain words inside an xz stream".repeat(100);
        let (seen, s) = objects(&xz_of(&text), Limits::default());
        assert!(s.limits.is_empty(), "{s:?}");
        assert!(
            seen.iter()
                .any(|(p, _, d)| p.ends_with("/unxz") && d[..] == text[..]),
            "{:?}",
            seen.iter().map(|(p, _, _)| p).collect::<Vec<_>>()
        );
    }
}
