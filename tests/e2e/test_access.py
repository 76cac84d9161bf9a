"""Who may call what (issue 18): `serve` with `[auth]` (API keys, HTTP Basic, JWTs with keys from
a JWKS URL), authorization rules per tool and resource, rate limits, and the same rules on Lambda
with the IAM principal from the event. Real MCP clients (the Python SDK) and plain HTTP."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from conftest import DATA, ROOT, MotoSts, Server, free_port, gateway_bin

ISSUER = "https://issuer.test/"
AUDIENCE = "mcp-gateway"
CI_KEY = "ci-key-0123456789abcdef"
INTERN_KEY = "intern-key-0123456789abcdef"
PASSWORD = "correct horse battery staple"
META = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
HEADERS = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"}


def cli(*args: str, stdin: str = "") -> str:
    done = subprocess.run([gateway_bin(), *args], input=stdin, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


class Issuer:
    """An OAuth issuer's JWKS endpoint on 127.0.0.1: RSA keys it can rotate, and a count of fetches."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                issuer.fetches += 1
                body = json.dumps(issuer.jwks()).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/jwks.json"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()
        self.add_key("k1")

    def add_key(self, kid: str) -> None:
        self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict:
        keys = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            keys.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def token(self, sub: str = "alice@example.com", kid: str = "k1", key: rsa.RSAPrivateKey | None = None,
              **claims) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": sub, "iat": now, "exp": now + 300, **claims}
        body = {name: value for name, value in body.items() if value is not None}
        return jwt.encode(body, key or self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def close(self) -> None:
        self.http.shutdown()


def access_file(tmp: Path, issuer: Issuer, extra: str = "") -> Path:
    password_hash = cli("access", "hash-password", stdin=PASSWORD + "\n")
    path = tmp / "access.toml"
    path.write_text(f"""
[auth]
[[auth.api_key]]
name = "ci"
sha256 = "{cli("access", "hash-key", stdin=CI_KEY)}"
[[auth.api_key]]
name = "intern"
sha256 = "{cli("access", "hash-key", stdin=INTERN_KEY)}"
[[auth.basic]]
user = "alice"
password_hash = "{password_hash}"
[auth.jwt]
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
jwks_url = "{issuer.url}"
scopes = ["mcp:tools"]

[authorization]
default = "allow"
[[authorization.rule]]
effect = "deny"
principals = ["key:intern"]
tools = ["file_write"]
resources = ["gateway://data/sales/*"]
[[authorization.rule]]
effect = "deny"
claims = {{ groups = "contractors" }}
tools = ["file*"]
[[authorization.rule]]
effect = "deny"
principals = ["user:*"]
prompts = ["explore_data"]
{extra}""")
    return path


@pytest.fixture(scope="module")
def issuer():
    issuer = Issuer()
    yield issuer
    issuer.close()


@pytest.fixture(scope="module")
def gateway(issuer, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("access")
    server = Server(tmp, "--access", str(access_file(tmp, issuer)), "--allow-write")
    yield server
    server.stop()


def client(url: str, headers: dict[str, str], mode: str = "2026-07-28") -> Client:
    return Client(streamable_http_client(url, http_client=httpx2.AsyncClient(headers=headers, timeout=30)), mode=mode)


def basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def post(url: str, headers: dict[str, str], method: str = "tools/list", params: dict | None = None) -> httpx.Response:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": {**(params or {}), "_meta": META}}
    extra = {"mcp-method": method, **({"mcp-name": params["name"]} if params and "name" in params else {})}
    return httpx.post(url, json=body, headers={**HEADERS, **extra, **headers}, timeout=30)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["2026-07-28", "legacy"])
async def test_each_kind_of_credential_reaches_the_tools_and_names_its_principal_in_the_log(gateway, issuer, mode):
    credentials = {
        "key:ci": {"x-api-key": CI_KEY},
        "key:ci (bearer)": {"authorization": f"Bearer {CI_KEY}"},
        "user:alice": basic("alice", PASSWORD),
        "alice@example.com": {"authorization": f"Bearer {issuer.token()}"},
    }
    for principal, headers in credentials.items():
        async with client(gateway.url, headers, mode) as session:
            names = {tool.name for tool in (await session.list_tools()).tools}
            assert {"file", "file_write"} <= names, (principal, names)
            read = await session.call_tool("file", {"action": "read", "path": "sales/regions.csv"})
            assert read.is_error is False, (principal, read.content)
    calls = [fields for fields in gateway.request_logs() if fields.get("tool") == "file"]
    seen = {(fields.get("principal"), fields.get("auth")) for fields in calls}
    assert {("key:ci", "api_key"), ("user:alice", "basic"), ("alice@example.com", "jwt")} <= seen, seen


def test_missing_and_bad_credentials_get_401_with_the_challenge_that_says_why(gateway, issuer):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    cases = {
        "missing": ({}, "this gateway needs credentials"),
        "unknown API key": ({"x-api-key": "not-a-key-0123456789"}, "unknown API key"),
        "wrong password": (basic("alice", PASSWORD + "!"), "wrong user name or password"),
        "unknown user": (basic("mallory", PASSWORD), "wrong user name or password"),
        "expired": ({"authorization": f"Bearer {issuer.token(exp=now - 3600, iat=now - 7200)}"}, "expired"),
        "wrong audience": ({"authorization": f"Bearer {issuer.token(aud='another-service')}"}, "another audience"),
        "wrong issuer": ({"authorization": f"Bearer {issuer.token(iss='https://evil.test/')}"}, "does not trust"),
        "wrong signature": ({"authorization": f"Bearer {issuer.token(key=other_key)}"}, "signature does not verify"),
        "no audience": ({"authorization": f"Bearer {issuer.token(aud=None)}"}, "no `aud` claim"),
        "unsigned": ({"authorization": "Bearer " + jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x",
                                                               "exp": now + 60}, None, algorithm="none")},
                     "not a JWT"),
        "shared secret": ({"authorization": "Bearer " + jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "sub": "x",
                                                                    "exp": now + 60}, "secret" * 8, algorithm="HS256",
                                                                   headers={"kid": "k1"})},
                          "tokens signed with HS256 are not accepted"),
    }
    for name, (headers, why) in cases.items():
        response = post(gateway.url, headers)
        assert response.status_code == 401, (name, response.status_code, response.text)
        error = response.json()["error"]
        assert error["code"] == -32600 and why in error["message"], (name, error)
        challenges = response.headers.get_list("www-authenticate")
        port = gateway.port
        bearer = next(challenge for challenge in challenges if challenge.startswith("Bearer "))
        assert f'resource_metadata="http://127.0.0.1:{port}/.well-known/oauth-protected-resource"' in bearer
        if headers.get("authorization", "").startswith("Bearer "):
            assert 'error="invalid_token"' in bearer and "error_description=" in bearer, (name, bearer)
        assert any(challenge.startswith("Basic realm=") for challenge in challenges), challenges

    # The management API and the REST routes are behind the same door; health and metadata are not.
    base = f"http://127.0.0.1:{gateway.port}"
    assert httpx.get(f"{base}/openapi.json").status_code == 401
    assert httpx.get(f"{base}/openapi.json", headers={"x-api-key": CI_KEY}).status_code == 200
    assert httpx.get(f"{base}/health").status_code == 200
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"]:
        metadata = httpx.get(base + path).json()
        assert metadata["resource"] == f"{base}/mcp" and metadata["authorization_servers"] == [ISSUER], metadata
        assert metadata["bearer_methods_supported"] == ["header"] and metadata["scopes_supported"] == ["mcp:tools"]

    refused = [fields for fields in gateway.request_logs() if fields.get("status") == 401]
    assert len(refused) >= len(cases) and all(fields.get("reason") for fields in refused)


