"""One upstream name, several instances: load balancing, the circuit breaker and retries, end to
end. A fleet of real upstream processes on 127.0.0.1 (upstreams/py_instance_server.py: the Python
SDK speaking 2026-07-28, each answer naming the instance): `a` fast, `b` slow, `c` in between
behind fault_proxy.py, which the tests make fail (flap) and which counts the calls that reach `c`.

Distributions are measured over 1,000+ calls against what each strategy promises; the breaker's
open → half-open → closed cycle by the exact number of calls that reached the failing instance."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys

import httpx
import pytest

from conftest import ROOT, Server, free_port
from test_federation import UPSTREAMS, gateway_over, sse_or_json, wait_http

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
           "MCP-Protocol-Version": "2026-07-28"}
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}

# Instance id → (weight, delay in ms).
FLEET = {"a": (5, 0), "b": (3, 30), "c": (2, 8)}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    """The three instances (`c` behind a fault proxy); yields their URLs and the proxy's."""
    tmp = tmp_path_factory.mktemp("fleet")
    logs = open(tmp / "fleet.log", "w")
    procs, urls = [], {}
    for instance, (_, delay) in FLEET.items():
        port = free_port()
        proc = subprocess.Popen([sys.executable, str(UPSTREAMS / "py_instance_server.py"), "--id", instance,
                                 "--port", str(port), "--delay-ms", str(delay)], stdout=logs, stderr=logs)
        procs.append(proc)
        urls[instance] = f"http://127.0.0.1:{port}/mcp"
        wait_http(urls[instance], proc, f"instance {instance}")
    proxy_port = free_port()
    proxy = subprocess.Popen([sys.executable, str(ROOT / "tests/e2e/fault_proxy.py"), urls["c"], "--port", str(proxy_port)],
                             stdout=logs, stderr=logs)
    procs.append(proxy)
    urls["c"] = f"http://127.0.0.1:{proxy_port}/mcp"
    wait_http(urls["c"], proxy, "the fault proxy")
    yield urls, f"http://127.0.0.1:{proxy_port}", tmp
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # uvicorn waits for the proxy's idle connections
            proc.kill()
            proc.wait(timeout=5)
    logs.close()


def upstream_file(urls: dict, top: list[str], health: list[str] | None = None, instances=("a", "b", "c"), name="fleet") -> str:
    """An upstreams file with one upstream `name` over `instances` (weights from FLEET): `top` are
    lines of the upstream's table, `health` of its `[upstream.health]` table."""
    text = f'[defaults]\ncatalogue_ttl = "1h"\ntimeout = "10s"\n\n[[upstream]]\nname = "{name}"\ntransport = "http"\n'
    text += "".join(f"{line}\n" for line in top)
    if health:
        text += "[upstream.health]\n" + "".join(f"{line}\n" for line in health)
    for instance in instances:
        text += f'[[upstream.instance]]\nid = "{instance}"\nurl = "{urls[instance]}"\nweight = {FLEET[instance][0]}\n'
    return text


