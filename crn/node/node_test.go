package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/cli"
	"github.com/go-aleph/go-aleph/client"
	crnnode "github.com/go-aleph/go-aleph/crn/node"
	alephrt "github.com/go-aleph/go-aleph/crn/runtime"
)

func requireSandbox(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("compute node tests need root")
	}
	for _, tool := range []string{"runc", "mksquashfs", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("compute node tests need %s", tool)
		}
	}
	if _, err := os.Stat(alephrt.DefaultBusybox); err != nil {
		t.Skip("compute node tests need busybox-static")
	}
}

// The whole path a newcomer takes: the dev bootstrap publishes the runtime
// and the check program, the node's self-check runs it, the CLI uploads a
// program and prints its URL, the URL answers, the owner reads its logs,
// and deleting it stops it.
func TestNodeEndToEnd(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	gomod, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	initPath := filepath.Join(dir, "aleph-init")
	if err := alephrt.BuildInit(ctx, filepath.Dir(strings.TrimSpace(string(gomod))), initPath); err != nil {
		t.Fatal(err)
	}
	image := filepath.Join(dir, "runtime.squashfs")
	if _, err := alephrt.Build(ctx, alephrt.Options{Out: image, Init: initPath}); err != nil {
		t.Fatal(err)
	}
	rt, err := os.ReadFile(image)
	if err != nil {
		t.Fatal(err)
	}

	ccn := nodetest.Start(t)
	accts, err := all.DevAccounts(1)
	if err != nil {
		t.Fatal(err)
	}
	dev := client.New(ccn, client.WithSigner(accts[0].Signer))
	pub, err := crnnode.Bootstrap(ctx, dev, accts[0].Address, rt)
	if err != nil {
		t.Fatal(err)
	}
	again, err := crnnode.Bootstrap(ctx, dev, accts[0].Address, rt)
	if err != nil {
		t.Fatal(err)
	}
	if *again != *pub {
		t.Fatalf("bootstrap is not idempotent: %+v then %+v", pub, again)
	}

	cfg := crnnode.Dev(filepath.Join(dir, "crn"))
	cfg.CCN, cfg.Listen, cfg.Init, cfg.Version = ccn, "127.0.0.1:0", initPath, "1.2.3"
	cfg.DefaultRuntime, cfg.CheckProgram = pub.Runtime, pub.CheckProgram
	n, err := crnnode.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		if err := n.Close(cctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	// The CLI signs control requests for the node's domain ("localhost").
	crnURL := strings.Replace(n.URL(), "127.0.0.1", "localhost", 1)

	status, body := get(t, ctx, crnURL+"/status/check/program")
	if status != 200 || !strings.Contains(body, `"success":true`) {
		t.Fatalf("self-check: %d %s", status, body)
	}
	var conf struct {
		References map[string]string `json:"references"`
	}
	_, body = get(t, ctx, crnURL+"/status/config")
	if err := json.Unmarshal([]byte(body), &conf); err != nil || conf.References["DEFAULT_RUNTIME_ID"] != pub.Runtime {
		t.Fatalf("status/config: %v %s", err, body)
	}

	// The CLI, with a fresh account and the runtime the node advertises.
	cfgDir := t.TempDir()
	env := map[string]string{"ALEPH_CONFIG_DIR": cfgDir, "ALEPH_API_URL": ccn}
	aleph := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		code := cli.Main(ctx, args, cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }})
		if code != 0 {
			t.Fatalf("aleph %v: exit %d: %s%s", args, code, out.String(), errb.String())
		}
		return out.String()
	}
	aleph("account", "create")
	app := t.TempDir()
	script := "#!/bin/sh\nmkdir -p /tmp/www && echo \"hello from my program $GREETING\" > /tmp/www/index.html\nexec httpd -f -p 8080 -h /tmp/www\n"
	if err := os.WriteFile(filepath.Join(app, "run.sh"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	out := aleph("program", "upload", app, "run.sh", "--crn", crnURL, "--env-vars", "GREETING=world")
	m := regexp.MustCompile(`(?m)^url\s+(\S+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no url in:\n%s", out)
	}
	url := m[1]
	hash := url[strings.LastIndex(url, "/")+1:]
	status, body = get(t, ctx, url)
	if status != 200 || strings.TrimSpace(body) != "hello from my program world" {
		t.Fatalf("GET %s: %d %q", url, status, body)
	}
	logs := aleph("program", "logs", hash, "--crn", crnURL)
	if !strings.Contains(logs, "program started") {
		t.Errorf("logs lack the program's start:\n%s", logs)
	}
	aleph("program", "delete", hash)
	deadline := time.NewTicker(20 * time.Millisecond)
	defer deadline.Stop()
	for n.Pool().Running(hash) {
		select {
		case <-deadline.C:
		case <-ctx.Done():
			t.Fatal("the deleted program still runs")
		}
	}
	if status, body := get(t, ctx, url); status != http.StatusNotFound {
		t.Fatalf("deleted program: %d %s", status, body)
	}
}

func get(t *testing.T, ctx context.Context, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
