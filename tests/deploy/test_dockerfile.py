"""The Dockerfile's guarantees, checked on its text (no Docker engine needed):
- the image is distroless `cc` (the binary links glibc), tag-pinned, and runs as a numeric non-root
  user (Kubernetes' runAsNonRoot can only verify a number);
- ENTRYPOINT is the binary in exec form, CMD serves the exposed port with authentication on, and
  HEALTHCHECK runs the binary's own `health` (distroless has no curl) within its timeout;
- the build is `cargo build --release --locked` on the workspace's Rust version, and no ENV or
  ARG carries a secret;
- every COPY source exists and is in the build context (not left out by .dockerignore), which
  holds every workspace member and none of target/, .tools/, node_modules, .aws-sam or .git.
Each check is a function returning the problems it finds, and each is also run on a broken copy of
the Dockerfile, so that a check that stopped looking would fail here too."""

from __future__ import annotations

import re
import tomllib

import pytest
from cfn_model import ROOT

import dockerfile as df

BINARY = "/usr/local/bin/mcp-gateway"
RUNTIME_IMAGE = "gcr.io/distroless/cc-debian12"
BUILD_IMAGE = "rust"
SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY", re.I)
# What .dockerignore must keep out of the build context (large, local or secret).
NEVER_IN_CONTEXT = [
    "target/debug/mcp-gateway", ".tools/venv/bin/python", "tests/node_modules/x/index.js", ".aws-sam/build/x",
    "benches/peers/node_modules/x/index.js", ".git/config", "benches/results/REPORT.md", ".env",
    "functions/mcp-gateway/target/x", "functions/mcp-gateway/src/__pycache__/x.pyc",
]


@pytest.fixture(scope="module")
def text() -> str:
    return df.DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def ignore() -> str:
    return df.DOCKERIGNORE.read_text()


