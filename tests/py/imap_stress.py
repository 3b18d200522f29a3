#!/usr/bin/env python3
"""Several IMAP clients APPEND, STORE, EXPUNGE and FETCH on one mailbox at once; each keeps
its own model of the mailbox (sequence numbers to UIDs, flags, the keywords FLAGS announced)
from the untagged responses it receives, and every response is checked against that model.
Written independently of postcore's own IMAP code: its own line and literal reader.

Checks (RFC 9051 §7.4, §7.5, §5.2 and §7.3.5 as conformance testers read them):
  * EXISTS never shrinks the mailbox; EXPUNGE names an existing sequence number;
  * a FETCH names an existing sequence number, and its UID is the one the model has there;
  * UIDs ascend with sequence numbers;
  * a keyword in a FETCH was announced by an untagged FLAGS first;
  * once the others are quiet (after NOOP), a full `UID FETCH 1:* (FLAGS)` covers exactly
    the model's messages;
  * at the end all clients agree on the mailbox (after NOOP).

usage: imap_stress.py PORT USER PASSWORD [CLIENTS] [SECONDS] [SEED]
Prints one summary line; exits 1 with the first inconsistency.
"""
import random
import re
import socket
import sys
import threading
import time

FETCH_RE = re.compile(rb"^\* (\d+) FETCH \((.*)\)$", re.S)


class Inconsistent(Exception):
    pass


