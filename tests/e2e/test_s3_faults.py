"""Faults of the S3 stand-in (moto) while the gateway downloads a dataset for polars: the object
stream cut off halfway, and the stand-in made slow. Each gives a clear error, the next call
succeeds, and no partial file is left in the dataset cache."""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from mcp.client.client import Client

from conftest import Server
from test_storage import BUCKET, S3_ENV, moto  # noqa: F401  (fixture)

ROWS = 60_000


class FaultyS3(ThreadingHTTPServer):
    """Forwards every request to the S3 stand-in; in mode `cut`, object downloads stop after half
    their body (the connection closes); in mode `slow`, they trickle 16 KiB per second."""

    daemon_threads = True

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), FaultHandler)
        self.upstream, self.mode, self.downloads = upstream, "pass", 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultyS3

    def log_message(self, *args) -> None:
        pass

    def forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        request = urllib.request.Request(self.server.upstream + self.path, data=body, method=self.command, headers=headers)
        try:
            response = urllib.request.urlopen(request, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        payload = response.read()
        is_download = self.command == "GET" and "list-type" not in self.path and "delimiter" not in self.path
        self.send_response(response.status)
        for key, value in response.headers.items():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        mode = self.server.mode if is_download and len(payload) > 100_000 else "pass"
        if is_download:
            self.server.downloads += 1
        if mode == "cut":
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
        elif mode == "slow":
            for start in range(0, len(payload), 16384):
                self.wfile.write(payload[start:start + 16384])
                self.wfile.flush()
                time.sleep(1)
        else:
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = forward


@pytest.fixture(scope="module")
def faulty(moto, tmp_path_factory):  # noqa: F811
    endpoint, s3 = moto
    rows = "".join(f"{i},region-{i % 7},{i * 3}\n" for i in range(ROWS))
    for name in ("cut.csv", "slow.csv"):
        s3.put_object(Bucket=BUCKET, Key=f"data/faults/{name}", Body=("id,region,amount\n" + rows).encode())
    proxy = FaultyS3(endpoint)
    cache = tmp_path_factory.mktemp("cache")
    env = {**S3_ENV, "AWS_ENDPOINT_URL": proxy.url, "MCP_CACHE_DIR": str(cache)}
    server = Server(tmp_path_factory.mktemp("faults"), "--db-timeout", "2", data_root=f"s3://{BUCKET}/data/", env=env)
    yield proxy, server, cache
    server.stop()
    proxy.shutdown()


def leftovers(cache) -> list[str]:
    return [path.name for path in cache.rglob("*") if ".part-" in path.name]


async def count(server: Server, table: str):
    async with Client(server.url, mode="2026-07-28") as client:
        return await client.call_tool("db", {"action": "query", "sql": f"SELECT count(*) AS n, sum(amount) AS total FROM {table}"})


@pytest.mark.anyio
async def test_a_download_cut_off_midway_is_a_clear_error_and_the_next_call_succeeds(faulty):
    proxy, server, cache = faulty
    proxy.mode = "cut"
    failed = await count(server, "faults_cut")
    assert failed.is_error is True
    assert "faults/cut.csv" in failed.content[0].text, failed.content[0].text
    assert leftovers(cache) == []
    assert not list(cache.rglob("cut.csv")), "a cut-off download must not be kept as the dataset"
    proxy.mode = "pass"
    worked = await count(server, "faults_cut")
    assert worked.is_error is False, worked.content
    assert worked.structured_content["rows"] == [{"n": ROWS, "total": 3 * ROWS * (ROWS - 1) // 2}]
    assert server.alive()


@pytest.mark.anyio
async def test_a_slow_store_times_out_cleanly_and_the_next_call_succeeds(faulty):
    proxy, server, cache = faulty
    proxy.mode = "slow"
    started = time.monotonic()
    failed = await count(server, "faults_slow")
    assert failed.is_error is True
    assert "timed out" in failed.content[0].text, failed.content[0].text
    assert time.monotonic() - started < 30
    time.sleep(0.5)
    assert leftovers(cache) == [], "the cancelled download left a partial file"
    proxy.mode = "pass"
    worked = await count(server, "faults_slow")
    assert worked.is_error is False, worked.content
    assert worked.structured_content["rows"][0]["n"] == ROWS
    assert server.alive()
