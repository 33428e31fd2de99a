package resolve_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/cache"
	"github.com/go-aleph/go-aleph/crn/resolve"
	"github.com/go-aleph/go-aleph/message"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// env is a real node with an owner account and its client.
type env struct {
	t   *testing.T
	ctx context.Context
	c   *client.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	acc, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, ctx: testCtx(t), c: client.New(nodetest.Start(t), client.WithSigner(acc))}
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// upload stores data with a STORE (ref: the STORE it amends, or "").
func (e *env) upload(data []byte, engine message.ItemType, ref string) *client.UploadResult {
	e.t.Helper()
	up, err := e.c.UploadFile(e.ctx, bytes.NewReader(data), client.UploadOptions{
		Engine: engine, Ref: ref, WriteOptions: client.WriteOptions{Sync: true}})
	if err != nil {
		e.t.Fatal(err)
	}
	if up.Status != message.StatusProcessed {
		e.t.Fatalf("upload: %s", up.Status)
	}
	return up
}

func (e *env) submit(typ message.Type, content message.Content) string {
	e.t.Helper()
	w, err := e.c.Submit(e.ctx, typ, content, client.WriteOptions{Sync: true})
	if err != nil {
		e.t.Fatal(err)
	}
	if w.Status != message.StatusProcessed {
		e.t.Fatalf("submit %s: %s", typ, w.Status)
	}
	return w.ItemHash
}

func (e *env) forget(hashes ...string) {
	e.t.Helper()
	if _, err := e.c.Forget(e.ctx, client.ForgetTargets{Hashes: hashes}, client.WriteOptions{Sync: true}); err != nil {
		e.t.Fatal(err)
	}
}

// files are the STOREs a test program uses.
type files struct {
	code, runtime, data, volume, parent *client.UploadResult
	codeBytes                           []byte
}

func (e *env) files() *files {
	e.t.Helper()
	f := &files{codeBytes: random(40 << 10)}
	f.code = e.upload(f.codeBytes, message.ItemStorage, "")
	f.runtime = e.upload(random(100<<10), message.ItemStorage, "")
	f.data = e.upload(random(1000), message.ItemStorage, "")
	f.volume = e.upload(random(300<<10), message.ItemIPFS, "")
	f.parent = e.upload(random(2000), message.ItemStorage, "")
	return f
}

func program(f *files, entrypoint string) *message.ProgramContent {
	persistent := false
	pc := &message.ProgramContent{
		Type:           message.ProgramTypeVMFunction,
		ExecutableHead: message.ExecutableHead{AllowAmend: true, Variables: map[string]string{"VM_CUSTOM_NUMBER": "32"}},
		Environment:    message.FunctionEnvironment{Internet: true, AlephAPI: true},
		ExecutableTail: message.ExecutableTail{
			Resources: message.MachineResources{VCPUs: 2, Memory: 256, Seconds: 30},
			Volumes: []message.MachineVolume{
				{Immutable: &message.ImmutableVolume{Mount: "/opt/packages", Ref: f.volume.ItemHash, UseLatest: true}},
				{Persistent: &message.PersistentVolume{Mount: "/var/lib/example", Name: "data", Persistence: "host", SizeMiB: 5}},
				{Persistent: &message.PersistentVolume{Mount: "/srv", Name: "seeded", SizeMiB: 1,
					Parent: &message.VolumeParent{Ref: f.parent.ItemHash, UseLatest: false}}},
				{Ephemeral: &message.EphemeralVolume{Mount: "/tmp/scratch", Ephemeral: true, SizeMiB: 3}},
			},
		},
		Code:    message.CodeContent{Encoding: message.EncodingZip, Entrypoint: entrypoint, Ref: f.code.ItemHash, UseLatest: true},
		Runtime: message.FunctionRuntime{Ref: f.runtime.ItemHash, UseLatest: false, Comment: "test runtime"},
		Data:    &message.DataContent{Encoding: message.EncodingZip, Mount: "/data", Ref: f.data.ItemHash, UseLatest: true},
		On: message.FunctionTriggers{HTTP: true, Persistent: &persistent,
			Message: []message.Subscription{{"channel": []byte(`"TEST"`)}}},
	}
	return pc
}

