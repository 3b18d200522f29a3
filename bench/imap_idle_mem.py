#!/usr/bin/env python3
"""Memory of N idle IMAP connections (LOGIN, SELECT INBOX, IDLE), per connection.

usage: imap_idle_mem.py N HOST PORT USER PASS WHO
WHO = "dovecot" (PSS of every process whose executable path contains "dovecot")
      or "pid:<PID>" (PSS of that one process).
Prints PSS before, with N connections in IDLE, and the difference per connection.
Connections come from many 127.0.x.y source addresses (Dovecot's mail_max_userip_connections).
"""
import os, socket, sys, time

n, host, port, user, pw, who = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]

def pss_kb():
    pids = []
    if who.startswith("pid:"):
        pids = [who[4:]]
    else:
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    if who in os.readlink(f"/proc/{p}/exe"):
                        pids.append(p)
                except OSError:
                    pass
    total = 0
    for p in pids:
        try:
            for line in open(f"/proc/{p}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total, len(pids)

def read_until(f, tag):
    while True:
        l = f.readline()
        if not l:
            raise RuntimeError("closed")
        if l.startswith(tag):
            return l

before, nb = pss_kb()
conns = []
t0 = time.time()
for i in range(n):
    # 8 connections per loopback source address: Dovecot allows 10 per user and IP.
    k = i // 8
    src = f"127.0.{k // 250}.{2 + k % 250}"
    try:
        s = socket.create_connection((host, port), timeout=60, source_address=(src, 0))
        f = s.makefile("rb")
        f.readline()
        s.sendall(f'a LOGIN {user} {pw}\r\nb SELECT INBOX\r\nc IDLE\r\n'.encode())
        l = read_until(f, b"a ")
        if not l.startswith(b"a OK"):
            print(f"connection {i}: login refused: {l!r}"); break
        read_until(f, b"b ")
        read_until(f, b"+")
    except (OSError, RuntimeError) as e:
        print(f"connection {i}: {e}"); break
    conns.append((s, f))
time.sleep(3)
after, na = pss_kb()
per = (after - before) / max(len(conns), 1)
print(f"RESULT idle {who.split(':')[0]}: {len(conns)} IDLE connections in {time.time()-t0:.1f}s; "
      f"PSS {before/1024:.1f} MiB ({nb} procs) -> {after/1024:.1f} MiB ({na} procs); {per:.1f} KiB per connection")
for s, f in conns:
    try:
        s.sendall(b"DONE\r\nz LOGOUT\r\n")
        s.close()
    except OSError:
        pass
