"""Access benchmark: what authentication, authorization and rate limits cost (not a timed test).

- In process (`cargo bench --bench access_cost`): the same `tools/list` and `file` info requests
  through the gateway's router with no access file, with an API key + 3 rules + 3 rate limits
  (functions/mcp-gateway/benches/fixtures/bench-access.toml, which the throughput half uses too),
  and with a JWT (RS256, verified once then remembered) + the same rules and limits; p50 and the
  p50 overhead against no access file. Goal: overhead ≤ 20 µs p50. Request metrics are counted
  in every case (they are always on).
- Throughput: `mcp-gateway serve` with and without that access file (API key), the `file` info
  request at concurrency 1, 8 and 64 through wrk; the ratio on/off.

Writes $BENCH_OUT/access.json (format: benches/README.md). BENCH_QUICK=1 shrinks every loop;
BENCH_PROFILE=debug uses debug builds (only to check that the script runs).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import QUICK, ROOT, binary, cargo_bench, free_port, row, stop, wrk, write_result
from federation import LATEST, start

API_KEY = "bench-key-0123456789abcdef"
CONCURRENCY = [1, 8] if QUICK else [1, 8, 64]
SECONDS = 1 if QUICK else 5
GOAL_US = 20.0


def log(message: str) -> None:
    print(f"access.py: {message}", file=sys.stderr, flush=True)


def serve(access: Path | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    extra = ["--access", str(access)] if access else []
    import httpx

    def ready() -> bool:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200

    proc = start([binary("mcp-gateway"), "--data-root", str(ROOT / "examples" / "data"), "--log-level", "warn", *extra,
                  "serve", "--addr", f"127.0.0.1:{port}"], "serve" + (" with access" if access else ""), ready)
    return proc, url


def main() -> None:
    began = time.perf_counter()
    rows = []
    log("in-process cost (cargo bench --bench access_cost)")
    lines = cargo_bench("access_cost")
    for line in lines:
        if line["case"] == "open":
            continue
        overhead = line["overhead_p50_us"]
        rows.append(row("Access", f"{line['case']}: {line['request']} p50 overhead", "µs", overhead,
                        goal=f"≤ {GOAL_US:.0f} µs", goal_met=overhead <= GOAL_US,
                        note=f"p50 {line['p50_us']:.1f} µs with, p99 {line['p99_us']:.1f} µs"))
    for line in lines:
        if line["case"] == "open":
            rows.append(row("Access", f"no access file: {line['request']} p50", "µs", line["p50_us"],
                            note=f"p99 {line['p99_us']:.1f} µs"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        key_hash = subprocess.run([binary("mcp-gateway"), "access", "hash-key"], input=API_KEY, capture_output=True,
                                  text=True, check=True).stdout.strip()
        fixtures = ROOT / "functions" / "mcp-gateway" / "benches" / "fixtures"
        access = tmp / "access.toml"
        access.write_text((fixtures / "bench-access.toml").read_text().replace("@KEY_SHA256@", key_hash)
                          .replace("@JWKS@", str(fixtures / "bench-jwks.json")))
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "file", "arguments": {"action": "info", "path": "sales/regions.csv"},
                           "_meta": {"io.modelcontextprotocol/protocolVersion": LATEST,
                                     "io.modelcontextprotocol/clientCapabilities": {}}}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "MCP-Protocol-Version": LATEST, "Mcp-Method": "tools/call", "Mcp-Name": "file"}
        results = {}
        for label, file in (("off", None), ("on", access)):
            proc, url = serve(file)
            try:
                for concurrency in CONCURRENCY:
                    log(f"serve, access {label}, c={concurrency}")
                    extra = {"x-api-key": API_KEY} if file else {}
                    results[(label, concurrency)] = wrk(url, body, {**headers, **extra}, '"isError":false',
                                                        concurrency, SECONDS)
            finally:
                stop(proc)
        for concurrency in CONCURRENCY:
            on, off = results[("on", concurrency)], results[("off", concurrency)]
            rows.append(row("Access", f"serve file info, c={concurrency}, access on", "req/s", on["requests_per_second"],
                            peer="access off", peer_value=off["requests_per_second"], better="higher",
                            note=f"p99 {on['latency_us']['p99'] / 1000:.2f} ms on, {off['latency_us']['p99'] / 1000:.2f} ms off"))
    write_result("access", began, {"mcp-gateway": "this commit"}, rows, in_process=lines)


if __name__ == "__main__":
    main()
