#!/usr/bin/env python3
"""`make compare ENV=dev`: the Lambda and EC2 stacks of one environment, measured side by side
with mcp-compare (the same requests to both), with the cost per million calls of each.

1. Reads both stacks' outputs: the endpoints, the EC2 gateway's id and instance type, the
   function's memory size and log group.
2. Sends a sample of the requests to Lambda alone and reads their REPORT lines from the function's
   log group, so Lambda's cost rests on billed durations, not on latency seen from here.
3. Runs mcp-compare against both (SigV4 for Lambda, STS tokens for EC2) and writes the table
   (table.md), every figure (compare.json) and the latency CDF (compare.svg) to --out.

Arguments after `--` go to mcp-compare, e.g. `-- --method tools/call --tool file --arguments
'{"action":"list"}'`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stacks import EC2_CONFIG, LAMBDA_CONFIG, DeployError, aws, environment, output, stack  # noqa: E402

REPORT_WAIT_SECONDS = 90


def region_of(url: str) -> str | None:
    match = re.search(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com", url)
    return match.group(1) if match else None


def mcp_compare(binary: str, args: list[str], quiet_stdout: bool = False) -> str:
    run = subprocess.run([binary, *args], stdout=subprocess.PIPE, text=True, timeout=3600)
    if run.returncode != 0:
        raise DeployError(f"mcp-compare failed (exit {run.returncode}; its message is above)")
    if not quiet_stdout:
        print(run.stdout, end="")
    return run.stdout


def report_lines(log_group: str, since_ms: int, wanted: int) -> list[str]:
    """The function's REPORT lines since `since_ms`: waits up to 90 s for `wanted` of them
    (CloudWatch Logs shows them a few seconds late)."""
    deadline = time.monotonic() + REPORT_WAIT_SECONDS
    while True:
        answer = json.loads(aws("logs", "filter-log-events", "--log-group-name", log_group, "--start-time",
                                str(since_ms), "--filter-pattern", '"REPORT RequestId"', "--output", "json"))
        lines = [event["message"].strip() for event in answer.get("events", [])]
        if len(lines) >= wanted or time.monotonic() > deadline:
            return lines
        print(f"compare.py: {len(lines)} of {wanted} REPORT lines so far; waiting for CloudWatch Logs",
              file=sys.stderr)
        time.sleep(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="default", help="the environment of both samconfig files")
    parser.add_argument("--mcp-compare", required=True, help="the mcp-compare binary")
    parser.add_argument("--out", type=Path, required=True, help="folder for table.md, compare.json, compare.svg")
    parser.add_argument("-n", "--requests", type=int, default=500, help="measured requests per endpoint")
    parser.add_argument("-c", "--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured requests per endpoint first")
    parser.add_argument("--sample", type=int, default=100, help="requests whose REPORT lines price Lambda (0: none)")
    parser.add_argument("extra", nargs=argparse.REMAINDER, help="-- then mcp-compare arguments")
    args = parser.parse_args()
    extra = args.extra[1:] if args.extra[:1] == ["--"] else args.extra
    for name in ("requests", "concurrency"):
        if not 1 <= getattr(args, name) <= 100_000:
            parser.error(f"--{name} must be 1 to 100000")
    if not 0 <= args.sample <= 10_000 or not 0 <= args.warmup <= 10_000:
        parser.error("--sample and --warmup must be 0 to 10000")
    try:
        lambda_env, ec2_env = environment(LAMBDA_CONFIG, args.env), environment(EC2_CONFIG, args.env)
        function = stack(lambda_env.stack_name, f"make deploy ENV={args.env}")
        instance = stack(ec2_env.stack_name, f"make deploy-ec2 ENV={args.env}")
        lambda_url, ec2_url = output(function, "McpUrl"), output(instance, "McpUrl")
        region = os.environ.get("AWS_REGION") or region_of(lambda_url)
        if not region:
            raise DeployError("set AWS_REGION (the stacks' region)")
        memory = function.parameters.get("MemorySize", "1024")
        costs = ["--cost", f"lambda=lambda,memory={memory},arch=arm64,api=rest",
                 "--cost", f"ec2=ec2,instance={output(instance, 'InstanceType')}"]
        common = ["--region", region, "-c", str(args.concurrency), "-q", *extra]
        args.out.mkdir(parents=True, exist_ok=True)

        reports: list[str] = []
        if args.sample:
            since_ms = int(time.time() * 1000) - 5000
            print(f"compare.py: {args.sample} requests to Lambda for their REPORT lines", file=sys.stderr)
            mcp_compare(args.mcp_compare, ["--target", f"lambda={lambda_url}", "-n", str(args.sample), *common],
                        quiet_stdout=True)
            reports = report_lines(output(function, "FunctionLogGroupName"), since_ms, args.sample)
            if not reports:
                print("compare.py: no REPORT lines arrived; Lambda's cost will rest on measured latency",
                      file=sys.stderr)
        with tempfile.NamedTemporaryFile("w", suffix=".log") as report_file:
            report_file.write("\n".join(reports) + "\n")
            report_file.flush()
            table = mcp_compare(args.mcp_compare, [
                "--target", f"lambda={lambda_url}", "--target", f"ec2={ec2_url}",
                "--sts", f"ec2={output(instance, 'GatewayId')}", *costs,
                *(["--lambda-report", f"lambda={report_file.name}"] if reports else []),
                "-n", str(args.requests), "--warmup", str(args.warmup),
                "--json", str(args.out / "compare.json"), "--svg", str(args.out / "compare.svg"), *common])
        (args.out / "table.md").write_text(table)
        print(f"compare.py: wrote {args.out}/table.md, compare.json and compare.svg", file=sys.stderr)
    except DeployError as error:
        print(f"compare.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
