#!/usr/bin/env python3
"""Lone-session latency: how long a single SMTP session waits for its 250 after the end of
data, against how long the disk takes to make 4 KiB durable (write + fdatasync on the same
file system). Batching must not hold a lone session's 250 much beyond its own durability.

usage: bench/latency.py HOST:PORT RCPT DIR [COUNT]
  DIR: a directory on the file system postcore's data directory is on (for the fdatasync probe)
Prints the medians and 90th percentiles of both and the difference of the medians.
"""
import os, socket, statistics, sys, time

host, port = sys.argv[1].rsplit(":", 1)
rcpt, probe_dir = sys.argv[2], sys.argv[3]
count = int(sys.argv[4]) if len(sys.argv) > 4 else 500


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))]


def fsync_probe(n):
    path = os.path.join(probe_dir, ".latency-probe")
    out = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        block = b"x" * 4096
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, block)
            os.fdatasync(fd)
            out.append(time.perf_counter() - t)
    finally:
        os.close(fd)
        os.unlink(path)
    return out


def smtp_probe(n):
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")

    def reply():
        while True:
            line = f.readline()
            if line[3:4] != b"-":
                return line

    reply()
    s.sendall(b"EHLO latency.test\r\n")
    reply()
    body = b"Subject: latency\r\n\r\n" + (b"y" * 70 + b"\r\n") * 56
    out = []
    for _ in range(n):
        s.sendall(b"MAIL FROM:<l@remote.test>\r\nRCPT TO:<" + rcpt.encode() + b">\r\nDATA\r\n")
        reply(); reply(); reply()
        s.sendall(body)
        t = time.perf_counter()
        s.sendall(b".\r\n")
        r = reply()
        out.append(time.perf_counter() - t)
        assert r.startswith(b"250"), r
    s.sendall(b"QUIT\r\n")
    s.close()
    return out


d = fsync_probe(count)
m = smtp_probe(count)
d2 = fsync_probe(count)
d = d + d2
ms = lambda x: f"{x * 1000:.3f} ms"
print(f"disk: write 4 KiB + fdatasync: median {ms(statistics.median(d))}, p90 {ms(pct(d, 0.9))} ({len(d)} samples, before and after)")
print(f"postcore: end of data -> 250, one session: median {ms(statistics.median(m))}, p90 {ms(pct(m, 0.9))} ({len(m)} messages)")
print(f"difference of the medians: {ms(statistics.median(m) - statistics.median(d))}")
