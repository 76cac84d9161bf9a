"""A faulty front for an MCP server, for the `mcp-compare` and federation tests: forwards each
POST to the upstream after `--delay-ms`, but answers every `--fail-every`-th request itself with a
503. Forwards the upstream's Mcp-Session-Id. Prints `listening on URL` when ready.

Control, for tests that make an instance flap: `POST /fault` with `{"fail": true}` answers every
request (and `GET /health`) with a 503 until `{"fail": false}`; `GET /stats` counts the POSTs seen, by JSON-RPC method
and by tool (`{"posts": N, "methods": {...}, "tools": {...}}`).
Run: python fault_proxy.py UPSTREAM_URL [--delay-ms N] [--fail-every N] [--port N]
"""

from __future__ import annotations

import argparse
import collections
import itertools
import json
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
    failing = False
    methods: collections.Counter = collections.Counter()
    tools: collections.Counter = collections.Counter()

    def log_message(self, *args) -> None:  # keep stderr quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/health":
            self.reply(503 if self.failing else 200, "text/plain", b"failing\n" if self.failing else b"ok\n")
            return
        if self.path != "/stats":
            self.reply(404, "text/plain", b"not found\n")
            return
        with self.lock:
            stats = {"posts": sum(self.methods.values()), "methods": dict(self.methods), "tools": dict(self.tools)}
        self.reply(200, "application/json", json.dumps(stats).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path == "/fault":
            Handler.failing = bool(json.loads(body or b"{}").get("fail"))
            self.reply(204, "text/plain", b"")
            return
        try:
            message = json.loads(body)
        except ValueError:
            message = {}
        with self.lock:
            n = next(self.counter)
            if isinstance(message, dict):
                self.methods[str(message.get("method"))] += 1
                if message.get("method") == "tools/call":
                    self.tools[str((message.get("params") or {}).get("name"))] += 1
        time.sleep(self.delay)
        if self.failing or (self.fail_every and n % self.fail_every == 0):
            self.reply(503, "text/plain", b"injected fault\n")
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        request = urllib.request.Request(self.upstream, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                self.reply(answer.status, answer.headers.get("content-type", ""), answer.read(), answer.headers.get("mcp-session-id"))
        except urllib.error.HTTPError as error:
            self.reply(error.code, error.headers.get("content-type", ""), error.read(), error.headers.get("mcp-session-id"))

    def reply(self, status: int, content_type: str, body: bytes, session: str | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        if session:
            self.send_header("mcp-session-id", session)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("upstream")
    parser.add_argument("--delay-ms", type=float, default=0)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--port", type=int, default=0, help="listen on this port (default: any free one)")
    args = parser.parse_args()
    Handler.upstream, Handler.delay, Handler.fail_every = args.upstream, args.delay_ms / 1000, args.fail_every
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/mcp", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
