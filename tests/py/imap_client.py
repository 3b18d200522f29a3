#!/usr/bin/env python3
"""IMAP client cases for the postcore tests, using Python's imaplib (real client code).

usage:
  imap_client.py starttls PORT USER PASS
      plain connection: checks LOGINDISABLED and the refused LOGIN, then STARTTLS, LOGIN,
      SELECT INBOX; prints "OK <exists>" or "ERR <what>".
  imap_client.py implicit PORT USER PASS
      IMAPS (port 993 style): LOGIN, SELECT INBOX; prints "OK <exists>".
  imap_client.py inject PORT
      sends "STARTTLS" with a LOGIN pipelined behind it in the same packet; after the
      handshake, prints the first line seen inside TLS (the LOGIN must not have run).
  imap_client.py session PORT USER PASS
      a mail-client session in plain text (the server allows it): LIST, SELECT, FETCH
      headers, SEARCH, APPEND, COPY, STORE, EXPUNGE, LOGOUT; prints one line per step.
  imap_client.py move PORT USER PASS FROM TO UIDS
      UID MOVE (RFC 6851) of UIDS (an IMAP set, e.g. 1:3) from mailbox FROM to TO, as a
      client's "move to Junk" does; prints "MOVE <status> <text>".
  imap_client.py keyword PORT USER PASS MAILBOX UIDS KEYWORD
      UID STORE +FLAGS (KEYWORD), as Thunderbird marks junk ($Junk) or not ($NotJunk);
      prints "STORE <status>".
"""
import imaplib
import socket
import ssl
import sys


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE  # the test server uses its self-signed certificate
    return c


def starttls(port, user, pw):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    if "LOGINDISABLED" not in m.capabilities:
        print("ERR no LOGINDISABLED before TLS")
        return
    try:
        m.login(user, pw)
        print("ERR login accepted in plain text")
        return
    except imaplib.IMAP4.error as e:
        if "PRIVACYREQUIRED" not in str(e):
            print(f"ERR unexpected refusal {e}")
            return
    m.starttls(ssl_context=ctx())
    if "LOGINDISABLED" in m.capabilities:
        print("ERR LOGINDISABLED after TLS")
        return
    m.login(user, pw)
    typ, d = m.select("INBOX")
    print(f"OK {d[0].decode()}")
    m.logout()


def implicit(port, user, pw):
    m = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ctx(), timeout=20)
    m.login(user, pw)
    typ, d = m.select("INBOX")
    print(f"OK {d[0].decode()}")
    m.logout()


def inject(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"a STARTTLS\r\nb LOGIN alice alice-pw\r\n")
    line = f.readline()
    if not line.startswith(b"a OK"):
        print(f"ERR {line!r}")
        return
    t = ctx().wrap_socket(s, server_hostname="mx.example.test")
    t.sendall(b"c NOOP\r\n")
    tf = t.makefile("rb")
    print(tf.readline().decode().strip())


def session(port, user, pw):
    m = imaplib.IMAP4("127.0.0.1", port, timeout=20)
    m.login(user, pw)
    typ, boxes = m.list()
    print("LIST", typ, len(boxes))
    typ, d = m.select("INBOX")
    print("SELECT", typ, d[0].decode())
    typ, d = m.fetch("1:*", "(UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM SUBJECT DATE)])")
    subjects = sorted(
        x[1].decode().split("Subject: ")[1].split("\r\n")[0] for x in d if isinstance(x, tuple)
    )
    print("FETCH", typ, "|".join(subjects))
    typ, d = m.uid("SEARCH", None, "BODY", '"zanzibar"')
    print("SEARCH", typ, d[0].decode())
    typ, d = m.append("Sent", "(\\Seen)", None, b"Subject: sent by imaplib\r\n\r\nhello\r\n")
    print("APPEND", typ, d[0].decode())
    typ, d = m.copy("1", "Archive")
    print("COPY", typ, d[0].decode())
    typ, d = m.store("1", "+FLAGS", "(\\Deleted)")
    print("STORE", typ, d[0].decode())
    typ, d = m.expunge()
    print("EXPUNGE", typ, d)
    typ, d = m.status("Archive", "(MESSAGES UNSEEN)")
    print("STATUS", typ, d[0].decode())
    m.logout()
    print("LOGOUT ok")


def move(port, user, pw, src, dst, uids):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, pw)
    typ, _ = m.select(src)
    assert typ == "OK", typ
    typ, d = m.uid("MOVE", uids, dst)
    print("MOVE", typ, d[0].decode() if d and d[0] else "")
    m.logout()


def keyword(port, user, pw, mailbox, uids, kw):
    m = imaplib.IMAP4("127.0.0.1", port)
    m.login(user, pw)
    typ, _ = m.select(mailbox)
    assert typ == "OK", typ
    typ, d = m.uid("STORE", uids, "+FLAGS", f"({kw})")
    print("STORE", typ, d)
    m.logout()


cmd = sys.argv[1]
if cmd == "move":
    move(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
elif cmd == "keyword":
    keyword(int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7])
elif cmd == "starttls":
    starttls(int(sys.argv[2]), sys.argv[3], sys.argv[4])
elif cmd == "implicit":
    implicit(int(sys.argv[2]), sys.argv[3], sys.argv[4])
elif cmd == "inject":
    inject(int(sys.argv[2]))
elif cmd == "session":
    session(int(sys.argv[2]), sys.argv[3], sys.argv[4])
else:
    sys.exit(f"unknown command {cmd}")
