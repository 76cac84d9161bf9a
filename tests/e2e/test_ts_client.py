"""The official TypeScript SDK clients against `serve`: `@modelcontextprotocol/sdk` 1.x in a
2025-11-25 session, and `@modelcontextprotocol/client` 2.x in legacy and 2026-07-28 modes."""

from __future__ import annotations

import json
import subprocess

import pytest

from conftest import DATA, ROOT

FLAVORS = {"sdk1": "2025-11-25", "client2-legacy": "2025-11-25", "client2-modern": "2026-07-28"}


def run_ts_client(node_bin: str, flavor: str, url: str, *extra: str) -> dict:
    proc = subprocess.run(
        [node_bin, str(ROOT / "tests" / "e2e" / "ts_client.mjs"), flavor, url, *extra],
        cwd=ROOT / "tests",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, f"{flavor} failed:\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_ts_result(flavor: str, seen: dict) -> None:
    assert seen["version"] == FLAVORS[flavor], seen
    assert "file" in seen["tools"] and seen["readOnly"] is True
    assert seen["isError"] is False
    assert seen["text"] == (DATA / "sales" / "regions.csv").read_text()
    assert seen["failedIsError"] is True and "relative to the data root" in seen["failedText"]
    if FLAVORS[flavor] == "2025-11-25":
        assert seen["sessionId"], "a 2025-11-25 session gets a (stateless, signed) session id"
    else:
        assert seen["sessionId"] is None, "2026-07-28 has no sessions"


@pytest.mark.parametrize("flavor", list(FLAVORS))
def test_typescript_client(server, node_bin, flavor):
    check_ts_result(flavor, run_ts_client(node_bin, flavor, server.url))
