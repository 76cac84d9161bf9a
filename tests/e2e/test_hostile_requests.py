"""Requests at the edges of the protocol against `serve` that must work: batches, routes, health,
notifications, origins, every legacy revision. The hostile ones are in the corpus
(tests/e2e/hostile/, run by test_hostile_gateway.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from hostile.http_cases import ACCEPT, MODERN, modern_headers, rpc
from hostile.http_cases import send as send_to_url

JSON = "application/json"


def send(server, method, headers, body):
    return send_to_url(server.url, method, headers, body, timeout=10)


def test_valid_requests_work(server):
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


def test_batch_elements_are_each_logged_with_their_outcome(server):
    """Regression: the messages of a 2025-03-26 batch were answered but never access-logged."""
    before = len(server.request_logs())
    batch = [json.loads(rpc("ping", id=11)), json.loads(rpc("tools/call", {"name": "file", "arguments": {"action": "read", "path": "../x"}}, id=12))]
    response = send(server, "POST", {"MCP-Protocol-Version": "2025-03-26"}, json.dumps(batch))
    assert response.status_code == 200
    logs = server.request_logs()[before:]
    elements = {line["rpc_id"]: line for line in logs if line.get("batch_element")}
    assert set(elements) == {"11", "12"}, logs
    assert elements["11"]["method"] == "ping" and elements["11"]["outcome"] == "ok"
    assert elements["12"]["tool"] == "file" and elements["12"]["outcome"] == "tool_error"
    assert "cannot leave the data root" in elements["12"]["reason"]
    assert any(line["method"] == "batch" and not line.get("batch_element") for line in logs)


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
