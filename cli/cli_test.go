package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

const (
	ethKey     = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efbba0f2d1db744ce06"
	ethAddress = "0x85E1365dE7394f86d71d9F2e707Fbce2B5383770"
	solExport  = "49W385L4rePHy6PAaQUovbD2aacgN4HsKXSMeUzRg4fmwXszN91JuMFrQRj3vMDpZuRF3ZknQBuRBoWQJEfXstMw"
	solAddress = "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z"
	mnemonic   = "indoor dish desk flag debris potato excuse depart ticket judge file exit"
	mnemAddr   = "0x3f1Eae7D46d88F08fc2F8ed27FCb2AB183EB2d0E"
)

var cliClock = func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }

// harness runs the CLI in process with its own config directory.
type harness struct {
	t   *testing.T
	dir string
	env map[string]string
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "config")
	return &harness{t: t, dir: dir, env: map[string]string{"ALEPH_CONFIG_DIR": dir}}
}

type result struct {
	stdout, stderr string
	code           int
}

func (h *harness) run(stdin string, args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code := Main(ctx, args, Env{
		Stdin:  strings.NewReader(stdin),
		Stdout: &out,
		Stderr: &errb,
		Getenv: func(k string) string { return h.env[k] },
		Now:    cliClock,
	})
	return result{out.String(), errb.String(), code}
}

