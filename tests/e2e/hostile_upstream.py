"""A hostile MCP upstream for the proxy tests: a plain HTTP server (it ignores the SigV4
signature) that answers like a tiny MCP server, or misbehaves on demand.

The behaviour is chosen per request, by a JSON control in the request's params,
`"_meta": {"hostile": {"mode": "cut", "after": 100}}`, or for every request of a path,
`/hostile/<mode>/mcp?after=100`. Without either it answers normally: `ping` and `tools/call`
with a result, `initialize` and `tools/list` like an MCP server, notifications with 202.

Modes (arguments in brackets):
  normal            a proper answer
  cut               a JSON answer cut off after `after` bytes [after=64, framing=chunked|length|eof]
  stall             `after` bytes of a JSON answer, then silence for `seconds` [after=64, seconds=30]
  slow-headers      silence for `seconds` before the status line [seconds=30]
  reset             read the request, then reset the connection (RST) without a word
  not-json          200 application/json with a body that is not JSON
  html-status       an HTML error page [status=502]
  status            any status, content type, body and headers [status, content_type, body, headers={}]
  huge              a valid answer of about `bytes` bytes, pretty-printed [bytes=3000000]
  pretty            a small valid answer with raw newlines between tokens
  wrong-content-type  200 text/plain with a JSON body
  no-id             a response without an id
  other-id          a response for another id
  empty             200 application/json with an empty body
  accepted          202 with no body (for a request)
  sse               progress, then the answer, as an event stream [crlf=false]
  sse-endless       one event that never ends: `data: xxx...` without a blank line, up to `bytes` [bytes=67108864]
  sse-truncated     a progress event, then a clean end of stream without the answer
  sse-cut           a progress event and half an event, then the connection drops
  sse-stall         a progress event, then silence for `seconds` [seconds=30]
  sse-answer-then-break  the answer event, then the connection drops mid-stream
  sse-garbage       an event that is not JSON, then the answer
  sse-other-id      a response event for another id, then a clean end

GET /_stats returns how many requests each mode received; POST /_stats/reset zeroes them.
Run: python hostile_upstream.py [PORT]; prints `listening on URL` when ready.
"""

from __future__ import annotations

import json
import socket
import struct
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

# Upper bounds, so that a test that goes wrong cannot keep the server busy for long.
MAX_SLEEP = 60.0
MAX_BYTES = 512 * 1024 * 1024


