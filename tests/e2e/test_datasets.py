"""`db` and `dataset_metadata` on generated data (nulls, quoted delimiters, unicode, mixed
types), checked against an independent computation with pandas/pyarrow, on a local folder and
on S3 (moto); and a memory test: metadata of a CSV 4× larger than the process's heap cap."""

from __future__ import annotations

import json
import math
import random
import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from mcp.client.client import Client

from conftest import DATA, Server
from test_storage import local_or_s3_server, moto  # noqa: F401  (fixture)

ROWS = 3000


def make_data(root) -> None:
    """Generated datasets with the awkward cases a real user has."""
    rng = random.Random(42)
    cities = ["Zürich", "São Paulo", "Kraków", "東京", "New York, NY", 'Quote "Town"']
    rows = []
    for i in range(ROWS):
        rows.append({
            "id": i,
            "city": rng.choice(cities) if rng.random() > 0.05 else None,
            "amount": round(rng.uniform(-50, 500), 3) if rng.random() > 0.1 else None,
            "count": rng.randint(0, 9) if rng.random() > 0.02 else None,
            "flag": rng.random() > 0.5,
            "note": rng.choice(["ok", "late; again", "n/a", ""]),
        })
    frame = pd.DataFrame(rows)
    frame["count"] = frame["count"].astype("Int64")
    (root / "gen").mkdir(parents=True, exist_ok=True)
    frame.to_csv(root / "gen" / "mixed.csv", index=False)
    frame.to_csv(root / "gen" / "semicolon.csv", index=False, sep=";")
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), root / "gen" / "mixed.parquet", row_group_size=1000)
    with open(root / "gen" / "mixed.ndjson", "w") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def expected_frame(root) -> pd.DataFrame:
    # Only empty fields are missing (as in the CSV reader under test); "n/a" is a string.
    return pd.read_csv(root / "gen" / "mixed.csv", keep_default_na=False, na_values=[""])


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("datasets")
    shutil.copytree(DATA, root, dirs_exist_ok=True)
    make_data(root)
    return root


@pytest.fixture(scope="module", params=["local", "s3"])
def gateway(request, tmp_path_factory, data_root):
    server = local_or_s3_server(request, tmp_path_factory, data_root, "data", list((data_root / "gen").iterdir()))
    yield request.param, server
    server.stop()


async def call(server, tool, args):
    async with Client(server.url, mode="2026-07-28") as client:
        return await client.call_tool(tool, args)


@pytest.mark.anyio
async def test_tables_and_describe(gateway):
    kind, server = gateway
    tables = (await call(server, "db", {"action": "tables"})).structured_content["tables"]
    names = {t["name"]: t for t in tables}
    assert {"sales_orders", "sales_regions", "events", "gen_mixed_csv", "gen_mixed_parquet", "gen_mixed_ndjson", "gen_semicolon"} <= set(names), kind
    assert names["gen_mixed_csv"]["format"] == "csv" and names["gen_mixed_parquet"]["format"] == "parquet"
    described = await call(server, "db", {"action": "describe", "table": "sales_orders"})
    columns = {c["name"]: c["dtype"] for c in described.structured_content["columns"]}
    assert columns["quantity"] == "i64" and columns["product"] == "str"