func TestResolve(t *testing.T) {
	e := newEnv(t)
	f := e.files()
	r := resolve.New(e.c, resolve.Limits{DiskMiB: 100, MemoryMiB: 1024, VCPUs: 4}, nil)
	hash := e.submit(message.TypeProgram, program(f, "main:app"))

	p, err := r.Resolve(e.ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	wantFile := func(name string, got resolve.File, up *client.UploadResult, size int64, latest bool) {
		t.Helper()
		want := resolve.File{Ref: up.ItemHash, UseLatest: latest, Store: up.ItemHash, FileHash: up.FileHash, Engine: up.Engine, Size: size}
		if got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
	wantFile("code", p.Code, f.code, 40<<10, true)
	wantFile("runtime", p.Runtime, f.runtime, 100<<10, false)
	wantFile("data", p.Data.File, f.data, 1000, true)
	if len(p.Volumes) != 1 || p.Volumes[0].Mount != "/opt/packages" {
		t.Fatalf("volumes %+v", p.Volumes)
	}
	wantFile("volume", p.Volumes[0].File, f.volume, 300<<10, true)
	if len(p.Persistent) != 2 || p.Persistent[0].Name != "data" || p.Persistent[0].Parent != nil || p.Persistent[0].Persistence != "host" ||
		p.Persistent[1].Name != "seeded" || p.Persistent[1].Parent == nil || p.Persistent[1].Persistence != "host" {
		t.Fatalf("persistent %+v", p.Persistent)
	}
	wantFile("parent", *p.Persistent[1].Parent, f.parent, 2000, false)
	if len(p.Ephemeral) != 1 || p.Ephemeral[0] != (resolve.EphemeralVolume{Mount: "/tmp/scratch", SizeMiB: 3}) {
		t.Fatalf("ephemeral %+v", p.Ephemeral)
	}
	if p.Hash != hash || p.Owner != e.c.Signer().Address() || p.Entrypoint != "main:app" || p.Interface != resolve.InterfaceASGI ||
		p.Encoding != message.EncodingZip || p.Resources != (resolve.Resources{VCPUs: 2, MemoryMiB: 256, Seconds: 30}) ||
		!p.Internet || !p.AlephAPI || p.Variables["VM_CUSTOM_NUMBER"] != "32" || !p.OnHTTP || p.OnPersistent ||
		len(p.OnMessage) != 1 || p.Replaces != "" {
		t.Fatalf("program %+v", p)
	}
	wantRefs := []string{f.code.ItemHash, f.runtime.ItemHash, f.data.ItemHash, f.volume.ItemHash}
	if len(p.WatchRefs) != len(wantRefs) {
		t.Fatalf("watch refs %v, want %v", p.WatchRefs, wantRefs)
	}
	for i := range wantRefs {
		if p.WatchRefs[i] != wantRefs[i] {
			t.Fatalf("watch refs %v, want %v", p.WatchRefs, wantRefs)
		}
	}

	// The resolved files download through the cache, verified.
	c, err := cache.Open(e.ctx, cache.Config{Dir: t.TempDir(), MaxBytes: 10 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fetch := func(ctx context.Context, key string, w io.Writer) error {
		_, err := e.c.DownloadFile(ctx, key, w, 0)
		return err
	}
	for _, file := range []resolve.File{p.Code, p.Volumes[0].File} {
		h, err := c.Get(e.ctx, file.FileHash, fetch)
		if err != nil {
			t.Fatal(err)
		}
		if h.Size() != file.Size {
			t.Errorf("%s: cached %d bytes, resolved size %d", file.FileHash, h.Size(), file.Size)
		}
		h.Release()
	}
	h, err := c.Get(e.ctx, p.Code.FileHash, fetch)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(h.Path())
	h.Release()
	if !bytes.Equal(got, f.codeBytes) {
		t.Fatal("cached code differs")
	}

	t.Run("use_latest", func(t *testing.T) {
		newCode := random(5000)
		amend := e.upload(newCode, message.ItemStorage, f.code.ItemHash)
		// An amend of a ref with use_latest false changes nothing.
		e.upload(random(10), message.ItemStorage, f.runtime.ItemHash)
		p, err := r.Resolve(e.ctx, hash)
		if err != nil {
			t.Fatal(err)
		}
		want := resolve.File{Ref: f.code.ItemHash, UseLatest: true, Store: amend.ItemHash, FileHash: amend.FileHash, Engine: message.ItemStorage, Size: 5000}
		if p.Code != want {
			t.Errorf("code %+v, want %+v", p.Code, want)
		}
		wantFile("runtime", p.Runtime, f.runtime, 100<<10, false)
		// The original ref is still the one to watch.
		if p.WatchRefs[0] != f.code.ItemHash {
			t.Errorf("watch refs %v", p.WatchRefs)
		}
		// A newer amend wins.
		amend2 := e.upload(random(6000), message.ItemStorage, f.code.ItemHash)
		if p, err = r.Resolve(e.ctx, hash); err != nil || p.Code.Store != amend2.ItemHash || p.Code.FileHash != amend2.FileHash {
			t.Errorf("second amend: %+v, %v", p, err)
		}
	})

	t.Run("missing ref", func(t *testing.T) {
		// A node refuses to forget a STORE a VM uses, so the missing STORE is a
		// fault injected in front of the real node.
		r := resolve.New(client.New(hiding(t, e.c.BaseURL(), f.parent.ItemHash)), resolve.Limits{}, nil)
		_, err := r.Resolve(e.ctx, hash)
		var re *resolve.RefError
		if !errors.Is(err, resolve.ErrRefNotFound) || !errors.As(err, &re) || re.Ref != f.parent.ItemHash || re.Name != "volume seeded parent" {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("forgotten program", func(t *testing.T) {
		e.forget(hash)
		if _, err := r.Resolve(e.ctx, hash); !errors.Is(err, resolve.ErrForgotten) {
			t.Fatalf("got %v", err)
		}
	})
}

// hiding serves the node at base, except that the message hidden is unknown.
func hiding(t *testing.T, base, hidden string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, hidden) || strings.Contains(r.URL.RawQuery, hidden) {
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestResolveErrors(t *testing.T) {
	e := newEnv(t)
	f := e.files()
	r := resolve.New(e.c, resolve.Limits{DiskMiB: 10, MemoryMiB: 512}, nil)

	noEntry := e.submit(message.TypeProgram, program(f, ""))
	executable := e.submit(message.TypeProgram, program(f, "run.sh"))
	big := program(f, "main:app")
	big.Volumes[1].Persistent.SizeMiB = 7 // 7 + 1 + 3 MiB > 10
	bigDisk := e.submit(message.TypeProgram, big)
	mem := program(f, "main:app")
	mem.Resources.Memory = 1024
	bigMem := e.submit(message.TypeProgram, mem)
	post, err := e.c.CreatePost(e.ctx, "test", map[string]any{"a": 1}, "", client.WriteOptions{Sync: true})
	if err != nil {
		t.Fatal(err)
	}
	withParent := program(f, "main:app")
	withParent.Volumes[2].Persistent.Parent.Ref = f.code.ItemHash // 40 KiB in 1 MiB
	fits := e.submit(message.TypeProgram, withParent)

	for _, tc := range []struct {
		name string
		hash string
		want error
	}{
		{"unknown", "cafe" + f.code.ItemHash[4:], resolve.ErrNotFound},
		{"not a hash", "../x", resolve.ErrNotFound},
		{"a store", f.code.ItemHash, resolve.ErrNotProgram},
		{"a post", post.ItemHash, resolve.ErrNotProgram},
		{"no entrypoint", noEntry, resolve.ErrInvalidProgram},
		{"disk over limit", bigDisk, resolve.ErrOverLimit},
		{"memory over limit", bigMem, resolve.ErrOverLimit},
		{"executable", executable, nil},
		{"parent fits", fits, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := r.Resolve(e.ctx, tc.hash)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				t.Log(err)
			}
			if tc.name == "executable" && p.Interface != resolve.InterfaceExecutable {
				t.Fatalf("interface %q", p.Interface)
			}
		})
	}
}
