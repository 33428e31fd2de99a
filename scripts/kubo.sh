#!/usr/bin/env bash
# Builds kubo (the reference IPFS node) from the Go module proxy, once, into a
# cache outside the repository, and prints the binary's path. Tests use it
# through ALEPH_TEST_KUBO for the --ipfs-api integration test and to check our
# CIDs against `ipfs add`. The node itself never links kubo.
#
#   export ALEPH_TEST_KUBO="$(scripts/kubo.sh)"
set -euo pipefail
cd "$(dirname "$0")/../tools/kubo"
version=$(awk '$1 == "github.com/ipfs/kubo" { print $2 } $1 == "require" && $2 == "github.com/ipfs/kubo" { print $3 }' go.mod)
cache="${ALEPH_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/go-aleph}/kubo-$version"
bin="$cache/ipfs"
if [[ ! -x "$bin" ]]; then
	mkdir -p "$cache"
	echo "building kubo $version into $cache (once; about two minutes)" >&2
	go build -trimpath -o "$bin.tmp" github.com/ipfs/kubo/cmd/ipfs
	mv "$bin.tmp" "$bin"
fi
echo "$bin"