@pytest.mark.anyio
async def test_rules_hide_denied_tools_and_refuse_calls_to_them_per_principal_and_claim(gateway, issuer):
    async with client(gateway.url, {"x-api-key": INTERN_KEY}) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert "file" in names and "file_write" not in names, names
        with pytest.raises(Exception) as refused:
            await session.call_tool("file_write", {"action": "delete", "path": "nothing.txt"})
        assert "tool `file_write` is not allowed for `key:intern`: denied by rule 1" in str(refused.value)
        resources = {resource.uri for resource in (await session.list_resources()).resources}
        assert resources and not any(uri.startswith("gateway://data/sales/") for uri in resources), resources
        with pytest.raises(Exception) as refused:
            await session.read_resource("gateway://data/sales/regions.csv")
        assert "is not allowed for `key:intern`" in str(refused.value)
    async with client(gateway.url, {"x-api-key": CI_KEY}) as session:
        resources = {resource.uri for resource in (await session.list_resources()).resources}
        assert any(uri.startswith("gateway://data/sales/") for uri in resources), resources

    contractor = issuer.token(sub="carol@example.com", groups=["staff", "contractors"])
    async with client(gateway.url, {"authorization": f"Bearer {contractor}"}) as session:
        names = {tool.name for tool in (await session.list_tools()).tools}
        assert not {"file", "file_write"} & names and names, names
        with pytest.raises(Exception) as refused:
            await session.call_tool("file", {"action": "list", "path": ""})
        assert "`carol@example.com`: denied by rule 2" in str(refused.value)
    async with client(gateway.url, basic("alice", PASSWORD)) as session:
        assert "explore_data" not in {prompt.name for prompt in (await session.list_prompts()).prompts}
        with pytest.raises(Exception) as refused:
            await session.get_prompt("explore_data", {"focus": "sales"})
        assert "prompt `explore_data` is not allowed for `user:alice`: denied by rule 3" in str(refused.value)
    async with client(gateway.url, {"x-api-key": CI_KEY}) as session:
        assert "explore_data" in {prompt.name for prompt in (await session.list_prompts()).prompts}

    staff = issuer.token(sub="dave@example.com", groups=["staff"])
    async with client(gateway.url, {"authorization": f"Bearer {staff}"}) as session:
        assert (await session.call_tool("file", {"action": "list", "path": ""})).is_error is False


