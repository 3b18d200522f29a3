//! File types from content: magic bytes matched with one Hyperscan database, never the
//! file name. The attachment rules block by [`Class`]; the antivirus uses the type for
//! signature target types.

use crate::scratch::ScratchPool;
use hyperscan::BlockMode;
use hyperscan::prelude::*;
use std::sync::OnceLock;

/// A file type recognised from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileType {
    /// Windows PE executable or DLL (`MZ`).
    Pe,
    /// OLE2 compound file: MSI installers, legacy Office documents.
    Ole2,
    /// ELF executable or library.
    Elf,
    /// Mach-O executable (thin or universal).
    MachO,
    /// Script with an interpreter line (`#!`).
    Script,
    /// Java class file.
    JavaClass,
    /// ZIP archive (also docx, xlsx, odt, jar, apk).
    Zip,
    /// gzip stream.
    Gzip,
    /// bzip2 stream.
    Bzip2,
    /// xz stream.
    Xz,
    /// tar archive (ustar).
    Tar,
    /// RAR archive.
    Rar,
    /// 7-Zip archive.
    SevenZip,
    /// Microsoft cabinet.
    Cab,
    /// ISO 9660 image.
    Iso,
    /// ARJ archive.
    Arj,
    /// zstd stream.
    Zstd,
    /// cpio archive.
    Cpio,
    /// SZDD (Microsoft `COMPRESS.EXE`).
    Szdd,
    /// TNEF (Outlook's `winmail.dat`), which carries attachments.
    Tnef,
    /// PDF document.
    Pdf,
    /// RTF document (its embedded objects are opened).
    Rtf,
    /// Microsoft compiled HTML help (`.chm`).
    Chm,
    /// Symbian installation file (`.sis`).
    Sis,
    /// HTML document (a tag near the start).
    Html,
    /// GIF, PNG or JPEG image.
    Image,
    /// Flash movie.
    Flash,
    /// An Internet message or mbox (walked as a message).
    Mail,
    /// Anything else.
    Other,
}

/// Attachment classes an administrator can block (Email > Filter > Attachments).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Programs: PE/EXE/DLL, MSI/OLE, ELF, Mach-O, scripts with an interpreter line, Java
    /// classes.
    Executable,
    /// Archives: zip (and the formats built on it), gzip, bzip2, xz, tar, rar, 7z, cab, iso,
    /// arj, zstd, cpio, SZDD.
    Archive,
    /// Neither.
    Other,
}

impl FileType {
    /// The attachment class of the type.
    pub fn class(self) -> Class {
        use FileType::*;
        match self {
            Pe | Ole2 | Elf | MachO | Script | JavaClass => Class::Executable,
            Zip | Gzip | Bzip2 | Xz | Tar | Rar | SevenZip | Cab | Iso | Arj | Zstd | Cpio
            | Szdd => Class::Archive,
            _ => Class::Other,
        }
    }

    /// The lower-case name used in settings and logs (`pe`, `zip`, …).
    pub fn name(self) -> &'static str {
        use FileType::*;
        match self {
            Pe => "pe",
            Ole2 => "ole2",
            Elf => "elf",
            MachO => "macho",
            Script => "script",
            JavaClass => "javaclass",
            Zip => "zip",
            Gzip => "gzip",
            Bzip2 => "bzip2",
            Xz => "xz",
            Tar => "tar",
            Rar => "rar",
            SevenZip => "sevenzip",
            Cab => "cab",
            Iso => "iso",
            Arj => "arj",
            Zstd => "zstd",
            Cpio => "cpio",
            Szdd => "szdd",
            Tnef => "tnef",
            Pdf => "pdf",
            Rtf => "rtf",
            Chm => "chm",
            Sis => "sis",
            Html => "html",
            Image => "image",
            Flash => "flash",
            Mail => "mail",
            Other => "other",
        }
    }

    /// The ClamAV target type of the type (0 when it has none).
    pub fn clamav_target(self) -> u8 {
        match self {
            FileType::Pe => 1,
            FileType::Ole2 => 2,
            FileType::Html => 3,
            FileType::Image => 5,
            FileType::Elf => 6,
            FileType::MachO => 9,
            FileType::Pdf => 10,
            FileType::Flash => 11,
            FileType::JavaClass => 12,
            FileType::Mail => 4,
            _ => 0,
        }
    }
}

