#!/bin/bash
# Packs what an EC2 instance installs into one reproducible tar.gz and prints its SHA-256 (the
# template's ArtifactSha256):
#
#   bundle.sh BINARY OUT.tar.gz [ACCESS.toml]
#
# BINARY is an arm64 Linux mcp-gateway (e.g. `make build`'s target/lambda/mcp-gateway/bootstrap:
# the Lambda bootstrap is the same program, and runs `serve` when told to). The bundle holds it,
# install.sh, the systemd unit and, when given, the access file that replaces the generated one.
set -euo pipefail
[ $# -ge 2 ] && [ $# -le 3 ] || { echo "usage: bundle.sh BINARY OUT.tar.gz [ACCESS.toml]" >&2; exit 2; }
binary=$1 out=$2 access=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$binary" ] || { echo "bundle.sh: $binary is not an executable file" >&2; exit 2; }
[ -z "$access" ] || [ -f "$access" ] || { echo "bundle.sh: no access file $access" >&2; exit 2; }

staging=$(mktemp -d)
trap 'rm -rf "$staging"' EXIT
mkdir "$staging/mcp-gateway-bundle"
install -m 0755 "$binary" "$staging/mcp-gateway-bundle/mcp-gateway"
install -m 0755 "$here/install.sh" "$staging/mcp-gateway-bundle/install.sh"
install -m 0644 "$here/mcp-gateway.service" "$staging/mcp-gateway-bundle/mcp-gateway.service"
[ -z "$access" ] || install -m 0600 "$access" "$staging/mcp-gateway-bundle/access.toml"
# Same inputs, same bytes: sorted names, no owners, no times.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$staging" -cf - mcp-gateway-bundle \
  | gzip -n -9 > "$out"
sha256sum "$out" | cut -d' ' -f1