// ok runs a command that must succeed.
func (h *harness) ok(args ...string) string {
	h.t.Helper()
	r := h.run("", args...)
	if r.code != 0 {
		h.t.Fatalf("aleph %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// fails runs a command that must fail with one stderr line containing want.
func (h *harness) fails(want string, args ...string) {
	h.t.Helper()
	r := h.run("", args...)
	if r.code != 1 {
		h.t.Fatalf("aleph %s: exit %d, want 1 (stdout %q)", strings.Join(args, " "), r.code, r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "aleph") {
		h.t.Errorf("aleph %s: stderr %q is not one line naming the command", strings.Join(args, " "), r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		h.t.Errorf("aleph %s: stderr %q does not contain %q", strings.Join(args, " "), r.stderr, want)
	}
}

type accountJSON struct {
	Name       string `json:"name"`
	Chain      string `json:"chain"`
	Address    string `json:"address"`
	Created    string `json:"created"`
	Default    bool   `json:"default"`
	Path       string `json:"path"`
	PrivateKey string `json:"private_key"`
}

func decodeStrict(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("output %q: %v", s, err)
	}
}

func TestAccountCommands(t *testing.T) {
	h := newHarness(t)
	h.fails("no account", "post", "create", "--content", "{}")

	var created accountJSON
	decodeStrict(t, h.ok("account", "import", "--private-key", ethKey, "--json"), &created)
	if created.Name != "eth" || created.Chain != "ETH" || created.Address != ethAddress || !created.Default ||
		created.Created != "2026-01-02T03:04:05Z" || created.Path != filepath.Join(h.dir, "accounts", "eth.json") {
		t.Errorf("import output %+v", created)
	}

	// A second ETH account gets a unique default name; from stdin.
	r := h.run(mnemonic+"\n", "account", "import", "--mnemonic", "-", "--json")
	if r.code != 0 {
		t.Fatalf("mnemonic import: %s", r.stderr)
	}
	var m accountJSON
	decodeStrict(t, r.stdout, &m)
	if m.Name != "eth-2" || m.Address != mnemAddr || m.Default {
		t.Errorf("mnemonic import %+v", m)
	}
	var sol accountJSON
	decodeStrict(t, h.ok("account", "import", "--chain", "sol", "--name", "phantom", "--private-key", solExport, "--default", "--json"), &sol)
	if sol.Address != solAddress || sol.Chain != "SOL" || !sol.Default {
		t.Errorf("sol import %+v", sol)
	}
	var fresh accountJSON
	decodeStrict(t, h.ok("account", "create", "--chain", "SOL", "--json"), &fresh)
	if fresh.Name != "sol" || fresh.Address == "" || fresh.Default {
		t.Errorf("create %+v", fresh)
	}

	// list: a table, and JSON.
	table := h.ok("account", "list")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "DEFAULT") || !strings.Contains(table, "*        phantom") {
		t.Errorf("list table:\n%s", table)
	}
	var list []accountJSON
	decodeStrict(t, h.ok("account", "list", "--json"), &list)
	if len(list) != 4 || list[0].Name != "eth" || list[2].Name != "phantom" || !list[2].Default {
		t.Errorf("list json %+v", list)
	}

	// show: the default, a named one, --account.
	if out := h.ok("account", "show"); !strings.Contains(out, solAddress) || !strings.Contains(out, "default   true") {
		t.Errorf("show default:\n%s", out)
	}
	if out := h.ok("account", "show", "eth-2"); !strings.Contains(out, mnemAddr) {
		t.Errorf("show eth-2:\n%s", out)
	}
	if out := h.ok("--account", "eth", "account", "show"); !strings.Contains(out, ethAddress) {
		t.Errorf("show --account eth:\n%s", out)
	}
	h.env["ALEPH_ACCOUNT"] = "eth-2"
	if out := h.ok("account", "show"); !strings.Contains(out, mnemAddr) {
		t.Errorf("show with ALEPH_ACCOUNT:\n%s", out)
	}
	delete(h.env, "ALEPH_ACCOUNT")

	// export: the key on stdout, a warning on stderr.
	r = h.run("", "account", "export", "eth")
	if r.code != 0 || r.stdout != "0x"+ethKey+"\n" || !strings.Contains(r.stderr, "warning") {
		t.Errorf("export: %+v", r)
	}
	r = h.run("", "account", "export", "--json")
	var exp accountJSON
	decodeStrict(t, r.stdout, &exp)
	if exp.PrivateKey != solExport || exp.Name != "phantom" || !strings.Contains(r.stderr, "warning") {
		t.Errorf("export json %+v, stderr %q", exp, r.stderr)
	}

	// default.
	h.ok("account", "default", "eth")
	if out := h.ok("account", "show", "--json"); !strings.Contains(out, ethAddress) {
		t.Errorf("after default eth: %s", out)
	}

	// Errors.
	h.fails("already exists", "account", "import", "--name", "eth", "--private-key", ethKey)
	h.fails("exactly one of --private-key and --mnemonic", "account", "import")
	h.fails("exactly one of --private-key and --mnemonic", "account", "import", "--private-key", ethKey, "--mnemonic", mnemonic)
	h.fails("--mnemonic is for ETH", "account", "import", "--chain", "SOL", "--mnemonic", mnemonic)
	h.fails("unsupported chain", "account", "create", "--chain", "DOT")
	h.fails("invalid account name", "account", "create", "--name", "../evil")
	h.fails("no such account", "account", "show", "ghost")
	h.fails("no such account", "account", "default", "ghost")
	h.fails("not hex", "account", "import", "--name", "bad", "--private-key", strings.Repeat("zz", 32))
	h.fails("empty input", "account", "import", "--name", "x", "--private-key", "-")
	// The secret never appears in an error.
	r = h.run("", "account", "import", "--name", "bad", "--private-key", "0x"+strings.Repeat("9", 63))
	if r.code != 1 || strings.Contains(r.stderr, strings.Repeat("9", 63)) {
		t.Errorf("bad key error leaks the key or passes: %+v", r)
	}
}

func TestInsecureKeyFileRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
	h := newHarness(t)
	h.ok("account", "import", "--private-key", ethKey)
	path := filepath.Join(h.dir, "accounts", "eth.json")
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	h.fails("chmod 600", "account", "export")
	h.fails("chmod 600", "post", "create", "--content", "{}", "--api-url", "http://127.0.0.1:1")
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	h.ok("account", "export")
}

func TestUsageErrors(t *testing.T) {
	h := newHarness(t)
	h.ok("account", "create")
	tests := []struct {
		want string
		args []string
	}{
		{"missing subcommand", []string{"post"}},
		{"unknown subcommand", []string{"message", "frobnicate"}},
		{"unknown command", []string{"frobnicate"}},
		{"unknown flag", []string{"message", "list", "--nope"}},
		{"accepts 1 arg", []string{"message", "get"}},
		{"not an item hash", []string{"message", "get", "zz"}},
		{"not an item hash", []string{"message", "forget", strings.Repeat("a", 64), "short"}},
		{"not an item hash", []string{"post", "get", "nope"}},
		{"not an item hash", []string{"post", "amend", "nope", "--content", "{}"}},
		{"invalid --api-url", []string{"--api-url", "ftp://x", "message", "list"}},
		{"invalid --api-url", []string{"--api-url", "http://", "message", "list"}},
		{"unknown message type", []string{"message", "list", "--types", "POST,BOGUS"}},
		{"unknown chain", []string{"message", "list", "--chains", "XYZ"}},
		{"unknown message status", []string{"message", "list", "--statuses", "lost"}},
		{"invalid --start-date", []string{"message", "list", "--start-date", "tomorrow"}},
		{"invalid --sort-order", []string{"message", "list", "--sort-order", "sideways"}},
		{"invalid --content-format", []string{"message", "list", "--content-format", "xml"}},
		{"pages start at 1", []string{"message", "list", "--page", "0"}},
		{"cursor pages hold 1 to 200", []string{"message", "list", "--cursor", "", "--pagination", "500"}},
		{"invalid --history", []string{"message", "watch", "--history", "500"}},
		{"give exactly one of --content and --file", []string{"post", "create"}},
		{"not valid JSON", []string{"post", "create", "--content", "{nope"}},
		{"no such file", []string{"post", "create", "--file", "/nonexistent/x.json"}},
		{"must be a JSON object", []string{"aggregate", "create", "k", "[1]"}},
		{"use aleph authorizations", []string{"aggregate", "create", "security", "{}"}},
		{"cannot be forgotten", []string{"aggregate", "forget", "profile"}},
		{"1 to 500 per page", []string{"aggregate", "list", "--pagination", "0"}},
		{"post types need POST", []string{"authorizations", "add", "0xD", "--types", "STORE", "--post-types", "blog"}},
		{"aggregate keys need AGGREGATE", []string{"authorizations", "add", "0xD", "--types", "POST", "--aggregate-keys", "k"}},
		{"unknown chain", []string{"authorizations", "add", "0xD", "--chain", "NOPE"}},
		{"--timeout must be positive", []string{"--timeout", "0s", "message", "list"}},
		// Nothing listens on port 1: a one-line connection error.
		{"connect", []string{"--api-url", "http://127.0.0.1:1", "message", "list"}},
		{"connect", []string{"--api-url", "http://127.0.0.1:1", "version"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			h.fails(tc.want, tc.args...)
		})
	}
}

func TestAPIURLFromEnvironment(t *testing.T) {
	h := newHarness(t)
	h.env["ALEPH_API_URL"] = "http://127.0.0.1:1"
	r := h.run("", "version")
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("ALEPH_API_URL not used: %+v", r)
	}
	// The flag wins over the environment.
	r = h.run("", "--api-url", "http://127.0.0.1:2", "version")
	if r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:2") {
		t.Errorf("--api-url did not override the environment: %+v", r)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{"", time.Time{}, false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.123", time.Unix(1700000000, 123_000_000), false},
		{"2024-05-06", time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC), false},
		{"2024-05-06T07:08:09Z", time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC), false},
		{"2024-05-06T07:08:09+02:00", time.Date(2024, 5, 6, 5, 8, 9, 0, time.UTC), false},
		{"-5", time.Time{}, true},
		{"1e9", time.Time{}, true},
		{"1.2.3", time.Time{}, true},
		{"99999999999999", time.Time{}, true},
		{".", time.Time{}, true},
	}
	for _, tc := range tests {
		got, err := parseDate("start-date", tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("parseDate(%q) accepted: %v", tc.in, got)
			}
			continue
		}
		if err != nil || !got.Equal(tc.want) {
			t.Errorf("parseDate(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}
