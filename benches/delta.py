"""Benchmark of `dataset_metadata` on a Delta Lake table of 1,000 data files in S3 (moto on
127.0.0.1), against the writer's own Python reader (PyPI `deltalake`, delta-rs) in the same run
(not a test: nothing fails on a slow number).

What it measures, per side, in a fresh process each:
  - bytes read from S3 during the call: both sides reach moto through a TCP relay of this script
    that counts the bytes moto sends (listings, log, data files, headers). The goal: the metadata
    comes from the log, so these stay ≤ 1 % of the table's data files.
  - wall time of one call (ours over HTTP, the peer in its own process without HTTP).
The answers are checked against each other (version, files, row count) before any number is
reported.

The table (one commit of 1,000 files: a table partitioned by a column of 1,000 values) is written
once with `deltalake` and cached under ~/.cache/mcp-lambda-gateway/bench-data/ (BENCH_DATA moves
it). Writes $BENCH_OUT/delta.json (default benches/results/). BENCH_QUICK=1 uses 100 smaller files;
BENCH_PROFILE picks the build (default release). Needs deltalake, numpy, pandas, httpx and moto:
tests/requirements.txt, installed into .tools/venv by `make tools`.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

from common import OUT, PROFILE, QUICK, binary, free_port, row, stop, wait_ready

sys.path.insert(0, str(Path(__file__).resolve().parent))
from data import CACHE, Gateway  # noqa: E402  (benches/data.py, next to this script)

FILES = 100 if QUICK else 1000
ROWS_PER_FILE = 2_000 if QUICK else 16_000
GENERATOR = 1  # bump when the table generator changes: the cached table is keyed by it
BUCKET = "bench-delta"
S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def log(message: str) -> None:
    print(f"delta.py: {message}", file=sys.stderr, flush=True)


def ensure_table() -> Path:
    """The cached table: `FILES` files of `ROWS_PER_FILE` rows (ids, two random doubles)."""
    import numpy as np
    import pandas as pd
    from deltalake import write_deltalake

    path = CACHE / f"delta-{FILES}x{ROWS_PER_FILE}-g{GENERATOR}" / "metrics"
    if (path / "_delta_log" / f"{0:020d}.json").exists():
        return path
    log(f"writing a Delta table of {FILES:,} files × {ROWS_PER_FILE:,} rows to {path}")
    rng = np.random.default_rng(7)
    rows = FILES * ROWS_PER_FILE
    frame = pd.DataFrame({
        "id": np.arange(rows, dtype="int64"),
        "value": rng.normal(size=rows),
        "score": rng.uniform(size=rows),
        "part": np.repeat(np.arange(FILES, dtype="int32"), ROWS_PER_FILE),
    })
    partial = path.with_name("metrics.partial")
    if partial.exists():
        import shutil
        shutil.rmtree(partial)
    write_deltalake(str(partial), frame, partition_by=["part"])
    partial.rename(path)
    return path


def start_moto() -> tuple[subprocess.Popen, str]:
    import httpx
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(endpoint, timeout=1).status_code < 500
        except httpx.HTTPError:
            return False

    wait_ready(ready, proc, "moto_server")
    return proc, endpoint


class CountingRelay:
    """A TCP relay on 127.0.0.1 in front of `upstream_port`, counting the bytes sent back."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = free_port()
        self.received = 0
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        self.server = self.loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", self.port))
        ready.set()
        self.loop.run_forever()

    async def _serve(self, client_reader, client_writer) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(reader, writer, count: bool) -> None:
            try:
                while chunk := await reader.read(65536):
                    if count:
                        self.received += len(chunk)
                    writer.write(chunk)
                    await writer.drain()
            except ConnectionError:
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_reader, upstream_writer, False), pump(upstream_reader, client_writer, True))

    def take(self) -> int:
        """The bytes counted since the last call."""
        received, self.received = self.received, 0
        return received


def upload(table: Path, endpoint: str) -> int:
    """Uploads the table under s3://BUCKET/data/metrics/; returns the bytes of its data files."""
    import boto3
    from concurrent.futures import ThreadPoolExecutor
    s3 = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in S3_ENV.items() if k != "AWS_REGION"},
                      region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    files = [path for path in table.rglob("*") if path.is_file()]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda path: s3.upload_file(str(path), BUCKET, f"data/metrics/{path.relative_to(table).as_posix()}"),
                      files))
    return sum(path.stat().st_size for path in files if path.suffix == ".parquet" and "_delta_log" not in path.parts)


