#!/usr/bin/env python3
"""A scriptable SMTP server for outbound-delivery tests (a real peer over TCP, stdlib only).

usage: smtp_peer.py HOST PORT OUTDIR MODE [USER:PASS]
  MODE accept      accept everything
       tempfail:N  answer 451 to the first N RCPTs, then accept
       reject      answer 550 5.1.1 to every RCPT
       hang        greet, then never answer EHLO
       close       close the connection after the EHLO reply
       garbage     answer EHLO with garbage
  USER:PASS        require AUTH PLAIN with these credentials before MAIL
Each accepted message is written to OUTDIR/<n>.eml; OUTDIR/log gets one line per command.
Prints "ready" when listening. Stops on SIGTERM.
"""
import base64
import os
import socket
import socketserver
import sys
import threading
import time

host, port, outdir, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
creds = sys.argv[5] if len(sys.argv) > 5 else None
os.makedirs(outdir, exist_ok=True)
lock = threading.Lock()
state = {"tempfails": int(mode.split(":")[1]) if mode.startswith("tempfail:") else 0, "n": 0}


def log(line):
    with lock, open(os.path.join(outdir, "log"), "a") as f:
        f.write(line + "\n")


class Handler(socketserver.StreamRequestHandler):
    def send(self, s):
        self.wfile.write((s + "\r\n").encode())
        self.wfile.flush()

    def handle(self):
        self.send("220 peer.test ESMTP test peer")
        authed = creds is None
        rcpts, sender = [], None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            log("C: " + cmd)
            verb = cmd[:4].upper()
            if verb in ("EHLO", "HELO"):
                if mode == "hang":
                    time.sleep(3600)
                if mode == "garbage":
                    self.wfile.write(b"this is not smtp\r\n")
                    self.wfile.flush()
                    continue
                self.send("250-peer.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SIZE 50000000\r\n250-SMTPUTF8\r\n250 AUTH PLAIN")
                if mode == "close":
                    return
            elif verb == "AUTH":
                parts = cmd.split()
                got = base64.b64decode(parts[2]).split(b"\0") if len(parts) > 2 else []
                if creds and len(got) == 3 and (got[1] + b":" + got[2]).decode() == creds:
                    authed = True
                    self.send("235 2.7.0 ok")
                else:
                    self.send("535 5.7.8 bad credentials")
            elif verb == "MAIL":
                if not authed:
                    self.send("530 5.7.0 authentication required")
                    continue
                sender, rcpts = cmd[10:], []
                self.send("250 2.1.0 ok")
            elif verb == "RCPT":
                with lock:
                    tf = state["tempfails"] > 0
                    if tf:
                        state["tempfails"] -= 1
                if mode == "reject":
                    self.send("550 5.1.1 <%s>: no such user here" % cmd[8:].strip("<>"))
                elif tf:
                    self.send("451 4.3.0 try again later")
                else:
                    rcpts.append(cmd[8:])
                    self.send("250 2.1.5 ok")
            elif verb == "DATA":
                if not rcpts:
                    self.send("554 5.5.1 no valid recipients")
                    continue
                self.send("354 go ahead")
                data = b""
                while True:
                    l = self.rfile.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b".") else l
                with lock:
                    state["n"] += 1
                    n = state["n"]
                with open(os.path.join(outdir, "%d.eml" % n), "wb") as f:
                    f.write(data)
                log("MSG %d from=%s rcpts=%s" % (n, sender, ",".join(rcpts)))
                self.send("250 2.0.0 queued as PEER%d" % n)
            elif verb == "RSET":
                rcpts = []
                self.send("250 ok")
            elif verb == "QUIT":
                self.send("221 bye")
                return
            else:
                self.send("250 ok")


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


srv = Server((host, port), Handler)
print("ready", flush=True)
srv.serve_forever()
