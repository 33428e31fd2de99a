package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/chain/solana"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/ownerauth"
	"github.com/go-aleph/go-aleph/message"
)

const controlDomain = "crn.example.org"

// fakeControl stands in for the supervisor: VMs by hash with an owner, a
// running flag and logs; it records the operations it was asked to do.
type fakeControl struct {
	mu      sync.Mutex
	owners  map[string]string
	running map[string]bool
	logs    map[string][]LogEntry
	ops     []string
	fail    error
}

func (c *fakeControl) Owner(_ context.Context, hash string) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.owners[hash]
	if !ok {
		return "", fmt.Errorf("vm %s: %w", hash, ErrUnknownVM)
	}
	return o, nil
}

func (c *fakeControl) Logs(hash string) ([]LogEntry, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.logs[hash]
	if !ok {
		return nil, ErrUnknownVM
	}
	return l, nil
}

func (c *fakeControl) record(op, hash string) error {
	c.ops = append(c.ops, op+" "+hash)
	return c.fail
}

func (c *fakeControl) Stop(_ context.Context, hash string) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	was := c.running[hash]
	c.running[hash] = false
	return was, c.record("stop", hash)
}

func (c *fakeControl) Reboot(_ context.Context, hash string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running[hash] = true
	return c.record("reboot", hash)
}

func (c *fakeControl) Erase(_ context.Context, hash string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running[hash] = false
	return c.record("erase", hash)
}

func (c *fakeControl) takeOps() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ops := c.ops
	c.ops = nil
	return ops
}

type controlEnv struct {
	srv       *httptest.Server
	ctl       *fakeControl
	owner     *evm.Account
	solOwner  *solana.Account
	delegate  *evm.Account
	stranger  *evm.Account
	vm, solVM string
}

func newControlEnv(t *testing.T, authorized func(ctx context.Context, owner, sender string) (bool, error)) *controlEnv {
	t.Helper()
	e := &controlEnv{
		owner: newEVM(t), delegate: newEVM(t), stranger: newEVM(t), solOwner: newSOL(t),
		vm: testHash, solVM: strings.Repeat("ab", 32),
	}
	t0 := time.Date(2025, 1, 1, 12, 0, 0, 1000, time.UTC)
	e.ctl = &fakeControl{
		owners:  map[string]string{e.vm: strings.ToLower(e.owner.Address()), e.solVM: e.solOwner.Address()},
		running: map[string]bool{e.vm: true, e.solVM: true},
		logs: map[string][]LogEntry{e.vm: {
			{Time: t0, Stream: "stdout", Message: "booted"},
			{Time: t0.Add(time.Second), Stream: "stderr", Message: "warning: \"x\""},
		}},
	}
	if authorized == nil {
		delegate := e.delegate.Address()
		authorized = func(_ context.Context, owner, sender string) (bool, error) {
			return owner == e.ctl.owners[e.vm] && sender == delegate, nil
		}
	}
	e.srv = httptest.NewServer(New(Deps{Version: "1.14.0", Domain: controlDomain, Control: e.ctl, Authorized: authorized}))
	t.Cleanup(e.srv.Close)
	return e
}

