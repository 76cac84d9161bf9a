"""Embedded: an existing axum service (functions/mcp-gateway/examples/embedded.rs) mounts the
gateway's router under `/assistant` with `Router::nest`. Its own routes still answer, `/mcp`
without the prefix is its 404, and MCP clients of both eras (Python SDK, TypeScript SDKs) use
`/assistant/mcp`: tools listed, files read, a `db` query run in the example's own worker process."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from mcp.client.client import Client

from aws_standin import binary
from conftest import DATA, LoggedProcess
from hostile.http_cases import MODERN, modern_headers, rpc, send
from test_ts_client import FLAVORS, check_ts_result, run_ts_client

PREFIX = "/assistant"
NOTE = "Orders ship on weekdays.\n"


def embedded_bin() -> str:
    return binary("MCP_EMBEDDED_BIN", "examples/embedded")


class Embedded(LoggedProcess):
    """The example service on a free port; `base` is its root, `url` the MCP endpoint."""

    def __init__(self, tmp: Path, data_root: Path) -> None:
        self.open_log(tmp / "embedded.log")
        self.proc = subprocess.Popen(
            [embedded_bin(), "--addr", "127.0.0.1:0", "--data-root", str(data_root)],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "RUST_LOG": "info,rmcp=warn"},
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 20)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on http://"):
            self.stop()
            pytest.fail(f"the embedded example did not start ({line!r}); log:\n{self.log_path.read_text()}")
        self.base = line.split()[-1]
        self.url = f"{self.base}{PREFIX}/mcp"

    def request_logs(self) -> list[dict]:
        return [line["fields"] for line in self.log_lines() if line.get("target") == "mcp_gateway::request"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("embedded-data")
    (root / "sales").mkdir()
    shutil.copy(DATA / "sales" / "regions.csv", root / "sales" / "regions.csv")
    (root / "notes").mkdir()
    (root / "notes" / "shipping.txt").write_text(NOTE)
    return root


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, data_root: Path):
    service = Embedded(tmp_path_factory.mktemp("embedded"), data_root)
    yield service
    service.stop()


def test_the_host_service_keeps_its_own_routes(embedded):
    index = httpx.get(f"{embedded.base}/", timeout=10)
    assert index.status_code == 200 and index.json()["service"] == "orders", index.text
    assert httpx.get(f"{embedded.base}/api/orders", timeout=10).json() == []
    created = httpx.post(f"{embedded.base}/api/orders", json={"item": "pen", "quantity": 3}, timeout=10)
    assert created.status_code == 201, created.text
    assert httpx.get(f"{embedded.base}/api/orders", timeout=10).json() == [{"id": 1, "item": "pen", "quantity": 3}]
    refused = httpx.post(f"{embedded.base}/api/orders", json={"item": "", "quantity": 0}, timeout=10)
    assert refused.status_code == 422, refused.text


@pytest.mark.parametrize("path", ["/mcp", "/health", "/openapi.json", PREFIX, f"{PREFIX}/nope"])
def test_paths_outside_the_gateway_routes_are_the_host_services_404(embedded, path):
    for response in [httpx.get(f"{embedded.base}{path}", timeout=10),
                     send(f"{embedded.base}{path}", "POST", modern_headers("tools/list"), rpc("tools/list", {"_meta": MODERN}))]:
        assert response.status_code == 404, (path, response.status_code, response.text)
        assert response.json()["service"] == "orders", (path, response.text)
        assert "jsonrpc" not in response.json()


def test_the_gateway_routes_answer_under_the_prefix(embedded):
    health = httpx.get(f"{embedded.base}{PREFIX}/health", timeout=10)
    assert health.status_code == 200 and health.json()["name"] == "mcp-gateway", health.text
    document = httpx.get(f"{embedded.base}{PREFIX}/openapi.json", timeout=10).json()
    assert document["servers"] == [{"url": PREFIX}] and "/mcp" in document["paths"]
    # The gateway's own 405 (a JSON-RPC error), not the host's 404.
    get = httpx.get(embedded.url, headers={"Accept": "text/event-stream"}, timeout=10)
    assert get.status_code == 405 and get.json()["jsonrpc"] == "2.0", get.text
    # The DNS-rebinding check still applies under the prefix.
    rebound = send(embedded.url, "POST", {**modern_headers("tools/list"), "Host": "evil.example"},
                   rpc("tools/list", {"_meta": MODERN}))
    assert rebound.status_code == 403 and "evil.example" in rebound.json()["error"]["message"], rebound.text


def test_a_2025_11_25_session_id_works_under_the_prefix(embedded):
    init = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "embedded-e2e", "version": "1"}}
    initialized = send(embedded.url, "POST", {}, rpc("initialize", init))
    assert initialized.status_code == 200, initialized.text
    session = initialized.headers.get("mcp-session-id")
    assert session, dict(initialized.headers)
    headers = {"MCP-Protocol-Version": "2025-11-25"}
    listed = send(embedded.url, "POST", {**headers, "Mcp-Session-Id": session}, rpc("tools/list", {}))
    assert listed.status_code == 200 and "file" in [t["name"] for t in listed.json()["result"]["tools"]], listed.text
    forged = send(embedded.url, "POST", {**headers, "Mcp-Session-Id": "forged"}, rpc("tools/list", {}))
    assert forged.status_code == 404 and forged.json()["jsonrpc"] == "2.0", forged.text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_python_client(embedded, mode):
    expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
    async with Client(embedded.url, mode=mode) as client:
        assert client.protocol_version == expected
        names = [tool.name for tool in (await client.list_tools()).tools]
        assert {"file", "db"} <= set(names), names

        regions = await client.call_tool("file", {"action": "read", "path": "sales/regions.csv"})
        assert regions.is_error is False, regions.content
        assert regions.structured_content["text"] == (DATA / "sales" / "regions.csv").read_text()
        note = await client.call_tool("file", {"action": "read", "path": "notes/shipping.txt"})
        assert note.is_error is False and note.structured_content["text"] == NOTE, note.content
        escaped = await client.call_tool("file", {"action": "read", "path": "../etc/passwd"})
        assert escaped.is_error is True

        # `db` runs the query in a child process of the example binary (its `main` hands it over).
        counted = await client.call_tool("db", {"action": "query", "sql": "SELECT COUNT(*) AS n FROM sales_regions"})
        assert counted.is_error is False, counted.content
        assert counted.structured_content["rows"] == [{"n": 4}]
    versions = {log.get("protocol_version") for log in embedded.request_logs() if log.get("tool") == "file"}
    assert expected in versions, versions


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_typescript_client(embedded, node_bin, flavor):
    check_ts_result(flavor, run_ts_client(node_bin, flavor, embedded.url))


def test_sigterm_stops_it_cleanly(tmp_path, data_root):
    service = Embedded(tmp_path, data_root)
    assert httpx.get(f"{service.base}{PREFIX}/health", timeout=10).status_code == 200
    service.proc.send_signal(signal.SIGTERM)
    assert service.proc.wait(timeout=15) == 0
    service.stop()
    assert any("shutdown requested" in line.get("fields", {}).get("message", "") for line in service.log_lines())


def test_a_missing_data_root_is_a_usage_error(tmp_path):
    proc = subprocess.run([embedded_bin(), "--addr", "127.0.0.1:0", "--data-root", str(tmp_path / "nowhere")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2, proc
    assert "--data-root" in proc.stderr and "nowhere" in proc.stderr, proc.stderr
    assert proc.stdout == ""
    bad = subprocess.run([embedded_bin(), "--addr", "not-an-address"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "--addr" in bad.stderr, bad
