#!/usr/bin/env python3
"""Server-side IMAP timings with a thin client (raw socket, literals skipped unparsed), so the
client's own parsing (imaplib's is ~25 ms for 5,000 FETCH responses) does not hide the
server's work. Alternates the two servers; prints medians and ratios.

usage: imap_raw.py ROUNDS A_PORT A_USER B_PORT B_USER PASS
"""
import socket, statistics, sys, time

rounds = int(sys.argv[1])
servers = [("dovecot", int(sys.argv[2]), sys.argv[3]), ("postcore", int(sys.argv[4]), sys.argv[5])]
pw = sys.argv[6]
queries = {
    "select": b"SELECT INBOX",
    "fetch_hdr": b"FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])",
    "search_body": b'UID SEARCH BODY "zanzibarneedle"',
    "fetch_body": b"FETCH 1:500 (BODY.PEEK[])",
}

def session(port, user):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb", buffering=1 << 20)
    f.readline()
    n = [0]
    def cmd(c):
        n[0] += 1
        tag = b"r%d" % n[0]
        s.sendall(tag + b" " + c + b"\r\n")
        while True:
            l = f.readline()
            if not l:
                raise RuntimeError("closed")
            if l.startswith(tag + b" "):
                return l
            if l.endswith(b"}\r\n"):
                f.read(int(l[l.rindex(b"{") + 1:-3]))
    cmd(f"LOGIN {user} {pw}".encode())
    cmd(b"SELECT INBOX")
    return cmd

res = {(w, q): [] for w, _, _ in servers for q in queries}
for r in range(rounds):
    for who, port, user in servers:
        cmd = session(port, user)
        for q, c in queries.items():
            t = time.perf_counter()
            cmd(c)
            res[(who, q)].append(time.perf_counter() - t)
for q in queries:
    d = statistics.median(res[("dovecot", q)]) * 1000
    p = statistics.median(res[("postcore", q)]) * 1000
    print(f"RESULT raw {q}: dovecot {d:.2f} ms, postcore {p:.2f} ms, speed ratio {d / p:.2f}x (median of {rounds})")
