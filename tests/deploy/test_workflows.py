"""The GitHub workflows: least-privilege permissions, actions pinned to full commit SHAs, AWS
credentials only through OIDC, and the checkov suppression file gives a reason for each skip.
(actionlint and shellcheck check the rest in `make lint-iac`.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from cfn_model import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
AWS_JOBS = {("deploy.yml", "deploy"), ("cleanup.yml", "cleanup"), ("deploy-ec2.yml", "deploy-ec2")}


def load(path: Path) -> dict:
    workflow = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    workflow["on"] = workflow.pop(True, workflow.get("on"))
    return workflow


def test_the_four_workflows_exist():
    assert {p.name for p in WORKFLOWS} == {"ci.yml", "deploy.yml", "cleanup.yml", "deploy-ec2.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_least_privilege_permissions(path):
    workflow = load(path)
    assert workflow.get("permissions") == {"contents": "read"}, "top-level permissions must be read-only"
    for name, job in workflow["jobs"].items():
        permissions = job.get("permissions", workflow["permissions"])
        assert isinstance(permissions, dict), f"{name}: permissions must be a map, not {permissions!r}"
        expected = {"contents": "read"}
        if (path.name, name) in AWS_JOBS:
            expected["id-token"] = "write"
        assert permissions == expected, f"{path.name} {name}: {permissions}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actions_are_pinned_to_commit_shas(path):
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = re.search(r"uses:\s*([^\s#]+)(.*)", line)
        if not match:
            continue
        action, rest = match.groups()
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), f"{path.name}:{number}: {action} is not pinned to a SHA"
        assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}:{number}: say which release the SHA is"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_stored_aws_keys(path):
    text = path.read_text()
    assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text
    assert "secrets." not in text, "AWS access comes from OIDC and variables, not secrets"


def test_deploy_uses_oidc_with_a_role_from_a_variable():
    workflow = load(ROOT / ".github" / "workflows" / "deploy.yml")
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert "environment" in workflow["on"]["workflow_dispatch"]["inputs"]
    steps = workflow["jobs"]["deploy"]["steps"]
    (credentials,) = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "make sam-build" in scripts and "deploy --config-env" in scripts
    assert "doctor --endpoint" in scripts and '"method":"tools/call"' in scripts


def test_deploy_ec2_is_manual_and_uses_oidc():
    workflow = load(ROOT / ".github" / "workflows" / "deploy-ec2.yml")
    assert set(workflow["on"]) == {"workflow_dispatch"}
    assert set(workflow["on"]["workflow_dispatch"]["inputs"]) == {"environment", "action", "allowed_cidr"}
    steps = workflow["jobs"]["deploy-ec2"]["steps"]
    (credentials,) = [s for s in steps if "configure-aws-credentials" in s.get("uses", "")]
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    scripts = "\n".join(s.get("run", "") for s in steps)
    assert "make deploy-ec2" in scripts and "deploy.py delete" in scripts
    assert "--auth sts --gateway-id" in scripts and '"method":"tools/call"' in scripts


def test_cleanup_triggers_and_sam_delete():
    workflow = load(ROOT / ".github" / "workflows" / "cleanup.yml")
    assert set(workflow["on"]) == {"pull_request", "schedule", "workflow_dispatch"}
    assert workflow["on"]["pull_request"]["types"] == ["closed"]
    scripts = "\n".join(s.get("run", "") for s in workflow["jobs"]["cleanup"]["steps"])
    assert "sam delete" in scripts and "--no-prompts" in scripts


def test_every_checkov_skip_has_a_reason():
    lines = (ROOT / ".checkov.yaml").read_text().splitlines()
    config = yaml.safe_load("\n".join(lines))
    skips = config["skip-check"]
    assert skips, "no skips: drop this test's expectations too"
    for index, line in enumerate(lines):
        match = re.fullmatch(r"\s*-\s*(CKV\w+)\s*", line)
        if match:
            assert lines[index - 1].strip().startswith("#"), f"{match.group(1)} has no reason above it"
    listed = [m.group(1) for line in lines if (m := re.fullmatch(r"\s*-\s*(CKV\w+)\s*", line))]
    assert listed == skips
