package guestapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strings"
)

// proxiedPrefixes is the allow-list of CCN paths a program may read: the
// read API, and nothing of the node's metrics, docs, websocket or gateway.
var proxiedPrefixes = []string{"/api/v0/", "/api/v1/"}

// Headers passed each way; everything else (cookies, auth, hop-by-hop) stays.
var (
	proxyRequestHeaders  = []string{"Accept", "Accept-Encoding", "Range", "If-None-Match", "If-Modified-Since", "User-Agent"}
	proxyResponseHeaders = []string{"Content-Type", "Content-Length", "Content-Encoding", "Content-Range", "Accept-Ranges", "Content-Disposition", "ETag", "Last-Modified", "Cache-Control"}
)

// ProxyAllowed reports whether a (decoded) request path may be proxied: a
// clean path under an allowed prefix.
func ProxyAllowed(p string) bool {
	if p == "" || path.Clean(p) != p && path.Clean(p)+"/" != p {
		return false
	}
	for _, pre := range proxiedPrefixes {
		if strings.HasPrefix(p, pre) {
			return true
		}
	}
	return false
}

func (h *Handler) proxy(w http.ResponseWriter, r *http.Request) {
	if !ProxyAllowed(r.URL.Path) {
		writeError(w, http.StatusForbidden, fmt.Sprintf("path %s is not reachable from a program: only /api/v0/ and /api/v1/ paths are proxied to the ccn", truncate(r.URL.Path, 100)))
		return
	}
	if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
		writeError(w, http.StatusBadRequest, "proxied requests must not have a body")
		return
	}
	// The cleaned, decoded path re-encoded: what the allow-list checked is what
	// the CCN gets.
	target := *h.ccn
	target.Path = strings.TrimRight(h.ccn.Path, "/") + r.URL.Path
	target.RawPath = ""
	target.RawQuery = r.URL.RawQuery
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ProxyTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, target.String(), nil)
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot build the proxied request")
		return
	}
	for _, k := range proxyRequestHeaders {
		if v := r.Header.Values(k); len(v) > 0 {
			req.Header[k] = v
		}
	}
	resp, err := h.cfg.HTTPClient.Do(req)
	if err != nil {
		h.proxyError(w, r, err)
		return
	}
	defer resp.Body.Close()
	for _, k := range proxyResponseHeaders {
		if v := resp.Header.Values(k); len(v) > 0 {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, resp.Body); err != nil && r.Context().Err() == nil {
		// Headers are gone; the program sees a short body.
		h.log.Debug("guest api proxy copy ended", "path", r.URL.Path, "err", err)
	}
}

func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	var uerr *url.Error
	switch {
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &uerr) && uerr.Timeout():
		writeError(w, http.StatusGatewayTimeout, "the ccn did not answer in time")
	default:
		h.log.Warn("guest api proxy failed", "path", r.URL.Path, "err", err)
		writeError(w, http.StatusBadGateway, "the ccn is unreachable")
	}
}
