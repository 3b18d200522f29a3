//! Programs compressed by an executable packer, unpacked the way ClamAV unpacks them before
//! it scans: the packer is recognised by its loader stub at the entry point, the packed
//! sections are decompressed into an image of the program's memory, and that image is
//! rebuilt into a plain PE file that is scanned in turn (its hashes, its body signatures, the
//! self-extracting archive it may hold). Two packers, the ones Debian's `clamav-testfiles`
//! carries and ClamAV opens: MEW 11 ([`mew`]), Upack 0.39 ([`upack`]), UPX ([`upx`]), Petite 2.x
//! ([`petite`]), yC 1.3 ([`yc`]), WWPack32 ([`wwpack`]) and ASPack 2.x ([`aspack`]).
//!
//! Everything here reads untrusted bytes: every offset is checked against the buffer it
//! points into, arithmetic on values read from the file wraps as the packer's 32-bit code
//! does, and a failure anywhere means "not unpacked", never a panic.

use crate::le::{le16, le32};
mod aplib;
mod aspack;
mod mew;
mod petite;
mod rebuild;
mod upack;
mod upx;
mod wwpack;
mod yc;

/// A packed program's unpacked form.
#[derive(Debug)]
pub struct Unpacked {
    /// The packer's name (`MEW`, `Upack`).
    pub packer: &'static str,
    /// The unpacked program, rebuilt as a PE file (for UPX, when the original header found
    /// does not fit the image, the bare image, as ClamAV scans it then).
    pub file: Vec<u8>,
}

