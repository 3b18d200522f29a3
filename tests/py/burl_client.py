#!/usr/bin/env python3
"""A submission client that builds a message from BDAT and BURL chunks (RFC 3030, RFC 4468).

usage: burl_client.py PORT USER PASSWORD FROM TO CHUNK...
  CHUNK is "bdat:<text>" (\\r\\n written as the two characters \\r\\n) or "burl:<url>";
  the last chunk carries LAST.
Connects with implicit TLS (the server's certificate is self-signed), prints the BURL
EHLO keyword before and after AUTH, then one line per reply: "<step> <code> <text>".
"""
import smtplib
import ssl
import sys


def main():
    port, user, password, sender, rcpt = sys.argv[1:6]
    chunks = sys.argv[6:]
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = smtplib.SMTP_SSL("127.0.0.1", int(port), context=ctx, timeout=20)
    s.ehlo("client.test")
    print("EHLO-before", s.esmtp_features.get("burl", "(none)") if s.has_extn("burl") else "(absent)")
    code, text = s.login(user, password)
    print("AUTH", code)
    s.ehlo("client.test")
    print("EHLO-after", s.esmtp_features.get("burl", "(none)") if s.has_extn("burl") else "(absent)")
    code, text = s.docmd("MAIL", f"FROM:<{sender}>")
    print("MAIL", code)
    code, text = s.docmd("RCPT", f"TO:<{rcpt}>")
    print("RCPT", code)
    for i, c in enumerate(chunks):
        last = " LAST" if i == len(chunks) - 1 else ""
        kind, arg = c.split(":", 1)
        if kind == "bdat":
            data = arg.replace("\\r\\n", "\r\n").encode()
            s.send(f"BDAT {len(data)}{last}\r\n".encode() + data)
            code, text = s.getreply()
        else:
            code, text = s.docmd("BURL", arg + last)
        print(kind.upper(), code, text.decode(errors="replace").replace("\n", " "))
        if code >= 400:
            break
    s.quit()


if __name__ == "__main__":
    main()