/// Magic patterns, in priority order (the first that matches wins). Offsets are from the
/// start of the data (`^` with "dot matches all").
const MAGIC: &[(&str, FileType)] = &[
    (r"^\x7fELF", FileType::Elf),
    (r"^MZ", FileType::Pe),
    (r"^\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", FileType::Ole2),
    (
        r"^(\xfe\xed\xfa[\xce\xcf]|[\xce\xcf]\xfa\xed\xfe)",
        FileType::MachO,
    ),
    (r"^\xca\xfe\xba\xbe\x00\x00\x00[\x01-\x27]", FileType::MachO),
    (r"^\xca\xfe\xba\xbe", FileType::JavaClass),
    (r"^#!\s*/", FileType::Script),
    (r"^PK(\x03\x04|\x05\x06|\x07\x08)", FileType::Zip),
    (r"^\x1f\x8b", FileType::Gzip),
    (r"^BZh[1-9]1AY&SY", FileType::Bzip2),
    (r"^\xfd7zXZ\x00", FileType::Xz),
    (r"^.{257}ustar", FileType::Tar),
    (r"^Rar!\x1a\x07", FileType::Rar),
    (r"^7z\xbc\xaf\x27\x1c", FileType::SevenZip),
    (r"^MSCF\x00\x00\x00\x00", FileType::Cab),
    (r"^\x60\xea", FileType::Arj),
    (r"^\x28\xb5\x2f\xfd", FileType::Zstd),
    (r"^(070707|070701|070702|\xc7\x71|\x71\xc7)", FileType::Cpio),
    (r"^SZDD\x88\xf0\x27\x33", FileType::Szdd),
    (r"^\x78\x9f\x3e\x22", FileType::Tnef),
    (r"^%PDF-", FileType::Pdf),
    (r"^\{\\rtf", FileType::Rtf),
    (r"^ITSF\x03\x00\x00\x00", FileType::Chm),
    // The third UID of an installation file (0x10000419), after two that vary by release.
    (r"^.{8}\x19\x04\x00\x10", FileType::Sis),
    (
        r"^(GIF8[79]a|\x89PNG\r\n\x1a\n|\xff\xd8\xff)",
        FileType::Image,
    ),
    (r"^[FCZ]WS[\x01-\x30]", FileType::Flash),
    (
        r"^(From [^\r\n]*\r?\n)?(Received|Return-Path|Delivered-To|Message-ID|MIME-Version|X-Mailer|From|Subject|Date|To): ",
        FileType::Mail,
    ),
    (
        r"^.{0,1024}<(html|head|body|script|iframe|img|a\s|meta|div|p>|!doctype html)",
        FileType::Html,
    ),
];

/// How many leading bytes the pattern check looks at.
const WINDOW: usize = 2048;
/// Where an ISO 9660 image has its signature `CD001` (the first volume descriptor, sector 16;
/// too far for a Hyperscan bounded repeat).
const ISO_MAGIC_AT: usize = 32769;

struct Matcher {
    db: BlockDatabase,
    scratch: ScratchPool,
}

fn matcher() -> Option<&'static Matcher> {
    static M: OnceLock<Option<Matcher>> = OnceLock::new();
    M.get_or_init(|| {
        let patterns = Patterns(
            MAGIC
                .iter()
                .enumerate()
                .map(|(i, (expr, t))| Pattern {
                    expression: (*expr).to_string(),
                    flags: CompileFlags::DOTALL
                        | CompileFlags::SINGLEMATCH
                        | if *t == FileType::Html {
                            CompileFlags::CASELESS
                        } else {
                            CompileFlags::empty()
                        },
                    id: Some(i),
                    ext: Default::default(),
                    som: None,
                })
                .collect(),
        );
        match patterns.build::<BlockMode>() {
            Ok(db) => Some(Matcher {
                db,
                scratch: ScratchPool::default(),
            }),
            Err(e) => {
                tracing::error!("file type patterns failed to compile: {e}");
                None
            }
        }
    })
    .as_ref()
}

/// The type of `data`, from its leading bytes.
pub fn detect(data: &[u8]) -> FileType {
    if data.get(ISO_MAGIC_AT..ISO_MAGIC_AT + 5) == Some(b"CD001") {
        return FileType::Iso;
    }
    let Some(m) = matcher() else {
        return FileType::Other;
    };
    let window = &data[..data.len().min(WINDOW)];
    let mut best = usize::MAX;
    m.scratch.with(std::slice::from_ref(&m.db), |scratch| {
        let _ = m.db.scan(window, scratch, |id, _, _, _| {
            best = best.min(id as usize);
            Matching::Continue
        });
    });
    MAGIC.get(best).map_or(FileType::Other, |(_, t)| *t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_from_content() {
        assert_eq!(detect(b"\x7fELF\x02\x01\x01"), FileType::Elf);
        assert_eq!(detect(b"MZ\x90\x00"), FileType::Pe);
        assert_eq!(
            detect(b"From a@b Thu Jul 31 2008\nFrom: a@b\n\nhi"),
            FileType::Mail
        );
        assert_eq!(
            detect(b"Received: from x\r\nSubject: y\r\n\r\nz"),
            FileType::Mail
        );
        assert_eq!(detect(b"PK\x03\x04\x14\x00"), FileType::Zip);
        assert_eq!(detect(b"\x1f\x8b\x08\x00"), FileType::Gzip);
        assert_eq!(detect(b"\xca\xfe\xba\xbe\x00\x00\x00\x02"), FileType::MachO);
        assert_eq!(
            detect(b"\xca\xfe\xba\xbe\x00\x00\x00\x34"),
            FileType::JavaClass
        );
        assert_eq!(detect(b"<HTML><body>hi"), FileType::Html);
        assert_eq!(detect(b"Rar!\x1a\x07\x01\x00"), FileType::Rar);
        let mut tar = vec![0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(detect(&tar), FileType::Tar);
        assert_eq!(detect(b"just text"), FileType::Other);
        assert_eq!(FileType::Zip.class(), Class::Archive);
        assert_eq!(FileType::Elf.class(), Class::Executable);
    }
}
