//go:build tools

// Package kubo pins the kubo version that scripts/kubo.sh builds for the
// --ipfs-api integration test and the CID cross-check. It is a separate module
// so that the node never links kubo.
package kubo

import _ "github.com/ipfs/kubo/cmd/ipfs"
