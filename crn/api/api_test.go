package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/crn/hostinfo"
)

// recordingPool stands in for the supervisor: it records which program and
// path the API routed to and answers with them.
type recordingPool struct {
	mu    sync.Mutex
	calls []string
	execs []Execution
}

func (p *recordingPool) ServeProgram(w http.ResponseWriter, r *http.Request, hash, path string) {
	p.mu.Lock()
	p.calls = append(p.calls, r.Method+" "+hash+" "+path+" "+r.URL.RawQuery)
	p.mu.Unlock()
	w.WriteHeader(http.StatusTeapot)
	io.WriteString(w, "program "+hash[:8]+path)
}

func (p *recordingPool) Executions() []Execution { return p.execs }

const testHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func newTestServer(t *testing.T, pool *recordingPool) *httptest.Server {
	t.Helper()
	h := New(Deps{
		Pool: pool, Version: "1.14.0", Domain: "crn.test", LoginToken: "s3cret",
		Usage:        func(now time.Time) (hostinfo.Usage, error) { return hostinfo.Read(now, t.TempDir(), 0) },
		SelfCheck:    func(context.Context) error { return nil },
		PublicConfig: map[string]any{"version": "1.14.0"},
		Settings:     map[string]any{"API_SERVER": "http://127.0.0.1:4024"},
	})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, req *http.Request) (int, http.Header, string) {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func get(t *testing.T, url string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	return do(t, req)
}

func TestProgramRouting(t *testing.T) {
	pool := &recordingPool{}
	srv := newTestServer(t, pool)
	host, err := HostName(testHash, "crn.test")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		method   string
		url      string
		host     string
		wantCode int
		wantCall string
	}{
		{"path", "GET", "/vm/" + testHash + "/a/b?x=1", "", 418, "GET " + testHash + " /a/b x=1"},
		{"root", "POST", "/vm/" + testHash, "", 418, "POST " + testHash + " / "},
		{"uppercase hash", "GET", "/vm/" + strings.ToUpper(testHash) + "/", "", 418, "GET " + testHash + " / "},
		{"host name", "PUT", "/some/path", host, 418, "PUT " + testHash + " /some/path "},
		{"host name with port", "GET", "/", host + ":4020", 418, "GET " + testHash + " / "},
		{"other domain is not a program", "GET", "/", strings.Replace(host, "crn.test", "other.test", 1), 200, ""},
		{"bad hash", "GET", "/vm/nothex/x", "", 400, ""},
		{"short hash", "GET", "/vm/abcd", "", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pool.mu.Lock()
			pool.calls = nil
			pool.mu.Unlock()
			req, _ := http.NewRequest(tt.method, srv.URL+tt.url, nil)
			if tt.host != "" {
				req.Host = tt.host
			}
			code, h, body := do(t, req)
			if code != tt.wantCode {
				t.Fatalf("status %d (%s), want %d", code, body, tt.wantCode)
			}
			if h.Get("Server") != "aleph-vm/1.14.0" {
				t.Fatalf("Server header %q", h.Get("Server"))
			}
			pool.mu.Lock()
			defer pool.mu.Unlock()
			if tt.wantCall == "" && len(pool.calls) != 0 || tt.wantCall != "" && (len(pool.calls) != 1 || pool.calls[0] != tt.wantCall) {
				t.Fatalf("pool calls %q, want %q", pool.calls, tt.wantCall)
			}
			if code == 400 && !strings.Contains(body, `"error"`) {
				t.Fatalf("error body is not JSON: %s", body)
			}
		})
	}
}

func TestHostNameRoundTrip(t *testing.T) {
	h, err := HostName(testHash, "crn.test")
	if err != nil {
		t.Fatal(err)
	}
	label, _, _ := strings.Cut(h, ".")
	if len(label) != 52 || strings.ToLower(label) != label {
		t.Fatalf("label %q: want 52 lowercase base32 characters", label)
	}
	s := &server{d: Deps{Domain: "crn.test"}}
	if got, ok := s.hostProgram(h); !ok || got != testHash {
		t.Fatalf("decoded %q, %v", got, ok)
	}
	if _, err := HostName("xyz", "d"); err == nil {
		t.Fatal("HostName accepted a bad hash")
	}
}

