"""A small reader of the repository's Dockerfile and .dockerignore, for the tests that check the
image's shape (tests/deploy/test_dockerfile.py) and start `serve` the way the image does
(tests/e2e/test_health_command.py). It understands what this Dockerfile uses: line continuations,
comments, stages, exec-form (JSON) commands, `ENV KEY=VALUE` pairs, `COPY` flags and sources; and
.dockerignore's patterns (`*`, `?`, `**`, `!` exceptions, the last matching line wins)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # the rest of the logical line, continuations joined
    line: int  # where it starts (1-based)


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [instruction for instruction in self.instructions if instruction.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def env(self) -> dict[str, str]:
        """The stage's ENV, in order (later values win)."""
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            values.update(parse_env(instruction.args))
        return values


def instructions(text: str) -> list[Instruction]:
    """The logical lines of a Dockerfile: comments dropped, `\\` continuations joined."""
    found: list[Instruction] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, args = logical.partition(" ")
        found.append(Instruction(keyword.upper(), args.strip(), start))
    if pending:
        raise ValueError(f"Dockerfile line {start}: the last instruction ends with a continuation")
    return found


def stages(text: str) -> list[Stage]:
    """The build stages, each with its instructions (instructions before the first FROM, such as
    ARG, are dropped)."""
    found: list[Stage] = []
    for instruction in instructions(text):
        if instruction.keyword == "FROM":
            words = [word for word in instruction.args.split() if not word.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            found.append(Stage(words[0], name))
        elif found:
            found[-1].instructions.append(instruction)
    return found


def exec_form(args: str) -> list[str] | None:
    """A JSON array of strings (exec form), or None for the shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    return None


def parse_env(args: str) -> dict[str, str]:
    """`ENV KEY=VALUE [KEY2="VALUE 2" ...]` (or the legacy `ENV KEY VALUE`)."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.split("=", 1) for word in words)


@dataclass
class Copy:
    flags: dict[str, str]
    sources: list[str]
    destination: str
    line: int


def parse_copy(instruction: Instruction) -> Copy:
    rest = instruction.args
    flags: dict[str, str] = {}
    while rest.startswith("--"):
        flag, _, rest = rest.partition(" ")
        name, _, value = flag[2:].partition("=")
        flags[name] = value
        rest = rest.lstrip()
    words = exec_form(rest) or shlex.split(rest)
    if len(words) < 2:
        raise ValueError(f"Dockerfile line {instruction.line}: COPY needs a source and a destination")
    return Copy(flags, words[:-1], words[-1], instruction.line)


def healthcheck_command(args: str) -> list[str] | None:
    """The command of `HEALTHCHECK [OPTIONS] CMD [...]` in exec form (None for shell form or NONE)."""
    _, found, command = args.partition("CMD ")
    return exec_form(command.strip()) if found else None


def healthcheck_options(args: str) -> dict[str, str]:
    options, _, _ = args.partition("CMD ")
    return dict(option[2:].split("=", 1) for option in options.split() if option.startswith("--"))


# ------------------------------------------------------------------------------- .dockerignore


def ignore_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """(exception?, regex) per pattern line, in order."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = line[1:].strip() if exception else line
        pattern = pattern.strip("/")
        patterns.append((exception, re.compile(_glob_regex(pattern))))
    return patterns


def _glob_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return out + r"\Z"


def excluded(path: str, patterns: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """Whether .dockerignore keeps `path` (relative to the context) out of the build context: the
    last pattern that matches the path or one of its parent folders decides."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    verdict = False
    for exception, regex in patterns:
        if any(regex.match(prefix) for prefix in prefixes):
            verdict = not exception
    return verdict
