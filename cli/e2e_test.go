package cli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
)

// These tests build the aleph binary and run it against a real node.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// alephBinary builds cmd/aleph once per test run.
func alephBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "aleph-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "aleph")
		if runtime.GOOS == "windows" {
			binPath += ".exe"
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, goTool, "build", "-o", binPath, "github.com/go-aleph/go-aleph/cmd/aleph").CombinedOutput()
		if err != nil {
			buildErr = errors.New("go build: " + err.Error() + ": " + string(out))
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

type cliRun struct {
	t      *testing.T
	bin    string
	api    string
	config string
}

type out struct {
	stdout, stderr string
	code           int
}

func newCLI(t *testing.T) *cliRun {
	t.Helper()
	return &cliRun{t: t, bin: alephBinary(t), api: nodetest.Start(t), config: filepath.Join(t.TempDir(), "cfg")}
}

func (c *cliRun) cmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.bin, append([]string{"--api-url", c.api}, args...)...)
	cmd.Env = append(os.Environ(), "ALEPH_CONFIG_DIR="+c.config, "ALEPH_API_URL=", "ALEPH_ACCOUNT=")
	return cmd
}

func (c *cliRun) run(args ...string) out {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := c.cmd(ctx, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("aleph %v: %v", args, err)
	}
	return out{so.String(), se.String(), code}
}

func (c *cliRun) ok(args ...string) string {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("aleph %s: exit %d: %s", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func (c *cliRun) fails(want string, args ...string) {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) {
		c.t.Errorf("aleph %s: exit %d, stderr %q; want exit 1 and one line containing %q", strings.Join(args, " "), r.code, r.stderr, want)
	}
}

func (c *cliRun) json(v any, args ...string) {
	c.t.Helper()
	s := c.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(s), v); err != nil {
		c.t.Fatalf("aleph %s --json: %v\n%s", strings.Join(args, " "), err, s)
	}
}

type written struct {
	ItemHash   string `json:"item_hash"`
	Status     string `json:"status"`
	HTTPStatus int    `json:"http_status"`
	Message    struct {
		Sender      string  `json:"sender"`
		Chain       string  `json:"chain"`
		Type        string  `json:"type"`
		Channel     *string `json:"channel"`
		ItemHash    string  `json:"item_hash"`
		ItemType    string  `json:"item_type"`
		ItemContent string  `json:"item_content"`
		Signature   string  `json:"signature"`
		Time        float64 `json:"time"`
	} `json:"message"`
	Content map[string]any `json:"content"`
}

func (c *cliRun) write(args ...string) written {
	c.t.Helper()
	var w written
	c.json(&w, args...)
	if w.Status != "processed" || len(w.ItemHash) != 64 || w.Message.ItemHash != w.ItemHash || w.HTTPStatus != 200 {
		c.t.Fatalf("aleph %s: %+v", strings.Join(args, " "), w)
	}
	return w
}

