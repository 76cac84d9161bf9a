"""What every benchmark script shares: where the builds and results are, and small process helpers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-lambda-gateway/target"))
PROFILE = os.environ.get("BENCH_PROFILE", "release")
# mcp-sigv4-proxy ships from its own size-optimised profile (see Cargo.toml); debug runs use debug.
PROXY_PROFILE = "proxy" if PROFILE == "release" else PROFILE
QUICK = os.environ.get("BENCH_QUICK") == "1"
OUT = Path(os.environ.get("BENCH_OUT", ROOT / "benches" / "results"))


def binary(name: str) -> str:
    """The path of a built binary of the chosen profile; exits saying how to build it if missing.
    `mcp-gateway-federation` is the federation-only gateway (no `data` feature): its own release
    profile, or in debug runs the copy `make federation-debug` puts beside the full binary."""
    if name == "mcp-gateway-federation":
        path = TARGET / "federation" / "mcp-gateway" if PROFILE == "release" else TARGET / PROFILE / name
        how = "make federation" if PROFILE == "release" else "make federation-debug"
    else:
        profile = PROXY_PROFILE if name == "mcp-sigv4-proxy" else PROFILE
        path = TARGET / profile / name
        how = f"cargo build --profile {profile} -p {name}"
    if not path.exists():
        sys.exit(f"{path} is missing: build it with `{how}` (make bench does)")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Ends a process: SIGTERM, then SIGKILL if it is still running after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(ready: Callable[[], bool], proc: subprocess.Popen, what: str, timeout: float = 60,
               interval: float = 0.02) -> None:
    """Polls `ready()` (an HTTP error counts as not ready yet) until it is true. Exits, with the
    process's stderr when it is piped, if the process ends first or `timeout` seconds pass."""
    import httpx  # here, so scripts can report a missing httpx themselves

    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except httpx.HTTPError:
            pass
        ended = proc.poll() is not None
        if ended or time.monotonic() > deadline:
            stop(proc)
            stderr = proc.stderr.read()[-3000:] if proc.stderr else ""
            reason = f"exited with {proc.returncode}" if ended else f"was not ready within {timeout:g} s"
            sys.exit(f"{what} {reason}\n{stderr.decode() if isinstance(stderr, bytes) else stderr}".rstrip())
        time.sleep(interval)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def mcp_compare(target: str, url: str, protocol: str, requests: int, concurrency: int, out: Path, *operation: str) -> dict:
    """`mcp-compare`, the one load generator: `requests` requests (`operation`, its flags) at
    `concurrency` against `url` after a warm-up; its summary (written to `out` too). Exits if it
    fails or if any request failed: a benchmark of failures is worthless."""
    import json

    command = [binary("mcp-compare"), "--target", f"{target}={url}", "-n", str(requests), "-c", str(concurrency),
               "--warmup", str(max(20, concurrency * 2)), "--protocol", protocol, "--quiet", "--json", str(out),
               "--cost", f"{target}=none", *operation]
    run = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if run.returncode != 0:
        sys.exit(f"mcp-compare failed on {target} ({' '.join(operation)}):\n{run.stderr}")
    summary = json.loads(out.read_text())["targets"][0]["summary"]
    if summary["ok"] != summary["count"]:
        sys.exit(f"{target} {' '.join(operation)} c={concurrency}: {summary['errors']}: a benchmark of failures is worthless")
    return summary


WRK = ROOT / ".tools" / "wrk" / "wrk"


def wrk(url: str, body: dict, headers: dict[str, str], expect: str, concurrency: int, seconds: int) -> dict:
    """wrk, the HTTP load generator: the one POST `body` at `concurrency` connections for `seconds`
    on one thread (the server gets the other core), after a one-second warm-up. Every answer
    must be a 200 holding `expect`; exits otherwise, since a benchmark of failures is worthless.
    Returns requests, requests_per_second and latency_us (mean, p50, p90, p99, max)."""
    import json

    if not WRK.exists():
        sys.exit(f"{WRK} is missing: run `bash benches/peers/install.sh` (make bench-tools does)")
    env = {**os.environ, "WRK_BODY": json.dumps(body), "WRK_EXPECT": expect,
           "WRK_HEADERS": "\n".join(f"{name}: {value}" for name, value in headers.items())}
    script = ROOT / "benches" / "wrk_mcp.lua"
    summary = {}
    # wrk takes whole seconds; quick runs (make test) skip the warm-up.
    for duration in (seconds,) if QUICK else (1, seconds):
        command = [str(WRK), "-t1", f"-c{concurrency}", f"-d{duration}s", "--timeout", "10s", "-s", str(script), url]
        run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=duration + 60)
        lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
        if run.returncode != 0 or not lines:
            sys.exit(f"wrk failed on {url}:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
        summary = json.loads(lines[-1])
        if summary["bad"] or summary["socket_errors"] or not summary["requests"]:
            sys.exit(f"{url} c={concurrency}: {summary['bad']} bad answers (first: {summary['first_bad']}), "
                     f"{summary['socket_errors']} socket errors of {summary['requests']}: a benchmark of failures is worthless")
    summary["requests_per_second"] = summary["requests"] / summary["seconds"]
    return summary


def row(section, measure, unit, ours, peer=None, peer_value=None, better="lower", goal=None, goal_met=None, note="") -> dict:
    """One row of a result file (format: benches/README.md)."""
    return {"section": section, "measure": measure, "unit": unit, "ours": ours, "peer": peer, "peer_value": peer_value,
            "better": better, "goal": goal, "goal_met": goal_met, "note": note}


def cargo_bench(name: str) -> list[dict]:
    """Runs the in-process Rust bench `name` of mcp-gateway (cargo bench, release settings; dev when
    BENCH_PROFILE=debug; ITERATIONS 5000, 300 when quick) and returns its JSON lines."""
    import json

    profile = ["--profile", "dev" if PROFILE == "debug" else "release"]
    # The target dir the other binaries come from, also when a script is run by hand.
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET), "ITERATIONS": "300" if QUICK else "5000"}
    run = subprocess.run(["cargo", "bench", "-q", "-p", "mcp-gateway", "--bench", name, *profile],
                         cwd=ROOT, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"cargo bench --bench {name} failed:\n{run.stderr[-3000:]}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def write_result(bench: str, began: float, versions: dict[str, str], rows: list[dict], **extra) -> Path:
    """Writes $BENCH_OUT/<bench>.json (format: benches/README.md) and prints its rows."""
    import json

    result = {"bench": bench, "quick": QUICK, "profile": PROFILE, "seconds": time.perf_counter() - began,
              "versions": versions, "rows": rows, **extra}
    path = OUT / f"{bench}.json"
    path.write_text(json.dumps(result, indent=2))
    for r in rows:
        theirs = f" | {r['peer']}: {r['peer_value']:.3g}" if r["peer_value"] is not None else ""
        print(f"{r['section']}: {r['measure']}: {r['ours']:.3g} {r['unit']}{theirs}")
    print(f"{bench}.py: done in {result['seconds']:.0f} s; wrote {path}", file=sys.stderr, flush=True)
    return path
