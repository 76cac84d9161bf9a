"""Hostile requests to `mcp-gateway serve` over HTTP.

Payload kinds (run by tests/e2e/test_hostile_gateway.py):
- `{"method", "headers", "body"}`: one HTTP request; headers set to None are left out.
- `{"tool", "arguments"}`: a tools/call (2025-11-25, no session) to the read-only server, or to
  the write-enabled one with `"server": "rw"`; `"repeat": n` sends it n times at once.
- `{"resource": uri}`: a resources/read (2026-07-28).
- `{"raw": [bytes, ...], "pause": s}`: bytes on a raw socket, with pauses between the pieces.
"""

from __future__ import annotations

import json

import httpx

from . import Case

ACCEPT = "application/json, text/event-stream"

MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}


def rpc(method, params=None, id=1, **extra):
    message = {"jsonrpc": "2.0", "id": id, "method": method, **extra}
    if params is not None:
        message["params"] = params
    return json.dumps(message)


def modern_headers(method, name=None):
    headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method}
    if name is not None:
        headers["Mcp-Name"] = name
    return headers


def send(url: str, method: str, headers: dict, body, timeout: float = 30) -> httpx.Response:
    """One HTTP request to the MCP endpoint with MCP's Accept and Content-Type unless `headers`
    overrides them (a header set to None is left out)."""
    merged = {"Accept": ACCEPT, "Content-Type": "application/json"}
    for key, value in headers.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    content = body.encode() if isinstance(body, str) else body
    with httpx.Client(timeout=timeout) as client:
        return client.send(client.build_request(method, url, headers=merged, content=content))


def http(id, category, method, headers, body, status, code, reason):
    return Case(id, category, "http", status, code, reason, payload={"method": method, "headers": headers, "body": body})


def tool(id, category, name, arguments, reason, server="ro", repeat=1):
    payload = {"tool": name, "arguments": arguments, "server": server, "repeat": repeat}
    return Case(id, category, "http", 200, None, reason, tool_error=reason is not None, payload=payload)


def sql(id, query, reason, **extra):
    return tool(id, "sql-escape", "db", {"action": "query", "sql": query, **extra}, reason)


def read(id, category, path, reason, **extra):
    return tool(id, category, "file", {"action": "read", "path": path, **extra}, reason)


OUTSIDE = "{outside}"  # replaced by the test with a CSV file outside the data root
LEGACY = {"MCP-Protocol-Version": "2025-11-25"}

