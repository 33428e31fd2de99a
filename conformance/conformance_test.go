package conformance

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx database/sql driver, to create a throwaway database

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// depsHint tells how to install the SDK the scenario needs.
const depsHint = "the TypeScript SDK is not installed: run `npm ci --prefix conformance/ts` (or scripts/conformance-deps.sh)"

// scenarioScript is the Node.js scenario, relative to this package.
var scenarioScript = filepath.Join("ts", "scenario.cjs")

// Time budgets. They bound waits; none of them is asserted on.
const (
	buildTimeout    = 10 * time.Minute
	startTimeout    = time.Minute
	scenarioTimeout = 5 * time.Minute
	stopTimeout     = 30 * time.Second
)

// TestTypeScriptSDK builds alephd once and, for each storage backend, starts
// `alephd dev` as a subprocess and runs the SDK scenario against it; every
// scenario step must pass and alephd must stop cleanly on SIGINT.
func TestTypeScriptSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("conformance: builds and runs alephd; skipped with -short")
	}
	node := requireNode(t)
	requireSDK(t)
	bin := buildAlephd(t)

	backends := []struct {
		name string
		db   func(t *testing.T) string // the --db value; nil for the dev default (SQLite in --data-dir)
	}{
		{name: "sqlite"},
		{name: "postgres", db: postgresDB},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			var args []string
			if b.db != nil {
				args = append(args, "--db", b.db(t))
			}
			d := startAlephd(t, bin, args...)
			base := "http://" + d.addr
			ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
			defer cancel()
			if err := d.waitReady(ctx, base); err != nil {
				t.Fatalf("alephd did not come up: %v", err)
			}
			res := runScenario(t, node, base, "ws://"+d.addr)
			for _, f := range res.failures() {
				t.Error(f)
			}
			crossCheckFiles(t, base, res)
			d.stop(t)
		})
	}
}

// postgresDB creates a throwaway database next to the one named by
// ALEPH_TEST_POSTGRES (so the storage suites running in parallel are not
// disturbed), drops it when the test ends, and returns its DSN. Without the
// variable the test skips, except in CI where it fails.
func postgresDB(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("ALEPH_TEST_POSTGRES")
	if dsn == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("conformance: ALEPH_TEST_POSTGRES is not set (PostgreSQL tests are never skipped in CI)")
		}
		t.Skip("conformance: set ALEPH_TEST_POSTGRES (e.g. postgres://aleph:aleph@127.0.0.1:5432/aleph_test?sslmode=disable) to run against PostgreSQL")
	}
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("conformance: ALEPH_TEST_POSTGRES must be a postgres:// URL, got %q", dsn)
	}
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() { admin.Close() })
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatalf("random database name: %v", err)
	}
	name := "aleph_conformance_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s on %s: %v", name, u.Redacted(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// requireNode returns the path of the node binary, or skips (fails in CI).
func requireNode(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node (Node.js 20 or later) is not on PATH")
	}
	return node
}

// requireSDK checks that the scenario's npm dependencies are installed.
func requireSDK(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join("ts", "node_modules", "@aleph-sdk", "client", "package.json")); err != nil {
		missing(t, depsHint)
	}
}

// missing skips the test locally and fails it in CI, where nothing may be
// silently skipped.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("conformance: %s", why)
	}
	t.Skipf("conformance: %s", why)
}

// buildAlephd compiles cmd/alephd into a temporary directory.
func buildAlephd(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "alephd")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/go-aleph/go-aleph/cmd/alephd")
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/alephd: %v\n%s", err, out)
	}
	return bin
}

// daemon is a running alephd subprocess.
type daemon struct {
	addr string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{} // closed when the process has exited
	err  error         // the result of Wait, valid once done is closed
}

