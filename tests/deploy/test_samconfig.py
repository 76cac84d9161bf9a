"""samconfig.toml: the default, dev and prod environments are complete (environments do not inherit
from `default`), and every parameter override, parsed by the SAM CLI's own parser, names a template
parameter with a value the template accepts."""

from __future__ import annotations

import re
import tomllib

import pytest
from cfn_model import ROOT

ENVIRONMENTS = ("default", "dev", "prod")


@pytest.fixture(scope="module")
def samconfig() -> dict:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


def overrides(samconfig: dict, env: str) -> dict[str, str]:
    from samcli.cli.types import CfnParameterOverridesType

    raw = samconfig[env]["deploy"]["parameters"]["parameter_overrides"]
    return CfnParameterOverridesType().convert(raw, None, None)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_is_complete(samconfig, env):
    assert env in samconfig, f"samconfig.toml has no [{env}.*] tables"
    stack = samconfig[env]["global"]["parameters"]["stack_name"]
    assert re.fullmatch(r"mcp-lambda-gateway(-[a-z]+)?", stack)
    deploy = samconfig[env]["deploy"]["parameters"]
    assert deploy["capabilities"] == "CAPABILITY_IAM"
    assert deploy["resolve_s3"] is True
    assert samconfig[env]["build"]["parameters"]["use_container"] is False


def test_stack_names_differ(samconfig):
    names = [samconfig[env]["global"]["parameters"]["stack_name"] for env in ENVIRONMENTS]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_parameter_overrides_fit_the_template(samconfig, template, env):
    values = overrides(samconfig, env)
    parameters = template["Parameters"]
    unknown = set(values) - set(parameters)
    assert not unknown, f"{env}: no such template parameters: {unknown}"
    # Every environment sets every parameter it may want to change (SessionSecret stays generated).
    assert set(parameters) - set(values) == {"SessionSecret"}, env
    for name, value in values.items():
        spec = parameters[name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]], f"{env}: {name}={value!r}"
        if "AllowedPattern" in spec:
            assert re.fullmatch(spec["AllowedPattern"], value), f"{env}: {name}={value!r}"
        if spec["Type"] == "Number":
            number = float(value)
            assert spec.get("MinValue", number) <= number <= spec.get("MaxValue", number), f"{env}: {name}"
    assert values["AllowWrite"] == "false", f"{env}: writes are opt-in, per deployment"
