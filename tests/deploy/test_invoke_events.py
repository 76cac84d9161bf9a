"""Every saved event in events/ (API Gateway REST v1 with an IAM identity, HTTP API v2, Function
URL) sent to the real handler under `cargo lambda watch` (the Lambda runtime emulator) with
`cargo lambda invoke --data-file`, as `make watch` + `make invoke` do by hand."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from lambda_watch import cargo_lambda_watch

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "examples" / "data"
EVENTS = sorted((ROOT / "events").glob("*/*.json"))
KINDS = ("rest-v1", "http-v2", "function-url")


def regions_csv(result: dict[str, Any]) -> bool:
    return result["structuredContent"]["text"].startswith("code,name,manager\n")


def sales_listing(result: dict[str, Any]) -> bool:
    paths = [entry["path"] for entry in result["structuredContent"]["entries"]]
    return paths == ["sales/orders.csv", "sales/regions.csv"]


def regions_info(result: dict[str, Any]) -> bool:
    info = result["structuredContent"]["info"]
    return (info["path"], info["kind"], info["size"], info["content_type"]) == (
        "sales/regions.csv", "file", 145, "text/csv",
    )


def hopper_hits(result: dict[str, Any]) -> bool:
    hits = result["structuredContent"]["hits"]
    return any(hit["path"] == "sales/regions.csv" and "Hopper" in hit["snippet"] for hit in hits)


def region_rows(result: dict[str, Any]) -> bool:
    rows = result["structuredContent"]["rows"]
    return [row["code"] for row in rows] == ["APAC", "EU", "LATAM", "NA"]


def shipments_at_version_1(result: dict[str, Any]) -> bool:
    """The sample Delta table before version 2 deleted the cancelled shipments."""
    rows = result["structuredContent"]["rows"]
    return [(row["carrier"], row["shipments"]) for row in rows] == [("DHL", 4), ("FedEx", 3), ("UPS", 3)]


def regions_metadata(result: dict[str, Any]) -> bool:
    (dataset,) = result["structuredContent"]["datasets"]
    columns = [column["name"] for column in dataset["columns"]]
    return (dataset["path"], dataset["table"], dataset["row_count"], columns, len(dataset["sample"])) == (
        "sales/regions.csv", "sales_regions", 4, ["code", "name", "manager"], 2,
    )


# Each tools/call event: what its structuredContent must hold. (file_write is offered only with
# ALLOW_WRITE, which these read-only deployments leave off.)
TOOL_CALLS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "tools-call-file": regions_csv,
    "tools-call-file-list": sales_listing,
    "tools-call-file-info": regions_info,
    "tools-call-search": hopper_hits,
    "tools-call-db": region_rows,
    "tools-call-db-delta": shipments_at_version_1,
    "tools-call-dataset-metadata": regions_metadata,
}


def expect(name: str, status: int, body: dict[str, Any]) -> None:
    """Fails unless `body` is the right answer to the event called `name`."""
    if name == "malformed":
        assert status == 400
        assert body["error"]["code"] == -32700
        return
    assert status == 200, body
    if name == "health":
        assert body["status"] == "ok"
        return
    result = body["result"]
    if name == "initialize":
        assert result["protocolVersion"] == "2025-11-25"
        assert result["serverInfo"]["name"] == "mcp-gateway"
    elif name == "discover":
        assert "2026-07-28" in result["supportedVersions"]
    elif name == "tools-list":
        tools = {tool["name"]: tool for tool in result["tools"]}
        assert {"file", "search", "db", "dataset_metadata"} <= set(tools), sorted(tools)
        assert "file_write" not in tools, "file_write is offered only with ALLOW_WRITE"
        for tool in tools.values():
            assert tool["annotations"]["readOnlyHint"] is True and "outputSchema" in tool, tool["name"]
    elif name in TOOL_CALLS:
        assert result["isError"] is False, result
        assert TOOL_CALLS[name](result), result["structuredContent"]
    else:
        pytest.fail(f"no expectation for events/*/{name}.json: add one here")


@pytest.fixture(scope="module")
def watch(tmp_path_factory) -> Iterator[int]:
    """`cargo lambda watch` on a free port; yields the port once a health event is answered."""
    # Buffered: `cargo lambda invoke` posts each event to the emulator's invocations endpoint and
    # reads back one JSON response, the API Gateway proxy format a buffered integration expects. A
    # function in streaming mode answers with a prelude and a body stream instead, which invoke
    # does not decode (the in-process tests in functions/mcp-gateway/tests cover streaming).
    env_vars = {"DATA_ROOT": str(DATA), "MCP_LAMBDA_RESPONSE_MODE": "buffered", "RUST_LOG": "info"}
    warm_up = ROOT / "events" / "http-v2" / "health.json"

    def answers_health(port: int) -> bool:
        try:
            return invoke(port, warm_up, check=False, timeout=60).get("statusCode") == 200
        except (subprocess.TimeoutExpired, json.JSONDecodeError):
            return False

    log_path = tmp_path_factory.mktemp("watch") / "watch.log"
    with cargo_lambda_watch(env_vars, log_path, answers_health) as port:
        yield port


def invoke(port: int, event: Path, check: bool = True, timeout: float = 120) -> dict[str, Any]:
    """`cargo lambda invoke` with a saved event; the function's response as JSON."""
    done = subprocess.run(
        ["cargo", "lambda", "invoke", "mcp-gateway", "--data-file", str(event),
         "--invoke-address", "127.0.0.1", "--invoke-port", str(port), "--output-format", "json"],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )
    if not check and done.returncode != 0:
        return {}
    assert done.returncode == 0, f"cargo lambda invoke failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout)


def test_events_exist_in_every_format():
    names = {kind: sorted(p.stem for p in (ROOT / "events" / kind).glob("*.json")) for kind in KINDS}
    assert names["rest-v1"] == names["http-v2"] == names["function-url"], names
    assert set(names["rest-v1"]) == {"initialize", "discover", "tools-list", "health", "malformed", *TOOL_CALLS}
    assert sorted(p.parent.name for p in EVENTS) == sorted(k for k in KINDS for _ in names[k])


def test_rest_events_carry_an_iam_identity():
    for path in (ROOT / "events" / "rest-v1").glob("*.json"):
        identity = json.loads(path.read_text())["requestContext"]["identity"]
        assert identity["userArn"].startswith("arn:aws:iam::"), path.name


@pytest.mark.parametrize("event", EVENTS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_event_through_cargo_lambda_invoke(watch, event):
    response = invoke(watch, event)
    body = json.loads(response["body"])
    expect(event.stem, response["statusCode"], body)
