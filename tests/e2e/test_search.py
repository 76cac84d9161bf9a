"""The `search` tool: BM25 hits with marked snippets, filters and pagination, over an index built
in memory on first use or stored by `mcp-gateway index` (local folder and S3)."""

from __future__ import annotations

import re
import subprocess

import pytest
from mcp.client.client import Client

from conftest import DATA, Server, gateway_bin
from test_storage import BUCKET, S3_ENV, local_root, moto  # noqa: F401  (fixtures)


async def all_hits(client, query, glob=None, limit=4):
    hits, cursor = [], None
    while True:
        args = {"query": query, "limit": limit}
        if glob:
            args["path_glob"] = glob
        if cursor:
            args["cursor"] = cursor
        page = await client.call_tool("search", args)
        assert page.is_error is not True, page.content
        hits += page.structured_content["hits"]
        cursor = page.structured_content.get("next_cursor")
        if not cursor:
            return hits, page.structured_content


def line_of(path: str, line: int) -> str:
    return (DATA / path).read_text().splitlines()[line - 1].lower()


@pytest.mark.anyio
async def test_search_in_memory_ranks_marks_and_pages(server):
    async with Client(server.url, mode="2026-07-28") as client:
        hits, last = await all_hits(client, "manager")
        assert last["index"]["source"] == "memory"
        assert len(hits) == last["total"] >= 2
        assert len({(h["path"], h["line"]) for h in hits}) == len(hits), "pages do not overlap"
        assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)
        for hit in hits:
            assert re.search(r"\*\*managers?\*\*", hit["snippet"].lower()), hit  # stemmed: manager(s)
            assert "manager" in (DATA / hit["path"]).read_text().lower()
        rows, _ = await all_hits(client, "gizmo", glob="sales/*.csv")
        assert rows and all(h["path"] == "sales/orders.csv" for h in rows)
        assert all("gizmo" in line_of("sales/orders.csv", h["line"]) for h in rows)
        assert len(rows) == sum("gizmo" in line for line in (DATA / "sales/orders.csv").read_text().lower().splitlines())
        phrase = await client.call_tool("search", {"query": '"slow exports"'})
        assert phrase.structured_content["hits"][0]["path"] == "docs/events.md"
        none = await client.call_tool("search", {"query": "xylophone"})
        assert none.structured_content["hits"] == [] and none.structured_content["total"] == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "message"),
    [({"query": "  "}, "query is empty"), ({"query": "a", "cursor": "x"}, "invalid cursor"),
     ({"query": "a", "path_glob": "a/[b"}, "invalid glob"), ({"query": "a", "limit": 0}, "limit must be")],
)
async def test_search_bad_input(server, args, message):
    async with Client(server.url, mode="legacy") as client:
        result = await client.call_tool("search", args)
    assert result.is_error is True and message in result.content[0].text


def run_index(data_root: str, env: dict | None = None) -> str:
    import os
    proc = subprocess.run([gateway_bin(), "--data-root", data_root, "index"], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.anyio
async def test_stored_index_on_a_local_root(local_root, tmp_path):  # noqa: F811
    out = run_index(str(local_root))
    assert "indexed" in out and (local_root / ".mcp-index" / "meta.json").exists()
    assert not list(local_root.glob(".mcp-index.tmp-*"))
    server = Server(tmp_path, data_root=str(local_root))
    try:
        async with Client(server.url, mode="legacy") as client:
            hits, last = await all_hits(client, "manager")
            assert last["index"]["source"] == "stored"
            assert {h["path"] for h in hits} >= {"docs/regions.md", "sales/regions.csv"}
        assert any("loaded the stored search index" in line.get("fields", {}).get("message", "") for line in server.log_lines())
    finally:
        server.stop()


@pytest.mark.anyio
async def test_stored_index_on_s3(moto, tmp_path):  # noqa: F811
    endpoint, s3 = moto
    env = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint}
    run_index(f"s3://{BUCKET}/data/", env)
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="data/.mcp-index/")["Contents"]]
    assert "data/.mcp-index/meta.json" in keys
    run_index(f"s3://{BUCKET}/data/", env)  # rebuilding replaces the old segments
    again = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="data/.mcp-index/")["Contents"]]
    assert len(again) == len(keys)
    server = Server(tmp_path, data_root=f"s3://{BUCKET}/data/", env=env)
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            result = await client.call_tool("search", {"query": "gizmo", "path_glob": "sales/**"})
            assert result.structured_content["index"]["source"] == "stored"
            assert result.structured_content["hits"][0]["path"] == "sales/orders.csv"
    finally:
        server.stop()
