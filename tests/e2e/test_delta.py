"""Delta Lake tables through `db`, `dataset_metadata`, `file` and the resources, on a local folder
and on S3 (moto): tables written at test time by a real Delta writer (PyPI `deltalake`: appends, a
delete, an overwrite, a partitioned table with a null partition and an escaped value, schema
evolution, a checkpoint, a log cleaned up behind it) and one written by Databricks with a deletion
vector. Every answer is checked against the writer's own reading of the same version."""

from __future__ import annotations

import datetime
import json
import math
import os
import shutil
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable, write_deltalake
from mcp.client.client import Client

from conftest import ROOT
from test_storage import local_or_s3_server, moto  # noqa: F401  (fixture)

FIXTURES = ROOT / "tests" / "e2e" / "fixtures" / "delta"
# Commit file times set on the local tables (version v at BASE + 100 s × v), for `as_of`.
BASE = 1_750_000_000


def orders_batch(start: int, rows: int) -> pd.DataFrame:
    ids = range(start, start + rows)
    return pd.DataFrame({
        "id": pd.Series(ids, dtype="int64"),
        "amount": [None if i % 17 == 0 else round((i * 7919 % 1000) / 10, 1) for i in ids],
        "city": [["Zürich", "Kraków", "東京", "Lima"][i % 4] for i in ids],
    })


def make_tables(root: Path) -> None:
    orders = str(root / "orders")
    for batch in range(3):  # versions 0-2: three appends of 4,000 rows
        write_deltalake(orders, orders_batch(batch * 4000, 4000), mode="append")
    DeltaTable(orders).delete("id < 1968")  # version 3: 10,032 rows left
    evolved = orders_batch(12_000, 500).assign(channel=["web", "shop"] * 250)
    write_deltalake(orders, evolved, mode="append", schema_mode="merge")  # version 4: a new column
    DeltaTable(orders).create_checkpoint()  # checkpoint at version 4
    write_deltalake(orders, orders_batch(12_500, 250).assign(channel="app"), mode="append")  # version 5

    events = str(root / "events")
    def batch(seed: int, rows: int) -> pd.DataFrame:
        regions = ["eu", "north america", None, "apac"]
        return pd.DataFrame({
            "id": pd.Series(range(seed, seed + rows), dtype="int64"),
            "amount": [float((i * 31) % 97) for i in range(seed, seed + rows)],
            "region": [regions[i % 4] for i in range(rows)],
            "year": pd.Series([2024 + i % 3 for i in range(rows)], dtype="int32"),
        })
    write_deltalake(events, batch(0, 3000), partition_by=["region", "year"])  # version 0
    write_deltalake(events, batch(3000, 1000), mode="append", partition_by=["region", "year"])  # 1
    write_deltalake(events, batch(50_000, 2000), mode="overwrite", partition_by=["region", "year"])  # 2
    DeltaTable(events).delete("region = 'eu'")  # version 3

    # The same orders table after log clean-up: its commits before the checkpoint are gone.
    shutil.copytree(root / "orders", root / "orders_cleaned")
    for version in range(4):
        (root / "orders_cleaned" / "_delta_log" / f"{version:020d}.json").unlink()

    shutil.copytree(FIXTURES / "table-with-dv-small", root / "dv_small")

    # A table whose protocol needs a reader feature this gateway does not implement.
    future = str(root / "future")
    write_deltalake(future, orders_batch(0, 10))
    protocol = {"protocol": {"minReaderVersion": 3, "minWriterVersion": 7,
                             "readerFeatures": ["v2Checkpoint"], "writerFeatures": ["v2Checkpoint"]}}
    (root / "future" / "_delta_log" / f"{1:020d}.json").write_text(json.dumps(protocol) + "\n")

    for table in ["orders", "events"]:
        for log in (root / table / "_delta_log").glob("*.json"):
            version = int(log.name.split(".")[0])
            os.utime(log, (BASE + 100 * version, BASE + 100 * version))


