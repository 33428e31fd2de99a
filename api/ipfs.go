package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/go-aleph/go-aleph/unixfs"
)

// ipfsGateway serves GET and HEAD /ipfs/{cid}[/path…] through the file
// service's read-only gateway (directory listings, Range, ETag,
// Cache-Control: immutable). The CID is checked first (400 as JSON); the
// path was checked for traversal by the middleware before routing.
func (s *server) ipfsGateway(w http.ResponseWriter, r *http.Request) {
	c := r.PathValue("cid")
	if _, err := unixfs.ParseCID(c); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid CID %q: want a CIDv0 or a CIDv1 (dag-pb or raw, sha2-256)", clip(c)))
		return
	}
	if s.d.Files == nil {
		writeError(w, http.StatusNotFound, "file not found")
		return
	}
	s.d.Files.Gateway().ServeHTTP(w, r)
}

// gatewayPathOK reports whether a /ipfs/ request path is free of traversal:
// no "." or ".." segment (nor their percent-encoded forms, in case something
// decodes twice), no empty segment before the last, and no encoded slash. The
// DAG has no parent to escape to, but ServeMux would otherwise redirect such
// paths to their cleaned form, and a 4xx names the problem.
func gatewayPathOK(r *http.Request) bool {
	for _, p := range []string{r.URL.Path, r.URL.EscapedPath()} {
		segs := strings.Split(strings.TrimPrefix(p, "/"), "/")
		for i, seg := range segs {
			low := strings.ToLower(seg)
			if seg == "." || seg == ".." || low == "%2e" || low == "%2e%2e" || low == ".%2e" || low == "%2e." {
				return false
			}
			if seg == "" && i < len(segs)-1 {
				return false
			}
			if strings.Contains(low, "%2f") {
				return false
			}
		}
	}
	return true
}
