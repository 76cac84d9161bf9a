"""`mcp-sigv4-proxy` end to end: MCP clients on stdio → proxy → SigV4-verifying API Gateway
stand-in (scratchstack-aws-signature) → `mcp-gateway serve` (or a slow SSE upstream)."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mcp import StdioServerParameters
from mcp.client.client import Client

from aws_standin import ACCESS_KEY, OTHER_KEY, OTHER_SECRET, SECRET, TOKEN, StandIn, aws_env, binary
from conftest import ROOT, Server, free_port
from test_python_client import list_and_call

class RawProxy:
    """The proxy driven line by line, recording when each stdout line arrived."""

    def __init__(self, endpoint: str, env: dict, *args: str) -> None:
        self.proc = subprocess.Popen(
            [binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"), "--endpoint", endpoint, "--log-level", "info", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )
        self.lines: queue.Queue[tuple[float, dict]] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put((time.monotonic(), json.loads(line)))

    def send(self, message) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def read(self, timeout: float = 20) -> tuple[float, dict]:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line from the proxy within {timeout} s; stderr: {''.join(self.stderr)[-2000:]}")

    def close(self) -> int:
        self.proc.stdin.close()
        return self.proc.wait(timeout=20)


def ping(rid=1):
    return {"jsonrpc": "2.0", "id": rid, "method": "ping"}


def initialize(rid=1):
    return {"jsonrpc": "2.0", "id": rid, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}


@pytest.fixture(scope="module")
def standin(server, tmp_path_factory):
    stand_in = StandIn(tmp_path_factory.mktemp("standin"), server.url, {ACCESS_KEY: {"secret": SECRET}})
    yield stand_in
    stand_in.stop()


@pytest.fixture(scope="module")
def slow_standin(tmp_path_factory):
    port = free_port()
    upstream = subprocess.Popen([sys.executable, str(ROOT / "tests/e2e/slow_upstream.py"), str(port), "--delay", "1.5"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.post(f"http://127.0.0.1:{port}/mcp", json=ping())
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    stand_in = StandIn(tmp_path_factory.mktemp("slow"), f"http://127.0.0.1:{port}/mcp", {ACCESS_KEY: {"secret": SECRET}})
    yield stand_in
    stand_in.stop()
    upstream.terminate()
    upstream.wait(timeout=10)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_python_client_through_the_proxy(standin, tmp_path, mode):
    before = standin.verified()
    params = StdioServerParameters(command=binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"), args=["--endpoint", standin.url], env=aws_env(tmp_path))
    async with Client(params, mode=mode) as client:
        await list_and_call(client)
    assert standin.verified() > before, "requests passed the SigV4 check"


@pytest.mark.parametrize(
    ("credentials", "env_kwargs", "expect"),
    [
        ({ACCESS_KEY: {"secret": OTHER_SECRET}}, {}, "--region (us-east-1)"),
        ({ACCESS_KEY: {"secret": SECRET, "session_token": TOKEN, "expired": True}}, {"token": TOKEN}, "aws sso login --profile"),
        ({OTHER_KEY: {"secret": OTHER_SECRET}}, {}, "AWS does not recognise these credentials"),
    ],
    ids=["wrong-secret", "expired-session-token", "unknown-access-key"],
)
def test_auth_failures_explain_the_fix(server, tmp_path, credentials, env_kwargs, expect):
    stand_in = StandIn(tmp_path, server.url, credentials)
    try:
        proxy = RawProxy(stand_in.url, aws_env(tmp_path, **env_kwargs))
        proxy.send(initialize(7))
        _, answer = proxy.read()
        assert answer["id"] == 7
        assert answer["error"]["code"] == -32000
        assert answer["error"]["data"]["status"] == 403
        assert expect in answer["error"]["data"]["hint"], answer
        assert answer["error"]["data"]["body"], "the gateway's own error body is kept"
        assert proxy.close() == 0
    finally:
        stand_in.stop()


def test_wrong_stage_path_hints_at_the_url(standin, tmp_path):
    proxy = RawProxy(standin.url.replace("/prod/", "/dev/"), aws_env(tmp_path))
    proxy.send(ping(3))
    _, answer = proxy.read()
    assert "Missing Authentication Token" in answer["error"]["message"]
    assert "stage" in answer["error"]["data"]["hint"]
    proxy.close()


@pytest.mark.anyio
async def test_credentials_rotated_mid_session(server, tmp_path):
    source = tmp_path / "current-key.json"
    source.write_text(json.dumps({"key": ACCESS_KEY, "secret": SECRET}))
    script = tmp_path / "credential_process.py"
    script.write_text(
        "import json, sys, datetime\n"
        f"k = json.load(open({str(source)!r}))\n"
        "exp = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2)).strftime('%Y-%m-%dT%H:%M:%SZ')\n"
        "print(json.dumps({'Version': 1, 'AccessKeyId': k['key'], 'SecretAccessKey': k['secret'], 'Expiration': exp}))\n"
    )
    config = tmp_path / "aws-config"
    config.write_text(f"[profile rotating]\ncredential_process = {sys.executable} {script}\nregion = us-east-1\n")
    env = aws_env(tmp_path, AWS_PROFILE="rotating", AWS_CONFIG_FILE=str(config))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        env.pop(name)
    stand_in = StandIn(tmp_path, server.url, {ACCESS_KEY: {"secret": SECRET}})
    try:
        params = StdioServerParameters(command=binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"), args=["--endpoint", stand_in.url], env=env)
        async with Client(params, mode="legacy") as client:
            assert (await client.list_tools()).tools
            # Rotate: the old key stops working, the credential process hands out the new one.
            source.write_text(json.dumps({"key": OTHER_KEY, "secret": OTHER_SECRET}))
            stand_in.set_credentials({OTHER_KEY: {"secret": OTHER_SECRET}})
            time.sleep(2.5)
            result = await client.call_tool("file", {"action": "info", "path": "sales"})
            assert result.is_error is False
    finally:
        stand_in.stop()


def test_sse_events_are_streamed_not_buffered(slow_standin, tmp_path):
    proxy = RawProxy(slow_standin.url, aws_env(tmp_path))
    proxy.send({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "slow", "_meta": {"progressToken": "slow"}}})
    first_at, first = proxy.read()
    last_at, last = proxy.read()
    assert first["method"] == "notifications/progress"
    assert last["id"] == 11 and last["result"]["content"][0]["text"] == "done"
    assert last_at - first_at >= 1.0, "the progress event reached stdout before the stream ended"
    proxy.close()


def test_large_pretty_printed_answer_arrives_as_one_line(slow_standin, tmp_path):
    proxy = RawProxy(slow_standin.url, aws_env(tmp_path))
    proxy.send({"jsonrpc": "2.0", "id": "big", "method": "tools/call", "params": {"name": "pretty"}})
    proxy.send(ping("after"))
    answers = {}
    while len(answers) < 2:
        _, line = proxy.read()
        answers[line["id"]] = line
    rows = answers["big"]["result"]["structuredContent"]["rows"]
    assert len(rows) == 20000 and rows[123] == {"row": 123, "text": "line 123\nwith an escaped newline"}
    assert answers["after"]["result"] == {}
    proxy.close()


def test_slow_call_does_not_block_a_ping(slow_standin, tmp_path):
    proxy = RawProxy(slow_standin.url, aws_env(tmp_path))
    sent = time.monotonic()
    proxy.send({"jsonrpc": "2.0", "id": "slow", "method": "tools/call", "params": {"name": "slow"}})
    proxy.send(ping("fast"))
    answers = []
    while len(answers) < 2:
        at, line = proxy.read()
        if "id" in line:
            answers.append((at, line["id"]))
    assert answers[0][1] == "fast" and answers[0][0] - sent < 1.0, answers
    assert answers[1][1] == "slow"
    proxy.close()


@pytest.mark.anyio
async def test_server_restart_mid_session_is_invisible(tmp_path):
    port = free_port()
    first = Server(tmp_path, port=port)
    stand_in = StandIn(tmp_path, first.url, {ACCESS_KEY: {"secret": SECRET}})
    env = aws_env(tmp_path, MCP_PROXY_LOG="info")
    try:
        params = StdioServerParameters(command=binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"), args=["--endpoint", stand_in.url], env=env)
        async with Client(params, mode="legacy") as client:
            assert (await client.list_tools()).tools
            first.stop()  # a new deployment: new process, new session key, old session ids unknown
            second = Server(tmp_path, port=port)
            try:
                result = await client.call_tool("file", {"action": "info", "path": "sales"})
                assert result.is_error is False
                assert "sales" in result.content[0].text
            finally:
                second.stop()
        logs = [json.loads(line)["fields"] for line in second.log_path.read_text().splitlines()]
        requests = [(log.get("method"), log.get("status")) for log in logs if log.get("http_method")]
        assert requests == [("tools/call", 404), ("initialize", 200), ("notifications/initialized", 202), ("tools/call", 200)], requests
    finally:
        stand_in.stop()


def test_malformed_stdin_gets_a_parse_error_and_the_proxy_keeps_running(standin, tmp_path):
    proxy = RawProxy(standin.url, aws_env(tmp_path))
    proxy.send("{this is not json")
    _, parse_error = proxy.read()
    assert parse_error["error"]["code"] == -32700 and parse_error["id"] is None
    proxy.send(initialize(2))
    _, answer = proxy.read()
    assert answer["id"] == 2 and answer["result"]["protocolVersion"] == "2025-11-25"
    assert proxy.close() == 0


def test_endpoint_down_is_explained(tmp_path):
    proxy = RawProxy(f"http://127.0.0.1:{free_port()}/prod/mcp", aws_env(tmp_path), "--region", "us-east-1")
    started = time.monotonic()
    proxy.send(ping(5))
    _, answer = proxy.read()
    assert answer["id"] == 5
    assert answer["error"]["message"].startswith("cannot connect to 127.0.0.1:")
    assert "is the endpoint up" in answer["error"]["data"]["hint"]
    assert time.monotonic() - started < 15, "retries are bounded"
    assert any("retrying" in line for line in proxy.stderr), "connect failures are retried"
    proxy.close()


def test_throttling_is_retried_transparently(standin, tmp_path):
    proxy = RawProxy(standin.url, aws_env(tmp_path))
    standin.throttle(2)
    proxy.send(initialize(9))
    _, answer = proxy.read()
    assert answer["id"] == 9 and "result" in answer, answer
    assert sum("retrying" in line for line in proxy.stderr) == 2
    proxy.close()


def test_tool_filters_hide_and_refuse_locally(standin, tmp_path):
    proxy = RawProxy(standin.url, aws_env(tmp_path), "--deny-tools", "fi*")
    proxy.send(initialize(1))
    proxy.read()
    proxy.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    _, listed = proxy.read()
    names = [tool["name"] for tool in listed["result"]["tools"]]
    assert "search" in names and not any(name.startswith("fi") for name in names), names
    before = standin.verified()
    proxy.send({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "file", "arguments": {"action": "info"}}})
    _, refused = proxy.read()
    assert refused["error"]["code"] == -32602 and "--deny-tools" in refused["error"]["message"]
    assert standin.verified() == before, "refused locally, never sent"
    proxy.close()

    read_only = RawProxy(standin.url, aws_env(tmp_path), "--read-only")
    read_only.send({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "file", "arguments": {"action": "info", "path": "sales"}}})
    _, allowed = read_only.read()
    assert allowed["id"] == 4 and allowed["result"]["isError"] is False, "file is read-only, so it is allowed"
    read_only.close()


def test_doctor_reports_ready_or_what_to_fix(standin, tmp_path):
    proxy_bin = binary("MCP_PROXY_BIN", "mcp-sigv4-proxy")
    env = aws_env(tmp_path, AWS_ENDPOINT_URL_STS=standin.base + "/")
    good = subprocess.run([proxy_bin, "doctor", "--endpoint", standin.url], env=env, capture_output=True, text=True, timeout=60)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "✓ identity: arn:aws:iam::123456789012:user/alice" in good.stdout
    assert "✓ signed server/discover: mcp-gateway speaks" in good.stdout
    assert "diagnosis: ready" in good.stdout
    bad = subprocess.run([proxy_bin, "doctor", "--endpoint", standin.url], env=aws_env(tmp_path, secret=OTHER_SECRET),
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert "✗ signed server/discover" in bad.stdout and "fix:" in bad.stdout
