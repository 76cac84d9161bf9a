"""A stdio upstream for the federation tests whose tool list changes while it runs: the Python SDK
(mcp 2.x) over stdio.

Tools: `grow` (adds a tool named after its argument, which answers `grown <name>`, and announces
the change with `notifications/tools/list_changed`: in 2026-07-28 on the `subscriptions/listen`
streams that asked for it, before that on the connection); `crash` (the process exits at once,
for the restart test); `env` (the value of an environment variable, or `<unset>`).

    python py_growing_server.py
"""

from __future__ import annotations

import os

from mcp.server.mcpserver import Context, MCPServer

server = MCPServer("py-growing")


@server.tool()
async def grow(name: str, ctx: Context) -> str:
    """Adds the tool `name` and tells the client the tool list changed."""
    def grown() -> str:
        return f"grown {name}"

    server.add_tool(grown, name=name, description=f"Added by grow({name!r}).")
    if ctx.protocol_version == "2026-07-28":
        await ctx.notify_tools_changed()
    else:
        await ctx.session.send_tool_list_changed()
    return f"added {name}"


@server.tool()
def env(name: str) -> str:
    """The value of the environment variable `name` in this process, or `<unset>`."""
    return os.environ.get(name, "<unset>")


@server.tool()
def crash() -> str:
    """Ends this process without answering."""
    os._exit(3)


if __name__ == "__main__":
    server.run("stdio")