def add_hostile_table(root: Path, outside: Path) -> None:
    """A log naming a file outside the data root (a Parquet file that does exist there)."""
    pq.write_table(pa.table({"secret": ["top secret"]}), outside / "secret.parquet")
    escape = str(root / "escape")
    write_deltalake(escape, orders_batch(0, 10))
    relative = os.path.relpath(outside / "secret.parquet", root / "escape")
    add = {"add": {"path": relative, "partitionValues": {}, "size": 500, "modificationTime": 0, "dataChange": True}}
    (root / "escape" / "_delta_log" / f"{1:020d}.json").write_text(json.dumps(add) + "\n")


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("delta") / "root"
    root.mkdir()
    make_tables(root)
    outside = root.parent / "outside"
    outside.mkdir()
    add_hostile_table(root, outside)
    return root


@pytest.fixture(scope="module", params=["local", "s3"])
def gateway(request, tmp_path_factory, tables):
    server = local_or_s3_server(request, tmp_path_factory, tables, "delta")
    yield request.param, server
    server.stop()


async def call(server, tool, args):
    async with Client(server.url, mode="2026-07-28") as client:
        return await client.call_tool(tool, args)


def writer(tables: Path, table: str, version: int | None = None) -> tuple[DeltaTable, pd.DataFrame]:
    dt = DeltaTable(str(tables / table), version=version)
    return dt, dt.to_pandas()


async def query(server, sql: str, **extra) -> dict:
    result = await call(server, "db", {"action": "query", "sql": sql, **extra})
    assert result.is_error is False, result.content[0].text
    return result.structured_content["rows"][0]


@pytest.mark.anyio
async def test_a_delta_folder_is_one_table_never_its_loose_files(gateway):
    kind, server = gateway
    tables = (await call(server, "db", {"action": "tables"})).structured_content["tables"]
    by_name = {table["name"]: table for table in tables}
    assert {"orders", "events", "orders_cleaned", "dv_small"} <= set(by_name), (kind, sorted(by_name))
    assert by_name["orders"]["format"] == "delta" and by_name["orders"]["path"] == "orders"
    assert not [t for t in tables if "part-" in t["path"] or "_delta_log" in t["path"]], tables

    async with Client(server.url, mode="2026-07-28") as client:
        resources = (await client.list_resources()).resources
        read = await client.read_resource("gateway://data/orders")
    described = json.loads(read.contents[0].text)
    assert (described["format"], described["delta"]["version"], described["row_count"]) == ("delta", 5, 10_782)
    uris = [str(resource.uri) for resource in resources]
    assert "gateway://data/orders" in uris and "gateway://data/events" in uris
    assert not [uri for uri in uris if "_delta_log" in uri or "part-" in uri], uris

    listed = (await call(server, "file", {"action": "list", "path": ""})).structured_content["entries"]
    orders = [entry for entry in listed if entry["path"] == "orders"]
    assert orders and orders[0]["table"] == "delta", listed
    deep = await call(server, "file", {"action": "list", "path": "", "recursive": True, "limit": 1000})
    paths = {entry["path"]: entry for entry in deep.structured_content["entries"]}
    assert paths["events"]["table"] == "delta" and paths["events"]["kind"] == "dir"
    assert not [path for path in paths if path.startswith(("orders/", "events/"))], sorted(paths)
    assert "events/\tDelta table" in deep.content[0].text
    # Inside the table folder its files are listed as they are.
    inside = await call(server, "file", {"action": "list", "path": "orders"})
    assert any(entry["path"] == "orders/_delta_log" for entry in inside.structured_content["entries"])


