"""A faulty front for an MCP server, for the `mcp-compare` tests: forwards each POST to the
upstream after `--delay-ms`, but answers every `--fail-every`-th request itself with a 503.
Prints `listening on URL` when ready. Run: python fault_proxy.py UPSTREAM_URL [--delay-ms N] [--fail-every N]
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = ""
    delay = 0.0
    fail_every = 0
    counter = itertools.count(1)
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # keep stderr quiet
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.lock:
            n = next(self.counter)
        time.sleep(self.delay)
        if self.fail_every and n % self.fail_every == 0:
            self.reply(503, "text/plain", b"injected fault\n")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(self.upstream, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                self.reply(answer.status, answer.headers.get("content-type", ""), answer.read())
        except urllib.error.HTTPError as error:
            self.reply(error.code, error.headers.get("content-type", ""), error.read())

    def reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("upstream")
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--fail-every", type=int, default=0)
    args = parser.parse_args()
    Handler.upstream, Handler.delay, Handler.fail_every = args.upstream, args.delay_ms / 1000, args.fail_every
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/mcp", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
