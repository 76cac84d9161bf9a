"""The official Python SDK client (PyPI `mcp` 2.x) against `serve` and `stdio`, in both protocol eras."""

from __future__ import annotations

import json

import pytest
from mcp import StdioServerParameters
from mcp.client.client import Client

from conftest import DATA, gateway_bin

MODES = ["legacy", "2026-07-28", "auto"]


async def list_and_call(client: Client) -> None:
    tools = await client.list_tools()
    names = [tool.name for tool in tools.tools]
    assert "file" in names, names
    file_tool = next(tool for tool in tools.tools if tool.name == "file")
    assert file_tool.annotations is not None and file_tool.annotations.read_only_hint is True
    assert file_tool.output_schema is not None

    result = await client.call_tool("file", {"action": "read", "path": "sales/regions.csv"})
    assert result.is_error is False
    assert result.structured_content is not None
    assert result.structured_content["text"].startswith("code,name,manager\n")
    assert (DATA / "sales" / "regions.csv").read_text() == result.structured_content["text"]

    failed = await client.call_tool("file", {"action": "read", "path": "../etc/passwd"})
    assert failed.is_error is True
    assert "cannot leave the data root" in failed.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_python_client_over_http(server, mode):
    async with Client(server.url, mode=mode) as client:
        expected = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected
        await list_and_call(client)
    versions = {log.get("protocol_version") for log in server.request_logs() if log.get("tool") == "file"}
    assert expected in versions


@pytest.mark.anyio
@pytest.mark.parametrize("mode", MODES)
async def test_python_client_over_stdio(mode):
    params = StdioServerParameters(command=gateway_bin(), args=["--data-root", str(DATA), "stdio"])
    async with Client(params, mode=mode) as client:
        await list_and_call(client)


@pytest.mark.anyio
async def test_resources_and_prompts_legacy(server):
    async with Client(server.url, mode="legacy") as client:
        resources = await client.list_resources()
        uris = {resource.uri for resource in resources.resources}
        assert "gateway://data/sales/orders.csv" in uris
        resource = next(r for r in resources.resources if r.uri == "gateway://data/sales/regions.csv")
        assert resource.mime_type == "application/json"
        read = await client.read_resource("gateway://data/sales/regions.csv")
        metadata = json.loads(read.contents[0].text)
        assert metadata["row_count"] == 4 and metadata["format"] == "csv" and metadata["table"] == "sales_regions"
        assert [c["name"] for c in metadata["columns"]] == ["code", "name", "manager"]
        doc = await client.read_resource("gateway://data/docs/orders.md")
        assert doc.contents[0].text == (DATA / "docs" / "orders.md").read_text()
        templates = await client.list_resource_templates()
        assert templates.resource_templates[0].uri_template == "gateway://data/{+path}"
        prompts = await client.list_prompts()
        assert [prompt.name for prompt in prompts.prompts] == ["explore_data"]
        await client.send_ping()
