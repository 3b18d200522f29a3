#!/usr/bin/env python3
"""Provision a running postcore like the anchor's Postfix (../shared/bench/anchors/setup.sh):
domain example.test, users user0..user9 and bench, and the addresses smtp-source -N
generates ("<seq>u@example.test") mapped onto user<last digit>, as the anchor's regexp map does.

usage: setup_postcore.py ADMIN_HOST:PORT TOKEN [COUNT] [IMAP_PORT]
With IMAP_PORT, every user's INBOX is then opened once over IMAP (LOGIN, SELECT), as an
active user's is: from then on each delivery also updates the mailbox index and the
full-text index, which is the case the benchmarks must hold in.
"""
import http.client
import json
import sys

host, port = sys.argv[1].rsplit(":", 1)
token = sys.argv[2]
count = int(sys.argv[3]) if len(sys.argv) > 3 else 5000
imap_port = int(sys.argv[4]) if len(sys.argv) > 4 else None
conn = http.client.HTTPConnection(host, int(port))


def call(method, path, body=None):
    conn.request(method, "/api" + path, body=json.dumps(body) if body is not None else None,
                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, data


existing = {a["local"] for a in json.loads(call("GET", "/addresses")[1])}
call("POST", "/domains", {"name": "example.test"})
users = {u["login"] for u in json.loads(call("GET", "/users")[1])}
for u in ["user%d" % i for i in range(10)] + ["bench"]:
    if u not in users:
        call("POST", "/users", {"login": u, "password": "pass"})
for n in range(0, count + 1):
    local = "%du" % n
    if local not in existing:
        st, data = call("POST", "/addresses", {"local": local, "domain": "example.test",
                                                "destinations": ["user:user%d" % (n % 10)]})
        if st != 200:
            sys.exit("address %s: %s %s" % (local, st, data))
print("postcore provisioned: %d users, %d addresses" % (11, count + 1))
if imap_port:
    import imaplib
    call("PATCH", "/settings", {"allow_unencrypted": True})
    for u in ["user%d" % i for i in range(10)] + ["bench"]:
        m = imaplib.IMAP4(host, imap_port)
        m.login(u, "pass")
        m.select("INBOX")
        m.logout()
    print("every INBOX opened over IMAP (known to the mailbox index)")
