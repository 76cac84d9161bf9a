"""`cargo lambda watch` (the Lambda runtime emulator) running the real handler, shared by
tests/e2e/test_lambda_watch.py (HTTP API v2 requests from MCP clients) and
tests/deploy/test_invoke_events.py (the saved events through `cargo lambda invoke`).

Standard library and pytest only: the two suites run in different virtualenvs."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
# What cargo lambda prints when the function did not build or exited: no point in waiting on.
BROKEN = ("error: could not compile", "ERROR command exited")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def cargo_lambda_watch(env_vars: dict[str, str], log_path: Path, ready: Callable[[int], bool],
                       timeout: float = 900) -> Iterator[int]:
    """Runs `cargo lambda watch` for mcp-gateway on a free port with `env_vars`, yields the port
    once `ready(port)` holds (the first request builds the function, hence the long timeout), and
    stops the whole process group on exit. Fails the test at once when the build or the function
    fails, with the end of the log."""
    if shutil.which("cargo-lambda") is None:
        pytest.fail("cargo-lambda is not installed; `make tools` installs it into .tools/venv")
    port = free_port()
    # A file, not --env-vars: cargo lambda splits that list at commas, and RUST_LOG has them.
    env_file = log_path.with_suffix(".env")
    # Single-quoted: its dotenv parser refuses unquoted values with `=` or `,` in them.
    env_file.write_text("".join(f"{key}='{value}'\n" for key, value in env_vars.items()))
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(port),
             "--ignore-changes", "--package", "mcp-gateway",
             "--env-file", str(env_file)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + timeout
            while not ready(port):
                log.flush()
                text = log_path.read_text(errors="replace")
                if any(marker in text for marker in BROKEN) or proc.poll() is not None:
                    pytest.fail(f"the function did not build or start under cargo lambda watch:\n{text[-4000:]}")
                if time.monotonic() > deadline:
                    pytest.fail(f"cargo lambda watch never answered on port {port} in {timeout:.0f} s; see {log_path}")
                time.sleep(0.5)
            yield port
        finally:
            stop(proc)


def stop(proc: subprocess.Popen) -> None:
    """Ends cargo lambda watch and the function it started (its process group)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:  # already gone (it failed to start)
        proc.wait()
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
