"""Hostile input for `mcp-sigv4-proxy`, on its two surfaces: what a client writes to its stdin
(`proxy-stdin`), and what the upstream answers (`proxy-upstream`, played by
`tests/e2e/hostile_upstream.py`). Run by `tests/e2e/test_hostile_proxy.py`.

Every case expects exactly one stdout line for its request: a JSON-RPC error with `code` (or a
result when `code` is None) and the same id, and a stderr log line whose `reason` contains
`reason`. Payload keys:
  line      the exact bytes written to stdin (a newline is added)
  request   a JSON-RPC message written to stdin instead of `line`
  id        the id the answer must carry (default: the request's id, else null)
  args      extra proxy flags (every proxy runs with `--timeout 2`)
  upstream  (mode, count): how many requests the upstream must have seen in that mode
"""

from __future__ import annotations

import json

from . import Case

STDIN, UPSTREAM = "proxy-stdin", "proxy-upstream"


def call(mode: str, tool: str = "write", rid: object = "call", **control) -> dict:
    """A tools/call the upstream answers in `mode`. The `write` tool has no annotations, so the
    proxy treats it as having side effects (no retry once it may have run)."""
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": tool, "arguments": {}, "_meta": {"hostile": {"mode": mode, **control}}}}


def request(method: str, mode: str, rid: object = 1, params: dict | None = None, **control) -> dict:
    """Any request the upstream answers in `mode`."""
    params = dict(params or {})
    params["_meta"] = {"hostile": {"mode": mode, **control}}
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


PING = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"})
INIT_PARAMS = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "hostile", "version": "1"}}


def stdin(name: str, category: str, code: int | None, reason: str | None, line: bytes, **payload) -> Case:
    return Case(name, category, STDIN, None, code, reason, payload={"line": line, **payload})


def upstream(name: str, category: str, code: int | None, reason: str | None, message: dict, **payload) -> Case:
    return Case(name, category, UPSTREAM, None, code, reason, payload={"request": message, **payload})