async def call(client: httpx.AsyncClient, url: str, tool: str, arguments: dict | None = None) -> tuple[bool, str]:
    """One tools/call through the gateway: (isError, its first text)."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments or {}, "_meta": META}}
    answer = await client.post(url, json=body, headers={**HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": tool}, timeout=30)
    assert answer.status_code == 200, answer.text
    if answer.headers.get("content-type", "").startswith("text/event-stream"):
        events = [line[5:].strip() for line in answer.text.splitlines() if line.startswith("data:")]
        message = json.loads(events[-1])
    else:
        message = answer.json()
    assert "result" in message, message
    result = message["result"]
    return bool(result.get("isError")), result["content"][0]["text"]


async def spread(url: str, calls: int, concurrency: int = 1, tool: str = "fleet__whoami",
                 arguments: dict | None = None) -> collections.Counter:
    """Which instance answered each of `calls` calls, `concurrency` at a time."""
    answered: collections.Counter = collections.Counter()
    left = iter(range(calls))
    async with httpx.AsyncClient() as client:
        async def worker() -> None:
            for _ in left:
                failed, text = await call(client, url, tool, arguments)
                assert not failed, text
                answered[text] += 1
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return answered


def proxy_calls(proxy: str) -> int:
    """The tools/call requests that reached instance `c`."""
    return httpx.get(f"{proxy}/stats", timeout=5).json()["methods"].get("tools/call", 0)


def set_failing(proxy: str, fail: bool) -> None:
    assert httpx.post(f"{proxy}/fault", json={"fail": fail}, timeout=5).status_code == 204


def status_of(url: str) -> dict:
    """The `fleet` upstream's line of gateway_status."""
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "gateway_status", "arguments": {}, "_meta": META}}
    answer = httpx.post(url, json=body, headers={**HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": "gateway_status"}, timeout=30)
    return sse_or_json(answer)["result"]["structuredContent"]["upstreams"][0]


RELOADED = "the upstreams file was reloaded"
NOT_RELOADED = "the upstreams file was not reloaded; the fleet is as it was"


def logged(server: Server, message: str) -> list[dict]:
    """The fields of `server`'s log lines with this message, in order."""
    return [line["fields"] for line in server.log_lines() if line.get("fields", {}).get("message") == message]


async def until(predicate, what: str, detail=lambda: "") -> None:
    """Waits (at most 10 s) until `predicate()` holds; fails saying `what` and `detail()` otherwise."""
    for _ in range(100):
        if predicate():
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{what}: {detail()}")


@pytest.mark.anyio
@pytest.mark.parametrize("strategy", ["round_robin", "weighted", "random"])
async def test_each_strategy_spreads_1000_calls_as_it_promises(fleet, tmp_path, strategy):
    """round_robin: a third each (exact, calls one at a time); weighted 5:3:2: exact over every 10
    calls; random: a third each within ±4.5 points (3.7 standard deviations at 1,500 calls)."""
    urls, _, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, [f'strategy = "{strategy}"']))
    try:
        calls = 1500 if strategy == "random" else 1000
        answered = await spread(server.url, calls)
        shares = {instance: answered[instance] / calls for instance in FLEET}
        if strategy == "round_robin":
            assert max(answered.values()) - min(answered.values()) <= 1, answered
        elif strategy == "weighted":
            assert answered == {"a": 500, "b": 300, "c": 200}, answered
        else:
            assert all(abs(share - 1 / 3) <= 0.045 for share in shares.values()), shares
        instances = {instance["id"]: instance for instance in status_of(server.url)["instances"]}
        assert sum(instance["requests"] for instance in instances.values()) >= calls
        assert all(instance["breaker"] == "closed" and instance["errors"] == 0 for instance in instances.values()), instances
    finally:
        server.stop()


@pytest.mark.anyio
async def test_least_latency_and_least_connections_send_less_to_the_slow_instance(fleet, tmp_path):
    """`a` answers at once, `b` in 30 ms, `c` in 8 ms behind the (slow) fault proxy:
    least_latency (two random choices, the faster wins; an idle instance's latency is forgotten
    over seconds, so the slow ones still get probed) gives the fastest at least half of the calls
    and the slowest at most a quarter; least_connections, 6 calls at a time, gives `b` fewer than `a`."""
    urls, _, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, ['strategy = "least_latency"']))
    try:
        answered = await spread(server.url, 1000, concurrency=2)
        # Ordered by the latency the gateway measured (`c` pays for the fault proxy's new
        # connection per request, which makes it the slowest): shares in the reverse order.
        p50 = {instance["id"]: instance["p50_ms"] for instance in status_of(server.url)["instances"]}
        fastest, middle, slowest = sorted(FLEET, key=lambda instance: p50[instance])
        assert answered[fastest] > answered[middle] > answered[slowest], (answered, p50)
        assert answered[fastest] >= 500 and answered[slowest] <= 250, (answered, p50)
    finally:
        server.stop()
    server = gateway_over(tmp_path, upstream_file(urls, ['strategy = "least_connections"']))
    try:
        answered = await spread(server.url, 1000, concurrency=6)
        assert answered["a"] > answered["b"], answered
    finally:
        server.stop()


