"""Benchmark of mcp-sigv4-proxy, side by side in one run (not a timed test).

Measures, on this machine: start-up, idle and peak RSS, latency added over a direct unsigned
call (p50/p99), and a 10 MB tool result through the proxy. Writes benches/results/proxy.md.
Run through `make bench` (release binaries). BENCH_QUICK=1 shrinks every loop.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-lambda-gateway/target"))
PROFILE = os.environ.get("BENCH_PROFILE", "release")
QUICK = os.environ.get("BENCH_QUICK") == "1"
PINGS = 30 if QUICK else 400
STARTS = 5 if QUICK else 30
BIG_MB = 1 if QUICK else 10
ACCESS_KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def binary(name: str) -> str:
    path = TARGET / PROFILE / name
    if not path.exists():
        sys.exit(f"{path} is missing: build with `cargo build --profile {PROFILE} -p {name}`")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def wait_http(url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.02)
    sys.exit(f"{url} did not come up")


class Proxy:
    def __init__(self, endpoint: str, env: dict) -> None:
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([binary("mcp-sigv4-proxy"), "--endpoint", endpoint, "--region", "us-east-1"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
        self.lines: queue.Queue[tuple[float, bytes]] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put((time.perf_counter(), line))

    def call(self, message: dict) -> tuple[float, bytes]:
        sent = time.perf_counter()
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        at, line = self.lines.get(timeout=60)
        return at - sent, line

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=20)


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="proxy-bench-"))
    data = tmp / "data"
    data.mkdir()
    line = "0123456789 abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ the quick brown fox\n"
    (data / "big.txt").write_text(line * (BIG_MB * 1024 * 1024 // len(line)))
    size = (data / "big.txt").stat().st_size
    creds = tmp / "creds.json"
    creds.write_text(json.dumps({ACCESS_KEY: {"secret": SECRET}}))
    empty = tmp / "empty"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
               AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty), AWS_EC2_METADATA_DISABLED="true")

    port = free_port()
    server = subprocess.Popen([binary("mcp-gateway"), "--data-root", str(data), "--max-read-bytes", str(64 << 20),
                               "--log-level", "warn", "serve", "--addr", f"127.0.0.1:{port}", "--max-body-bytes", str(64 << 20)],
                              stderr=subprocess.DEVNULL)
    direct_url = f"http://127.0.0.1:{port}/mcp"
    wait_http(f"http://127.0.0.1:{port}/health")
    standin = subprocess.Popen([binary("apigw-standin"), "--upstream", direct_url, "--credentials", str(creds)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    standin_url = standin.stdout.readline().split()[-1]
    results: dict[str, object] = {}
    try:
        ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "MCP-Protocol-Version": "2025-11-25"}

        # Start-up: exec to exit of `--version`, and exec to the first answered ping.
        version_runs, first_answer = [], []
        for _ in range(STARTS):
            t = time.perf_counter()
            subprocess.run([binary("mcp-sigv4-proxy"), "--version"], capture_output=True, check=True)
            version_runs.append(time.perf_counter() - t)
        idle_rss = []
        for _ in range(STARTS):
            proxy = Proxy(direct_url, env)
            time.sleep(0.05)
            idle_rss.append(rss_kib(proxy.proc.pid))
            _, _ = proxy.call(ping)
            first_answer.append(proxy.lines.qsize() or 0)
            first_answer[-1] = time.perf_counter() - proxy.started
            proxy.close()
        results["start_version_ms"] = statistics.median(version_runs) * 1000
        results["start_first_answer_ms"] = statistics.median(first_answer) * 1000
        results["idle_rss_mib"] = statistics.median(idle_rss) / 1024

        # Latency: direct unsigned vs through the proxy (to serve, and through the stand-in).
        with httpx.Client() as client:
            for _ in range(20):
                client.post(direct_url, json=ping, headers=headers)
            direct = []
            for _ in range(PINGS):
                t = time.perf_counter()
                client.post(direct_url, json=ping, headers=headers)
                direct.append(time.perf_counter() - t)
        via = {}
        peak = {}
        for name, endpoint in [("proxy → serve", direct_url), ("proxy → SigV4 stand-in → serve", standin_url)]:
            proxy = Proxy(endpoint, env)
            for _ in range(20):
                proxy.call(ping)
            samples = [proxy.call(ping)[0] for _ in range(PINGS)]
            via[name] = samples
            if name == "proxy → serve":
                read = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                        "params": {"name": "file", "arguments": {"action": "read", "path": "big.txt"}}}
                with httpx.Client(timeout=60) as client:
                    t = time.perf_counter()
                    body = client.post(direct_url, json=read, headers=headers).content
                    results["big_direct_s"] = time.perf_counter() - t
                big_times = []
                for _ in range(3 if QUICK else 5):
                    elapsed, line_out = proxy.call(read)
                    big_times.append(elapsed)
                assert json.loads(line_out)["result"]["structuredContent"]["byte_range"][1] == size
                results["big_proxy_s"] = statistics.median(big_times)
                results["big_bytes"] = len(body)
                peak[name] = rss_kib(proxy.proc.pid, "VmHWM") / 1024
            proxy.close()
        results["peak_rss_mib"] = peak["proxy → serve"]
        results["latency"] = {"direct (unsigned HTTP)": direct, **via}
    finally:
        for proc in (standin, server):
            proc.terminate()
            proc.wait(timeout=10)
    write_report(results)


def write_report(r: dict) -> None:
    lat = r["latency"]
    direct = lat["direct (unsigned HTTP)"]
    p = lambda values, q: percentile(values, q) * 1000  # noqa: E731
    rows = []
    for name, values in lat.items():
        added50 = "" if name.startswith("direct") else f"{p(values, 50) - p(direct, 50):+.3f}"
        added99 = "" if name.startswith("direct") else f"{p(values, 99) - p(direct, 99):+.3f}"
        rows.append(f"| {name} | {p(values, 50):.3f} | {p(values, 99):.3f} | {added50} | {added99} |")
    added_p50 = p(lat["proxy → serve"], 50) - p(direct, 50)

    def verdict(ok: bool) -> str:
        return "met" if ok else "**missed**"

    version = subprocess.run([binary("mcp-sigv4-proxy"), "--version"], capture_output=True, text=True).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("model name")), "?")
    report = f"""# mcp-sigv4-proxy benchmark