CASES: list[Case] = [
    # ------------------------------------------------------------------ stdin
    stdin("stdin-garbage", "protocol", -32700, "stdin-not-json", b"hello, proxy"),
    stdin("stdin-truncated-json", "protocol", -32700, "stdin-not-json", b'{"jsonrpc":"2.0","id":1,"method":'),
    stdin("stdin-not-utf8", "invalid-utf8", -32700, "stdin-not-utf8", b"\xff\xfe{}"),
    stdin("stdin-not-utf8-in-a-string", "invalid-utf8", -32700, "stdin-not-utf8",
          b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":"\xc3\x28"}}'),
    stdin("stdin-over-long-line", "oversized", -32700, "stdin-line-too-long",
          json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 100_000}}).encode(),
          args=["--max-message-bytes", "4K"]),
    stdin("stdin-over-long-garbage", "oversized", -32700, "stdin-line-too-long", b"\xff" * 200_000,
          args=["--max-message-bytes", "64K"]),
    stdin("stdin-deep-array", "deep-json", -32700, "stdin-not-json", b"[" * 100_000),
    stdin("stdin-deep-params", "deep-json", -32700, "stdin-not-json",
          b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}}"),
    stdin("stdin-huge-integer-id", "huge-number", -32600, "stdin-bad-id",
          b'{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"ping"}'),
    stdin("stdin-id-out-of-float-range", "huge-number", -32700, "stdin-not-json",
          b'{"jsonrpc":"2.0","id":1e400,"method":"ping"}'),
    stdin("stdin-huge-number-in-params", "huge-number", -32700, "stdin-not-json",
          b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"n":' + b"9" * 400 + b"e999999}}"),
    stdin("stdin-batch-without-batch-revision", "protocol", -32600, "stdin-batch", f"[{PING}]".encode()),
    stdin("stdin-empty-batch", "protocol", -32600, "stdin-invalid-request", b"[]"),
    stdin("stdin-id-is-object", "protocol", -32600, "stdin-bad-id", b'{"jsonrpc":"2.0","id":{"a":1},"method":"ping"}'),
    stdin("stdin-id-is-fraction", "protocol", -32600, "stdin-bad-id", b'{"jsonrpc":"2.0","id":1.5,"method":"ping"}'),
    stdin("stdin-id-is-null", "protocol", -32600, "stdin-bad-id", b'{"jsonrpc":"2.0","id":null,"method":"ping"}'),
    stdin("stdin-nul-after-message", "protocol", -32700, "stdin-not-json", PING.encode() + b"\x00"),
    stdin("stdin-nul-in-a-string", "protocol", -32700, "stdin-not-json",
          b'{"jsonrpc":"2.0","id":1,"method":"pi\x00ng"}'),
    stdin("stdin-empty-object", "protocol", -32600, "stdin-invalid-request", b"{}"),
    stdin("stdin-notification-with-numeric-method", "protocol", -32600, "stdin-invalid-request",
          b'{"jsonrpc":"2.0","method":5}'),
    stdin("stdin-wrong-jsonrpc-version", "protocol", -32600, "stdin-invalid-request",
          b'{"jsonrpc":"1.0","id":7,"method":"ping"}', id=7),
    stdin("stdin-bare-string", "protocol", -32600, "stdin-invalid-request", b'"ping"'),
    stdin("stdin-params-is-a-number", "protocol", -32600, "stdin-invalid-request",
          b'{"jsonrpc":"2.0","id":"p","method":"ping","params":5}', id="p"),
    stdin("stdin-response-without-outcome", "protocol", -32600, "stdin-invalid-request",
          b'{"jsonrpc":"2.0","id":5}', id=5),
    stdin("stdin-crlf-line", "protocol", None, None, PING.encode() + b"\r", id=1),

    # ------------------------------------------------------------------ upstream
    upstream("upstream-cut-mid-body-chunked", "upstream-answer", -32000, "answer-broken",
             call("cut", after=100), upstream=("cut", 1)),
    upstream("upstream-cut-mid-body-content-length", "upstream-answer", -32000, "answer-broken",
             call("cut", after=100, framing="length")),
    upstream("upstream-cut-mid-body-close-delimited", "upstream-answer", -32000, "answer-not-json",
             call("cut", after=100, framing="eof")),
    upstream("upstream-cut-side-effect-free-is-retried", "upstream-answer", -32000, "answer-broken",
             request("ping", "cut", after=10), upstream=("cut", 4)),
    upstream("upstream-stall-mid-body", "slow-loris", -32000, "answer-stalled",
             call("stall", after=100, seconds=5), args=["--timeout", "1"]),
    upstream("upstream-slow-first-byte", "slow-loris", -32000, "timeout",
             call("slow-headers", seconds=4), args=["--timeout", "1"], upstream=("slow-headers", 1)),
    upstream("upstream-reset-after-request", "upstream-answer", -32000, "interrupted",
             call("reset"), upstream=("reset", 1)),
    upstream("upstream-reset-side-effect-free-is-retried", "upstream-answer", -32000, "interrupted",
             request("ping", "reset"), upstream=("reset", 4)),
    upstream("upstream-not-json", "upstream-answer", -32000, "answer-not-json", call("not-json")),
    upstream("upstream-html-502", "upstream-answer", -32000, "http-502", call("html-status", status=502),
             upstream=("html-status", 1)),
    upstream("upstream-html-404", "upstream-answer", -32000, "http-404", call("html-status", status=404)),
    upstream("upstream-503-retry-after", "upstream-answer", -32000, "http-503",
             call("status", status=503, body="busy", headers={"Retry-After": "1"}), upstream=("status", 1)),
    upstream("upstream-503-retry-after-side-effect-free", "upstream-answer", -32000, "http-503",
             request("ping", "status", status=503, body="busy", headers={"Retry-After": "0"}), upstream=("status", 4)),
    upstream("upstream-429", "upstream-answer", -32000, "http-429",
             call("status", status=429, body='{"message":"Too Many Requests"}', content_type="application/json",
                  headers={"Retry-After": "0"}), upstream=("status", 4)),
    upstream("upstream-wrong-content-type", "upstream-answer", -32000, "answer-content-type", call("wrong-content-type")),
    upstream("upstream-json-without-id", "upstream-answer", -32000, "answer-not-the-response", call("no-id")),
    upstream("upstream-answer-for-another-id", "upstream-answer", -32000, "answer-not-the-response", call("other-id")),
    upstream("upstream-empty-200", "upstream-answer", -32000, "answer-empty", call("empty")),
    upstream("upstream-202-for-a-request", "upstream-answer", -32000, "answer-empty", call("accepted")),
    upstream("upstream-huge-answer-passes-on-one-line", "oversized", None, None, call("huge", bytes=3_000_000)),
    upstream("upstream-answer-over-the-limit", "oversized", -32000, "answer-too-large", call("huge", bytes=3_000_000),
             args=["--max-answer-bytes", "1M"]),
    upstream("upstream-pretty-crlf-answer", "upstream-answer", None, None, call("pretty")),
    upstream("upstream-broken-initialize", "upstream-answer", -32000, "answer-broken",
             request("initialize", "cut", params=INIT_PARAMS, after=20)),
    upstream("upstream-stalled-tools-list", "slow-loris", -32000, "answer-stalled",
             request("tools/list", "stall", after=20, seconds=5), args=["--timeout", "1"]),
    upstream("upstream-sse-crlf", "upstream-answer", None, None, call("sse", crlf="true")),
    upstream("upstream-sse-endless-event", "oversized", -32000, "sse-event-too-large", call("sse-endless"),
             args=["--max-answer-bytes", "1M"]),
    upstream("upstream-sse-truncated", "upstream-answer", -32000, "sse-ended-early", call("sse-truncated")),
    upstream("upstream-sse-cut-mid-event", "upstream-answer", -32000, "sse-broken", call("sse-cut")),
    upstream("upstream-sse-stall", "slow-loris", -32000, "sse-stalled", call("sse-stall", seconds=5),
             args=["--timeout", "1"]),
    upstream("upstream-sse-answer-then-break", "upstream-answer", None, None, call("sse-answer-then-break")),
    upstream("upstream-sse-garbage-event-then-answer", "upstream-answer", None, None, call("sse-garbage")),
    upstream("upstream-sse-answer-for-another-id", "upstream-answer", -32000, "sse-ended-early", call("sse-other-id")),
]
