//! Small files written so that they survive a power cut whole or not at all: certificates,
//! keys, the admin token. Written to `<name>.tmp`, fsynced, renamed over the name, and the
//! directory fsynced (a file created and renamed keeps its link count of 1, so nothing is left
//! to a dirty inode buffer; see `maildir.rs` for the case where that goes wrong).

use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Writes `data` to `path` with permissions `mode`, durably and atomically.
pub fn write(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| io::Error::other(format!("{} has no directory", path.display())))?;
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp_name);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_whole_files_with_their_mode() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("key.pem");
        super::write(&p, b"secret", 0o600).unwrap();
        super::write(&p, b"secret2", 0o600).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"secret2");
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!d.path().join("key.pem.tmp").exists());
    }
}
