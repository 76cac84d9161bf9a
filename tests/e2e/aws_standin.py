"""The SigV4-verifying API Gateway stand-in (tests/apigw-standin) and AWS credentials for the
processes that sign requests to it: shared by the proxy and `mcp-compare` tests."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import free_port

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # 40 characters, like a real AWS secret
OTHER_KEY = "AKIAI44QH8DHBEXAMPLE"
OTHER_SECRET = "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"
TOKEN = "FQoGZXIvYXdzEXAMPLETOKEN"


def binary(env_name: str, name: str) -> str:
    path = os.environ.get(env_name) or str(Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/mcp-lambda-gateway/target")) / "debug" / name)
    if not Path(path).exists():
        pytest.fail(f"{name} is not built ({path}); `make e2e` builds it")
    return path


class StandIn:
    """The API Gateway stand-in process, with a credentials file tests can rewrite."""

    def __init__(self, tmp: Path, upstream: str, credentials: dict) -> None:
        self.credentials_path = tmp / f"standin-credentials-{free_port()}.json"
        self.set_credentials(credentials)
        self.port = free_port()
        self.log_path = tmp / f"standin-{self.port}.log"
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary("APIGW_STANDIN_BIN", "apigw-standin"), "--listen", f"127.0.0.1:{self.port}", "--upstream", upstream,
             "--credentials", str(self.credentials_path)],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
        )
        line = self.proc.stdout.readline()
        assert line.startswith("listening on "), line
        self.url = line.split()[-1]
        self.base = self.url.rsplit("/", 2)[0]

    def set_credentials(self, credentials: dict) -> None:
        tmp = self.credentials_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(credentials))
        tmp.replace(self.credentials_path)

    def throttle(self, n: int) -> None:
        httpx.post(f"{self.base}/_standin/throttle", params={"n": n})

    def verified(self) -> int:
        return httpx.get(f"{self.base}/_standin/stats").json()["verified"]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._log.close()


def aws_env(tmp: Path, key: str = ACCESS_KEY, secret: str = SECRET, token: str | None = None, **extra: str) -> dict:
    empty = tmp / "empty-aws-config"
    empty.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret, "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty), "AWS_SHARED_CREDENTIALS_FILE": str(empty), "AWS_EC2_METADATA_DISABLED": "true",
    })
    if token:
        env["AWS_SESSION_TOKEN"] = token
    env.update(extra)
    return env
