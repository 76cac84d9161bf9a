"""The federation-only build (`cargo build -p mcp-gateway --no-default-features`: no polars, no
tantivy): every federation test of test_federation.py again against it, and what the build leaves
out, said clearly to whoever asks for it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mcp.client.client import Client

from conftest import DATA, Server
# The same tests, collected again in this module, where the fixture below swaps the binary.
from test_federation import *  # noqa: F403


@pytest.fixture(scope="module", autouse=True)
def federation_only_binary():
    """Points every fixture of this module at the federation-only binary (autouse module fixtures
    run before the module's other module fixtures, so the gateways below start from it)."""
    path = os.environ.get("MCP_GATEWAY_FEDERATION_BIN")
    if not path or not Path(path).exists():
        pytest.fail("MCP_GATEWAY_FEDERATION_BIN must point at a federation-only mcp-gateway build (make e2e builds it)")
    saved = os.environ.get("MCP_GATEWAY_BIN", "")
    os.environ.update(MCP_GATEWAY_BIN=path, MCP_GATEWAY_FEDERATION_ONLY="1")
    yield path
    os.environ["MCP_GATEWAY_BIN"] = saved
    del os.environ["MCP_GATEWAY_FEDERATION_ONLY"]


@pytest.mark.anyio
async def test_the_federation_only_build_offers_the_file_tools_and_no_data_tools(tmp_path):
    server = Server(tmp_path, "--allow-write", data_root=str(tmp_path))
    try:
        (tmp_path / "notes.txt").write_text("hello\n")
        async with Client(server.url, mode="2026-07-28") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert names == {"file", "file_write"}, names
            read = await client.call_tool("file", {"action": "read", "path": "notes.txt"})
            assert read.is_error is False and read.structured_content["text"] == "hello\n"
            # Files are still resources (no dataset metadata without the data tools).
            contents = (await client.read_resource("gateway://data/notes.txt")).contents
            assert contents[0].text == "hello\n"
    finally:
        server.stop()


@pytest.mark.parametrize(("args", "says"), [
    (["index"], "unrecognized subcommand 'index'"),
    (["--max-rows", "5", "stdio"], "unexpected argument '--max-rows'"),
])
def test_data_commands_and_settings_are_refused_by_name(federation_only_binary, args, says):
    run = subprocess.run([federation_only_binary, "--data-root", str(DATA), *args],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and says in run.stderr, run.stderr