def test_rate_limits_answer_429_with_retry_after_per_principal_and_tool(issuer, tmp_path):
    limits = """
[[limit]]
name = "file-per-caller"
scope = "principal"
tools = ["file"]
rate = 3
per = "1h"
[[limit]]
name = "everything"
scope = "global"
rate = 12
per = "1h"
"""
    server = Server(tmp_path, "--access", str(access_file(tmp_path, issuer, limits)))
    try:
        call = {"name": "file", "arguments": {"action": "list", "path": ""}}
        for _ in range(3):
            assert post(server.url, {"x-api-key": CI_KEY}, "tools/call", call).status_code == 200
        limited = post(server.url, {"x-api-key": CI_KEY}, "tools/call", call)
        assert limited.status_code == 429, limited.text
        # 3 per hour: the next token comes 20 minutes after the bucket was full.
        assert 1190 <= int(limited.headers["retry-after"]) <= 1200, limited.headers
        error = limited.json()["error"]
        assert error["code"] == -32600 and "rate limit `file-per-caller` exceeded (3 per 3600s)" in error["message"]
        # Another caller has a bucket of its own; other methods do not count against `file`.
        assert post(server.url, {"x-api-key": INTERN_KEY}, "tools/call", call).status_code == 200
        assert post(server.url, {"x-api-key": CI_KEY}).status_code == 200
        # The global limit: 12 requests in all (3 + 1 refused, which took nothing, + 1 + 1 so far).
        answers = [post(server.url, {"x-api-key": INTERN_KEY}).status_code for _ in range(8)]
        assert answers == [200] * 7 + [429], answers
        logged = [fields for fields in server.request_logs() if fields.get("status") == 429]
        assert len(logged) == 2 and {fields["principal"] for fields in logged} == {"key:ci", "key:intern"}
    finally:
        server.stop()


