#!/usr/bin/env python3
"""A webhook receiver for spec/sandbox/webhooks_spec.lua: listens on
127.0.0.1 (a free port, written to PORTFILE), appends one JSON line per
POST to LOGFILE ({"t", "path", "headers", "body"}: the raw body as text),
and answers the status that STATUSFILE holds (200 when it is missing or
empty; "500" or "500 3": 500 for the next 3 requests, then 200).
With --tls CERT KEY it speaks https.

usage: webhook_receiver.py PORTFILE LOGFILE STATUSFILE [--tls CERT KEY]
"""
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTFILE, LOGFILE, STATUSFILE = sys.argv[1:4]
LOCK = threading.Lock()


def next_status():
    try:
        with open(STATUSFILE) as f:
            words = f.read().split()
    except OSError:
        return 200
    if not words:
        return 200
    status = int(words[0])
    if len(words) > 1:
        left = int(words[1]) - 1
        with open(STATUSFILE, "w") as f:
            f.write("%d %d" % (status, left) if left > 0 else "")
    return status


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # the reply's two writes (head, body) without Nagle's wait for an ACK
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        with LOCK:
            status = next_status()
            rec = {"t": time.time(), "path": self.path, "status": status,
                   "headers": {k.lower(): v for k, v in self.headers.items()},
                   "body": body.decode("utf-8", "replace")}
            with open(LOGFILE, "a") as f:
                f.write(json.dumps(rec) + "\n")
        out = b"ok\n"
        self.send_response(status)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    if "--tls" in sys.argv:
        i = sys.argv.index("--tls")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(sys.argv[i + 1], sys.argv[i + 2])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    tmp = PORTFILE + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, PORTFILE)
    srv.serve_forever()


if __name__ == "__main__":
    main()
