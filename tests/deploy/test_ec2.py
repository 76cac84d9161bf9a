"""deploy/ec2: the template's guarantees, the systemd unit, and the instance's first boot.

- The template: IMDSv2 only, an encrypted root volume, no SSH, the gateway port never open to the
  internet without the ALB, the role scoped to the bundle, the data prefix and its log group. Each
  check returns the problems it finds and also runs on a broken copy, so a check that stopped
  looking fails here too.
- The unit: `systemd-analyze verify` (with the real binary in ExecStart) says nothing, and the
  hardening is there.
- The user data, run as cloud-init would, with only the AWS calls faked (`aws s3 cp` serves a
  bundle made by bundle.sh from the real debug binary, `cfn-signal` records its exit code): a good
  bundle is installed and the gateway it installed starts from the unit's command line and env file
  and asks callers for IAM credentials; a wrong hash or a tampered bundle installs nothing and
  signals failure.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from fake_aws import FakeAws
import pytest
from cfn_model import Resolver, load_template

ROOT = Path(__file__).resolve().parents[2]
EC2 = ROOT / "deploy" / "ec2"
UNIT = EC2 / "mcp-gateway.service"
PARAMETERS = {
    "AllowedCidr": "198.51.100.0/24",
    "ArtifactBucket": "artifacts",
    "ArtifactKey": "mcp-gateway/ec2/bundle.tar.gz",
    "ArtifactSha256": "0" * 64,
    "DataBucketName": "data-bucket",
}
WITH_ALB = {"CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-aaaa-bbbb-cccc-0123456789ab"}


@pytest.fixture(scope="module")
def ec2_template() -> dict[str, Any]:
    return load_template(EC2 / "template.yaml")


def active(template: dict[str, Any], resolver: Resolver) -> dict[str, dict[str, Any]]:
    """The resources the stack creates for the resolver's parameters, resolved."""
    return {
        name: resolver.resolve(resource)
        for name, resource in template["Resources"].items()
        if "Condition" not in resource or resolver.condition(resource["Condition"])
    }


# ------------------------------------------------------------------------------------ checks


def instance_problems(template: dict[str, Any]) -> list[str]:
    problems = []
    data = template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]
    metadata = data.get("MetadataOptions", {})
    if metadata.get("HttpTokens") != "required":
        problems.append("IMDSv2 is not required (MetadataOptions.HttpTokens)")
    if metadata.get("HttpPutResponseHopLimit") != 1:
        problems.append("IMDS hop limit is not 1")
    volumes = data.get("BlockDeviceMappings", [])
    if not volumes or not all(volume.get("Ebs", {}).get("Encrypted") is True for volume in volumes):
        problems.append("a volume is not encrypted")
    if "KeyName" in data or "KeyName" in template["Resources"]["Instance"]["Properties"]:
        problems.append("an SSH key pair is set (Session Manager is the way in)")
    managed = template["Resources"]["InstanceRole"]["Properties"].get("ManagedPolicyArns", [])
    if not any("AmazonSSMManagedInstanceCore" in json.dumps(arn) for arn in managed):
        problems.append("no Session Manager policy on the instance role")
    if "ResourceSignal" not in template["Resources"]["Instance"].get("CreationPolicy", {}):
        problems.append("the instance has no CreationPolicy: a broken boot would not fail the deploy")
    return problems


