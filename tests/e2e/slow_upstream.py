"""A tiny MCP-shaped upstream for the proxy tests, behind the API Gateway stand-in.

It answers `ping` at once; `tools/call` of `slow` with an SSE stream (a progress notification
first, then the result after `--delay` seconds, so a test can see whether the proxy streams
events as they arrive); and `tools/call` of `pretty` with a large pretty-printed JSON answer sent
in chunks. Run: python slow_upstream.py PORT [--delay S]
"""

from __future__ import annotations

import argparse
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    delay = 1.5

    def log_message(self, *args) -> None:  # keep stderr quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        method, rid = body.get("method"), body.get("id")
        if method == "tools/call" and body.get("params", {}).get("name") == "slow":
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            progress = {"jsonrpc": "2.0", "method": "notifications/progress",
                        "params": {"progressToken": "slow", "progress": 1, "message": "started"}}
            self.chunk(f"data: {json.dumps(progress)}\n\n")
            time.sleep(self.delay)
            result = {"jsonrpc": "2.0", "id": rid, "result": {"content": [{"type": "text", "text": "done"}]}}
            self.chunk(f"data: {json.dumps(result)}\n\n")
            self.chunk("")
            return
        if method == "tools/call" and body.get("params", {}).get("name") == "pretty":
            # A large, pretty-printed answer: raw newlines between tokens, sent in many chunks.
            rows = [{"row": i, "text": f"line {i}\nwith an escaped newline"} for i in range(20000)]
            answer = json.dumps({"jsonrpc": "2.0", "id": rid, "result": {"structuredContent": {"rows": rows}}}, indent=2).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            for start in range(0, len(answer), 65536):
                self.chunk(answer[start:start + 65536].decode("latin-1"), raw=answer[start:start + 65536])
            self.chunk("")
            return
        answer = json.dumps({"jsonrpc": "2.0", "id": rid, "result": {}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def chunk(self, text: str, raw: bytes | None = None) -> None:
        data = raw if raw is not None else text.encode()
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=1.5)
    args = parser.parse_args()
    Handler.delay = args.delay
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()