CASES = [
    # --------------------------------------------------------------------------------- protocol
    http("foreign-origin", "protocol", "POST", {"Origin": "http://evil.example.com"}, rpc("tools/list"), 403, -32600, "Origin"),
    http("foreign-host", "protocol", "POST", {"Host": "evil.example.com"}, rpc("tools/list"), 403, -32600, "Host"),
    http("dns-rebinding-host-and-origin", "protocol", "POST", {"Host": "evil.example.com", "Origin": "http://evil.example.com"}, rpc("tools/list"), 403, -32600, "Host"),
    http("lookalike-host", "protocol", "POST", {"Host": "localhost.evil.example.com"}, rpc("tools/list"), 403, -32600, "not allowed"),
    http("get-endpoint", "protocol", "GET", {}, None, 405, -32600, "not supported"),
    http("delete-endpoint", "protocol", "DELETE", {"Mcp-Session-Id": "abc"}, None, 405, -32600, "not supported"),
    http("put-endpoint", "protocol", "PUT", {}, rpc("tools/list"), 405, -32600, "not supported"),
    http("no-accept", "protocol", "POST", {"Accept": None}, rpc("tools/list"), 406, -32600, "Not Acceptable"),
    http("json-only-accept", "protocol", "POST", {"Accept": "application/json"}, rpc("tools/list"), 406, -32600, "Not Acceptable"),
    http("sse-refused-accept", "protocol", "POST", {"Accept": "application/json, text/event-stream;q=0"}, rpc("tools/list"), 406, -32600, "Not Acceptable"),
    http("text-content-type", "protocol", "POST", {"Content-Type": "text/plain"}, rpc("tools/list"), 415, -32600, "Content-Type"),
    http("no-content-type", "protocol", "POST", {"Content-Type": None}, rpc("tools/list"), 415, -32600, "Content-Type"),
    http("form-content-type", "protocol", "POST", {"Content-Type": "application/x-www-form-urlencoded"}, "a=b", 415, -32600, "Content-Type"),
    http("invalid-json", "protocol", "POST", {}, '{"jsonrpc": "2.0", "id": 1, "method": ', 400, -32700, "not valid JSON"),
    http("empty-body", "protocol", "POST", {}, "", 400, -32700, "not valid JSON"),
    http("json-string", "protocol", "POST", {}, '"hello"', 400, -32600, "must be an object"),
    http("json-number", "protocol", "POST", {}, "42", 400, -32600, "must be an object"),
    http("missing-jsonrpc", "protocol", "POST", {}, json.dumps({"id": 1, "method": "ping"}), 400, -32600, "jsonrpc"),
    http("wrong-jsonrpc-version", "protocol", "POST", {}, json.dumps({"jsonrpc": "1.0", "id": 1, "method": "ping"}), 400, -32600, "jsonrpc"),
    http("missing-method", "protocol", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": 1}), 400, -32600, "missing"),
    http("method-not-string", "protocol", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": 1, "method": 7}), 400, -32600, "method"),
    http("id-is-object", "protocol", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}), 400, -32600, "id"),
    http("id-is-null", "protocol", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": None, "method": "ping"}), 400, -32600, "id"),
    http("params-is-array", "protocol", "POST", {}, rpc("tools/list", params=[1, 2]), 400, -32602, "params"),
    http("unknown-method", "protocol", "POST", LEGACY, rpc("nope/nothing"), 200, -32601, None),
    http("tools-call-name-not-string", "protocol", "POST", LEGACY, rpc("tools/call", {"name": 5}), 400, -32602, "tools/call"),
    http("tools-call-missing-name", "protocol", "POST", LEGACY, rpc("tools/call", {"arguments": {}}), 400, -32602, "tools/call"),
    http("tools-call-unknown-tool", "protocol", "POST", LEGACY, rpc("tools/call", {"name": "rm_rf"}), 200, -32602, "unknown tool"),
    http("initialize-without-params", "protocol", "POST", {}, rpc("initialize"), 400, -32602, "initialize"),
    http("forged-session-id", "protocol", "POST", {**LEGACY, "Mcp-Session-Id": "forged.session"}, rpc("tools/list"), 404, -32001, "Session not found"),
    http("unsupported-version", "protocol", "POST", {**modern_headers("tools/list"), "MCP-Protocol-Version": "1999-01-01"},
         rpc("tools/list", {"_meta": {**MODERN, "io.modelcontextprotocol/protocolVersion": "1999-01-01"}}), 400, -32022, None),
    http("header-method-mismatch", "protocol", "POST", modern_headers("tools/list"),
         rpc("tools/call", {"name": "file", "arguments": {"action": "info"}, "_meta": MODERN}), 400, -32020, None),
    http("header-name-mismatch", "protocol", "POST", modern_headers("tools/call", "other"),
         rpc("tools/call", {"name": "file", "arguments": {"action": "info"}, "_meta": MODERN}), 400, -32020, None),
    http("header-name-missing", "protocol", "POST", modern_headers("tools/call"),
         rpc("tools/call", {"name": "file", "arguments": {"action": "info"}, "_meta": MODERN}), 400, -32020, None),
    http("modern-unknown-method", "protocol", "POST", modern_headers("nope/nothing"), rpc("nope/nothing", {"_meta": MODERN}), 404, -32601, None),
    http("batch-in-2025-11-25", "protocol", "POST", LEGACY, json.dumps([json.loads(rpc("ping"))]), 400, -32600, "batches"),
    http("empty-batch", "protocol", "POST", {"MCP-Protocol-Version": "2025-03-26"}, "[]", 400, -32600, "empty"),
    http("initialize-in-batch", "protocol", "POST", {"MCP-Protocol-Version": "2025-03-26"},
         json.dumps([json.loads(rpc("initialize", {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}))]),
         400, -32600, "initialize"),
    http("session-id-not-ascii", "invalid-utf8", "POST", {**LEGACY, "Mcp-Session-Id": b"\xff\xfe.session"}, rpc("tools/list"), 404, -32001, "Session not found"),

    # -------------------------------------------------------------------- sizes, depth, encoding
    http("body-over-limit", "oversized", "POST", {}, '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + "x" * (5 * 1024 * 1024) + '"}}', 413, -32600, "exceeds"),
    http("batch-over-100-messages", "oversized", "POST", {"MCP-Protocol-Version": "2025-03-26"},
         json.dumps([json.loads(rpc("ping", id=i)) for i in range(101)]), 400, -32600, "limit is 100"),
    http("deeply-nested-array", "deep-json", "POST", {}, "[" * 10000 + "]" * 10000, 400, -32700, "not valid JSON"),
    http("deeply-nested-arguments", "deep-json", "POST", LEGACY,
         '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"file","arguments":' + '{"a":' * 5000 + "1" + "}" * 5000 + "}}",
         400, -32700, "recursion limit"),
    http("not-utf8", "invalid-utf8", "POST", {}, b"\xff\xfe{}", 400, -32700, "not valid JSON"),
    http("invalid-utf8-in-string", "invalid-utf8", "POST", LEGACY,
         b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"file","arguments":{"action":"read","path":"a\xff\xfe.csv"}}}',
         400, -32700, "not valid JSON"),
    http("lone-surrogate-in-path", "invalid-utf8", "POST", LEGACY,
         '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"file","arguments":{"action":"read","path":"\\ud800.csv"}}}',
         400, -32700, "not valid JSON"),
    http("number-past-f64", "huge-number", "POST", LEGACY,
         '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{"query":"x","limit":1e400}}}',
         400, -32700, "not valid JSON"),
    Case("oversized-header", "oversized", "http", 431, None, "too large",
         payload={"raw": [b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"], "pause": 0}),
    Case("many-headers", "oversized", "http", 431, None, "too large",
         payload={"raw": [b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n"], "pause": 0}),
    Case("slow-loris-headers", "slow-loris", "http", None, None, "timeout",
         payload={"raw": [b"POST /mcp HTTP/1.1\r\n", b"Host: 127.0.0.1\r\n"], "pause": 4}),
    Case("slow-loris-body", "slow-loris", "http", 408, -32600, "did not arrive within",
         payload={"raw": [b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json, text/event-stream\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"", b":"], "pause": 4}),

    # ------------------------------------------------------------------------------ SQL escapes
    sql("sql-read-csv-outside-root-with-alias", f"SELECT * FROM read_csv('{OUTSIDE}') AS sales_orders", "table function"),
    sql("sql-read-csv-url", "SELECT * FROM read_csv('http://127.0.0.1:9/x.csv') AS sales_orders", "table function"),
    sql("sql-read-csv-metadata-service", "SELECT * FROM read_csv('http://169.254.169.254/latest/meta-data/iam/') AS t", "table function"),
    sql("sql-read-parquet-upper-case", "SELECT * FROM READ_PARQUET('/etc/x.parquet')", "table function"),
    sql("sql-read-json-mixed-case", "SELECT * FROM ReAd_JsOn('/etc/x.ndjson')", "table function"),
    sql("sql-read-ipc", "select * from read_ipc('/etc/x.arrow')", "table function"),
    sql("sql-quoted-function-name", "SELECT * FROM \"read_csv\"('/etc/passwd')", "table function"),
    sql("sql-in-subquery", f"SELECT * FROM sales_orders WHERE order_id IN (SELECT order_id FROM read_csv('{OUTSIDE}'))", "table function"),
    sql("sql-in-cte", f"WITH x AS (SELECT * FROM read_csv('{OUTSIDE}')) SELECT * FROM x", "table function"),
    sql("sql-in-join", f"SELECT * FROM sales_orders JOIN read_csv('{OUTSIDE}') AS r ON true", "table function"),
    sql("sql-in-exists", "SELECT * FROM sales_orders WHERE EXISTS (SELECT 1 FROM read_parquet('/x'))", "table function"),
    sql("sql-in-scalar-subquery", f"SELECT (SELECT max(secret) FROM read_csv('{OUTSIDE}')) AS s FROM sales_orders", "table function"),
    sql("sql-in-union", f"SELECT order_id FROM sales_orders UNION ALL SELECT secret FROM read_csv('{OUTSIDE}')", "table function"),
    sql("sql-in-nested-derived-tables", f"SELECT * FROM (SELECT * FROM (SELECT * FROM read_csv('{OUTSIDE}')) a) b", "table function"),
    sql("sql-behind-a-comment", f"SELECT * FROM sales_orders /* harmless */ , read_csv('{OUTSIDE}') -- x", "table function"),
    sql("sql-path-as-quoted-identifier", "SELECT * FROM \"/etc/passwd\"", "not a table here"),
    sql("sql-qualified-name", "SELECT * FROM sales_orders.anything", "qualified"),
    sql("sql-table-function-form", "SELECT * FROM TABLE(read_csv('/etc/passwd'))", "not a table"),
    sql("sql-select-into", "SELECT * INTO stolen FROM sales_orders", "INTO"),
    sql("sql-copy", "COPY sales_orders TO '/tmp/out.csv'", "only read-only queries"),
    sql("sql-create-table-as", f"CREATE TABLE t AS SELECT * FROM read_csv('{OUTSIDE}')", "only read-only queries"),
    sql("sql-two-statements", "SELECT 1; SELECT * FROM read_csv('/etc/passwd')", "exactly one statement"),
    sql("sql-over-64-kib", "SELECT '" + "x" * 70_000 + "' AS pad", "the limit is 65536"),
    sql("sql-deep-parentheses", "SELECT " + "(" * 2000 + "1" + ")" * 2000, "SQL syntax error"),
    sql("sql-memory-bomb", "SELECT lpad(region, 2000000000, 'x') AS big FROM sales_orders", "of memory"),

    # ------------------------------------------------------------------------------ path tricks
    read("path-parent-segments", "path-trick", "../../etc/passwd", "cannot leave the data root"),
    read("path-absolute", "path-trick", "/etc/passwd", "is absolute"),
    read("path-windows-drive", "path-trick", "C:/Windows/win.ini", "is absolute"),
    read("path-home", "path-trick", "~/.aws/credentials", "is absolute"),
    read("path-percent-encoded-dots", "path-trick", "%2e%2e/%2e%2e/etc/passwd", "percent-encoded"),
    read("path-double-encoded-dots", "path-trick", "%252e%252e/etc/passwd", "percent-encoded"),
    read("path-overlong-utf8-dot", "path-trick", "%c0%ae%c0%ae/etc/passwd", "percent-encoded"),
    read("path-backslashes", "path-trick", "..\\..\\etc\\passwd", "backslash"),
    read("path-nul-byte", "path-trick", "sales/orders.csv\u0000.txt", "control characters"),
    read("path-newline", "path-trick", "sales/orders.csv\n", "control characters"),
    read("path-symlink-folder-to-etc", "path-trick", "etc-link/passwd", "leads outside the data root"),
    read("path-symlink-file-outside", "path-trick", "secret-link.csv", "leads outside the data root"),
    read("path-unicode-two-dot-leader", "path-trick", "\u2025/etc/passwd", "does not exist"),
    read("path-unicode-fullwidth-dots", "path-trick", "\uff0e\uff0e/\uff0e\uff0e/etc/passwd", "does not exist"),
    read("path-unicode-division-slash", "path-trick", "..\u2215..\u2215etc\u2215passwd", "does not exist"),
    read("path-over-1024-bytes", "path-trick", "a/" * 600, "the limit is 1024"),
    tool("metadata-of-symlink-outside", "path-trick", "dataset_metadata", {"path": "secret-link.csv"}, "outside the data root"),
    tool("metadata-parent-segments", "path-trick", "dataset_metadata", {"path": "../"}, "cannot leave the data root"),
    tool("list-symlink-folder-to-etc", "path-trick", "file", {"action": "list", "path": "etc-link"}, "leads outside the data root"),
    tool("db-describe-path-as-table", "path-trick", "db", {"action": "describe", "table": "../secret"}, "no table named"),
    tool("write-outside-root", "path-trick", "file_write", {"action": "write", "path": "../escape.txt", "text": "x"}, "cannot leave the data root", server="rw"),
    tool("write-through-symlink-folder", "path-trick", "file_write", {"action": "write", "path": "etc-link/evil.txt", "text": "x"}, "leads outside the data root", server="rw"),
    Case("resource-parent-segments", "path-trick", "http", 200, -32602, "cannot leave the data root", payload={"resource": "gateway://data/../../etc/passwd"}),
    Case("resource-symlink-outside", "path-trick", "http", 200, -32602, "leads outside the data root", payload={"resource": "gateway://data/secret-link.csv"}),

    # ----------------------------------------------------------------------------- huge numbers
    tool("search-cursor-a-trillion", "huge-number", "search", {"query": "order", "cursor": "o1000000000000"}, "past the last page"),
    tool("search-cursor-past-u64", "huge-number", "search", {"query": "order", "cursor": "o99999999999999999999999"}, "invalid cursor"),
    tool("search-cursor-negative", "huge-number", "search", {"query": "order", "cursor": "o-5"}, "invalid cursor"),
    tool("search-limit-a-trillion", "huge-number", "search", {"query": "order", "limit": 10**12}, "between 1 and 100"),
    tool("search-limit-negative", "huge-number", "search", {"query": "order", "limit": -1}, "invalid arguments"),
    tool("list-limit-huge", "huge-number", "file", {"action": "list", "limit": 10**18}, "limit must be between"),
    tool("list-cursor-huge", "huge-number", "file", {"action": "list", "cursor": "o99999999999999"}, "past the last page"),
    read("read-offset-huge", "huge-number", "sales/orders.csv", "past the end", offset=10**18),
    read("read-length-huge", "huge-number", "sales/orders.csv", "larger than the read limit", offset=0, length=10**18),
    read("read-length-past-u64", "huge-number", "sales/orders.csv", "invalid arguments", length=2**64),
    read("read-start-line-huge", "huge-number", "sales/orders.csv", "past its end", start_line=10**18),
    read("read-line-range-backwards", "huge-number", "sales/orders.csv", "end_line must not be before", start_line=10, end_line=2),
    tool("db-limit-huge", "huge-number", "db", {"action": "query", "sql": "SELECT 1 AS x", "limit": 10**12}, "limit must be between 1 and"),
    tool("metadata-sample-rows-huge", "huge-number", "dataset_metadata", {"path": "sales/orders.csv", "sample_rows": 10**12, "top_values": 10**12}, None),
    tool("write-base64-over-limit", "oversized", "file_write", {"action": "write", "path": "out/big.bin", "base64": "QUFB" * 800_000}, "write limit", server="rw"),

    # ---------------------------------------------------------------------- concurrent writes
    tool("concurrent-writes-to-one-path", "concurrent-write", "file_write", {"action": "write", "path": "out/race.txt", "text": "{n}" * 50_000}, None, server="rw", repeat=16),
]
