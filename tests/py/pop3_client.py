#!/usr/bin/env python3
"""POP3 client cases with Python's poplib (a real client library).

usage: pop3_client.py session PORT stls|implicit|plain USER PASS
  logs in, prints STAT, LIST, UIDL, TOP 1 0, RETR 1, deletes message 1, QUITs; one JSON object.
       pop3_client.py plainlogin PORT USER PASS   USER/PASS without TLS; prints the error
       pop3_client.py hold PORT USER PASS SECONDS logs in over STLS and waits before QUIT
"""
import json
import poplib
import ssl
import sys
import time


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def connect(port, mode):
    if mode == "implicit":
        return poplib.POP3_SSL("127.0.0.1", port, context=ctx(), timeout=20)
    p = poplib.POP3("127.0.0.1", port, timeout=20)
    if mode == "stls":
        p.stls(context=ctx())
    return p


a = sys.argv[1:]
if a[0] == "session":
    p = connect(int(a[1]), a[2])
    out = {"capa": sorted(p.capa().keys())}
    p.user(a[3])
    p.pass_(a[4])
    out["stat"] = list(p.stat())
    out["list"] = [l.decode() for l in p.list()[1]]
    out["uidl"] = [l.decode() for l in p.uidl()[1]]
    out["top"] = [l.decode("utf-8", "replace") for l in p.top(1, 0)[1]]
    out["retr"] = [l.decode("utf-8", "replace") for l in p.retr(1)[1]]
    out["dele"] = p.dele(1).decode()
    out["quit"] = p.quit().decode()
    print(json.dumps(out))
elif a[0] == "plainlogin":
    p = connect(int(a[1]), "plain")
    try:
        p.user(a[2])
        p.pass_(a[3])
        print("LOGGED IN")
    except poplib.error_proto as e:
        print("ERR", e)
elif a[0] == "hold":
    p = connect(int(a[1]), "stls")
    p.user(a[2])
    print(p.pass_(a[3]).decode(), flush=True)
    time.sleep(float(a[4]))
    p.quit()
