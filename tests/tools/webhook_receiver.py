#!/usr/bin/env python3
"""A webhook receiver for the alerting lab test.

Usage: webhook_receiver.py ADDRESS PORT OUTPUT

Every POST body must be JSON; it is appended to OUTPUT as one line (the
request path is added under "_path") and answered with 200. A body that is
not JSON is answered with 400 and recorded as {"_invalid": "<text>"} so the
test sees it. GET answers 200 "ok" (readiness).
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


def main() -> None:
    address, port, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._answer(200, b"ok\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            try:
                record = json.loads(body)
                record["_path"] = self.path
                status = 200
            except (ValueError, TypeError):
                record = {"_invalid": body.decode("utf-8", "replace"), "_path": self.path}
                status = 400
            with open(output, "a", encoding="utf-8") as out:
                out.write(json.dumps(record, sort_keys=True) + "\n")
            self._answer(status, b"")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args) -> None:
            pass

    HTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    main()
