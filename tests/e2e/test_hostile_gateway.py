"""The hostile-input corpus against the gateway over HTTP (`serve`): each case gets exactly the
answer it lists (HTTP status, JSON-RPC code or an isError result), the log says why, the server
stays up, and nothing under the data root changed."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from conftest import Server
from hostile import Case
from hostile.http_cases import CASES, MODERN, OUTSIDE, send
from hostile.roots import SECRET, hostile_root, snapshot

# Short limits, so the slow-loris cases finish quickly.
ENV = {"MCP_BODY_TIMEOUT": "2", "MCP_HEADER_TIMEOUT": "2"}


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    read_only, secret = hostile_root(tmp / "ro")
    writable, _ = hostile_root(tmp / "rw")
    servers = {
        "ro": Server(tmp, "--db-memory", "64MiB", data_root=str(read_only), env=ENV),
        "rw": Server(tmp, "--allow-write", "--max-write-bytes", "1MiB", data_root=str(writable), env=ENV),
    }
    yield {"ro": read_only, "rw": writable, "secret": secret, "servers": servers}
    for server in servers.values():
        server.stop()


def send_to(server: Server, method: str, headers: dict, body) -> httpx.Response:
    return send(server.url, method, headers, body)


def call_tool(server: Server, name: str, arguments: dict) -> httpx.Response:
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    return send_to(server, "POST", {"MCP-Protocol-Version": "2025-11-25"}, json.dumps(message))


def raw_exchange(server: Server, pieces: list[bytes], pause: float) -> bytes:
    """Sends `pieces` on one connection with `pause` seconds between them; returns what came back
    before the server closed the connection (or 15 s passed)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as conn:
        for index, piece in enumerate(pieces):
            if index:
                time.sleep(pause)
            try:
                conn.sendall(piece)
            except OSError:
                break  # the server already closed it
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except OSError:
            pass
        return received


def http_body(answer: bytes) -> bytes:
    """The body of a raw HTTP/1.1 response, chunked or not."""
    head, _, body = answer.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" not in head.lower():
        return body
    decoded = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        decoded += rest[:size]
        body = rest[size + 2:]
    return decoded


def substitute(value, secret: str):
    """The payload with the path of the secret outside the root filled in."""
    if isinstance(value, str):
        return value.replace(OUTSIDE, secret)
    if isinstance(value, dict):
        return {key: substitute(item, secret) for key, item in value.items()}
    return value


def check_log(server: Server, before: int, case: Case, target: str = "mcp_gateway::request") -> None:
    lines = [line for line in server.log_lines()[before:] if line.get("target") == target]
    assert lines, f"{case.id}: no {target} log line"
    fields = lines[-1]["fields"]
    if case.status is not None and target == "mcp_gateway::request":
        assert fields["status"] == case.status, (case.id, fields)
    if case.code is not None:
        assert fields.get("error_code") == case.code, (case.id, fields)
        assert fields.get("reason"), f"{case.id}: the log does not say why: {fields}"
    if case.reason is not None:
        assert case.reason in (fields.get("reason") or ""), (case.id, case.reason, fields)


def run_tool_case(case: Case, server: Server, secret: str, root) -> None:
    payload = substitute(case.payload, secret)
    repeat = payload["repeat"]
    if repeat == 1:
        response = call_tool(server, payload["tool"], payload["arguments"])
        assert response.status_code == 200, (case.id, response.text[:300])
        result = response.json()["result"]
        text = result["content"][0]["text"]
        assert result.get("isError") is case.tool_error, (case.id, text[:300])
        assert SECRET not in response.text, f"{case.id}: the secret outside the root came back"
        if case.reason is not None:
            assert case.reason in text, (case.id, case.reason, text[:300])
        return
    # Many writers on one path at once: each succeeds, and the file ends as one writer's whole text.
    bodies = [payload["arguments"]["text"].replace("{n}", str(i)) for i in range(repeat)]
    results: list = [None] * repeat

    def write(i: int) -> None:
        arguments = {**payload["arguments"], "text": bodies[i]}
        try:
            results[i] = call_tool(server, payload["tool"], arguments).json()
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            results[i] = {"exception": repr(error)}

    threads = [threading.Thread(target=write, args=(i,)) for i in range(repeat)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    failed = [r for r in results if not (r and r.get("result", {}).get("isError") is False)]
    assert not failed, (case.id, json.dumps(failed)[:600])
    written = root / payload["arguments"]["path"]
    assert written.read_text() in bodies, f"{case.id}: the file holds a mix of writes"
    leftovers = [path.name for path in written.parent.iterdir() if ".tmp-" in path.name]
    assert leftovers == [], case.id


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_http_request(roots, case: Case):
    payload = case.payload
    server_name = payload.get("server", "ro")
    server, root = roots["servers"][server_name], roots[server_name]
    secret = str(roots["secret"])
    before_state = snapshot(root, skip="out")
    before = len(server.log_lines())
    if "tool" in payload:
        run_tool_case(case, server, secret, root)
        check_log(server, before, case)
    elif "resource" in payload:
        params = {"uri": payload["resource"], "_meta": MODERN}
        message = {"jsonrpc": "2.0", "id": 3, "method": "resources/read", "params": params}
        headers = {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "resources/read", "Mcp-Name": payload["resource"]}
        response = send_to(server, "POST", headers, json.dumps(message))
        assert response.status_code == case.status, (case.id, response.text[:300])
        assert response.json()["error"]["code"] == case.code, (case.id, response.text[:300])
        check_log(server, before, case)
    elif "raw" in payload:
        answer = raw_exchange(server, payload["raw"], payload["pause"])
        if case.status is None:
            assert not answer.startswith(b"HTTP/1.1 2"), (case.id, answer[:200])
        else:
            assert answer.startswith(f"HTTP/1.1 {case.status}".encode()), (case.id, answer[:300])
        if case.code is not None:
            body = http_body(answer)
            assert json.loads(body)["error"]["code"] == case.code, (case.id, body[:300])
            check_log(server, before, case)
        else:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not any(
                line.get("target") == "mcp_gateway::connection" for line in server.log_lines()[before:]
            ):
                time.sleep(0.1)
            check_log(server, before, case, target="mcp_gateway::connection")
    else:
        response = send_to(server, payload["method"], payload["headers"], substitute(payload["body"], secret))
        assert response.status_code == case.status, (case.id, response.status_code, response.text[:300])
        if case.code is not None:
            body = response.json()
            assert body["error"]["code"] == case.code, (case.id, body)
            assert body["error"]["message"], case.id
        check_log(server, before, case)
    assert server.alive(), f"the server died on {case.id}"
    assert snapshot(root, skip="out") == before_state, f"{case.id} changed the data root"


def test_the_servers_still_answer_after_the_corpus(roots):
    for server in roots["servers"].values():
        response = call_tool(server, "file", {"action": "read", "path": "sales/regions.csv"})
        assert response.json()["result"]["structuredContent"]["text"].startswith("code,name,manager\n")