def ingress_problems(template: dict[str, Any]) -> list[str]:
    """Nothing but 8080 (from AllowedCidr, or from the ALB when there is one) and the ALB's 443;
    never 0.0.0.0/0 on 8080; and the rule that refuses 0.0.0.0/0 without the ALB is in place."""
    problems = []
    for parameters in ({**PARAMETERS}, {**PARAMETERS, **WITH_ALB}, {**PARAMETERS, **WITH_ALB, "AllowedCidr": "0.0.0.0/0"}):
        resolver = Resolver(template, **parameters)
        alb = resolver.condition("WithAlb")
        rules = []
        for name, resource in active(template, resolver).items():
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                rules.append((name, resource["Properties"]))
            if resource["Type"] == "AWS::EC2::SecurityGroup":
                rules += [(name, rule) for rule in resource["Properties"].get("SecurityGroupIngress", [])]
        for name, rule in rules:
            ports = (rule.get("FromPort"), rule.get("ToPort"))
            source = rule.get("CidrIp") or rule.get("SourceSecurityGroupId")
            if ports == (8080, 8080):
                if alb and source != "<AlbSecurityGroup>":
                    problems.append(f"{name}: with the ALB, 8080 is open to {source}, not only to the ALB")
                if not alb and source != parameters["AllowedCidr"]:
                    problems.append(f"{name}: 8080 is open to {source}, not AllowedCidr")
                if source in ("0.0.0.0/0", "::/0"):
                    problems.append(f"{name}: 8080 open to the internet")
            elif not (alb and ports == (443, 443) and name == "AlbSecurityGroup"):
                problems.append(f"{name}: unexpected ingress {ports} from {source}")
        if not rules:
            problems.append(f"no ingress at all for {parameters}")
    rule = json.dumps(template.get("Rules", {}).get("NoOpenPlainHttp", {}))
    if '"0.0.0.0/0"' not in rule or "CertificateArn" not in rule:
        problems.append("no Rule refusing AllowedCidr 0.0.0.0/0 without a certificate")
    return problems


def role_problems(template: dict[str, Any]) -> list[str]:
    """Every statement names its resources: the bundle object, the data prefix (writes only with
    AllowWrite), the stack's log group."""
    problems = []
    for allow_write in ("false", "true"):
        resolver = Resolver(template, **PARAMETERS, AllowWrite=allow_write)
        role = active(template, resolver)["InstanceRole"]["Properties"]
        actions: set[str] = set()
        for policy in role.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement.get("Effect") != "Allow":
                    continue
                found = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                actions.update(found)
                for action in found:
                    for resource in resources:
                        if action == "s3:GetObject" and resource not in (
                            "arn:aws:s3:::data-bucket/data/*", "arn:aws:s3:::artifacts/mcp-gateway/ec2/bundle.tar.gz"):
                            problems.append(f"s3:GetObject on {resource}")
                        elif action == "s3:ListBucket":
                            prefix = statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix")
                            if resource != "arn:aws:s3:::data-bucket" or prefix != "data/*":
                                problems.append(f"s3:ListBucket on {resource} with prefix {prefix}")
                        elif action in ("s3:PutObject", "s3:DeleteObject") and resource != "arn:aws:s3:::data-bucket/data/*":
                            problems.append(f"{action} on {resource}")
                        elif action.startswith("logs:") and resource != "<GatewayLogGroup.Arn>":
                            problems.append(f"{action} on {resource}")
                        elif not action.startswith(("s3:", "logs:")):
                            problems.append(f"unexpected action {action}")
                        if "*" in resource and not resource.endswith("/data/*"):
                            problems.append(f"{action} on a wildcard {resource}")
        writes = actions & {"s3:PutObject", "s3:DeleteObject"}
        if allow_write == "false" and writes:
            problems.append(f"writes {sorted(writes)} without AllowWrite")
        if allow_write == "true" and not writes:
            problems.append("AllowWrite=true grants no writes")
    return problems


CHECKS = [instance_problems, ingress_problems, role_problems]


@pytest.mark.parametrize("check", CHECKS, ids=[check.__name__ for check in CHECKS])
def test_ec2_template(ec2_template, check):
    assert check(ec2_template) == []


def _break_imds(template):
    template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["MetadataOptions"]["HttpTokens"] = "optional"


def _break_encryption(template):
    template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] = False


def _open_8080(template):
    template["Resources"]["InstanceIngressDirect"]["Properties"]["CidrIp"] = "0.0.0.0/0"


def _open_ssh(template):
    template["Resources"]["InstanceSecurityGroup"]["Properties"]["SecurityGroupIngress"] = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": {"Ref": "AllowedCidr"}}]


