#!/usr/bin/env python3
"""Server-side IMAP timings with a thin client, so the client's own parsing (imaplib spends
~10 µs per FETCH response in Python; see imap_client_floor.py) does not hide the server's work.

The client sends one command and receives with large recv() calls until the buffer ends with
the tagged completion line; nothing is parsed per line while the clock runs. After the clock
stops, the whole reply is parsed (literals skipped by their counts) to check that the tagged
line found really is the end of the reply and to count the untagged responses. Alternates the
two servers; prints medians and ratios.

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


def check(reply, tag):
    """Parse a complete reply (outside the timed region): returns the number of untagged
    responses; raises if the tagged line is not the last line or is not OK."""
    pos, untagged = 0, 0
    while True:
        eol = reply.index(b"\r\n", pos)
        line = reply[pos:eol]
        pos = eol + 2
        if line.startswith(tag + b" "):
            if pos != len(reply) or not line.startswith(tag + b" OK"):
                raise RuntimeError(f"bad end of reply: {line[:80]!r} at {pos}/{len(reply)}")
            return untagged
        if line.startswith(b"* "):
            untagged += 1
        while line.endswith(b"}"):
            size = int(line[line.rindex(b"{") + 1:-1].rstrip(b"+"))
            pos += size
            eol = reply.index(b"\r\n", pos)
            line = reply[pos:eol]
            pos = eol + 2


def session(port, user):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    greeting = b""
    while not greeting.endswith(b"\r\n"):
        greeting += s.recv(4096)
    n = [0]

    buf = bytearray(64 << 20)  # received into in place: no allocation while the clock runs
    view = memoryview(buf)

    def cmd(c):
        n[0] += 1
        tag = b"r%d" % n[0]
        end = b"\r\n" + tag + b" "
        s.sendall(tag + b" " + c + b"\r\n")
        buf[0:2] = b"\r\n"
        have = 2
        while True:
            got = s.recv_into(view[have:])
            if not got:
                raise RuntimeError("closed")
            have += got
            if buf[have - 2:have] == b"\r\n":
                i = buf.rfind(end, max(0, have - got - 300), have)
                if i >= 0 and buf.find(b"\r\n", i + 2, have) == have - 2:
                    return have, tag

    def reply(have):
        return bytes(view[2:have])

    for c in (f"LOGIN {user} {pw}".encode(), b"SELECT INBOX"):
        have, tag = cmd(c)
        check(reply(have), tag)
    return cmd, reply


res = {(w, q): [] for w, _, _ in servers for q in queries}
counts = {}
for r in range(rounds):
    for who, port, user in servers:
        cmd, reply = session(port, user)
        for q, c in queries.items():
            t = time.perf_counter()
            have, tag = cmd(c)
            res[(who, q)].append(time.perf_counter() - t)
            r = reply(have)
            counts[(who, q)] = (check(r, tag), len(r))
for q in queries:
    d = statistics.median(res[("dovecot", q)]) * 1000
    p = statistics.median(res[("postcore", q)]) * 1000
    (dn, db), (pn, pb) = counts[("dovecot", q)], counts[("postcore", q)]
    print(f"RESULT raw {q}: dovecot {d:.2f} ms, postcore {p:.2f} ms, speed ratio {d / p:.2f}x "
          f"(median of {rounds}; replies: dovecot {dn} untagged/{db} bytes, postcore {pn}/{pb})")
