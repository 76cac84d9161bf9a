"""The Lambda handler under `cargo lambda watch` (the Lambda runtime emulator, HTTP API v2 events),
driven by the Python and TypeScript SDK clients in both protocol eras."""

from __future__ import annotations

from typing import Iterator

import httpx
import pytest
from lambda_watch import cargo_lambda_watch
from mcp.client.client import Client

from conftest import DATA
from test_python_client import list_and_call
from test_ts_client import FLAVORS, check_ts_result, run_ts_client


@pytest.fixture(scope="module")
def lambda_url(tmp_path_factory) -> Iterator[str]:
    """The function's Function URL path on the emulator, once its health route answers."""
    def healthy(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/lambda-url/mcp-gateway/health", timeout=300).status_code == 200
        except httpx.HTTPError:
            return False

    env_vars = {"DATA_ROOT": str(DATA), "RUST_LOG": "info,rmcp=warn"}
    with cargo_lambda_watch(env_vars, tmp_path_factory.mktemp("watch") / "watch.log", healthy) as port:
        yield f"http://127.0.0.1:{port}/lambda-url/mcp-gateway/mcp"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_python_client_through_the_lambda_runtime(lambda_url, mode):
    async with Client(lambda_url, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")
        await list_and_call(client)


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_typescript_client_through_the_lambda_runtime(lambda_url, node_bin, flavor):
    check_ts_result(flavor, run_ts_client(node_bin, flavor, lambda_url))