func TestLoginAndConfig(t *testing.T) {
	srv := newTestServer(t, &recordingPool{})
	if code, _, body := get(t, srv.URL+"/about/login"); code != 401 || !strings.Contains(body, `"success":false`) {
		t.Fatalf("login without token: %d %s", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/about/login?token=wrong"); code != 401 {
		t.Fatalf("wrong token: %d", code)
	}
	if code, _, _ := get(t, srv.URL+"/about/config"); code != 401 {
		t.Fatalf("config without cookie: %d", code)
	}
	code, h, _ := get(t, srv.URL+"/about/login?token=s3cret")
	if code != http.StatusFound || h.Get("Location") != "/about/config" {
		t.Fatalf("login: %d %v", code, h)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/about/config", nil)
	for _, c := range (&http.Response{Header: h}).Cookies() {
		req.AddCookie(c)
	}
	if code, _, body := do(t, req); code != 200 || !strings.Contains(body, "API_SERVER") {
		t.Fatalf("config with cookie: %d %s", code, body)
	}
}

func TestExecutionLists(t *testing.T) {
	started := time.Date(2026, 11, 21, 12, 0, 0, 123456000, time.UTC)
	pool := &recordingPool{execs: []Execution{
		{Hash: testHash, VMType: "microvm", Running: true, Times: Times{DefinedAt: started, StartedAt: started}},
		{Hash: strings.Repeat("ab", 32), VMType: "persistent_program", Running: false},
	}}
	srv := newTestServer(t, pool)
	_, _, body := get(t, srv.URL+"/about/executions/list")
	var v1 map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &v1); err != nil {
		t.Fatal(err)
	}
	if len(v1) != 1 || v1[testHash]["vm_type"] != "microvm" {
		t.Fatalf("v1 lists running executions only: %s", body)
	}
	_, _, body = get(t, srv.URL+"/v2/about/executions/list")
	var v2 map[string]struct {
		Running bool               `json:"running"`
		Status  map[string]*string `json:"status"`
		VMType  string             `json:"vm_type"`
	}
	if err := json.Unmarshal([]byte(body), &v2); err != nil {
		t.Fatal(err)
	}
	e := v2[testHash]
	if len(v2) != 2 || !e.Running || e.Status["started_at"] == nil || *e.Status["started_at"] != "2026-11-21T12:00:00.123456+00:00" || e.Status["stopped_at"] != nil {
		t.Fatalf("v2: %s", body)
	}
}

func TestUsageVersionSelfCheck(t *testing.T) {
	srv := newTestServer(t, &recordingPool{})
	code, h, body := get(t, srv.URL+"/about/usage/system")
	var u hostinfo.Usage
	if err := json.Unmarshal([]byte(body), &u); err != nil || code != 200 {
		t.Fatalf("usage: %d %s %v", code, body, err)
	}
	if u.CPU.Count < 1 || u.Mem.TotalKB <= 0 || u.Mem.AvailableKB <= 0 || u.Disk.TotalKB <= 0 || !u.Active ||
		!strings.HasSuffix(u.Period.StartTimestamp, ":00Z") || u.Properties.CPU.Architecture == "" {
		t.Fatalf("usage figures: %+v", u)
	}
	if h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("no CORS on /about/usage/system")
	}
	for _, tc := range []struct {
		ref  string
		code int
	}{{"1.14.0", 200}, {"1.2.3", 200}, {"1.14.1", 403}, {"2.0", 403}, {"", 400}, {"banana", 400}} {
		if code, _, body := get(t, srv.URL+"/status/check/version?reference="+tc.ref); code != tc.code {
			t.Errorf("version %q: %d %s, want %d", tc.ref, code, body, tc.code)
		}
	}
	if code, _, body := get(t, srv.URL+"/status/check/program"); code != 200 || !strings.Contains(body, `"success":true`) {
		t.Fatalf("self-check: %d %s", code, body)
	}
	if code, _, body := get(t, srv.URL+"/about/nothing"); code != 404 || !strings.Contains(body, `"error"`) {
		t.Fatalf("unknown route: %d %s", code, body)
	}
}

func TestSelfCheckFailure(t *testing.T) {
	srv := httptest.NewServer(New(Deps{Version: "1.0.0", SelfCheck: func(context.Context) error { return errors.New("program did not answer") }}))
	defer srv.Close()
	if code, _, body := get(t, srv.URL+"/status/check/program"); code != 503 || !strings.Contains(body, "program did not answer") {
		t.Fatalf("failing self-check: %d %s", code, body)
	}
	if code, _, _ := get(t, srv.URL+"/vm/"+testHash); code != 503 {
		t.Fatalf("no pool: %d, want 503", code)
	}
}
