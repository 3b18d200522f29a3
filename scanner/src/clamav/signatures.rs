//! ClamAV signature files, parsed line by line (ClamAV manual, "Database formats"): hash
//! signatures (`.hdb`, `.hsb`), extended body signatures (`.ndb`), logical signatures
//! (`.ldb`), allow lists (`.fp`, `.sfp`, `.ign2`) and the signed containers (`.cvd`, `.cld`,
//! `.cud`) that hold them. Parsing is free of I/O apart from [`SignatureSet::load_dir`].

use super::hashes::Hashes;
use super::hexsig::HexSig;
use super::logical::LogicalSig;
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

pub use super::offset::{FLEVEL, Offset};

pub use super::hashes::{HashKind, HashSig};

/// An extended body signature (`.ndb`): `Name:TargetType:Offset:HexSig[:min[:max]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodySig {
    /// Signature name.
    pub name: String,
    /// ClamAV target type (0 any, 1 PE, 2 OLE2, 3 HTML, 4 mail, 5 graphics, 6 ELF,
    /// 7 ASCII text, 9 Mach-O, 10 PDF, 11 Flash, 12 Java).
    pub target: u8,
    /// Where the match must start.
    pub offset: Offset,
    /// The pattern text (hex), parsed again when a candidate is confirmed.
    pub hex: String,
    /// Its literal anchor ([`HexSig::anchor`]), worked out while the pattern is parsed at
    /// load; `None` when it has none.
    pub anchor: Option<(Vec<u8>, bool)>,
}

/// What loading a signature set counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoadStats {
    /// Signatures loaded, by kind (`md5`, `sha1`, `sha256`, `body`, `logical`, `allow`,
    /// `ignore`).
    pub loaded: BTreeMap<String, usize>,
    /// Signatures skipped, by reason.
    pub skipped: BTreeMap<String, usize>,
    /// Files read.
    pub files: Vec<String>,
    /// Newest container version seen (`daily.cvd` header), if any.
    pub version: Option<u64>,
}

impl LoadStats {
    fn load(&mut self, kind: &str) {
        bump(&mut self.loaded, kind);
    }

    /// Adds `other`'s counts and files to these.
    fn absorb(&mut self, other: LoadStats) {
        for (k, n) in other.loaded {
            *self.loaded.entry(k).or_default() += n;
        }
        for (k, n) in other.skipped {
            *self.skipped.entry(k).or_default() += n;
        }
        self.files.extend(other.files);
        self.version = self.version.max(other.version);
    }

    /// `kind=count` per loaded kind, space-separated (for logs).
    pub fn loaded_text(&self) -> String {
        let v: Vec<String> = self
            .loaded
            .iter()
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        v.join(" ")
    }

    /// `count reason` per skip reason, comma-separated (for logs).
    pub fn skipped_text(&self) -> String {
        let v: Vec<String> = self
            .skipped
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        v.join(", ")
    }

    fn skip(&mut self, reason: &str) {
        bump(&mut self.skipped, reason);
    }
}