// startAlephd runs `alephd dev` on a free local port with a fresh data
// directory and the extra arguments. A cleanup kills it if the test ends before stop.
func startAlephd(t *testing.T, bin string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{addr: freeAddr(t), out: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"dev", "--data-dir", t.TempDir(), "--listen", d.addr}, extra...)
	d.cmd = exec.Command(bin, args...)
	d.cmd.Dir = t.TempDir()
	d.cmd.Env = withoutPrefix(os.Environ(), "ALEPH_") // keep the developer's node settings out
	d.cmd.Stdout = d.out
	d.cmd.Stderr = d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("start alephd: %v", err)
	}
	go func() {
		d.err = d.cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		select {
		case <-d.done:
		default:
			_ = d.cmd.Process.Kill()
			<-d.done
		}
		if t.Failed() {
			t.Logf("alephd output:\n%s", d.out.String())
		}
	})
	return d
}

// waitReady polls GET /api/v0/version until it answers 200 with a version,
// the process exits, or ctx ends.
func (d *daemon) waitReady(ctx context.Context, base string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last error
	for {
		ok, err := versionAnswers(ctx, client, base)
		if ok {
			return nil
		}
		last = err
		select {
		case <-d.done:
			return fmt.Errorf("alephd exited early: %v", d.err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last attempt: %v)", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

func versionAnswers(ctx context.Context, client *http.Client, base string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v0/version", nil)
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var body struct {
		Version string `json:"version"`
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&body); err != nil {
		return false, fmt.Errorf("decode version: %w", err)
	}
	if body.Version == "" {
		return false, errors.New("empty version")
	}
	return true, nil
}

// stop sends SIGINT and requires a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	if err := d.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatalf("signal alephd: %v", err)
	}
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-d.done:
		if d.err != nil {
			t.Errorf("alephd did not exit cleanly after SIGINT: %v", d.err)
		}
	case <-timer.C:
		t.Errorf("alephd still running %s after SIGINT", stopTimeout)
	}
}

// step is one JSON line of the scenario's stdout.
type step struct {
	Step   string          `json:"step"`
	OK     *bool           `json:"ok"`
	Detail json.RawMessage `json:"detail"`
}

// parseStep decodes one line of scenario output; the scenario writes nothing
// else to stdout, so anything that is not a step is an error.
func parseStep(line []byte) (step, error) {
	var s step
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return step{}, fmt.Errorf("not a step line: %w", err)
	}
	if dec.More() {
		return step{}, errors.New("not a step line: trailing data")
	}
	if s.Step == "" {
		return step{}, errors.New("step line without a step name")
	}
	if s.OK == nil {
		return step{}, fmt.Errorf("step %q without ok", s.Step)
	}
	return s, nil
}

// scenarioResult is what one run of the scenario produced.
type scenarioResult struct {
	steps    []step   // every well-formed step line, in order
	badLines []string // stdout lines that are not steps, with the reason
	exitErr  error    // the result of Wait
	timedOut bool
}

// failures lists everything that makes the run a failure: a failed step, a
// malformed line, a timeout, a non-zero exit, or a missing final "done" step.
func (r scenarioResult) failures() []string {
	var out []string
	for _, s := range r.steps {
		if !*s.OK {
			out = append(out, fmt.Sprintf("step %s FAILED: %s", s.Step, s.Detail))
		}
	}
	out = append(out, r.badLines...)
	if r.timedOut {
		out = append(out, fmt.Sprintf("scenario did not finish within %s", scenarioTimeout))
	}
	if r.exitErr != nil {
		out = append(out, fmt.Sprintf("scenario exited with %v", r.exitErr))
	}
	if n := len(r.steps); n == 0 || r.steps[n-1].Step != "done" || !*r.steps[n-1].OK {
		out = append(out, "scenario did not end with a passed done step")
	}
	return out
}

// runScenario runs the Node.js scenario against base and ws, logging each step
// as it arrives and the scenario's stderr line by line.
func runScenario(t *testing.T, node, base, ws string) scenarioResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, scenarioScript, base, ws)
	// ALEPH_API_UNIX_SOCKET would send every SDK request to a unix socket.
	cmd.Env = withoutPrefix(os.Environ(), "ALEPH_API_UNIX_SOCKET")
	cmd.WaitDelay = 5 * time.Second
	stderr := &lineLogger{t: t, prefix: "sdk stderr: "}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("scenario stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start scenario: %v", err)
	}
	var res scenarioResult
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		s, err := parseStep(sc.Bytes())
		if err != nil {
			res.badLines = append(res.badLines, fmt.Sprintf("scenario stdout: %v: %q", err, sc.Text()))
			continue
		}
		t.Logf("step %s ok=%t: %s", s.Step, *s.OK, s.Detail)
		res.steps = append(res.steps, s)
	}
	if err := sc.Err(); err != nil {
		res.badLines = append(res.badLines, fmt.Sprintf("read scenario output: %v", err))
	}
	res.exitErr = cmd.Wait()
	res.timedOut = ctx.Err() != nil
	stderr.flush()
	return res
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatalf("release port: %v", err)
	}
	return addr
}

