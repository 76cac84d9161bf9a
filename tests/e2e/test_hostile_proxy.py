"""`mcp-sigv4-proxy` against hostile input: what a client writes to its stdin, and what a broken or
malicious upstream (`hostile_upstream.py`) answers. Every request with an id gets exactly one
stdout line, valid JSON-RPC with that id; the log says why; the proxy keeps serving; nothing
truncated ever reaches stdout; memory stays bounded.

The regression tests at the top are named after what broke; the corpus (`hostile/proxy_cases.py`)
runs at the bottom."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path

import pytest

from aws_standin import aws_env, binary
from hostile.proxy_cases import CASES
from hostile_upstream import Handler, serve

READ_TIMEOUT = 20


class Proxy:
    """The proxy on raw bytes: stdin lines in, stdout lines out (checked to be JSON one by one),
    structured stderr collected."""

    def __init__(self, endpoint: str, env: dict, *args: str) -> None:
        timeout = [] if "--timeout" in args else ["--timeout", "2"]
        self.proc = subprocess.Popen(
            [binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"), "--endpoint", endpoint, "--log-level", "info", *timeout, *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, env=env,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        fd, pending = self.proc.stdout.fileno(), bytearray()
        while chunk := os.read(fd, 1 << 20):
            pending += chunk
            while (end := pending.find(b"\n")) >= 0:
                self.lines.put(bytes(pending[:end]))
                del pending[:end + 1]
        if pending:
            self.lines.put(bytes(pending))  # a last line without its newline: a test failure

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line.decode("utf-8", "replace"))

    def send(self, line: bytes | str | dict) -> None:
        if isinstance(line, dict):
            line = json.dumps(line)
        if isinstance(line, str):
            line = line.encode()
        try:
            self.proc.stdin.write(line + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pytest.fail(f"the proxy is gone (exit {self.proc.poll()}); stderr: {self.stderr_tail()}")

    def read(self, timeout: float = READ_TIMEOUT) -> dict:
        """The next stdout line, which must be one complete JSON-RPC message."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line from the proxy within {timeout} s (exit {self.proc.poll()}); stderr: {self.stderr_tail()}")
        try:
            message = json.loads(line)
        except ValueError:
            pytest.fail(f"a stdout line that is not JSON ({len(line)} bytes): {line[:200]!r}...{line[-100:]!r}")
        assert isinstance(message, dict) and message.get("jsonrpc") == "2.0", message
        return message

    def no_more_lines(self, within: float = 0.5) -> None:
        try:
            extra = self.lines.get(timeout=within)
        except queue.Empty:
            return
        pytest.fail(f"an extra stdout line: {extra[:300]!r}")

    def logs(self) -> list[dict]:
        logs = []
        for line in self.stderr:
            try:
                logs.append(json.loads(line))
            except ValueError:
                pass
        return logs

    def log_with(self, reason: str, id=None, within: float = 3) -> dict:
        """The structured log line whose `reason` contains `reason` (for request `id`, if given)."""
        deadline = time.monotonic() + within
        while True:
            for log in self.logs():
                fields = log.get("fields", {})
                if reason in str(fields.get("reason", "")) and (id is None or fields.get("id") == json.dumps(id)):
                    return fields
            if time.monotonic() > deadline:
                pytest.fail(f"no log line with reason {reason!r} for id {id!r}; stderr: {self.stderr_tail()}")
            time.sleep(0.05)

    def peak_rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
        return 0

    def stderr_tail(self) -> str:
        return "".join(self.stderr)[-3000:]

    def close(self) -> int:
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            return self.proc.wait(timeout=READ_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail("the proxy did not exit after stdin closed")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def upstream():
    server = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    server.shutdown()
    server.server_close()


@pytest.fixture
def start(upstream, tmp_path):
    """Starts proxies against the hostile upstream (TMPDIR is the test's own folder, so that a
    temporary file left behind would show); kills what is left at the end."""
    started: list[Proxy] = []
    tmp = tmp_path / "tmp"
    tmp.mkdir()

    def start(*args: str) -> Proxy:
        proxy = Proxy(upstream, aws_env(tmp_path, TMPDIR=str(tmp)), *args)
        started.append(proxy)
        return proxy

    start.tmp = tmp
    yield start
    for proxy in started:
        proxy.kill()


def requests_seen(mode: str) -> int:
    with Handler.lock:
        return Handler.counts[mode]


def call(mode: str, rid="call", tool: str = "write", **control) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": tool, "arguments": {}, "_meta": {"hostile": {"mode": mode, **control}}}}


def ping(rid="after") -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": "ping"}


def still_serves(proxy: Proxy) -> None:
    proxy.send(ping("after"))
    answer = proxy.read()
    assert answer == {"jsonrpc": "2.0", "id": "after", "result": {}}, answer


# ---------------------------------------------------------------------------------------- stdin


def test_stdin_line_that_is_not_utf8_does_not_end_the_proxy(start):
    proxy = start()
    proxy.send(b"\xff\xfe{}")
    error = proxy.read()
    assert error["id"] is None and error["error"]["code"] == -32700
    assert "UTF-8" in error["error"]["message"]
    proxy.log_with("stdin-not-utf8")
    still_serves(proxy)
    assert proxy.close() == 0


def test_over_long_stdin_line_is_refused_without_holding_it(start):
    proxy = start()  # the default limit: 16 MiB
    line = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"' + b"x" * (64 << 20) + b'"}}'
    proxy.send(line)
    error = proxy.read(timeout=60)
    assert error["id"] is None and error["error"]["code"] == -32700
    assert str(16 << 20) in error["error"]["message"] and str(len(line)) in error["error"]["message"]
    proxy.log_with("stdin-line-too-long")
    still_serves(proxy)
    peak = proxy.peak_rss_kib()
    assert peak < 48 * 1024, f"peak RSS {peak} KiB: the 64 MiB line was held in memory"
    assert proxy.close() == 0


