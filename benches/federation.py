"""Federation benchmark: what one gateway hop costs, against FastMCP 4.x federating the same
upstreams (`create_proxy` + `mount`, benches/peers/fastmcp_federation.py), in one run (not a timed
test).

- Added latency of one hop: p50 and p99 of a small tools/call (`file` read) through the gateway,
  minus the same call straight to the upstream, at concurrency 1.
- Throughput of that call through each gateway at concurrency 8 and 32.
- `tools/list` over 3 upstreams: cold (exec → the first list that has every upstream's tools: the
  fan-out, with each upstream's connection and handshake) and warm (p50 at concurrency 1, from
  `mcp-gateway`'s catalogue; FastMCP asks its upstreams again).

The upstreams are `mcp-gateway serve` processes: the fastest MCP server at hand, so that the hop,
not the upstream, is what is measured. Every server speaks 2026-07-28; `mcp-compare` is the one
load generator. Writes $BENCH_OUT/federation.json (format: benches/README.md). BENCH_QUICK=1
shrinks every loop; BENCH_PROFILE=debug uses debug builds (only to check that the script runs).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from common import OUT, QUICK, ROOT, binary, free_port, mcp_compare, row, stop, wait_ready, write_result

TOOLS = ROOT / ".tools"
PEERS = ROOT / "benches" / "peers"
DATA = ROOT / "examples" / "data"
PYTHON = TOOLS / "bench-venv" / "bin" / "python"

STARTS = 2 if QUICK else 10
REQUESTS = 40 if QUICK else 2000
# FastMCP's proxy opens a new upstream session per call (tens of ms each): fewer calls, same measures.
PEER_REQUESTS = 10 if QUICK else 150
CONCURRENCY = [8] if QUICK else [8, 32]
LATEST = "2026-07-28"
UPSTREAMS = ["alpha", "beta", "gamma"]
READ = {"action": "read", "path": "README.md"}


def log(message: str) -> None:
    print(f"federation.py: {message}", file=sys.stderr, flush=True)


def start(command: list[str], what: str, ready) -> subprocess.Popen:
    """Starts `command` and waits until `ready()` holds (stderr kept for the error message)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_ready(ready, proc, f"{what} ({' '.join(command)})", interval=0.002)
    return proc


def post(url: str, method: str, params: dict | None = None, timeout: float = 5) -> dict:
    """One 2026-07-28 request (no handshake), its JSON-RPC answer."""
    params = dict(params or {})
    params["_meta"] = {"io.modelcontextprotocol/protocolVersion": LATEST, "io.modelcontextprotocol/clientCapabilities": {}}
    headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": LATEST, "Mcp-Method": method}
    if "name" in params:
        headers["Mcp-Name"] = params["name"]
    answer = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params},
                        headers=headers, timeout=timeout)
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        return json.loads([line[5:] for line in answer.text.splitlines() if line.startswith("data:")][-1])
    return answer.json()


def tool_names(url: str) -> set[str]:
    return {tool["name"] for tool in post(url, "tools/list").get("result", {}).get("tools", [])}


class Gateway:
    """A federating gateway under test: how to start it over the upstreams, how it names their tools."""

    def __init__(self, name: str, label: str, separator: str) -> None:
        self.name, self.label, self.separator = name, label, separator
        self.proc: subprocess.Popen | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def exposed(self, upstream: str, tool: str) -> str:
        return f"{upstream}{self.separator}{tool}"

    def command(self, upstreams: dict[str, str], tmp: Path) -> list[str]:
        if self.name == "mcp-gateway":
            config = tmp / "upstreams.toml"
            config.write_text("".join(f'[[upstream]]\nname = "{name}"\ntransport = "http"\nurl = "{url}"\n\n'
                                      for name, url in upstreams.items()))
            return [binary("mcp-gateway"), "--data-root", str(DATA), "--log-level", "warn", "--no-builtin-tools",
                    "--upstreams", str(config), "serve", "--addr", f"127.0.0.1:{self.port}"]
        return [str(PYTHON), str(PEERS / "fastmcp_federation.py"), "--port", str(self.port),
                *[f"--upstream={name}={url}" for name, url in upstreams.items()]]

    def start(self, upstreams: dict[str, str], tmp: Path) -> float:
        """Starts it; returns seconds from exec to the first tools/list that has every upstream's tools."""
        self.port = free_port()
        wanted = {self.exposed(name, "file") for name in upstreams}
        started = time.perf_counter()
        self.proc = start(self.command(upstreams, tmp), self.name, lambda: wanted <= tool_names(self.url))
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.proc:
            stop(self.proc)
            self.proc = None


def measure(target: str, url: str, concurrency: int, tmp: Path, *operation: str) -> dict:
    out = tmp / f"{target}-{concurrency}-{time.monotonic_ns()}.json"
    requests = PEER_REQUESTS if target == "fastmcp" else REQUESTS
    return mcp_compare(target, url, LATEST, requests, concurrency, out, *operation)


def call(tool: str) -> list[str]:
    return ["--method", "tools/call", "--tool", tool, "--arguments", json.dumps(READ)]


