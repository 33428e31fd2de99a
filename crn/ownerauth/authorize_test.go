package ownerauth

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/client"
)

const (
	owner    = "0xB0b0000000000000000000000000000000000001"
	delegate = "0xDe1e000000000000000000000000000000000002"
)

// fakeCCN is a real HTTP server answering GET /api/v0/aggregates/{addr}.json
// with the security aggregates in aggs (raw JSON), 404 for others, and 500 for
// addresses in failing. It counts requests per address.
type fakeCCN struct {
	mu      sync.Mutex
	aggs    map[string]string
	failing map[string]bool
	hits    map[string]int
}

func newCCN(t *testing.T, aggs map[string]string) (*fakeCCN, *client.Client) {
	t.Helper()
	c := &fakeCCN{aggs: aggs, failing: map[string]bool{}, hits: map[string]int{}}
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return c, client.New(srv.URL)
}

func (c *fakeCCN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	addr, ok := strings.CutPrefix(r.URL.Path, "/api/v0/aggregates/")
	addr, ok2 := strings.CutSuffix(addr, ".json")
	if !ok || !ok2 || r.URL.Query().Get("keys") != "security" {
		http.Error(w, `{"error":"unexpected request"}`, http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.hits[addr]++
	sec, found := c.aggs[addr]
	fail := c.failing[addr]
	c.mu.Unlock()
	switch {
	case fail:
		http.Error(w, `{"error":"boom"}`, http.StatusInternalServerError)
	case !found:
		http.Error(w, `{"error":"Aggregate not found"}`, http.StatusNotFound)
	default:
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"address":%q,"data":{"security":%s}}`, addr, sec)
	}
}

func (c *fakeCCN) hitsFor(addr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits[addr]
}

func auths(entries ...string) string {
	return `{"authorizations":[` + strings.Join(entries, ",") + `]}`
}

func TestAuthorized(t *testing.T) {
	for _, tc := range []struct {
		name     string
		security string // "" for no aggregate
		owner    string
		sender   string
		want     bool
	}{
		{"owner itself", "", owner, owner, true},
		{"owner in another case", "", owner, strings.ToLower(owner), true},
		{"stranger, no aggregate", "", owner, delegate, false},
		{"delegate for everything", auths(`{"address":"` + delegate + `"}`), owner, delegate, true},
		{"delegate with empty types", auths(`{"address":"` + strings.ToLower(delegate) + `","types":[]}`), owner, delegate, true},
		{"delegate for instances", auths(`{"address":"` + delegate + `","types":["POST","INSTANCE"]}`), owner, delegate, true},
		{"delegate for programs", auths(`{"address":"` + delegate + `","types":["PROGRAM"]}`), owner, delegate, true},
		{"delegate for posts only", auths(`{"address":"` + delegate + `","types":["POST"]}`), owner, delegate, false},
		{"another delegate", auths(`{"address":"0x0000000000000000000000000000000000000003"}`), owner, delegate, false},
		{"no authorizations key", `{"other":1}`, owner, delegate, false},
		{"empty sender", "", owner, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			aggs := map[string]string{}
			if tc.security != "" {
				aggs[owner] = tc.security
			}
			_, cl := newCCN(t, aggs)
			got, err := NewAuthorizer(cl).Authorized(ctxT(t), tc.owner, tc.sender)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("Authorized = %v, want %v", got, tc.want)
			}
		})
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAuthorizerCache(t *testing.T) {
	ccn, cl := newCCN(t, map[string]string{owner: auths(`{"address":"` + delegate + `"}`)})
	a := NewAuthorizer(cl)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	a.now = func() time.Time { return now }
	check := func(want bool, wantHits int) {
		t.Helper()
		got, err := a.Authorized(ctxT(t), owner, delegate)
		if err != nil || got != want {
			t.Fatalf("Authorized = %v, %v; want %v", got, err, want)
		}
		if h := ccn.hitsFor(owner); h != wantHits {
			t.Fatalf("%d requests to the CCN, want %d", h, wantHits)
		}
	}
	check(true, 1)
	check(true, 1) // cached
	// The owner revokes; the cache keeps the delegation until it expires.
	ccn.mu.Lock()
	ccn.aggs[owner] = auths()
	ccn.mu.Unlock()
	now = now.Add(CacheTTL - time.Second)
	check(true, 1)
	now = now.Add(2 * time.Second)
	check(false, 2)
	// The owner itself never needs the CCN.
	if ok, err := a.Authorized(ctxT(t), owner, owner); !ok || err != nil {
		t.Fatalf("owner: %v, %v", ok, err)
	}
	if h := ccn.hitsFor(owner); h != 2 {
		t.Fatalf("%d requests, want 2", h)
	}
}

func TestAuthorizerErrorNotCached(t *testing.T) {
	ccn, cl := newCCN(t, map[string]string{owner: auths(`{"address":"` + delegate + `"}`)})
	ccn.failing[owner] = true
	a := NewAuthorizer(cl)
	if ok, err := a.Authorized(ctxT(t), owner, delegate); err == nil || ok {
		t.Fatalf("Authorized = %v, %v; want an error", ok, err)
	}
	ccn.mu.Lock()
	ccn.failing[owner] = false
	ccn.mu.Unlock()
	if ok, err := a.Authorized(ctxT(t), owner, delegate); err != nil || !ok {
		t.Fatalf("after recovery: %v, %v", ok, err)
	}
}

func TestAuthorizerCacheBounded(t *testing.T) {
	_, cl := newCCN(t, map[string]string{})
	a := NewAuthorizer(cl)
	for i := range MaxCacheEntries + 20 {
		o := fmt.Sprintf("0x%040x", i)
		if _, err := a.Authorized(ctxT(t), o, delegate); err != nil {
			t.Fatal(err)
		}
	}
	a.mu.Lock()
	n := len(a.cache)
	a.mu.Unlock()
	if n > MaxCacheEntries {
		t.Fatalf("%d cached owners, bound is %d", n, MaxCacheEntries)
	}
}