func newEVM(t *testing.T) *evm.Account {
	t.Helper()
	a, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func newSOL(t *testing.T) *solana.Account {
	t.Helper()
	a, err := solana.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// call sends method on /control/machine/{vm}/{op}, signed by s for signPath
// (the same path when empty), and returns status and body.
func (e *controlEnv) call(t *testing.T, s message.Signer, method, vm, op, signPath string) (int, string) {
	t.Helper()
	path := "/control/machine/" + vm + "/" + op
	if signPath == "" {
		signPath = path
	}
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s != nil {
		h, err := ownerauth.SignRequest(s, controlDomain, method, signPath, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range h {
			req.Header[k] = v
		}
	}
	status, _, body := do(t, req)
	return status, body
}

func TestControlLogs(t *testing.T) {
	e := newControlEnv(t, nil)
	status, body := e.call(t, e.owner, http.MethodGet, e.vm, "logs", "")
	if status != http.StatusOK {
		t.Fatalf("%d %s", status, body)
	}
	var got []map[string]string
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	want := []map[string]string{
		{"SYSLOG_IDENTIFIER": "vm-" + e.vm + "-stdout", "MESSAGE": "booted", "file": "stdout",
			"__REALTIME_TIMESTAMP": "2025-01-01T12:00:00.000001+00:00"},
		{"SYSLOG_IDENTIFIER": "vm-" + e.vm + "-stderr", "MESSAGE": `warning: "x"`, "file": "stderr",
			"__REALTIME_TIMESTAMP": "2025-01-01T12:00:01.000001+00:00"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("logs\n got %v\nwant %v", got, want)
	}
	// Keys in aleph-vm's order.
	if !strings.HasPrefix(body, `[{"SYSLOG_IDENTIFIER":`) {
		t.Fatalf("body %s", body)
	}
	// A VM that never ran here: known owner but no logs.
	if status, body := e.call(t, e.solOwner, http.MethodGet, e.solVM, "logs", ""); status != http.StatusNotFound {
		t.Fatalf("no logs: %d %s", status, body)
	}
}

func TestControlOperations(t *testing.T) {
	e := newControlEnv(t, nil)
	for _, tc := range []struct {
		name   string
		signer message.Signer
		vm, op string
		status int
		body   string
		ops    []string
	}{
		{"stop by owner", e.owner, e.vm, "stop", 200, "Stopped VM with ref " + e.vm, []string{"stop " + e.vm}},
		{"stop again", e.owner, e.vm, "stop", 200, "Already stopped, nothing to do", []string{"stop " + e.vm}},
		{"reboot by delegate", e.delegate, e.vm, "reboot", 200, "Rebooted VM with ref " + e.vm, []string{"reboot " + e.vm}},
		{"erase by owner", e.owner, e.vm, "erase", 200, "Erased VM with ref " + e.vm, []string{"erase " + e.vm}},
		{"SOL owner stops", e.solOwner, e.solVM, "stop", 200, "Stopped VM with ref " + e.solVM, []string{"stop " + e.solVM}},
		{"uppercase ref", e.owner, strings.ToUpper(e.vm), "reboot", 200, "Rebooted VM with ref " + e.vm, []string{"reboot " + e.vm}},
		{"stranger", e.stranger, e.vm, "stop", 403, `{"error":"Unauthorized sender"}`, nil},
		{"owner of another VM", e.solOwner, e.vm, "erase", 403, `{"error":"Unauthorized sender"}`, nil},
		{"delegate of another owner", e.delegate, e.solVM, "stop", 403, `{"error":"Unauthorized sender"}`, nil},
		{"unknown VM", e.owner, strings.Repeat("0", 64), "stop", 404, "No virtual machine with ref " + strings.Repeat("0", 64), nil},
		{"invalid ref", e.owner, "not-a-hash", "stop", 400, "Invalid ref", nil},
		{"no headers", nil, e.vm, "stop", 400, ownerauth.ReasonMissingPubKey, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.call(t, tc.signer, http.MethodPost, tc.vm, tc.op, "")
			if status != tc.status || !strings.Contains(body, tc.body) {
				t.Fatalf("%d %s; want %d with %q", status, body, tc.status, tc.body)
			}
			if ops := e.ctl.takeOps(); fmt.Sprint(ops) != fmt.Sprint(tc.ops) {
				t.Fatalf("operations %v, want %v", ops, tc.ops)
			}
		})
	}
}

func TestControlAuthFailures(t *testing.T) {
	e := newControlEnv(t, nil)
	stop := "/control/machine/" + e.vm + "/stop"
	// Signed for stop, sent to erase: a replayed header must not erase.
	if status, body := e.call(t, e.owner, http.MethodPost, e.vm, "erase", stop); status != 401 || !strings.Contains(body, ownerauth.ReasonInvalidPath) {
		t.Fatalf("other path: %d %s", status, body)
	}
	// Signed for another node.
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+stop, nil)
	h, err := ownerauth.SignRequest(e.owner, "other.example.org", http.MethodPost, stop, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	if status, _, body := do(t, req); status != 401 || !strings.Contains(body, ownerauth.ReasonInvalidDomain) {
		t.Fatalf("other domain: %d %s", status, body)
	}
	// Signed ten minutes ago: the key is valid, the operation stale (upstream answers 400).
	req, _ = http.NewRequest(http.MethodPost, e.srv.URL+stop, nil)
	if req.Header, err = ownerauth.SignRequest(e.owner, controlDomain, http.MethodPost, stop, time.Now().Add(-10*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if status, _, body := do(t, req); status != 400 || !strings.Contains(body, "too far in the past") {
		t.Fatalf("stale: %d %s", status, body)
	}
	// Wrong method on a control route: not a route.
	if status, body := e.call(t, e.owner, http.MethodGet, e.vm, "stop", ""); status != 404 {
		t.Fatalf("GET stop: %d %s", status, body)
	}
	if ops := e.ctl.takeOps(); len(ops) != 0 {
		t.Fatalf("operations ran: %v", ops)
	}
}

func TestControlDependencyFailures(t *testing.T) {
	e := newControlEnv(t, func(context.Context, string, string) (bool, error) {
		return false, errors.New("ccn down")
	})
	// The owner does not need the delegations.
	if status, body := e.call(t, e.owner, http.MethodPost, e.vm, "stop", ""); status != 200 {
		t.Fatalf("owner: %d %s", status, body)
	}
	if status, body := e.call(t, e.delegate, http.MethodPost, e.vm, "stop", ""); status != 503 {
		t.Fatalf("delegate with the CCN down: %d %s", status, body)
	}
	e.ctl.mu.Lock()
	e.ctl.fail = errors.New("runc exploded")
	e.ctl.mu.Unlock()
	if status, body := e.call(t, e.owner, http.MethodPost, e.vm, "reboot", ""); status != 500 || !strings.Contains(body, "runc exploded") {
		t.Fatalf("failing reboot: %d %s", status, body)
	}

	srv := httptest.NewServer(New(Deps{Domain: controlDomain}))
	t.Cleanup(srv.Close)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/control/machine/"+testHash+"/stop", nil)
	if status, _, body := do(t, req); status != 503 {
		t.Fatalf("no Control: %d %s", status, body)
	}
}

// TestControlWithAuthorizer wires the real ownerauth.Authorizer, reading the
// owner's security aggregate from a CCN over HTTP.
func TestControlWithAuthorizer(t *testing.T) {
	var e *controlEnv
	ccn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.EqualFold(r.URL.Path, "/api/v0/aggregates/"+e.owner.Address()+".json") {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, `{"address":%q,"data":{"security":{"authorizations":[{"address":%q,"types":["INSTANCE"]}]}}}`,
			e.owner.Address(), strings.ToLower(e.delegate.Address()))
	}))
	t.Cleanup(ccn.Close)
	auth := ownerauth.NewAuthorizer(client.New(ccn.URL))
	e = newControlEnv(t, auth.Authorized)
	if status, body := e.call(t, e.delegate, http.MethodPost, e.vm, "reboot", ""); status != 200 {
		t.Fatalf("delegate: %d %s", status, body)
	}
	if status, body := e.call(t, e.stranger, http.MethodPost, e.vm, "reboot", ""); status != 403 {
		t.Fatalf("stranger: %d %s", status, body)
	}
}