Generated by `benches/proxy.py` ({'quick mode' if QUICK else 'full run'}) on {datetime.date.today().isoformat()};
{version}, `{PROFILE}` build; {platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}); Python {platform.python_version()}.
Everything runs on loopback; the stand-in verifies SigV4 with scratchstack-aws-signature.

## Summary against the targets

| measure | result | target | |
| --- | --- | --- | --- |
| start-up (exec → exit, `--version`, median of {STARTS}) | {r['start_version_ms']:.2f} ms | ≤ 10 ms | {verdict(r['start_version_ms'] <= 10)} |
| exec → first answered ping (credentials, signing, connect) | {r['start_first_answer_ms']:.2f} ms | — | |
| idle RSS | {r['idle_rss_mib']:.1f} MiB | ≤ 10 MB | {verdict(r['idle_rss_mib'] * 1.048576 <= 10)} |
| peak RSS (after {r['big_bytes'] / 1e6:.1f} MB results) | {r['peak_rss_mib']:.1f} MiB | ≤ 10 MB | {verdict(r['peak_rss_mib'] * 1.048576 <= 10)} |
| added latency p50 over a direct unsigned call | {added_p50:.3f} ms | ≤ 1 ms | {verdict(added_p50 <= 1)} |
| {BIG_MB} MB file through the proxy (direct: {r['big_direct_s'] * 1000:.1f} ms) | {r['big_proxy_s'] * 1000:.1f} ms | ≤ 100 ms | {verdict(r['big_proxy_s'] <= 0.1)} |

## Ping latency ({PINGS} sequential requests each, ms)

| path | p50 | p99 | added p50 | added p99 |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

"proxy → serve" isolates the proxy (stdin/stdout, signing, HTTP); "proxy → SigV4 stand-in → serve"
adds a verifying gateway hop, as API Gateway does in production.
"""
    out = ROOT / "benches" / "results" / ("proxy-quick.md" if QUICK else "proxy.md")
    out.write_text(report)
    print(report)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
