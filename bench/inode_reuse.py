#!/usr/bin/env python3
"""Cost of creating a file right after a mass delete, with no mail server involved.

On ext4 without a journal, the inode allocator avoids reusing inodes freed in the last 60 s
(recently_deleted() in fs/ext4/ialloc.c) and checks every free inode it passes against that
rule, on every file creation. After N files are deleted, each new file in the same block group
walks past up to N of them. The SMTP throughput benchmark (WIPE=1) deletes each server's
Maildirs one second before its run, so this cost lands on every delivered message.

usage: bench/inode_reuse.py DIR [COUNT] [SETTLE_SECONDS]
  DIR must not exist yet; it is created and removed. COUNT 5000, SETTLE 65 by default.
Prints microseconds per file creation: fresh, 1 s after deleting COUNT files, and SETTLE s
after deleting them (with a sync before the wait, as the benchmarks do).
"""

import os
import shutil
import sys
import time


def create(d: str, tag: str, n: int) -> float:
    """Creates n empty files; returns microseconds per file."""
    t = time.perf_counter()
    for i in range(n):
        os.close(os.open(f"{d}/{tag}{i}", os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    return (time.perf_counter() - t) / n * 1e6


def delete(d: str, tag: str, n: int) -> None:
    for i in range(n):
        os.unlink(f"{d}/{tag}{i}")


def main() -> None:
    d = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    settle = float(sys.argv[3]) if len(sys.argv) > 3 else 65.0
    os.makedirs(d)
    try:
        fresh = create(d, "a", n)
        delete(d, "a", n)
        os.sync()
        time.sleep(1)
        soon = create(d, "b", n)
        delete(d, "b", n)
        os.sync()
        time.sleep(settle)
        settled = create(d, "c", n)
    finally:
        shutil.rmtree(d)
    print(f"{d}: {n} files, µs per creation: fresh {fresh:.1f}, 1 s after deleting {n}: "
          f"{soon:.1f} ({soon / fresh:.0f}x), {settle:.0f} s after: {settled:.1f}")


if __name__ == "__main__":
    main()
