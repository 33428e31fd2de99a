package client_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

const (
	hashA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	hashB = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
)

func TestNewProgramContentErrors(t *testing.T) {
	good := client.ProgramOptions{CodeRef: hashA, RuntimeRef: hashB, Encoding: "zip", Entrypoint: "main:app"}
	for _, tc := range []struct {
		name string
		edit func(*client.ProgramOptions)
		want string
	}{
		{"bad code ref", func(o *client.ProgramOptions) { o.CodeRef = "nope" }, "code ref"},
		{"empty runtime", func(o *client.ProgramOptions) { o.RuntimeRef = "" }, "runtime ref"},
		{"bad encoding", func(o *client.ProgramOptions) { o.Encoding = "tar" }, "encoding"},
		{"no entrypoint", func(o *client.ProgramOptions) { o.Entrypoint = " " }, "entrypoint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			_, err := client.NewProgramContent(o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error about %q", err, tc.want)
			}
		})
	}
	pc, err := client.NewProgramContent(client.ProgramOptions{CodeRef: hashA, RuntimeRef: client.DefaultRuntimeID, Encoding: "squashfs", Entrypoint: "run.sh"})
	if err != nil {
		t.Fatal(err)
	}
	r := pc.Resources
	if r.VCPUs != 1 || r.Memory != 256 || r.Seconds != 30 || pc.Runtime.Comment != client.DefaultRuntimeComment ||
		pc.Payment.Chain != message.ChainETH || pc.Metadata != nil || pc.On.Persistent == nil || *pc.On.Persistent {
		t.Errorf("defaults: %+v", pc)
	}
}

