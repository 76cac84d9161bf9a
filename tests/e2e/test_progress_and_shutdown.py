"""Progress over SSE when the client asks for it, JSON otherwise; graceful shutdown of `serve`."""

from __future__ import annotations

import json
import signal
import subprocess

import httpx
import pytest
from mcp.client.client import Client

from conftest import Server

LIST = {"action": "list", "recursive": True}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_progress_notifications_reach_the_client(server, mode):
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with Client(server.url, mode=mode) as client:
        result = await client.call_tool("file", LIST, progress_callback=on_progress)
    assert result.is_error is False
    entries = result.structured_content["entries"]
    assert len(seen) == 2, seen
    assert seen[0][2] == "listing ."
    assert seen[-1] == (len(entries), len(entries), f"{len(entries)} entries found")


def post(server, body, **headers):
    return httpx.post(
        server.url,
        headers={"Accept": "application/json, text/event-stream", "Content-Type": "application/json", **headers},
        content=json.dumps(body),
        timeout=10,
    )


def test_sse_only_when_progress_is_requested(server):
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "file", "arguments": LIST}}
    plain = post(server, call, **{"MCP-Protocol-Version": "2025-11-25"})
    assert plain.headers["content-type"].startswith("application/json")
    assert plain.json()["result"]["structuredContent"]["entries"]

    call["params"]["_meta"] = {"progressToken": "tok-1"}
    streamed = post(server, call, **{"MCP-Protocol-Version": "2025-11-25"})
    assert streamed.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[5:]) for line in streamed.text.splitlines() if line.startswith("data:") and line[5:].strip()]
    methods = [event.get("method") for event in events]
    assert methods[:2] == ["notifications/progress", "notifications/progress"], events
    assert all(event["params"]["progressToken"] == "tok-1" for event in events[:2])
    assert events[-1]["id"] == 1 and "result" in events[-1], "the stream ends with the result"


def test_sigterm_stops_serve_cleanly(tmp_path):
    srv = Server(tmp_path)
    assert post(srv, {"jsonrpc": "2.0", "id": 1, "method": "ping"}, **{"MCP-Protocol-Version": "2025-11-25"}).status_code == 200
    srv.proc.send_signal(signal.SIGTERM)
    try:
        code = srv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        srv.proc.kill()
        pytest.fail("serve did not stop within 10 s of SIGTERM")
    srv.stop()
    assert code == 0
    messages = [line["fields"].get("message") for line in srv.log_lines()]
    assert "shutdown requested; finishing open requests" in messages