# ---------------------------------------------------------------------------------------- retries


def test_connection_reset_after_sending_is_not_retried_for_a_call_with_side_effects(start):
    proxy = start()
    before = requests_seen("reset")
    proxy.send(call("reset"))
    error = proxy.read()
    assert error["id"] == "call" and error["error"]["code"] == -32000, error
    assert requests_seen("reset") - before == 1, "sent once: it may have run"
    assert error["error"]["data"]["reason"] == "interrupted"
    proxy.send({**call("reset", rid="ping", tool="x"), "method": "ping"})
    assert proxy.read()["id"] == "ping"
    assert requests_seen("reset") - before == 1 + 4, "a ping is side-effect free: retried"
    assert proxy.close() == 0


# ---------------------------------------------------------------------------------------- answers


@pytest.mark.parametrize("method", ["initialize", "tools/list"])
@pytest.mark.parametrize("mode", ["cut", "stall"])
def test_broken_initialize_or_tools_list_answer_gets_an_error_not_silence(start, method, mode):
    proxy = start("--timeout", "1")
    params = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    params["_meta"] = {"hostile": {"mode": mode, "after": 20, "seconds": 4}}
    proxy.send({"jsonrpc": "2.0", "id": 5, "method": method, "params": params})
    error = proxy.read(timeout=15)
    assert error["id"] == 5 and error["error"]["code"] == -32000, error
    assert error["error"]["data"]["hint"]
    proxy.no_more_lines()
    still_serves(proxy)
    assert proxy.close() == 0


@pytest.mark.parametrize("framing", ["chunked", "length", "eof"])
def test_json_answer_cut_mid_stream_never_reaches_stdout_truncated(start, framing):
    proxy = start()
    proxy.send(call("cut", after=100, framing=framing))
    error = proxy.read()  # fails if the first line is the truncated answer
    assert error["id"] == "call" and error["error"]["code"] == -32000, error
    proxy.no_more_lines()
    still_serves(proxy)
    assert proxy.close() == 0


