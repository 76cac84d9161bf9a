"""The official MCP conformance suite's fixture-free server scenarios against `serve`."""

from __future__ import annotations

import re
import subprocess

import pytest

from conftest import ROOT

SCENARIOS = ["server-initialize", "ping", "tools-list", "server-sse-multiple-streams", "dns-rebinding-protection"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario(server, node_bin, scenario, tmp_path):
    cli = ROOT / "tests" / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    proc = subprocess.run(
        [node_bin, str(cli), "server", "--url", server.url, "--scenario", scenario],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    match = re.search(r"Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings", output)
    assert match, output
    passed, total, failed, warnings = map(int, match.groups())
    assert passed == total and total > 0 and failed == 0 and warnings == 0, output
