#!/usr/bin/env bash
# Installs the npm dependencies of the TypeScript SDK conformance test
# (conformance/ts) exactly as pinned by its package-lock.json. Idempotent: it
# does nothing when node_modules already matches the lockfile. Quiet unless
# something goes wrong. Needs Node.js 20+ and npm.
set -euo pipefail
dir="$(cd "$(dirname "$0")/.." && pwd)/conformance/ts"
command -v npm >/dev/null 2>&1 || { echo "conformance-deps: npm not found (install Node.js 20+)" >&2; exit 1; }
stamp="$dir/node_modules/.conformance-lock.sha256"
want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -f "$dir/node_modules/@aleph-sdk/client/package.json" ]; then
	exit 0
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error >"$log" 2>&1; then
	cat "$log" >&2
	echo "conformance-deps: npm ci failed in $dir" >&2
	exit 1
fi
echo "$want" >"$stamp"
