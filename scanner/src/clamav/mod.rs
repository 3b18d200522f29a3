//! An antivirus engine for ClamAV's signature formats, matching with a literal index and
//! Hyperscan.
//!
//! [`signatures`] reads the files, [`hexsig`] and [`logical`] parse the pattern languages,
//! [`container`] opens `.cvd` archives and [`engine`] compiles it all into one database that
//! scans an object in memory.

pub mod container;
pub mod engine;
pub mod exe;
pub mod gram_index;
pub mod hashes;
pub mod hexsig;
pub mod literal_db;
pub mod logical;
pub mod offset;
pub mod signatures;

pub use engine::{Detection, EICAR, EICAR_NAME, Engine, RawScan, Targets};
pub use signatures::{LoadError, LoadStats, SignatureSet};
