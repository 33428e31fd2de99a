// Package api is the compute node's HTTP interface on port 4020, with
// aleph-vm's routes and shapes (crn-compute.md §4): programs on
// /vm/{item_hash}/{path} and on {base32(hash)}.{domain}, the execution lists
// the scheduler reads, host usage, login, version and configuration, and a
// self-check that runs the node's built-in test program. Every answer carries
// `Server: aleph-vm/<version>`; every error is JSON {"error": text}.
//
// Running programs is the Pool's job (crn/supervisor); this package only
// routes and shapes.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/crn/hostinfo"
)

// Pool runs programs; crn/supervisor implements it.
type Pool interface {
	// ServeProgram runs the request on the program itemHash (a lowercase hex
	// item hash), with path as the program sees it ("/" at least), and writes
	// the program's answer or an aleph-vm error (400, 502, 503, 504).
	ServeProgram(w http.ResponseWriter, r *http.Request, itemHash, path string)
	// Executions lists the executions the node knows, running or not.
	Executions() []Execution
}

// Execution is one execution, as the execution lists show it.
type Execution struct {
	Hash    string
	VMType  string // "microvm", "persistent_program" or "instance"
	Running bool
	Times   Times
	// IPv4Network etc. are set for executions with a network.
	IPv4Network, HostIPv4, IPv4IP, IPv6Network, IPv6IP string
}

// Times are an execution's lifecycle timestamps; zero means not reached.
type Times struct {
	DefinedAt, PreparingAt, PreparedAt, StartingAt, StartedAt, StoppingAt, StoppedAt time.Time
}

// Deps are what the API serves from.
type Deps struct {
	Pool Pool
	// Version is reported in the Server header and by /status/check/version.
	Version string
	// Domain is the node's public host name (program host names are
	// {base32(hash)}.{Domain}).
	Domain string
	// LoginToken opens /about/login; generated per start.
	LoginToken string
	// Usage reads /about/usage/system.
	Usage func(now time.Time) (hostinfo.Usage, error)
	// SelfCheck runs the built-in test program end to end.
	SelfCheck func(ctx context.Context) error
	// PublicConfig is served by /status/config.
	PublicConfig any
	// Settings is served by /about/config to a logged-in operator.
	Settings any
	// Control serves the owner's /control/machine/{ref}/… routes; nil: 503.
	Control Control
	// Authorized reports whether sender may control the VMs of owner besides
	// owner itself (ownerauth.Authorizer.Authorized); nil: only the owner.
	Authorized func(ctx context.Context, owner, sender string) (bool, error)
	Now        func() time.Time
	Log        *slog.Logger
}

// server holds what handlers share.
type server struct {
	d   Deps
	mux *http.ServeMux
}

