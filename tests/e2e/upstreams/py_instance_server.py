"""One instance of a fleet, for the load-balancing tests: the Python SDK (mcp 2.x) over stateless
Streamable HTTP (2026-07-28). Every instance offers the same tools; each answer names the instance.

Tools: `whoami` (the instance's id), `work` (waits `--delay-ms` plus `ms`, then answers its id).

    python py_instance_server.py --id a --port 8811 [--delay-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio

from mcp.server.mcpserver import MCPServer

server = MCPServer("fleet")
SETTINGS = {"id": "", "delay": 0.0}


@server.tool()
async def whoami() -> str:
    """The id of the instance that answered."""
    await asyncio.sleep(SETTINGS["delay"])
    return SETTINGS["id"]


@server.tool()
async def work(ms: float = 0) -> str:
    """Works for `ms` milliseconds (plus the instance's own delay), then names the instance."""
    await asyncio.sleep(SETTINGS["delay"] + ms / 1000)
    return SETTINGS["id"]


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, default=0)
    args = parser.parse_args()
    SETTINGS.update(id=args.id, delay=args.delay_ms / 1000)
    server.run("streamable-http", host="127.0.0.1", port=args.port, stateless_http=True)
