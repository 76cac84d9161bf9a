#!/usr/bin/env bash
# Installs the benchmark peers' tools into local folders; quiet, and a no-op when up to date.
#
#   .tools/bench-venv         FastMCP 4.1.6, rank-bm25, httpx   (requirements-fastmcp.txt)
#   .tools/aws-proxy-venv     mcp-proxy-for-aws 1.7.0           (requirements-aws-proxy.txt)
#   benches/peers/node_modules  @modelcontextprotocol/sdk 1.32.2 and Node 22 (package-lock.json)
#   .tools/wrk                wrk 4.1.0, the HTTP load generator (Debian's package and its LuaJIT)
#
# Each part is skipped while its marker holds the hash of the files it was installed from; the
# venvs live in the tool cache (tests/venv.sh), keyed the same way, and are linked here. Both pin
# files are full `pip freeze` lists installed with --no-deps: that is what lets FastMCP 4.1.6 in
# at all, since fastmcp-slim's [server] extra asks for certifi>=2026.10.19, newer than the
# registry has, and certifi 2026.10.18 works.
#
# Usage: bash benches/peers/install.sh   (from anywhere; BENCH_TOOLS=DIR moves the links)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tools="${BENCH_TOOLS:-$repo/.tools}"

stamp() { { python3 --version; cat "$@"; } | sha256sum | cut -d' ' -f1; }

# The venvs are made once per machine (tests/venv.sh) and linked here.
bash "$repo/tests/venv.sh" "$tools/bench-venv" "$here/requirements-fastmcp.txt" --no-deps
bash "$repo/tests/venv.sh" "$tools/aws-proxy-venv" "$here/requirements-aws-proxy.txt" --no-deps

want="$(stamp "$here/package.json" "$here/package-lock.json")"
marker="$here/node_modules/.installed"
if [[ ! -f "$marker" || "$(cat "$marker")" != "$want" ]]; then
  echo "install.sh: npm ci in $here" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" > "$marker"
fi

# wrk from Debian's packages, unpacked into a folder (no root needed): `apt-get download` fetches the
# exact versions below, `dpkg -x` unpacks them, and `.tools/wrk/wrk` runs it with its LuaJIT.
WRK_PACKAGES=(wrk=4.1.0-3+b2 "libluajit-5.1-2=2.1.0~beta3+git20220320+dfsg-4.1+deb12u1")
wrk_dir="$tools/wrk"
want="$(printf '%s\n' "${WRK_PACKAGES[@]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "$wrk_dir/.installed" || "$(cat "$wrk_dir/.installed")" != "$want" ]]; then
  echo "install.sh: unpacking ${WRK_PACKAGES[*]} into $wrk_dir" >&2
  rm -rf "$wrk_dir"
  mkdir -p "$wrk_dir/debs"
  if ! (cd "$wrk_dir/debs" && apt-get download -q "${WRK_PACKAGES[@]}" >"$wrk_dir/apt.log" 2>&1); then
    echo "install.sh: apt-get download ${WRK_PACKAGES[*]} failed (Debian's package index may need \`apt-get update\`):" >&2
    cat "$wrk_dir/apt.log" >&2
    exit 1
  fi
  for deb in "$wrk_dir"/debs/*.deb; do dpkg -x "$deb" "$wrk_dir/root"; done
  lib="$(dirname "$(find "$wrk_dir/root" -name 'libluajit-5.1.so.2' | head -1)")"
  cat > "$wrk_dir/wrk" <<WRAPPER
#!/usr/bin/env bash
LD_LIBRARY_PATH="$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$wrk_dir/root/usr/bin/wrk" "\$@"
WRAPPER
  chmod +x "$wrk_dir/wrk"
  version="$("$wrk_dir/wrk" --version 2>&1 || true)"  # prints its version, then usage, and exits 1
  [[ "$version" == wrk* ]] || { echo "install.sh: wrk does not run: $version" >&2; exit 1; }
  echo "$want" > "$wrk_dir/.installed"
fi
