#!/usr/bin/env python3
"""How long imaplib itself needs for `FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS
(FROM SUBJECT DATE)])`, the header step of ../shared/bench/anchors/imap_bench.py, when the
server costs nothing: the reply of each real server is captured once, then replayed from memory
(one sendall of prebuilt bytes, in a separate process) to imaplib. That time is a floor for
any server measured through imaplib. The same imaplib call against the live servers runs in
the same rounds, alternating, for comparison.

usage: imap_client_floor.py ROUNDS A_PORT A_USER B_PORT B_USER PASS
"""
import imaplib, multiprocessing, re, socket, statistics, sys, time

rounds = int(sys.argv[1])
servers = [("dovecot", int(sys.argv[2]), sys.argv[3]), ("postcore", int(sys.argv[4]), sys.argv[5])]
pw = sys.argv[6]
FETCH_ITEMS = "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])"
imaplib._MAXLINE = 10_000_000


def recv_reply(s, tag):
    end = b"\r\n" + tag + b" "
    buf = bytearray(b"\r\n")
    while True:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise RuntimeError("closed")
        buf += chunk
        if buf.endswith(b"\r\n"):
            i = buf.rfind(end)
            if i >= 0 and buf.find(b"\r\n", i + 2) == len(buf) - 2:
                return bytes(buf[2:])


def capture(port, user):
    """The untagged part of the SELECT and FETCH replies of a live server."""
    s = socket.create_connection(("127.0.0.1", port))
    recv_reply(s, b"*")  # greeting ("* OK ...")
    out = []
    for i, c in enumerate([f"LOGIN {user} {pw}", "SELECT INBOX", f"FETCH 1:* {FETCH_ITEMS}", "LOGOUT"]):
        tag = b"c%d" % i
        s.sendall(tag + b" " + c.encode() + b"\r\n")
        if c == "LOGOUT":
            break
        reply = recv_reply(s, tag)
        out.append(reply[: reply.rindex(b"\r\n", 0, len(reply) - 2) + 2] if reply.count(b"\r\n") > 1 else b"")
    s.close()
    return out[1], out[2]


def replay_server(listener, select_untagged, fetch_untagged):
    """Answers imaplib from memory; the FETCH reply is prebuilt before the command arrives."""
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = conn.makefile("rb")
        conn.sendall(b"* OK [CAPABILITY IMAP4rev1] replay\r\n")
        prebuilt = {}
        while True:
            line = f.readline()
            if not line:
                break
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            verb = rest.split(b" ", 1)[0].upper()
            if verb == b"FETCH":
                conn.sendall(prebuilt.pop(tag))
            elif verb == b"SELECT":
                # prebuild the next FETCH reply (imaplib's tags count up by one)
                m = re.fullmatch(rb"(\D*)(\d+)", tag)
                if m:
                    nxt = m.group(1) + str(int(m.group(2)) + 1).encode()
                    prebuilt[nxt] = fetch_untagged + nxt + b" OK FETCH completed\r\n"
                conn.sendall(select_untagged + tag + b" OK [READ-WRITE] SELECT completed\r\n")
            elif verb == b"LOGOUT":
                conn.sendall(b"* BYE\r\n" + tag + b" OK LOGOUT completed\r\n")
                break
            else:
                conn.sendall(tag + b" OK done\r\n")
        conn.close()


def imaplib_fetch(port, user):
    M = imaplib.IMAP4("127.0.0.1", port)
    M.login(user, pw)
    M.select("INBOX")
    t = time.perf_counter()
    typ, d = M.fetch("1:*", FETCH_ITEMS)
    dt = time.perf_counter() - t
    n = sum(1 for x in d if isinstance(x, tuple))
    M.logout()
    return dt, n


if __name__ == "__main__":
    replays = []
    for who, port, user in servers:
        sel, fetch = capture(port, user)
        ls = socket.socket()
        ls.bind(("127.0.0.1", 0))
        ls.listen(8)
        p = multiprocessing.Process(target=replay_server, args=(ls, sel, fetch), daemon=True)
        p.start()
        replays.append((f"replay of {who}'s reply", ls.getsockname()[1], user, fetch.count(b" FETCH (")))
    targets = [(w, p, u) for w, p, u in servers] + [(w, p, u) for w, p, u, _ in replays]
    res = {w: [] for w, _, _ in targets}
    for r in range(rounds):
        for who, port, user in targets:
            dt, n = imaplib_fetch(port, user)
            res[who].append(dt)
            assert n >= 5000 or n == max(x[3] for x in replays), (who, n)
    med = {w: statistics.median(v) * 1000 for w, v in res.items()}
    for w in med:
        print(f"imaplib FETCH headers, {w}: median {med[w]:.1f} ms (of {rounds})")
    dv = med["dovecot"]
    floor = min(med[w] for w, _, _, _ in replays)
    print(f"RESULT imaplib floor: {floor:.1f} ms with a server that costs nothing; dovecot live {dv:.1f} ms; "
          f"half of dovecot = {dv / 2:.1f} ms; floor / dovecot = {floor / dv:.2f}; postcore live {med['postcore']:.1f} ms "
          f"(ratio {dv / med['postcore']:.2f}x)")