class Hangup(Exception):
    """The handler dropped the connection on purpose."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counts: Counter = Counter()
    lock = threading.Lock()

    def log_message(self, *args) -> None:  # keep stderr quiet
        pass

    # ------------------------------------------------------------------ dispatch

    def do_GET(self) -> None:
        if urlparse(self.path).path == "/_stats":
            with self.lock:
                self.reply(200, "application/json", json.dumps({"requests": dict(self.counts)}).encode())
        else:
            self.reply(404, "text/plain", b"not found\n")

    def do_POST(self) -> None:
        url = urlparse(self.path)
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        if url.path == "/_stats/reset":
            with self.lock:
                self.counts.clear()
            self.reply(204, "text/plain", b"")
            return
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        control = {}
        if isinstance(body, dict) and isinstance(body.get("params"), dict):
            control = (body["params"].get("_meta") or {}).get("hostile") or {}
        parts = url.path.strip("/").split("/")
        if not control and len(parts) >= 2 and parts[0] == "hostile":
            control = {"mode": parts[1], **{k: v[0] for k, v in parse_qs(url.query).items()}}
        mode = control.get("mode", "normal")
        with self.lock:
            self.counts[mode] += 1
        handler = getattr(self, "mode_" + mode.replace("-", "_"), None)
        if handler is None:
            self.reply(400, "text/plain", f"unknown hostile mode {mode}\n".encode())
            return
        try:
            handler(body if isinstance(body, dict) else {}, control)
        except (Hangup, BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    # ------------------------------------------------------------------ helpers

    def reply(self, status: int, content_type: str | None, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("content-type", content_type)
        for name, value in (headers or {}).items():
            self.send_header(name, str(value))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start(self, status: int, content_type: str, framing: str = "chunked", length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        if framing == "chunked":
            self.send_header("transfer-encoding", "chunked")
        elif framing == "length":
            self.send_header("content-length", str(length))
        else:  # "eof": the body ends when the connection closes
            self.send_header("connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.flush()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def end_chunks(self) -> None:
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def hang_up(self, reset: bool = False) -> None:
        if reset:
            # SO_LINGER with a zero timeout: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        try:
            self.wfile.flush()
        except OSError:
            pass
        self.connection.close()
        raise Hangup

    def sleep(self, control: dict, default: float = 30.0) -> None:
        time.sleep(min(float(control.get("seconds", default)), MAX_SLEEP))

    @staticmethod
    def answer(body: dict, result=None) -> bytes:
        return json.dumps({"jsonrpc": "2.0", "id": body.get("id"), "result": {} if result is None else result}).encode()

    @staticmethod
    def event(message: dict, crlf: bool = False) -> bytes:
        end = "\r\n" if crlf else "\n"
        return f"event: message{end}data: {json.dumps(message)}{end}{end}".encode()

    @staticmethod
    def progress(body: dict) -> dict:
        token = ((body.get("params") or {}).get("_meta") or {}).get("progressToken", "p")
        return {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": token, "progress": 1}}

    # ------------------------------------------------------------------ modes

    def mode_normal(self, body: dict, control: dict) -> None:
        method, params = body.get("method"), body.get("params") or {}
        if "id" not in body or method is None:
            self.reply(202, None, b"")
            return
        if method == "initialize":
            result = {"protocolVersion": params.get("protocolVersion", "2025-11-25"), "capabilities": {"tools": {}},
                      "serverInfo": {"name": "hostile-upstream", "version": "1"}}
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": True}},
                                {"name": "write", "inputSchema": {"type": "object"}}]}
        elif method == "tools/call":
            result = {"content": [{"type": "text", "text": "ok"}], "isError": False}
        else:
            result = {}
        self.reply(200, "application/json", self.answer(body, result))

    def mode_cut(self, body: dict, control: dict) -> None:
        answer = self.answer(body, {"content": [{"type": "text", "text": "x" * 4096}]})
        after = min(int(control.get("after", 64)), len(answer) - 1)
        framing = control.get("framing", "chunked")
        self.start(200, "application/json", framing, len(answer))
        if framing == "chunked":
            self.chunk(answer[:after])
        else:
            self.wfile.write(answer[:after])
        self.hang_up()

    def mode_stall(self, body: dict, control: dict) -> None:
        answer = self.answer(body, {"content": [{"type": "text", "text": "x" * 4096}]})
        self.start(200, "application/json")
        self.chunk(answer[:int(control.get("after", 64))])
        self.sleep(control)
        self.hang_up()

    def mode_slow_headers(self, body: dict, control: dict) -> None:
        self.sleep(control)
        self.mode_normal(body, control)

    def mode_reset(self, body: dict, control: dict) -> None:
        self.hang_up(reset=True)

    def mode_not_json(self, body: dict, control: dict) -> None:
        self.reply(200, "application/json", b"Internal Server Error: the upstream is on fire\n")

    def mode_html_status(self, body: dict, control: dict) -> None:
        status = int(control.get("status", 502))
        page = f"<html><head><title>{status}</title></head><body><h1>{status} Bad Gateway</h1></body></html>\n"
        self.reply(status, "text/html", page.encode())

    def mode_status(self, body: dict, control: dict) -> None:
        self.reply(int(control.get("status", 500)), control.get("content_type", "text/plain"),
                   str(control.get("body", "")).encode(), control.get("headers") or {})

    def mode_huge(self, body: dict, control: dict) -> None:
        """Streamed as it is made (headers first), with raw newlines between rows."""
        size = min(int(control.get("bytes", 3_000_000)), MAX_BYTES)
        self.start(200, "application/json")
        piece = bytearray(b'{"jsonrpc": "2.0", "id": ' + json.dumps(body.get("id")).encode()
                          + b',\n "result": {"structuredContent": {"rows": [\n')
        sent, row = 0, 0
        while sent + len(piece) < size:
            if row:
                piece += b",\n"
            piece += json.dumps({"row": row, "text": f"line {row}\nwith an escaped newline"}).encode()
            row += 1
            if len(piece) >= 65536:
                self.chunk(bytes(piece))
                sent += len(piece)
                piece.clear()
        self.chunk(bytes(piece) + b"\n]}}}\n")
        self.end_chunks()

    def mode_pretty(self, body: dict, control: dict) -> None:
        answer = json.dumps({"jsonrpc": "2.0", "id": body.get("id"), "result": {"a": [1, 2], "b": "x\ny"}}, indent=2)
        self.reply(200, "application/json", answer.replace("\n", "\r\n").encode())

    def mode_wrong_content_type(self, body: dict, control: dict) -> None:
        self.reply(200, "text/plain", self.answer(body))

    def mode_no_id(self, body: dict, control: dict) -> None:
        self.reply(200, "application/json", json.dumps({"jsonrpc": "2.0", "result": {}}).encode())

    def mode_other_id(self, body: dict, control: dict) -> None:
        self.reply(200, "application/json", json.dumps({"jsonrpc": "2.0", "id": "someone-else", "result": {}}).encode())

    def mode_empty(self, body: dict, control: dict) -> None:
        self.reply(200, "application/json", b"")

    def mode_accepted(self, body: dict, control: dict) -> None:
        self.reply(202, None, b"")

    def mode_sse(self, body: dict, control: dict) -> None:
        crlf = str(control.get("crlf", "")).lower() in ("1", "true")
        self.start(200, "text/event-stream")
        self.chunk(b": keep-alive\n\n" + self.event(self.progress(body), crlf))
        self.chunk(self.event(json.loads(self.answer(body)), crlf))
        self.end_chunks()

    def mode_sse_endless(self, body: dict, control: dict) -> None:
        limit = min(int(control.get("bytes", 64 * 1024 * 1024)), MAX_BYTES)
        self.start(200, "text/event-stream")
        self.chunk(b"data: ")
        block, sent = b"x" * 65536, 0
        while sent < limit:
            self.chunk(block)  # BrokenPipe/ConnectionReset once the proxy gives up
            sent += len(block)
        self.end_chunks()

    def mode_sse_truncated(self, body: dict, control: dict) -> None:
        self.start(200, "text/event-stream")
        self.chunk(self.event(self.progress(body)))
        self.end_chunks()

    def mode_sse_cut(self, body: dict, control: dict) -> None:
        self.start(200, "text/event-stream")
        self.chunk(self.event(self.progress(body)) + self.event(json.loads(self.answer(body)))[:30])
        self.hang_up()

    def mode_sse_stall(self, body: dict, control: dict) -> None:
        self.start(200, "text/event-stream")
        self.chunk(self.event(self.progress(body)))
        self.sleep(control)
        self.hang_up()

    def mode_sse_answer_then_break(self, body: dict, control: dict) -> None:
        self.start(200, "text/event-stream")
        self.chunk(self.event(json.loads(self.answer(body))) + b"data: {\"jsonrpc\":")
        time.sleep(0.2)
        self.hang_up()

    def mode_sse_garbage(self, body: dict, control: dict) -> None:
        self.start(200, "text/event-stream")
        self.chunk(b"data: <html>not json</html>\n\n")
        self.chunk(self.event(json.loads(self.answer(body))))
        self.end_chunks()

    def mode_sse_other_id(self, body: dict, control: dict) -> None:
        self.start(200, "text/event-stream")
        self.chunk(self.event({"jsonrpc": "2.0", "id": "someone-else", "result": {}}))
        self.end_chunks()


class Server(ThreadingHTTPServer):
    daemon_threads = True


def serve(port: int = 0) -> Server:
    """Starts the server on 127.0.0.1 in a background thread (for tests in the same process)."""
    server = Server(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    server = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/mcp", flush=True)
    server.serve_forever()