def test_serve_will_not_listen_beyond_loopback_without_auth(tmp_path):
    port = free_port()
    done = subprocess.run([gateway_bin(), "--data-root", str(DATA), "serve", "--addr", f"0.0.0.0:{port}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert "not a loopback address, with no authentication" in done.stderr and "--insecure-no-auth" in done.stderr
    server = subprocess.Popen([gateway_bin(), "--data-root", str(DATA), "serve", "--addr", f"0.0.0.0:{port}",
                               "--insecure-no-auth"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            pytest.fail("serve --insecure-no-auth did not start")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_the_access_file_is_checked_whole_and_mistakes_name_their_line(tmp_path, issuer):
    good = access_file(tmp_path, issuer)
    assert "auth: 2 API keys, 1 users, JWT from https://issuer.test/" in cli("--access", str(good), "access", "check")
    bad = tmp_path / "bad.toml"
    bad.write_text('[[limit]]\nscope = "principal"\nrate = 0\n')
    for args in (["access", "check"], ["serve"]):
        done = subprocess.run([gateway_bin(), "--access", str(bad), *args], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2 and f"{bad} line 3: `rate` must be 1 to" in done.stderr, done


def test_rules_apply_to_the_iam_principal_on_lambda(tmp_path):
    """On Lambda API Gateway's IAM check authenticates; the rules judge the ARN from the event."""
    from lambda_runtime import LambdaFunction
    access = tmp_path / "access.toml"
    access.write_text("""
[authorization]
[[authorization.rule]]
effect = "deny"
principals = ["arn:aws:iam::123456789012:role/analyst-*"]
tools = ["file"]
""")
    template = json.loads((ROOT / "events" / "rest-v1" / "tools-call-file.json").read_text())
    function = LambdaFunction(gateway_bin(), tmp_path, str(DATA), MCP_ACCESS=str(access))
    try:
        def invoke(arn: str, method: str) -> dict:
            event = json.loads(json.dumps(template))
            event["requestContext"]["identity"]["userArn"] = arn
            body = json.loads(event["body"])
            if method == "tools/list":
                body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
                for headers in (event["headers"], event["multiValueHeaders"]):
                    headers.pop("mcp-name", None)
                    headers["mcp-method"] = ["tools/list"] if isinstance(headers["mcp-method"], list) else "tools/list"
            event["body"] = json.dumps(body)
            kind, answer = function.invoke(event)
            assert kind == "response", (kind, answer)
            return json.loads(answer["body"])

        analyst, admin = "arn:aws:iam::123456789012:role/analyst-eu", "arn:aws:iam::123456789012:role/admin"
        assert "file" not in {tool["name"] for tool in invoke(analyst, "tools/list")["result"]["tools"]}
        assert "file" in {tool["name"] for tool in invoke(admin, "tools/list")["result"]["tools"]}
        refused = invoke(analyst, "tools/call")
        assert f"tool `file` is not allowed for `{analyst}`: denied by rule 1" in refused["error"]["message"], refused
        assert invoke(admin, "tools/call")["result"]["isError"] is False
    finally:
        function.stop()


def test_a_rotated_signing_key_is_fetched_on_first_sight_and_a_retired_one_refused(gateway, issuer):
    """Last of the module's JWT tests: it retires the key the others sign with."""
    assert post(gateway.url, {"authorization": f"Bearer {issuer.token()}"}).status_code == 200
    time.sleep(5.2)  # the gateway fetches the key set at most once per 5 s
    before = issuer.fetches
    issuer.add_key("k2")
    rotated = issuer.token(kid="k2", sub="bob@example.com")
    assert post(gateway.url, {"authorization": f"Bearer {rotated}"}).status_code == 200
    assert issuer.fetches == before + 1, "an unknown kid fetches the key set once"
    made_up = [post(gateway.url, {"authorization": f"Bearer {issuer.token(kid=f'x{n}', key=issuer.keys['k2'])}"})
               for n in range(5)]
    assert all(r.status_code == 401 and "which the issuer does not list" in r.text for r in made_up), made_up[0].text
    assert issuer.fetches == before + 1, "made-up kids within 5 s of a fetch fetch nothing"
    # The issuer retires k1: cached keys serve until the next fetch (an unknown kid, or 10 minutes).
    retired = issuer.token()  # signed by k1
    del issuer.keys["k1"]
    assert post(gateway.url, {"authorization": f"Bearer {retired}"}).status_code == 200
    time.sleep(5.2)
    newer = post(gateway.url, {"authorization": f"Bearer {issuer.token(kid='k3', key=issuer.keys['k2'])}"})
    assert newer.status_code == 401 and issuer.fetches == before + 2, newer.text[:300]
    refused = post(gateway.url, {"authorization": f"Bearer {retired}"})
    assert refused.status_code == 401, refused.text[:300]
    assert "names key `k1`, which the issuer does not list" in refused.text, refused.text[:300]
    assert post(gateway.url, {"authorization": f"Bearer {rotated}"}).status_code == 200


def test_metrics_count_requests_refusals_and_limits_in_prometheus_text(issuer, tmp_path):
    from prometheus_client.parser import text_string_to_metric_families
    limits = '[[limit]]\nname = "tiny"\nscope = "principal"\nrate = 2\nper = "1h"\n'
    server = Server(tmp_path, "--access", str(access_file(tmp_path, issuer, limits)))
    try:
        base = f"http://127.0.0.1:{server.port}"
        assert httpx.get(f"{base}/live").status_code == 200
        ready = httpx.get(f"{base}/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready" and ready.json()["tools"] >= 1
        assert httpx.get(f"{base}/metrics").status_code == 401, "metrics are behind the door"
        call = {"name": "file", "arguments": {"action": "list", "path": ""}}
        assert post(server.url, {"x-api-key": CI_KEY}, "tools/call", call).status_code == 200
        assert post(server.url, {"x-api-key": CI_KEY}).status_code == 200
        assert post(server.url, {"x-api-key": CI_KEY}).status_code == 429
        assert post(server.url, {"x-api-key": "wrong-key-0123456789"}).status_code == 401
        scraped = httpx.get(f"{base}/metrics", headers={"x-api-key": INTERN_KEY})
        assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
        families = {family.name: family for family in text_string_to_metric_families(scraped.text)}

        def value(family: str, sample: str, **labels) -> float:
            found = [s.value for s in families[family].samples if s.name == sample
                     and all(s.labels.get(k) == v for k, v in labels.items())]
            assert len(found) == 1, (family, sample, labels, families[family].samples)
            return found[0]

        assert value("mcp_gateway_requests", "mcp_gateway_requests_total",
                     method="tools/call", tool="file", status="200", outcome="ok") == 1
        assert value("mcp_gateway_requests", "mcp_gateway_requests_total",
                     method="tools/list", status="429", outcome="error") == 1
        assert value("mcp_gateway_request_duration_seconds", "mcp_gateway_request_duration_seconds_count",
                     method="tools/call", tool="file") == 1
        assert value("mcp_gateway_rate_limited", "mcp_gateway_rate_limited_total", limit="tiny") == 1
        assert value("mcp_gateway_auth_refused", "mcp_gateway_auth_refused_total") >= 2
        assert value("mcp_gateway_requests_in_flight", "mcp_gateway_requests_in_flight") == 0
    finally:
        server.stop()


def test_lambda_writes_an_embedded_metric_format_line_per_request(tmp_path):
    from lambda_runtime import LambdaFunction
    template = json.loads((ROOT / "events" / "rest-v1" / "tools-call-file.json").read_text())
    function = LambdaFunction(gateway_bin(), tmp_path, str(DATA))
    try:
        for _ in range(2):
            kind, answer = function.invoke(template)
            assert kind == "response" and answer["statusCode"] == 200, answer
        emf = [line for line in function.log_lines() if "_aws" in line]
        assert len(emf) == 2, emf
        directive = emf[0]["_aws"]["CloudWatchMetrics"][0]
        assert directive["Namespace"] == "mcp-gateway" and ["method", "tool"] in directive["Dimensions"]
        assert {metric["Name"] for metric in directive["Metrics"]} >= {"Requests", "Errors", "Latency"}
        assert emf[0]["method"] == "tools/call" and emf[0]["tool"] == "file" and emf[0]["Requests"] == 1
        assert emf[0]["Errors"] == 0 and emf[0]["Latency"] > 0
    finally:
        function.stop()


@pytest.mark.anyio
async def test_iam_callers_reach_serve_through_the_proxy_with_sts_tokens_bound_to_the_gateway(tmp_path):
    """`[auth.iam]`: mcp-sigv4-proxy --auth sts sends a signed GetCallerIdentity request; the
    gateway asks STS (moto's, with IAM authentication on) who signed it. A token bound to another
    gateway, or signed with a key STS does not know, fails STS's own signature check."""
    from mcp import StdioServerParameters

    from aws_standin import aws_env, binary
    sts = MotoSts(tmp_path)
    access = tmp_path / "access.toml"
    access.write_text(f"""
[auth.iam]
gateway_id = "gateway-a"
accounts = ["123456789012"]
sts_endpoints = ["{sts.base}"]
[authorization]
[[authorization.rule]]
effect = "deny"
principals = ["arn:aws:iam::123456789012:user/bob"]
tools = ["file"]
""")
    server = Server(tmp_path, "--access", str(access))

    def proxy(gateway_id: str, user: str = "alice", key: tuple[str, str] | None = None) -> StdioServerParameters:
        key_id, secret = key or sts.keys[user]
        return StdioServerParameters(
            command=binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"),
            args=["--endpoint", server.url, "--region", "us-east-1", "--auth", "sts", "--gateway-id", gateway_id,
                  "--sts-endpoint", f"{sts.base}/"],
            env=aws_env(tmp_path, key=key_id, secret=secret))

    try:
        before = sts.calls()
        async with Client(proxy("gateway-a"), mode="2026-07-28") as session:
            assert "file" in {tool.name for tool in (await session.list_tools()).tools}
            for _ in range(3):
                read = await session.call_tool("file", {"action": "read", "path": "sales/regions.csv"})
                assert read.is_error is False, read.content
        assert sts.calls() - before == 1, "one STS call for the token, then its cached answer"
        fields = [f for f in server.request_logs() if f.get("tool") == "file"]
        assert fields and {(f["principal"], f["auth"]) for f in fields} == {("arn:aws:iam::123456789012:user/alice", "iam")}

        async with Client(proxy("gateway-a", "bob"), mode="2026-07-28") as session:
            assert "file" not in {tool.name for tool in (await session.list_tools()).tools}, "bob's rule holds"

        with pytest.raises(Exception):
            async with Client(proxy("gateway-b"), mode="2026-07-28") as session:
                await session.list_tools()
        refused = [f for f in server.request_logs() if f.get("status") == 401]
        assert refused and "STS refused the token (SignatureDoesNotMatch" in refused[-1]["reason"], refused
        assert "--gateway-id must be `gateway-a`" in refused[-1]["reason"]

        with pytest.raises(Exception):
            async with Client(proxy("gateway-a", key=("AKIAUNKNOWNKEY000000", "secret")), mode="2026-07-28") as session:
                await session.list_tools()
        refused = [f for f in server.request_logs() if f.get("status") == 401]
        assert "STS refused the token (InvalidClientTokenId" in refused[-1]["reason"], refused[-1]
    finally:
        server.stop()
        sts.stop()


def counting_upstream(tmp: Path, *args: str) -> Path:
    """An upstreams file with the stdio upstream `counting` (upstreams/py_counting_server.py)."""
    import sys
    upstreams = tmp / "upstreams.toml"
    arguments = json.dumps([str(ROOT / "tests/e2e/upstreams/py_counting_server.py"), *args])
    upstreams.write_text(f'[[upstream]]\nname = "counting"\ntransport = "stdio"\ncommand = "{sys.executable}"\n'
                         f'args = {arguments}\n')
    return upstreams


@pytest.mark.anyio
@pytest.mark.parametrize("list_ttl_ms", [1500, None])
async def test_an_upstreams_list_ttl_ms_shortens_the_catalogues_refresh(tmp_path, list_ttl_ms):
    """2026-07-28 caching: an upstream whose tool lists say `ttlMs: 1500` is listed again once
    they are stale, though the catalogue's own TTL is a minute; without the hint it is not."""
    import anyio
    upstreams = counting_upstream(tmp_path, *(["--list-ttl-ms", str(list_ttl_ms)] if list_ttl_ms else []))
    server = Server(tmp_path, "--upstreams", str(upstreams))

    def refreshes() -> int:
        return sum(line.get("fields", {}).get("message") == "upstream catalogue refreshed" for line in server.log_lines())

    try:
        async with client(server.url, {}) as session:
            assert "counting__count" in {tool.name for tool in (await session.list_tools()).tools}
            before = refreshes()
            assert before >= 1
            await anyio.sleep(1.7)
            await session.list_tools()  # answered from the catalogue; a stale one is refreshed behind it
            deadline = time.monotonic() + 5
            while list_ttl_ms and refreshes() == before and time.monotonic() < deadline:
                await anyio.sleep(0.05)
            await anyio.sleep(0.3)
            # With the hint, at least the refresh behind the stale list (on a loaded machine the
            # first list itself may come after 1.5 s and cause one more); without it, none.
            refreshed = refreshes() - before
            assert refreshed >= 1 if list_ttl_ms else refreshed == 0, server.log_lines()[-5:]
    finally:
        server.stop()


@pytest.mark.anyio
async def test_the_result_cache_reuses_hinted_reads_and_configured_tools_per_principal_never_errors(issuer, tmp_path):
    upstreams = counting_upstream(tmp_path)
    cache = '[cache]\n[[cache.tool]]\ntools = ["counting__count", "counting__boom"]\nttl = "1m"\n'
    access = access_file(tmp_path, issuer, cache)
    server = Server(tmp_path, "--upstreams", str(upstreams), "--access", str(access))
    try:
        async with client(server.url, {"x-api-key": CI_KEY}) as ci, client(server.url, {"x-api-key": INTERN_KEY}) as intern:
            first = [(await ci.call_tool("counting__count", {})).content[0].text for _ in range(3)]
            assert first == ["1", "1", "1"], first
            assert (await intern.call_tool("counting__count", {})).content[0].text == "2", "private: a result per principal"
            booms = [await ci.call_tool("counting__boom", {}) for _ in range(2)]
            assert all(result.is_error for result in booms), booms
            reads = [(await session.read_resource("gateway-upstream://counting/counter://reads")).contents[0].text
                     for session in (ci, ci, intern)]
            assert reads == ["1", "1", "1"], "a public read with ttlMs is reused, for anyone"
            counted = await ci.call_tool("counting__counts", {})
            counts = counted.structured_content or json.loads(counted.content[0].text)
            assert counts == {"count": 2, "boom": 2, "reads": 1}, counts
        from prometheus_client.parser import text_string_to_metric_families
        text = httpx.get(f"http://127.0.0.1:{server.port}/metrics", headers={"x-api-key": CI_KEY}).text
        lookups = {(s.labels["kind"], s.labels["outcome"]): s.value for family in text_string_to_metric_families(text)
                   if family.name == "mcp_gateway_cache_lookups" for s in family.samples}
        assert lookups[("tool", "hit")] == 2 and lookups[("tool", "miss")] == 4, lookups
        # The Python client honours ttlMs itself: ci's second read never left it; intern's hit the gateway's cache.
        assert lookups[("resource", "hit")] == 1 and lookups[("resource", "miss")] == 1, lookups
    finally:
        server.stop()


@pytest.mark.anyio
async def test_a_trace_runs_from_the_proxy_through_the_gateway_to_the_upstream(tmp_path):
    """W3C Trace Context: the proxy starts a trace per message (or continues the client's
    `_meta.traceparent`), the gateway logs its span of it and passes it on to the upstream as
    `_meta.traceparent`."""
    from mcp import StdioServerParameters

    from aws_standin import ACCESS_KEY, SECRET, StandIn, aws_env, binary
    upstreams = counting_upstream(tmp_path)
    server = Server(tmp_path, "--upstreams", str(upstreams))
    stand_in = StandIn(tmp_path, server.url, {ACCESS_KEY: {"secret": SECRET}})
    try:
        params = StdioServerParameters(command=binary("MCP_PROXY_BIN", "mcp-sigv4-proxy"),
                                       args=["--endpoint", stand_in.url], env=aws_env(tmp_path))
        async with Client(params, mode="2026-07-28") as session:
            result = await session.call_tool("counting__meta", {})
            assert not result.is_error, result.content
            seen = json.loads(result.content[0].text)
        upstream_trace = seen.get("traceparent", "")
        assert len(upstream_trace.split("-")) == 4, seen
        line = [f for f in server.request_logs() if f.get("tool") == "counting__meta"][-1]
        assert upstream_trace.split("-")[1] == line["trace_id"], (seen, line)
        assert upstream_trace.split("-")[2] == line["span_id"], "the upstream's parent is the gateway's span"
        assert line["parent_span_id"] and line["parent_span_id"] != line["span_id"], "the proxy's span"

        # A client's own trace is continued, over plain HTTP too.
        client_trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        answer = post(server.url, {"traceparent": client_trace}, "tools/call", {"name": "counting__meta", "arguments": {}})
        text = answer.json()["result"]["content"][0]["text"]
        assert json.loads(text)["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-"), text
        line = [f for f in server.request_logs() if f.get("tool") == "counting__meta"][-1]
        assert (line["trace_id"], line["parent_span_id"]) == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    finally:
        stand_in.stop()
        server.stop()


class OtlpCollector:
    """An OTLP/HTTP receiver: each POST to /v1/traces is parsed as an ExportTraceServiceRequest by
    the OpenTelemetry protobuf definitions (unknown fields refused), and its spans kept."""

    def __init__(self):
        from google.protobuf import json_format
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
        self.spans: list[dict] = []
        self.requests: list[dict] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                try:
                    assert self.path == "/v1/traces", self.path
                    assert self.headers["content-type"] == "application/json", self.headers["content-type"]
                    json_format.Parse(body, ExportTraceServiceRequest())  # the schema, strictly
                    export = json.loads(body)
                    collector.requests.append({"headers": dict(self.headers), "body": export})
                    for resource in export["resourceSpans"]:
                        for scope in resource["scopeSpans"]:
                            for span in scope["spans"]:
                                collector.spans.append({**span, "resource": resource["resource"]})
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except Exception as error:  # the test reads this from `requests`
                    collector.requests.append({"error": repr(error)})
                    self.send_response(400)
                    self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.spans

    def stop(self):
        self.httpd.shutdown()


def test_spans_are_exported_over_otlp_with_the_ids_of_the_access_log(tmp_path):
    """`OTEL_EXPORTER_OTLP_ENDPOINT`: each request's server span reaches an OTLP collector (the
    body checked against the OTLP protobuf schema), with the ids the access log has, the client's
    span as its parent, and failures marked; a trace the client did not sample is not exported."""
    collector = OtlpCollector()
    server = Server(tmp_path, env={"OTEL_EXPORTER_OTLP_ENDPOINT": collector.base + "/",
                                   "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=s%3Dcret", "OTEL_SERVICE_NAME": "gw-test"})
    try:
        sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        read = post(server.url, {"traceparent": sampled}, "tools/call",
                    {"name": "file", "arguments": {"action": "read", "path": "sales/regions.csv"}})
        assert read.status_code == 200 and read.json()["result"]["isError"] is False
        failed = post(server.url, {}, "tools/call", {"name": "file", "arguments": {"action": "read", "path": "nope.csv"}})
        assert failed.json()["result"]["isError"] is True
        unsampled = "00-11111111111111111111111111111111-2222222222222222-00"
        post(server.url, {"traceparent": unsampled}, "tools/list")
        spans = collector.wait_for(2)
        time.sleep(1.5)  # a third span, if one were wrongly exported, comes with the next batch
        assert not [r for r in collector.requests if "error" in r], collector.requests
        assert len(spans) == 2, spans
        assert collector.requests[0]["headers"].get("x-collector-key") == "s=cret"
        logged = {f["span_id"]: f for f in server.request_logs() if f.get("tool") == "file"}
        first, second = sorted(spans, key=lambda span: int(span["startTimeUnixNano"]))
        assert first["traceId"] == "4bf92f3577b34da6a3ce929d0e0e4736" and first["parentSpanId"] == "00f067aa0ba902b7"
        assert first["spanId"] in logged and logged[first["spanId"]]["trace_id"] == first["traceId"]
        assert first["name"] == "tools/call file" and first["kind"] == 2 and first["status"] == {}
        attributes = {a["key"]: next(iter(a["value"].values())) for a in first["attributes"]}
        assert attributes["mcp.method.name"] == "tools/call" and attributes["gen_ai.tool.name"] == "file"
        assert attributes["http.response.status_code"] == "200"
        assert int(first["endTimeUnixNano"]) > int(first["startTimeUnixNano"])
        assert {a["key"]: a["value"]["stringValue"] for a in first["resource"]["attributes"]}["service.name"] == "gw-test"
        assert second["spanId"] in logged and "parentSpanId" not in second, "a new trace for a client without one"
        assert second["status"]["code"] == 2 and "nope.csv" in second["status"]["message"], second["status"]
    finally:
        server.stop()
        collector.stop()


def test_an_otlp_setting_that_does_not_parse_stops_serve_with_its_name(tmp_path):
    done = subprocess.run([gateway_bin(), "--data-root", str(DATA), "serve", "--addr", "127.0.0.1:0"],
                          env={"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
                               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "OTEL_EXPORTER_OTLP_PROTOCOL=grpc" in done.stderr, done.stderr


def self_signed(tmp: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (common name `name`) and its key, as PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / f"{name}.crt", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def served_name(port: int) -> str:
    import ssl
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    from cryptography import x509
    return x509.load_pem_x509_certificate(pem.encode()).subject.rfc4514_string()


@pytest.mark.anyio
async def test_serve_speaks_tls_and_picks_up_a_renewed_certificate(tmp_path):
    import shutil
    first_cert, first_key = self_signed(tmp_path, "first")
    second_cert, second_key = self_signed(tmp_path, "second")
    cert, key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(first_cert, cert)
    shutil.copy(first_key, key)
    port = free_port()
    log = open(tmp_path / "tls.log", "w")
    proc = subprocess.Popen([gateway_bin(), "--data-root", str(DATA), "serve", "--addr", f"127.0.0.1:{port}",
                             "--tls-cert", str(cert), "--tls-key", str(key), "--tls-reload", "1"],
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        import ssl
        trusted = ssl.create_default_context(cafile=str(first_cert))
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                health = httpx.get(f"{url}/health", verify=trusted, timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, (tmp_path / "tls.log").read_text()
                time.sleep(0.05)
        assert health.status_code == 200
        assert health.headers["strict-transport-security"] == "max-age=31536000"
        assert health.headers["x-content-type-options"] == "nosniff" and health.headers["cache-control"] == "no-store"
        async with Client(streamable_http_client(f"{url}/mcp", http_client=httpx2.AsyncClient(verify=trusted)),
                          mode="2026-07-28") as session:
            assert (await session.call_tool("file", {"action": "info", "path": "sales/regions.csv"})).is_error is False
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)  # plain HTTP gets no answer

        # A half-written renewal is refused, the old certificate served on; the complete one is taken.
        key.write_text("-----BEGIN PRIVATE KEY-----\ntruncated")
        time.sleep(2.5)
        assert served_name(port) == "CN=first"
        shutil.copy(second_cert, cert)
        shutil.copy(second_key, key)
        deadline = time.monotonic() + 10
        while served_name(port) != "CN=second":
            assert time.monotonic() < deadline, (tmp_path / "tls.log").read_text()
            time.sleep(0.2)
        logged = (tmp_path / "tls.log").read_text()
        assert "the TLS certificate was not reloaded; the previous one is served" in logged
        assert "reloaded the TLS certificate" in logged
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()

    done = subprocess.run([gateway_bin(), "--data-root", str(DATA), "serve", "--addr", f"127.0.0.1:{free_port()}",
                           "--tls-cert", str(first_cert), "--tls-key", str(second_key)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "do not make a usable key pair" in done.stderr, done.stderr


def test_cors_answers_listed_origins_only_and_preflights_need_no_credentials(issuer, tmp_path):
    server = Server(tmp_path, "--access", str(access_file(tmp_path, issuer)), env={"MCP_ALLOWED_ORIGINS": "https://app.example.com"})
    try:
        preflight = httpx.options(server.url, headers={
            "origin": "https://app.example.com", "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, x-api-key, mcp-protocol-version"})
        assert preflight.status_code == 204, preflight.text
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
        assert {"content-type", "x-api-key", "mcp-protocol-version", "authorization"} <= allowed
        answer = post(server.url, {"x-api-key": CI_KEY, "origin": "https://app.example.com"})
        assert answer.status_code == 200 and answer.headers["access-control-allow-origin"] == "https://app.example.com"
        assert "mcp-session-id" in answer.headers["access-control-expose-headers"]
        assert answer.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert answer.headers["x-frame-options"] == "DENY" and "strict-transport-security" not in answer.headers

        evil = httpx.options(server.url, headers={"origin": "https://evil.example", "access-control-request-method": "POST"})
        assert evil.status_code == 401 and "access-control-allow-origin" not in evil.headers
        refused = post(server.url, {"x-api-key": CI_KEY, "origin": "https://evil.example"})
        assert refused.status_code == 403 and "access-control-allow-origin" not in refused.headers
    finally:
        server.stop()


def test_the_rest_routes_pass_the_same_rules_and_limits(issuer, tmp_path):
    limit = '[[limit]]\nname = "count-once"\nscope = "tool"\ntools = ["counting__count"]\nrate = 1\nper = "1h"\n'
    server = Server(tmp_path, "--upstreams", str(counting_upstream(tmp_path)),
                    "--access", str(access_file(tmp_path, issuer, limit)))
    try:
        call = f"http://127.0.0.1:{server.port}/mcp/counting/tools/call"
        assert httpx.post(call, json={"name": "count", "arguments": {}}).status_code == 401
        first = httpx.post(call, json={"name": "count", "arguments": {}}, headers={"x-api-key": CI_KEY})
        assert first.status_code == 200 and first.json()["content"][0]["text"] == "1", first.text
        limited = httpx.post(call, json={"name": "count", "arguments": {}}, headers={"x-api-key": INTERN_KEY})
        assert limited.status_code == 429 and 3500 <= int(limited.headers["retry-after"]) <= 3600, limited.headers
        assert "rate limit `count-once` exceeded" in limited.json()["error"]
    finally:
        server.stop()
