"""The deployed stacks, as `make deploy-ec2` and `make compare` see them: the samconfig-style
environments of this repository (samconfig.toml for Lambda, deploy/ec2/samconfig.toml for EC2) and
the stacks' outputs, read with the AWS CLI (`aws`, with the usual credentials and region)."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAMBDA_CONFIG = ROOT / "samconfig.toml"
EC2_CONFIG = ROOT / "deploy" / "ec2" / "samconfig.toml"
OVERRIDE = re.compile(r'^([A-Za-z0-9]+)="(.*)"$')


class DeployError(Exception):
    """A problem the user can act on; the scripts print it and exit 1."""


@dataclass
class Environment:
    stack_name: str
    parameters: dict[str, str]
    tags: str


def environment(config: Path, env: str) -> Environment:
    """The environment `env` of a samconfig-style file."""
    try:
        settings = tomllib.loads(config.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise DeployError(f"cannot read {config}: {error}") from error
    if env not in settings or not isinstance(settings[env], dict):
        known = ", ".join(name for name, value in settings.items() if isinstance(value, dict))
        raise DeployError(f"{config.name} has no environment `{env}` (it has: {known})")
    stack = settings[env].get("global", {}).get("parameters", {}).get("stack_name")
    deploy = settings[env].get("deploy", {}).get("parameters", {})
    if not stack:
        raise DeployError(f"{config.name} [{env}.global.parameters] has no stack_name")
    parameters = {}
    for override in deploy.get("parameter_overrides", []):
        match = OVERRIDE.match(override)
        if not match:
            raise DeployError(f'{config.name} [{env}]: parameter override {override!r} is not Name="value"')
        parameters[match.group(1)] = match.group(2)
    return Environment(stack, parameters, deploy.get("tags", ""))


def aws(*args: str) -> str:
    """Runs the AWS CLI and returns its output; a failure says which call and why."""
    try:
        # A deploy waits for the instance's signal (up to 15 minutes) and, on failure, a rollback.
        run = subprocess.run(["aws", *args], capture_output=True, text=True, timeout=3600)
    except FileNotFoundError as error:
        raise DeployError("the AWS CLI (`aws`) is not installed: https://aws.amazon.com/cli/") from error
    except subprocess.TimeoutExpired as error:
        raise DeployError(f"`aws {' '.join(args[:2])}` took more than an hour") from error
    if run.returncode != 0:
        raise DeployError(f"`aws {' '.join(args[:2])}` failed: {run.stderr.strip() or run.stdout.strip()}")
    return run.stdout


@dataclass
class Stack:
    name: str
    outputs: dict[str, str]
    parameters: dict[str, str]


def stack(name: str, hint: str) -> Stack:
    """The stack's outputs and parameters; `hint` says how to create it when it does not exist."""
    try:
        answer = json.loads(aws("cloudformation", "describe-stacks", "--stack-name", name, "--output", "json"))
    except DeployError as error:
        if "does not exist" in str(error):
            raise DeployError(f"no stack {name}: {hint}") from error
        raise
    except json.JSONDecodeError as error:
        raise DeployError(f"describe-stacks answered something that is not JSON: {error}") from error
    found = answer.get("Stacks") or [{}]
    return Stack(
        name,
        {item["OutputKey"]: item["OutputValue"] for item in found[0].get("Outputs", [])},
        {item["ParameterKey"]: item.get("ParameterValue", "") for item in found[0].get("Parameters", [])},
    )


def output(stack: Stack, key: str) -> str:
    if not stack.outputs.get(key):
        raise DeployError(f"stack {stack.name} has no output {key}; is it this repository's template?")
    return stack.outputs[key]
