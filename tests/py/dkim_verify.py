#!/usr/bin/python3
"""Independent DKIM verification with dkimpy (Debian's python3-dkim).

usage: dkim_verify.py MESSAGE_FILE "TXT-RECORD"
The TXT record is served for every DNS lookup dkimpy makes (no network).
Prints VALID or INVALID with dkimpy's log, exits 0 only when every signature verifies.
"""
import logging
import sys

import dkim

msg = open(sys.argv[1], "rb").read()
record = sys.argv[2].encode()
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)


def dnsfunc(name, timeout=5):
    return record


d = dkim.DKIM(msg, logger=logging.getLogger("dkim"))
sigs = [h for h in d.headers if h[0].lower() == b"dkim-signature"]
ok = len(sigs) > 0 and all(d.verify(idx=i, dnsfunc=dnsfunc) for i in range(len(sigs)))
print("VALID" if ok else "INVALID", len(sigs))
sys.exit(0 if ok else 1)
