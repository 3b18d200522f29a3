#!/usr/bin/python3
"""DKIM signing for tests, with dkimpy (an independent implementation).

  dkim_sign.py keygen               prints "<private seed base64> <public key base64>" (Ed25519)
  dkim_sign.py sign FILE DOMAIN SELECTOR PRIVATE
                                    prints FILE signed (ed25519-sha256, relaxed/relaxed)
"""
import base64
import sys

import dkim
import nacl.signing


def main():
    if sys.argv[1] == "keygen":
        key = nacl.signing.SigningKey.generate()
        print(base64.b64encode(bytes(key)).decode(),
              base64.b64encode(bytes(key.verify_key)).decode())
        return
    _, _, path, domain, selector, private = sys.argv[:6]
    msg = open(path, "rb").read()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), private.encode(),
                    signature_algorithm=b"ed25519-sha256",
                    canonicalize=(b"relaxed", b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
    sys.stdout.buffer.write(sig + msg)


main()
