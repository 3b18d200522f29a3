//! Compiled Hyperscan databases kept on disk between loads, named by a key over everything
//! that went into the compile (the patterns and the Hyperscan version): a load with the same
//! patterns reads the database back instead of compiling it again.

use hyperscan::prelude::*;
use hyperscan::{BlockMode, SerializedDatabase};
use std::path::Path;

/// The database for `key` from `dir` when present and readable; otherwise `build`'s, written
/// to `dir` (temporary name, then renamed) when it refused nothing. `R` is what `build`
/// reports as refused.
pub fn load_or_build<R>(
    dir: Option<&Path>,
    key: &str,
    build: impl FnOnce() -> (Option<BlockDatabase>, Vec<R>),
) -> (Option<BlockDatabase>, Vec<R>) {
    let Some(dir) = dir else {
        return build();
    };
    let path = dir.join(format!("{key}.hsdb"));
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(db) = bytes.deserialize::<BlockMode>()
    {
        touch(&path);
        return (Some(db), Vec::new());
    }
    let (db, refused) = build();
    if let Some(db) = &db
        && refused.is_empty()
        && let Ok(bytes) = db.serialize()
    {
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::create_dir_all(dir);
        if std::fs::write(&tmp, &bytes[..]).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    (db, refused)
}

/// Marks a cache file as used now (its modification time), so that stale ones can be told
/// apart and removed.
pub fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
}

/// Removes cache files not used by the load that started at `since`.
pub fn prune(dir: &Path, since: std::time::SystemTime) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(Result::ok) {
        let stale = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < since);
        if stale && e.file_name().to_string_lossy().ends_with(".hsdb") {
            let _ = std::fs::remove_file(e.path());
        }
    }
}
