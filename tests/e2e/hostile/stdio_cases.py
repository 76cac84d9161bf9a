"""Hostile lines to `mcp-gateway stdio`, sent after a normal initialize. Payload: `{"line": bytes}`
(written with a newline). Each must get its JSON-RPC answer on stdout (a refusal with its code,
or an isError result), the stderr log says why, and the next request is still answered."""

from __future__ import annotations

import json

from . import Case


def stdio(id, category, line, code, reason, tool_error=False):
    data = line if isinstance(line, bytes) else line.encode()
    return Case(id, category, "stdio", None, code, reason, tool_error=tool_error, payload={"line": data})


def call(id, category, name, arguments, reason, rid=41):
    message = {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return stdio(id, category, json.dumps(message), None, reason, tool_error=True)


CASES = [
    stdio("stdio-not-json", "protocol", "hello there", -32700, "not valid JSON"),
    stdio("stdio-truncated-json", "protocol", '{"jsonrpc":"2.0","id":1,"method":', -32700, "not valid JSON"),
    stdio("stdio-json-array-batch", "protocol", '[{"jsonrpc":"2.0","id":1,"method":"ping"}]', -32600, "batches are not supported"),
    stdio("stdio-wrong-version", "protocol", '{"jsonrpc":"1.0","id":1,"method":"ping"}', -32600, "jsonrpc"),
    stdio("stdio-id-object", "protocol", '{"jsonrpc":"2.0","id":{"x":1},"method":"ping"}', -32600, "id"),
    stdio("stdio-bad-tools-call-params", "protocol", '{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":5}}', -32602, "tools/call"),
    stdio("stdio-invalid-utf8", "invalid-utf8", b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"\xff\xfe"}}', -32700, "not valid JSON"),
    stdio("stdio-nul-bytes", "invalid-utf8", b'\x00\x00{"jsonrpc":"2.0"}', -32700, "not valid JSON"),
    stdio("stdio-deep-json", "deep-json", "[" * 100_000 + "]" * 100_000, -32700, "recursion limit"),
    stdio("stdio-over-16-mib", "oversized", '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + "x" * (17 << 20) + '"}}', -32600, "the limit is 16777216"),
    call("stdio-sql-table-function", "sql-escape", "db", {"action": "query", "sql": "SELECT * FROM read_csv('/etc/passwd')"}, "table function"),
    call("stdio-path-parent", "path-trick", "file", {"action": "read", "path": "../../etc/passwd"}, "cannot leave the data root"),
    call("stdio-path-symlink-outside", "path-trick", "file", {"action": "read", "path": "secret-link.csv"}, "leads outside the data root"),
    call("stdio-search-cursor-huge", "huge-number", "search", {"query": "order", "cursor": "o1000000000000"}, "past the last page"),
    call("stdio-read-offset-huge", "huge-number", "file", {"action": "read", "path": "sales/orders.csv", "offset": 10**18}, "past the end"),
]
