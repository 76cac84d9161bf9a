"""The hostile-input corpus against the gateway as a Lambda function (the real binary under a
Lambda Runtime API on 127.0.0.1) and over stdio: each case gets the answer it lists, the log says
why, the process keeps serving, and nothing under the data root changed."""

from __future__ import annotations

import base64
import copy
import json
import queue
import subprocess
import threading
import time

import pytest

from conftest import ROOT, LoggedProcess, gateway_bin
from hostile import Case
from hostile.lambda_cases import CASES as LAMBDA_CASES
from hostile.roots import SECRET, hostile_root, snapshot
from hostile.stdio_cases import CASES as STDIO_CASES
from lambda_runtime import LambdaFunction


# ------------------------------------------------------------------------------------- Lambda

@pytest.fixture(scope="module")
def function(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-lambda")
    root, secret = hostile_root(tmp)
    # No subcommand: with AWS_LAMBDA_RUNTIME_API set the binary must choose `lambda` itself.
    running = LambdaFunction(gateway_bin(), tmp, str(root))
    yield running, root, secret
    running.stop()


def api_gateway_event(payload: dict, secret: str) -> dict:
    event = copy.deepcopy(json.loads((ROOT / "events" / payload["kind"] / f"{payload['template']}.json").read_text()))
    for name, value in payload["headers"].items():
        for key in ("headers", "multiValueHeaders"):
            headers = event.get(key)
            if headers is None:
                continue
            headers.pop(name, None)
            if value is not None:
                headers[name] = [value] if key == "multiValueHeaders" else value
    body = payload["body"]
    if body is not None:
        if isinstance(body, str):
            body = body.replace("{outside}", secret)
        if payload["base64"]:
            raw = body if isinstance(body, bytes) else body.encode()
            event["body"], event["isBase64Encoded"] = base64.b64encode(raw).decode(), True
        else:
            event["body"], event["isBase64Encoded"] = body, False
    return event


def response_body(answer: dict) -> dict:
    body = answer.get("body") or ""
    if answer.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return json.loads(body)


def request_log(lines: list[dict]) -> dict:
    access = [line["fields"] for line in lines if line.get("target") == "mcp_gateway::request"]
    assert access, f"no access-log line in {lines[-5:]}"
    return access[-1]


@pytest.mark.parametrize("case", LAMBDA_CASES, ids=[case.id for case in LAMBDA_CASES])
def test_hostile_lambda_event(function, case: Case):
    running, root, secret = function
    before_state = snapshot(root)
    before = len(running.log_lines())
    if "event" in case.payload:
        kind, answer = running.invoke(case.payload["event"])
        assert kind == "error", (case.id, answer)
        assert case.reason in answer["errorMessage"], (case.id, answer)
        errors = [line for line in running.log_lines()[before:] if line.get("level") == "ERROR"]
        assert any("deserialization" in line["fields"].get("message", "") for line in errors), (case.id, errors)
    else:
        kind, answer = running.invoke(api_gateway_event(case.payload, str(secret)))
        assert kind == "response", (case.id, answer)
        assert answer["statusCode"] == case.status, (case.id, answer)
        body = response_body(answer)
        assert SECRET not in json.dumps(body), f"{case.id}: the secret outside the root came back"
        fields = request_log(running.log_lines()[before:])
        if case.tool_error:
            assert body["result"]["isError"] is True, (case.id, body)
            assert case.reason in body["result"]["content"][0]["text"], (case.id, body)
        else:
            assert body["error"]["code"] == case.code, (case.id, body)
            assert fields["error_code"] == case.code, (case.id, fields)
        assert case.reason in (fields.get("reason") or ""), (case.id, fields)
        assert fields.get("principal") or case.payload["kind"] != "rest-v1", (case.id, fields)
    assert running.alive(), f"the function died on {case.id}"
    assert snapshot(root) == before_state, f"{case.id} changed the data root"


def test_the_function_still_answers_after_the_corpus(function):
    running, _, secret = function
    payload = {"kind": "rest-v1", "template": "tools-list", "body": None, "headers": {}, "base64": False}
    kind, answer = running.invoke(api_gateway_event(payload, str(secret)))
    assert kind == "response" and answer["statusCode"] == 200, answer
    assert any(tool["name"] == "db" for tool in response_body(answer)["result"]["tools"])


# -------------------------------------------------------------------------------------- stdio

class StdioGateway(LoggedProcess):
    """`mcp-gateway stdio` driven line by line."""

    def __init__(self, root: str, log_path) -> None:
        self.open_log(log_path)
        self.proc = subprocess.Popen([gateway_bin(), "--data-root", root, "stdio"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log)
        self.lines: queue.Queue[dict] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))  # a line that is not JSON fails the test here

    def send(self, data: bytes) -> None:
        self.proc.stdin.write(data + b"\n")
        self.proc.stdin.flush()

    def until(self, found, timeout: float = 60) -> list[dict]:
        """Lines read until `found(seen)` is true."""
        seen: list[dict] = []
        end = time.monotonic() + timeout
        while not found(seen):
            try:
                seen.append(self.lines.get(timeout=max(0.1, end - time.monotonic())))
            except queue.Empty:
                pytest.fail(f"no awaited answer within {timeout} s; saw {seen}")
        return seen

    def stop(self) -> int | None:
        self.proc.stdin.close()
        self.proc.wait(timeout=20)
        return super().stop()


@pytest.fixture(scope="module")
def stdio(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile-stdio")
    root, _ = hostile_root(tmp)
    gateway = StdioGateway(str(root), tmp / "stdio.log")
    init = {"jsonrpc": "2.0", "id": "init", "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "corpus", "version": "1"}}}
    gateway.send(json.dumps(init).encode())
    gateway.until(lambda seen: any(line.get("id") == "init" for line in seen))
    gateway.send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
    yield gateway, root
    gateway.stop()


@pytest.mark.parametrize("case", STDIO_CASES, ids=[case.id for case in STDIO_CASES])
def test_hostile_stdio_line(stdio, case: Case):
    gateway, root = stdio
    before_state = snapshot(root)
    before = len(gateway.log_lines())
    gateway.send(case.payload["line"])
    probe = f"after-{case.id}"
    gateway.send(json.dumps({"jsonrpc": "2.0", "id": probe, "method": "ping"}).encode())

    def answered(line: dict) -> bool:
        if case.tool_error:
            return line.get("id") == 41
        return line.get("error", {}).get("code") == case.code

    seen = gateway.until(lambda seen: any(map(answered, seen)) and any(line.get("id") == probe for line in seen))
    answer = next(line for line in seen if answered(line))
    if case.tool_error:
        assert answer["result"]["isError"] is True, (case.id, answer)
        assert case.reason in answer["result"]["content"][0]["text"], (case.id, answer)
    else:
        assert case.reason in answer["error"]["message"], (case.id, answer)
    deadline = time.monotonic() + 5
    while True:
        logged = [line["fields"] for line in gateway.log_lines()[before:] if line.get("target") == "mcp_gateway::request"]
        if any(case.reason in (fields.get("reason") or "") for fields in logged) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert any(case.reason in (fields.get("reason") or "") for fields in logged), (case.id, logged)
    assert gateway.proc.poll() is None, f"stdio gateway died on {case.id}"
    assert snapshot(root) == before_state, f"{case.id} changed the data root"