/// One more for `key` (its text copied only the first time: a load counts every line).
fn bump(counts: &mut BTreeMap<String, usize>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// Every signature read from a directory, before compilation.
#[derive(Default)]
pub struct SignatureSet {
    /// Hash signatures.
    pub hashes: Hashes,
    /// PE section hash signatures (`.mdb`, `.msb`): a section of a PE program with this
    /// digest and raw size.
    pub sections: Hashes,
    /// Body signatures.
    pub body: Vec<BodySig>,
    /// Logical signatures.
    pub logical: Vec<LogicalSig>,
    /// Allow-listed digests (`.fp`, `.sfp`): a file with one of these is clean.
    pub allow: Hashes,
    /// Signatures not loaded (`.ign2`, `.ign`): by name, each with the MD5 of the one
    /// signature line it names, or `None` for every line of that name.
    pub ignored: HashMap<String, Vec<Option<String>>>,
    /// Counts.
    pub stats: LoadStats,
}

/// A line that could not be read: the whole load fails (ClamAV refuses a malformed database
/// too), so a broken update never half-replaces a working set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// File name.
    pub file: String,
    /// Line number (1-based; 0 for the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

impl std::error::Error for LoadError {}

/// Whether a signature's FLEVEL range (optional fields) admits this engine.
fn flevel_ok(min: Option<&str>, max: Option<&str>) -> Result<bool, String> {
    let num = |s: &str| s.parse::<u32>().map_err(|_| format!("bad flevel {s:?}"));
    if let Some(min) = min.filter(|s| !s.is_empty())
        && num(min)? > FLEVEL
    {
        return Ok(false);
    }
    if let Some(max) = max.filter(|s| !s.is_empty())
        && num(max)? < FLEVEL
    {
        return Ok(false);
    }
    Ok(true)
}

fn parse_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Parses a hash line `HashString:FileSize:MalwareName[:min_flevel]` (`.hdb`, `.hsb`, `.fp`,
/// `.sfp`). `None` when the line's FLEVEL excludes this engine.
/// Parses a `.mdb`/`.msb` line, `size:hash:name[:min_flevel[:max_flevel]]` (the size and
/// digest in the other order than `.hdb`'s; ClamAV manual, "PE section based hash
/// signatures").
pub fn parse_section_hash_line(line: &str) -> Result<Option<HashSig>, String> {
    let mut f: Vec<&str> = line.split(':').collect();
    if f.len() < 3 {
        return Err("section hash signature needs size:hash:name".into());
    }
    f.swap(0, 1);
    parse_hash_line(&f.join(":"))
}

pub fn parse_hash_line(line: &str) -> Result<Option<HashSig>, String> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 3 {
        return Err("hash signature needs hash:size:name".into());
    }
    let digest = parse_hex(f[0]).ok_or_else(|| format!("bad digest {:?}", f[0]))?;
    let kind = match digest.len() {
        16 => HashKind::Md5,
        20 => HashKind::Sha1,
        32 => HashKind::Sha256,
        n => return Err(format!("digest of {n} bytes is no MD5, SHA-1 or SHA-256")),
    };
    let size = match f[1] {
        "*" => None,
        s => Some(s.parse().map_err(|_| format!("bad size {s:?}"))?),
    };
    if !flevel_ok(f.get(3).copied(), f.get(4).copied())? {
        return Ok(None);
    }
    if size.is_none()
        && f.get(3)
            .is_none_or(|s| s.parse::<u32>().is_ok_and(|n| n < 73))
    {
        return Err("size '*' needs min_flevel 73 or later".into());
    }
    Ok(Some(HashSig {
        kind,
        digest,
        size,
        name: f[2].to_string(),
    }))
}

/// Parses an extended body signature line. `Ok(Err(reason))` for a well-formed signature
/// this engine skips (FLEVEL, an executable-structure offset).
pub fn parse_ndb_line(line: &str) -> Result<Result<BodySig, &'static str>, String> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 4 {
        return Err("body signature needs name:target:offset:hex".into());
    }
    let target: u8 = f[1]
        .parse()
        .map_err(|_| format!("bad target type {:?}", f[1]))?;
    if !flevel_ok(f.get(4).copied(), f.get(5).copied())? {
        return Ok(Err("functionality level out of range"));
    }
    let Some(offset) = Offset::parse(f[2])? else {
        return Ok(Err("offset into version information (VI)"));
    };
    let sig = HexSig::parse(f[3]).map_err(|e| format!("pattern: {e}"))?;
    Ok(Ok(BodySig {
        name: f[0].to_string(),
        target,
        offset,
        hex: f[3].to_string(),
        anchor: sig.anchor(),
    }))
}

