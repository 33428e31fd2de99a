package api

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// corsMethods are the methods the API answers cross-origin.
const corsMethods = "GET, HEAD, POST, OPTIONS"

// middleware wraps the mux with, from the outside in: metrics, panic recovery and
// CORS (including preflights).
func (s *server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			route := r.Pattern
			if route == "" || route == "/" {
				route = "unmatched"
			}
			status := rec.status
			switch {
			case rec.hijacked:
				status = http.StatusSwitchingProtocols
			case status == 0:
				status = http.StatusOK
			}
			s.metrics.observe(r.Method, route, status, time.Since(start))
		}()
		defer s.recoverPanic(rec, r)

		h := rec.Header()
		h.Set("Access-Control-Allow-Origin", s.cfg.CORSOrigin)
		h.Set("Access-Control-Expose-Headers", "*")
		if r.Method == http.MethodOptions {
			s.preflight(rec, r)
			return
		}
		if strings.HasPrefix(r.URL.Path, "/ipfs/") && !gatewayPathOK(r) {
			writeError(rec, http.StatusBadRequest, "invalid gateway path: no '.' or '..' segments, empty segments or encoded slashes")
			return
		}
		next.ServeHTTP(rec, r)
	})
}

// preflight answers OPTIONS for any known path: 204 with the allowed methods and
// whatever headers the browser asks for.
func (s *server) preflight(w http.ResponseWriter, r *http.Request) {
	if !s.pathKnown(r) {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsMethods)
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
	} else {
		h.Set("Access-Control-Allow-Headers", "*")
	}
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", corsMethods)
	w.WriteHeader(http.StatusNoContent)
}

// allowedMethods returns the methods that some route answers for r's path.
func (s *server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			out = append(out, m)
		}
	}
	return out
}

func (s *server) pathKnown(r *http.Request) bool { return len(s.allowedMethods(r)) > 0 }

// fallback answers paths no route matched: 405 (with Allow) when another method
// would match, 404 otherwise, both as JSON.
func (s *server) fallback(w http.ResponseWriter, r *http.Request) {
	methods := s.allowedMethods(r)
	if len(methods) == 0 {
		writeError(w, http.StatusNotFound, "not found")
		return
	}
	allow := ""
	for _, m := range methods {
		if allow != "" {
			allow += ", "
		}
		allow += m
		if m == http.MethodGet {
			allow += ", HEAD"
		}
	}
	w.Header().Set("Allow", allow+", OPTIONS")
	writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
}

// recoverPanic turns a handler panic (a bug) into a logged 500. http.ErrAbortHandler
// keeps its meaning.
func (s *server) recoverPanic(w *statusRecorder, r *http.Request) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // sentinel value, compared as net/http does
		panic(v)
	}
	s.log.Error("api handler panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
	if w.status == 0 && !w.hijacked {
		writeError(w, http.StatusInternalServerError, "internal error")
	}
}

// statusRecorder remembers the status code written, for metrics and recovery.
type statusRecorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's fast path (sendfile) for downloads.
func (w *statusRecorder) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack is used by the websocket upgrade.
func (w *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack: response writer does not support it")
	}
	c, rw, err := hj.Hijack()
	if err == nil {
		w.hijacked = true
	}
	return c, rw, err
}

// Flush passes flushes through.
func (w *statusRecorder) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// itoa is strconv.Itoa, short.
func itoa(n int) string { return strconv.Itoa(n) }