def main() -> None:
    began = time.perf_counter()
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="federation-bench-"))
    upstream_procs: list[subprocess.Popen] = []
    upstreams: dict[str, str] = {}
    ours, peer = Gateway("mcp-gateway", "mcp-gateway serve (Rust)", "__"), Gateway("fastmcp", "FastMCP 4.x mount of proxies (Python)", "_")
    rows: list[dict] = []
    try:
        for name in UPSTREAMS:
            port = free_port()
            url = f"http://127.0.0.1:{port}/mcp"
            upstream_procs.append(start([binary("mcp-gateway"), "--data-root", str(DATA), "--log-level", "warn", "serve",
                                         "--addr", f"127.0.0.1:{port}"], f"upstream {name}",
                                        lambda url=url: "file" in tool_names(url)))
            upstreams[name] = url
        first = UPSTREAMS[0]

        log(f"cold start over {len(UPSTREAMS)} upstreams: exec → first complete tools/list, {STARTS} times each")
        cold: dict[str, float] = {}
        for gateway in (ours, peer):
            times = []
            for _ in range(STARTS):
                times.append(gateway.start(upstreams, tmp))
                gateway.stop()
            cold[gateway.name] = statistics.median(times) * 1000

        log("the upstream straight: a small tools/call at concurrency 1")
        direct = measure("direct", upstreams[first], 1, tmp, *call("file"))
        results: dict[tuple[str, int], dict] = {}
        warm: dict[str, dict] = {}
        for gateway in (ours, peer):
            gateway.start(upstreams, tmp)
            try:
                for concurrency in [1, *CONCURRENCY]:
                    log(f"  {gateway.name}: tools/call at concurrency {concurrency}")
                    results[(gateway.name, concurrency)] = measure(gateway.name, gateway.url, concurrency, tmp,
                                                                   *call(gateway.exposed(first, "file")))
                log(f"  {gateway.name}: tools/list over {len(UPSTREAMS)} upstreams at concurrency 1")
                warm[gateway.name] = measure(gateway.name, gateway.url, 1, tmp, "--method", "tools/list")
            finally:
                gateway.stop()
    finally:
        for gateway in (ours, peer):
            gateway.stop()
        for proc in upstream_procs:
            stop(proc)

    section = "Federation"
    base = direct["latency_ms"]
    for stat, goal in (("median", 0.3), ("p99", None)):
        added = results[("mcp-gateway", 1)]["latency_ms"][stat] - base[stat]
        theirs = results[("fastmcp", 1)]["latency_ms"][stat] - base[stat]
        label = "p50" if stat == "median" else stat
        rows.append(row(section, f"added latency of one hop, small tools/call ({label})", "ms", added, peer.label, theirs,
                        goal=f"≤ {goal} ms" if goal else None, goal_met=added <= goal if goal else None,
                        note=f"through the gateway {results[('mcp-gateway', 1)]['latency_ms'][stat]:.3f} ms, FastMCP "
                             f"{results[('fastmcp', 1)]['latency_ms'][stat]:.3f} ms, straight to the upstream "
                             f"{base[stat]:.3f} ms; {REQUESTS} calls at concurrency 1 on loopback "
                             f"({PEER_REQUESTS} through FastMCP)"))
    for index, concurrency in enumerate(CONCURRENCY):
        mine, theirs = results[("mcp-gateway", concurrency)], results[("fastmcp", concurrency)]
        judged = index == len(CONCURRENCY) - 1
        rps = mine["requests_per_second"]
        rows.append(row(section, f"calls through the gateway, concurrency {concurrency}: requests/s", "req/s", rps,
                        peer.label, theirs["requests_per_second"], better="higher",
                        goal="≥ 20× the peer" if judged else None,
                        goal_met=rps >= 20 * theirs["requests_per_second"] if judged else None,
                        note=f"{REQUESTS} calls ({PEER_REQUESTS} through FastMCP); p50 {mine['latency_ms']['median']:.2f} ms "
                             f"(peer {theirs['latency_ms']['median']:.2f} ms); "
                             f"the upstream, both gateways and the load generator share {os.cpu_count()} cores"))
    rows.append(row(section, f"tools/list over {len(UPSTREAMS)} upstreams, cold: exec → first complete list", "ms",
                    cold["mcp-gateway"], peer.label, cold["fastmcp"],
                    note=f"median of {STARTS}; the gateway connects to, handshakes with and lists every upstream "
                         "(ours before it accepts its first request, polled every 2 ms)"))
    rows.append(row(section, f"tools/list over {len(UPSTREAMS)} upstreams, warm (p50)", "ms",
                    warm["mcp-gateway"]["latency_ms"]["median"], peer.label, warm["fastmcp"]["latency_ms"]["median"],
                    note=f"p99 {warm['mcp-gateway']['latency_ms']['p99']:.3f} ms (peer {warm['fastmcp']['latency_ms']['p99']:.3f} ms); "
                         "ours answers from its catalogue, FastMCP lists every upstream again"))

    versions = {"mcp-gateway": subprocess.run([binary("mcp-gateway"), "--version"], capture_output=True, text=True).stdout.strip(),
                "fastmcp": subprocess.run([str(PYTHON), "-c", "import importlib.metadata as m; print(m.version('fastmcp'))"],
                                          capture_output=True, text=True).stdout.strip() or "?"}
    write_result("federation", began, versions, rows)


if __name__ == "__main__":
    main()
