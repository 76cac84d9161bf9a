"""The hostile-input corpus: every case says what it attacks, on which surface, and exactly what
must come back (HTTP status, JSON-RPC code, the reason in the log). The cases live in one module
per surface (`http_cases`, `lambda_cases`, `stdio_cases`, `proxy_cases`); the tests that run them
are `tests/e2e/test_hostile_*.py`, and `test_hostile_corpus.py` checks the corpus as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field

# What the corpus must cover; each category needs at least one case.
CATEGORIES = {
    "protocol": "malformed HTTP or JSON-RPC: methods, headers, content types, ids, params",
    "sql-escape": "SQL that tries to read files or URLs outside the datasets (table functions, any case, quoting, CTEs, subqueries, joins)",
    "path-trick": "paths that try to leave the data root: .., absolute, encodings, symlinks, Unicode look-alikes, NUL",
    "huge-number": "numbers past every bound: cursors, offsets, limits, ranges, sizes",
    "deep-json": "deeply nested JSON",
    "invalid-utf8": "bytes that are not UTF-8",
    "oversized": "bodies, headers, lines and answers past their limits",
    "slow-loris": "clients or upstreams that send a byte at a time, or stall",
    "concurrent-write": "many writers on one path at once",
    "upstream-answer": "hostile or broken answers from the proxy's upstream",
}

SURFACES = ("http", "lambda", "stdio", "proxy-stdin", "proxy-upstream")


@dataclass(frozen=True)
class Case:
    """One hostile input and the answer it must get."""

    id: str
    category: str
    surface: str
    # The HTTP status expected (None where the surface has none: stdio, the proxy's stdout).
    status: int | None
    # The JSON-RPC error code expected; None when the answer is a result (see `tool_error`).
    code: int | None
    # Text that the log line's `reason` (or the isError text, for tool errors) must contain.
    reason: str | None
    # The answer is a tool result with isError: true whose text contains `reason`.
    tool_error: bool = False
    # What to send, in the surface's own terms (request, headers, stdin bytes, upstream behaviour).
    payload: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.category in CATEGORIES, f"{self.id}: unknown category {self.category}"
        assert self.surface in SURFACES, f"{self.id}: unknown surface {self.surface}"
        refused = self.code is not None or self.tool_error or self.status is None or self.status >= 400
        assert refused or self.reason is None, f"{self.id}: a reason needs a refusal or an error"
