//! Message content as it arrives (DATA or BDAT): held in memory up to [`SPILL_AT`] octets, then
//! streamed to an unnamed file (`O_TMPFILE`) under `<data_dir>/spool/incoming` with io_uring
//! writes, so a large body never sits whole on the heap however many sessions send one. At the
//! end of data the content is read through a memory map (memmap2): parsing and scanning touch
//! file pages the kernel can drop, and the final message (our header fields on top) is
//! assembled in a second unnamed file by `copy_file_range`, not in memory. Unnamed files
//! vanish by themselves when the session ends or the process dies: nothing to clean up.

use bytes::Bytes;
use postcore_protocol::smtp::DataReceiver;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

/// Content beyond this many octets goes to disk as it arrives.
pub const SPILL_AT: usize = 256 * 1024;

/// The content of one transaction while it arrives.
pub struct BodySpool {
    dir: PathBuf,
    file: Option<(std::fs::File, tokio_uring::fs::File)>,
    written: u64,
    failed: Option<io::Error>,
}

/// The received content, in memory or in its file.
pub struct Content {
    /// Every octet of it.
    pub bytes: Bytes,
    /// The file it is mapped from, when it was spilled.
    file: Option<std::fs::File>,
    dir: PathBuf,
}

fn unnamed_file(dir: &Path) -> io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
}

fn map(file: &std::fs::File) -> io::Result<Bytes> {
    if file.metadata()?.len() == 0 {
        return Ok(Bytes::new());
    }
    // SAFETY: the file is unnamed and private to this session: nothing else can change it
    // while it is mapped.
    let m = unsafe { memmap2::Mmap::map(file)? };
    Ok(Bytes::from_owner(m))
}

impl BodySpool {
    /// A spool that spills into `dir` (`<data_dir>/spool/incoming`).
    pub fn new(dir: PathBuf) -> BodySpool {
        BodySpool {
            dir,
            file: None,
            written: 0,
            failed: None,
        }
    }

    /// Moves the receiver's output to disk once it holds more than [`SPILL_AT`] octets. A
    /// write error is kept (the transfer goes on to its end, then [`BodySpool::finish`]
    /// reports it) and later output is dropped.
    pub async fn absorb(&mut self, rx: &mut DataReceiver) {
        if rx.buffered() < SPILL_AT {
            return;
        }
        let chunk = rx.take_output();
        if self.failed.is_some() {
            return;
        }
        if let Err(e) = self.append(chunk).await {
            tracing::warn!(dir = %self.dir.display(), "message content to disk: {e}");
            self.failed = Some(e);
        }
    }

    async fn append(&mut self, chunk: Vec<u8>) -> io::Result<()> {
        if self.file.is_none() {
            let std = unnamed_file(&self.dir)?;
            let ring = tokio_uring::fs::File::from_std(std.try_clone()?);
            self.file = Some((std, ring));
        }
        let Some((_, ring)) = &self.file else {
            return Err(io::Error::other("spill file missing"));
        };
        let len = chunk.len() as u64;
        let (res, _) = ring.write_all_at(chunk, self.written).await;
        res?;
        self.written += len;
        Ok(())
    }

    /// True once content went to disk.
    pub fn spilled(&self) -> bool {
        self.file.is_some()
    }

    /// The whole content: what the receiver still holds, after what went to disk.
    pub async fn finish(mut self, mut rx: DataReceiver) -> io::Result<Content> {
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        if self.file.is_none() {
            return Ok(Content {
                bytes: Bytes::from(rx.into_content()),
                file: None,
                dir: self.dir,
            });
        }
        let rest = rx.take_output();
        if !rest.is_empty() {
            self.append(rest).await?;
        }
        let Some((std, ring)) = self.file.take() else {
            return Err(io::Error::other("spill file missing"));
        };
        ring.close().await?;
        Ok(Content {
            bytes: map(&std)?,
            file: Some(std),
            dir: self.dir,
        })
    }
}

impl Content {
    /// Content held in memory (tests, and messages that never reach the threshold).
    pub fn in_memory(bytes: Bytes) -> Content {
        Content {
            bytes,
            file: None,
            dir: PathBuf::new(),
        }
    }