@pytest.mark.anyio
async def test_hash_on_the_client_address_keeps_each_client_on_one_instance(fleet, tmp_path):
    """30 clients (source addresses 127.0.0.10 … 39), 40 calls each: every client's calls reach
    one instance, and the clients are spread over all three."""
    urls, _, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, ['strategy = "hash"', 'hash_key = "client_ip"']))
    try:
        placed: dict[str, set[str]] = {}
        for n in range(10, 40):
            address = f"127.0.0.{n}"
            transport = httpx.AsyncHTTPTransport(local_address=address)
            async with httpx.AsyncClient(transport=transport) as client:
                placed[address] = {(await call(client, server.url, "fleet__whoami"))[1] for _ in range(40)}
        assert all(len(instances) == 1 for instances in placed.values()), placed
        used = collections.Counter(next(iter(instances)) for instances in placed.values())
        assert set(used) == set(FLEET), used
    finally:
        server.stop()


@pytest.mark.anyio
async def test_the_breaker_opens_lets_one_probe_through_after_the_cool_down_and_closes(fleet, tmp_path):
    """`c` fails every request (503s): after 3 failed calls its breaker opens and no call reaches
    it; after the 2 s cool-down exactly one probe does (it fails: open again); once `c` is well,
    one probe at a time and 2 successes close it. Each count is of calls `c` itself saw."""
    urls, proxy, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, ['strategy = "round_robin"'],
                                                  ["failures = 3", 'cooldown = "2s"', "successes = 2", "min_calls = 1000"],
                                                  instances=("a", "c")))
    await spread(server.url, 2)  # the catalogue is filled while `c` is well
    set_failing(proxy, True)
    try:
        before = proxy_calls(proxy)
        async with httpx.AsyncClient() as client:
            outcomes = [await call(client, server.url, "fleet__work") for _ in range(20)]
            assert proxy_calls(proxy) - before == 3, "calls that reached c before its breaker opened"
            failed = [text for failed, text in outcomes if failed]
            assert len(failed) == 3 and all("fleet/c" in text for text in failed), failed
            line = status_of(server.url)
            c = next(instance for instance in line["instances"] if instance["id"] == "c")
            assert c["breaker"] == "open" and c["breaker_opened"] == 1 and c["errors"] == 3, c

            await asyncio.sleep(2.2)
            before = proxy_calls(proxy)
            outcomes = [await call(client, server.url, "fleet__work") for _ in range(10)]
            assert proxy_calls(proxy) - before == 1, "one probe, which fails: open again"
            assert sum(failed for failed, _ in outcomes) == 1, outcomes

            set_failing(proxy, False)
            await asyncio.sleep(2.2)
            answered = collections.Counter([(await call(client, server.url, "fleet__work"))[1] for _ in range(20)])
            assert answered["c"] >= 5 and answered["a"] >= 5, answered
        c = next(instance for instance in status_of(server.url)["instances"] if instance["id"] == "c")
        assert c["breaker"] == "closed" and c["breaker_opened"] == 2, c
        transitions = logged(server, "circuit breaker")
        assert [(t["from"], t["to"]) for t in transitions] == [
            ("closed", "open"), ("open", "half_open"), ("half_open", "open"), ("open", "half_open"), ("half_open", "closed"),
        ], transitions
    finally:
        set_failing(proxy, False)
        server.stop()


@pytest.mark.anyio
async def test_only_calls_that_cannot_have_had_an_effect_are_retried_on_another_instance(fleet, tmp_path):
    """With `c` failing: `whoami` (in retry_tools) never fails, its failed attempt retried on `a`;
    `work` (not in it) fails whenever it lands on `c`, and is sent to `c` once, never twice."""
    urls, proxy, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, ['retry_tools = ["who*"]'], ["failures = 1000", "min_calls = 1000"],
                                                  instances=("a", "c")))
    await spread(server.url, 2)  # the catalogue is filled while `c` is well
    set_failing(proxy, True)
    try:
        async with httpx.AsyncClient() as client:
            before = httpx.get(f"{proxy}/stats", timeout=5).json()["tools"]
            safe = [await call(client, server.url, "fleet__whoami") for _ in range(10)]
            unsafe = [await call(client, server.url, "fleet__work") for _ in range(10)]
        after = httpx.get(f"{proxy}/stats", timeout=5).json()["tools"]
        assert safe == [(False, "a")] * 10, safe
        assert after.get("whoami", 0) - before.get("whoami", 0) == 5, "every other whoami tried c first"
        assert sum(failed for failed, _ in unsafe) == 5, unsafe
        assert after.get("work", 0) - before.get("work", 0) == 5, "each failed work reached c once"
        assert sum('"retrying on another instance"' in line for line in server.log_path.read_text().splitlines()) >= 5
    finally:
        set_failing(proxy, False)
        server.stop()


