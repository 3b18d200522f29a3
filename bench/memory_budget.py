#!/usr/bin/env python3
"""Full-size run of the memory-budget test (issue "Hold under attack"): SESSIONS slow DATA
transfers of SIZE-octet messages from 20 source addresses (127.0.0.2-21) into a running
postcore with a small budget; samples the server's RSS while they are in flight, counts MAIL
FROMs refused with 452 4.3.1, then completes every admitted transfer and checks that each
acknowledged message is in the Maildir whole.

usage: bench/memory_budget.py SMTP_PORT PID MAILDIR [SESSIONS] [SIZE_MB]
  (bench/memory_budget.sh starts the server with memory_budget_mb = 64 and runs this)
"""
import os, socket, sys, time

port, pid, maildir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sessions = int(sys.argv[4]) if len(sys.argv) > 4 else 100
size = (int(sys.argv[5]) if len(sys.argv) > 5 else 25) << 20


def rss():
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS"):
            return int(l.split()[1]) // 1024


def reply(f):
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return l


line = b"x" * 78 + b"\r\n"
chunk = line * (1 << 20 // len(line))  # about 1 MiB
base = rss()
conns, refused, peak = [], 0, base
for i in range(sessions):
    s = socket.socket()
    s.bind((f"127.0.0.{2 + i % 20}", 0))
    s.connect(("127.0.0.1", port))
    f = s.makefile("rb")
    reply(f)
    s.sendall(b"EHLO budget.test\r\n"); reply(f)
    s.sendall(b"MAIL FROM:<b@remote.test>\r\n")
    r = reply(f)
    if r.startswith(b"452 4.3.1"):
        refused += 1
        s.close()
        continue
    s.sendall(b"RCPT TO:<user1@example.test>\r\n"); reply(f)
    s.sendall(b"DATA\r\n"); reply(f)
    s.sendall(b"Subject: budget %d\r\nX-Budget: %d\r\n\r\n" % (i, i))
    conns.append([s, f, 0])
# Slow transfers: each session sends its message a megabyte at a time, round robin.
t0 = time.time()
while any(c[2] < size for c in conns):
    for c in conns:
        if c[2] < size:
            c[0].sendall(chunk)
            c[2] += len(chunk)
    peak = max(peak, rss())
ok = 0
for c in conns:
    c[0].sendall(b".\r\n")
    if reply(c[1]).startswith(b"250"):
        ok += 1
    c[0].close()
secs = time.time() - t0
time.sleep(1)
files = 0
for sub in ("new", "cur"):
    d = os.path.join(maildir, sub)
    if os.path.isdir(d):
        for n in os.listdir(d):
            if os.path.getsize(os.path.join(d, n)) >= size:
                files += 1
print(f"{sessions} sessions from 20 addresses, {size >> 20} MiB messages: {len(conns)} admitted, "
      f"{refused} refused with 452 4.3.1; RSS {base} MiB before, peak {peak} MiB while "
      f"{len(conns)} x {size >> 20} MiB were in flight ({len(conns) * size >> 20} MiB of mail); "
      f"{ok} acknowledged, {files} whole in the Maildir; transfers took {secs:.0f} s")
