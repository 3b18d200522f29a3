"""ManageSieve STARTTLS command injection (RFC 5804 §2.2): a command pipelined after
STARTTLS in plain text must be dropped by the server, not run inside TLS. Then the
capabilities come again over TLS, a login works, and the injected command has no answer.
usage: managesieve_starttls.py PORT USER PASSWORD"""
import base64
import socket
import ssl
import sys

port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
s = socket.create_connection(("127.0.0.1", port), timeout=10)
f = s.makefile("rb")


def read_until_ok(fh):
    lines = []
    while True:
        line = fh.readline()
        if not line:
            raise SystemExit("connection closed: %r" % lines)
        lines.append(line)
        if line.startswith((b"OK", b"NO", b"BYE")):
            return lines


greeting = read_until_ok(f)
assert any(b'"STARTTLS"' in l for l in greeting), greeting
# The injected LOGOUT would end the session inside TLS if the server kept it.
s.sendall(b"STARTTLS\r\nLOGOUT\r\n")
reply = f.readline()
assert reply.startswith(b"OK"), reply
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname="localhost")
tf = t.makefile("rb")
caps = read_until_ok(tf)
assert not any(b'"STARTTLS"' in l for l in caps), caps
assert any(b'"SASL" "PLAIN LOGIN"' in l for l in caps), caps
creds = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
t.sendall(('AUTHENTICATE "PLAIN" "%s"\r\n' % creds).encode())
r = read_until_ok(tf)
assert r[-1].startswith(b"OK"), r
t.sendall(b"LISTSCRIPTS\r\n")
r = read_until_ok(tf)
assert r[-1].startswith(b"OK"), r
t.sendall(b"LOGOUT\r\n")
print("ok")
