"""`mcp-gateway health`, the container's HEALTHCHECK (distroless has no curl): exit 0 when the URL
answers 200, 1 with a one-line reason otherwise (refused, 503, a redirect, no answer in time), 2
for a setting that does not parse; and `serve` started the way the image starts it (the
Dockerfile's ENV, ENTRYPOINT and CMD, read from the Dockerfile), with what `docker run --read-only
--tmpfs /tmp` leaves it: no HOME, a fresh TMPDIR, a working directory and data root it must not
write to."""

from __future__ import annotations

import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import DATA, ROOT, free_port, gateway_bin

sys.path.insert(0, str(ROOT / "tests"))
import dockerfile as df  # noqa: E402

IMAGE = df.stages(df.DOCKERFILE.read_text())[-1]
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


def health(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([gateway_bin(), "health", *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def one_line(run: subprocess.CompletedProcess) -> str:
    lines = run.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {run.stderr!r}"
    return lines[0]


class Answering:
    """A local HTTP server whose every GET gets `status` (and `headers`), or, with `hang`, no
    answer at all."""

    def __init__(self, status: int = 200, headers: dict[str, str] | None = None, hang: bool = False):
        self.release = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                if hang:
                    outer.release.wait(30)
                    return
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self) -> Answering:
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def closed_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------------------- the command


def test_a_running_server_is_healthy(server):
    run = health("--url", f"http://127.0.0.1:{server.port}/health")
    assert run.returncode == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    # The URL also comes from MCP_HEALTH_URL, which is how a container serving elsewhere sets it.
    run = health(env={"MCP_HEALTH_URL": f"http://127.0.0.1:{server.port}/live"})
    assert run.returncode == 0, run.stderr


def test_a_closed_port_is_unhealthy_with_the_reason():
    url = f"http://127.0.0.1:{closed_port()}/health"
    run = health("--url", url)
    assert run.returncode == 1
    line = one_line(run)
    assert line.startswith(f"mcp-gateway health: GET {url}: ") and "onnection refused" in line, line


@pytest.mark.parametrize(("status", "headers", "says"), [
    (503, {}, "503 Service Unavailable"),
    (500, {}, "500 Internal Server Error"),
    (204, {}, "204 No Content"),
    # A redirect is not followed (the outbound client's rule): the answer is the 302 itself.
    (302, {"Location": "http://127.0.0.1:1/health"}, "302 Found"),
])
def test_an_answer_other_than_200_is_unhealthy(status, headers, says):
    with Answering(status, headers) as answering:
        run = health("--url", answering.url)
    assert run.returncode == 1
    line = one_line(run)
    assert line == f"mcp-gateway health: GET {answering.url} answered {says}, not 200 OK", line


def test_an_answer_of_200_from_any_server_is_healthy():
    with Answering(200) as answering:
        run = health("--url", answering.url)
    assert run.returncode == 0, run.stderr


def test_a_server_that_never_answers_is_unhealthy_within_the_timeout():
    with Answering(hang=True) as answering:
        started = time.monotonic()
        run = health("--url", answering.url, "--timeout", "1")
        took = time.monotonic() - started
    assert run.returncode == 1
    assert one_line(run) == f"mcp-gateway health: GET {answering.url}: no answer within 1 s (--timeout)"
    assert took < 5, f"took {took:.1f} s with --timeout 1"


def test_a_proxy_in_the_environment_is_not_used(server):
    """HTTP_PROXY set for the server's own outbound calls must not carry the check of itself."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    run = health("--url", f"http://127.0.0.1:{server.port}/health",
                 env={"HTTP_PROXY": proxy, "http_proxy": proxy, "ALL_PROXY": proxy, "NO_PROXY": ""})
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize(("args", "env", "says"), [
    (["--url", "ftp://127.0.0.1/health"], {}, "not an http:// or https:// URL"),
    (["--url", "127.0.0.1:8080/health"], {}, "is not a URL"),
    (["--url", "http://"], {}, "is not a URL"),
    (["--url", "http://admin:hunter2@127.0.0.1:8080/health"], {}, "user name or password"),
    ([], {"MCP_HEALTH_URL": "file:///etc/passwd"}, "not an http:// or https:// URL"),
])
def test_a_bad_url_stops_with_2_naming_the_flag_and_variable(args, env, says):
    run = health(*args, env=env)
    assert run.returncode == 2, run
    assert says in run.stderr and "--url" in run.stderr and "MCP_HEALTH_URL" in run.stderr, run.stderr


@pytest.mark.parametrize("timeout", ["0", "61", "3s", "-1"])
def test_a_timeout_outside_1_to_60_seconds_stops_with_2(timeout):
    run = health(f"--timeout={timeout}")
    assert run.returncode == 2, run
    assert "--timeout" in run.stderr and "MCP_HEALTH_TIMEOUT" in run.stderr, run.stderr


# --------------------------------------------------------------------------- the image's serve


def image_env(tmp: Path, **overrides: str) -> dict[str, str]:
    """The process environment in the image: its ENV, what the runtime adds, no HOME (distroless'
    nonroot has no writable home, and docker run --read-only makes it read-only anyway), TMPDIR a
    fresh folder (the --tmpfs /tmp)."""
    tmpdir = tmp / "tmpfs"
    tmpdir.mkdir(exist_ok=True)
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **IMAGE.env(), "TMPDIR": str(tmpdir), **overrides}
    env.pop("HOME", None)
    return env


def image_command(addr: str | None) -> list[str]:
    """ENTRYPOINT + CMD from the Dockerfile, with this build's binary and, given `addr`, the
    listen address swapped for it."""
    entrypoint = df.exec_form(IMAGE.last("ENTRYPOINT").args)
    cmd = df.exec_form(IMAGE.last("CMD").args)
    assert entrypoint and cmd, "ENTRYPOINT and CMD must be in exec form"
    command = [gateway_bin(), *entrypoint[1:], *cmd]
    if addr is not None:
        command[command.index("--addr") + 1] = addr
    return command


def healthcheck(port: int, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The image's HEALTHCHECK command, pointed at `port` through MCP_HEALTH_URL."""
    command = df.healthcheck_command(IMAGE.last("HEALTHCHECK").args)
    assert command, "HEALTHCHECK must be in exec form"
    return subprocess.run([gateway_bin(), *command[1:]], capture_output=True, text=True, timeout=30,
                          env={**env, "MCP_HEALTH_URL": f"http://127.0.0.1:{port}/health"})


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*"))}


def test_the_image_refuses_to_serve_without_authentication(tmp_path):
    """The image's own CMD (0.0.0.0:8080) with no access file: exit 2 before listening, saying how
    to give credentials."""
    data = tmp_path / "data"
    data.mkdir()
    run = subprocess.run(image_command(None), capture_output=True, text=True, timeout=30, cwd=tmp_path,
                         stdin=subprocess.DEVNULL, env=image_env(tmp_path, DATA_ROOT=str(data)))
    assert run.returncode == 2, run
    assert "not a loopback address" in run.stderr and "MCP_ACCESS" in run.stderr, run.stderr


def test_serve_as_the_image_runs_it_starts_answers_and_writes_nothing(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    key = "image-test-key-0123456789"
    access = tmp_path / "access.toml"
    access.write_text(f'[auth]\n[[auth.api_key]]\nname = "ci"\nsha256 = "{hashlib.sha256(key.encode()).hexdigest()}"\n')
    env = image_env(tmp_path, DATA_ROOT=str(data), MCP_ACCESS=str(access), MCP_ALLOWED_HOSTS="mcp.example.com")
    before = snapshot(data)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as stderr:
        proc = subprocess.Popen(image_command(f"127.0.0.1:{port}"), cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        # The HEALTHCHECK, as Docker runs it, until it passes (the image's --start-period is 10 s).
        deadline = time.monotonic() + 15
        while (check := healthcheck(port, env)).returncode != 0:
            assert proc.poll() is None, f"serve stopped:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"never healthy: {check.stderr}\n{log.read_text()}"
            time.sleep(0.2)
        assert check.stderr == ""
        # /health answers without credentials and whatever the Host; everything else needs both.
        url = f"http://127.0.0.1:{port}/mcp"
        refused = httpx.post(url, headers={**MCP_HEADERS, "Host": "mcp.example.com"},
                             json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=10)
        assert refused.status_code == 401, refused.text

        def call(name: str, arguments: dict) -> dict:
            answer = httpx.post(url, headers={**MCP_HEADERS, "Host": "mcp.example.com", "X-API-Key": key}, timeout=60,
                                json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                      "params": {"name": name, "arguments": arguments}})
            assert answer.status_code == 200, answer.text
            result = answer.json()["result"]
            assert not result.get("isError"), result
            return result

        # Every tool, the SQL worker (a child process of the same binary) included.
        assert "README.md" in call("file", {"action": "list"})["content"][0]["text"]
        if not os.environ.get("MCP_GATEWAY_FEDERATION_ONLY"):
            rows = call("db", {"action": "query", "sql": "SELECT COUNT(*) AS n FROM sales_orders"})
            assert rows["structuredContent"]["rows"] == [{"n": 200}], rows
            assert call("search", {"query": "revenue"})["structuredContent"]["hits"]
            assert call("dataset_metadata", {"path": "shipments"})["content"][0]["text"].startswith("shipments")
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    # Nothing written to the data root (mounted read-only in the README's example) or the working
    # directory (the image's read-only root).
    assert snapshot(data) == before
    assert list(workdir.iterdir()) == []
    errors = [line for line in log.read_text().splitlines() if '"level":"ERROR"' in line]
    assert errors == [], errors
