"""Settings that do not parse stop `mcp-gateway` at start-up, with a message that names the setting,
the bad value and what is allowed, and a non-zero exit, whether the value came from a flag or the
environment, for every subcommand and for the one chosen by default."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import DATA, gateway_bin

# (case id, extra environment, arguments, texts the error must contain)
CASES = [
    # The regression: on Lambda a typo in the response mode started the stdio server instead.
    ("lambda-default-bad-response-mode", {"AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9", "MCP_LAMBDA_RESPONSE_MODE": "streming"}, [],
     ["MCP_LAMBDA_RESPONSE_MODE", "streming", "buffered, streaming"]),
    ("lambda-explicit-bad-response-mode", {}, ["lambda", "--response-mode", "streming"], ["--response-mode", "streming", "buffered, streaming"]),
    ("serve-default-bad-address", {"MCP_ADDR": "localhost"}, [], ["MCP_ADDR", "localhost", "IP:PORT"]),
    ("serve-bad-body-limit", {"MCP_MAX_BODY_BYTES": "12"}, ["serve"], ["MCP_MAX_BODY_BYTES", "12", "1KiB to 1GiB"]),
    ("serve-bad-connection-limit", {}, ["serve", "--max-connections", "0"], ["--max-connections", "0", "1..=65536"]),
    ("serve-bad-header-timeout", {"MCP_HEADER_TIMEOUT": "soon"}, ["serve"], ["MCP_HEADER_TIMEOUT", "soon"]),
    ("stdio-bad-max-rows", {"MAX_ROWS": "0"}, ["stdio"], ["MAX_ROWS", "0", "1..=1000000"]),
    ("stdio-bad-boolean", {"ALLOW_WRITE": "perhaps"}, ["stdio"], ["ALLOW_WRITE", "perhaps", "true, false"]),
    ("stdio-bad-read-limit", {"MAX_READ_BYTES": "lots"}, ["stdio"], ["MAX_READ_BYTES", "lots", "64MiB"]),
    ("index-bad-db-timeout", {"DB_TIMEOUT": "-1"}, ["index"], ["DB_TIMEOUT", "-1"]),
    ("index-bad-sandbox", {"MCP_DB_SANDBOX": "none"}, ["index"], ["MCP_DB_SANDBOX", "none", "seccomp, off"]),
    ("default-bad-db-memory", {"MCP_DB_MEMORY": "1KiB"}, [], ["MCP_DB_MEMORY", "16MiB"]),
    ("default-bad-cache-size", {"MCP_CACHE_MAX_BYTES": "big"}, [], ["MCP_CACHE_MAX_BYTES", "big"]),
    ("default-bad-log-level", {"LOG_LEVEL": "info,["}, [], ["LOG_LEVEL", "info,["]),
    ("bad-rust-log", {"RUST_LOG": "info,["}, ["stdio"], ["RUST_LOG", "info,["]),
    ("bad-heap-limit", {"MCP_HEAP_LIMIT_BYTES": "lots"}, ["stdio"], ["MCP_HEAP_LIMIT_BYTES", "lots", "64MiB"]),
    ("lambda-bad-session-workers", {"MCP_DB_WORKERS": "0"}, ["lambda"], ["MCP_DB_WORKERS", "0", "1..=64"]),
]


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
def test_a_setting_that_does_not_parse_stops_the_program(case):
    _, env, args, expected = case
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MCP_", "RUST_LOG", "LOG_LEVEL"))}
    run = subprocess.run([gateway_bin(), "--data-root", str(DATA), *args], env={**clean, **env},
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert run.returncode == 2, (run.returncode, run.stderr[-2000:])
    for text in expected:
        assert text in run.stderr, (text, run.stderr)
    assert "serving MCP" not in run.stderr, "it started anyway"
    assert run.stdout == "", "nothing on stdout"


def test_good_settings_still_start_the_program():
    run = subprocess.run([gateway_bin(), "--data-root", str(DATA), "--max-read-bytes", "2MiB", "stdio"],
                         env={**os.environ, "ALLOW_WRITE": "yes", "MCP_DB_SANDBOX": "off", "MAX_ROWS": "5"},
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert "serving MCP over stdio" in run.stderr, run.stderr


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_are_answers_not_errors(flag):
    run = subprocess.run([gateway_bin(), flag], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=20)
    assert run.returncode == 0, run.stderr
    assert "mcp-gateway" in run.stdout and run.stderr == ""
