"""Writes examples/data/shipments/, the sample Delta Lake table, with delta-rs (PyPI `deltalake`,
in the test venv: `.tools/venv/bin/python examples/write_shipments_delta.py`). Three versions:
0 the first shipments, 1 more of them, 2 a delete of the cancelled ones. The table is committed;
rerun this only to change it (its file names and commit times change with every run)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from deltalake import DeltaTable, write_deltalake

TABLE = Path(__file__).resolve().parent / "data" / "shipments"


def shipments(first: int, rows: list[tuple[str, str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame({
        "shipment_id": pd.Series(range(first, first + len(rows)), dtype="int64"),
        "order_id": pd.Series([1000 + (first + i) * 3 % 40 for i in range(len(rows))], dtype="int64"),
        "carrier": [row[0] for row in rows],
        "shipped": pd.to_datetime([row[1] for row in rows]).date,
        "weight_kg": [row[2] for row in rows],
        "status": [row[3] for row in rows],
    })


def main() -> None:
    shutil.rmtree(TABLE, ignore_errors=True)
    write_deltalake(str(TABLE), shipments(1, [
        ("DHL", "2024-01-03", 2.5, "delivered"), ("UPS", "2024-01-04", 12.0, "delivered"),
        ("DHL", "2024-01-05", 0.8, "cancelled"), ("FedEx", "2024-01-07", 5.1, "delivered"),
        ("UPS", "2024-01-09", 1.2, "delivered"), ("DHL", "2024-01-11", 7.7, "in transit"),
    ]), partition_by=["carrier"])
    write_deltalake(str(TABLE), shipments(7, [
        ("FedEx", "2024-02-01", 3.3, "delivered"), ("UPS", "2024-02-02", 0.5, "cancelled"),
        ("DHL", "2024-02-03", 9.9, "in transit"), ("FedEx", "2024-02-05", 4.4, "delivered"),
    ]), mode="append", partition_by=["carrier"])
    DeltaTable(str(TABLE)).delete("status = 'cancelled'")
    print(f"wrote {TABLE}: version {DeltaTable(str(TABLE)).version()}, {len(DeltaTable(str(TABLE)).to_pandas())} rows")


if __name__ == "__main__":
    main()
