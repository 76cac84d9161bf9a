"""The `search` tool: BM25 hits with marked snippets, filters and pagination, over an index built
in memory on first use or stored by `mcp-gateway index` (local folder and S3)."""

from __future__ import annotations

import re
import shutil
import subprocess

import anyio

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
        assert page.is_error is False, page.content
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


@pytest.mark.anyio
async def test_search_finds_files_written_after_the_index_was_built(tmp_path):
    """Regression: the in-memory index never noticed `file_write` changes or new files."""
    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    server = Server(tmp_path, "--allow-write", "--index-recheck", "1", data_root=str(root))
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            before = await client.call_tool("search", {"query": "zebrafish"})
            assert before.structured_content["total"] == 0
            wrote = await client.call_tool("file_write", {"action": "write", "path": "docs/new.md", "text": "# Zebrafish\n\nzebrafish counts\n"})
            assert wrote.is_error is False, wrote.content
            after = await client.call_tool("search", {"query": "zebrafish"})
            assert {hit["path"] for hit in after.structured_content["hits"]} == {"docs/new.md"}
            # A file another writer adds is found once the index is checked again (every second here).
            (root / "docs" / "other.md").write_text("zebrafish again\n")
            await anyio.sleep(1.5)
            later = await client.call_tool("search", {"query": "zebrafish"})
            assert {hit["path"] for hit in later.structured_content["hits"]} == {"docs/new.md", "docs/other.md"}
            assert later.structured_content["index"]["source"] == "memory"
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_stored_index_older_than_the_data_is_not_served_as_current(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(DATA, root)
    run_index(str(root))
    (root / "docs" / "late.md").write_text("quokka sightings\n")
    server = Server(tmp_path, "--index-recheck", "1", data_root=str(root))
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            first = await client.call_tool("search", {"query": "quokka"})
            await anyio.sleep(1.5)
            again = await client.call_tool("search", {"query": "quokka"})
        # The stored index loads as built; the next check finds the new file and, the corpus being
        # small, re-indexes the root in memory.
        assert first.structured_content["index"]["source"] == "stored"
        assert [hit["path"] for hit in again.structured_content["hits"]] == ["docs/late.md"]
        assert again.structured_content["index"]["source"] == "memory"
    finally:
        server.stop()
