#!/usr/bin/env python3
"""`make deploy-ec2 ENV=dev` / `make delete-ec2 ENV=dev`: the EC2 stack of one environment of
deploy/ec2/samconfig.toml.

deploy: packs the arm64 binary with install.sh and the unit (bundle.sh), uploads the bundle to the
artifact bucket under its SHA-256, and deploys template.yaml with the environment's parameters, the
bundle's key and hash, and any `Name=value` given on the command line (they win). DataBucketName
and DataPrefix default to the Lambda stack's data root of the same environment, so both serve the
same data; ArtifactBucket to the SAM CLI's managed bucket. Prints the endpoint and proxy command.

delete: deletes the stack and the bundles uploaded for it.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from stacks import EC2_CONFIG, LAMBDA_CONFIG, DeployError, aws, environment, output, stack  # noqa: E402

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "template.yaml"
SAM_BUCKET_STACK = "aws-sam-cli-managed-default"


def template_parameters() -> set[str]:
    """The parameter names of template.yaml (the keys under its top-level `Parameters:`)."""
    names, inside = set(), False
    for line in TEMPLATE.read_text().splitlines():
        if re.match(r"^\S", line):
            inside = line.startswith("Parameters:")
        elif inside and (match := re.match(r"^  ([A-Za-z0-9]+):\s*$", line)):
            names.add(match.group(1))
    return names


def parse_overrides(pairs: list[str]) -> dict[str, str]:
    known, overrides = template_parameters(), {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or name not in known:
            raise DeployError(f"`{pair}` is not Name=value of a template parameter ({', '.join(sorted(known))})")
        overrides[name] = value
    return overrides


def deploy(env: str, binary: Path, access: Path | None, pairs: list[str]) -> None:
    settings = environment(EC2_CONFIG, env)
    overrides = parse_overrides(pairs)
    parameters = {**settings.parameters, **overrides}
    if not parameters.get("AllowedCidr"):
        raise DeployError(
            f"set who may connect: AllowedCidr=<your network, e.g. 203.0.113.0/24> on the command line "
            f"(make deploy-ec2 ENV={env} ARGS='AllowedCidr=...') or in deploy/ec2/samconfig.toml [{env}]")
    if not parameters.get("DataBucketName"):
        lambda_stack = environment(LAMBDA_CONFIG, env).stack_name
        data_root = output(stack(lambda_stack, f"deploy it first (make deploy ENV={env}) or pass DataBucketName=..."),
                           "DataRoot")
        match = re.match(r"^s3://([^/]+)/(.*)$", data_root)
        if not match:
            raise DeployError(f"stack {lambda_stack}'s DataRoot {data_root!r} is not s3://bucket/prefix/")
        parameters["DataBucketName"] = match.group(1)
        if "DataPrefix" not in overrides:
            parameters["DataPrefix"] = match.group(2)
        print(f"deploy.py: serving the Lambda stack's data root {data_root}", file=sys.stderr)
    if not parameters.get("ArtifactBucket"):
        parameters["ArtifactBucket"] = output(
            stack(SAM_BUCKET_STACK, "run `make deploy` once (the SAM CLI creates its bucket) or pass ArtifactBucket=..."),
            "SourceBucket")

    with tempfile.TemporaryDirectory() as work:
        bundle = Path(work) / "bundle.tar.gz"
        command = ["bash", str(HERE / "bundle.sh"), str(binary), str(bundle), *([str(access)] if access else [])]
        made = subprocess.run(command, capture_output=True, text=True, timeout=600)
        if made.returncode != 0:
            raise DeployError(f"bundle.sh failed: {made.stderr.strip()}")
        sha256 = made.stdout.strip()
        key = f"mcp-gateway-ec2/{settings.stack_name}/{sha256}.tar.gz"
        print(f"deploy.py: uploading the bundle ({bundle.stat().st_size / 1e6:.1f} MB, sha256 {sha256})", file=sys.stderr)
        aws("s3", "cp", "--only-show-errors", str(bundle), f"s3://{parameters['ArtifactBucket']}/{key}")
    parameters.update(ArtifactKey=key, ArtifactSha256=sha256)

    print(f"deploy.py: deploying {settings.stack_name} (the instance is replaced when the bundle changed)", file=sys.stderr)
    tags = re.findall(r'(\w[\w-]*)="([^"]*)"', settings.tags)
    aws("cloudformation", "deploy", "--template-file", str(TEMPLATE), "--stack-name", settings.stack_name,
        "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset",
        "--parameter-overrides", *[f"{name}={value}" for name, value in sorted(parameters.items())],
        *(["--tags", *[f"{name}={value}" for name, value in tags]] if tags else []))
    deployed = stack(settings.stack_name, "the deploy did not create it")
    for name in ("McpUrl", "ProxyCommand", "InstanceId", "LogGroup"):
        print(f"{name}: {deployed.outputs.get(name, '')}")


def delete(env: str) -> None:
    settings = environment(EC2_CONFIG, env)
    found = stack(settings.stack_name, "nothing to delete")
    bucket = found.parameters.get("ArtifactBucket")
    aws("cloudformation", "delete-stack", "--stack-name", settings.stack_name)
    print(f"deploy.py: deleting {settings.stack_name}", file=sys.stderr)
    aws("cloudformation", "wait", "stack-delete-complete", "--stack-name", settings.stack_name)
    if bucket:
        aws("s3", "rm", "--only-show-errors", "--recursive", f"s3://{bucket}/mcp-gateway-ec2/{settings.stack_name}/")
    print(f"deploy.py: {settings.stack_name} and its bundles are deleted")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["deploy", "delete"])
    parser.add_argument("--env", default="default", help="environment of deploy/ec2/samconfig.toml")
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-lambda-gateway/target"))
    parser.add_argument("--binary", type=Path, default=target / "lambda" / "mcp-gateway" / "bootstrap",
                        help="the arm64 mcp-gateway (default: `make build`'s)")
    parser.add_argument("--access", type=Path, help="an access file replacing the generated [auth.iam] one")
    parser.add_argument("overrides", nargs="*", metavar="Name=value", help="template parameters (win over samconfig)")
    args = parser.parse_intermixed_args()
    try:
        if args.action == "deploy":
            deploy(args.env, args.binary, args.access, args.overrides)
        else:
            if args.overrides:
                raise DeployError("delete takes no parameters")
            delete(args.env)
    except DeployError as error:
        print(f"deploy.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