@pytest.mark.anyio
async def test_an_upstream_with_no_healthy_instance_says_so_and_names_it(fleet, tmp_path):
    urls, proxy, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, [], ["failures = 2"], instances=("c",), name="solo"))
    await spread(server.url, 1, tool="solo__whoami")  # the catalogue is filled while `c` is well
    set_failing(proxy, True)
    try:
        async with httpx.AsyncClient() as client:
            before = proxy_calls(proxy)
            first = [await call(client, server.url, "solo__whoami") for _ in range(2)]
            third = await call(client, server.url, "solo__whoami")
        assert all(failed for failed, _ in first), first
        assert third[0] and "upstream `solo` has no healthy instance: `c` open (tried again in" in third[1], third
        assert proxy_calls(proxy) - before == 2
    finally:
        set_failing(proxy, False)
        server.stop()


def test_hash_on_the_principal_keeps_each_iam_caller_on_one_instance_on_lambda(fleet, tmp_path):
    """On Lambda the key is the IAM caller API Gateway names (`requestContext.identity.userArn`):
    20 callers from one source address, 10 calls each through the real Lambda runtime loop; every
    caller's calls reach one instance, and the callers are spread over more than one."""
    from lambda_runtime import LambdaFunction
    from conftest import DATA, gateway_bin
    urls, _, _ = fleet
    config = tmp_path / "upstreams.toml"
    config.write_text(upstream_file(urls, ['strategy = "hash"']))
    template = json.loads((ROOT / "events" / "rest-v1" / "tools-call-file.json").read_text())
    function = LambdaFunction(gateway_bin(), tmp_path, str(DATA), MCP_UPSTREAMS=str(config))
    try:
        placed: dict[str, set[str]] = collections.defaultdict(set)
        for n in range(20):
            arn = f"arn:aws:iam::123456789012:user/caller-{n}"
            for _ in range(10):
                event = json.loads(json.dumps(template))
                event["requestContext"]["identity"]["userArn"] = arn
                for headers in (event["headers"], event["multiValueHeaders"]):
                    headers["mcp-name"] = ["fleet__whoami"] if isinstance(headers["mcp-name"], list) else "fleet__whoami"
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                        "params": {"name": "fleet__whoami", "arguments": {}, "_meta": META}}
                event["body"] = json.dumps(body)
                kind, answer = function.invoke(event)
                assert kind == "response", (kind, answer)
                result = json.loads(answer["body"])["result"]
                assert not result.get("isError"), result
                placed[arn].add(result["content"][0]["text"])
        assert all(len(instances) == 1 for instances in placed.values()), placed
        assert len({next(iter(instances)) for instances in placed.values()}) >= 2, placed

        # The management API on Lambda: the numbers of this function instance; no changes.
        def management_event(method: str, path: str, body: dict | None) -> dict:
            event = json.loads(json.dumps(template))
            event.update(path=path, resource=path, httpMethod=method, body=json.dumps(body) if body else None)
            event["requestContext"].update(path=f"/prod{path}", resourcePath=path, httpMethod=method)
            return event

        kind, answer = function.invoke(management_event("GET", "/gateway/stats", None))
        assert kind == "response" and answer["statusCode"] == 200, answer
        stats = json.loads(answer["body"])["upstreams"][0]
        assert stats["strategy"] == "hash" and stats["requests"] >= 200, stats
        kind, answer = function.invoke(management_event("POST", "/gateway/register", {"upstream": "fleet", "id": "d", "url": urls["a"]}))
        assert answer["statusCode"] == 403 and "configure instances in the upstreams file" in answer["body"], answer
    finally:
        function.stop()


TOKEN = "fleet-admin-token-0123456789"