@pytest.mark.anyio
async def test_every_version_of_an_appended_deleted_evolved_table_matches_the_writer(gateway, tables):
    kind, server = gateway
    for version in [None, 0, 1, 2, 3, 4, 5]:
        dt, expected = writer(tables, "orders", version)
        args = {} if version is None else {"version": version}
        row = await query(server, "SELECT COUNT(*) AS n, SUM(amount) AS total, COUNT(amount) AS with_amount, "
                                  "MAX(id) AS top FROM orders", **args)
        assert row["n"] == len(expected), (kind, version)
        assert math.isclose(row["total"], expected["amount"].sum(), rel_tol=1e-9), (kind, version)
        assert row["with_amount"] == expected["amount"].notna().sum()
        assert row["top"] == expected["id"].max()

        described = await call(server, "dataset_metadata", {"path": "orders", **args})
        assert described.is_error is False, described.content[0].text
        meta = described.structured_content["datasets"][0]
        assert meta["format"] == "delta" and meta["statistics_source"] == "delta-log"
        assert meta["row_count"] == len(expected), (kind, version)
        assert meta["delta"]["version"] == dt.version()
        assert meta["delta"]["files"] == len(dt.file_uris())
        assert [c["name"] for c in meta["columns"]] == [field.name for field in dt.schema().fields]
        assert len(meta["sample"]) == 5 and all(row["id"] in set(expected["id"]) for row in meta["sample"])
    # The case: three appends of 4,000 rows and a delete hold 10,032 rows, not 22,032.
    assert (await query(server, "SELECT COUNT(*) AS n FROM orders", version=3))["n"] == 10_032

    latest = (await call(server, "dataset_metadata", {"path": "orders"})).structured_content["datasets"][0]
    _, frame = writer(tables, "orders")
    columns = {c["name"]: c for c in latest["columns"]}
    assert columns["amount"]["null_count"] == frame["amount"].isna().sum()
    assert columns["amount"]["min"] == frame["amount"].min() and columns["amount"]["max"] == frame["amount"].max()
    assert columns["id"]["min"] == frame["id"].min() and columns["id"]["max"] == frame["id"].max()
    assert columns["channel"]["dtype"] == "string" and columns["id"]["dtype"] == "long"
    assert latest["delta"]["operation"] == "WRITE" and latest["delta"]["committed_at"].endswith("Z")

    # Schema evolution: rows written before `channel` existed read it as null.
    row = await query(server, "SELECT COUNT(*) AS n, COUNT(channel) AS with_channel FROM orders")
    assert row["with_channel"] == frame["channel"].notna().sum() == 750 and row["n"] == len(frame)
    described = await call(server, "db", {"action": "describe", "table": "orders", "version": 2})
    assert [c["name"] for c in described.structured_content["columns"]] == ["id", "amount", "city"]


@pytest.mark.anyio
async def test_a_partitioned_overwritten_table_matches_the_writer_per_version(gateway, tables):
    kind, server = gateway
    for version in [0, 1, 2, 3]:
        dt, expected = writer(tables, "events", version)
        sql = ("SELECT region, year, COUNT(*) AS n, SUM(amount) AS total FROM events "
               "GROUP BY region, year ORDER BY region, year")
        result = await call(server, "db", {"action": "query", "sql": sql, "version": version, "limit": 100})
        assert result.is_error is False, result.content[0].text
        got = {(r["region"], r["year"]): (r["n"], r["total"]) for r in result.structured_content["rows"]}
        grouped = expected.groupby(["region", "year"], dropna=False)["amount"].agg(["count", "sum"])
        want = {(None if pd.isna(region) else region, int(year)): (int(n), float(total))
                for (region, year), (n, total) in grouped.iterrows()}
        assert got == want, (kind, version)
        meta = (await call(server, "dataset_metadata", {"path": "events", "version": version})).structured_content
        meta = meta["datasets"][0]
        assert meta["row_count"] == len(expected) and meta["delta"]["partition_columns"] == ["region", "year"]
        columns = {c["name"]: c for c in meta["columns"]}
        assert columns["region"]["null_count"] == expected["region"].isna().sum()
        assert columns["year"]["min"] == expected["year"].min() and columns["year"]["max"] == expected["year"].max()
    assert not [r for r in (await call(server, "db", {"action": "query", "sql":
        "SELECT DISTINCT region FROM events"})).structured_content["rows"] if r["region"] == "eu"]
    typed = await call(server, "db", {"action": "describe", "table": "events"})
    dtypes = {c["name"]: c["dtype"] for c in typed.structured_content["columns"]}
    assert dtypes["year"] == "i32" and dtypes["region"] == "str", dtypes


@pytest.mark.anyio
async def test_a_checkpoint_rebuilds_the_table_after_log_clean_up(gateway, tables):
    kind, server = gateway
    _, expected = writer(tables, "orders")
    row = await query(server, "SELECT COUNT(*) AS n, SUM(id) AS ids FROM orders_cleaned")
    assert row == {"n": len(expected), "ids": int(expected["id"].sum())}, kind
    gone = await call(server, "db", {"action": "query", "sql": "SELECT COUNT(*) FROM orders_cleaned", "version": 2})
    assert gone.is_error is True
    assert "commit 0 is no longer in the log" in gone.content[0].text and "oldest readable version is 4" in gone.content[0].text
    ahead = await call(server, "dataset_metadata", {"path": "orders", "version": 99})
    assert ahead.is_error is True and "version 99 does not exist; the latest is 5" in ahead.content[0].text


