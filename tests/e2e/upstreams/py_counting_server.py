"""An upstream that counts what reaches it, for the result cache tests: the Python SDK (mcp 2.x)
over stdio. Its resource reads say they may be cached for a minute by anyone (`ttlMs`,
`cacheScope: public`); tool results carry no hints; `--list-ttl-ms N` gives its tool lists
`ttlMs: N`.

Tools: `count` (how many times it ran), `boom` (fails, counted), `counts` (every counter),
`meta` (the `_meta` its request carried, as JSON: the trace tests read `traceparent` there).
Resource: `counter://reads` (how many times it was read).
"""

from __future__ import annotations

import json
import sys

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer

HINTS = {"resources/read": CacheHint(ttl_ms=60_000, scope="public")}
if "--list-ttl-ms" in sys.argv:
    HINTS["tools/list"] = CacheHint(ttl_ms=int(sys.argv[sys.argv.index("--list-ttl-ms") + 1]))
server = MCPServer("counting", cache_hints=HINTS)
COUNTS = {"count": 0, "boom": 0, "reads": 0}


@server.tool()
def count() -> str:
    """How many times this tool ran."""
    COUNTS["count"] += 1
    return str(COUNTS["count"])


@server.tool()
def boom() -> str:
    """Always fails (and counts)."""
    COUNTS["boom"] += 1
    raise ValueError(f"boom {COUNTS['boom']}")


@server.tool()
def counts() -> dict:
    """Every counter."""
    return dict(COUNTS)


@server.tool()
def meta(ctx: Context) -> str:
    """The `_meta` of this request, as JSON."""
    meta = ctx.request_context.meta
    return json.dumps(dict(meta) if meta is not None else {}, default=str)


@server.resource("counter://reads")
def reads() -> str:
    """How many times this resource was read."""
    COUNTS["reads"] += 1
    return str(COUNTS["reads"])


if __name__ == "__main__":
    server.run("stdio")