def test_large_answer_passes_whole_through_a_temporary_file_with_bounded_memory(start):
    proxy = start()
    still_serves(proxy)
    baseline = proxy.peak_rss_kib()
    proxy.send(call("huge", bytes=22_000_000))
    proxy.send(ping("after"))
    answers = {}
    while len(answers) < 2:
        answer = proxy.read(timeout=60)
        answers[answer["id"]] = answer
    assert "result" in answers["call"], answers["call"]
    rows = answers["call"]["result"]["structuredContent"]["rows"]
    assert rows[123] == {"row": 123, "text": "line 123\nwith an escaped newline"}
    growth = proxy.peak_rss_kib() - baseline
    assert growth < 6 * 1024, f"peak RSS grew by {growth} KiB while passing a 22 MB answer"
    assert proxy.close() == 0
    assert not list(start.tmp.iterdir()), "no temporary file is left behind"


# ---------------------------------------------------------------------------------------- event streams


def test_sse_stream_that_breaks_after_the_answer_gets_no_second_answer(start):
    proxy = start()
    proxy.send(call("sse-answer-then-break"))
    answer = proxy.read()
    assert answer["id"] == "call" and "result" in answer, answer
    proxy.no_more_lines(within=1)
    still_serves(proxy)
    assert proxy.close() == 0


def test_sse_stream_that_ends_without_the_answer_gets_an_error(start):
    proxy = start()
    proxy.send(call("sse-truncated"))
    progress = proxy.read()
    assert progress["method"] == "notifications/progress"
    error = proxy.read()
    assert error["id"] == "call" and error["error"]["code"] == -32000, error
    assert error["error"]["data"]["reason"] == "sse-ended-early"
    still_serves(proxy)
    assert proxy.close() == 0


def test_endless_sse_event_is_not_passed_on_as_a_line(start):
    proxy = start()  # the default limit: the 64 MiB event fits, but it is no JSON message
    proxy.send(call("sse-endless", bytes=64 << 20))
    error = proxy.read(timeout=60)
    assert error["id"] == "call" and error["error"]["code"] == -32000, error
    still_serves(proxy)
    assert proxy.close() == 0


def test_endless_sse_event_stops_at_the_limit(start):
    proxy = start("--max-answer-bytes", "1M")
    still_serves(proxy)
    baseline = proxy.peak_rss_kib()
    proxy.send(call("sse-endless", bytes=256 << 20))
    error = proxy.read(timeout=30)
    assert error["id"] == "call" and error["error"]["data"]["reason"] == "sse-event-too-large", error
    growth = proxy.peak_rss_kib() - baseline
    assert growth < 6 * 1024, f"peak RSS grew by {growth} KiB"
    still_serves(proxy)
    assert proxy.close() == 0


# ---------------------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_proxy_case(start, case):
    payload = case.payload
    proxy = start(*payload.get("args", []))
    mode, count = payload.get("upstream", (None, 0))
    before = requests_seen(mode) if mode else 0
    if "request" in payload:
        proxy.send(payload["request"])
        expected_id = payload.get("id", payload["request"].get("id"))
    else:
        proxy.send(payload["line"])
        expected_id = payload.get("id")
    answer = proxy.read()
    while "method" in answer and "id" not in answer:
        answer = proxy.read()  # notifications (progress) come first
    assert answer.get("id") == expected_id, answer
    if case.code is None:
        assert "result" in answer, answer
    else:
        assert answer.get("error", {}).get("code") == case.code, answer
    if case.reason:
        proxy.log_with(case.reason, expected_id)
    if mode:
        assert requests_seen(mode) - before == count, f"the upstream saw {requests_seen(mode) - before} requests"
    still_serves(proxy)  # also: no second line for the case's request came first
    proxy.no_more_lines(within=0.2)
    assert proxy.close() == 0
