"""Benchmark peer: the same `file` (read) and `search` tools as mcp-gateway, written with FastMCP.

A FastMCP 4.1 server (PyPI `fastmcp`, on the official Python SDK `mcp` 2.x) serving MCP over
STATELESS streamable HTTP with plain JSON responses (no SSE): every POST to /mcp is answered on its
own, with no Mcp-Session-Id, so a load generator can send the very requests it sends to ours.

    tools:  file    {"action": "read", "path": "<relative path>"}  -> the UTF-8 text of the file
            search  {"query": str, "limit": int = 10}               -> BM25 (rank-bm25, BM25Okapi)
                    over the *.md and *.txt files under the root, one document per file, the index
                    built once at start-up; answers one "path (score)" line per hit, best first.

Install: benches/peers/install.sh (creates .tools/bench-venv). Start:

    .tools/bench-venv/bin/python benches/peers/fastmcp_server.py --port 8701 --data-root examples/data

It prints nothing when all is well (uvicorn at log level warning, no banner): poll
http://127.0.0.1:PORT/mcp until it answers. Results through the tools are FastMCP's defaults.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from rank_bm25 import BM25Okapi

TOKEN = re.compile(r"\w+")


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class Corpus:
    """The data root: sandboxed reads, and a BM25 index over its text files."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        files = sorted(p for p in self.root.rglob("*") if p.is_file() and p.suffix in (".md", ".txt"))
        self.paths = [p.relative_to(self.root).as_posix() for p in files]
        docs = [tokenize(p.read_text(encoding="utf-8", errors="replace")) for p in files]
        # BM25Okapi divides by the corpus size: an empty root gets no index rather than a crash.
        self.bm25 = BM25Okapi(docs) if docs else None

    def resolve(self, path: str) -> Path:
        """`path` under the root; absolute paths and `..` are refused, as in ours."""
        if path.startswith("/") or "\\" in path or ".." in path.split("/"):
            raise ToolError(f"`{path}`: paths are relative to the data root, without `..`")
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root):  # e.g. a symlink pointing out of the root
            raise ToolError(f"`{path}` is outside the data root")
        return full

    def read(self, path: str) -> str:
        full = self.resolve(path)
        if full.is_dir():
            raise ToolError(f"`{path}` is a folder")
        try:
            return full.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ToolError(f"`{path}` not found") from None
        except UnicodeDecodeError:
            raise ToolError(f"`{path}` is not UTF-8 text") from None

    def search(self, query: str, limit: int) -> str:
        terms = tokenize(query)
        if not terms:
            raise ToolError("query is empty; give one or more words to look for")
        if not 1 <= limit <= 100:
            raise ToolError("limit must be between 1 and 100")
        if self.bm25 is None:
            return f"no matches for `{query}`"
        scores = self.bm25.get_scores(terms)
        best = [i for i in np.argsort(-scores, kind="stable")[:limit] if scores[i] > 0]
        if not best:
            return f"no matches for `{query}`"
        return "\n".join(f"{self.paths[i]} ({scores[i]:.2f})" for i in best)


def build(corpus: Corpus) -> FastMCP:
    mcp = FastMCP("fastmcp-peer")
    read_only = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}

    # Plain `def` tools: FastMCP runs them in its thread pool, as ours runs file reads (tokio::fs)
    # and searches (spawn_blocking) off the async threads.
    @mcp.tool(name="file", annotations=read_only)
    def file(action: str, path: str = "") -> str:
        """Read a UTF-8 text file under the data root (action=read, path relative to the root)."""
        if action != "read":
            raise ToolError(f"action `{action}` is not supported by this peer; only `read`")
        return corpus.read(path)

    @mcp.tool(name="search", annotations=read_only)
    def search(query: str, limit: int = 10) -> str:
        """BM25 full-text search over the *.md and *.txt files under the data root."""
        return corpus.search(query, limit)

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data-root", type=Path, required=True)
    args = parser.parse_args()
    mcp = build(Corpus(args.data_root))
    mcp.run(
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
