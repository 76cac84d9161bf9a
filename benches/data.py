"""Benchmark of mcp-gateway's data tools against the Python tools a user would reach for, side by
side in one run (not a test: nothing fails on a slow number).

  1. `dataset_metadata` on generated CSVs of ~100 MB and ~1 GB vs pandas (read_csv + the same
     statistics): wall time and peak RSS, each side in a fresh process; the answers are checked
     against each other (row count, null counts, ...) before any number is reported.
  2. `dataset_metadata` on a ~100 MB Parquet file: bytes the server read during the call (delta of
     `rchar` in /proc/PID/io, cross-checked with the page cache) vs the file size.
  3. `search` on a 100k-paragraph corpus vs rank-bm25 (BM25Okapi): index build time, query latency
     p50/p99 over the same queries (ours over HTTP, the peer in-process), RSS.

Generated data is cached under ~/.cache/mcp-lambda-gateway/bench-data/ (BENCH_DATA moves it), keyed
by size and generator version, so reruns skip generation (about 70 s for the full sizes). Writes
$BENCH_OUT/data.json (default benches/results/) and three SVG charts (data-*.svg). BENCH_QUICK=1
shrinks everything; BENCH_PROFILE picks the build (default release). Needs pandas, pyarrow,
rank-bm25, httpx: tests/requirements.txt, installed into .tools/venv by `make tools`.

The script also runs its own peers as children (`data.py --peer pandas|bm25 ...`) so that each
peer's peak RSS is its own (os.wait4).
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import json
import mmap
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from common import OUT, PROFILE, QUICK, binary, free_port, percentile, rss_kib, stop, wait_ready

MISSING = []
for _module, _package in [("httpx", "httpx"), ("numpy", "numpy"), ("pandas", "pandas"), ("pyarrow", "pyarrow"),
                          ("rank_bm25", "rank-bm25")]:
    try:
        __import__(_module)
    except ImportError:
        MISSING.append(_package)
if not MISSING:
    import httpx
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    from rank_bm25 import BM25Okapi

import svgplot  # noqa: E402  (benches/svgplot.py, next to this script)

CACHE = Path(os.environ.get("BENCH_DATA", Path.home() / ".cache/mcp-lambda-gateway/bench-data"))
GENERATOR = 1  # bump when the generators change: cached files are keyed by it

MB = 1_000_000
CSV_SIZES = [2 * MB, 10 * MB] if QUICK else [100 * MB, 1000 * MB]
PARQUET_SIZE = 5 * MB if QUICK else 100 * MB
DOCS = 2_000 if QUICK else 100_000
PARAGRAPHS_PER_FILE = 10
QUERIES = 30 if QUICK else 300
WARMUP = 5 if QUICK else 20
TOP_K = 10
PROTOCOL = "2026-07-28"
TOKEN = re.compile(r"\w+")


def log(message: str) -> None:
    print(f"data.py: {message}", file=sys.stderr, flush=True)


def human(size: float) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.0f} MB" if size >= 10e6 else f"{size / 1e6:.1f} MB"


def proc_io(pid: int) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split(": ") for line in Path(f"/proc/{pid}/io").read_text().splitlines())}


def gateway_env() -> dict[str, str]:
    # RUST_LOG would override --log-level; AWS_* could point the gateway elsewhere.
    return {k: v for k, v in os.environ.items() if k != "RUST_LOG" and not k.startswith("AWS_")}


def run_measured(argv: list[str], env: dict | None = None) -> tuple[float, int, str, str]:
    """Runs `argv` to completion: (wall seconds, peak RSS KiB from wait4, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        sys.exit(f"`{' '.join(argv[:4])} ...` failed with exit code {proc.returncode}:\n{stderr[-3000:]}")
    return elapsed, usage.ru_maxrss, stdout, stderr


class Gateway:
    """A fresh `mcp-gateway serve` over one data root, called with plain JSON-RPC over HTTP."""

    def __init__(self, data_root: Path, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/mcp"
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [binary("mcp-gateway"), "--data-root", str(data_root), "--log-level", "warn", "--metadata-timeout", "3600",
             "--db-timeout", "3600", "serve", "--addr", f"127.0.0.1:{self.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**gateway_env(), **(env or {})})
        self.client = httpx.Client(timeout=3700)
        health = f"http://127.0.0.1:{self.port}/health"
        wait_ready(lambda: self.client.get(health, timeout=1).status_code == 200, self.proc, "mcp-gateway serve")
        self.ready_s = time.perf_counter() - self.started
        self.next_id = 0

    def call(self, tool: str, arguments: dict) -> tuple[float, dict]:
        """(wall seconds, structuredContent) of one tools/call; exits on a tool error."""
        self.next_id += 1
        body = {"jsonrpc": "2.0", "id": self.next_id, "method": "tools/call",
                "params": {"name": tool, "arguments": arguments,
                           "_meta": {"io.modelcontextprotocol/protocolVersion": PROTOCOL,
                                     "io.modelcontextprotocol/clientCapabilities": {}}}}
        headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json",
                   "MCP-Protocol-Version": PROTOCOL, "Mcp-Method": "tools/call", "Mcp-Name": tool}
        started = time.perf_counter()
        response = self.client.post(self.url, json=body, headers=headers)
        elapsed = time.perf_counter() - started
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            data = [line[5:].strip() for line in response.text.splitlines() if line.startswith("data:")]
            message = json.loads(data[-1])
        else:
            message = response.json()
        result = message.get("result")
        if response.status_code != 200 or result is None or result.get("isError"):
            self.close()
            sys.exit(f"{tool} {arguments} failed (HTTP {response.status_code}): {json.dumps(message)[:2000]}")
        return elapsed, result["structuredContent"]

    def close(self) -> None:
        self.client.close()
        stop(self.proc)


# --- generated tabular data ---------------------------------------------------------------------

CITIES = ["Zürich", "São Paulo", "Kraków", "東京", "New York, NY", 'Quote "Town"', "Berlin", "Paris", "Lagos",
          "Mumbai", "Ciudad de México", "Reykjavík", "Москва", "Cairo", "Sydney", "Toronto", "Seoul; KR", "Lima",
          "Nairobi", "Oslo", "Athens", "Hà Nội", "İstanbul", "Montréal", "Dublin"]
CATEGORIES = ["electronics", "books", "garden", "toys", "grocery"]
CATEGORY_P = [0.35, 0.25, 0.2, 0.15, 0.05]
WORDS = ["late", "again", "fine", "broken", "great", "ok", "refund", "gift", "naïve", "café", "über", "fast",
         "slow", "box", "damaged", "resend", "thanks", "🚀", "size", "colour", "price", "wrong", "perfect"]


def table_chunk(seed: int, start: int, rows: int) -> "pd.DataFrame":
    """`rows` rows of realistic mixed data from their own seed: ints, floats with nulls, text with
    quoted delimiters, line breaks and unicode, dates, timestamps, a low-cardinality category."""
    rng = np.random.default_rng(seed)
    amount = np.round(rng.lognormal(3.0, 1.2, rows), 2)
    amount[rng.random(rows) < 0.08] = np.nan
    discount = np.round(rng.normal(0.0, 0.1, rows), 4)
    discount[rng.random(rows) < 0.2] = np.nan
    quantity = pd.array(rng.integers(1, 100, rows), dtype="Int64")
    quantity[rng.random(rows) < 0.02] = pd.NA
    city = np.array(CITIES, dtype=object)[rng.integers(0, len(CITIES), rows)]
    city[rng.random(rows) < 0.05] = None
    words = np.array(WORDS, dtype=object)
    w = rng.integers(0, len(words), (rows, 3))
    number = rng.integers(0, 1_000_000, rows)
    kind = rng.random(rows)
    comments = []
    for i in range(rows):
        a, b, c = words[w[i, 0]], words[w[i, 1]], words[w[i, 2]]
        k = kind[i]
        if k < 0.10:
            comments.append(None)
        elif k < 0.30:
            comments.append(f'{a}, {b} "{c}" #{number[i]}')
        elif k < 0.32:
            comments.append(f"{a}\n{b}; {c} #{number[i]}")
        else:
            comments.append(f"{a} {b} {c} #{number[i]}")
    day = np.datetime64("2021-01-01") + rng.integers(0, 1500, rows).astype("timedelta64[D]")
    seconds = np.datetime64("2021-01-01T00:00:00") + rng.integers(0, 1500 * 86400, rows).astype("timedelta64[s]")
    return pd.DataFrame({
        "id": np.arange(start, start + rows, dtype=np.int64),
        "user_id": rng.integers(1, 5_000_000, rows),
        "amount": amount,
        "discount": discount,
        "quantity": quantity,
        "category": np.array(CATEGORIES, dtype=object)[rng.choice(len(CATEGORIES), rows, p=CATEGORY_P)],
        "city": city,
        "comment": comments,
        "order_date": day.astype(str),
        "updated_at": np.char.replace(seconds.astype(str), "T", " "),
        "active": rng.random(rows) < 0.7,
    })


def chunk_rows(target: int) -> int:
    return int(min(200_000, max(2_000, target / 95 / 10)))  # about 95 bytes a row; at least 10 chunks


def cached(name: str) -> Path:
    folder = CACHE / f"v{GENERATOR}" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def ensure_csv(target: int) -> Path:
    return generate(cached(f"csv-{target}") / "orders.csv", target, "CSV", 1000, chunk_rows(target), csv_sink)


def ensure_parquet(target: int) -> Path:
    # one row group per chunk, half the rows of a CSV chunk (Parquet is about half the size)
    return generate(cached(f"parquet-{target}") / "orders.parquet", target, "Parquet", 2000, chunk_rows(target / 2),
                    parquet_sink)


def generate(path: Path, target: int, kind: str, seed_base: int, rows: int,
             sink: Callable[[Path], contextlib.AbstractContextManager]) -> Path:
    """`path`, generated chunk by chunk until it holds `target` bytes unless it is cached, with
    progress every 10%; written as `.part` and renamed, so an interrupted run leaves no half file."""
    if path.exists():
        return path
    partial = path.with_suffix(".part")
    chunk, started, shown = 0, time.perf_counter(), -1
    with sink(partial) as write:
        while not partial.exists() or partial.stat().st_size < target:
            write(chunk, table_chunk(seed=seed_base * GENERATOR + chunk, start=chunk * rows, rows=rows))
            chunk += 1
            percent = min(100, 100 * partial.stat().st_size // target) // 10 * 10
            if percent != shown:
                log(f"generating {human(target)} {kind}: {percent}%...")
                shown = percent
    partial.rename(path)
    log(f"generated {path} ({human(path.stat().st_size)}, {chunk * rows:,} rows) in {time.perf_counter() - started:.1f} s")
    return path


@contextlib.contextmanager
def csv_sink(partial: Path) -> Iterator[Callable[[int, "pd.DataFrame"], None]]:
    with open(partial, "w", encoding="utf-8", newline="") as out:
        def write(chunk: int, frame: "pd.DataFrame") -> None:
            frame.to_csv(out, header=chunk == 0, index=False)
            out.flush()  # the size check reads the file's size
        yield write


@contextlib.contextmanager
def parquet_sink(partial: Path) -> Iterator[Callable[[int, "pd.DataFrame"], None]]:
    writer = None

    def write(chunk: int, frame: "pd.DataFrame") -> None:
        nonlocal writer
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(partial, table.schema, write_statistics=True, compression="snappy")
        writer.write_table(table, row_group_size=len(frame))

    try:
        yield write
    finally:
        if writer is not None:
            writer.close()


# --- generated text corpus ----------------------------------------------------------------------

COMMON = ["the", "of", "and", "to", "in", "is", "for", "data", "with", "on", "that", "server", "request", "file",
          "table", "query", "user", "error", "time", "from", "by", "as", "be", "this", "are", "value", "index"]
SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "ta", "sho", "vi", "pre", "on", "ex", "ar", "bel", "dor", "fi", "gan",
             "hu", "jo", "qui", "zen", "tra", "mor", "pel", "sa", "ti", "ven", "cor", "dul", "ri", "us", "ba", "lem"]


def vocabulary(size: int = 30_000) -> list[str]:
    rng = np.random.default_rng(77)
    words, seen = list(COMMON), set(COMMON)
    while len(words) < size:
        word = "".join(SYLLABLES[i] for i in rng.integers(0, len(SYLLABLES), rng.integers(2, 5)))
        if word not in seen:
            seen.add(word)
            words.append(word)
    return words


def corpus_file(index: int) -> str:
    return f"topic-{index // 1000:03d}/part-{index // 100 % 10}/doc-{index:06d}.md"


def ensure_corpus(docs: int) -> tuple[Path, float | None]:
    """`docs` paragraphs (the gateway's unit of search), PARAGRAPHS_PER_FILE per Markdown file,
    words drawn from a Zipf-like vocabulary. Returns the folder and the generation time (None when
    cached)."""
    folder = cached(f"corpus-{docs}")
    done = folder / ".complete"
    if done.exists():
        return folder, None
    started = time.perf_counter()
    shutil.rmtree(folder)
    folder.mkdir(parents=True)
    words = np.array(vocabulary(), dtype=object)
    weights = 1.0 / (np.arange(len(words)) + 2.7) ** 1.07
    cumulative = np.cumsum(weights / weights.sum())
    files = docs // PARAGRAPHS_PER_FILE
    for f in range(files):
        rng = np.random.default_rng(3000 * GENERATOR + f)
        paragraphs = []
        for _ in range(PARAGRAPHS_PER_FILE):
            drawn = words[np.minimum(np.searchsorted(cumulative, rng.random(rng.integers(15, 80))), len(words) - 1)]
            text, line = [], []
            for position, word in enumerate(drawn):
                if position % 11 == 0:
                    word = word.capitalize()
                line.append(word + ("." if position % 11 == 10 else ""))
                if sum(len(x) + 1 for x in line) > 76:
                    text.append(" ".join(line))
                    line = []
            if line:
                text.append(" ".join(line))
            paragraphs.append("\n".join(text) + ".")
        path = folder / corpus_file(f)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
        if files >= 20 and f % (files // 10) == 0:
            log(f"generating {docs:,}-paragraph corpus: {100 * f // files}%...")
    done.write_text("")
    return folder, time.perf_counter() - started


def make_queries(count: int) -> list[str]:
    rng = np.random.default_rng(99)
    words = vocabulary()
    queries, seen = [], set()
    while len(queries) < count:
        n = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
        ranks = rng.integers(len(COMMON), 6_000, n)  # mid-frequency words: not stop words, not unseen
        query = " ".join(words[r] for r in ranks)
        if query not in seen:
            seen.add(query)
            queries.append(query)
    return queries


def paragraphs_of(path: str, text: str) -> list[tuple[str, str]]:
    """The gateway's paragraph split (search_index/corpus.rs): (`path:first line`, text)."""
    out, current, start = [], [], 1
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or len(current) == 20:
            if current:
                out.append((f"{path}:{start}", "\n".join(current)))
            current = []
            if not line.strip():
                continue
        if not current:
            start = number
        current.append(line)
    if current:
        out.append((f"{path}:{start}", "\n".join(current)))
    return out


# --- peers, run as children of this script --------------------------------------------------------


def peer_pandas(path: str, engine: str) -> None:
    started = time.perf_counter()
    if engine == "pyarrow":
        # pd.read_csv(engine="pyarrow") cannot be used: it leaves pyarrow's newlines_in_values off, so
        # it fails on quoted line breaks whenever one straddles a block. pyarrow.csv with it on, then
        # pandas for the statistics, is what a user falls back to.
        import pyarrow.csv as pacsv
        table = pacsv.read_csv(path, parse_options=pacsv.ParseOptions(newlines_in_values=True),
                               convert_options=pacsv.ConvertOptions(null_values=[""], strings_can_be_null=True))
        frame = table.to_pandas()
        del table
    else:
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])  # only empty fields are missing, as in ours
    read_s = time.perf_counter() - started
    columns = {}
    for name in frame.columns:
        series = frame[name]
        column = {"nulls": int(series.isna().sum()), "distinct": int(series.nunique(dropna=False))}
        values = series.dropna()
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            column.update(min=float(values.min()), max=float(values.max()), mean=float(values.mean()),
                          std=float(values.std(ddof=1)))
        elif not pd.api.types.is_bool_dtype(series):
            column.update(min=str(values.min()), max=str(values.max()))
            if series.dtype == object:
                top = values.value_counts().head(5)
                column["top"] = [[str(k), int(v)] for k, v in top.items()]
        columns[name] = column
    sample = frame.head(5).to_dict("records")
    result = {"rows": len(frame), "columns": columns, "sample": len(sample), "read_s": read_s,
              "seconds": time.perf_counter() - started}
    print(json.dumps(result, default=str))


def peer_bm25(folder: str, queries_file: str) -> None:
    started = time.perf_counter()
    files = sorted(p for p in Path(folder).rglob("*.md") if not any(s.startswith(".") for s in p.relative_to(folder).parts))
    keys, texts = [], []
    for file in files:
        for key, text in paragraphs_of(file.relative_to(folder).as_posix(), file.read_text(encoding="utf-8")):
            keys.append(key)
            texts.append(text)
    read_s = time.perf_counter() - started
    tokens = [TOKEN.findall(text.lower()) for text in texts]
    tokenize_s = time.perf_counter() - started - read_s
    bm25 = BM25Okapi(tokens)
    build_s = time.perf_counter() - started
    ids = list(range(len(keys)))
    latencies, tops = [], []
    for query in json.loads(Path(queries_file).read_text()):
        t = time.perf_counter()
        top = bm25.get_top_n(TOKEN.findall(query.lower()), ids, n=TOP_K)
        latencies.append(time.perf_counter() - t)
        tops.append([keys[i] for i in top])
    print(json.dumps({"documents": len(keys), "files": len(files), "read_s": read_s, "tokenize_s": tokenize_s,
                      "build_s": build_s, "latencies": latencies, "tops": tops}))


# --- measurements -------------------------------------------------------------------------------


def check_csv(path: Path, ours: dict, peer: dict, approximate: list[str]) -> list[str]:
    """Where ours and pandas disagree (empty when they agree); appends the error of each
    approximate distinct count to `approximate`."""
    problems = []
    if ours["row_count"] != peer["rows"]:
        problems.append(f"row count: ours {ours['row_count']:,}, pandas {peer['rows']:,}")
    columns = {c["name"]: c for c in ours["columns"]}
    if list(columns) != list(peer["columns"]):
        problems.append(f"columns: ours {list(columns)}, pandas {list(peer['columns'])}")
    for name, theirs in peer["columns"].items():
        mine = columns.get(name)
        if mine is None:
            continue
        if mine.get("null_count") != theirs["nulls"]:
            problems.append(f"{name}: null count ours {mine.get('null_count')}, pandas {theirs['nulls']}")
        if mine.get("distinct_is_approximate"):  # HyperLogLog past 250,000 values: about 0.8 % standard error
            error = abs(mine.get("distinct_count", 0) - theirs["distinct"]) / max(1, theirs["distinct"])
            approximate.append(f"{name} {100 * error:.2f} %")
            if error > 0.03:
                problems.append(f"{name}: approximate distinct ours {mine.get('distinct_count')}, pandas {theirs['distinct']}")
        elif mine.get("distinct_count") != theirs["distinct"]:
            problems.append(f"{name}: distinct ours {mine.get('distinct_count')}, pandas {theirs['distinct']}")
        for stat in ("min", "max", "mean", "std"):
            if stat in theirs and isinstance(theirs[stat], float):
                value = mine.get(stat)
                if not isinstance(value, (int, float)) or abs(value - theirs[stat]) > 1e-9 * max(1.0, abs(theirs[stat])):
                    problems.append(f"{name}: {stat} ours {value}, pandas {theirs[stat]}")
        if "top" in theirs and name in ("category", "city"):
            got = [[t["value"], t["count"]] for t in mine.get("top_values") or []]
            if got != theirs["top"]:
                problems.append(f"{name}: top values ours {got}, pandas {theirs['top']}")
    return problems


def bench_csv(rows: list, versions: dict, summary: list) -> None:
    for target in CSV_SIZES:
        path = ensure_csv(target)
        size = path.stat().st_size
        label = human(target)
        log(f"dataset_metadata on the {label} CSV (ours)...")
        gateway = Gateway(path.parent)
        idle = rss_kib(gateway.proc.pid)
        ours_s, result = gateway.call("dataset_metadata", {"path": path.name})
        peak = rss_kib(gateway.proc.pid, "VmHWM")
        gateway.close()
        meta = result["datasets"][0]
        log(f"  ours {ours_s:.2f} s, peak RSS {peak / 1024:.0f} MiB; pandas...")
        wall, peer_rss, out, _ = run_measured([sys.executable, __file__, "--peer", "pandas", str(path), "c"])
        peer = json.loads(out)
        approximate: list[str] = []
        problems = check_csv(path, meta, peer, approximate)
        if problems:
            sys.exit(f"data.py: ours and pandas disagree on {path} ({size:,} bytes); a benchmark of a wrong answer "
                     "is worthless:\n  " + "\n  ".join(problems))
        log(f"  pandas {peer['seconds']:.2f} s in-process ({wall:.2f} s with start-up), peak RSS {peer_rss / 1024:.0f} MiB; answers agree")
        arrow = None
        if target <= 100 * MB:  # cheap enough to add the multi-threaded pyarrow reader as a second peer
            a_wall, a_rss, a_out, _ = run_measured([sys.executable, __file__, "--peer", "pandas", str(path), "pyarrow"])
            arrow = (a_wall, a_rss, json.loads(a_out))
            nulls = {c["name"]: c.get("null_count") for c in meta["columns"]}
            if arrow[2]["rows"] != meta["row_count"] or any(nulls.get(k) != v["nulls"] for k, v in arrow[2]["columns"].items()):
                sys.exit(f"data.py: pandas (pyarrow engine) and ours disagree on {path}: rows {arrow[2]['rows']} vs "
                         f"{meta['row_count']}, nulls {[(k, v['nulls']) for k, v in arrow[2]['columns'].items()]} vs {nulls}")
        common = (f"{size:,} bytes, {meta['row_count']:,} rows × {len(meta['columns'])} columns (ints, floats with nulls, "
                  "quoted delimiters, line breaks and unicode in text, dates, timestamps, a 5-value category), warm page "
                  "cache, fresh process per side, one run each. Answers checked equal: row count, null and distinct counts "
                  "of every column, min/max/mean/std of numbers, top 5 values of the category and city columns"
                  + (f"; ours' HyperLogLog distinct counts (past 250,000 values) off by {', '.join(approximate)}"
                     if approximate else ""))
        peer_s = peer["seconds"]
        rows.append(row("Data", f"dataset_metadata, {label} CSV: time", "s", ours_s, f"pandas {versions['pandas']}",
                        peer_s, "lower", "≤ pandas", ours_s <= peer_s,
                        f"Ours: wall time of one tools/call over HTTP to a fresh, already listening `serve` (streaming "
                        f"scan in 4 MB chunks, dates parsed). Peer: read_csv (C engine, keep_default_na=False, "
                        f"na_values=['']; {peer['read_s']:.2f} s) plus the same statistics ({peer_s - peer['read_s']:.2f} s: nulls, nunique, "
                        f"min/max/mean/std, top 5 of text columns, 5 sample rows; dates left as text), timed inside a "
                        f"child Python; with interpreter start-up and imports the child took {wall:.2f} s. {common}."
                        + ("" if ours_s <= peer_s else
                           " Missed: on a file of a few MB the first 4 MB chunk is most of the work, and ours parses it "
                           "without a schema (inference over 100,000 rows, date detection): measured apart, a text "
                           "column costs about 10× more per row in that first chunk than in later chunks, which reuse "
                           "the schema.")))
        rows.append(row("Data", f"dataset_metadata, {label} CSV: peak RSS", "MiB", peak / 1024,
                        f"pandas {versions['pandas']}", peer_rss / 1024, "lower", "≤ pandas", peak <= peer_rss,
                        f"Ours: VmHWM of the server process right after the call (idle before it: {idle / 1024:.1f} MiB). "
                        f"Peer: ru_maxrss of the pandas child (os.wait4). {size / 2**20:.0f} MiB file."))
        if arrow:
            rows.append(row("Data", f"dataset_metadata, {label} CSV: time vs pyarrow.csv + pandas", "s", ours_s,
                            f"pyarrow {versions['pyarrow']} read_csv + pandas {versions['pandas']}", arrow[2]["seconds"],
                            "lower", None, None,
                            f"Same statistics in pandas after pyarrow.csv.read_csv (multi-threaded, newlines_in_values=True, "
                            f"null_values=['']; {arrow[2]['read_s']:.2f} s reading and converting) and to_pandas(); row and "
                            f"null counts checked equal to ours; its peak RSS {arrow[1] / 1024:.0f} MiB. pandas' own "
                            f"read_csv(engine='pyarrow') fails on this file: it leaves newlines_in_values off, and quoted "
                            f"line breaks across a block boundary are then a parse error. Run for files up to 100 MB only, "
                            f"to keep the run short."))
        if target == CSV_SIZES[-1]:
            bench_db_capped(rows, path, label, peer, summary)
        summary.append(f"{label} CSV: ours {ours_s:.2f} s / {peak / 1024:.0f} MiB peak; pandas {peer_s:.2f} s / "
                       f"{peer_rss / 1024:.0f} MiB" + (f"; pyarrow.csv+pandas {arrow[2]['seconds']:.2f} s / {arrow[1] / 1024:.0f} MiB" if arrow else ""))


def bench_db_capped(rows: list, path: Path, label: str, peer: dict, summary: list) -> None:
    """A `db` aggregate over the largest CSV with the query's heap capped far below the file's size
    (MCP_DB_MEMORY: the SQL worker's allocator refuses more, and the worker dies with a memory error),
    checked against pandas."""
    # Quick runs use debug builds, whose streaming engine buffers far more (about 250 MB measured).
    cap = 512 * MB if QUICK else 64 * MB
    size = path.stat().st_size
    log(f"db query over the {label} CSV with the heap capped at {cap // MB} MB...")
    gateway = Gateway(path.parent, {"MCP_DB_MEMORY": str(cap)})
    sql = f"SELECT category, count(*) AS n FROM {path.stem} GROUP BY category ORDER BY n DESC, category"
    try:
        seconds, result = gateway.call("db", {"action": "query", "sql": sql})
    except httpx.HTTPError as error:
        gateway.close()
        sys.exit(f"data.py: the server failed on `{sql}` ({error})")
    gateway.close()
    got = {r["category"]: r["n"] for r in result["rows"] if r["category"] is not None}
    if got != dict(peer["columns"]["category"]["top"]):
        sys.exit(f"data.py: db counts per category {got} differ from pandas' {peer['columns']['category']['top']}")
    ratio = size / cap
    rows.append(row("Data", f"db GROUP BY over the {label} CSV, heap capped at {cap // MB} MB: time", "s", seconds,
                    None, None, "lower", "answers with a heap cap ≥ 4× below the file size", ratio >= 4,
                    f"`{sql}` on a {size / MB:.0f} MB file ({ratio:.1f}× the cap) answered, counts equal to pandas'. "
                    f"The cap is enforced by the SQL worker's allocator (MCP_DB_MEMORY; past it the worker stops "
                    f"with a memory error); polars' streaming engine reads the file in morsels."
                    + (" Quick run: debug build, cap not meaningful." if QUICK else "")))
    summary.append(f"db over the {label} CSV with a {cap // MB} MB heap cap: {seconds:.2f} s, counts equal to pandas'")


def page_cache_bytes(path: Path) -> int:
    """Bytes of `path` resident in the page cache (mmap + mincore, which touch no page)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
    size, page = path.stat().st_size, os.sysconf("SC_PAGE_SIZE")
    vec = (ctypes.c_ubyte * ((size + page - 1) // page))()
    with open(path, "rb") as file:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, file.fileno(), 0)
        if address in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "mmap")
        try:
            if libc.mincore(address, size, vec) != 0:
                raise OSError(ctypes.get_errno(), "mincore")
        finally:
            libc.munmap(address, size)
    return sum(v & 1 for v in vec) * page


def drop_from_page_cache(path: Path) -> None:
    with open(path, "rb") as file:
        os.fsync(file.fileno())
        os.posix_fadvise(file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


def bench_parquet(rows: list, versions: dict, summary: list) -> None:
    path = ensure_parquet(PARQUET_SIZE)
    size = path.stat().st_size
    metadata = pq.read_metadata(path)
    gateway = Gateway(path.parent)
    pid = gateway.proc.pid
    drop_from_page_cache(path)
    cold_before = page_cache_bytes(path)
    before = proc_io(pid)
    ours_s, result = gateway.call("dataset_metadata", {"path": path.name})
    after = proc_io(pid)
    resident = page_cache_bytes(path) - cold_before
    # A second call on a warm page cache, for the time.
    warm_s, _ = gateway.call("dataset_metadata", {"path": path.name})
    gateway.close()
    meta = result["datasets"][0]
    if meta["row_count"] != metadata.num_rows or meta.get("row_groups") != metadata.num_row_groups:
        sys.exit(f"data.py: ours reads {meta['row_count']} rows / {meta.get('row_groups')} row groups from {path}, "
                 f"pyarrow {metadata.num_rows} / {metadata.num_row_groups}")
    rchar = after["rchar"] - before["rchar"]
    started = time.perf_counter()
    peer_meta = pq.read_metadata(path)
    next(pq.ParquetFile(path).iter_batches(batch_size=5))
    peer_s = time.perf_counter() - started
    assert peer_meta.num_rows == meta["row_count"]
    footer = metadata.serialized_size
    compressed0 = sum(metadata.row_group(0).column(i).total_compressed_size for i in range(metadata.num_columns))
    ahead = int(Path("/sys/block", block_device(path), "queue/read_ahead_kb").read_text()) if block_device(path) else None
    file_facts = (f"File: {size:,} bytes, {metadata.num_rows:,} rows in {metadata.num_row_groups} row groups "
                  f"(first: {compressed0:,} bytes compressed), footer {footer:,} bytes, statistics on.")
    rows.append(row("Data", f"dataset_metadata, {human(PARQUET_SIZE)} Parquet: bytes read (read calls)",
                    "bytes", rchar, "file size", size, "lower", "≤ 10 % of the file", rchar <= 0.1 * size,
                    f"Ours: delta of rchar in /proc/PID/io of the server around one call: every read() of the process "
                    f"(the 8-byte tail, the footer, and the ~1 KB HTTP request). The statistics come from the footer "
                    f"alone; the 5 sample rows are read by polars through mmap, which rchar does not see: see the "
                    f"page-cache row. {file_facts}"))
    rows.append(row("Data", f"dataset_metadata, {human(PARQUET_SIZE)} Parquet: bytes brought into the page cache",
                    "bytes", resident, "file size", size, "lower", None, None,
                    f"Upper bound on what the call touched, mmap included: the file was evicted from the page cache "
                    f"(POSIX_FADV_DONTNEED), and after the call mincore counted its resident bytes. Inflated by kernel "
                    f"read-ahead (read_ahead_kb={ahead} on this disk: a fault into the mmap reads up to that much "
                    f"around it). The 5-row sample needs at most the first row group ({compressed0:,} bytes). "
                    f"{file_facts}"))
    rows.append(row("Data", f"dataset_metadata, {human(PARQUET_SIZE)} Parquet: time", "ms", ours_s * 1000,
                    f"pyarrow {versions['pyarrow']} (in-process)", peer_s * 1000, "lower", None, None,
                    f"Ours: one tools/call over HTTP, file evicted from the page cache first (warm repeat: "
                    f"{warm_s * 1000:.1f} ms). Peer: pq.read_metadata + the first 5-row batch, in this Python process, "
                    f"warm page cache, no HTTP."))
    summary.append(f"{human(PARQUET_SIZE)} Parquet: ours read() {rchar:,} of {size:,} bytes ({100 * rchar / size:.2f} %); "
                   f"page cache after a cold call: {resident:,} bytes ({100 * resident / size:.1f} %, read-ahead "
                   f"{ahead} KB); {ours_s * 1000:.1f} ms cold, {warm_s * 1000:.1f} ms warm")


def block_device(path: Path) -> str | None:
    """The /sys/block name of the disk holding `path` (for its read-ahead setting), if found."""
    dev = os.stat(path).st_dev
    try:
        link = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}").resolve()
    except OSError:
        return None
    for candidate in (link, link.parent):
        if (Path("/sys/block") / candidate.name).exists():
            return candidate.name
    return None


def bench_search(rows: list, versions: dict, summary: list, plots: dict) -> None:
    folder, generated_s = ensure_corpus(DOCS)
    if generated_s is not None:
        log(f"generated the corpus in {generated_s:.1f} s")
    queries = make_queries(WARMUP + QUERIES)
    warmup, measured = queries[:WARMUP], queries[WARMUP:]
    shutil.rmtree(folder / ".mcp-index", ignore_errors=True)
    log(f"indexing {DOCS:,} paragraphs (ours)...")
    build_s, build_rss, out, _ = run_measured(
        [binary("mcp-gateway"), "--data-root", str(folder), "--log-level", "warn", "index"], env=gateway_env())
    index_bytes = sum(p.stat().st_size for p in (folder / ".mcp-index").iterdir())
    gateway = Gateway(folder)
    idle = rss_kib(gateway.proc.pid)
    for query in warmup:
        gateway.call("search", {"query": query, "limit": TOP_K})
    latencies, ours_tops, info = [], [], None
    for query in measured:
        elapsed, result = gateway.call("search", {"query": query, "limit": TOP_K})
        latencies.append(elapsed)
        ours_tops.append([f"{h['path']}:{h['line']}" for h in result["hits"]])
        info = result["index"]
        if not result["hits"]:
            gateway.close()
            sys.exit(f"data.py: ours finds nothing for `{query}`, whose words are all in the corpus")
    peak = rss_kib(gateway.proc.pid, "VmHWM")
    ready_s = gateway.ready_s
    gateway.close()
    if info["source"] != "stored" or info["documents"] != DOCS:
        sys.exit(f"data.py: ours searched a {info['source']} index of {info['documents']} documents, expected stored/{DOCS}")

    log("rank-bm25 over the same paragraphs and queries...")
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump(warmup + measured, file)
    try:
        wall, peer_rss, out, _ = run_measured([sys.executable, __file__, "--peer", "bm25", str(folder), file.name])
    finally:
        os.unlink(file.name)
    peer = json.loads(out)
    if peer["documents"] != DOCS:
        sys.exit(f"data.py: the peer split {peer['documents']} paragraphs, ours indexed {DOCS}")
    peer_lat = peer["latencies"][WARMUP:]
    peer_tops = peer["tops"][WARMUP:]
    overlap = statistics.mean(len(set(a) & set(b)) / max(1, min(len(a), len(b))) for a, b in zip(ours_tops, peer_tops))
    top1 = statistics.mean(a[:1] == b[:1] for a, b in zip(ours_tops, peer_tops))
    peer_name = f"rank-bm25 {versions['rank-bm25']} (BM25Okapi)"
    ms = lambda values, q: percentile(values, q) * 1000  # noqa: E731
    corpus_bytes = sum(p.stat().st_size for p in folder.rglob("*.md"))
    common = (f"{len(measured)} different 1-3 word queries, sequential, top {TOP_K}, after {WARMUP} warm-up queries; "
              f"{DOCS:,} paragraphs in {DOCS // PARAGRAPHS_PER_FILE:,} Markdown files ({corpus_bytes / 1e6:.1f} MB). "
              f"Ours: one tools/call each over HTTP keep-alive (includes the round trip, JSON, snippets), stored index. "
              f"Peer: BM25Okapi.get_top_n in-process, no HTTP, no snippets. Same top-{TOP_K} set overlap "
              f"{100 * overlap:.0f} %, same best hit {100 * top1:.0f} % (ours stems, BM25 parameters differ)")
    small = (" Missed: on a corpus this small the HTTP round trip and JSON framing (about 1 ms here) are most of "
             "ours' time, while rank-bm25's cost grows with the corpus (it scores every document in Python).")
    for q in (50, 99):
        met = ms(latencies, q) <= ms(peer_lat, q)
        rows.append(row("Data", f"search: query latency p{q}", "ms", ms(latencies, q), peer_name, ms(peer_lat, q),
                        "lower", "≤ rank-bm25", met, common + "." + ("" if met else small)))
    rows.append(row("Data", f"search: index build, {DOCS:,} paragraphs", "s", build_s, peer_name, peer["build_s"],
                    "lower", "≤ rank-bm25", build_s <= peer["build_s"],
                    f"Ours: wall time of `mcp-gateway index` (list, read, tokenize+stem, write {index_bytes / 1e6:.1f} MB "
                    f"of index to disk; peak RSS {build_rss / 1024:.0f} MiB). Peer: read files + split paragraphs "
                    f"({peer['read_s']:.2f} s), tokenize ({peer['tokenize_s']:.2f} s), BM25Okapi() "
                    f"({peer['build_s'] - peer['read_s'] - peer['tokenize_s']:.2f} s), in memory, excluding interpreter "
                    f"start-up." + ("" if build_s <= peer["build_s"] else
                                    " Missed: on a corpus this small ours' fixed costs (process start, creating and "
                                    "committing the index files on disk) dominate.")))
    rows.append(row("Data", "search: peak RSS after the queries", "MiB", peak / 1024, peer_name, peer_rss / 1024,
                    "lower", "≤ rank-bm25", peak <= peer_rss,
                    f"Ours: VmHWM of the server after {WARMUP + len(measured)} queries (idle {idle / 1024:.1f} MiB after "
                    f"loading the stored index, ready {ready_s * 1000:.0f} ms after exec); the index is memory-mapped, "
                    f"so its pages count as they are touched. Peer: ru_maxrss of the Python child that built the "
                    f"index and ran the same queries."))
    summary.append(f"search ({DOCS:,} paragraphs): ours p50 {ms(latencies, 50):.2f} ms, p99 {ms(latencies, 99):.2f} ms "
                   f"(HTTP); rank-bm25 p50 {ms(peer_lat, 50):.2f} ms, p99 {ms(peer_lat, 99):.2f} ms (in-process); build "
                   f"ours {build_s:.2f} s vs {peer['build_s']:.2f} s; RSS {peak / 1024:.0f} vs {peer_rss / 1024:.0f} MiB; "
                   f"top-{TOP_K} overlap {100 * overlap:.0f} %")
    plots["search"] = (latencies, peer_lat, peer_name)


def row(section, measure, unit, ours, peer, peer_value, better, goal, goal_met, note) -> dict:
    rnd = lambda v: None if v is None else (round(v, 4) if isinstance(v, float) else v)  # noqa: E731
    return {"section": section, "measure": measure, "unit": unit, "ours": rnd(ours), "peer": peer,
            "peer_value": rnd(peer_value), "better": better, "goal": goal, "goal_met": goal_met, "note": note}


# --- plots (svgplot: the report's shared chart helpers) -----------------------------------------


def write_plots(rows: list, plots: dict) -> list[str]:
    """Bar charts of the CSV rows and the search latency; returns the file names."""
    def pick(fragment: str) -> list[dict]:
        return [r for r in rows if r["measure"].startswith("dataset_metadata, ") and r["measure"].endswith(fragment)]
    names = []
    for fragment, name, title, unit in ((" CSV: time", "data-csv-time.svg", "dataset_metadata on a CSV: time (s, log)", "s"),
                                        (" CSV: peak RSS", "data-csv-rss.svg", "dataset_metadata on a CSV: peak RSS (MiB, log)", "MiB")):
        chosen = pick(fragment)
        groups = [r["measure"].split(", ")[1].split(":")[0] for r in chosen]
        series = {"mcp-gateway": [r["ours"] for r in chosen], chosen[0]["peer"]: [r["peer_value"] for r in chosen]}
        (OUT / name).write_text(svgplot.bars(title, unit, groups, series, log=True))
        names.append(name)
    ours, peer, peer_name = plots["search"]
    (OUT / "data-search-latency.svg").write_text(svgplot.bars(
        f"search latency, {DOCS:,} paragraphs (ms, log)", "ms", ["p50", "p90", "p99"],
        {"mcp-gateway (over HTTP)": [percentile(ours, q) * 1000 for q in (50, 90, 99)],
         f"{peer_name} (in-process)": [percentile(peer, q) * 1000 for q in (50, 90, 99)]}, log=True))
    names.append("data-search-latency.svg")
    return names


# --- main ---------------------------------------------------------------------------------------


def versions() -> dict:
    from importlib.metadata import version
    gateway = subprocess.run([binary("mcp-gateway"), "--version"], capture_output=True, text=True, check=True)
    return {"mcp-gateway": gateway.stdout.strip(), "python": platform.python_version(),
            "pandas": pd.__version__, "pyarrow": pa.__version__, "numpy": np.__version__,
            "rank-bm25": version("rank-bm25"), "httpx": httpx.__version__}


def main() -> None:
    if MISSING:
        sys.exit(f"data.py needs {', '.join(MISSING)} (missing from {sys.executable}): run it with .tools/venv/bin/python "
                 f"after `make tools` (pins in tests/requirements.txt)")
    if len(sys.argv) > 1 and sys.argv[1] == "--peer":
        if sys.argv[2] == "pandas":
            peer_pandas(sys.argv[3], sys.argv[4])
        else:
            peer_bm25(sys.argv[3], sys.argv[4])
        return
    started = time.perf_counter()
    info = versions()
    log(f"{'quick' if QUICK else 'full'} run, {info['mcp-gateway']} ({PROFILE}); data cached in {CACHE}")
    rows, summary, plots = [], [], {}
    bench_csv(rows, info, summary)
    bench_parquet(rows, info, summary)
    bench_search(rows, info, summary, plots)
    OUT.mkdir(parents=True, exist_ok=True)
    plot_names = write_plots(rows, plots)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    result = {"bench": "data", "quick": QUICK, "profile": PROFILE, "seconds": round(time.perf_counter() - started, 1), "versions": info,
              "machine": f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu})",
              "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "rows": rows, "plots": plot_names}
    (OUT / "data.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(f"data.py ({'quick' if QUICK else 'full'} run, {PROFILE} build, {result['seconds']:.0f} s):")
    for line in summary:
        print(f"  {line}")
    met = [r for r in rows if r["goal_met"] is not None]
    print(f"  goals met: {sum(r['goal_met'] for r in met)} of {len(met)}"
          + "".join(f"\n    missed: {r['measure']}" for r in met if not r["goal_met"]))
    print(f"written to {OUT / 'data.json'}, plots {', '.join(plot_names)}")


if __name__ == "__main__":
    main()
