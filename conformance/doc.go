// Package conformance holds the end-to-end conformance test of a go-aleph node
// against the official Aleph TypeScript SDK: the test builds alephd, runs
// `alephd dev` as a real subprocess on a free local port, and drives it with
// the Node.js scenario in ts/ (the SDK from npm, pinned by ts/package-lock.json).
// The package has no non-test code.
//
// Install the SDK once with `npm ci --prefix conformance/ts` (or
// scripts/conformance-deps.sh). Without it the test skips, except in CI (env
// CI set) where it fails.
package conformance