@pytest.mark.anyio
async def test_sql_matches_pandas(gateway, data_root):
    kind, server = gateway
    orders = pd.read_csv(DATA / "sales" / "orders.csv", keep_default_na=False)  # "NA" is North America
    orders["revenue"] = orders["quantity"] * orders["unit_price"]
    expected = orders.groupby("region")["revenue"].sum().sort_index()
    result = await call(server, "db", {"action": "query", "sql":
        "SELECT region, SUM(quantity * unit_price) AS revenue FROM sales_orders GROUP BY region ORDER BY region"})
    assert result.is_error is False, result.content
    got = {row["region"]: row["revenue"] for row in result.structured_content["rows"]}
    assert list(got) == list(expected.index)
    for region, revenue in expected.items():
        assert math.isclose(got[region], revenue, rel_tol=1e-9), (kind, region)
    assert result.structured_content["truncated"] is False

    frame = expected_frame(data_root)
    mixed = await call(server, "db", {"action": "query", "sql":
        "SELECT COUNT(*) AS n, COUNT(amount) AS with_amount, SUM(amount) AS total, COUNT(DISTINCT city) AS cities "
        "FROM gen_mixed_csv WHERE note <> 'n/a' OR note IS NULL"})
    row = mixed.structured_content["rows"][0]
    subset = frame[(frame["note"] != "n/a") | frame["note"].isna()]
    assert row["n"] == len(subset)
    assert row["with_amount"] == subset["amount"].notna().sum()
    assert math.isclose(row["total"], subset["amount"].sum(), rel_tol=1e-9)
    assert row["cities"] == subset["city"].nunique()

    joined = await call(server, "db", {"action": "query", "sql":
        "WITH r AS (SELECT code, manager FROM sales_regions) SELECT o.order_id, r.manager FROM sales_orders o "
        "JOIN r ON o.region = r.code ORDER BY o.order_id", "limit": 7})
    assert len(joined.structured_content["rows"]) == 7 and joined.structured_content["truncated"] is True
    assert "more exist" in joined.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP TABLE sales_orders", "only read-only queries"),
        ("DELETE FROM sales_orders", "only read-only queries"),
        ("INSERT INTO sales_orders VALUES (1)", "only read-only queries"),
        ("CREATE TABLE x AS SELECT * FROM sales_orders", "only read-only queries"),
        ("COPY sales_orders TO '/tmp/x.csv'", "only read-only queries"),
        ("SELECT 1; DROP TABLE sales_orders", "exactly one statement"),
        ("SELECT * FROM no_such_table", "`no_such_table` is not a table here"),
        ("SELEKT * FROM sales_orders", "SQL syntax error"),
        ("SELECT nope FROM sales_orders", "nope"),
    ],
)
async def test_sql_refusals_are_clear_and_write_nothing(gateway, data_root, sql, message):
    kind, server = gateway
    before = sorted(p.name for p in (data_root / "sales").iterdir())
    result = await call(server, "db", {"action": "query", "sql": sql})
    assert result.is_error is True, (kind, sql)
    assert message in result.content[0].text, (kind, result.content[0].text)
    assert sorted(p.name for p in (data_root / "sales").iterdir()) == before


def check_stats(column: dict, series: pd.Series) -> None:
    assert column["null_count"] == series.isna().sum(), column["name"]
    assert column["distinct_is_approximate"] is False
    assert column["distinct_count"] == series.nunique(dropna=False), column["name"]
    numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if numeric:
        assert math.isclose(column["min"], series.min()) and math.isclose(column["max"], series.max())
        assert math.isclose(column["mean"], series.mean(), rel_tol=1e-9)
        assert math.isclose(column["std"], series.std(ddof=1), rel_tol=1e-9)


@pytest.mark.anyio
async def test_csv_metadata_matches_pandas(gateway, data_root):
    kind, server = gateway
    result = await call(server, "dataset_metadata", {"path": "gen/mixed.csv", "top_values": 3, "sample_rows": 2})
    assert result.is_error is False, result.content
    meta = result.structured_content["datasets"][0]
    frame = expected_frame(data_root)
    assert meta["row_count"] == len(frame) and meta["delimiter"] == "," and meta["has_header"] is True
    assert meta["statistics_source"] == "scan"
    columns = {c["name"]: c for c in meta["columns"]}
    for name in ["id", "amount", "count", "city"]:
        check_stats(columns[name], frame[name])
    top = frame["city"].value_counts().head(3)
    assert [(t["value"], t["count"]) for t in columns["city"]["top_values"]] == list(zip(top.index, top.values))
    assert len(meta["sample"]) == 2 and meta["sample"][0]["id"] == 0
    semi = (await call(server, "dataset_metadata", {"path": "gen/semicolon.csv"})).structured_content["datasets"][0]
    assert semi["delimiter"] == ";" and semi["row_count"] == ROWS


@pytest.mark.anyio
async def test_parquet_metadata_comes_from_the_footer(gateway, data_root):
    kind, server = gateway
    meta = (await call(server, "dataset_metadata", {"path": "gen/mixed.parquet"})).structured_content["datasets"][0]
    table = pq.read_table(data_root / "gen" / "mixed.parquet").to_pandas()
    assert meta["statistics_source"] == "parquet-footer" and meta["row_groups"] == 3
    assert meta["row_count"] == len(table)
    columns = {c["name"]: c for c in meta["columns"]}
    assert columns["amount"]["null_count"] == table["amount"].isna().sum()
    assert math.isclose(columns["amount"]["min"], table["amount"].min())
    assert math.isclose(columns["amount"]["max"], table["amount"].max())
    assert columns["id"]["min"] == 0 and columns["id"]["max"] == ROWS - 1
    assert columns["city"]["null_count"] == table["city"].isna().sum()


