#!/usr/bin/env python3
"""A webhook receiver for the alert tests: records every POST as one JSON line.

Any GET answers 200 "ok" (readiness) and is not recorded.

Each line holds the request path, its headers (lower-case names), the raw
body, the body parsed as JSON (null when it is not JSON) and, with --secret,
whether the X-Transitwatch-Signature header is the HMAC-SHA256 of the raw
body under that secret. The line is written and flushed before the answer,
so a client that got its answer finds its line in the file.

  webhook_receiver.py --listen 127.0.0.1:9000 --out hooks.jsonl [--secret S]
                      [--port-file F] [--status 503,503,200] [--tls CERT KEY]

--listen with port 0 picks a free port and writes it to --port-file.
--status answers the first requests with these codes in turn, then 200.
"""

import argparse
import hashlib
import hmac
import json
import os
import ssl
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--secret")
    ap.add_argument("--port-file")
    ap.add_argument("--status", default="")
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = ap.parse_args()

    host, port = args.listen.rsplit(":", 1)
    statuses = [int(s) for s in args.status.split(",") if s]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            # Readiness: any GET answers 200 and is not recorded.
            reply = b"ok\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
            signature_valid = None
            if args.secret is not None:
                expected = "sha256=" + hmac.new(
                    args.secret.encode(), raw, hashlib.sha256
                ).hexdigest()
                given = self.headers.get("X-Transitwatch-Signature", "")
                signature_valid = hmac.compare_digest(expected, given)
            with lock:
                status = statuses.pop(0) if statuses else 200
                line = {
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "raw": raw.decode("utf-8", "replace"),
                    "body": body,
                    "signature_valid": signature_valid,
                    "answered": status,
                }
                with open(args.out, "a", encoding="utf-8") as f:
                    f.write(json.dumps(line) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
            reply = b"ok\n"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *_):
            pass

    server = ThreadingHTTPServer((host, int(port)), Handler)
    if args.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(str(server.server_address[1]))
        os.rename(tmp, args.port_file)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
