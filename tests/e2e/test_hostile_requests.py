"""A table of hostile and malformed requests against `serve`: each gets the right HTTP status and
JSON-RPC code, the process stays up, and the access log says why."""

from __future__ import annotations

import json

import httpx
import pytest

ACCEPT = "application/json, text/event-stream"
JSON = "application/json"
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


# (case id, HTTP method, headers, body, expected status, expected JSON-RPC code or None)
CASES = [
    ("foreign-origin", "POST", {"Origin": "http://evil.example.com"}, rpc("tools/list"), 403, -32600),
    ("foreign-host", "POST", {"Host": "evil.example.com"}, rpc("tools/list"), 403, -32600),
    ("dns-rebinding-host-and-origin", "POST", {"Host": "evil.example.com", "Origin": "http://evil.example.com"}, rpc("tools/list"), 403, -32600),
    ("lookalike-host", "POST", {"Host": "localhost.evil.example.com"}, rpc("tools/list"), 403, -32600),
    ("get-endpoint", "GET", {}, None, 405, -32600),
    ("delete-endpoint", "DELETE", {"Mcp-Session-Id": "abc"}, None, 405, -32600),
    ("put-endpoint", "PUT", {}, rpc("tools/list"), 405, -32600),
    ("no-accept", "POST", {"Accept": None}, rpc("tools/list"), 406, -32600),
    ("json-only-accept", "POST", {"Accept": "application/json"}, rpc("tools/list"), 406, -32600),
    ("sse-refused-accept", "POST", {"Accept": "application/json, text/event-stream;q=0"}, rpc("tools/list"), 406, -32600),
    ("text-content-type", "POST", {"Content-Type": "text/plain"}, rpc("tools/list"), 415, -32600),
    ("no-content-type", "POST", {"Content-Type": None}, rpc("tools/list"), 415, -32600),
    ("form-content-type", "POST", {"Content-Type": "application/x-www-form-urlencoded"}, "a=b", 415, -32600),
    ("body-over-limit", "POST", {}, '{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + "x" * (5 * 1024 * 1024) + '"}}', 413, -32600),
    ("invalid-json", "POST", {}, '{"jsonrpc": "2.0", "id": 1, "method": ', 400, -32700),
    ("not-utf8", "POST", {}, b"\xff\xfe{}", 400, -32700),
    ("empty-body", "POST", {}, "", 400, -32700),
    ("json-string", "POST", {}, '"hello"', 400, -32600),
    ("json-number", "POST", {}, "42", 400, -32600),
    ("missing-jsonrpc", "POST", {}, json.dumps({"id": 1, "method": "ping"}), 400, -32600),
    ("wrong-jsonrpc-version", "POST", {}, json.dumps({"jsonrpc": "1.0", "id": 1, "method": "ping"}), 400, -32600),
    ("missing-method", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": 1}), 400, -32600),
    ("method-not-string", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": 1, "method": 7}), 400, -32600),
    ("id-is-object", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": {"a": 1}, "method": "ping"}), 400, -32600),
    ("id-is-null", "POST", {}, json.dumps({"jsonrpc": "2.0", "id": None, "method": "ping"}), 400, -32600),
    ("params-is-array", "POST", {}, rpc("tools/list", params=[1, 2]), 400, -32602),
    ("unknown-method", "POST", {"MCP-Protocol-Version": "2025-11-25"}, rpc("nope/nothing"), 200, -32601),
    ("tools-call-name-not-string", "POST", {"MCP-Protocol-Version": "2025-11-25"}, rpc("tools/call", {"name": 5}), 400, -32602),
    ("tools-call-missing-name", "POST", {"MCP-Protocol-Version": "2025-11-25"}, rpc("tools/call", {"arguments": {}}), 400, -32602),
    ("tools-call-unknown-tool", "POST", {"MCP-Protocol-Version": "2025-11-25"}, rpc("tools/call", {"name": "rm_rf"}), 200, -32602),
    ("initialize-without-params", "POST", {}, rpc("initialize"), 400, -32602),
    ("forged-session-id", "POST", {"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": "forged.session"}, rpc("tools/list"), 404, -32001),
    ("unsupported-version", "POST", {**modern_headers("tools/list"), "MCP-Protocol-Version": "1999-01-01"}, rpc("tools/list", {"_meta": {**MODERN, "io.modelcontextprotocol/protocolVersion": "1999-01-01"}}), 400, -32022),
    ("header-method-mismatch", "POST", modern_headers("tools/list"), rpc("tools/call", {"name": "file", "arguments": {"action": "info"}, "_meta": MODERN}), 400, -32020),
    ("header-name-mismatch", "POST", modern_headers("tools/call", "other"), rpc("tools/call", {"name": "file", "arguments": {"action": "info"}, "_meta": MODERN}), 400, -32020),
    ("header-name-missing", "POST", modern_headers("tools/call"), rpc("tools/call", {"name": "file", "arguments": {"action": "info"}, "_meta": MODERN}), 400, -32020),
    ("modern-unknown-method", "POST", modern_headers("nope/nothing"), rpc("nope/nothing", {"_meta": MODERN}), 404, -32601),
    ("batch-in-2025-11-25", "POST", {"MCP-Protocol-Version": "2025-11-25"}, json.dumps([json.loads(rpc("ping"))]), 400, -32600),
    ("empty-batch", "POST", {"MCP-Protocol-Version": "2025-03-26"}, "[]", 400, -32600),
    ("initialize-in-batch", "POST", {"MCP-Protocol-Version": "2025-03-26"}, json.dumps([json.loads(rpc("initialize", {"protocolVersion": "2025-03-26", "capabilities": {}, "clientInfo": {"name": "x", "version": "1"}}))]), 400, -32600),
    ("deeply-nested-json", "POST", {}, "[" * 10000 + "]" * 10000, 400, -32700),
]


def send(server, method, headers, body):
    merged = {"Accept": ACCEPT, "Content-Type": JSON}
    for key, value in headers.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    content = body.encode() if isinstance(body, str) else body
    with httpx.Client(timeout=10) as client:
        request = client.build_request(method, server.url, headers=merged, content=content)
        return client.send(request)


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_hostile_request(server, case):
    name, method, headers, body, status, code = case
    before = len(server.request_logs())
    response = send(server, method, headers, body)
    assert response.status_code == status, (name, response.status_code, response.text[:300])
    if code is not None:
        payload = response.json()
        assert payload["error"]["code"] == code, (name, payload)
        assert payload["error"]["message"], name
    assert server.alive(), f"server died on {name}"
    logs = server.request_logs()[before:]
    assert logs, f"no access-log line for {name}"
    line = logs[-1]
    assert line["status"] == status, (name, line)
    if code is not None:
        assert line["error_code"] == code, (name, line)
        assert line.get("reason"), f"log line for {name} does not say why: {line}"
        assert line["outcome"] == "error"


def test_at_least_25_cases():
    assert len(CASES) >= 25


def test_valid_requests_still_work_after_the_table(server):
    response = send(server, "POST", {"MCP-Protocol-Version": "2025-11-25"}, rpc("tools/list"))
    assert response.status_code == 200
    assert "file" in [tool["name"] for tool in response.json()["result"]["tools"]]


def test_batch_in_2025_03_26_answers_each_request(server):
    batch = [json.loads(rpc("ping", id=1)), json.loads(rpc("tools/list", id=2)), {"jsonrpc": "2.0", "method": "notifications/initialized"}, json.loads(rpc("nope", id=3))]
    response = send(server, "POST", {"MCP-Protocol-Version": "2025-03-26"}, json.dumps(batch))
    assert response.status_code == 200
    answers = {answer["id"]: answer for answer in response.json()}
    assert set(answers) == {1, 2, 3}
    assert answers[1]["result"] == {}
    assert "file" in [tool["name"] for tool in answers[2]["result"]["tools"]]
    assert answers[3]["error"]["code"] == -32601


def test_trailing_slash_and_stage_prefix_route_to_the_endpoint(server):
    base = server.url.removesuffix("/mcp")
    for path in ["/mcp", "/mcp/", "/prod/mcp", "/prod/mcp/"]:
        with httpx.Client(timeout=10, follow_redirects=False) as client:
            response = client.post(base + path, headers={"Accept": ACCEPT, "Content-Type": JSON, "MCP-Protocol-Version": "2025-11-25"}, content=rpc("ping"))
        assert response.status_code == 200, (path, response.status_code)
        assert response.json()["result"] == {}


def test_health_reports_versions(server):
    response = httpx.get(server.url.removesuffix("/mcp") + "/health")
    body = response.json()
    assert body["status"] == "ok" and body["version"]
    assert "2026-07-28" in body["protocolVersions"] and "2024-11-05" in body["protocolVersions"]


def test_notification_is_accepted_with_202(server):
    response = send(server, "POST", {"MCP-Protocol-Version": "2025-11-25"}, json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
    assert response.status_code == 202
    assert response.content == b""


def test_allowed_origin_is_accepted(server):
    origin = f"http://127.0.0.1:{server.port}"
    response = send(server, "POST", {"Origin": origin, "MCP-Protocol-Version": "2025-11-25"}, rpc("ping"))
    assert response.status_code == 200


def test_unsupported_version_lists_the_supported_ones(server):
    meta = {**MODERN, "io.modelcontextprotocol/protocolVersion": "1999-01-01"}
    headers = {**modern_headers("tools/list"), "MCP-Protocol-Version": "1999-01-01"}
    response = send(server, "POST", headers, rpc("tools/list", {"_meta": meta}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == -32022
    assert error["data"]["supported"] == ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
def test_legacy_methods_answer_in_every_legacy_revision(server, version):
    headers = {"MCP-Protocol-Version": version}
    init = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "table", "version": "1"}}
    initialized = send(server, "POST", {}, rpc("initialize", init))
    assert initialized.json()["result"]["protocolVersion"] == version
    session = {"Mcp-Session-Id": initialized.headers["mcp-session-id"], **headers}
    for method, params in [("ping", None), ("tools/list", {}), ("resources/list", {}), ("resources/templates/list", {}),
                           ("prompts/list", {}), ("logging/setLevel", {"level": "warning"})]:
        response = send(server, "POST", session, rpc(method, params))
        assert response.status_code == 200, (version, method, response.text)
        assert "result" in response.json(), (version, method, response.text)
