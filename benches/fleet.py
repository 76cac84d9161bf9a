"""Fleet benchmark: one upstream name over three instances behind `mcp-gateway serve`, against
the same instances called straight, in one run (not a timed test).

- Throughput and p99 of a small tools/call (`file` read) through the gateway (round robin over
  the three instances) at concurrency 1, 8 and 32, and straight to one instance.
- Fail-over: an instance is killed (SIGKILL) while calls run one after another; how long until
  the calls stop reaching it, and how many failed on the way, with passive health only (the
  breaker opens after 5 failures in a row, the default), and with active checks (MCP `ping`
  every 200 ms, out after 2 failures) and no traffic: how long until the gateway stops picking it.

The instances are `mcp-gateway serve` processes over data roots of their own, each with a file
naming the instance, so every answer says who gave it. `mcp-compare` is the load generator.
Writes $BENCH_OUT/fleet.json (format: benches/README.md). BENCH_QUICK=1 shrinks every loop;
BENCH_PROFILE=debug uses debug builds (only to check that the script runs).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import OUT, QUICK, binary, free_port, mcp_compare, row, stop, write_result
from federation import LATEST, call, start, tool_names

REQUESTS = 40 if QUICK else 3000
CONCURRENCY = [1, 8] if QUICK else [1, 8, 32]
INSTANCES = ["a", "b", "c"]
FAILOVER_RUNS = 1 if QUICK else 5


def log(message: str) -> None:
    print(f"fleet.py: {message}", file=sys.stderr, flush=True)


def instance(name: str, tmp: Path) -> tuple[subprocess.Popen, str]:
    """An `mcp-gateway serve` instance whose data root has `who.txt` = its name."""
    root = tmp / f"data-{name}"
    root.mkdir(exist_ok=True)
    (root / "who.txt").write_text(name)
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    proc = start([binary("mcp-gateway"), "--data-root", str(root), "--log-level", "warn", "serve", "--addr", f"127.0.0.1:{port}"],
                 f"instance {name}", lambda: "file" in tool_names(url))
    return proc, url


def gateway(urls: dict[str, str], tmp: Path, health: str = "") -> tuple[subprocess.Popen, str]:
    config = tmp / f"fleet-{time.monotonic_ns()}.toml"
    config.write_text('[[upstream]]\nname = "fleet"\ntransport = "http"\n' + health
                      + "".join(f'[[upstream.instance]]\nid = "{name}"\nurl = "{url}"\n' for name, url in urls.items()))
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    proc = start([binary("mcp-gateway"), "--data-root", str(tmp), "--log-level", "warn", "--no-builtin-tools", "--upstreams", str(config),
                  "serve", "--addr", f"127.0.0.1:{port}"], "the gateway", lambda: "fleet__file" in tool_names(url))
    return proc, url


HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": LATEST, "Mcp-Method": "tools/call",
           "Mcp-Name": "fleet__file"}
READ_WHO = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "fleet__file", "arguments": {"action": "read", "path": "who.txt"},
                       "_meta": {"io.modelcontextprotocol/protocolVersion": LATEST, "io.modelcontextprotocol/clientCapabilities": {}}}}


def who(client: httpx.Client, url: str) -> str | None:
    """The instance that answered one read of who.txt through the gateway (on a kept-alive
    connection); None for a failure."""
    result = client.post(url, json=READ_WHO, headers=HEADERS, timeout=10).json().get("result", {})
    if result.get("isError") or not result.get("content"):
        return None
    return result["content"][0]["text"]


def passive_failover(urls: dict[str, str], procs: dict[str, subprocess.Popen], tmp: Path) -> tuple[float, int]:
    """Kills `b` under sequential calls: ms until the last call that reached it, and the failed calls."""
    proc, url = gateway(urls, tmp)
    try:
        client = httpx.Client()
        for _ in range(30):
            who(client, url)
        procs["b"].send_signal(signal.SIGKILL)
        procs["b"].wait()
        killed = time.perf_counter()
        failed, last_failure, clean = 0, killed, 0
        deadline = killed + 30
        # Done once 30 calls in a row (10 rounds of three) answered without a failure.
        while clean < 30 and time.perf_counter() < deadline:
            if who(client, url) is None:
                failed, last_failure, clean = failed + 1, time.perf_counter(), 0
            else:
                clean += 1
        if clean < 30:
            sys.exit("the gateway kept sending calls to the dead instance for 30 s")
        return (last_failure - killed) * 1000, failed
    finally:
        stop(proc)


def active_failover(urls: dict[str, str], procs: dict[str, subprocess.Popen], tmp: Path) -> float:
    """Kills `c` with no traffic: ms until /gateway/health counts it out."""
    health = '[upstream.health]\nprobe = "mcp"\ninterval = "200ms"\nprobe_timeout = "1s"\nunhealthy_threshold = 2\n'
    proc, url = gateway(urls, tmp, health)
    try:
        who(httpx.Client(), url)
        health_url = url.removesuffix("/mcp") + "/gateway/health"
        time.sleep(0.5)
        procs["c"].send_signal(signal.SIGKILL)
        procs["c"].wait()
        killed = time.perf_counter()
        while time.perf_counter() - killed < 30:
            if httpx.get(health_url, timeout=5).json()["upstreams"][0]["healthy_instances"] == len(urls) - 1:
                return (time.perf_counter() - killed) * 1000
            time.sleep(0.005)
        sys.exit("the active checks did not find the dead instance within 30 s")
    finally:
        stop(proc)


def main() -> None:
    began = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="fleet-bench-"))
    procs: dict[str, subprocess.Popen] = {}
    urls: dict[str, str] = {}
    rows: list[dict] = []
    read = call("file")
    read[read.index("--arguments") + 1] = json.dumps({"action": "read", "path": "who.txt"})
    try:
        for name in INSTANCES:
            procs[name], urls[name] = instance(name, tmp)
        results: dict[tuple[str, int], dict] = {}
        proc, url = gateway(urls, tmp)
        try:
            for concurrency in CONCURRENCY:
                log(f"tools/call at concurrency {concurrency}: straight to one instance, then through the gateway")
                out = tmp / f"direct-{concurrency}.json"
                results[("direct", concurrency)] = mcp_compare("direct", urls["a"], LATEST, REQUESTS, concurrency, out, *read)
                gateway_read = [*read]
                gateway_read[gateway_read.index("--tool") + 1] = "fleet__file"
                out = tmp / f"gateway-{concurrency}.json"
                results[("gateway", concurrency)] = mcp_compare("mcp-gateway", url, LATEST, REQUESTS, concurrency, out, *gateway_read)
            spread = {name: 0 for name in INSTANCES}
            client = httpx.Client()
            for _ in range(30):
                answered = who(client, url) or "failed"
                spread[answered] = spread.get(answered, 0) + 1
        finally:
            stop(proc)
        log("fail-over: kill an instance under sequential calls (passive health)")
        passive = []
        for _ in range(FAILOVER_RUNS):
            passive.append(passive_failover(urls, procs, tmp))
            procs["b"], urls["b"] = instance("b", tmp)
        log("fail-over: kill an instance with active checks and no traffic")
        active = []
        for _ in range(FAILOVER_RUNS):
            active.append(active_failover(urls, procs, tmp))
            procs["c"], urls["c"] = instance("c", tmp)
    finally:
        for proc in procs.values():
            stop(proc)

    section = "Fleet"
    for concurrency in CONCURRENCY:
        mine, direct = results[("gateway", concurrency)], results[("direct", concurrency)]
        rows.append(row(section, f"tools/call through the gateway over 3 instances, concurrency {concurrency}: requests/s",
                        "req/s", mine["requests_per_second"], "one instance called straight", direct["requests_per_second"],
                        better="higher",
                        note=f"p50 {mine['latency_ms']['median']:.2f} ms (straight {direct['latency_ms']['median']:.2f} ms); "
                             f"round robin; {REQUESTS} calls; the instances, the gateway and the load generator share "
                             f"{os.cpu_count()} cores"))
        rows.append(row(section, f"tools/call through the gateway over 3 instances, concurrency {concurrency}: p99", "ms",
                        mine["latency_ms"]["p99"], "one instance called straight", direct["latency_ms"]["p99"]))
    times = sorted(ms for ms, _ in passive)
    failures = sorted(count for _, count in passive)
    rows.append(row(section, "fail-over, passive: instance killed → last call that reached it", "ms", times[len(times) // 2],
                    note=f"median of {FAILOVER_RUNS} (all: {', '.join(f'{t:.1f}' for t in times)}); calls one after another, "
                         f"round robin over 3; failed calls on the way: median {failures[len(failures) // 2]} "
                         "(the breaker opens after 5 failures in a row; only those calls reached the dead instance)"))
    active.sort()
    rows.append(row(section, "fail-over, active checks (ping every 200 ms, out after 2): instance killed → taken out", "ms",
                    active[len(active) // 2],
                    note=f"median of {FAILOVER_RUNS} (all: {', '.join(f'{t:.0f}' for t in active)}); no traffic, no failed "
                         "call: found by the checks alone"))

    version = subprocess.run([binary("mcp-gateway"), "--version"], capture_output=True, text=True).stdout.strip()
    write_result("fleet", began, {"mcp-gateway": version}, rows, spread=spread)


if __name__ == "__main__":
    main()
