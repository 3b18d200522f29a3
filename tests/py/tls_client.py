#!/usr/bin/env python3
"""TLS client cases for the postcore tests, using Python's smtplib and ssl (real client code).

usage:
  tls_client.py send PORT starttls|implicit USER PASS FROM TO [TO...]
      authenticates (if USER is not '-') and sends one message; prints the server's reply to
      the data as "OK <code> <text>" or the refusal as "ERR <stage> <code> <text>".
  tls_client.py inject PORT
      sends "STARTTLS" with a command pipelined behind it in the same packet, completes the
      handshake and prints the first reply seen inside TLS.
  tls_client.py authlogin PORT USER PASS
      AUTH LOGIN over STARTTLS; prints "OK" or "ERR <code> <text>".
"""
import smtplib
import socket
import ssl
import sys


def ctx():
    c = ssl.create_default_context()
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE  # the test server uses its self-signed certificate
    return c


def connect(port, mode):
    if mode == "implicit":
        s = smtplib.SMTP_SSL("127.0.0.1", port, context=ctx(), timeout=20)
        s.ehlo("client.test")
    else:
        s = smtplib.SMTP("127.0.0.1", port, timeout=20)
        s.ehlo("client.test")
        s.starttls(context=ctx())
        s.ehlo("client.test")
    return s


def send(port, mode, user, password, sender, rcpts):
    s = connect(port, mode)
    if user != "-":
        try:
            s.login(user, password)
        except smtplib.SMTPAuthenticationError as e:
            print("ERR auth", e.smtp_code, e.smtp_error.decode())
            return 1
    msg = "From: %s\r\nTo: %s\r\nSubject: tls test\r\n\r\nsent over TLS\r\n" % (sender, rcpts[0])
    try:
        code, text = s.mail(sender)
        if code != 250:
            print("ERR mail", code, text.decode())
            return 1
        for r in rcpts:
            code, text = s.rcpt(r)
            if code not in (250, 251):
                print("ERR rcpt", code, text.decode())
                return 1
        code, text = s.data(msg)
        print("OK", code, text.decode())
        s.quit()
        return 0
    except smtplib.SMTPResponseException as e:
        print("ERR data", e.smtp_code, e.smtp_error.decode())
        return 1


def read_reply(f):
    lines = []
    while True:
        line = f.readline().decode()
        if not line:
            break
        lines.append(line.rstrip("\r\n"))
        if len(line) < 4 or line[3] != "-":
            break
    return lines


def inject(port):
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    f = raw.makefile("rb")
    read_reply(f)
    raw.sendall(b"EHLO client.test\r\n")
    read_reply(f)
    raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@evil.test>\r\n")
    print("starttls:", read_reply(f)[0])
    tls = ctx().wrap_socket(raw, server_hostname="mx.example.test")
    tf = tls.makefile("rb")
    tls.sendall(b"NOOP\r\n")
    print("first-in-tls:", read_reply(tf)[0])
    tls.sendall(b"MAIL FROM:<after@client.test>\r\n")
    print("mail-in-tls:", read_reply(tf)[0])
    return 0


def authlogin(port, user, password):
    s = connect(port, "starttls")
    s.user, s.password = user, password
    try:
        s.auth("LOGIN", s.auth_login, initial_response_ok=False)
        print("OK")
        return 0
    except smtplib.SMTPAuthenticationError as e:
        print("ERR", e.smtp_code, e.smtp_error.decode())
        return 1


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "send":
        sys.exit(send(int(a[1]), a[2], a[3], a[4], a[5], a[6:]))
    if a[0] == "inject":
        sys.exit(inject(int(a[1])))
    if a[0] == "authlogin":
        sys.exit(authlogin(int(a[1]), a[2], a[3]))
    sys.exit(2)
