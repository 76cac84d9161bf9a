#!/usr/bin/env bash
# Installs the benchmark peers' tools into local folders; quiet, and a no-op when up to date.
#
#   .tools/bench-venv         FastMCP 4.1.6, rank-bm25, httpx   (requirements-fastmcp.txt)
#   .tools/aws-proxy-venv     mcp-proxy-for-aws 1.7.0           (requirements-aws-proxy.txt)
#   benches/peers/node_modules  @modelcontextprotocol/sdk 1.32.2 and Node 22 (package-lock.json)
#
# Each part is skipped while its marker holds the hash of the files it was installed from (and of
# the python3 that made the venv). Both pin files are full `pip freeze` lists installed with
# --no-deps: that is what lets FastMCP 4.1.6 in at all, since fastmcp-slim's [server] extra asks
# for certifi>=2026.10.19, newer than the registry has, and certifi 2026.10.18 works.
#
# Usage: bash benches/peers/install.sh   (from anywhere; BENCH_TOOLS=DIR moves the venvs)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tools="${BENCH_TOOLS:-$repo/.tools}"

stamp() { { python3 --version; cat "$@"; } | sha256sum | cut -d' ' -f1; }

# venv DIR PINS: a venv at DIR holding exactly the pins in PINS.
venv() {
  local dir="$1" pins="$2" want
  want="$(stamp "$pins")"
  [[ -f "$dir/.installed" && "$(cat "$dir/.installed")" == "$want" ]] && return 0
  echo "install.sh: installing $(basename "$pins") into $dir" >&2
  rm -rf "$dir"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$pins"
  echo "$want" > "$dir/.installed"
}

venv "$tools/bench-venv" "$here/requirements-fastmcp.txt"
venv "$tools/aws-proxy-venv" "$here/requirements-aws-proxy.txt"

want="$(stamp "$here/package.json" "$here/package-lock.json")"
marker="$here/node_modules/.installed"
if [[ ! -f "$marker" || "$(cat "$marker")" != "$want" ]]; then
  echo "install.sh: npm ci in $here" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$marker"
fi