impl SignatureSet {
    /// Adds the lines of one signature file named `name` (its extension picks the format).
    pub fn add_file(&mut self, name: &str, text: &str) -> Result<(), LoadError> {
        let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
        let err = |line: usize, reason: String| LoadError {
            file: name.to_string(),
            line,
            reason,
        };
        self.stats.files.push(name.to_string());
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let n = i + 1;
            if !self.ignored.is_empty() && self.is_ignored(&ext, line) {
                self.stats.skip("ignored by .ign2");
                continue;
            }
            match ext.as_str() {
                "hdb" | "hsb" | "hdu" | "hsu" => {
                    match parse_hash_line(line).map_err(|e| err(n, e))? {
                        Some(h) => {
                            self.stats.load(kind_name(h.kind));
                            self.hashes.insert(&h);
                        }
                        None => self.stats.skip("functionality level out of range"),
                    }
                }
                "fp" | "sfp" => {
                    if let Some(h) = parse_hash_line(line).map_err(|e| err(n, e))? {
                        self.stats.load("allow");
                        self.allow.insert(&h);
                    }
                }
                "ign" | "ign2" => {
                    // `Name`, or `Name:md5` where md5 is that of the whole signature line:
                    // a line changed since the entry was written is not ignored.
                    let mut f = line.splitn(3, ':');
                    let sig = f.next().unwrap_or(line).trim();
                    let md5 = f.next().map(|m| m.trim().to_ascii_lowercase());
                    self.stats.load("ignore");
                    self.ignored.entry(sig.to_string()).or_default().push(md5);
                }
                "ndb" | "ndu" => match parse_ndb_line(line).map_err(|e| err(n, e))? {
                    Ok(b) => {
                        self.stats.load("body");
                        self.body.push(b);
                    }
                    Err(why) => self.stats.skip(why),
                },
                "ldb" | "ldu" => match LogicalSig::parse(line).map_err(|e| err(n, e))? {
                    Ok(l) => {
                        self.stats.load("logical");
                        self.logical.push(l);
                    }
                    Err(why) => self.stats.skip(why),
                },
                "mdb" | "msb" | "mdu" | "msu" => {
                    match parse_section_hash_line(line).map_err(|e| err(n, e))? {
                        Some(h) => {
                            self.stats.load("section");
                            self.sections.insert(&h);
                        }
                        None => self.stats.skip("functionality level out of range"),
                    }
                }
                "cbc" => self.stats.skip("bytecode signature (out of scope)"),
                "yar" | "yara" => self.stats.skip("YARA rule (not supported)"),
                "cdb" => self
                    .stats
                    .skip("container metadata signature (not evaluated)"),
                "ftm" | "info" | "cfg" | "crb" | "pdb" | "gdb" | "wdb" | "idb" | "hwp" | "ign_"
                | "pwdb" => {
                    self.stats.skip("auxiliary file (not evaluated)");
                    break;
                }
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Whether a signature line is named by an ignore entry (and, if the entry has a digest,
    /// is exactly the line it was written for).
    fn is_ignored(&self, ext: &str, line: &str) -> bool {
        let name = match ext {
            "hdb" | "hsb" | "hdu" | "hsu" | "mdb" | "msb" | "mdu" | "msu" => line.split(':').nth(2),
            "ndb" | "ndu" => line.split(':').next(),
            "ldb" | "ldu" => line.split(';').next(),
            _ => None,
        };
        let Some(entries) = name.and_then(|n| self.ignored.get(n)) else {
            return false;
        };
        let digest = || -> String {
            Md5::digest(line.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect()
        };
        entries
            .iter()
            .any(|e| e.as_ref().is_none_or(|m| *m == digest()))
    }

    /// Reads every signature file of `dir` (sorted by name; containers unpacked). A file that
    /// cannot be read or parsed fails the load.
    pub fn load_dir(dir: &Path) -> Result<SignatureSet, LoadError> {
        let mut set = SignatureSet::default();
        let io = |file: &str, e: std::io::Error| LoadError {
            file: file.to_string(),
            line: 0,
            reason: e.to_string(),
        };
        let mut names: Vec<_> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&dir.display().to_string(), e)),
        };
        names.sort();
        // Ignore lists first, so that they apply to the files named before them too; plain
        // files are read one at a time, container members kept until their turn.
        let is_ignore = |n: &str| n.ends_with(".ign") || n.ends_with(".ign2");
        let mut pending: Vec<(String, Option<Vec<u8>>)> = Vec::new();
        for name in names {
            let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
            if matches!(ext.as_str(), "cvd" | "cld" | "cud") {
                let bytes = std::fs::read(dir.join(&name)).map_err(|e| io(&name, e))?;
                let c = super::container::unpack(&bytes).map_err(|reason| LoadError {
                    file: name.clone(),
                    line: 0,
                    reason,
                })?;
                set.stats.version = set.stats.version.max(Some(c.version));
                pending.extend(
                    c.files
                        .into_iter()
                        .map(|(m, b)| (format!("{name}/{m}"), Some(b))),
                );
            } else {
                pending.push((name, None));
            }
        }
        // Ignore lists first, so that they apply to every other file; then the other files
        // side by side, each into a set of its own, appended in name order (the order
        // signatures are tried in).
        let (ignores, files): (Vec<_>, Vec<_>) =
            pending.into_iter().partition(|(n, _)| is_ignore(n));
        for (name, bytes) in ignores {
            let bytes = match bytes {
                Some(b) => b,
                None => std::fs::read(dir.join(&name)).map_err(|e| io(&name, e))?,
            };
            set.add_file(&name, &text_of(&bytes))?;
        }
        let ignored = &set.ignored;
        let parts = crate::parallel::map(files, |(name, bytes)| {
            let bytes = match bytes {
                Some(b) => b,
                None => std::fs::read(dir.join(&name)).map_err(|e| io(&name, e))?,
            };
            let mut part = SignatureSet {
                ignored: ignored.clone(),
                ..SignatureSet::default()
            };
            part.add_file(&name, &text_of(&bytes))?;
            Ok(part)
        });
        for part in parts {
            set.append(part?);
        }
        Ok(set)
    }

    /// Takes the signatures of `other` (read from files after this set's).
    fn append(&mut self, other: SignatureSet) {
        self.hashes.append(other.hashes);
        self.sections.append(other.sections);
        self.allow.append(other.allow);
        self.body.extend(other.body);
        self.logical.extend(other.logical);
        self.stats.absorb(other.stats);
    }
}

/// A signature file's text: checked as UTF-8 in one pass, mended only when it is not.
fn text_of(bytes: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// The stats key of a hash kind.
pub fn kind_name(k: HashKind) -> &'static str {
    match k {
        HashKind::Md5 => "md5",
        HashKind::Sha1 => "sha1",
        HashKind::Sha256 => "sha256",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_lines() {
        let h = parse_hash_line("44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test")
            .expect("valid")
            .expect("loaded");
        assert_eq!(
            (h.kind, h.size, h.name.as_str()),
            (HashKind::Md5, Some(68), "Eicar-Test")
        );
        let any = parse_hash_line(&format!("{}:*:Any:73", "ab".repeat(32))).expect("valid");
        assert_eq!(
            any.map(|h| (h.kind, h.size)),
            Some((HashKind::Sha256, None))
        );
        assert!(parse_hash_line(&format!("{}:*:Any", "ab".repeat(16))).is_err());
        assert!(parse_hash_line("abc:1:x").is_err());
        assert_eq!(
            parse_hash_line(&format!("{}:5:Future:999", "ab".repeat(16))),
            Ok(None)
        );
    }

    #[test]
    fn body_lines_and_offsets() {
        let b = parse_ndb_line("Sig:0:EOF-40,3:414243")
            .expect("valid")
            .expect("loaded");
        assert_eq!(b.offset, Offset::End { back: 40, shift: 3 });
        assert!(
            b.offset.allows(60, 100, None)
                && b.offset.allows(63, 100, None)
                && !b.offset.allows(64, 100, None)
        );
        let f = Offset::parse("100,20").expect("valid").expect("evaluated");
        assert!(f.allows(100, 500, None) && f.allows(120, 500, None) && !f.allows(121, 500, None));
        assert_eq!(
            parse_ndb_line("Sig:1:VI:414243").expect("valid"),
            Err("offset into version information (VI)")
        );
        let ep = parse_ndb_line("Sig:1:EP-2,4:414243")
            .expect("valid")
            .expect("kept");
        assert_eq!(
            ep.offset,
            Offset::Entry {
                delta: -2,
                shift: 4
            }
        );
        for (text, want) in [
            (
                "S1+16",
                Offset::Section {
                    index: 1,
                    delta: 16,
                    shift: 0,
                },
            ),
            ("SL+0,8", Offset::LastSection { delta: 0, shift: 8 }),
            ("SE2", Offset::WithinSection { index: 2, shift: 0 }),
            ("SE1,4", Offset::WithinSection { index: 1, shift: 4 }),
            ("EP+0", Offset::Entry { delta: 0, shift: 0 }),
        ] {
            assert_eq!(Offset::parse(text), Ok(Some(want)), "{text}");
        }
        for bad in ["EP", "EP*3", "S1", "S+3", "SEx", "SL-2"] {
            assert!(Offset::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_ndb_line("Sig:0:*:414243:250").expect("valid"),
            Err("functionality level out of range")
        );
        assert!(parse_ndb_line("Sig:0:*:41z2").is_err());
        assert!(parse_ndb_line("Sig:0:*").is_err());
    }

    #[test]
    fn a_malformed_line_fails_the_file_with_its_place() {
        let mut set = SignatureSet::default();
        let e = set
            .add_file("x.ndb", "Good:0:*:41424344\nBad:0:*:4142zz\n")
            .expect_err("malformed");
        assert_eq!((e.file.as_str(), e.line), ("x.ndb", 2));
    }
}
