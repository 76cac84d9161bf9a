"""Where the function's binary size goes, by crate (not a timed test; `make bench-size`).

`cargo bloat --crates` on the `profiling` build of mcp-gateway (release code, symbols kept, so each
function's bytes can be put down to its crate) measures the .text section per crate; the rows go
into REPORT.md under "Binary size by crate", next to the shipped (stripped) binary's size. The
`profiling` build is a release build of its own (about 30 minutes on 2 cores when stale), hence a
target apart from `make bench`.

Writes $BENCH_OUT/size.json (format: benches/README.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from common import OUT, ROOT, TARGET, row

# `make bench-size` installs it into the tool cache and says where.
BLOAT = Path(os.environ.get("CARGO_BLOAT", ROOT / ".tools" / "cargo" / "bin" / "cargo-bloat"))
SHOWN = 25  # crates with a row of their own; the rest are summed


def log(message: str) -> None:
    print(f"size.py: {message}", file=sys.stderr, flush=True)


def main() -> None:
    began = time.perf_counter()
    if not BLOAT.exists():
        sys.exit(f"{BLOAT} is missing: `make bench-size` installs it")
    log("cargo bloat --crates on the profiling build (builds it first when stale)")
    env = {**os.environ, "CARGO_TARGET_DIR": str(TARGET)}
    command = [str(BLOAT), "bloat", "--profile", "profiling", "-p", "mcp-gateway", "--bin", "mcp-gateway", "--crates",
               "-n", "0", "--message-format", "json"]
    run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env)
    if run.returncode != 0:
        sys.exit(f"cargo bloat failed:\n{run.stderr[-3000:]}")
    bloat = json.loads(run.stdout.strip().splitlines()[-1])
    text = bloat["text-section-size"]
    crates = sorted(bloat["crates"], key=lambda crate: crate["size"], reverse=True)
    rows = [row("Binary size by crate", "profiling build of mcp-gateway (x86_64): file / .text", "MB",
                bloat["file-size"] / 1e6, note=f".text {text / 1e6:.1f} MB; the shipped release build is the same "
                                               "code without symbols (strip = true)")]
    for crate in crates[:SHOWN]:
        rows.append(row("Binary size by crate", f"`{crate['name']}` in .text", "MB", crate["size"] / 1e6,
                        note=f"{crate['size'] / text * 100:.1f} % of .text"))
    rest = sum(crate["size"] for crate in crates[SHOWN:])
    rows.append(row("Binary size by crate", f"{len(crates) - SHOWN} other crates in .text", "MB", rest / 1e6,
                    note=f"{rest / text * 100:.1f} % of .text"))
    polars = sum(crate["size"] for crate in crates if crate["name"].startswith("polars"))
    rows.append(row("Binary size by crate", "all `polars*` crates in .text", "MB", polars / 1e6,
                    note=f"{polars / text * 100:.1f} % of .text"))
    version = subprocess.run([str(BLOAT), "bloat", "--version"], capture_output=True, text=True).stdout.strip()
    result = {"bench": "size", "quick": False, "profile": "profiling", "seconds": time.perf_counter() - began,
              "versions": {"cargo-bloat": version.removeprefix("cargo-bloat ")}, "rows": rows}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "size.json").write_text(json.dumps(result, indent=2))
    for r in rows:
        print(f"{r['measure']}: {r['ours']:.2f} {r['unit']}  {r['note']}")
    log(f"done in {result['seconds']:.0f} s; wrote {OUT / 'size.json'}")


if __name__ == "__main__":
    main()