def seconds(duration: str) -> float:
    """A Docker duration such as `5s`, `1m30s` or `500ms`."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", duration)
    if not parts or "".join(number + unit for number, unit in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    return sum(float(number) * units[unit] for number, unit in parts)


def health_command_default() -> tuple[str, int]:
    """`mcp-gateway health`'s default URL and timeout, from config.rs (the flag's declaration)."""
    source = (ROOT / "functions/mcp-gateway/src/config.rs").read_text()
    url = re.search(r'env = "MCP_HEALTH_URL", default_value = "([^"]+)"', source)
    timeout = re.search(r'env = "MCP_HEALTH_TIMEOUT", default_value_t = (\d+)', source)
    assert url and timeout, "config.rs no longer declares MCP_HEALTH_URL / MCP_HEALTH_TIMEOUT defaults"
    return url.group(1), int(timeout.group(1))


# ------------------------------------------------------------------------------------ checks


def image_problems(text: str) -> list[str]:
    problems = []
    stages = df.stages(text)
    if len(stages) < 2:
        return [f"{len(stages)} stage(s): build in one stage, run in a distroless one"]
    final = stages[-1]
    image, _, tag = final.image.partition(":")
    if image != RUNTIME_IMAGE:
        problems.append(f"the final stage runs on {final.image}, expected {RUNTIME_IMAGE} (glibc, no shell)")
    if tag != "nonroot" and not tag.startswith("nonroot-"):
        problems.append(f"the final image's tag is {tag!r}: pin a `nonroot` tag")
    rust_version = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    for stage in stages[:-1]:
        image, _, tag = stage.image.partition(":")
        if image == BUILD_IMAGE and not re.fullmatch(rf"{re.escape(rust_version)}(\.\d+)?-(slim-)?bookworm", tag):
            problems.append(f"build image {stage.image}: expected rust:{rust_version}-bookworm (the workspace's "
                            "rust-version, Debian 12 like the runtime's glibc)")
    if not any(stage.image.partition(":")[0] == BUILD_IMAGE for stage in stages[:-1]):
        problems.append("no build stage on the official rust image")
    user = final.last("USER")
    uid = user.args.split(":")[0] if user else ""
    if not uid.isdigit() or int(uid) == 0:
        problems.append(f"the final stage's USER is {uid or 'unset'!r}: a numeric non-root uid (runAsNonRoot)")
    return problems


def entrypoint_problems(text: str) -> list[str]:
    problems = []
    final = df.stages(text)[-1]
    entrypoint = final.last("ENTRYPOINT")
    if not entrypoint or df.exec_form(entrypoint.args) != [BINARY]:
        problems.append(f"ENTRYPOINT must be the exec form [{BINARY!r}]")
    copied = [df.parse_copy(copy).destination for copy in final.all("COPY")]
    if BINARY not in copied:
        problems.append(f"no COPY puts the binary at {BINARY}")
    cmd = df.exec_form(final.last("CMD").args) if final.last("CMD") else None
    if not cmd or cmd[0] != "serve" or "--addr" not in cmd:
        return problems + [f"CMD must be the exec form [\"serve\", \"--addr\", ...], not {cmd!r}"]
    address = cmd[cmd.index("--addr") + 1] if cmd.index("--addr") + 1 < len(cmd) else ""
    host, _, port = address.rpartition(":")
    if host not in ("0.0.0.0", "[::]"):
        problems.append(f"serve listens on {address!r}: a container must listen on every interface")
    exposed = [word.split("/")[0] for expose in final.all("EXPOSE") for word in expose.args.split()]
    if port not in exposed:
        problems.append(f"serve's port {port} is not EXPOSEd ({exposed})")
    if any("insecure" in word for word in cmd) or any(
        key == "MCP_INSECURE_NO_AUTH" for key in final.env()
    ):
        problems.append("the image turns authentication off (--insecure-no-auth / MCP_INSECURE_NO_AUTH)")
    return problems


def healthcheck_problems(text: str) -> list[str]:
    final = df.stages(text)[-1]
    healthcheck = final.last("HEALTHCHECK")
    if not healthcheck:
        return ["no HEALTHCHECK"]
    problems = []
    command = df.healthcheck_command(healthcheck.args)
    if not command or command[:2] != [BINARY, "health"]:
        problems.append(f"HEALTHCHECK must run [{BINARY!r}, 'health', ...] in exec form, not {command!r}")
    options = df.healthcheck_options(healthcheck.args)
    for option in ("interval", "timeout", "start-period", "retries"):
        if option not in options:
            problems.append(f"HEALTHCHECK sets no --{option}")
    url, own_timeout = health_command_default()
    if "timeout" in options and seconds(options["timeout"]) <= own_timeout and "--timeout" not in (command or []):
        problems.append(f"HEALTHCHECK --timeout={options['timeout']} does not leave `health` its {own_timeout} s")
    cmd = df.exec_form(final.last("CMD").args) if final.last("CMD") else []
    port = cmd[cmd.index("--addr") + 1].rpartition(":")[2] if cmd and "--addr" in cmd[:-1] else None
    if command and "--url" not in command and f":{port}/" not in url:
        problems.append(f"`health` GETs {url} by default, but serve listens on port {port}: pass --url")
    return problems


def build_problems(text: str) -> list[str]:
    problems = []
    runs = [run.args for stage in df.stages(text)[:-1] for run in stage.all("RUN")]
    builds = [re.search(r"cargo build[^&;|]*", run) for run in runs]
    builds = [match.group(0) for match in builds if match]
    if not builds:
        return ["no `cargo build` in a build stage"]
    for command in builds:
        words = command.split()
        for required in ("--release", "--locked"):
            if required not in words:
                problems.append(f"`{command.strip()}` lacks {required}")
        if "-p" not in words or words[words.index("-p") + 1 : words.index("-p") + 2] != ["mcp-gateway"]:
            problems.append(f"`{command.strip()}` does not build -p mcp-gateway")
    return problems


def secret_problems(text: str) -> list[str]:
    problems = []
    for stage in df.stages(text):
        for key in stage.env():
            if SECRET_NAME.search(key):
                problems.append(f"ENV {key} in stage {stage.name or stage.image}: secrets come at run time")
        for arg in stage.all("ARG"):
            name = arg.args.split("=")[0]
            if SECRET_NAME.search(name):
                problems.append(f"ARG {name}: build arguments stay in the image history")
    for instruction in df.instructions(text):
        if instruction.keyword == "ARG" and SECRET_NAME.search(instruction.args.split("=")[0]):
            problems.append(f"ARG {instruction.args.split('=')[0]} before FROM: it stays in the image history")
    return problems


def context_problems(text: str, ignore: str) -> list[str]:
    problems = []
    patterns = df.ignore_patterns(ignore)
    stage_names = {stage.name for stage in df.stages(text) if stage.name}
    copied: list[str] = []
    for stage in df.stages(text):
        for instruction in stage.all("COPY") + stage.all("ADD"):
            copy = df.parse_copy(instruction)
            if "from" in copy.flags:
                if copy.flags["from"] not in stage_names:
                    problems.append(f"line {copy.line}: COPY --from={copy.flags['from']} names no stage")
                continue
            for source in copy.sources:
                copied.append(source.rstrip("/"))
                if not (ROOT / source).exists():
                    problems.append(f"line {copy.line}: COPY source {source} does not exist")
                elif df.excluded(source, patterns):
                    problems.append(f"line {copy.line}: COPY source {source} is left out by .dockerignore")
    members = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]["members"]
    for member in members:
        for needed in (f"{member}/Cargo.toml", f"{member}/src"):
            in_a_copy = any(needed == source or needed.startswith(source + "/") for source in copied)
            if not in_a_copy or df.excluded(needed, patterns):
                problems.append(f"workspace member {member}: {needed} is not in the build (cargo reads every member)")
    for path in NEVER_IN_CONTEXT:
        if not df.excluded(path, patterns):
            problems.append(f".dockerignore lets {path} into the build context")
    return problems


# ------------------------------------------------------------------------------------- tests


def test_final_image_is_distroless_cc_pinned_and_non_root(text):
    assert image_problems(text) == []


def test_entrypoint_is_the_binary_and_cmd_serves_the_exposed_port_with_auth_on(text):
    assert entrypoint_problems(text) == []


def test_healthcheck_runs_the_binarys_health_command(text):
    assert healthcheck_problems(text) == []


def test_build_is_release_and_locked(text):
    assert build_problems(text) == []


def test_no_secret_in_env_or_args(text):
    assert secret_problems(text) == []


def test_every_copy_source_is_in_the_build_context(text, ignore):
    assert context_problems(text, ignore) == []


def test_read_only_use_is_documented(text):
    """The header says how to run it read-only and how to give the access file."""
    header = text.split("\nFROM ", 1)[0]
    for words in ("--read-only --tmpfs /tmp", "MCP_ACCESS", "--access", "MCP_INSECURE_NO_AUTH", "MCP_HEALTH_URL"):
        assert words in header, words


# -------------------------------------------------------------- each check catches its breakage


def broken(text: str, old: str, new: str) -> str:
    assert old in text, f"the Dockerfile no longer contains {old!r}: update this test"
    return text.replace(old, new)


@pytest.mark.parametrize(("old", "new"), [
    ("FROM gcr.io/distroless/cc-debian12:nonroot", "FROM gcr.io/distroless/static-debian12:nonroot"),
    ("FROM gcr.io/distroless/cc-debian12:nonroot", "FROM gcr.io/distroless/cc-debian12:latest"),
    ("FROM gcr.io/distroless/cc-debian12:nonroot", "FROM debian:bookworm-slim"),
    ("FROM rust:1.95-bookworm AS build", "FROM rust:latest AS build"),
    ("USER 65532:65532", "USER nonroot"),
    ("USER 65532:65532", "USER 0"),
    ("USER 65532:65532", ""),
])
def test_image_check_catches(text, old, new):
    assert image_problems(broken(text, old, new))


@pytest.mark.parametrize(("old", "new"), [
    ('ENTRYPOINT ["/usr/local/bin/mcp-gateway"]', "ENTRYPOINT /usr/local/bin/mcp-gateway"),
    ("COPY --from=build /out/bin/mcp-gateway /usr/local/bin/mcp-gateway", "COPY --from=build /out/bin/mcp-gateway /bin/"),
    ('CMD ["serve", "--addr", "0.0.0.0:8080"]', 'CMD ["serve", "--addr", "127.0.0.1:8080"]'),
    ('CMD ["serve", "--addr", "0.0.0.0:8080"]', 'CMD ["serve", "--addr", "0.0.0.0:9090"]'),
    ('CMD ["serve", "--addr", "0.0.0.0:8080"]', 'CMD ["serve", "--addr", "0.0.0.0:8080", "--insecure-no-auth"]'),
    ("ENV DATA_ROOT=/data", "ENV DATA_ROOT=/data MCP_INSECURE_NO_AUTH=true"),
    ('CMD ["serve", "--addr", "0.0.0.0:8080"]', "CMD serve --addr 0.0.0.0:8080"),
])
def test_entrypoint_check_catches(text, old, new):
    assert entrypoint_problems(broken(text, old, new))


@pytest.mark.parametrize(("old", "new"), [
    ('CMD ["/usr/local/bin/mcp-gateway", "health"]', "CMD curl -f http://127.0.0.1:8080/health"),
    ('CMD ["/usr/local/bin/mcp-gateway", "health"]', 'CMD ["/usr/local/bin/mcp-gateway", "--version"]'),
    ("--timeout=5s", "--timeout=2s"),
    ("--retries=3 ", ""),
    ('CMD ["serve", "--addr", "0.0.0.0:8080"]', 'CMD ["serve", "--addr", "0.0.0.0:9090"]'),
])
def test_healthcheck_check_catches(text, old, new):
    assert healthcheck_problems(broken(text, old, new))


def test_healthcheck_check_catches_a_missing_healthcheck(text):
    assert healthcheck_problems("\n".join(line for line in text.splitlines() if not line.startswith("HEALTHCHECK")))


@pytest.mark.parametrize(("old", "new"), [
    ("cargo build --release --locked -p mcp-gateway", "cargo build --release -p mcp-gateway"),
    ("cargo build --release --locked -p mcp-gateway", "cargo build --locked -p mcp-gateway"),
    ("cargo build --release --locked -p mcp-gateway", "cargo build --release --locked -p mcp-sigv4-proxy"),
])
def test_build_check_catches(text, old, new):
    assert build_problems(broken(text, old, new))


@pytest.mark.parametrize("line", [
    "ENV MCP_SESSION_SECRET=abc", "ENV MCP_ADMIN_TOKEN=0123456789abcdef", "ENV AWS_SECRET_ACCESS_KEY=x",
    "ARG GITHUB_TOKEN", 'ENV A=1 AWS_ACCESS_KEY_ID="AKIA..."',
])
def test_secret_check_catches(text, line):
    assert secret_problems(broken(text, "ENV DATA_ROOT=/data", f"ENV DATA_ROOT=/data\n{line}"))


@pytest.mark.parametrize(("old", "new", "in_ignore"), [
    ("COPY proxy proxy", "COPY proxy proxy\nCOPY examples/data /data", False),  # excluded by `*`
    ("COPY proxy proxy", "COPY proxy proxy\nCOPY no-such-folder /x", False),
    ("COPY benches/compare benches/compare\n", "", False),  # a workspace member missing
    ("!functions\n", "", True),
    ("**/target\n", "", True),
    ("*\n", "", True),  # no default exclusion: target/, .git, .tools get in
    ("COPY --from=build /out/bin/mcp-gateway", "COPY --from=builder /out/bin/mcp-gateway", False),
])
def test_context_check_catches(text, ignore, old, new, in_ignore):
    if in_ignore:
        assert context_problems(text, broken(ignore, old, new))
    else:
        assert context_problems(broken(text, old, new), ignore)


def test_dockerignore_reader_follows_docker_rules():
    patterns = df.ignore_patterns("*\n!functions\n**/target\n!keep/**/ok\n# a comment\n/.git/\n")
    assert df.excluded("README.md", patterns)
    assert not df.excluded("functions/mcp-gateway/src/lib.rs", patterns)
    assert df.excluded("functions/mcp-gateway/target/debug/x", patterns)
    assert not df.excluded("keep/a/b/ok", patterns)
    assert df.excluded(".git/HEAD", patterns)
