"""The Python peer for the federation benchmark: FastMCP 4.x mounting a proxy of each upstream
MCP server under a namespace (`create_proxy` + `mount`, FastMCP's own federation), served over
stateless Streamable HTTP like `mcp-gateway serve`. Tools appear as `<namespace>_<tool>`.

    python fastmcp_federation.py --port 8090 --upstream up=http://127.0.0.1:8080/mcp [--upstream ...]
"""

from __future__ import annotations

import argparse

from fastmcp import FastMCP
from fastmcp.server import create_proxy


def upstream(text: str) -> tuple[str, str]:
    name, sep, url = text.partition("=")
    if not sep or not name or not url.startswith("http"):
        raise argparse.ArgumentTypeError(f"expected NAME=URL, got {text!r}")
    return name, url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", type=upstream, action="append", required=True, help="NAME=URL (repeatable)")
    args = parser.parse_args()
    gateway = FastMCP("fastmcp-federation")
    for name, url in args.upstream:
        gateway.mount(create_proxy(url, name=name), namespace=name)
    gateway.run(
        transport="http",
        host="127.0.0.1",
        port=args.port,
        path="/mcp",
        stateless_http=True,
        json_response=True,
        show_banner=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
