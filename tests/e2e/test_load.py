"""A bounded load test of `serve`: 100,000 mixed requests at concurrency 64 (tool calls that work,
tool calls that fail, malformed requests, requests whose client hangs up before the answer), with
no unexpected answer, the server up throughout, and its memory after the run within 10 % of its
memory after the first 10,000 (no leak). `LOAD_REQUESTS` shrinks it for a quick local run."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections import Counter

import pytest

from conftest import Server

TOTAL = int(os.environ.get("LOAD_REQUESTS", "100000"))
WARM = TOTAL // 10
CONCURRENCY = 64
LEGACY = "2025-11-25"


def tool_call(name: str, arguments: dict, rid: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}}).encode()


# (kind, share in 100, body maker, check on (status, JSON answer))
MIX = [
    ("file read", 35, lambda i: tool_call("file", {"action": "read", "path": "sales/regions.csv"}, i),
     lambda status, answer: status == 200 and answer["result"]["isError"] is False
     and answer["result"]["structuredContent"]["text"].startswith("code,name,manager")),
    ("tools/list", 20, lambda i: json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/list"}).encode(),
     lambda status, answer: status == 200 and len(answer["result"]["tools"]) >= 4),
    ("search", 10, lambda i: tool_call("search", {"query": "manager", "limit": 3}, i),
     lambda status, answer: status == 200 and answer["result"]["isError"] is False and answer["result"]["structuredContent"]["hits"]),
    ("tool error", 10, lambda i: tool_call("file", {"action": "read", "path": f"../secret-{i}"}, i),
     lambda status, answer: status == 200 and answer["result"]["isError"] is True),
    ("huge cursor", 5, lambda i: tool_call("search", {"query": "x", "cursor": f"o{10**12 + i}"}, i),
     lambda status, answer: status == 200 and answer["result"]["isError"] is True),
    ("bad JSON", 10, lambda i: b'{"jsonrpc": "2.0", "id": ' + str(i).encode() + b', "method": ',
     lambda status, answer: status == 400 and answer["error"]["code"] == -32700),
    ("bad params", 5, lambda i: json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": {"name": i}}).encode(),
     lambda status, answer: status == 400 and answer["error"]["code"] == -32602),
    ("hang up", 5, lambda i: tool_call("search", {"query": "order region manager", "limit": 100}, i), None),
]
PLAN = [entry for entry in MIX for _ in range(entry[1])]
assert len(PLAN) == 100


def request(port: int, body: bytes) -> bytes:
    return (b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json, text/event-stream\r\n"
            b"Content-Type: application/json\r\nMCP-Protocol-Version: %s\r\nContent-Length: %d\r\n\r\n"
            % (port, LEGACY.encode(), len(body))) + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    status = int((await reader.readline()).split()[1])
    headers = {}
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        return status, await reader.readexactly(int(headers["content-length"]))
    body = b""
    while True:
        size = int((await reader.readline()).split(b";")[0], 16)
        if size == 0:
            await reader.readline()
            return status, body
        body += await reader.readexactly(size)
        await reader.readline()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def drive(server: Server) -> dict:
    counter = itertools.count()
    outcomes: Counter = Counter()
    unexpected: list[str] = []
    rss = {}

    async def hang_up(body: bytes) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request(server.port, body))
        await writer.drain()
        writer.close()

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        while (i := next(counter)) < TOTAL:
            if i == WARM:
                rss["warm"] = rss_kib(server.proc.pid)
            kind, _, make, check = PLAN[i % 100]
            if check is None:
                await hang_up(make(i))
                outcomes[kind] += 1
                continue
            writer.write(request(server.port, make(i)))
            await writer.drain()
            status, body = await read_response(reader)
            try:
                ok = check(status, json.loads(body))
            except (KeyError, TypeError, ValueError, IndexError):
                ok = False
            outcomes[kind] += 1
            if not ok and len(unexpected) < 20:
                unexpected.append(f"{kind} #{i}: {status} {body[:200]!r}")
        writer.close()

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), timeout=900)
    return {"seconds": time.monotonic() - started, "outcomes": outcomes, "unexpected": unexpected, "rss": rss}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("load"), env={"RUST_LOG": "warn"})
    try:
        result = asyncio.run(drive(server))
        time.sleep(2)  # hung-up requests finish
        result["rss"]["end"] = rss_kib(server.proc.pid)
        result["alive"] = server.alive()
        yield server, result
    finally:
        server.stop()


def test_100k_mixed_requests_get_only_expected_answers(loaded):
    server, result = loaded
    assert result["alive"], "the server died under load"
    assert result["unexpected"] == [], result["unexpected"]
    assert sum(result["outcomes"].values()) == TOTAL, result["outcomes"]
    print(f"{TOTAL} requests in {result['seconds']:.1f} s ({TOTAL / result['seconds']:.0f}/s): {dict(result['outcomes'])}")


def test_memory_after_the_run_is_within_10_percent_of_after_warm_up(loaded):
    _, result = loaded
    warm, end = result["rss"]["warm"], result["rss"]["end"]
    print(f"RSS after {WARM} requests: {warm / 1024:.1f} MiB; after {TOTAL}: {end / 1024:.1f} MiB")
    assert end <= warm * 1.10, f"RSS grew from {warm} KiB to {end} KiB"