/// Unpacks `data` if it is a 32-bit PE file compressed by a packer this module knows.
pub fn unpack(data: &[u8]) -> Option<Unpacked> {
    let pe = Pe::parse(data)?;
    // ClamAV's order: MEW, Upack, UPX, Petite, yC, WWPack, ASPack.
    let unpackers: [(&'static str, Unpacker); 7] = [
        ("MEW", mew::unpack),
        ("Upack", upack::unpack),
        ("UPX", upx::unpack),
        ("Petite", petite::unpack),
        ("yC", yc::unpack),
        ("WWPack", wwpack::unpack),
        ("ASPack", aspack::unpack),
    ];
    unpackers
        .into_iter()
        .find_map(|(packer, f)| f(&pe).map(|file| Unpacked { packer, file }))
}

/// Whether `data` starts with a PE header ClamAV would accept for a program embedded in
/// another (its header check before scanning one): `MZ`, `PE\0\0` where `e_lfanew` points,
/// 1 to 96 sections, an entry point that maps into the file.
pub fn is_program(data: &[u8]) -> bool {
    Pe::parse_any(data).is_some()
}

/// One packer's unpacker: the rebuilt program, if the file is packed by it and unpacks.
type Unpacker = fn(&Pe<'_>) -> Option<Vec<u8>>;

/// Size of the entry-point window the packers' stubs are recognised in (ClamAV's `epbuff`).
const EP_WINDOW: usize = 4096;
/// Fewer octets than this at the entry point and ClamAV tries no packer after UPX.
const MIN_EP_WINDOW: usize = 200;
/// Most sections read from one header.
const MAX_SECTIONS: usize = 96;
/// Largest image an unpacker builds (ClamAV's `MaxScanSize`-like bound on one unpack).
const MAX_IMAGE: u32 = 64 << 20;

/// One section as ClamAV places it: virtual address and size rounded to the section
/// alignment, raw pointer and size rounded to the file alignment and cut at the end of the
/// file; `uraw`/`ursz` are the header's own values (the size cut at the end of the file too).
#[derive(Debug, Clone, Copy, Default)]
struct Section {
    rva: u32,
    vsz: u32,
    raw: u32,
    rsz: u32,
    uraw: u32,
    ursz: u32,
}

/// What the unpackers read of a 32-bit PE header.
#[derive(Debug)]
struct Pe<'a> {
    data: &'a [u8],
    image_base: u32,
    /// `SizeOfOptionalHeader` (Upack writes 0x148 there).
    opt_size: u16,
    sections: Vec<Section>,
    /// Entry point: its RVA and the file offset it maps to.
    vep: u32,
    ep: u32,
    /// Lowest section RVA, and the highest end of a section's data in memory.
    min: u32,
    max: u32,
    /// PE32+.
    wide: bool,
}

impl<'a> Pe<'a> {
    /// A 32-bit PE file (what the packers write).
    fn parse(d: &'a [u8]) -> Option<Pe<'a>> {
        Self::parse_any(d).filter(|p| !p.wide)
    }

    /// A PE32 or PE32+ file.
    fn parse_any(d: &'a [u8]) -> Option<Pe<'a>> {
        if d.get(..2)? != b"MZ" {
            return None;
        }
        let pe = usize::try_from(le32(d, 0x3c)?).ok()?;
        if d.get(pe..pe.checked_add(4)?)? != b"PE\0\0" {
            return None;
        }
        let coff = pe + 4;
        let count = usize::from(le16(d, coff + 2)?);
        let opt_size = le16(d, coff + 16)?;
        let opt = coff + 20;
        let wide = match le16(d, opt)? {
            0x10b => false,
            0x20b => true,
            _ => return None,
        };
        if count == 0 || count > MAX_SECTIONS {
            return None;
        }
        let vep = le32(d, opt + 16)?;
        // PE32+ has an eight-octet image base where PE32 has base of data and image base.
        let image_base = if wide { 0 } else { le32(d, opt + 28)? };
        let salign = le32(d, opt + 32)?;
        let mut falign = le32(d, opt + 36)?;
        let hdr_size = align_up(le32(d, opt + 60)?, salign);
        let table = opt.checked_add(usize::from(opt_size))?;
        let mut headers = Vec::with_capacity(count);
        for i in 0..count {
            let s = table + i * 40;
            headers.push((
                le32(d, s + 8)?,
                le32(d, s + 12)?,
                le32(d, s + 16)?,
                le32(d, s + 20)?,
            ));
        }
        // A pointer that contradicts a file alignment other than 512 makes 512 the
        // alignment (ClamAV's "fallback mode").
        if falign != 0x200
            && headers.iter().any(|&(_, _, size, ptr)| {
                falign != 0 && size != 0 && ptr % falign != 0 && ptr % 0x200 == 0
            })
        {
            falign = 0x200;
        }
        let fsize = u32::try_from(d.len()).ok()?;
        let mut sections = Vec::with_capacity(count);
        for &(vsize, va, size, ptr) in &headers {
            let mut s = Section {
                rva: align_down(va, salign),
                vsz: align_up(vsize, salign),
                raw: align_down(ptr, falign),
                rsz: align_up(size, falign),
                uraw: ptr,
                ursz: size,
            };
            if s.rsz != 0 {
                if s.raw >= fsize || s.uraw >= fsize {
                    s.rsz = 0;
                    s.ursz = 0;
                } else {
                    if u64::from(s.raw) + u64::from(s.rsz) > u64::from(fsize) {
                        s.rsz = fsize - s.raw;
                    }
                    if u64::from(s.uraw) + u64::from(s.ursz) > u64::from(fsize) {
                        s.ursz = fsize - s.uraw;
                    }
                }
            }
            if s.vsz == 0 && s.rsz != 0 {
                s.vsz = align_up(s.ursz, salign);
            }
            sections.push(s);
        }
        let min = sections.iter().map(|s| s.rva).min()?;
        let max = sections.iter().map(|s| s.rva.wrapping_add(s.rsz)).max()?;
        let ep = raw_address(vep, &sections, fsize, hdr_size)?;
        Some(Pe {
            data: d,
            image_base,
            opt_size,
            sections,
            vep,
            ep,
            min,
            max,
            wide,
        })
    }

    /// The first section that is empty in the file but not in memory and is followed by one
    /// with data in both: where MEW and UPX unpack to, and the section they unpack from.
    fn packed_after_empty(&self) -> Option<usize> {
        (0..self.sections.len().saturating_sub(1)).find(|&i| {
            let (a, b) = (self.sections[i], self.sections[i + 1]);
            a.rsz == 0 && a.vsz != 0 && b.rsz != 0 && b.vsz != 0
        })
    }

    /// Copies each section's data (its whole raw size) to its RVA in `image`; `None` if one
    /// does not fit or the file ends early (ClamAV's "damaged file").
    fn place_sections(&self, image: &mut [u8], sections: &[Section]) -> Option<()> {
        for s in sections.iter().filter(|s| s.rsz != 0) {
            let at = s.rva as usize;
            let data = self.read(s.raw, s.rsz);
            if data.len() != s.rsz as usize || at.checked_add(data.len())? > image.len() {
                return None;
            }
            image[at..at + data.len()].copy_from_slice(data);
        }
        Some(())
    }

    /// Up to [`EP_WINDOW`] octets at the entry point.
    fn ep_window(&self) -> &'a [u8] {
        let start = self.ep as usize;
        let end = start.saturating_add(EP_WINDOW).min(self.data.len());
        self.data.get(start..end).unwrap_or(&[])
    }

    /// `n` octets of the file at `at`, or fewer where it ends.
    fn read(&self, at: u32, n: u32) -> &'a [u8] {
        let start = at as usize;
        let end = start.saturating_add(n as usize).min(self.data.len());
        self.data.get(start..end).unwrap_or(&[])
    }
}

/// An RVA's file offset: itself inside the headers, else through the last section whose raw
/// extent holds it.
fn raw_address(rva: u32, sections: &[Section], fsize: u32, hdr_size: u32) -> Option<u32> {
    if rva < hdr_size {
        return (rva < fsize).then_some(rva);
    }
    sections
        .iter()
        .rev()
        .find(|s| s.rsz != 0 && s.rva <= rva && s.rsz > rva - s.rva)
        .map(|s| rva - s.rva + s.raw)
}

fn align_down(o: u32, a: u32) -> u32 {
    o.checked_div(a).map_or(o, |q| q * a)
}

fn align_up(o: u32, a: u32) -> u32 {
    match o.checked_div(a) {
        None => o,
        Some(q) => q
            .wrapping_add(u32::from(!o.is_multiple_of(a)))
            .wrapping_mul(a),
    }
}

/// Decodes exactly `len` octets of a raw LZMA stream (no header) with the properties
/// `(lc, lp, pb)`. `stream` starts with the range coder's unused first octet when
/// `coder_octet` (as LZMA streams do; Upack's does not). lzma-rs reads the properties and
/// dictionary size from a header, written here.
fn raw_lzma(
    stream: &[u8],
    coder_octet: bool,
    (lc, lp, pb): (u8, u8, u8),
    len: u32,
) -> Option<Vec<u8>> {
    if lc >= 9 || lp >= 5 || pb >= 5 || len == 0 {
        return None;
    }
    let mut framed = Vec::with_capacity(6 + stream.len());
    framed.push(lc + 9 * (5 * pb + lp));
    framed.extend_from_slice(&len.max(4096).to_le_bytes());
    if !coder_octet {
        framed.push(0);
    }
    framed.extend_from_slice(stream);
    let opts = lzma_rs::decompress::Options {
        unpacked_size: lzma_rs::decompress::UnpackedSize::UseProvided(Some(u64::from(len))),
        memlimit: Some(usize::try_from(MAX_IMAGE).ok()?),
        allow_incomplete: false,
    };
    let mut out = Vec::new();
    lzma_rs::lzma_decompress_with_options(&mut std::io::Cursor::new(framed), &mut out, &opts)
        .ok()?;
    (out.len() == len as usize).then_some(out)
}

/// A buffer addressed the way the packers' 32-bit code addresses memory: signed offsets that
/// may point anywhere, every access checked to lie wholly inside.
struct Mem {
    b: Vec<u8>,
}

impl Mem {
    fn zeroed(n: u32) -> Option<Mem> {
        (n > 0 && n <= MAX_IMAGE).then(|| Mem {
            b: vec![0; n as usize],
        })
    }

    fn len(&self) -> i64 {
        self.b.len() as i64
    }

    /// ClamAV's `CLI_ISCONTAINED`: `n` > 0 octets at `at`, all inside.
    fn holds(&self, at: i64, n: i64) -> bool {
        n > 0 && at >= 0 && n <= self.len() && at <= self.len() - n
    }

    fn u8(&self, at: i64) -> Option<u8> {
        self.holds(at, 1).then(|| self.b[at as usize])
    }

    fn u32(&self, at: i64) -> Option<u32> {
        self.holds(at, 4).then(|| {
            let a = at as usize;
            u32::from_le_bytes([self.b[a], self.b[a + 1], self.b[a + 2], self.b[a + 3]])
        })
    }

    fn set_u8(&mut self, at: i64, v: u8) -> Option<()> {
        self.holds(at, 1).then(|| self.b[at as usize] = v)
    }

    fn set_u32(&mut self, at: i64, v: u32) -> Option<()> {
        self.holds(at, 4)
            .then(|| self.b[at as usize..at as usize + 4].copy_from_slice(&v.to_le_bytes()))
    }

    /// Copies `src` into the buffer at `at` (cut where the buffer ends).
    fn put(&mut self, at: usize, src: &[u8]) {
        if at >= self.b.len() {
            return;
        }
        let n = src.len().min(self.b.len() - at);
        self.b[at..at + n].copy_from_slice(&src[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = "/usr/share/clamav-testfiles";

    fn sample(name: &str) -> Vec<u8> {
        std::fs::read(format!("{SAMPLES}/{name}"))
            .unwrap_or_else(|e| panic!("{name} from clamav-testfiles (scripts/deps.sh): {e}"))
    }

    /// The self-extracting zip inside each unpacked sample holds `clam.exe` itself.
    fn holds_zipped_clam(file: &[u8]) -> bool {
        let clam = sample("clam.exe");
        crate::sfx::zips(file, 100).iter().any(|r| {
            crate::sfx::entry(&file[r.clone()]).is_some_and(|e| {
                let data = crate::sfx::read(&e, |r| {
                    let mut v = Vec::new();
                    r.read_to_end(&mut v).map(|_| v).unwrap_or_default()
                });
                e.name == "clam.exe" && data.as_deref() == Some(&clam[..])
            })
        })
    }

    #[test]
    fn unpacks_mew_upack_and_upx_samples() {
        for (name, packer) in [
            ("clam-mew.exe", "MEW"),
            ("clam-upack.exe", "Upack"),
            ("clam-wwpack.exe", "WWPack"),
        ] {
            let u = unpack(&sample(name)).unwrap_or_else(|| panic!("{name} not unpacked"));
            assert_eq!(u.packer, packer, "{name}");
            assert!(Pe::parse(&u.file).is_some(), "{name}: rebuilt file is a PE");
            assert!(
                holds_zipped_clam(&u.file),
                "{name}: clam.exe not found inside"
            );
        }
        // UPX's sample keeps clam.exe whole at the end of the original program's last section.
        let u = unpack(&sample("clam-upx.exe")).expect("clam-upx.exe unpacked");
        assert_eq!(u.packer, "UPX");
        assert!(Pe::parse(&u.file).is_some());
        assert!(u.file.ends_with(&sample("clam.exe")));
    }

    fn md5_hex(d: &[u8]) -> String {
        use md5::Digest;
        md5::Md5::digest(d)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// MEW, Upack, Petite and ASPack: the rebuilt file has the size of ClamAV's and, past the headers
    /// (whose content is postcore's own), the same octets — every section at the same file
    /// offset (ClamAV's rebuilt files from `clamscan --leave-temps`: MD5 of what follows the
    /// headers). For Petite also the entry point ClamAV recovers from the loader.
    #[test]
    fn rebuilds_the_files_clamav_rebuilds() {
        for (name, len, headers, md5) in [
            (
                "clam-mew.exe",
                21504,
                0x400,
                "07b0fc9108a46678f717146904d7be53",
            ),
            (
                "clam-upack.exe",
                17408,
                0x200,
                "9701822e633aa69792b5d94efc63b107",
            ),
            (
                "clam-petite.exe",
                6144,
                0x400,
                "1b011bfe8b681ee9f3dc4698b5610bda",
            ),
            (
                "clam-aspack.exe",
                17408,
                0x400,
                "8d25267ae7df6b411240c1f8b2e77c4f",
            ),
        ] {
            let u = unpack(&sample(name)).expect(name);
            assert_eq!(u.file.len(), len, "{name}");
            let pe = Pe::parse(&u.file).expect(name);
            assert_eq!(pe.sections[0].uraw, headers, "{name}");
            assert_eq!(md5_hex(&u.file[headers as usize..]), md5, "{name}");
        }
        let u = unpack(&sample("clam-petite.exe")).expect("petite");
        assert_eq!(u.packer, "Petite");
        assert_eq!(Pe::parse(&u.file).expect("a PE").vep, 0x1020);
    }

    /// UPX: ClamAV rebuilds the original program from its own PE header (found after the
    /// imports the loader names); postcore's file is the same octet for octet after the DOS
    /// header (ClamAV's rebuilt file from `clamscan --leave-temps`, MD5 from offset 0xd0).
    #[test]
    fn rebuilds_upx_programs_as_clamav_does() {
        let u = unpack(&sample("clam-upx.exe")).expect("unpacked");
        assert_eq!(u.file.len(), 20480);
        assert_eq!(md5_hex(&u.file[0xd0..]), "e4b13f90f9f4a6809a75a1a8076d7d71");
        let pe = Pe::parse(&u.file).expect("a PE");
        assert_eq!(pe.sections.len(), 4);
    }

    /// WWPack and yC: the unpacked (decrypted) file with its own header fixed up; ClamAV
    /// writes the same files (MD5 of `clamscan --leave-temps`'s whole rebuilt files).
    #[test]
    fn unpacks_wwpack_and_yc_to_the_files_clamav_writes() {
        for (name, packer, md5) in [
            (
                "clam-wwpack.exe",
                "WWPack",
                "7b8cd3dd6a198ec191afce0206665d2d",
            ),
            ("clam-yc.exe", "yC", "8822fca1f7b0cb5506f15f8088956197"),
        ] {
            let u = unpack(&sample(name)).expect(name);
            assert_eq!(u.packer, packer);
            assert_eq!(md5_hex(&u.file), md5, "{name}");
        }
    }

    /// Found by the fuzzer: a UPX program whose original header, once found, does not fit
    /// its image. ClamAV then scans the bare decompressed image (no header); so does postcore.
    #[test]
    fn upx_header_that_does_not_fit_leaves_the_bare_image() {
        let d = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/pe_packers/upx-fuzz-crash-1.bin"
        ))
        .expect("fixture");
        let u = unpack(&d).expect("decompressed");
        assert_eq!(u.packer, "UPX");
        assert!(!u.file.starts_with(b"MZ"));
        assert_eq!(u.file.len(), 0x6000, "UPX0 and UPX1's virtual sizes");
    }

    #[test]
    fn leaves_plain_and_other_packed_programs_alone() {
        for name in [
            "clam.exe",
            "clam-fsg.exe",
            "clam-pespin.exe",
            "clam-nsis.exe",
        ] {
            assert!(unpack(&sample(name)).is_none(), "{name}");
        }
    }

    #[test]
    fn survives_every_truncation_and_byte_flip_of_the_samples() {
        for name in [
            "clam-mew.exe",
            "clam-upack.exe",
            "clam-upx.exe",
            "clam-wwpack.exe",
            "clam-yc.exe",
            "clam-petite.exe",
            "clam-aspack.exe",
        ] {
            let s = sample(name);
            for n in (0..s.len()).step_by(7) {
                let _ = unpack(&s[..n]);
            }
            for i in 0..s.len() {
                let mut t = s.clone();
                t[i] ^= 0xff;
                let _ = unpack(&t);
            }
        }
    }
}