def _alb_bypassed(template):
    template["Resources"]["InstanceIngressDirect"].pop("Condition")


def _drop_rule(template):
    template.pop("Rules")


def _read_whole_bucket(template):
    statement = template["Resources"]["InstanceRole"]["Properties"]["Policies"][1]["PolicyDocument"]["Statement"][1]
    statement["Resource"] = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${DataBucketName}/*"}


def _writes_always(template):
    statement = template["Resources"]["InstanceRole"]["Properties"]["Policies"][1]["PolicyDocument"]["Statement"]
    statement[2] = statement[2]["Fn::If"][1]


def _logs_anywhere(template):
    template["Resources"]["InstanceRole"]["Properties"]["Policies"][2]["PolicyDocument"]["Statement"][0]["Resource"] = "*"


BREAKS = [
    (instance_problems, _break_imds), (instance_problems, _break_encryption), (ingress_problems, _open_8080),
    (ingress_problems, _open_ssh), (ingress_problems, _alb_bypassed), (ingress_problems, _drop_rule),
    (role_problems, _read_whole_bucket), (role_problems, _writes_always), (role_problems, _logs_anywhere),
]


@pytest.mark.parametrize(("check", "damage"), BREAKS, ids=[damage.__name__.strip("_") for _, damage in BREAKS])
def test_each_check_fails_on_a_broken_template(ec2_template, check, damage):
    broken = copy.deepcopy(ec2_template)
    damage(broken)
    assert check(broken) != [], f"{check.__name__} found nothing wrong after {damage.__name__}"


# ------------------------------------------------------------------------------------ the unit


def unit_directives(text: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            directives.setdefault(key.strip(), []).append(value.strip())
    return directives


def test_the_unit_is_hardened_and_runs_serve_with_the_installed_files():
    directives = unit_directives(UNIT.read_text())
    for key, value in {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
        "PrivateTmp": "yes", "CapabilityBoundingSet": "", "RestrictNamespaces": "yes", "MemoryDenyWriteExecute": "yes",
        "EnvironmentFile": "/etc/mcp-gateway/gateway.env", "Restart": "on-failure", "KillSignal": "SIGTERM",
        "LoadCredential": "access.toml:/etc/mcp-gateway/access.toml",
    }.items():
        assert directives.get(key) == [value], (key, directives.get(key))
    command = shlex.split(directives["ExecStart"][0])
    assert command[0] == "/usr/local/bin/mcp-gateway" and command[-1] == "serve", command
    # The access file is root's alone (0600): the dynamic user reads systemd's copy of it.
    assert command[1:3] == ["--access", "%d/access.toml"], command
    assert not any(part.startswith("/etc/") for part in command), command
    # systemd opens the log file before it would create a LogsDirectory (systemd#27591):
    # install.sh makes the folder.
    assert "LogsDirectory" not in directives
    assert 'install -d -m 0750 "$root/var/log/mcp-gateway"' in (EC2 / "install.sh").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_finds_nothing(tmp_path, gateway_binary):
    unit = tmp_path / "mcp-gateway.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/mcp-gateway", gateway_binary))
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
    # It does report what it does not understand (so the empty answer above means something).
    unit.write_text(unit.read_text().replace("ProtectSystem=strict", "ProtectSytem=strict"))
    run = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert "ProtectSytem" in run.stderr


# ------------------------------------------------------------------------------ the first boot


@pytest.fixture(scope="module")
def gateway_binary() -> str:
    """The federation-only debug build: the same program and the same `serve`, IAM door and unit
    as the full one, at a fifth of its size (bundling the full debug binary takes a minute)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-lambda-gateway/target"))
    path = os.environ.get("MCP_GATEWAY_FEDERATION_BIN") or str(target / "debug" / "mcp-gateway-federation")
    if not Path(path).exists():
        pytest.fail(f"the federation-only mcp-gateway is not built ({path}); `make deploy-test` builds it")
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, gateway_binary) -> tuple[Path, str]:
    """One bundle of the debug binary (400+ MB: made once), and its SHA-256 as bundle.sh prints it."""
    path = tmp_path_factory.mktemp("bundle") / "bundle.tar.gz"
    made = subprocess.run(["bash", str(EC2 / "bundle.sh"), gateway_binary, str(path)], capture_output=True,
                          text=True, timeout=300, check=True)
    return path, made.stdout.strip()


class FirstBoot:
    """A fake S3 with a bundle in it, and the template's user data for it."""

    def __init__(self, tmp: Path, template: dict[str, Any], bundle: tuple[Path, str]) -> None:
        self.tmp, self.template = tmp, template
        self.bundle, self.sha256 = bundle
        self.key = f"mcp-gateway/ec2/{self.sha256}.tar.gz"
        self.aws = FakeAws(tmp)
        (self.aws.s3 / "artifacts" / "mcp-gateway" / "ec2").mkdir(parents=True)
        shutil.copyfile(self.bundle, self.aws.s3 / "artifacts" / self.key)
        (self.aws.bin / "sleep").symlink_to("/bin/true")  # the download's retries wait for nothing here
        self.root = tmp / "root"

    def user_data(self, sha256: str, **parameters: str) -> str:
        resolver = Resolver(self.template, **{**PARAMETERS, "ArtifactKey": self.key, "ArtifactSha256": sha256, **parameters})
        data = self.template["Resources"]["LaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
        script = resolver.resolve(data["Fn::Base64"])
        return script.replace("<GatewayLogGroup>", "/mcp-gateway/stack")

    def boot(self, sha256: str, **parameters: str) -> subprocess.CompletedProcess:
        script = self.tmp / "user-data.sh"
        script.write_text(self.user_data(sha256, **parameters))
        env = {**self.aws.env(), "MCP_INSTALL_ROOT": str(self.root), "HOME": str(self.tmp)}
        return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=120, env=env)

    def signals(self) -> list[str]:
        return [args[args.index("--exit-code") + 1] for args in self.aws.calls("cfn-signal")]


@pytest.fixture
def first_boot(tmp_path, ec2_template, bundle) -> FirstBoot:
    return FirstBoot(tmp_path, ec2_template, bundle)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_first_boot_installs_the_checked_bundle_and_the_gateway_asks_for_iam(first_boot):
    run = first_boot.boot(first_boot.sha256)
    assert run.returncode == 0, run.stderr
    aws = first_boot.aws.calls()
    assert aws == [["s3", "cp", "--only-show-errors", f"s3://artifacts/{first_boot.key}", aws[0][-1]]], aws
    assert first_boot.signals() == ["0"]
    root = first_boot.root
    assert (root / "usr/local/bin/mcp-gateway").stat().st_mode & 0o111
    assert (root / "etc/systemd/system/mcp-gateway.service").read_text() == UNIT.read_text()
    access = (root / "etc/mcp-gateway/access.toml").read_text()
    assert 'gateway_id = "stack"' in access and 'accounts = ["123456789012"]' in access, access
    assert (root / "etc/mcp-gateway/access.toml").stat().st_mode & 0o077 == 0
    env = dict(line.split("=", 1) for line in (root / "etc/mcp-gateway/gateway.env").read_text().splitlines())
    assert env["DATA_ROOT"] == "s3://data-bucket/data/" and env["ALLOW_WRITE"] == "false", env
    assert env["MCP_HEADER_TIMEOUT"] == "10" and re.fullmatch(r"\d+MiB", env["MCP_DB_MEMORY"]), env
    assert (root / "var/log/mcp-gateway").is_dir()
    agent = json.loads((root / "opt/aws/amazon-cloudwatch-agent/etc/mcp-gateway.json").read_text())
    shipped = agent["logs"]["logs_collected"]["files"]["collect_list"][0]
    assert shipped["log_group_name"] == "/mcp-gateway/stack", shipped
    assert "would run: systemctl enable --now mcp-gateway.service" in run.stdout, run.stdout

    # Start what was installed the way the unit does: its command line, its env file (on a
    # loopback port here), and see it answer /health and ask MCP callers for IAM credentials.
    command = shlex.split(unit_directives(UNIT.read_text())["ExecStart"][0])
    credentials = str(root / "etc/mcp-gateway")  # what systemd's %d holds: LoadCredential's copy
    command = [part.replace("%d", credentials) for part in command]
    command = [str(root) + part if part.startswith("/usr/") else part for part in command]
    port = free_port()
    env.update(MCP_ADDR=f"127.0.0.1:{port}", PATH="/usr/bin:/bin", AWS_EC2_METADATA_DISABLED="true")
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_for(f"http://127.0.0.1:{port}/health", server)
        assert health["status"] == "ok", health
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/mcp", method="POST",
            data=b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
            headers={"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
                     "MCP-Protocol-Version": "2026-07-28", "Host": "gateway.example.com"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 401, refused.value.read()
        assert "mcp-sigv4-proxy --auth sts" in refused.value.read().decode()
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_for(url: str, server: subprocess.Popen) -> dict:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the installed gateway exited: {server.stderr.read() if server.stderr else ''}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"{url} did not answer within 30 s")


def test_behind_the_alb_idle_connections_outlive_the_albs(first_boot):
    run = first_boot.boot(first_boot.sha256, **WITH_ALB)
    assert run.returncode == 0, run.stderr
    env = (first_boot.root / "etc/mcp-gateway/gateway.env").read_text()
    assert "MCP_HEADER_TIMEOUT=910\n" in env, env
    attributes = first_boot.template["Resources"]["LoadBalancer"]["Properties"]["LoadBalancerAttributes"]
    idle = [a["Value"] for a in attributes if a["Key"] == "idle_timeout.timeout_seconds"]
    assert idle == ["900"], "the gateway's keep-alive (910 s) must outlast the ALB's idle timeout"


def test_first_boot_refuses_a_bundle_with_another_hash(first_boot):
    wrong = "f" * 64
    run = first_boot.boot(wrong)
    assert run.returncode != 0
    assert f"not {wrong}; not installing it" in run.stderr and first_boot.sha256 in run.stderr, run.stderr
    assert first_boot.signals() == ["1"]
    assert not (first_boot.root / "usr/local/bin/mcp-gateway").exists()


def test_first_boot_refuses_a_bundle_changed_after_it_was_hashed(first_boot):
    stored = first_boot.aws.s3 / "artifacts" / first_boot.key
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0x01
    stored.write_bytes(bytes(data))
    run = first_boot.boot(first_boot.sha256)
    assert run.returncode != 0 and "not installing it" in run.stderr, run.stderr
    assert first_boot.signals() == ["1"]
    assert not (first_boot.root / "usr/local/bin").exists()


def test_first_boot_signals_failure_when_the_bundle_is_missing(first_boot):
    (first_boot.aws.s3 / "artifacts" / first_boot.key).unlink()
    run = first_boot.boot(first_boot.sha256)
    assert run.returncode != 0 and "Key not found" in run.stderr, run.stderr
    assert first_boot.signals() == ["1"]
    downloads = first_boot.aws.calls()
    assert len(downloads) == 5, "tried five times (a new role's permissions take a moment)"


def test_install_refuses_values_that_would_break_out_of_the_config(first_boot):
    unpacked = first_boot.tmp / "unpacked"
    unpacked.mkdir()
    subprocess.run(["tar", "-xzf", str(first_boot.bundle), "-C", str(unpacked)], check=True, timeout=60)
    install = unpacked / "mcp-gateway-bundle" / "install.sh"
    good = {"--data-root": "s3://data-bucket/data/", "--gateway-id": "gw", "--region": "us-east-1"}
    env = {"PATH": "/usr/bin:/bin", "MCP_INSTALL_ROOT": str(first_boot.tmp / "installed")}

    def install_with(flag: str, value: str) -> subprocess.CompletedProcess:
        arguments = [part for pair in {**good, flag: value}.items() for part in pair]
        return subprocess.run(["bash", str(install), *arguments], capture_output=True, text=True, timeout=60, env=env)

    for flag, value in [("--gateway-id", 'gw"\n[auth.jwt]'), ("--data-root", "s3://b/../x/"), ("--region", "us-east-1;id"),
                        ("--accounts", "12345"), ("--allowed-hosts", "a'b"), ("--allow-write", "yes")]:
        run = install_with(flag, value)
        assert run.returncode == 2 and flag in run.stderr, (flag, value, run.stderr)
    run = install_with("--accounts", "111111111111,222222222222")
    assert run.returncode == 0, run.stderr
    access = (first_boot.tmp / "installed/etc/mcp-gateway/access.toml").read_text()
    assert 'accounts = ["111111111111", "222222222222"]' in access, access


def test_bundles_are_reproducible(tmp_path):
    program = tmp_path / "program"
    shutil.copyfile("/bin/true", program)
    program.chmod(0o755)
    hashes = []
    for n in range(2):
        made = subprocess.run(["bash", str(EC2 / "bundle.sh"), str(program), str(tmp_path / f"{n}.tar.gz")],
                              capture_output=True, text=True, timeout=120, check=True)
        hashes.append(made.stdout.strip())
        program.touch()  # a newer time must not change the bytes
    assert hashes[0] == hashes[1] and len(hashes[0]) == 64, hashes
    listed = subprocess.run(["tar", "-tzvf", str(tmp_path / "0.tar.gz")], capture_output=True, text=True, check=True).stdout
    assert "mcp-gateway-bundle/install.sh" in listed and "mcp-gateway-bundle/mcp-gateway.service" in listed, listed


# ------------------------------------------------------------------------- deploy.py, samconfig

sys.path.insert(0, str(ROOT / "deploy"))
from stacks import EC2_CONFIG, environment  # noqa: E402


def test_every_environment_sets_only_template_parameters(ec2_template):
    import tomllib
    names = [name for name, value in tomllib.loads(EC2_CONFIG.read_text()).items() if isinstance(value, dict)]
    assert names == ["default", "dev", "prod"], names
    stacks = set()
    for name in names:
        settings = environment(EC2_CONFIG, name)
        unknown = set(settings.parameters) - set(ec2_template["Parameters"])
        assert not unknown, (name, unknown)
        for parameter, value in settings.parameters.items():
            pattern = ec2_template["Parameters"][parameter].get("AllowedPattern")
            allowed = ec2_template["Parameters"][parameter].get("AllowedValues")
            assert pattern is None or re.fullmatch(pattern, value), (name, parameter, value)
            assert allowed is None or value in [str(a) for a in allowed], (name, parameter, value)
        stacks.add(settings.stack_name)
    assert len(stacks) == 3, stacks


class DeployScript:
    """deploy/ec2/deploy.py with the AWS CLI faked: stacks that exist answer describe-stacks."""

    def __init__(self, tmp: Path, stacks: dict) -> None:
        self.aws = FakeAws(tmp, stacks)
        self.binary = tmp / "mcp-gateway"
        shutil.copyfile("/bin/true", self.binary)
        self.binary.chmod(0o755)
        self.env = {**self.aws.env(), "HOME": str(tmp)}

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(EC2 / "deploy.py"), *args], capture_output=True, text=True,
                              timeout=120, env=self.env)

    def calls(self, *prefix: str) -> list[list[str]]:
        return [call for call in self.aws.calls() if call[:len(prefix)] == list(prefix)]


LAMBDA_DEV = {"Outputs": {"DataRoot": "s3://lambda-data/shared/"}}
SAM_BUCKET = {"Outputs": {"SourceBucket": "sam-managed"}}
EC2_DEV = {"Outputs": {"McpUrl": "http://ec2-198-51-100-7.compute-1.amazonaws.com:8080/mcp", "InstanceId": "i-0abc"},
           "Parameters": {"ArtifactBucket": "sam-managed"}}


def test_deploy_uploads_the_bundle_under_its_hash_and_serves_the_lambda_stacks_data(tmp_path):
    script = DeployScript(tmp_path, {"mcp-lambda-gateway-dev": LAMBDA_DEV, "aws-sam-cli-managed-default": SAM_BUCKET,
                                     "mcp-gateway-ec2-dev": EC2_DEV})
    run = script.run("deploy", "--env", "dev", "--binary", str(script.binary), "AllowedCidr=198.51.100.0/24",
                     "InstanceType=c7g.medium")
    assert run.returncode == 0, run.stderr
    uploaded = list((tmp_path / "s3" / "sam-managed" / "mcp-gateway-ec2" / "mcp-gateway-ec2-dev").iterdir())
    assert len(uploaded) == 1, uploaded
    sha256 = hashlib.sha256(uploaded[0].read_bytes()).hexdigest()
    assert uploaded[0].name == f"{sha256}.tar.gz"
    (deploy,) = script.calls("cloudformation", "deploy")
    assert deploy[deploy.index("--stack-name") + 1] == "mcp-gateway-ec2-dev"
    overrides = deploy[deploy.index("--parameter-overrides") + 1:deploy.index("--tags")]
    assert dict(item.split("=", 1) for item in overrides) == {
        "AllowedCidr": "198.51.100.0/24", "InstanceType": "c7g.medium", "AllowWrite": "false",
        "LogLevel": "info,rmcp=warn,mcp_gateway=debug", "LogRetentionDays": "7", "DataBucketName": "lambda-data",
        "DataPrefix": "shared/", "ArtifactBucket": "sam-managed",
        "ArtifactKey": f"mcp-gateway-ec2/mcp-gateway-ec2-dev/{sha256}.tar.gz", "ArtifactSha256": sha256,
    }
    assert deploy[deploy.index("--tags") + 1:] == ["project=mcp-lambda-gateway", "environment=dev"]
    assert "McpUrl: http://ec2-198-51-100-7.compute-1.amazonaws.com:8080/mcp" in run.stdout, run.stdout


@pytest.mark.parametrize(("args", "stacks", "message"), [
    ([], {"mcp-lambda-gateway-dev": LAMBDA_DEV}, "set who may connect: AllowedCidr="),
    (["AllowedCidr=10.0.0.0/8", "InstanceSize=big"], {}, "`InstanceSize=big` is not Name=value of a template parameter"),
    (["AllowedCidr=10.0.0.0/8"], {"aws-sam-cli-managed-default": SAM_BUCKET},
     "no stack mcp-lambda-gateway-dev: deploy it first (make deploy ENV=dev) or pass DataBucketName=..."),
    (["AllowedCidr=10.0.0.0/8"], {"mcp-lambda-gateway-dev": LAMBDA_DEV}, "run `make deploy` once"),
])
def test_deploy_explains_what_is_missing_before_uploading_anything(tmp_path, args, stacks, message):
    script = DeployScript(tmp_path, stacks)
    run = script.run("deploy", "--env", "dev", "--binary", str(script.binary), *args)
    assert run.returncode == 1 and message in run.stderr, run.stderr
    assert script.calls("s3") == [] and script.calls("cloudformation", "deploy") == []


def test_delete_removes_the_stack_and_its_bundles(tmp_path):
    script = DeployScript(tmp_path, {"mcp-gateway-ec2-dev": EC2_DEV})
    bundles = tmp_path / "s3" / "sam-managed" / "mcp-gateway-ec2" / "mcp-gateway-ec2-dev"
    bundles.mkdir(parents=True)
    (bundles / "old.tar.gz").write_bytes(b"old")
    run = script.run("delete", "--env", "dev")
    assert run.returncode == 0, run.stderr
    assert script.calls("cloudformation", "delete-stack") == [["cloudformation", "delete-stack", "--stack-name", "mcp-gateway-ec2-dev"]]
    assert script.calls("cloudformation", "wait") and not bundles.exists()
