"""An upstream MCP server for the federation tests: the Python SDK (mcp 2.x) over stateless
Streamable HTTP, which speaks 2026-07-28 (`server/discover`, no sessions).

Tools: `add` (numbers), `weird.name/with spaces` (a name the gateway must clean), `countdown`
(progress notifications, in order), `wait` (sleeps; a cancellation is recorded with the request id
this server saw), `cancellations` (the ids recorded so far), `boom` (raises: an isError result),
`confirm` (a 2026-07-28 multi round-trip tool: answers `input_required` with an elicitation and a
`requestState` first, and completes when the client retries with the answer).

    python py_modern_server.py --port 8811
"""

from __future__ import annotations

import argparse
import asyncio

from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ElicitRequest, ElicitRequestFormParams, InputRequiredResult

server = MCPServer("py-modern")
CANCELLED: list[str] = []


@server.tool()
def add(a: int, b: int) -> int:
    """Adds two numbers."""
    return a + b


@server.tool(name="weird.name/with spaces")
def weird() -> str:
    """A tool whose name has characters clients do not accept."""
    return "weird ok"


@server.tool()
async def countdown(steps: int, ctx: Context) -> str:
    """Reports `steps` progress notifications, then answers."""
    for step in range(1, steps + 1):
        await ctx.report_progress(step, steps, f"step {step}")
        await asyncio.sleep(0.05)
    return f"counted {steps}"


@server.tool()
async def wait(seconds: float, ctx: Context) -> str:
    """Sleeps; if the call is cancelled, records the request id this server knew it by."""
    request_id = str(ctx.request_id)
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        CANCELLED.append(request_id)
        raise
    return "waited"


@server.tool()
def cancellations() -> list[str]:
    """The request ids of the calls cancelled so far."""
    return list(CANCELLED)


@server.tool()
def boom() -> str:
    """Always fails."""
    raise ValueError("boom went the tool")


@server.tool()
def confirm(item: str, ctx: Context) -> str | InputRequiredResult:
    """Asks the user to confirm `item` (input_required), then says what they answered."""
    answer = (ctx.input_responses or {}).get("confirm")
    if answer is None:
        question = ElicitRequest(params=ElicitRequestFormParams(
            message=f"Really {item}?",
            requested_schema={"type": "object", "properties": {"sure": {"type": "boolean"}}, "required": ["sure"]}))
        return InputRequiredResult(input_requests={"confirm": question}, request_state=f"asked about {item}")
    return f"{ctx.request_state}: {answer.action} {answer.content}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server.run("streamable-http", host="127.0.0.1", port=args.port, stateless_http=True)
