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



def run_gateway(binary: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--data-root", str(DATA), *args], capture_output=True, text=True, timeout=30,
                          input=stdin)


@pytest.mark.parametrize(("section", "line"), [
    ('[auth.jwt]\nissuer = "https://issuer.example"\naudience = "mcp"\njwks_url = "https://issuer.example/jwks"\n',
     "line 1: [auth.jwt] needs the `edge` feature"),
    ('[auth]\n[[auth.basic]]\nuser = "alice"\npassword_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"\n',
     "line 2: [[auth.basic]] needs the `edge` feature"),
])
def test_jwt_and_basic_are_refused_by_the_access_file_line(federation_only_binary, tmp_path, section, line):
    """The build leaves out the `edge` feature (JWT, Basic, TLS): an access file that asks for them
    stops `serve` before it listens, naming the line and what to use instead."""
    access = tmp_path / "access.toml"
    access.write_text(section)
    run = run_gateway(federation_only_binary, "--access", str(access), "serve", "--addr", "127.0.0.1:0")
    assert run.returncode != 0 and line in run.stderr and "full build" in run.stderr, run.stderr
    run = run_gateway(federation_only_binary, "--access", str(access), "access", "check")
    assert run.returncode != 0 and line in run.stderr, run.stderr


def test_tls_and_password_hashes_are_refused_by_name(federation_only_binary, tmp_path):
    (tmp_path / "cert.pem").write_text("not read")
    (tmp_path / "key.pem").write_text("not read")
    run = run_gateway(federation_only_binary, "serve", "--addr", "127.0.0.1:0",
                      "--tls-cert", str(tmp_path / "cert.pem"), "--tls-key", str(tmp_path / "key.pem"))
    assert run.returncode == 2 and "--tls-cert (MCP_TLS_CERT): this build has no TLS" in run.stderr, run.stderr
    run = run_gateway(federation_only_binary, "access", "hash-password", stdin="secret\n")
    assert run.returncode != 0 and "this build has no HTTP Basic" in run.stderr and not run.stdout, run


def test_api_keys_still_guard_serve_in_the_federation_only_build(federation_only_binary, tmp_path):
    import httpx
    key = "fed-only-key-0123456789"
    digest = run_gateway(federation_only_binary, "access", "hash-key", stdin=key + "\n").stdout.strip()
    access = tmp_path / "access.toml"
    access.write_text(f'[auth]\n[[auth.api_key]]\nname = "ci"\nsha256 = "{digest}"\n')
    check = run_gateway(federation_only_binary, "--access", str(access), "access", "check")
    assert check.returncode == 0 and "auth: 1 API keys, IAM off" in check.stdout, check
    server = Server(tmp_path, "--access", str(access))
    try:
        listed = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-11-25"}
        refused = httpx.post(server.url, json=listed, headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer realm=")
        wrong = httpx.post(server.url, json=listed, headers={**headers, "authorization": "Bearer not-a-key"})
        assert wrong.status_code == 401 and "unknown API key" in wrong.text, wrong.text
        answered = httpx.post(server.url, json=listed, headers={**headers, "x-api-key": key})
        assert answered.status_code == 200 and "file" in {tool["name"] for tool in answered.json()["result"]["tools"]}
    finally:
        server.stop()
