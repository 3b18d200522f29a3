//! SZDD, the format of Microsoft's `COMPRESS.EXE` (files named `SETUP.EX_`): a 14-byte header
//! (magic, mode `A`, the name's last character, the expanded size) and LZSS over a 4,096-byte
//! window that starts filled with spaces, written at 4,080 (ClamAV's `CL_TYPE_MSSZDD`).

/// ClamAV's container type name.
pub const CONTAINER: &str = "CL_TYPE_MSSZDD";

/// The magic bytes.
pub const MAGIC: &[u8] = b"SZDD\x88\xf0\x27\x33";

/// The expanded size the header declares.
pub fn declared_size(data: &[u8]) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        data.get(10..14)?.try_into().ok()?,
    )))
}

/// The expanded file, at most `cap` bytes (and no more than the header says); `None` when
/// `data` is not SZDD.
pub fn expand(data: &[u8], cap: usize) -> Option<Vec<u8>> {
    if !data.starts_with(MAGIC) || data.get(8) != Some(&b'A') {
        return None;
    }
    let size = u32::from_le_bytes(data.get(10..14)?.try_into().ok()?) as usize;
    let want = size.min(cap);
    let mut window = [b' '; 4096];
    let mut pos = 4096 - 16;
    let mut out = Vec::with_capacity(want.min(1 << 20));
    let mut input = data[14..].iter().copied();
    'blocks: while out.len() < want {
        let Some(control) = input.next() else { break };
        for bit in 0..8 {
            if out.len() >= want {
                break 'blocks;
            }
            if control & (1 << bit) != 0 {
                let Some(b) = input.next() else { break 'blocks };
                out.push(b);
                window[pos] = b;
                pos = (pos + 1) & 4095;
            } else {
                let (Some(lo), Some(hi)) = (input.next(), input.next()) else {
                    break 'blocks;
                };
                let from = usize::from(lo) | (usize::from(hi & 0xf0) << 4);
                let len = usize::from(hi & 0x0f) + 3;
                for i in 0..len {
                    if out.len() >= want {
                        break 'blocks;
                    }
                    let c = window[(from + i) & 4095];
                    out.push(c);
                    window[pos] = c;
                    pos = (pos + 1) & 4095;
                }
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_and_back_references() {
        // "abcabcabc": three literals (control bits 0-2 set), then a reference to the window
        // position they were written at (4080) for 6 bytes.
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(b"A_");
        f.extend_from_slice(&9u32.to_le_bytes());
        f.extend_from_slice(&[0b0000_0111, b'a', b'b', b'c', 0xf0, 0xf3]);
        assert_eq!(expand(&f, 1 << 20).as_deref(), Some(&b"abcabcabc"[..]));
        assert_eq!(expand(&f, 4).as_deref(), Some(&b"abca"[..]));
        assert_eq!(expand(b"SZDD but not really", 10), None);
        for cut in 0..f.len() {
            let _ = expand(&f[..cut], 100);
        }
    }

    #[test]
    fn the_clamav_sample_expands_to_its_program() {
        let f = std::fs::read("/usr/share/clamav-testfiles/clam.exe.szdd")
            .expect("clamav-testfiles (scripts/deps.sh installs it)");
        let exe = std::fs::read("/usr/share/clamav-testfiles/clam.exe").expect("clam.exe");
        assert_eq!(expand(&f, 1 << 20), Some(exe));
    }
}