// New returns the API handler.
func New(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	s := &server{d: d, mux: http.NewServeMux()}
	s.mux.HandleFunc("/vm/{ref}", s.vmPath)
	s.mux.HandleFunc("/vm/{ref}/{path...}", s.vmPath)
	s.mux.HandleFunc("GET /about/login", s.login)
	s.mux.HandleFunc("GET /about/config", s.config)
	s.mux.HandleFunc("GET /about/executions/list", s.executionsV1)
	s.mux.HandleFunc("GET /v2/about/executions/list", s.executionsV2)
	s.mux.HandleFunc("GET /about/usage/system", s.usage)
	s.mux.HandleFunc("GET /status/check/version", s.checkVersion)
	s.mux.HandleFunc("GET /status/check/program", s.checkProgram)
	s.mux.HandleFunc("GET /status/config", s.statusConfig)
	s.registerControl()
	for _, p := range []string{"/about/", "/control/", "/status/", "/v2/"} {
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
		})
	}
	s.mux.HandleFunc("/", s.root)
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "aleph-vm/"+s.d.Version)
	if isCORSRoute(r.URL.Path) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "*")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	// Host routing: {base32(hash)}.{domain} runs the program whatever the path.
	if hash, ok := s.hostProgram(r.Host); ok {
		s.serveProgram(w, r, hash, r.URL.Path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func isCORSRoute(p string) bool {
	return strings.HasPrefix(p, "/about/") || strings.HasPrefix(p, "/status/") ||
		strings.HasPrefix(p, "/v2/about/") || strings.HasPrefix(p, "/control/")
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// hostProgram decodes a program host name: the first label is the lowercase,
// unpadded base32 of the 32 hash bytes (52 characters).
func (s *server) hostProgram(host string) (string, bool) {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	label, rest, ok := strings.Cut(host, ".")
	if !ok || len(label) != 52 {
		return "", false
	}
	if s.d.Domain != "" && !strings.EqualFold(rest, s.d.Domain) {
		return "", false
	}
	raw, err := b32.DecodeString(strings.ToUpper(label))
	if err != nil || len(raw) != 32 {
		return "", false
	}
	return hex.EncodeToString(raw), true
}

// HostName is the host name a program answers on under domain.
func HostName(itemHash, domain string) (string, error) {
	raw, err := hex.DecodeString(itemHash)
	if err != nil || len(raw) != 32 {
		return "", fmt.Errorf("%q is not an item hash", itemHash)
	}
	return strings.ToLower(b32.EncodeToString(raw)) + "." + domain, nil
}

var itemHashRE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

func (s *server) vmPath(w http.ResponseWriter, r *http.Request) {
	ref := r.PathValue("ref")
	if !itemHashRE.MatchString(ref) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid program hash %q: want 64 hex characters", clip(ref)))
		return
	}
	path := "/" + r.PathValue("path")
	s.serveProgram(w, r, strings.ToLower(ref), path)
}

func (s *server) serveProgram(w http.ResponseWriter, r *http.Request, hash, path string) {
	if s.d.Pool == nil {
		writeError(w, http.StatusServiceUnavailable, "this node runs no programs")
		return
	}
	s.d.Pool.ServeProgram(w, r, hash, path)
}

func (s *server) root(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		writeError(w, http.StatusNotFound, "no such route: "+r.URL.Path)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<!doctype html><title>go-aleph compute node</title><h1>go-aleph compute node</h1>
<p>aleph-vm protocol, version %s.</p><ul><li><a href="/about/executions/list">executions</a></li>
<li><a href="/about/usage/system">usage</a></li><li><a href="/status/check/program">self-check</a></li>
<li><a href="/status/config">configuration</a></li></ul>`, htmlEscape(s.d.Version))
}

// login: the right token sets the cookie and redirects to /about/config; anything else is 401,
// which is what aleph-scoring measures as the node's base latency.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if s.d.LoginToken == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.d.LoginToken)) != 1 {
		writeJSON(w, http.StatusUnauthorized, map[string]bool{"success": false})
		return
	}
	http.SetCookie(w, &http.Cookie{Name: "token", Value: tok, Path: "/about/", HttpOnly: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/about/config", http.StatusFound)
}

func (s *server) loggedIn(r *http.Request) bool {
	c, err := r.Cookie("token")
	return err == nil && s.d.LoginToken != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(s.d.LoginToken)) == 1
}

func (s *server) config(w http.ResponseWriter, r *http.Request) {
	if !s.loggedIn(r) {
		writeError(w, http.StatusUnauthorized, "log in with /about/login?token=… first")
		return
	}
	writeJSON(w, http.StatusOK, s.d.Settings)
}

func (s *server) executions() []Execution {
	if s.d.Pool == nil {
		return nil
	}
	return s.d.Pool.Executions()
}

func (s *server) executionsV1(w http.ResponseWriter, _ *http.Request) {
	out := map[string]any{}
	for _, e := range s.executions() {
		if !e.Running {
			continue
		}
		net := map[string]any{}
		if e.IPv4Network != "" {
			net["ipv4"] = e.IPv4Network
		}
		if e.IPv6Network != "" {
			net["ipv6"] = e.IPv6Network
		}
		out[e.Hash] = map[string]any{"networking": net, "vm_type": e.VMType, "awaiting_confidential_init": false}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) executionsV2(w http.ResponseWriter, _ *http.Request) {
	out := map[string]any{}
	for _, e := range s.executions() {
		net := map[string]any{}
		if e.IPv4Network != "" {
			net = map[string]any{"ipv4_network": e.IPv4Network, "host_ipv4": e.HostIPv4, "ipv4_ip": e.IPv4IP,
				"ipv6_network": nullable(e.IPv6Network), "ipv6_ip": nullable(e.IPv6IP), "mapped_ports": map[string]any{}}
		}
		t := e.Times
		out[e.Hash] = map[string]any{
			"networking": net,
			"status": map[string]any{
				"defined_at": ts(t.DefinedAt), "preparing_at": ts(t.PreparingAt), "prepared_at": ts(t.PreparedAt),
				"starting_at": ts(t.StartingAt), "started_at": ts(t.StartedAt), "stopping_at": ts(t.StoppingAt),
				"stopped_at": ts(t.StoppedAt),
			},
			"running": e.Running, "awaiting_confidential_init": false, "vm_type": e.VMType,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ts formats a lifecycle time as aleph-vm does (ISO 8601 with microseconds and
// an offset), or null.
func ts(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000+00:00")
}

func (s *server) usage(w http.ResponseWriter, _ *http.Request) {
	if s.d.Usage == nil {
		writeError(w, http.StatusServiceUnavailable, "usage is not available on this node")
		return
	}
	u, err := s.d.Usage(s.d.Now())
	if err != nil {
		// Partial figures are still useful to the scheduler; say what failed in the log.
		s.d.Log.Warn("host usage", "err", err)
	}
	writeJSON(w, http.StatusOK, u)
}

// checkVersion answers 200 "Up-to-date" when ?reference= is this version or
// older, 403 "Outdated" when newer, 400 when it is not a version.
func (s *server) checkVersion(w http.ResponseWriter, r *http.Request) {
	ref := r.URL.Query().Get("reference")
	if ref == "" {
		writeError(w, http.StatusBadRequest, "the reference query parameter is required (?reference=1.2.3)")
		return
	}
	rv, ok1 := parseVersion(ref)
	cv, ok2 := parseVersion(s.d.Version)
	if !ok1 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("reference %q is not a version such as 1.2.3", clip(ref)))
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if ok2 && compareVersions(cv, rv) >= 0 {
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "Up-to-date: version %s >= %s", s.d.Version, ref)
		return
	}
	w.WriteHeader(http.StatusForbidden)
	fmt.Fprintf(w, "Outdated: version %s < %s", s.d.Version, ref)
}

func parseVersion(v string) ([3]int, bool) {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) < 1 || len(parts) > 3 {
		return [3]int{}, false
	}
	var out [3]int
	for i, p := range parts {
		n := 0
		if p == "" {
			return [3]int{}, false
		}
		for _, c := range p {
			if c < '0' || c > '9' || n > 1e6 {
				return [3]int{}, false
			}
			n = n*10 + int(c-'0')
		}
		out[i] = n
	}
	return out, true
}

func compareVersions(a, b [3]int) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

func (s *server) checkProgram(w http.ResponseWriter, r *http.Request) {
	if s.d.SelfCheck == nil {
		writeError(w, http.StatusServiceUnavailable, "no built-in test program on this node")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.d.SelfCheck(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"success": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "seconds": time.Since(start).Seconds()})
}

func (s *server) statusConfig(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.d.PublicConfig)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// WriteError writes aleph-vm's JSON error body; the supervisor uses it too.
func WriteError(w http.ResponseWriter, status int, msg string) { writeError(w, status, msg) }

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
