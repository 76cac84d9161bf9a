"""A Lambda Runtime API on 127.0.0.1 for the real `mcp-gateway lambda` binary: it hands the
function one queued event per `GET /runtime/invocation/next` and records what the function posts
back, so tests can send API Gateway events to the binary exactly as Lambda would."""

from __future__ import annotations

import itertools
import json
import os
import queue
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import LoggedProcess

PREFIX = "/2018-06-01/runtime"


class LambdaRuntime(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.events: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
        self.answers: dict[str, tuple[str, bytes]] = {}
        self.answered = threading.Condition()
        self.ids = itertools.count(1)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:  # polls are cut when the function stops
        pass

    def invoke(self, event: dict | bytes, timeout: float = 60, deadline_ms: int = 30_000) -> tuple[str, dict | bytes]:
        """Queues `event` and waits for the function's answer: ("response", the API Gateway
        response as JSON) or ("error", the error body)."""
        request_id = f"req-{next(self.ids)}"
        body = event if isinstance(event, bytes) else json.dumps(event).encode()
        self.events.put((request_id, body, int(time.time() * 1000) + deadline_ms))
        end = time.monotonic() + timeout
        with self.answered:
            while request_id not in self.answers:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the function did not answer {request_id} within {timeout} s")
                self.answered.wait(left)
            kind, raw = self.answers.pop(request_id)
        try:
            return kind, json.loads(raw)
        except json.JSONDecodeError:
            return kind, raw

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LambdaRuntime

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != f"{PREFIX}/invocation/next":
            self.send_error(404)
            return
        try:
            request_id, body, deadline = self.server.events.get(timeout=300)
        except queue.Empty:
            self.send_error(504)
            return
        self.send_response(200)
        for key, value in (("Lambda-Runtime-Aws-Request-Id", request_id), ("Lambda-Runtime-Deadline-Ms", str(deadline)),
                           ("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:test"),
                           ("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000"),
                           ("Content-Type", "application/json"), ("Content-Length", str(len(body)))):
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        parts = self.path.removeprefix(f"{PREFIX}/invocation/").split("/")
        if len(parts) == 2 and parts[1] in ("response", "error"):
            with self.server.answered:
                self.server.answers[parts[0]] = (parts[1], body)
                self.server.answered.notify_all()
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def lambda_env(runtime: LambdaRuntime, data_root: str, **extra: str) -> dict[str, str]:
    """The environment Lambda gives a function, pointed at `runtime`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_LAMBDA_RUNTIME_API=runtime.address, AWS_LAMBDA_FUNCTION_NAME="test",
               AWS_LAMBDA_FUNCTION_MEMORY_SIZE="1024", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
               AWS_LAMBDA_LOG_STREAM_NAME="test", AWS_LAMBDA_LOG_GROUP_NAME="test", AWS_REGION="us-east-1",
               DATA_ROOT=data_root, MCP_LAMBDA_RESPONSE_MODE="buffered", RUST_LOG="info,rmcp=warn", **extra)
    return env


class LambdaFunction(LoggedProcess):
    """The gateway binary running as a Lambda function (no subcommand: it must pick `lambda`)."""

    def __init__(self, binary: str, tmp: Path, data_root: str, **env: str) -> None:
        self.runtime = LambdaRuntime()
        self.open_log(tmp / f"lambda-{self.runtime.server_address[1]}.log")
        self.proc = subprocess.Popen([binary], env=lambda_env(self.runtime, data_root, **env),
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    def invoke(self, event: dict | bytes, **kwargs) -> tuple[str, dict | bytes]:
        return self.runtime.invoke(event, **kwargs)

    def stop(self) -> int | None:
        code = super().stop()
        self.runtime.close()
        return code
