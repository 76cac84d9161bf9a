"""`mcp-compare` end to end: two local `mcp-gateway serve` instances, one behind a slow, faulty
front (fault_proxy.py), and one behind the SigV4-verifying API Gateway stand-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from aws_standin import ACCESS_KEY, OTHER_SECRET, SECRET, StandIn, aws_env, binary
from conftest import ROOT, MotoSts, Server

HERE = Path(__file__).parent
REQUESTS = 100
FAIL_EVERY = 5
DELAY_MS = 15
READ = ["--method", "tools/call", "--tool", "file", "--arguments", '{"action": "read", "path": "README.md"}']


@pytest.fixture(scope="module")
def fast(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("fast"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def faulty(tmp_path_factory):
    """A second serve instance behind a front that adds 15 ms and fails every 5th request with 503."""
    server = Server(tmp_path_factory.mktemp("faulty"))
    front = subprocess.Popen(
        [sys.executable, str(HERE / "fault_proxy.py"), server.url, "--delay-ms", str(DELAY_MS), "--fail-every", str(FAIL_EVERY)],
        stdout=subprocess.PIPE, text=True,
    )
    line = front.stdout.readline()
    assert line.startswith("listening on "), line
    yield line.split()[-1]
    front.terminate()
    front.wait(timeout=10)
    server.stop()


def compare(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([binary("MCP_COMPARE_BIN", "mcp-compare"), *args], capture_output=True, text=True,
                          timeout=120, env=env or aws_env(tmp_path))


def test_compare_reports_latency_errors_cost_and_a_cdf(fast, faulty, tmp_path):
    out_json, out_svg = tmp_path / "compare.json", tmp_path / "compare.svg"
    run = compare(tmp_path, "--target", f"ec2={fast.url}", "--target", f"slow={faulty}", "-n", str(REQUESTS), "-c", "4",
                  *READ, "--json", str(out_json), "--svg", str(out_svg), "--cost", "slow=ec2,instance=c7g.large")
    assert run.returncode == 0, run.stderr
    report = json.loads(out_json.read_text())
    by_name = {target["name"]: target for target in report["targets"]}
    ec2, slow = by_name["ec2"]["summary"], by_name["slow"]["summary"]

    assert (ec2["count"], ec2["ok"], ec2["errors"]) == (REQUESTS, REQUESTS, {})
    assert slow["count"] == REQUESTS
    assert slow["errors"] == {"HTTP 503": REQUESTS // FAIL_EVERY}, slow["errors"]
    assert slow["ok"] == REQUESTS - REQUESTS // FAIL_EVERY
    assert slow["success_rate"] == pytest.approx(0.8)
    for summary in (ec2, slow):
        latency = summary["latency_ms"]
        assert 0 < latency["min"] <= latency["median"] <= latency["p95"] <= latency["p99"] <= latency["max"], latency
        assert latency["min"] <= latency["mean"] <= latency["max"]
        assert summary["requests_per_second"] > 0
    assert slow["latency_ms"]["min"] >= DELAY_MS, slow["latency_ms"]
    assert slow["latency_ms"]["median"] > ec2["latency_ms"]["median"]
    assert len(by_name["slow"]["run"]["latencies_ms_in_order"]) == REQUESTS
    assert "503" in by_name["slow"]["run"]["first_error"]

    # EC2 cost: the hourly price over the measured throughput.
    for name, hourly in (("ec2", 0.0168), ("slow", 0.0725)):
        estimate = by_name[name]["estimate"]
        rps = by_name[name]["summary"]["requests_per_second"]
        assert estimate["model"] == {"kind": "ec2", "instance": "t4g.small" if name == "ec2" else "c7g.large"}
        assert estimate["usd_per_million"] == pytest.approx(hourly / (rps * 3600) * 1e6, rel=1e-9)

    svg = ElementTree.parse(out_svg).getroot()
    lines = svg.findall("{http://www.w3.org/2000/svg}polyline")
    assert [line.get("data-target") for line in lines] == ["ec2", "slow"]
    assert len(lines[1].get("points").split()) == REQUESTS - REQUESTS // FAIL_EVERY

    table = run.stdout
    assert "endpoint" in table and "HTTP 503: 20" in table and "slow: median" in table, table


def test_signed_requests_pass_the_sigv4_check_and_bad_ones_are_counted(fast, tmp_path):
    standin = StandIn(tmp_path, fast.url, {ACCESS_KEY: {"secret": SECRET}})
    try:
        args = ["--target", f"apigw={standin.url}", "--sign", "always", "--region", "us-east-1", "-n", "20", "-c", "2",
                "--json", str(tmp_path / "signed.json"), "--cost", "apigw=lambda,memory=512,api=http", *READ]
        before = standin.verified()
        run = compare(tmp_path, *args)
        assert run.returncode == 0, run.stderr
        target = json.loads((tmp_path / "signed.json").read_text())["targets"][0]
        assert target["signed"] is True and target["summary"]["ok"] == 20, target
        assert standin.verified() - before == 20
        estimate = target["estimate"]
        assert estimate["model"] == {"kind": "lambda", "memory_mb": 512, "arch": "arm64", "api": "http"}
        assert "upper bound" in estimate["basis"]
        assert estimate["parts"]["requests"] == 0.20 and estimate["parts"]["api (http)"] == 1.00

        reports = tmp_path / "reports.log"
        reports.write_text("REPORT RequestId: 1\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 512 MB\n" * 3)
        run = compare(tmp_path, *args, "--lambda-report", f"apigw={reports}")
        estimate = json.loads((tmp_path / "signed.json").read_text())["targets"][0]["estimate"]
        assert estimate["parts"]["compute"] == pytest.approx(0.5 * 0.002 * 0.0000133334 * 1e6)
        assert "3 Lambda REPORT lines" in estimate["basis"]

        run = compare(tmp_path, *args, env=aws_env(tmp_path, secret=OTHER_SECRET))
        assert run.returncode == 0, run.stderr
        summary = json.loads((tmp_path / "signed.json").read_text())["targets"][0]["summary"]
        assert summary["ok"] == 0 and summary["errors"] == {"HTTP 403": 20}, summary
    finally:
        standin.stop()


@pytest.mark.parametrize("args, message", [
    (["--target", "x"], "is not NAME=URL"),
    (["--target", "a=http://127.0.0.1:9/mcp", "--cost", "b=ec2"], "not a --target"),
    (["--target", "a=http://127.0.0.1:9/mcp", "--cost", "a=ec2,instance=z1.mega"], "not in the price table"),
    (["--target", "a=http://127.0.0.1:9/mcp", "--method", "tools/call"], "needs --tool"),
    (["--target", "a=http://127.0.0.1:9/mcp", "--protocol", "2025-11-25"], "initialize failed"),
])
def test_bad_arguments_are_explained(tmp_path, args, message):
    run = compare(tmp_path, *args, "-n", "1", "--quiet")
    assert run.returncode != 0
    assert message in run.stderr, run.stderr


def test_unreachable_endpoint_counts_connection_errors(tmp_path):
    run = compare(tmp_path, "--target", "down=http://127.0.0.1:9/mcp", "-n", "5", "--json", str(tmp_path / "down.json"))
    assert run.returncode == 0, run.stderr
    summary = json.loads((tmp_path / "down.json").read_text())["targets"][0]["summary"]
    assert summary["errors"] == {"connection": 5} and summary["latency_ms"] is None


def test_make_compare_measures_both_stacks_from_their_outputs(tmp_path):
    """`make compare` (deploy/compare.py) with two local `serve` instances standing in for the
    stacks' outputs, the AWS CLI faked: "ec2" is `serve` with `[auth.iam]`, reached with STS tokens
    that moto's STS checks; Lambda is priced from the REPORT lines its log group answers."""
    from fake_aws import FakeAws
    sts = MotoSts(tmp_path)
    access = tmp_path / "access.toml"
    access.write_text(f'[auth.iam]\ngateway_id = "mcp-gateway-ec2-dev"\nsts_endpoints = ["{sts.base}"]\n')
    ec2 = Server(tmp_path, "--access", str(access))
    function = Server(tmp_path)
    report = "REPORT RequestId: {}\tDuration: 3.10 ms\tBilled Duration: 4 ms\tMemory Size: 512 MB\tMax Memory Used: 31 MB"
    aws = FakeAws(tmp_path, stacks={
        "mcp-lambda-gateway-dev": {"Outputs": {"McpUrl": function.url, "FunctionLogGroupName": "/aws/lambda/fn"},
                                   "Parameters": {"MemorySize": "512"}},
        "mcp-gateway-ec2-dev": {"Outputs": {"McpUrl": ec2.url, "GatewayId": "mcp-gateway-ec2-dev", "InstanceType": "c7g.large"}},
    }, logs=[report.format(n) for n in range(10)])
    key, secret = sts.keys["alice"]
    env = aws_env(tmp_path, key=key, secret=secret, **aws.env(os.environ["PATH"]))
    out = tmp_path / "out"
    before = sts.calls()
    try:
        run = subprocess.run(
            [sys.executable, str(ROOT / "deploy" / "compare.py"), "--env", "dev", "--mcp-compare",
             binary("MCP_COMPARE_BIN", "mcp-compare"), "--out", str(out), "-n", "30", "-c", "4", "--warmup", "2",
             "--sample", "10", "--", "--sts-endpoint", sts.base, *READ],
            capture_output=True, text=True, timeout=300, env=env)
        assert run.returncode == 0, run.stderr
        report_json = json.loads((out / "compare.json").read_text())
        by_name = {target["name"]: target for target in report_json["targets"]}
        assert by_name["ec2"]["auth"] == "sts" and by_name["ec2"]["summary"]["ok"] == 30, by_name["ec2"]["summary"]
        assert by_name["lambda"]["auth"] == "none" and by_name["lambda"]["summary"]["ok"] == 30
        assert "10 Lambda REPORT lines" in by_name["lambda"]["estimate"]["basis"]
        assert by_name["lambda"]["estimate"]["parts"]["compute"] == pytest.approx(0.5 * 0.004 * 0.0000133334 * 1e6)
        assert by_name["ec2"]["estimate"]["model"] == {"kind": "ec2", "instance": "c7g.large"}
        table = (out / "table.md").read_text()
        assert "lambda" in table and "ec2" in table and table in run.stdout
        assert ElementTree.parse(out / "compare.svg").getroot().tag.endswith("svg")
        principals = {f.get("principal") for f in ec2.request_logs() if f.get("status") == 200}
        assert principals == {"arn:aws:iam::123456789012:user/alice"}, principals
        assert sts.calls() - before == 1, "one token for the whole run, one STS call"
        calls = aws.calls()
        assert ["logs", "filter-log-events", "--log-group-name", "/aws/lambda/fn"] == calls[-1][:4], calls
    finally:
        ec2.stop()
        function.stop()
        sts.stop()


def test_the_cost_table_gives_monthly_costs_and_the_break_even_rate(tmp_path):
    run = compare(tmp_path, "--cost-table", "lambda,memory=1024,api=http", "--ec2-instance", "t4g.small",
                  "--billed-ms", "5", "--rates", "1,10")
    assert run.returncode == 0, run.stderr
    rows = [line for line in run.stdout.splitlines() if line.startswith("| 1") or line.startswith("| 10 ")]
    per_call = (0.20 + 1.00 + 0.005 * 0.0000133334 * 1e6) / 1e6
    month = 730 * 3600
    assert rows[0].split("|")[3].strip() == f"${per_call * month:.2f}" and rows[0].endswith("| Lambda |"), rows
    assert rows[1].split("|")[4].strip() == f"${0.0168 * 730:.2f}" and rows[1].endswith("| EC2 |"), rows
    assert f"Break-even: {0.0168 * 730 / (per_call * month):.2f} calls/s" in run.stdout, run.stdout
    refused = compare(tmp_path, "--cost-table", "lambda", "--billed-ms", "0")
    assert refused.returncode != 0 and "--billed-ms must be 1 to" in refused.stderr