class Client:
    def __init__(self, name, port, user, pw):
        self.name = name
        self.s = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""
        self.n = 0
        self.uids = []          # sequence number - 1 -> UID (None until learned)
        self.flags = {}         # UID -> set of flags
        self.known_keywords = set()
        self.stats = {"responses": 0, "fetch": 0, "expunge": 0, "exists": 0}
        self.read_response()    # greeting
        self.command(f"LOGIN {user} {pw}")
        self.command("SELECT INBOX")

    def fail(self, what, line=b""):
        raise Inconsistent(f"{self.name}: {what}: {line[:300]!r} (model: {len(self.uids)} messages)")

    def read_line(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise Inconsistent(f"{self.name}: connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read_response(self):
        """One response, literals included (as raw octets in place)."""
        line = self.read_line()
        while True:
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return line
            n = int(m.group(1))
            while len(self.buf) < n:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise Inconsistent(f"{self.name}: closed in a literal")
                self.buf += chunk
            line += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            line += self.read_line()

    def command(self, cmd, literal=None, may_fail=False):
        self.n += 1
        tag = f"{self.name}{self.n}".encode()
        data = tag + b" " + cmd.encode()
        if literal is not None:
            data += b" {%d+}\r\n" % len(literal) + literal
        self.s.sendall(data + b"\r\n")
        fetched = []
        while True:
            line = self.read_response()
            if line.startswith(tag + b" "):
                status = line[len(tag) + 1:]
                # A STORE to a message another session expunged may get NO (RFC 9051
                # §7.4.1 leaves it to the server); BAD never.
                if not status.startswith(b"OK") and not (may_fail and status.startswith(b"NO")):
                    self.fail(f"{cmd} failed", status)
                return fetched
            if line.startswith(b"* "):
                f = self.untagged(line)
                if f is not None:
                    fetched.append(f)

    def untagged(self, line):
        self.stats["responses"] += 1
        parts = line.split(b" ", 3)
        if len(parts) >= 3 and parts[1].isdigit():
            n, kind = int(parts[1]), parts[2].upper()
            if kind == b"EXISTS":
                self.stats["exists"] += 1
                if n < len(self.uids):
                    self.fail("EXISTS shrank the mailbox", line)
                self.uids.extend([None] * (n - len(self.uids)))
            elif kind == b"EXPUNGE":
                self.stats["expunge"] += 1
                if not 1 <= n <= len(self.uids):
                    self.fail("EXPUNGE of a sequence number that does not exist", line)
                uid = self.uids.pop(n - 1)
                self.flags.pop(uid, None)
            elif kind == b"FETCH":
                self.stats["fetch"] += 1
                return self.fetch(n, line)
            return None
        if parts[1] == b"FLAGS":
            inner = line[line.index(b"(") + 1: line.rindex(b")")]
            self.known_keywords = {f for f in inner.split() if not f.startswith(b"\\")}
        return None

    def fetch(self, n, line):
        if not 1 <= n <= len(self.uids):
            self.fail("FETCH of a sequence number that does not exist", line)
        m = FETCH_RE.match(line)
        if not m:
            self.fail("unreadable FETCH", line)
        body = m.group(2)
        um = re.search(rb"\bUID (\d+)", body)
        uid = self.uids[n - 1]
        if um:
            got = int(um.group(1))
            if uid is not None and uid != got:
                self.fail(f"FETCH says UID {got} where the model has {uid}", line)
            self.uids[n - 1] = uid = got
            prev = self.uids[n - 2] if n >= 2 else None
            nxt = self.uids[n] if n < len(self.uids) else None
            if (prev is not None and prev >= got) or (nxt is not None and nxt <= got):
                self.fail("UIDs do not ascend with sequence numbers", line)
        fm = re.search(rb"\bFLAGS \(([^)]*)\)", body)
        if fm:
            flags = set(fm.group(1).split())
            for f in flags:
                if not f.startswith(b"\\") and f not in self.known_keywords:
                    self.fail(f"keyword {f!r} not announced by FLAGS", line)
            if uid is not None:
                self.flags[uid] = flags
        return (n, uid)

    def full_check(self, quiet=False):
        """UID FETCH 1:* (FLAGS). While others still write, a message another session has
        expunged and this one has not been told of yet may be left out (RFC 9051 §7.4.1:
        no EXPUNGE during FETCH; Dovecot omits it, as may we); once quiet (after NOOP), the
        answer and the model must be the same mailbox."""
        fetched = self.command("UID FETCH 1:* (FLAGS)")
        # A message may come twice: the answer and an unsolicited flag update (§7.5.2).
        seen = sorted({n for n, _ in fetched})
        if quiet:
            if seen != list(range(1, len(self.uids) + 1)):
                self.fail(f"full FETCH covered {len(seen)} of {len(self.uids)} messages")
            if None in self.uids:
                self.fail("a message without UID after a full FETCH")


def worker(c, deadline, rnd, errors):
    try:
        while time.time() < deadline and not errors:
            action = rnd.random()
            count = len(c.uids)
            if action < 0.30 or count < 3:
                body = f"Subject: from {c.name} {rnd.random()}\r\n\r\nhello\r\n".encode()
                c.command("APPEND INBOX (\\Seen)", body)
                c.command("NOOP")
            elif action < 0.55:
                n = rnd.randint(1, count)
                kw = rnd.choice(["$Work", "$Todo", f"$k{rnd.randint(0, 9)}", "\\Flagged"])
                c.command(f"STORE {n} +FLAGS ({kw})", may_fail=True)
            elif action < 0.70:
                n = rnd.randint(1, count)
                c.command(f"STORE {n} +FLAGS.SILENT (\\Deleted)", may_fail=True)
                c.command("EXPUNGE")
            elif action < 0.90:
                c.full_check()
            else:
                c.command("NOOP")
    except Inconsistent as e:
        errors.append(str(e))
    except Exception as e:  # noqa: BLE001 - any failure is reported as the test's failure
        errors.append(f"{c.name}: {type(e).__name__}: {e}")


def main():
    port, user, pw = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    nclients = int(sys.argv[4]) if len(sys.argv) > 4 else 4
    seconds = float(sys.argv[5]) if len(sys.argv) > 5 else 20
    seed = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    clients = [Client(chr(ord("a") + i), port, user, pw) for i in range(nclients)]
    errors = []
    deadline = time.time() + seconds
    threads = [threading.Thread(target=worker, args=(c, deadline, random.Random(seed * 100 + i), errors))
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        print("INCONSISTENT:", errors[0])
        sys.exit(1)
    # Quiet now: every client, after NOOP and a full FETCH, sees the same mailbox.
    views = []
    for c in clients:
        c.command("NOOP")
        c.full_check(quiet=True)
        views.append(list(c.uids))
    if any(v != views[0] for v in views):
        print("INCONSISTENT: the clients disagree:", [len(v) for v in views])
        sys.exit(1)
    total = {k: sum(c.stats[k] for c in clients) for k in clients[0].stats}
    print(f"consistent: {nclients} clients, {seconds:.0f} s, {len(views[0])} messages at the end, "
          f"{total['responses']} untagged responses ({total['fetch']} FETCH, "
          f"{total['expunge']} EXPUNGE, {total['exists']} EXISTS)")


if __name__ == "__main__":
    main()
