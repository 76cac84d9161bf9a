#!/usr/bin/env bash
# A Python venv holding exactly what a requirements file pins, made once per machine and shared by
# every checkout: it lives in $TOOL_CACHE (default ~/.cache/mcp-lambda-gateway/tools) under the
# hash of python3's version, the file and the pip arguments, and LINK (e.g. .tools/venv) points
# at it. A clean clone with a warm cache links in a second instead of installing for a minute.
#
# Usage: bash tests/venv.sh LINK REQUIREMENTS [PIP ARGS...]   (e.g. --no-deps)
set -euo pipefail

link="$1" pins="$2"
shift 2
cache="${TOOL_CACHE:-$HOME/.cache/mcp-lambda-gateway/tools}"
stamp="$({ python3 --version; cat "$pins"; echo "$*"; } | sha256sum | cut -c1-16)"
dir="$cache/venv-$(basename "$pins" .txt)-$stamp"

if [[ ! -f "$dir/.installed" ]]; then
  echo "venv.sh: installing $pins into $dir" >&2
  rm -rf "$dir"
  mkdir -p "$cache"
  python3 -m venv "$dir"
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@" -r "$pins"
  touch "$dir/.installed"
fi
# A venv made in place by an older Makefile is a directory: replace it by the link.
if [[ -e "$link" && ! -L "$link" ]]; then
  rm -rf "$link"
fi
mkdir -p "$(dirname "$link")"
ln -sfn "$dir" "$link"
