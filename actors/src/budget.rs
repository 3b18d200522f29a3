//! The memory budget for mail in flight and the free-space check (issue "Hold under attack").
//!
//! Message content streams to disk past [`crate::body::SPILL_AT`] octets, so what a transaction
//! can hold in memory is bounded: its command buffer and at most twice the spill threshold of
//! content (a buffer that grows by doubling). Each transaction reserves that much from the
//! budget when it starts (MAIL FROM) and gives it back when it ends, however it ends. When the
//! budget is spent, or the data directory's file system has less free space than
//! 1.5 × `max_message_size`, MAIL FROM gets `452 4.3.1` (RFC 3463: mail system full) and the
//! session goes on; nothing already accepted is affected.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Memory one transaction may hold while it receives content.
pub const PER_TRANSACTION: usize = 2 * crate::body::SPILL_AT + 64 * 1024;

/// Gauge: octets reserved by transactions in progress.
pub const BUDGET_USED: &str = "postcore_memory_budget_used_bytes";

/// The process-wide budget.
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
    disk: Mutex<(Instant, u64)>,
    data_dir: PathBuf,
}

/// A transaction's share of the budget; returned on drop.
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: usize,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.used.fetch_sub(self.bytes, Ordering::SeqCst);
        metrics::gauge!(BUDGET_USED).decrement(self.bytes as f64);
    }
}

/// Why a transaction may not start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shortage {
    /// The memory budget is spent.
    Memory,
    /// Too little free disk space.
    Disk,
}

/// The budget when the setting is 0: an eighth of the machine's memory, at most 1 GiB.
pub fn default_limit() -> usize {
    // SAFETY: sysconf has no preconditions.
    let (pages, size) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    let ram = if pages > 0 && size > 0 {
        (pages as u64).saturating_mul(size as u64)
    } else {
        1 << 30
    };
    usize::try_from((ram / 8).min(1 << 30)).unwrap_or(1 << 30)
}

impl MemoryBudget {
    /// A budget of `limit_mb` MiB (0: [`default_limit`]) for the data directory `data_dir`.
    pub fn new(limit_mb: u64, data_dir: &Path) -> Arc<MemoryBudget> {
        let limit = if limit_mb == 0 {
            default_limit()
        } else {
            usize::try_from(limit_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
        };
        Arc::new(MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
            disk: Mutex::new((Instant::now() - Duration::from_secs(10), u64::MAX)),
            data_dir: data_dir.to_path_buf(),
        })
    }

    /// The budget in octets.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Reserves one transaction's share, if the budget and the disk allow a new one for
    /// messages up to `max_message_size` octets.
    pub fn start_transaction(
        self: &Arc<Self>,
        max_message_size: u64,
    ) -> Result<Reservation, Shortage> {
        if self.free_disk() < max_message_size.saturating_mul(3) / 2 {
            return Err(Shortage::Disk);
        }
        let bytes = PER_TRANSACTION;
        let prev = self.used.fetch_add(bytes, Ordering::SeqCst);
        if prev + bytes > self.limit {
            self.used.fetch_sub(bytes, Ordering::SeqCst);
            return Err(Shortage::Memory);
        }
        metrics::gauge!(BUDGET_USED).increment(bytes as f64);
        Ok(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    /// Free octets for unprivileged writers on the data directory's file system, looked up
    /// at most once a second.
    fn free_disk(&self) -> u64 {
        let mut d = self.disk.lock().unwrap_or_else(|p| p.into_inner());
        if d.0.elapsed() >= Duration::from_secs(1) {
            *d = (
                Instant::now(),
                statvfs_free(&self.data_dir).unwrap_or(u64::MAX),
            );
        }
        d.1
    }
}

fn statvfs_free(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: an all-zero statvfs is a valid value for the call to fill in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path and `st` a valid out-pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_are_bounded_and_given_back() {
        let dir = tempfile::tempdir().unwrap();
        let b = MemoryBudget::new(1, dir.path());
        let a = b.start_transaction(1 << 20).expect("first fits");
        assert_eq!(b.start_transaction(1 << 20).err(), Some(Shortage::Memory));
        drop(a);
        assert!(b.start_transaction(1 << 20).is_ok());
        // A disk far too small for the message size limit.
        assert_eq!(
            b.start_transaction(u64::MAX / 2).err(),
            Some(Shortage::Disk)
        );
        assert!(default_limit() <= 1 << 30 && default_limit() > 0);
    }
}
