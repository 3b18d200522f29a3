#!/usr/bin/env python3
"""THREAD and SORT over one threaded mailbox, postcore against Dovecot (issue 13).

Generates N messages in conversations (replies carry References and In-Reply-To, "Re:"
subjects; a few replies lost their References, as some clients send them; equal dates
happen), APPENDs the same messages to a fresh mailbox on both servers, checks that both give
the same THREAD answers, then times each command on both, alternating which server goes
first per round, after one untimed warm-up round each. Prints per command the median time,
the spread (min-max) and the ratio Dovecot/postcore (above 1: postcore faster).

usage: thread_bench.py HOST:PORT:USER:PASS(postcore) HOST:PORT:USER:PASS(dovecot)
                       [MESSAGES] [ROUNDS] [SEED]
"""
import random
import socket
import statistics
import sys
import time

COMMANDS = [
    "THREAD REFERENCES UTF-8 ALL",
    "THREAD REFS UTF-8 ALL",
    "THREAD ORDEREDSUBJECT UTF-8 ALL",
    "SORT (SUBJECT) UTF-8 ALL",
    "SORT (DATE) UTF-8 ALL",
    "SORT (FROM) UTF-8 ALL",
    "SORT (REVERSE ARRIVAL) UTF-8 ALL",
    "SORT (DISPLAYFROM) UTF-8 ALL",
]
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
WORDS = ("plan budget lunch report meeting review release draft notes invoice trip "
         "schedule backup server office project update question idea").split()


def corpus(n, seed):
    rnd = random.Random(seed)
    msgs, threads = [], []
    t = 1_780_000_000
    for i in range(n):
        t += rnd.randint(0, 900)
        date = time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(t))
        internal = time.strftime("%d-%b-%Y %H:%M:%S +0000", time.gmtime(t))
        mid = f"<{i}.{seed}@bench.test>"
        sender = f"User {rnd.randint(0, 49)} <u{rnd.randint(0, 49)}@bench.test>"
        if not threads or rnd.random() < 0.25:
            subject = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(2, 5))).capitalize()
            threads.append((subject, [(mid, [])]))
            head = f"Subject: {subject}\r\n"
        else:
            subject, members = rnd.choice(threads[-200:])
            pid, prefs = rnd.choice(members)
            refs = (prefs + [pid])[-10:]
            members.append((mid, refs))
            head = f"Subject: Re: {subject}\r\n"
            if rnd.random() < 0.97:
                head += f"References: {' '.join(refs)}\r\nIn-Reply-To: {pid}\r\n"
        head += f"Message-ID: {mid}\r\nFrom: {sender}\r\nTo: list@bench.test\r\nDate: {date}\r\n"
        body = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(20, 120)))
        msgs.append((internal, (head + "\r\n" + body + "\r\n").encode()))
    return msgs


class Client:
    """A thin IMAP client: one command at a time, the whole answer read as bytes."""

    def __init__(self, spec):
        host, port, self.user, self.pw = spec.split(":")
        self.s = socket.create_connection((host, int(port)))
        self.buf = b""
        self.n = 0
        self.line()
        self.cmd(f"LOGIN {self.user} {self.pw}")

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise RuntimeError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, c, literal=None):
        self.n += 1
        tag = f"b{self.n}".encode()
        if literal is None:
            self.s.sendall(tag + b" " + c.encode() + b"\r\n")
        else:
            self.s.sendall(tag + b" " + c.encode() + f" {{{len(literal)}+}}\r\n".encode()
                           + literal + b"\r\n")
        out = []
        while True:
            line = self.line()
            if line.startswith(tag + b" "):
                if not line.startswith(tag + b" OK"):
                    raise RuntimeError(f"{c}: {line!r}")
                return out
            out.append(line)


def seed(spec, msgs, box):
    c = Client(spec)
    try:
        c.cmd(f"DELETE {box}")
    except RuntimeError:
        pass
    c.cmd(f"CREATE {box}")
    for internal, data in msgs:
        c.cmd(f'APPEND {box} () "{internal}"', data)
    c.cmd(f"SELECT {box}")
    return c


def answer(c, command):
    return [l for l in c.cmd(command) if l.startswith((b"* THREAD", b"* SORT"))]


def main():
    pc_spec, dc_spec = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    sd = int(sys.argv[5]) if len(sys.argv) > 5 else 3
    msgs = corpus(n, sd)
    box = "threadbench"
    t0 = time.perf_counter()
    servers = {"postcore": seed(pc_spec, msgs, box)}
    t1 = time.perf_counter()
    servers["dovecot"] = seed(dc_spec, msgs, box)
    t2 = time.perf_counter()
    print(f"seeded {n} messages: postcore {t1 - t0:.1f} s, dovecot {t2 - t1:.1f} s (APPEND one by one)")
    for command in COMMANDS:
        a, b = answer(servers["postcore"], command), answer(servers["dovecot"], command)
        same = "same answer" if a == b else "ANSWERS DIFFER"
        print(f"check {command}: {same} ({len(a[0]) if a else 0} octets)")
    times = {(s, c): [] for s in servers for c in COMMANDS}
    for r in range(rounds + 1):
        order = ["postcore", "dovecot"] if r % 2 == 0 else ["dovecot", "postcore"]
        for s in order:
            for command in COMMANDS:
                t = time.perf_counter()
                answer(servers[s], command)
                if r > 0:
                    times[(s, command)].append(time.perf_counter() - t)
    print(f"### {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {n} messages, "
          f"{rounds} rounds after 1 warm-up, loadavg {open('/proc/loadavg').read().strip()}")
    for command in COMMANDS:
        p, d = times[("postcore", command)], times[("dovecot", command)]
        mp, md = statistics.median(p), statistics.median(d)
        print(f"RESULT {command}: postcore {mp * 1000:.1f} ms ({min(p) * 1000:.1f}-{max(p) * 1000:.1f}), "
              f"dovecot {md * 1000:.1f} ms ({min(d) * 1000:.1f}-{max(d) * 1000:.1f}), "
              f"ratio {md / mp:.2f}x")


if __name__ == "__main__":
    main()