// withoutPrefix returns environ without the variables whose name starts with
// prefix.
func withoutPrefix(environ []string, prefix string) []string {
	out := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, prefix) {
			out = append(out, kv)
		}
	}
	return out
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lineLogger writes each complete line to t.Log. exec.Cmd.Wait returns only
// after the last write, so no line is logged after the test ends.
type lineLogger struct {
	t       *testing.T
	prefix  string
	mu      sync.Mutex
	partial []byte
}

func (l *lineLogger) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.t.Log(l.prefix + string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

func (l *lineLogger) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 {
		l.t.Log(l.prefix + string(l.partial))
		l.partial = nil
	}
}

// scenarioBytes regenerates the scenario's binary(n, seed) file contents (a
// 32-bit LCG, high byte of each state).
func scenarioBytes(n int, seed uint32) []byte {
	out := make([]byte, n)
	x := seed
	for i := range out {
		x = x*1103515245 + 12345
		out[i] = byte(x >> 24)
	}
	return out
}

// crossCheckFiles checks that the Go SDK and the npm SDK agree byte for byte:
// the Go SDK downloads the files the npm SDK uploaded (and gets the scenario's
// bytes), and uploading the same bytes with the Go SDK gives the same file
// hashes (sha256 for storage, the CIDv0 for ipfs).
func crossCheckFiles(t *testing.T, base string, res scenarioResult) {
	t.Helper()
	detail := func(name string, v any) bool {
		for _, s := range res.steps {
			if s.Step == name && s.OK != nil && *s.OK {
				if err := json.Unmarshal(s.Detail, v); err != nil {
					t.Errorf("step %s: detail: %v", name, err)
					return false
				}
				return true
			}
		}
		t.Errorf("step %s did not pass; no cross-check", name)
		return false
	}
	var st struct {
		FileHash string `json:"file_hash"`
	}
	var ip struct {
		CID string `json:"cid"`
	}
	if !detail("createStore.storage", &st) || !detail("createStore.ipfs", &ip) {
		return
	}
	accts, err := all.DevAccounts(2)
	if err != nil {
		t.Fatal(err)
	}
	// Another dev account than the scenario's, so the Go uploads are new STOREs.
	c := client.New(base, client.WithSigner(accts[1].Signer))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, f := range []struct {
		name   string
		hash   string
		data   []byte
		engine message.ItemType
	}{
		{"storage", st.FileHash, scenarioBytes(300*1024+7, 1), message.ItemStorage},
		{"ipfs", ip.CID, scenarioBytes(1024*1024+123, 3), message.ItemIPFS},
	} {
		var got bytes.Buffer
		if _, err := c.DownloadFile(ctx, f.hash, &got, 0); err != nil {
			t.Errorf("%s: Go SDK download of the npm upload %s: %v", f.name, f.hash, err)
		} else if !bytes.Equal(got.Bytes(), f.data) {
			t.Errorf("%s: Go SDK downloaded %d bytes that differ from the npm SDK's upload", f.name, got.Len())
		}
		up, err := c.UploadFile(ctx, bytes.NewReader(f.data), client.UploadOptions{Engine: f.engine, WriteOptions: client.WriteOptions{Sync: true}})
		if err != nil {
			t.Errorf("%s: Go SDK upload: %v", f.name, err)
			continue
		}
		if up.FileHash != f.hash {
			t.Errorf("%s: Go SDK upload hashed to %s, the npm SDK's to %s", f.name, up.FileHash, f.hash)
		}
	}
}