def manage(server, method: str, path: str, token: str | None = TOKEN, body: dict | None = None) -> httpx.Response:
    """A management API request to `serve`."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.request(method, f"http://127.0.0.1:{server.port}{path}", json=body, headers=headers, timeout=30)


@pytest.mark.anyio
async def test_instances_are_registered_and_deregistered_at_run_time_only_with_the_admin_token(fleet, tmp_path):
    urls, _, _ = fleet
    server = gateway_over(tmp_path, upstream_file(urls, [], instances=("a",)), env={"MCP_ADMIN_TOKEN": TOKEN})
    locked = gateway_over(tmp_path, upstream_file(urls, [], instances=("a",)))
    try:
        b = {"upstream": "fleet", "id": "b", "url": urls["b"], "weight": 1, "metadata": {"zone": "z2"}}
        refused = [manage(server, "POST", "/gateway/register", None, b), manage(server, "POST", "/gateway/register", "wrong-token-0123456789", b),
                   manage(server, "DELETE", "/gateway/deregister/fleet/a", "x")]
        assert [answer.status_code for answer in refused] == [401, 401, 401], [answer.text for answer in refused]
        off = manage(locked, "POST", "/gateway/register", TOKEN, b)
        assert off.status_code == 403 and "MCP_ADMIN_TOKEN" in off.json()["error"], off.text
        assert (await spread(server.url, 20)) == {"a": 20}, "nothing changed"

        added = manage(server, "POST", "/gateway/register", body=b)
        assert added.status_code == 200 and added.json()["fleet"]["upstreams"] == 1, added.text
        assert (await spread(server.url, 300)) == {"a": 150, "b": 150}
        registry = manage(server, "GET", "/gateway/registry", None).json()["upstreams"][0]
        assert [(i["id"], i["address"], i.get("metadata")) for i in registry["instances"]] == [
            ("a", urls["a"], None), ("b", urls["b"], {"zone": "z2"})], registry
        assert registry["tools"] == {"fleet__whoami": "whoami", "fleet__work": "work"}, registry
        stats = manage(server, "GET", "/gateway/stats", None).json()["upstreams"][0]
        assert stats["requests"] >= 320 and {i["id"]: i["requests"] for i in stats["instances"]}["b"] >= 150, stats
        assert manage(server, "GET", "/gateway/health", None).json() == {
            "status": "ok", "upstreams": [{"name": "fleet", "state": "up", "healthy_instances": 2, "instances": 2}]}

        bad = manage(server, "POST", "/gateway/register", body={**b, "id": "c", "url": "ftp://x"})
        assert bad.status_code == 422 and "http:// or https://" in bad.json()["error"], bad.text
        twice = manage(server, "POST", "/gateway/register", body=b)
        assert twice.status_code == 422 and "already has an instance `b`" in twice.json()["error"], twice.text
        assert manage(server, "DELETE", "/gateway/deregister/fleet/zz").status_code == 404
        assert manage(server, "POST", "/gateway/register", body={"upstream": "fleet"}).status_code == 400

        removed = manage(server, "DELETE", "/gateway/deregister/fleet/a")
        assert removed.status_code == 200, removed.text
        assert (await spread(server.url, 20)) == {"b": 20}
        extra = manage(server, "POST", "/gateway/register", body={"upstream": "extra", "id": "one", "url": urls["a"]})
        assert extra.status_code == 200 and extra.json()["fleet"] == {"upstreams": 2, "tools": 4, "left_out": {}}, extra.text
        assert (await spread(server.url, 3, tool="extra__whoami")) == {"a": 3}
        assert manage(server, "DELETE", "/gateway/deregister/extra").status_code == 200
        async with httpx.AsyncClient() as client:
            gone = await client.post(server.url, headers={**HEADERS, "Mcp-Method": "tools/call", "Mcp-Name": "extra__whoami"},
                                     json={"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                           "params": {"name": "extra__whoami", "arguments": {}, "_meta": META}})
        assert "unknown tool" in gone.text, gone.text
        changes = logged(server, "fleet changed")
        assert len(changes) == 4, changes
    finally:
        server.stop()
        locked.stop()


@pytest.mark.anyio
async def test_a_reloaded_upstreams_file_replaces_the_fleet_under_load_without_a_failed_call(fleet, tmp_path):
    """Calls run 4 at a time throughout: the file changes from instances a+b to a+c (picked up by
    the file check), then to something that does not parse (refused, logged, the fleet stays),
    then to b alone with SIGHUP. Not one call fails, and each fleet answers."""
    urls, _, _ = fleet
    config = tmp_path / "fleet.toml"
    config.write_text(upstream_file(urls, [], instances=("a", "b")))
    server = Server(tmp_path, "--upstreams", str(config), env={"MCP_UPSTREAMS_RELOAD": "1"})
    answers: list[str] = []
    stop = asyncio.Event()

    async def load() -> None:
        async with httpx.AsyncClient() as client:
            while not stop.is_set():
                failed, text = await call(client, server.url, "fleet__whoami")
                assert not failed, text
                answers.append(text)

    def log_tail() -> str:
        return server.log_path.read_text()[-3000:]

    try:
        workers = [asyncio.create_task(load()) for _ in range(4)]
        await until(lambda: {"a", "b"} <= set(answers), "a and b did not both answer", log_tail)
        config.write_text(upstream_file(urls, [], instances=("a", "c")))
        await until(lambda: len(logged(server, RELOADED)) == 1, "the changed file was not reloaded", log_tail)
        mark = len(answers)
        await until(lambda: "c" in answers[mark:], "c did not answer after the reload", log_tail)
        only_b = upstream_file(urls, [], instances=("b",))
        broken = "[[upstream]\nthis is not TOML\n"
        config.write_text(broken + "#" * (len(only_b) - len(broken) - 1) + "\n")  # as long as only_b
        await until(lambda: len(logged(server, NOT_RELOADED)) == 1, "the bad file was not refused", log_tail)
        mark = len(answers)
        await until(lambda: {"a", "c"} <= set(answers[mark:]), "the old fleet stopped answering", log_tail)
        # Same size and modification time: the file check sees no change, only SIGHUP reloads.
        before = config.stat()
        config.write_text(only_b)
        os.utime(config, ns=(before.st_atime_ns, before.st_mtime_ns))
        await asyncio.sleep(1.5)
        assert len(logged(server, RELOADED)) == 1
        server.proc.send_signal(signal.SIGHUP)
        await until(lambda: len(logged(server, RELOADED)) == 2, "SIGHUP did not reload", log_tail)
        await asyncio.sleep(0.5)
        mark = len(answers)
        await until(lambda: len(answers) - mark >= 40, "calls stopped", log_tail)
        assert set(answers[mark:]) == {"b"}, collections.Counter(answers[mark:])
        stop.set()
        await asyncio.gather(*workers)
        refused = logged(server, NOT_RELOADED)
        assert "line 1" in refused[0]["problem"], refused
        reasons = [fields["reason"] for fields in logged(server, RELOADED)]
        assert reasons == ["the file changed", "SIGHUP"], reasons
        assert len(answers) >= 200, len(answers)
    finally:
        stop.set()
        server.stop()


@pytest.mark.anyio
async def test_active_health_checks_take_a_failing_instance_out_before_any_call_and_back_in(fleet, tmp_path):
    """MCP `ping` every 200 ms on each connection (a 2026-07-28 server answers "method not found",
    which counts): `c` fails → unhealthy after 2 failed checks, found within 1.5 s without a call
    sent; 20 calls then all avoid it; `c` well → healthy after 2 passed checks, and calls reach it."""
    urls, proxy, _ = fleet
    health = ['probe = "mcp"', 'interval = "200ms"', 'probe_timeout = "1s"', "healthy_threshold = 2", "unhealthy_threshold = 2"]
    server = gateway_over(tmp_path, upstream_file(urls, [], health, instances=("a", "c")))
    try:
        await spread(server.url, 2)
        set_failing(proxy, True)
        detected = await probe_turns(server.url, "c", "unhealthy")
        assert detected < 1.5, f"found unhealthy after {detected:.2f} s"
        before = proxy_calls(proxy)
        assert (await spread(server.url, 20)) == {"a": 20}
        assert proxy_calls(proxy) == before, "no call was sent to c"
        checks = logged(server, "health check")
        assert [check["healthy"] for check in checks] == [False] and "503" in checks[0]["reason"], checks
        breaker = next(i for i in status_of(server.url)["instances"] if i["id"] == "c")["breaker"]
        assert breaker == "closed", "checks are not calls: the breaker did not move"
        set_failing(proxy, False)
        await probe_turns(server.url, "c", "healthy")
        assert (await spread(server.url, 20)) == {"a": 10, "c": 10}
    finally:
        set_failing(proxy, False)
        server.stop()


@pytest.mark.anyio
async def test_an_http_health_check_that_fails_leaves_no_healthy_instance_and_the_error_says_why(fleet, tmp_path):
    """`probe = "/health"`: a GET on the instance's host, which must answer 2xx."""
    urls, proxy, _ = fleet
    health = ['probe = "/health"', 'interval = "200ms"', "healthy_threshold = 1", "unhealthy_threshold = 1"]
    server = gateway_over(tmp_path, upstream_file(urls, [], health, instances=("c",)))
    try:
        await spread(server.url, 1)
        set_failing(proxy, True)
        await probe_turns(server.url, "c", "unhealthy")
        async with httpx.AsyncClient() as client:
            failed, text = await call(client, server.url, "fleet__whoami")
        assert failed and "has no healthy instance: `c` failing its health checks" in text, text
        set_failing(proxy, False)
        await probe_turns(server.url, "c", "healthy")
        assert (await spread(server.url, 3)) == {"c": 3}
    finally:
        set_failing(proxy, False)
        server.stop()