@pytest.mark.anyio
async def test_deletion_vectors_hide_their_rows(gateway):
    kind, server = gateway
    # Databricks deleted `value IN (0, 9)` from 0..9 with a deletion vector.
    result = await call(server, "db", {"action": "query", "sql": "SELECT value FROM dv_small ORDER BY value"})
    assert result.is_error is False, result.content[0].text
    assert [row["value"] for row in result.structured_content["rows"]] == list(range(1, 9)), kind
    before = await query(server, "SELECT COUNT(*) AS n FROM dv_small", version=0)
    assert before["n"] == 10
    meta = (await call(server, "dataset_metadata", {"path": "dv_small"})).structured_content["datasets"][0]
    assert meta["row_count"] == 8 and meta["delta"]["deleted_rows"] == 2
    assert meta["delta"]["reader_features"] == ["deletionVectors"] and meta["delta"]["operation"] == "DELETE"
    value = meta["columns"][0]
    assert "null_count" not in value, "statistics that are not tight give no exact null count"
    assert [row["value"] for row in meta["sample"]] == [1, 2, 3, 4, 5]


@pytest.mark.anyio
async def test_time_travel_by_timestamp_matches_the_writer(gateway, tables):
    kind, server = gateway
    if kind == "s3":
        pytest.skip("S3 sets an object's modification time on upload; the local run sets commit times")
    for version in [0, 2, 3]:
        at = datetime.datetime.fromtimestamp(BASE + 100 * version + 50, datetime.timezone.utc)
        dt = DeltaTable(str(tables / "orders"))
        dt.load_as_version(at)
        assert dt.version() == version
        row = await query(server, "SELECT COUNT(*) AS n FROM orders", as_of=at.isoformat())
        assert row["n"] == len(dt.to_pandas())
        meta = (await call(server, "dataset_metadata", {"path": "orders", "as_of": at.isoformat()})).structured_content
        assert meta["datasets"][0]["delta"]["version"] == version
        # The commit time shown is the one `as_of` compares: the commit file's.
        committed = datetime.datetime.fromtimestamp(BASE + 100 * version, datetime.timezone.utc)
        assert meta["datasets"][0]["delta"]["committed_at"] == committed.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    early = await call(server, "db", {"action": "query", "sql": "SELECT 1 FROM orders", "as_of": "2001-01-01"})
    assert early.is_error is True and "no version was committed by then" in early.content[0].text


@pytest.mark.anyio
async def test_unreadable_tables_and_misused_arguments_are_clear_errors(gateway):
    kind, server = gateway
    future = await call(server, "db", {"action": "query", "sql": "SELECT COUNT(*) FROM future"})
    assert future.is_error is True
    assert "reader feature `v2Checkpoint`" in future.content[0].text, (kind, future.content[0].text)
    meta = await call(server, "dataset_metadata", {"path": "future"})
    assert meta.is_error is True and "v2Checkpoint" in meta.content[0].text
    both = await call(server, "db", {"action": "query", "sql": "SELECT 1 FROM orders", "version": 1, "as_of": "2026-01-01"})
    assert both.is_error is True and "not both" in both.content[0].text
    no_delta = await call(server, "db", {"action": "query", "sql": "SELECT 1 AS one", "version": 1})
    assert no_delta.is_error is True and "apply to Delta tables" in no_delta.content[0].text
    bad_time = await call(server, "db", {"action": "query", "sql": "SELECT 1 FROM orders", "as_of": "last week"})
    assert bad_time.is_error is True and "RFC 3339" in bad_time.content[0].text


@pytest.mark.anyio
async def test_a_log_naming_a_file_outside_the_root_is_refused(gateway):
    """Regression guard: the log is data from the bucket; its paths must not leave the table."""
    kind, server = gateway
    for args in [{"action": "query", "sql": "SELECT * FROM escape"}, {"action": "describe", "table": "escape"}]:
        result = await call(server, "db", args)
        assert result.is_error is True, kind
        assert "top secret" not in json.dumps(result.structured_content or {}) + result.content[0].text
        assert "contains `..`" in result.content[0].text, result.content[0].text