// TestIntegrationPrograms creates, lists, updates and deletes programs on a
// real node.
func TestIntegrationPrograms(t *testing.T) {
	base := nodetest.Start(t)
	ctx := testCtx(t)
	owner := newAccount(t)
	// Half seconds make content.time print exactly; each message gets its own
	// second, so that the newest STORE of a ref is well defined.
	start := time.Now().Truncate(time.Second).Add(500 * time.Millisecond)
	var mu sync.Mutex
	var ticks time.Duration
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		ticks += time.Second
		return start.Add(ticks)
	}
	c := client.New(base, client.WithSigner(owner), client.WithClock(clock))
	syncOpts := client.WriteOptions{Channel: "PROGRAMS", Sync: true}

	upload := func(data string, engine message.ItemType) *client.UploadResult {
		t.Helper()
		up, err := c.UploadFile(ctx, strings.NewReader(data), client.UploadOptions{Engine: engine, WriteOptions: syncOpts})
		if err != nil || up.Status != message.StatusProcessed {
			t.Fatalf("upload: %+v, %v", up, err)
		}
		return up
	}
	code := upload("PK fake zip v1", message.ItemStorage)
	runtime := upload("fake runtime squashfs", message.ItemIPFS)

	opts := client.ProgramOptions{
		Name: "hello", CodeRef: code.ItemHash, Encoding: message.EncodingZip, Entrypoint: "main:app",
		RuntimeRef: runtime.ItemHash, VCPUs: 2, MemoryMiB: 512, Seconds: 10, Internet: true, Updatable: true,
		Volumes: []message.MachineVolume{
			{Persistent: &message.PersistentVolume{Mount: "/data", Persistence: "host", Name: "data", SizeMiB: 100}},
			{Ephemeral: &message.EphemeralVolume{Mount: "/scratch", Ephemeral: true, SizeMiB: 50}},
			{Immutable: &message.ImmutableVolume{Mount: "/opt/packages", Ref: runtime.ItemHash, UseLatest: true}},
		},
		Variables:     map[string]string{"B": "x", "A": "1"},
		Subscriptions: []message.Subscription{{"channel": json.RawMessage(`"TEST"`)}},
	}
	w, err := c.CreateProgram(ctx, opts, client.WriteOptions{Channel: "PROGRAMS"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != message.StatusProcessed || w.Message.Type != message.TypeProgram {
		t.Fatalf("create: status %s, %+v", w.Status, w.Message)
	}
	var head struct{ Time json.Number }
	if err := json.Unmarshal(w.Content, &head); err != nil || !strings.HasSuffix(string(head.Time), ".5") {
		t.Fatalf("content time %q, %v", head.Time, err)
	}
	want := fmt.Sprintf(`{"address":"%s","time":%s,"type":"vm-function","allow_amend":true,"metadata":{"name":"hello"},`+
		`"variables":{"A":"1","B":"x"},"environment":{"reproducible":false,"internet":true,"aleph_api":true,"shared_cache":false},`+
		`"resources":{"vcpus":2,"memory":512,"seconds":10},"payment":{"chain":"ETH","type":"hold"},`+
		`"volumes":[{"mount":"/data","persistence":"host","name":"data","size_mib":100},{"mount":"/scratch","ephemeral":true,"size_mib":50},`+
		`{"mount":"/opt/packages","ref":"%s","use_latest":true}],`+
		`"code":{"encoding":"zip","entrypoint":"main:app","ref":"%s","use_latest":true},`+
		`"runtime":{"ref":"%s","use_latest":true,"comment":""},"on":{"http":true,"message":[{"channel":"TEST"}],"persistent":false}}`,
		owner.Address(), head.Time, runtime.ItemHash, code.ItemHash, runtime.ItemHash)
	if string(w.Content) != want {
		t.Errorf("content\n got %s\nwant %s", w.Content, want)
	}

	// The node serves the same bytes, and they parse back to the same fields.
	p, err := c.GetProgram(ctx, w.ItemHash)
	if err != nil {
		t.Fatal(err)
	}
	if p.Message.ItemContent != want || p.Name() != "hello" || p.Owner() != owner.Address() ||
		p.Content.Code.Ref != code.ItemHash || len(p.Content.Volumes) != 3 || p.Content.Volumes[2].Immutable == nil {
		t.Errorf("get program: %s, %+v", p.Message.ItemContent, p.Content)
	}
	if _, err := c.GetProgram(ctx, code.ItemHash); !errors.Is(err, client.ErrNotProgram) {
		t.Errorf("GetProgram of a STORE: %v", err)
	}

	// A second program sharing the runtime, whose code will be kept.
	code2 := upload("PK fake zip second", message.ItemStorage)
	opts2 := opts
	opts2.Name, opts2.CodeRef, opts2.Volumes, opts2.Subscriptions = "second", code2.ItemHash, nil, nil
	w2, err := c.CreateProgram(ctx, opts2, client.WriteOptions{})
	if err != nil || w2.Status != message.StatusProcessed {
		t.Fatalf("second program: %v", err)
	}

	list, err := c.ListPrograms(ctx, owner.Address())
	if err != nil {
		t.Fatal(err)
	}
	if got := programHashes(list); got != w2.ItemHash+","+w.ItemHash && got != w.ItemHash+","+w2.ItemHash {
		t.Errorf("list: %s", got)
	}
	if list, err := c.ListPrograms(ctx, newAccount(t).Address()); err != nil || len(list) != 0 {
		t.Errorf("list of a stranger: %v, %v", list, err)
	}

	// Update: a STORE whose ref is the code STORE, same engine and channel.
	newCode := "PK fake zip v2"
	up, err := c.UpdateProgramCode(ctx, w.ItemHash, strings.NewReader(newCode), message.EncodingZip, client.WriteOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	var sc struct {
		Ref      string `json:"ref"`
		ItemType string `json:"item_type"`
	}
	sum := sha256.Sum256([]byte(newCode))
	if err := json.Unmarshal(up.Content, &sc); err != nil || sc.Ref != code.ItemHash || sc.ItemType != "storage" ||
		up.Status != message.StatusProcessed || up.Message.Channel != "PROGRAMS" || up.FileHash != hex.EncodeToString(sum[:]) {
		t.Errorf("update: %+v, content %s", up, up.Content)
	}
	if ref, err := c.FileByRef(ctx, "", code.ItemHash); err != nil || ref.FileHash != up.FileHash {
		t.Errorf("latest code file: %+v, %v", ref, err)
	}
	if _, err := c.UpdateProgramCode(ctx, w.ItemHash, strings.NewReader("hsqs"), message.EncodingSquashfs, syncOpts); !errors.Is(err, client.ErrEncodingChanged) {
		t.Errorf("update with another encoding: %v", err)
	}
	stranger := client.New(base, client.WithSigner(newAccount(t)))
	if _, err := stranger.UpdateProgramCode(ctx, w.ItemHash, strings.NewReader("x"), message.EncodingZip, syncOpts); err == nil || !strings.Contains(err.Error(), "belongs to") {
		t.Errorf("update by a stranger: %v", err)
	}

	// Delete: the program and its code are forgotten.
	del, err := c.ForgetProgram(ctx, w.ItemHash, false, "done", client.WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if del.Program.Status != message.StatusProcessed || del.Code == nil || del.Code.Status != message.StatusProcessed || del.CodeRef != code.ItemHash {
		t.Fatalf("delete: %+v", del)
	}
	for _, h := range []string{w.ItemHash, code.ItemHash} {
		if res, err := c.GetMessage(ctx, h); err != nil || res.Status != message.StatusForgotten {
			t.Errorf("%s after delete: %+v, %v", h, res, err)
		}
	}
	var fe *client.ForgottenError
	if _, err := c.GetProgram(ctx, w.ItemHash); !errors.As(err, &fe) {
		t.Errorf("GetProgram of a forgotten program: %v", err)
	}
	// Keep the code of the second one.
	del2, err := c.ForgetProgram(ctx, w2.ItemHash, true, "", client.WriteOptions{})
	if err != nil || del2.Code != nil {
		t.Fatalf("delete keeping code: %+v, %v", del2, err)
	}
	if res, err := c.GetMessage(ctx, code2.ItemHash); err != nil || res.Status != message.StatusProcessed {
		t.Errorf("kept code: %+v, %v", res, err)
	}
	if list, err := c.ListPrograms(ctx, owner.Address()); err != nil || len(list) != 0 {
		t.Errorf("list after deletes: %s, %v", programHashes(list), err)
	}
}

func programHashes(ps []*client.Program) string {
	var hs []string
	for _, p := range ps {
		hs = append(hs, p.Message.ItemHash)
	}
	return strings.Join(hs, ",")
}

// crnServer serves handler on 127.0.0.1 and returns its URL.
func crnServer(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestGetProgramLogs(t *testing.T) {
	prog := strings.Repeat("c", 64)
	var gotAuth string
	crn := crnServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/control/machine/"+prog+"/logs" {
			http.Error(w, `{"error":"no route"}`, http.StatusNotFound)
			return
		}
		gotAuth = r.Header.Get("X-SignedOperation")
		if gotAuth == "" {
			http.Error(w, `{"error":"Missing X-SignedOperation header"}`, http.StatusBadRequest)
			return
		}
		if gotAuth != "op" {
			http.Error(w, `{"error":"Unauthorized sender"}`, http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `[{"__REALTIME_TIMESTAMP":"2026-01-02T03:04:05.123456Z","MESSAGE":"started","file":"stdout","SYSLOG_IDENTIFIER":"vm-`+prog+`-stdout"},`+
			`{"__REALTIME_TIMESTAMP":"1767323046000001","MESSAGE":"oops","file":"stderr","SYSLOG_IDENTIFIER":"x"},`+
			`{"__REALTIME_TIMESTAMP":1767323047000000,"MESSAGE":[104,105],"file":"stdout"}]`)
	})
	c := client.New("http://127.0.0.1:1")
	var signed []string
	sign := func(op string) client.CRNSigner {
		return func(domain, method, path string) (http.Header, error) {
			signed = append(signed, domain+" "+method+" "+path)
			h := http.Header{}
			h.Set("X-SignedPubKey", "{}")
			h.Set("X-SignedOperation", op)
			return h, nil
		}
	}
	ctx := testCtx(t)
	logs, err := c.GetProgramLogs(ctx, crn+"/", prog, sign("op"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "127.0.0.1 GET /control/machine/" + prog + "/logs"; len(signed) != 1 || signed[0] != want {
		t.Errorf("signed %q, want %q", signed, want)
	}
	want := []client.LogEntry{
		{Time: time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC), Stream: "stdout", Message: "started", Identifier: "vm-" + prog + "-stdout"},
		{Time: time.UnixMicro(1767323046000001).UTC(), Stream: "stderr", Message: "oops", Identifier: "x"},
		{Time: time.UnixMicro(1767323047000000).UTC(), Stream: "stdout", Message: "hi"},
	}
	if len(logs) != len(want) {
		t.Fatalf("logs %+v", logs)
	}
	for i := range want {
		if !logs[i].Time.Equal(want[i].Time) || logs[i].Stream != want[i].Stream || logs[i].Message != want[i].Message || logs[i].Identifier != want[i].Identifier {
			t.Errorf("entry %d: %+v, want %+v", i, logs[i], want[i])
		}
	}

	var apiErr *client.APIError
	if _, err := c.GetProgramLogs(ctx, crn, prog, sign("someone else")); !errors.As(err, &apiErr) || apiErr.StatusCode != 403 || !strings.Contains(err.Error(), "Unauthorized sender") {
		t.Errorf("unauthorized: %v", err)
	}
	for _, tc := range []struct {
		name, crn, hash string
		sign            client.CRNSigner
		want            string
	}{
		{"bad hash", crn, "xyz", sign("op"), "not a program hash"},
		{"no signer", crn, prog, nil, "no signer"},
		{"bad url", "ftp://x", prog, sign("op"), "invalid compute node URL"},
		{"sign fails", crn, prog, func(string, string, string) (http.Header, error) { return nil, errors.New("boom") }, "sign request: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := c.GetProgramLogs(ctx, tc.crn, tc.hash, tc.sign); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestCRNDefaultRuntime(t *testing.T) {
	ctx := testCtx(t)
	c := client.New("http://127.0.0.1:1")
	for _, tc := range []struct {
		name, body string
		want       string // the runtime, or a piece of the error
		ok         bool
	}{
		{"advertised", `{"references":{"DEFAULT_RUNTIME_ID":"` + hashA + `"}}`, hashA, true},
		{"absent", `{"references":{"API_SERVER":"x"}}`, "DEFAULT_RUNTIME_ID", false},
		{"not a hash", `{"references":{"DEFAULT_RUNTIME_ID":"latest"}}`, "not an item hash", false},
		{"not json", `<html>`, "decode answer", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crn := crnServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/status/config" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, tc.body)
			})
			got, err := c.CRNDefaultRuntime(ctx, crn)
			switch {
			case tc.ok && (err != nil || got != tc.want):
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %q, %v; want an error with %q", got, err, tc.want)
			}
		})
	}
	// Nothing listens: a connection error, not a hang.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.CRNDefaultRuntime(ctx2, "http://"+addr); err == nil {
		t.Error("no error from a closed port")
	}
	if d, err := client.CRNDomain("https://crn.example.org:4020/"); err != nil || d != "crn.example.org" {
		t.Errorf("CRNDomain: %q, %v", d, err)
	}
}