@pytest.mark.anyio
async def test_folder_metadata_describes_every_dataset(gateway):
    kind, server = gateway
    result = await call(server, "dataset_metadata", {"path": "gen"})
    paths = sorted(d["path"] for d in result.structured_content["datasets"])
    assert paths == ["gen/mixed.csv", "gen/mixed.ndjson", "gen/mixed.parquet", "gen/semicolon.csv"]
    ndjson = next(d for d in result.structured_content["datasets"] if d["format"] == "ndjson")
    assert ndjson["row_count"] == ROWS


@pytest.mark.anyio
@pytest.mark.parametrize(("path", "message"), [("docs/orders.md", "is not a dataset"), ("nope", "does not exist"),
                                               ("../x.csv", "cannot leave the data root")])
async def test_metadata_bad_paths(gateway, path, message):
    kind, server = gateway
    result = await call(server, "dataset_metadata", {"path": path})
    assert result.is_error is True and message in result.content[0].text, (kind, result.content[0].text)


HEAP_CAP = 40 * 1024 * 1024


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    """A CSV over 4x the heap cap the server gets, with per-label sums computed in the same pass."""
    root = tmp_path_factory.mktemp("big")
    path = root / "big.csv"
    line = '{i},{x:.4f},label-{k},"Zürich ""quoted, text"""\n'
    expected: dict[str, list] = {}
    with open(path, "w") as out:
        out.write("id,x,label,text\n")
        i = 0
        while out.tell() < 4 * HEAP_CAP + 1024:
            chunk = "".join(line.format(i=i + j, x=(i + j) * 0.5, k=(i + j) % 97) for j in range(20000))
            out.write(chunk)
            i += 20000
    for k in range(97):
        ids = range(k, i, 97)
        expected[f"label-{k}"] = [len(ids), sum(ids) * 0.5, ids[-1]]
    return root, path, i, expected


def capped_server(tmp_path, root) -> Server:
    return Server(tmp_path, data_root=str(root), env={"MCP_HEAP_LIMIT_BYTES": str(HEAP_CAP)})


def assert_peak_heap_within_cap(server: Server) -> None:
    peak = [line["fields"]["peak_heap_bytes"] for line in server.log_lines() if "peak_heap_bytes" in line.get("fields", {})]
    assert peak and peak[0] <= HEAP_CAP


@pytest.mark.anyio
async def test_metadata_of_a_csv_four_times_the_heap_cap(tmp_path, big_csv):
    root, path, rows, _ = big_csv
    server = capped_server(tmp_path, root)
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            result = await client.call_tool("dataset_metadata", {"path": "big.csv"})
        assert result.is_error is False, result.content
        meta = result.structured_content["datasets"][0]
        assert path.stat().st_size >= 4 * HEAP_CAP
        assert meta["row_count"] == rows
        columns = {c["name"]: c for c in meta["columns"]}
        assert columns["id"]["max"] == rows - 1 and columns["label"]["distinct_count"] in range(92, 103)
        assert server.alive(), "the process stayed within its heap cap"
    finally:
        server.stop()
    assert_peak_heap_within_cap(server)


@pytest.mark.anyio
async def test_db_reads_a_semicolon_csv_with_the_dialect_dataset_metadata_detects(gateway, data_root):
    """Regression: `db` read a `;`-separated CSV as one column while `dataset_metadata` detected
    the `;`; both now read CSV through one dialect detection."""
    kind, server = gateway
    described = await call(server, "db", {"action": "describe", "table": "gen_semicolon"})
    assert [column["name"] for column in described.structured_content["columns"]] == ["id", "city", "amount", "count", "flag", "note"], kind
    result = await call(server, "db", {"action": "query", "sql": "SELECT count(*) AS n, sum(id) AS ids FROM gen_semicolon"})
    assert result.is_error is False, result.content
    assert result.structured_content["rows"] == [{"n": ROWS, "ids": ROWS * (ROWS - 1) // 2}], kind
