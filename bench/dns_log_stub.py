#!/usr/bin/env python3
"""The anchors' NXDOMAIN stub (../shared/bench/anchors/dns_stub.py: every question answered
at once with NXDOMAIN, no records, no SOA) that also writes each question it answers, one
line per question: `UNIX-TIME NAME TYPE` (TYPE as a number: 1 A, 12 PTR, 15 MX, 16 TXT, 28 AAAA).

usage: dns_log_stub.py PORT LOGFILE        (binds 127.0.0.1, UDP)
       dns_log_stub.py --count LOGFILE FROM TO   questions asked between two UNIX times,
                                                 by type and name suffix
"""
import collections
import socket
import sys
import time


def question(q):
    """The question's name, type, and the question section's bytes."""
    i, labels = 12, []
    while i < len(q) and q[i] != 0:
        labels.append(q[i + 1:i + 1 + q[i]].decode("latin1"))
        i += q[i] + 1
    qtype = int.from_bytes(q[i + 1:i + 3], "big")
    return ".".join(labels), qtype, q[12:i + 5]


def serve(port, path):
    out = open(path, "a", buffering=1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    while True:
        q, addr = s.recvfrom(4096)
        if len(q) < 12:
            continue
        # QR=1, opcode and RD copied, RA=1, RCODE 3 (NXDOMAIN); one question, nothing else.
        flags = 0x8000 | (q[2] & 0x79) << 8 | 0x80 | 3
        name, qtype, sect = question(q)
        s.sendto(q[:2] + flags.to_bytes(2, "big") + b"\x00\x01\x00\x00\x00\x00\x00\x00" + sect, addr)
        out.write(f"{time.time():.3f} {name} {qtype}\n")


def count(path, t0, t1):
    c = collections.Counter()
    n = 0
    for line in open(path):
        t, name, qtype = line.split()
        if t0 <= float(t) <= t1:
            n += 1
            c[(".".join(name.split(".")[-2:]), qtype)] += 1
    top = ", ".join(f"{v} *.{k[0]}/{k[1]}" for k, v in c.most_common(6))
    print(f"{n} questions ({top})")


if __name__ == "__main__":
    if sys.argv[1] == "--count":
        count(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    else:
        serve(int(sys.argv[1]), sys.argv[2])
