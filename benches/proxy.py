"""Benchmark of mcp-sigv4-proxy against PyPI `mcp-proxy-for-aws`, side by side in one run (not a
timed test).

Both proxies are driven over stdio the same way (initialize, then JSON-RPC lines) and sign for the
same SigV4-verifying API Gateway stand-in in front of `mcp-gateway serve`. Measured: start-up (exec
→ initialize answered), idle and peak RSS, latency added over a direct unsigned call (p50/p99, a
small tools/call), and a 10 MB file read through each. Writes $BENCH_OUT/proxy.json (format:
benches/README.md) and proxy.md. Run through `make bench` (release binaries). BENCH_QUICK=1 shrinks
every loop.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from common import OUT, PROXY_PROFILE, QUICK, ROOT, binary, free_port, percentile, rss_kib, stop, wait_ready

AWS_PROXY = ROOT / ".tools" / "aws-proxy-venv" / "bin" / "mcp-proxy-for-aws"
PINGS = 30 if QUICK else 400
STARTS = 2 if QUICK else 30
BIG_MB = 1 if QUICK else 10
BIG_READS = 3 if QUICK else 15
ACCESS_KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


class Proxy:
    """A stdio proxy process, spoken to one JSON line at a time, recording when each line arrived."""

    def __init__(self, command: list[str], env: dict) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, env=env, bufsize=0)
        self.lines: queue.Queue[tuple[float, bytes]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Splits stdout into lines from 1 MiB reads: iterating a pipe (8 KiB reads, a list of
        pieces joined per line) took 40-70 ms for a 21 MB line here, longer than the proxy's share."""
        fd, pending = self.proc.stdout.fileno(), bytearray()
        while chunk := os.read(fd, 1 << 20):
            start = len(pending)
            pending += chunk
            while (end := pending.find(b"\n", start)) >= 0:
                arrived = time.perf_counter()
                with memoryview(pending) as view:
                    line = bytes(view[:end + 1])
                self.lines.put((arrived, line))
                del pending[:end + 1]
                start = 0

    def send(self, message: dict) -> None:
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()

    def call(self, message: dict) -> tuple[float, bytes]:
        sent = time.perf_counter()
        self.send(message)
        while True:
            at, line = self.lines.get(timeout=120)
            if json.loads(line).get("id") == message["id"]:
                return at - sent, line

    def initialize(self) -> bytes:
        _, line = self.call({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": INIT})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return line

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}
SMALL = {"name": "file", "arguments": {"action": "read", "path": "small.txt"}}
BIG = {"name": "file", "arguments": {"action": "read", "path": "big.txt"}}


def call(rid: int, params: dict) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def measure(name: str, command: list[str], env: dict, big_size: int) -> dict:
    """Start-up, RSS, small-call latency and the 10 MB read of one proxy."""
    starts, idle = [], []
    for _ in range(STARTS):
        proxy = Proxy(command, env)
        answer = json.loads(proxy.initialize())
        starts.append(time.perf_counter() - proxy.started)
        if "result" not in answer:
            sys.exit(f"{name}: initialize failed: {answer}")
        time.sleep(0.05)
        idle.append(rss_kib(proxy.proc.pid))
        proxy.close()
    proxy = Proxy(command, env)
    proxy.initialize()
    for i in range(20):
        proxy.call(call(100 + i, SMALL))
    latencies = []
    for i in range(PINGS):
        elapsed, line = proxy.call(call(1000 + i, SMALL))
        latencies.append(elapsed)
    if json.loads(line)["result"].get("isError"):
        sys.exit(f"{name}: the small read failed: {line[:300]!r}")
    big = []
    for i in range(BIG_READS):
        elapsed, line = proxy.call(call(5000 + i, BIG))
        big.append(elapsed)
    answer = json.loads(line)["result"]
    if answer.get("isError") or len(answer["content"][0]["text"]) != big_size:
        sys.exit(f"{name}: the big read did not come back whole: {line[:300]!r}")
    peak = rss_kib(proxy.proc.pid, "VmHWM")
    proxy.close()
    return {"start_ms": statistics.median(starts) * 1000, "idle_rss_mib": statistics.median(idle) / 1024,
            "latency": latencies, "big_s": statistics.median(big), "peak_rss_mib": peak / 1024}


def main() -> None:
    began = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    data = tmp / "data"
    data.mkdir()
    line = "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ the quick brown fox\n"
    (data / "big.txt").write_text(line * (BIG_MB * 1024 * 1024 // len(line)))
    (data / "small.txt").write_text(line * 4)
    size = (data / "big.txt").stat().st_size
    creds = tmp / "creds.json"
    creds.write_text(json.dumps({ACCESS_KEY: {"secret": SECRET}}))
    empty = tmp / "empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
               AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty), AWS_EC2_METADATA_DISABLED="true")
    if not AWS_PROXY.exists():
        sys.exit(f"{AWS_PROXY} is missing: run benches/peers/install.sh (make bench does)")

    port = free_port()
    server = subprocess.Popen([binary("mcp-gateway"), "--data-root", str(data), "--max-read-bytes", str(64 << 20),
                               "--log-level", "warn", "serve", "--addr", f"127.0.0.1:{port}", "--max-body-bytes", str(64 << 20)],
                              stderr=subprocess.DEVNULL)
    direct_url = f"http://127.0.0.1:{port}/mcp"
    wait_ready(lambda: httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200, server,
               "mcp-gateway serve")
    standin = subprocess.Popen([binary("apigw-standin"), "--upstream", direct_url, "--credentials", str(creds)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    standin_url = standin.stdout.readline().split()[-1]
    r: dict = {"big_bytes": size}
    try:
        version_runs = []
        for _ in range(STARTS):
            t = time.perf_counter()
            subprocess.run([binary("mcp-sigv4-proxy"), "--version"], capture_output=True, check=True)
            version_runs.append(time.perf_counter() - t)
        r["start_version_ms"] = statistics.median(version_runs) * 1000

        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "MCP-Protocol-Version": "2025-11-25"}
        with httpx.Client(timeout=60) as client:
            for i in range(20):
                client.post(direct_url, json=call(i, SMALL), headers=headers)
            direct = []
            for i in range(PINGS):
                t = time.perf_counter()
                client.post(direct_url, json=call(i, SMALL), headers=headers)
                direct.append(time.perf_counter() - t)
            big_direct = []
            for i in range(BIG_READS):
                t = time.perf_counter()
                client.post(direct_url, json=call(i, BIG), headers=headers).raise_for_status()
                big_direct.append(time.perf_counter() - t)
        r["direct"], r["big_direct_s"] = direct, statistics.median(big_direct)
        ours = [binary("mcp-sigv4-proxy"), "--region", "us-east-1", "--endpoint"]
        theirs = [str(AWS_PROXY), standin_url, "--service", "execute-api", "--region", "us-east-1"]
        print("proxy.py: mcp-sigv4-proxy → serve (no stand-in)", file=sys.stderr, flush=True)
        r["ours_direct"] = measure("mcp-sigv4-proxy", [*ours, direct_url], env, size)
        print("proxy.py: mcp-sigv4-proxy → SigV4 stand-in → serve", file=sys.stderr, flush=True)
        r["ours"] = measure("mcp-sigv4-proxy", [*ours, standin_url], env, size)
        print("proxy.py: mcp-proxy-for-aws → SigV4 stand-in → serve", file=sys.stderr, flush=True)
        r["theirs"] = measure("mcp-proxy-for-aws", theirs, env, size)
    finally:
        for proc in (standin, server):
            stop(proc)
    r["seconds"] = time.perf_counter() - began
    write_report(r)


def write_report(r: dict) -> None:
    ms = lambda values, q: percentile(values, q) * 1000  # noqa: E731
    direct = r["direct"]
    ours, direct_hop, theirs = r["ours"], r["ours_direct"], r["theirs"]
    peer = f"mcp-proxy-for-aws {version_of(AWS_PROXY)}"

    def added(run: dict, q: float) -> float:
        return ms(run["latency"], q) - ms(direct, q)

    def row(measure, unit, value, peer_value=None, better="lower", goal=None, met=None, note=""):
        return {"section": "Proxy", "measure": measure, "unit": unit, "ours": value,
                "peer": peer if peer_value is not None else None, "peer_value": peer_value, "better": better,
                "goal": goal, "goal_met": met, "note": note}

    big_note = (f"{r['big_bytes'] / 1e6:.1f} MB file, a {BIG_MB} MB read answered as one JSON-RPC line; "
                f"the server alone answers it in {r['big_direct_s'] * 1000:.0f} ms (direct HTTP)")
    rows = [
        row("start-up: exec → exit of `--version`", "ms", r["start_version_ms"], goal="≤ 10 ms",
            met=r["start_version_ms"] <= 10, note=f"median of {STARTS}; the peer has no equivalent"),
        row("start-up: exec → initialize answered (through the stand-in)", "ms", ours["start_ms"], theirs["start_ms"],
            note=f"median of {STARTS}; includes credentials, signing, connecting and the server's answer"),
        row("idle RSS after initialize", "MiB", ours["idle_rss_mib"], theirs["idle_rss_mib"], goal="≤ 10 MB",
            met=ours["idle_rss_mib"] * 1.048576 <= 10),
        row("peak RSS after the 10 MB reads", "MiB", ours["peak_rss_mib"], theirs["peak_rss_mib"], goal="≤ 10 MB",
            met=ours["peak_rss_mib"] * 1.048576 <= 10,
            note=f"VmHWM; without the stand-in ours peaks at {direct_hop['peak_rss_mib']:.1f} MiB"),
        row("added latency p50 over a direct unsigned call", "ms", added(ours, 50), added(theirs, 50), goal="≤ 1 ms",
            met=added(ours, 50) <= 1,
            note=f"small tools/call, {PINGS} sequential; includes the stand-in's SigV4 check (ours straight to "
                 f"serve: {added(direct_hop, 50):+.3f} ms); direct p50 {ms(direct, 50):.3f} ms"),
        row("added latency p99 over a direct unsigned call", "ms", added(ours, 99), added(theirs, 99),
            note=f"ours straight to serve: {added(direct_hop, 99):+.3f} ms"),
        row(f"{BIG_MB} MB file through the proxy and the stand-in", "ms", ours["big_s"] * 1000, theirs["big_s"] * 1000,
            goal="≤ 100 ms", met=ours["big_s"] <= 0.1,
            note=big_note + f"; ours straight to serve: {direct_hop['big_s'] * 1000:.0f} ms"),
    ]
    result = {"bench": "proxy", "quick": QUICK, "profile": PROXY_PROFILE, "seconds": r["seconds"],
              "versions": {"mcp-sigv4-proxy": version_of(binary("mcp-sigv4-proxy")),
                           "mcp-proxy-for-aws": version_of(AWS_PROXY), "python": platform.python_version()},
              "rows": rows, "plots": []}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "proxy.json").write_text(json.dumps(result, indent=2))
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    table = "\n".join(
        f"| {x['measure']} | {x['ours']:.3f} {x['unit']} | "
        + (f"{x['peer_value']:.3f} {x['unit']}" if x["peer_value"] is not None else "—")
        + f" | {x['goal'] or ''} {'' if x['goal'] is None else ('met' if x['goal_met'] else '**missed**')} | {x['note']} |"
        for x in rows)
    report = f"""# mcp-sigv4-proxy benchmark

Generated by `benches/proxy.py` ({'quick mode' if QUICK else 'full run'}) on {datetime.date.today().isoformat()};
{result['versions']['mcp-sigv4-proxy']} (`{PROXY_PROFILE}` profile build) and {peer}, side by side; {platform.system()}
{platform.release()}, {os.cpu_count()} cores ({cpu}); Python {platform.python_version()}. Both proxies sign for
the same SigV4-verifying stand-in (scratchstack-aws-signature) in front of `mcp-gateway serve`, on loopback.

| measure | mcp-sigv4-proxy | {peer} | goal | note |
| --- | --- | --- | --- | --- |
{table}
"""
    (OUT / "proxy.md").write_text(report)
    print(report)


def version_of(command) -> str:
    if Path(command) == AWS_PROXY:  # a Python console script without --version
        python = AWS_PROXY.parent / "python"
        run = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('mcp-proxy-for-aws'))"],
                             capture_output=True, text=True)
        return run.stdout.strip() or "?"
    run = subprocess.run([str(command), "--version"], capture_output=True, text=True)
    return (run.stdout.strip() or "?").splitlines()[0]


if __name__ == "__main__":
    main()