def peer(uri: str, endpoint: str) -> None:
    """(child process) The writer's reader: the table's version, files and row count, as JSON."""
    import pyarrow as pa
    from deltalake import DeltaTable

    options = {**S3_ENV, "AWS_ENDPOINT_URL": endpoint, "AWS_ALLOW_HTTP": "true"}
    started = time.perf_counter()
    table = DeltaTable(uri, storage_options=options)
    actions = pa.table(table.get_add_actions(flatten=True))
    rows = sum(actions.column("num_records").to_pylist())
    schema = [field.name for field in table.schema().fields]
    seconds = time.perf_counter() - started
    print(json.dumps({"version": table.version(), "files": actions.num_rows, "rows": rows, "columns": schema,
                      "seconds": seconds}))


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        peer(sys.argv[2], sys.argv[3])
        return
    from importlib.metadata import version
    started = time.perf_counter()
    table = ensure_table()
    moto, endpoint = start_moto()
    try:
        data_bytes = upload(table, endpoint)
        relay = CountingRelay(int(endpoint.rsplit(":", 1)[1]))
        cache = CACHE / "delta-gateway-cache"
        gateway = Gateway(f"s3://{BUCKET}/data/", env={**S3_ENV, "AWS_ENDPOINT_URL": relay.endpoint,
                                                       "MCP_CACHE_DIR": str(cache)})
        relay.take()
        ours_s, result = gateway.call("dataset_metadata", {"path": "metrics"})
        ours_read = relay.take()
        warm_s, _ = gateway.call("dataset_metadata", {"path": "metrics"})
        gateway.close()
        relay.take()
        child = subprocess.run([sys.executable, __file__, "--peer", f"s3://{BUCKET}/data/metrics", relay.endpoint],
                               capture_output=True, text=True, check=True)
        theirs = json.loads(child.stdout)
        theirs["read"] = relay.take()
    finally:
        stop(moto)
    meta = result["datasets"][0]
    ours = {"version": meta["delta"]["version"], "files": meta["delta"]["files"], "rows": meta["row_count"],
            "columns": [column["name"] for column in meta["columns"]]}
    if ours != {key: theirs[key] for key in ours} or ours["files"] != FILES or ours["rows"] != FILES * ROWS_PER_FILE:
        sys.exit(f"delta.py: the answers differ: ours {ours}, deltalake {theirs}, expected {FILES} files")
    if meta["statistics_source"] != "delta-log" or len(meta["sample"]) != 5:
        sys.exit(f"delta.py: expected statistics from the log and 5 sample rows, got {meta['statistics_source']}")
    label = f"Delta table of {FILES:,} files ({data_bytes / 1e6:.0f} MB) in S3"
    peer_name = f"deltalake {version('deltalake')} (Python)"
    facts = (f"One commit adding {FILES:,} files of {ROWS_PER_FILE:,} rows; moto S3 on 127.0.0.1. Ours: a listing of the log folder, the "
             f"log, and one data file for the 5 sample rows. Peer: DeltaTable + get_add_actions (version, files, "
             f"row count from the statistics; no sample rows) in its own process.")
    rows = [
        row("Delta Lake", f"dataset_metadata, {label}: bytes read from S3", "bytes", ours_read, peer_name, theirs["read"],
            "lower", "≤ 1 % of the table's data files", ours_read <= 0.01 * data_bytes,
            f"Bytes moto sent during one call, counted by a TCP relay in front of it: {ours_read:,} = "
            f"{100 * ours_read / data_bytes:.2f} % of {data_bytes:,} bytes of data files. {facts}"),
        row("Delta Lake", f"dataset_metadata, {label}: time", "ms", ours_s * 1000, peer_name, theirs["seconds"] * 1000,
            "lower", None, None, f"Ours: one tools/call over HTTP on a fresh server (warm repeat: {warm_s * 1000:.1f} ms). {facts}"),
    ]
    info = {"mcp-gateway": subprocess.run([binary("mcp-gateway"), "--version"], capture_output=True, text=True,
                                          check=True).stdout.strip(),
            "deltalake": version("deltalake"), "moto": version("moto"), "python": platform.python_version()}
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    out = {"bench": "delta", "quick": QUICK, "profile": PROFILE, "seconds": round(time.perf_counter() - started, 1),
           "versions": info, "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu})",
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), "rows": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "delta.json").write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"delta.py ({'quick' if QUICK else 'full'} run, {PROFILE} build, {out['seconds']:.0f} s):")
    print(f"  ours read {ours_read:,} bytes ({100 * ours_read / data_bytes:.2f} % of the table's data files) in "
          f"{ours_s * 1000:.0f} ms; deltalake read {theirs['read']:,} bytes in {theirs['seconds'] * 1000:.0f} ms")
    print(f"written to {OUT / 'delta.json'}")


if __name__ == "__main__":
    main()