func TestE2EPostsMessagesAggregates(t *testing.T) {
	c := newCLI(t)
	var acc struct {
		Address string `json:"address"`
		Path    string `json:"path"`
	}
	c.json(&acc, "account", "create")
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(acc.Path)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("key file mode: %v, %v", fi.Mode(), err)
		}
	}

	// post create, get, amend, list.
	post := c.write("post", "create", "--type", "blog", "--content", `{"title":"hello"}`, "--channel", "E2E")
	if post.Message.Sender != acc.Address || post.Message.Type != "POST" || *post.Message.Channel != "E2E" || post.Content["type"] != "blog" ||
		post.Content["address"] != acc.Address || post.Message.ItemType != "inline" {
		t.Errorf("post create: %+v", post)
	}
	human := c.ok("post", "get", post.ItemHash)
	for _, want := range []string{"original hash  " + post.ItemHash, "type           blog", "amended        false", `"title": "hello"`} {
		if !strings.Contains(human, want) {
			t.Errorf("post get lacks %q:\n%s", want, human)
		}
	}
	contentFile := filepath.Join(t.TempDir(), "c.json")
	if err := os.WriteFile(contentFile, []byte(`{"title":"edited"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	amend := c.write("post", "amend", post.ItemHash, "--file", contentFile)
	var got struct {
		ItemHash         string         `json:"item_hash"`
		OriginalItemHash string         `json:"original_item_hash"`
		Content          map[string]any `json:"content"`
	}
	c.json(&got, "post", "get", post.ItemHash)
	if got.ItemHash != amend.ItemHash || got.OriginalItemHash != post.ItemHash || got.Content["title"] != "edited" {
		t.Errorf("post get after amend: %+v", got)
	}
	var posts struct {
		Posts []map[string]any `json:"posts"`
		Total int              `json:"pagination_total"`
	}
	c.json(&posts, "post", "list", "--addresses", acc.Address, "--types", "blog")
	if len(posts.Posts) != 1 || posts.Total != 1 {
		t.Errorf("post list: %+v", posts)
	}
	table := c.ok("post", "list", "--channels", "E2E")
	if !strings.HasPrefix(table, "HASH") || !strings.Contains(table, post.ItemHash) || !strings.Contains(table, "page 1, 20 per page, 1 in total") {
		t.Errorf("post list table:\n%s", table)
	}

	// message get, status, list.
	human = c.ok("message", "get", post.ItemHash)
	for _, want := range []string{"status          processed", "sender          " + acc.Address, "channel         E2E", "content:"} {
		if !strings.Contains(human, want) {
			t.Errorf("message get lacks %q:\n%s", want, human)
		}
	}
	var res struct {
		Status  string         `json:"status"`
		Message map[string]any `json:"message"`
	}
	c.json(&res, "message", "get", post.ItemHash)
	if res.Status != "processed" || res.Message["item_hash"] != post.ItemHash {
		t.Errorf("message get --json: %+v", res)
	}
	var st map[string]any
	c.json(&st, "message", "status", amend.ItemHash)
	if st["status"] != "processed" || st["item_hash"] != amend.ItemHash {
		t.Errorf("message status --json: %v", st)
	}
	var list struct {
		Messages []struct {
			ItemHash string `json:"item_hash"`
		} `json:"messages"`
		Total int `json:"pagination_total"`
	}
	c.json(&list, "message", "list", "--addresses", acc.Address, "--types", "POST", "--sort-order", "asc")
	if len(list.Messages) != 2 || list.Messages[0].ItemHash != post.ItemHash || list.Messages[1].ItemHash != amend.ItemHash {
		t.Errorf("message list --json: %+v", list)
	}
	table = c.ok("message", "list", "--addresses", acc.Address, "--pagination", "1")
	if lines := strings.Split(strings.TrimSpace(table), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "HASH  ") || !strings.Contains(lines[1], amend.ItemHash) {
		t.Errorf("message list table:\n%s", table)
	}
	var cursor struct {
		Messages   []any   `json:"messages"`
		NextCursor *string `json:"next_cursor"`
	}
	c.json(&cursor, "message", "list", "--addresses", acc.Address, "--cursor", "", "--pagination", "1")
	if len(cursor.Messages) != 1 || cursor.NextCursor == nil {
		t.Errorf("cursor mode: %+v", cursor)
	}
	c.fails("no message", "message", "get", strings.Repeat("0", 64))

	// aggregates.
	c.write("aggregate", "create", "profile", `{"name":"alice","age":30}`)
	c.write("aggregate", "create", "profile", `{"age":31}`)
	var aggs struct {
		Address string                    `json:"address"`
		Data    map[string]map[string]any `json:"data"`
	}
	c.json(&aggs, "aggregate", "get", acc.Address, "profile")
	if aggs.Address != acc.Address || aggs.Data["profile"]["name"] != "alice" || aggs.Data["profile"]["age"] != float64(31) {
		t.Errorf("aggregate get: %+v", aggs)
	}
	if h := c.ok("aggregate", "get", acc.Address); !strings.HasPrefix(h, "profile:\n{\n") || !strings.Contains(h, "\n  \"name\": \"alice\"") || !strings.Contains(h, "\n  \"age\": 31") {
		t.Errorf("aggregate get human:\n%s", h)
	}
	if h := c.ok("aggregate", "list", acc.Address); !strings.Contains(h, "ADDRESS") || !strings.Contains(h, "profile") {
		t.Errorf("aggregate list:\n%s", h)
	}
	var aggList struct {
		Aggregates []map[string]any `json:"aggregates"`
	}
	c.json(&aggList, "aggregate", "list", "--owners", acc.Address, "--keys", "profile")
	if len(aggList.Aggregates) != 1 || aggList.Aggregates[0]["key"] != "profile" {
		t.Errorf("aggregate list --json: %+v", aggList)
	}
	c.fails("has no aggregate nothing", "aggregate", "get", acc.Address, "nothing")
	c.fails("no aggregates for", "aggregate", "get", strings.Repeat("0", 40))
	c.fails("cannot be forgotten", "aggregate", "forget", "profile")
	hashKey := strings.Repeat("cd", 32)
	c.write("aggregate", "create", hashKey, `{"x":1}`)
	fa := c.write("aggregate", "forget", hashKey, "--reason", "cleanup")
	if fa.Message.Type != "FORGET" {
		t.Errorf("aggregate forget sent %s", fa.Message.Type)
	}
	c.fails("has no aggregate", "aggregate", "get", acc.Address, hashKey)

	// message forget.
	fg := c.write("message", "forget", post.ItemHash, "--reason", "done")
	c.json(&res, "message", "get", post.ItemHash)
	if res.Status != "forgotten" {
		t.Errorf("after forget: %+v", res)
	}
	if h := c.ok("message", "get", post.ItemHash); !strings.Contains(h, "forgotten by    "+fg.ItemHash) {
		t.Errorf("message get of a forgotten message:\n%s", h)
	}
	if v := c.ok("version"); !strings.Contains(v, "node") {
		t.Errorf("version:\n%s", v)
	}
}

func TestE2EAuthorizations(t *testing.T) {
	c := newCLI(t)
	var owner, delegate struct {
		Address string `json:"address"`
	}
	c.json(&owner, "account", "create", "--name", "owner")
	c.json(&delegate, "account", "create", "--name", "delegate")

	if h := c.ok("authorizations", "list"); !strings.Contains(h, "has granted no authorizations") {
		t.Errorf("empty list:\n%s", h)
	}
	c.write("authorizations", "add", delegate.Address, "--types", "POST", "--post-types", "blog", "--channels", "A,B")
	c.fails("already has this authorization", "authorizations", "add", delegate.Address, "--types", "POST", "--post-types", "blog", "--channels", "A,B")
	var entries []map[string]any
	c.json(&entries, "authorizations", "list")
	if len(entries) != 1 || entries[0]["address"] != delegate.Address {
		t.Fatalf("list: %+v", entries)
	}
	if h := c.ok("authorizations", "list"); !strings.Contains(h, "DELEGATE") || !strings.Contains(h, "A,B") || !strings.Contains(h, "(all)") {
		t.Errorf("list table:\n%s", h)
	}

	// The delegate posts for the owner within the delegation, and not outside it.
	c.write("--account", "delegate", "post", "create", "--type", "blog", "--channel", "A", "--address", owner.Address, "--content", `"hi"`)
	c.fails("PERMISSION_DENIED", "--account", "delegate", "post", "create", "--type", "news", "--channel", "A", "--address", owner.Address, "--content", `"no"`)
	c.fails("PERMISSION_DENIED", "--account", "delegate", "post", "create", "--type", "blog", "--channel", "C", "--address", owner.Address, "--content", `"no"`)

	c.write("authorizations", "revoke", delegate.Address)
	c.json(&entries, "authorizations", "list")
	if len(entries) != 0 {
		t.Errorf("after revoke: %+v", entries)
	}
	c.fails("has no authorization", "authorizations", "revoke", delegate.Address)
	c.fails("PERMISSION_DENIED", "--account", "delegate", "post", "create", "--type", "blog", "--channel", "A", "--address", owner.Address, "--content", `"no"`)
}

func TestE2EWatch(t *testing.T) {
	c := newCLI(t)
	var acc struct {
		Address string `json:"address"`
	}
	c.json(&acc, "account", "create")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The history parameter covers a message processed before the subscription
	// is registered; the filter keeps out everything else.
	watch := c.cmd(ctx, "message", "watch", "--json", "--history", "5", "--channels", "WATCH", "--addresses", acc.Address)
	stdout, err := watch.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	watch.Stderr = &stderr
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel() // kills the process if the test ended before it did
		_ = watch.Wait()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()

	c.write("post", "create", "--content", `{"n":0}`, "--channel", "OTHER")
	p1 := c.write("post", "create", "--content", `{"n":1}`, "--channel", "WATCH")
	p2 := c.write("post", "create", "--content", `{"n":2}`, "--channel", "WATCH")
	for _, want := range []string{p1.ItemHash, p2.ItemHash} {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("watch ended early: %s", stderr.String())
			}
			var m struct {
				ItemHash string `json:"item_hash"`
				Channel  string `json:"channel"`
			}
			if err := json.Unmarshal([]byte(line), &m); err != nil || m.ItemHash != want || m.Channel != "WATCH" {
				t.Errorf("watched %q (%v), want %s", line, err, want)
			}
		case <-ctx.Done():
			t.Fatalf("no message watched: %s", stderr.String())
		}
	}
	// Ctrl-C stops it cleanly.
	if runtime.GOOS == "windows" {
		watch.Process.Kill()
	} else if err := watch.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	for range lines {
	}
	if err := watch.Wait(); err != nil {
		t.Errorf("watch after SIGINT: %v, stderr %q", err, stderr.String())
	}

	// --count ends it by itself; human output is one line per message.
	h := c.ok("message", "watch", "--history", "5", "--channels", "WATCH", "--count", "2")
	if lines := strings.Split(strings.TrimSpace(h), "\n"); len(lines) != 2 || !strings.Contains(lines[0], p1.ItemHash) || !strings.Contains(lines[1], p2.ItemHash) {
		t.Errorf("watch --count 2:\n%s", h)
	}
}