    /// The directory for spilled content.
    pub fn incoming_dir(data_dir: &Path) -> PathBuf {
        data_dir.join("spool").join("incoming")
    }

    /// `head` followed by the content from octet `from` on, as one message: in memory for a
    /// small message, else in a new unnamed file filled by `copy_file_range` (the kernel
    /// copies the pages; nothing passes through the heap) and mapped.
    pub fn assemble(&self, head: &[&[u8]], from: usize) -> io::Result<Content> {
        let from = from.min(self.bytes.len());
        let head_len: usize = head.iter().map(|h| h.len()).sum();
        let src = match &self.file {
            Some(f) if self.bytes.len() - from > SPILL_AT => f,
            _ => {
                let mut v = Vec::with_capacity(head_len + self.bytes.len() - from);
                for h in head {
                    v.extend_from_slice(h);
                }
                v.extend_from_slice(&self.bytes[from..]);
                return Ok(Content {
                    bytes: Bytes::from(v),
                    file: None,
                    dir: self.dir.clone(),
                });
            }
        };
        use std::io::Write;
        let mut out = unnamed_file(&self.dir)?;
        for h in head {
            out.write_all(h)?;
        }
        let mut src_off = from as libc::loff_t;
        let mut dst_off = head_len as libc::loff_t;
        let mut left = self.bytes.len() - from;
        while left > 0 {
            // SAFETY: both descriptors are open files; the offsets are valid pointers.
            let n = unsafe {
                libc::copy_file_range(
                    src.as_raw_fd(),
                    &mut src_off,
                    out.as_raw_fd(),
                    &mut dst_off,
                    left,
                    0,
                )
            };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            if n == 0 {
                return Err(io::Error::other("copy_file_range: source ended early"));
            }
            left -= n as usize;
        }
        Ok(Content {
            bytes: map(&out)?,
            file: Some(out),
            dir: self.dir.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A body larger than the threshold goes to a file as it arrives (the receiver never
    /// holds more than the threshold), comes back whole through the map, and is assembled
    /// with new header fields on top without a copy through memory.
    #[test]
    fn large_bodies_stream_to_disk_and_come_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let incoming = dir.path().join("incoming");
        let line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstu\r\n";
        let mut expect = b"Subject: big\r\n\r\n".to_vec();
        tokio_uring::start(async {
            let mut spool = BodySpool::new(incoming.clone());
            let mut rx = DataReceiver::for_data(8 << 20);
            rx.ingest(b"Subject: big\r\n\r\n");
            for _ in 0..20_000 {
                rx.ingest(line);
                expect.extend_from_slice(line);
                assert!(rx.buffered() < SPILL_AT + line.len());
                spool.absorb(&mut rx).await;
            }
            rx.ingest(b".\r\n");
            assert!(spool.spilled());
            let content = spool.finish(rx).await.unwrap();
            assert_eq!(content.bytes.len(), expect.len());
            assert!(content.bytes == expect[..]);
            let msg = content
                .assemble(&[b"Received: x\r\n", b"Subject: big\r\n"], 14)
                .unwrap()
                .bytes;
            assert!(msg.starts_with(b"Received: x\r\nSubject: big\r\n\r\n0123"));
            assert_eq!(msg.len(), expect.len() + 13);
            assert!(msg.ends_with(line));
        });
        // Unnamed files leave nothing behind.
        assert_eq!(std::fs::read_dir(&incoming).unwrap().count(), 0);
    }

    #[test]
    fn small_bodies_stay_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        tokio_uring::start(async {
            let mut spool = BodySpool::new(dir.path().join("incoming"));
            let mut rx = DataReceiver::for_data(1 << 20);
            rx.ingest(b"Subject: s\r\n\r\nhi\r\n.\r\n");
            spool.absorb(&mut rx).await;
            assert!(!spool.spilled());
            let c = spool.finish(rx).await.unwrap();
            assert_eq!(&c.bytes[..], b"Subject: s\r\n\r\nhi\r\n");
            assert_eq!(
                &c.assemble(&[b"X: 1\r\n"], 0).unwrap().bytes[..],
                b"X: 1\r\nSubject: s\r\n\r\nhi\r\n"
            );
        });
    }
}
