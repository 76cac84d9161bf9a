"""The Lambda handler under `cargo lambda watch` (the Lambda runtime emulator, HTTP API v2 events),
driven by the Python and TypeScript SDK clients in both protocol eras."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import httpx
import pytest
from mcp.client.client import Client

from conftest import DATA, ROOT, free_port
from test_python_client import list_and_call
from test_ts_client import FLAVORS, check_ts_result, run_ts_client


@pytest.fixture(scope="module")
def lambda_url(tmp_path_factory):
    cargo_lambda = shutil.which("cargo-lambda")
    if cargo_lambda is None:
        pytest.fail("cargo-lambda is not installed; `make tools` installs it into .tools/venv")
    port = free_port()
    log = open(tmp_path_factory.mktemp("watch") / "watch.log", "w")
    proc = subprocess.Popen(
        ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
         "--ignore-changes", "--package", "mcp-gateway", "--env-vars", f"DATA_ROOT={DATA},RUST_LOG=info,rmcp=warn"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/lambda-url/mcp-gateway/mcp"
    deadline = time.monotonic() + 600  # the first request builds the function
    healthy = False
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            response = httpx.get(url.removesuffix("/mcp") + "/health", timeout=300)
            if response.status_code == 200:
                healthy = True
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    if not healthy:
        os.killpg(proc.pid, 15)
        log.close()
        pytest.fail(f"cargo lambda watch did not answer; see {log.name}")
    yield url
    os.killpg(proc.pid, 15)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
    log.close()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_python_client_through_the_lambda_runtime(lambda_url, mode):
    async with Client(lambda_url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        await list_and_call(client)


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_typescript_client_through_the_lambda_runtime(lambda_url, node_bin, flavor):
    check_ts_result(flavor, run_ts_client(node_bin, flavor, lambda_url))
