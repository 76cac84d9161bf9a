#!/usr/bin/env python3
"""The AWS CLI, faked for the deployment scripts' tests: only the calls they make, each written as
one JSON line to $FAKE_CALLS. `FakeAws` installs it as `aws` (and `cfn-signal`) in a folder put first on PATH.

- `s3 cp` copies between local paths and s3://BUCKET/KEY, which is $FAKE_S3/BUCKET/KEY;
  `s3 rm --recursive s3://BUCKET/PREFIX` removes that folder.
- `cloudformation describe-stacks --stack-name NAME` answers from $FAKE_STACKS (a JSON object
  name → {"Outputs": {...}, "Parameters": {...}}), or fails as AWS does for an unknown stack.
- `cloudformation deploy | delete-stack | wait` succeed (the call is recorded).
- `logs filter-log-events` answers the messages of $FAKE_LOGS (a JSON list) as events.
- `cfn-signal` succeeds. Anything else fails, naming the call.
"""

import json
import os
import shutil
import sys
from pathlib import Path


def s3_path(url: str) -> Path:
    return Path(os.environ["FAKE_S3"]) / url[len("s3://"):]


def main() -> int:
    tool, args = os.path.basename(sys.argv[0]), sys.argv[1:]
    with open(os.environ["FAKE_CALLS"], "a") as log:
        log.write(json.dumps({"tool": tool, "args": args}) + "\n")
    if tool == "cfn-signal":
        return 0
    words = [arg for arg in args if arg != "--only-show-errors"]
    if words[:2] == ["s3", "cp"] and len(words) == 4:
        source, target = words[2], words[3]
        if source.startswith("s3://"):
            if not s3_path(source).is_file():
                print("fatal error: An error occurred (404) when calling the HeadObject operation: Key not found", file=sys.stderr)
                return 1
            shutil.copyfile(s3_path(source), target)
        else:
            s3_path(target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, s3_path(target))
        return 0
    if words[:3] == ["s3", "rm", "--recursive"] and len(words) == 4:
        shutil.rmtree(s3_path(words[3]), ignore_errors=True)
        return 0
    if words[:2] == ["cloudformation", "describe-stacks"]:
        name = words[words.index("--stack-name") + 1]
        stacks = json.loads(Path(os.environ["FAKE_STACKS"]).read_text())
        if name not in stacks:
            print(f"An error occurred (ValidationError) when calling the DescribeStacks operation: Stack with id {name} does not exist", file=sys.stderr)
            return 254
        found = stacks[name]
        print(json.dumps({"Stacks": [{
            "StackName": name,
            "Outputs": [{"OutputKey": key, "OutputValue": value} for key, value in found.get("Outputs", {}).items()],
            "Parameters": [{"ParameterKey": key, "ParameterValue": value} for key, value in found.get("Parameters", {}).items()],
        }]}))
        return 0
    if words[:2] in (["cloudformation", "deploy"], ["cloudformation", "delete-stack"], ["cloudformation", "wait"]):
        return 0
    if words[:2] == ["logs", "filter-log-events"]:
        messages = json.loads(Path(os.environ["FAKE_LOGS"]).read_text())
        print(json.dumps({"events": [{"message": message} for message in messages]}))
        return 0
    print(f"fake aws: unexpected call {args}", file=sys.stderr)
    return 1


class FakeAws:
    """For a test: `aws` and `cfn-signal` in `tmp/fakebin`, their S3 in `tmp/s3`, the stacks and
    log messages they answer with, and the calls they record."""

    def __init__(self, tmp: Path, stacks: dict | None = None, logs: list[str] | None = None) -> None:
        self.bin, self.s3, self.record = tmp / "fakebin", tmp / "s3", tmp / "calls.jsonl"
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool in ("aws", "cfn-signal"):
            (self.bin / tool).symlink_to(Path(__file__).resolve())
        self.stacks, self.logs = tmp / "stacks.json", tmp / "logs.json"
        self.stacks.write_text(json.dumps(stacks or {}))
        self.logs.write_text(json.dumps(logs or []))

    def env(self, path: str = "/usr/bin:/bin") -> dict[str, str]:
        """The variables a faked process needs, with the fakes first on `path`."""
        return {"PATH": f"{self.bin}:{path}", "FAKE_S3": str(self.s3), "FAKE_CALLS": str(self.record),
                "FAKE_STACKS": str(self.stacks), "FAKE_LOGS": str(self.logs)}

    def calls(self, tool: str = "aws") -> list[list[str]]:
        """The arguments of each call of `tool`, in order."""
        lines = self.record.read_text().splitlines() if self.record.exists() else []
        return [call["args"] for call in map(json.loads, lines) if call["tool"] == tool]


if __name__ == "__main__":
    sys.exit(main())