async def probe_turns(url: str, instance: str, state: str) -> float:
    """Seconds until gateway_status reports `instance`'s health checks as `state` (at most 5)."""
    started = asyncio.get_running_loop().time()
    for _ in range(100):
        line = next(i for i in status_of(url)["instances"] if i["id"] == instance)
        if line["probe"] == state:
            return asyncio.get_running_loop().time() - started
        await asyncio.sleep(0.05)
    pytest.fail(f"{instance} did not turn {state}: {line}")


@pytest.mark.anyio
async def test_a_listening_client_hears_of_a_reload_that_changes_the_tools_and_only_then(fleet, tmp_path):
    """2026-07-28 `subscriptions/listen` on `serve` (which declares `listChanged`): a reload that
    adds an instance changes no list, so nothing is sent; one that adds an upstream sends
    `notifications/tools/list_changed` on the stream, tagged with the subscription."""
    urls, _, _ = fleet
    config = tmp_path / "fleet.toml"
    config.write_text(upstream_file(urls, [], instances=("a",)))
    server = Server(tmp_path, "--upstreams", str(config), env={"MCP_UPSTREAMS_RELOAD": "1"})
    body = {"jsonrpc": "2.0", "id": 7, "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": True}, "_meta": META}}
    messages: list[dict] = []

    async def listen(answer: httpx.Response) -> None:
        async for line in answer.aiter_lines():
            if line.startswith("data:"):
                messages.append(json.loads(line[5:]))

    try:
        async with httpx.AsyncClient(timeout=60) as client:
            async with client.stream("POST", server.url, json=body, headers={**HEADERS, "Mcp-Method": "subscriptions/listen"}) as answer:
                assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream"), answer.headers
                reader = asyncio.create_task(listen(answer))
                await until(lambda: messages, "no acknowledgment", lambda: str(messages))
                assert messages[0]["method"] == "notifications/subscriptions/acknowledged", messages
                config.write_text(upstream_file(urls, [], instances=("a", "b")))
                await until(lambda: len(logged(server, RELOADED)) == 1, "the first change was not reloaded", lambda: str(messages))
                await asyncio.sleep(0.5)
                assert len(messages) == 1, f"an instance more changes no list: {messages}"
                config.write_text(upstream_file(urls, [], instances=("a", "b")) + "\n"
                                  + upstream_file(urls, [], instances=("c",), name="more").split("\n\n", 1)[1])
                await until(lambda: len(messages) == 2, "the new upstream's tools were not announced", lambda: str(messages))
                assert messages[1]["method"] == "notifications/tools/list_changed", messages
                assert messages[1]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == 7, messages
                reader.cancel()
        async with httpx.AsyncClient() as client:
            assert (await call(client, server.url, "more__whoami")) == (False, "c")
    finally:
        server.stop()
