"""Hostile API Gateway events for the real binary as a Lambda function (tests/e2e/lambda_runtime.py).

Payload: `{"kind": "rest-v1" | "http-v2" | "function-url", "template": <event in events/<kind>>,
"body": new body (str | bytes | None to keep), "headers": headers to set, "base64": encode the body}`,
or `{"event": raw bytes}` for an event that is not an API Gateway event at all. `status` is the
statusCode of the function's response; for raw events the function must report an invocation
error to the runtime (status None; `reason` in its errorMessage, and an error in its log) and keep
serving."""

from __future__ import annotations

import json

from . import Case


def call(name, arguments, rid=21):
    message = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return json.dumps(message)


def event(id, category, kind, status, code, reason, body=None, headers=None, base64=False, tool_error=False, template="tools-call-file"):
    payload = {"kind": kind, "template": template, "body": body, "headers": headers or {}, "base64": base64}
    return Case(id, category, "lambda", status, code, reason, tool_error=tool_error, payload=payload)


LEGACY = {"mcp-protocol-version": "2025-11-25", "mcp-method": None, "mcp-name": None}

CASES = [
    event("lambda-sql-read-csv-outside", "sql-escape", "rest-v1", 200, None, "table function",
          body=call("db", {"action": "query", "sql": "SELECT * FROM read_csv('{outside}') AS sales_orders"}), headers=LEGACY, tool_error=True),
    event("lambda-sql-url", "sql-escape", "http-v2", 200, None, "table function",
          body=call("db", {"action": "query", "sql": "SELECT * FROM read_parquet('http://169.254.169.254/x')"}), headers=LEGACY, tool_error=True),
    event("lambda-path-parent", "path-trick", "function-url", 200, None, "cannot leave the data root",
          body=call("file", {"action": "read", "path": "../../etc/passwd"}), headers=LEGACY, tool_error=True),
    event("lambda-path-symlink", "path-trick", "rest-v1", 200, None, "leads outside the data root",
          body=call("file", {"action": "read", "path": "etc-link/hostname"}), headers=LEGACY, tool_error=True),
    event("lambda-search-cursor-huge", "huge-number", "http-v2", 200, None, "past the last page",
          body=call("search", {"query": "order", "cursor": "o1000000000000"}), headers=LEGACY, tool_error=True),
    event("lambda-list-limit-huge", "huge-number", "rest-v1", 200, None, "limit must be between",
          body=call("file", {"action": "list", "limit": 10**15}), headers=LEGACY, tool_error=True),
    event("lambda-body-not-json", "protocol", "rest-v1", 400, -32700, "not valid JSON", body="{nope", headers=LEGACY),
    event("lambda-base64-body-not-utf8", "invalid-utf8", "http-v2", 400, -32700, "not valid JSON", body=b"\xff\xfe\xfd", base64=True, headers=LEGACY),
    event("lambda-deep-json-body", "deep-json", "function-url", 400, -32700, "recursion limit", body="[" * 5000 + "]" * 5000, headers=LEGACY),
    event("lambda-batch-over-limit", "oversized", "rest-v1", 400, -32600, "limit is 100",
          body=json.dumps([{"jsonrpc": "2.0", "id": i, "method": "ping"} for i in range(150)]), headers={**LEGACY, "mcp-protocol-version": "2025-03-26"}),
    event("lambda-forged-session", "protocol", "http-v2", 404, -32001, "Session not found",
          body=call("file", {"action": "info", "path": "sales"}), headers={**LEGACY, "mcp-session-id": "x" * 8000}),
    Case("lambda-event-not-json", "invalid-utf8", "lambda", None, None, "failed to deserialize", payload={"event": b"\xff not json"}),
    Case("lambda-event-not-api-gateway", "protocol", "lambda", None, None, "failed to deserialize", payload={"event": b'{"hello": "world"}'}),
    Case("lambda-event-deep-json", "deep-json", "lambda", None, None, "failed to deserialize", payload={"event": b"[" * 100_000 + b"]" * 100_000}),
]
