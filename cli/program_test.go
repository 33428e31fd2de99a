package cli

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/crn/ownerauth"
	"github.com/go-aleph/go-aleph/message"
)

const (
	refA = "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
	refB = "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"
)

func TestParseVolumes(t *testing.T) {
	for _, tc := range []struct {
		name           string
		pers, eph, imm []string
		want           string // the volumes as JSON, or a piece of the error
		ok             bool
	}{
		{"none", nil, nil, nil, `null`, true},
		{"persistent", []string{"name=data,mount=/var/lib/data,size_mib=100"}, nil, nil,
			`[{"mount":"/var/lib/data","persistence":"host","name":"data","size_mib":100}]`, true},
		{"persistent store with parent", []string{" name = d , mount=/d,size_mib=5,persistence=store,parent=" + refA + ",comment=hi"}, nil, nil,
			`[{"comment":"hi","mount":"/d","parent":{"ref":"` + refA + `","use_latest":true},"persistence":"store","name":"d","size_mib":5}]`, true},
		{"ephemeral", nil, []string{"mount=/tmp/x,size_mib=50"}, nil, `[{"mount":"/tmp/x","ephemeral":true,"size_mib":50}]`, true},
		{"immutable", nil, nil, []string{"mount=/opt/packages,ref=" + refA}, `[{"mount":"/opt/packages","ref":"` + refA + `","use_latest":true}]`, true},
		{"immutable pinned", nil, nil, []string{"mount=/o,ref=" + refB + ",use_latest=false"}, `[{"mount":"/o","ref":"` + refB + `","use_latest":false}]`, true},
		{"order: persistent, ephemeral, immutable", []string{"name=p,mount=/p,size_mib=1"}, []string{"mount=/e,size_mib=1"}, []string{"mount=/i,ref=" + refA},
			`[{"mount":"/p","persistence":"host","name":"p","size_mib":1},{"mount":"/e","ephemeral":true,"size_mib":1},{"mount":"/i","ref":"` + refA + `","use_latest":true}]`, true},

		{"persistent missing keys", []string{"name=data"}, nil, nil, "missing mount, size_mib", false},
		{"unknown key", nil, []string{"mount=/x,size_mib=1,color=red"}, nil, `unknown key "color"`, false},
		{"key twice", nil, []string{"mount=/x,mount=/y,size_mib=1"}, nil, "mount given twice", false},
		{"not key=value", nil, []string{"mount"}, nil, "want key=value", false},
		{"relative mount", nil, []string{"mount=data,size_mib=1"}, nil, "not an absolute path", false},
		{"size zero", nil, []string{"mount=/x,size_mib=0"}, nil, "size_mib \"0\" is not a whole number from 1 to 1000", false},
		{"ephemeral too big", nil, []string{"mount=/x,size_mib=1001"}, nil, "from 1 to 1000", false},
		{"size not a number", []string{"name=a,mount=/x,size_mib=1.5"}, nil, nil, "size_mib \"1.5\"", false},
		{"bad persistence", []string{"name=a,mount=/x,size_mib=1,persistence=cloud"}, nil, nil, "not host or store", false},
		{"bad parent", []string{"name=a,mount=/x,size_mib=1,parent=xyz"}, nil, nil, `parent "xyz" is not an item hash`, false},
		{"bad ref", nil, nil, []string{"mount=/x,ref=nope"}, `ref "nope" is not an item hash`, false},
		{"immutable without ref", nil, nil, []string{"mount=/x"}, "missing ref", false},
		{"bad use_latest", nil, nil, []string{"mount=/x,ref=" + refA + ",use_latest=maybe"}, "use_latest \"maybe\"", false},
		{"same mount twice", []string{"name=a,mount=/x,size_mib=1"}, nil, []string{"mount=/x,ref=" + refA}, "two volumes are mounted on /x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vols, err := parseVolumes(tc.pers, tc.eph, tc.imm)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(vols)
			if err != nil || string(got) != tc.want {
				t.Errorf("got %s (%v)\nwant %s", got, err, tc.want)
			}
		})
	}
}

func TestParseEnvVars(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals []string
		want map[string]string
		err  string
	}{
		{"none", nil, nil, ""},
		{"one flag", []string{"A=1,B_2=two"}, map[string]string{"A": "1", "B_2": "two"}, ""},
		{"repeated, empty value, equals in value", []string{"A=1,", "_X=", "URL=a=b"}, map[string]string{"A": "1", "_X": "", "URL": "a=b"}, ""},
		{"only commas", []string{",,"}, nil, ""},
		{"no equals", []string{"A"}, nil, `"A" is not KEY=VALUE`},
		{"empty name", []string{"=1"}, nil, "is not a variable name"},
		{"digit first", []string{"1A=x"}, nil, `"1A" is not a variable name`},
		{"space in name", []string{"MY VAR=x"}, nil, "is not a variable name"},
		{"twice", []string{"A=1", "A=2"}, nil, "A given twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseEnvVars(tc.vals)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error with %q", got, err, tc.err)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) || (got == nil) != (tc.want == nil) {
				t.Errorf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestProgramURLs(t *testing.T) {
	hash := "acab0108" + strings.Repeat("0", 48) + "0000cc1c"
	for _, tc := range []struct {
		crn, hash, vm, host string
	}{
		{"http://localhost:4020", hash, "http://localhost:4020/vm/" + hash, "http://vsvqccaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaazqoa.localhost:4020/"},
		{"https://crn.example.org/", hash, "https://crn.example.org/vm/" + hash, "https://vsvqccaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaazqoa.crn.example.org/"},
	} {
		vm, host, err := programURLs(tc.crn, tc.hash)
		if err != nil || vm != tc.vm || host != tc.host {
			t.Errorf("programURLs(%q): %q, %q, %v; want %q, %q", tc.crn, vm, host, err, tc.vm, tc.host)
		}
	}
	// A host name is not derived from a hash that is not sha256 hex.
	if vm, host, err := programURLs("http://h", "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"); err != nil || host != "" || vm != "http://h/vm/QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG" {
		t.Errorf("CID: %q, %q, %v", vm, host, err)
	}
	if _, _, err := programURLs("ftp://x", hash); err == nil || !strings.Contains(err.Error(), "invalid --crn") {
		t.Errorf("bad crn: %v", err)
	}
}

// writeTree creates files (name → content; a name ending in / is a directory).
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// zipBytes makes a zip of name → content.
func zipBytes(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var appTree = map[string]string{"main.py": "app = None\n", "pkg/mod.py": "X = 1\n", "empty/": ""}

func TestPackageCodeSquashfs(t *testing.T) {
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Skip("mksquashfs is not installed (Debian package squashfs-tools)")
	}
	dir := t.TempDir()
	writeTree(t, dir, appTree)
	arc, err := packageCode(testContext(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(arc.path)
	if err != nil {
		t.Fatal(err)
	}
	if arc.encoding != message.EncodingSquashfs || !bytes.HasPrefix(data, squashfsMagic) || arc.size != int64(len(data)) {
		t.Fatalf("archive %+v starts with %q", arc, data[:min(8, len(data))])
	}
	if unsq, err := exec.LookPath("unsquashfs"); err == nil {
		out, err := exec.Command(unsq, "-l", arc.path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "squashfs-root/pkg/mod.py") || !strings.Contains(string(out), "squashfs-root/main.py") {
			t.Errorf("unsquashfs -l: %v\n%s", err, out)
		}
	}
	arc.cleanup()
	if _, err := os.Stat(arc.path); !os.IsNotExist(err) {
		t.Errorf("cleanup left %s", arc.path)
	}
}

func TestPackageCodeZipAndFiles(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no mksquashfs: directories become zips
	ctx := testContext(t)
	dir := t.TempDir()
	app := filepath.Join(dir, "app")
	writeTree(t, app, appTree)
	arc, err := packageCode(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer arc.cleanup()
	zr, err := zip.OpenReader(arc.path)
	if err != nil || arc.encoding != message.EncodingZip {
		t.Fatalf("archive %+v: %v", arc, err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "pkg/mod.py" {
			r, _ := f.Open()
			var b bytes.Buffer
			b.ReadFrom(r)
			r.Close()
			if b.String() != "X = 1\n" {
				t.Errorf("pkg/mod.py holds %q", b.String())
			}
		}
	}
	zr.Close()
	slices.Sort(names)
	if want := []string{"empty/", "main.py", "pkg/", "pkg/mod.py"}; !slices.Equal(names, want) {
		t.Errorf("zip holds %q, want %q", names, want)
	}

	file := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	symlinked := filepath.Join(dir, "symlinked")
	writeTree(t, symlinked, map[string]string{"main.py": "x"})
	if err := os.Symlink("main.py", filepath.Join(symlinked, "link.py")); err != nil {
		t.Fatal(err)
	}
	emptyDir := filepath.Join(dir, "emptydir")
	writeTree(t, emptyDir, map[string]string{"sub/": ""})

	for _, tc := range []struct {
		name, path, encoding, err string
	}{
		{"zip file", file("code.zip", zipBytes(t, map[string]string{"main.py": "x"})), message.EncodingZip, ""},
		{"zip without suffix", file("code.bin", zipBytes(t, map[string]string{"run.sh": "x"})), message.EncodingZip, ""},
		{"squashfs by magic", file("image.img", append([]byte("hsqs"), make([]byte, 60)...)), message.EncodingSquashfs, ""},
		{"squashfs by name", file("code.squashfs", []byte("anything")), message.EncodingSquashfs, ""},
		{"text file", file("main.py", []byte("print('hi')\n")), "", "neither a zip archive nor a squashfs image"},
		{"empty file", file("empty.zip", nil), "", "is empty"},
		{"empty zip", file("nothing.zip", zipBytes(t, nil)), "", "empty zip archive"},
		{"missing", filepath.Join(dir, "ghost"), "", "no such file"},
		{"dir with a symlink", symlinked, "", "not a regular file or a directory"},
		{"dir without files", emptyDir, "", "holds no file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arc, err := packageCode(ctx, tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error with %q", arc, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer arc.cleanup()
			if arc.encoding != tc.encoding || arc.path != tc.path {
				t.Errorf("got %+v, want encoding %s", arc, tc.encoding)
			}
		})
	}
}

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// progHarness runs the CLI in process against a real node, with the real clock.
type progHarness struct {
	t   *testing.T
	api string
	env map[string]string
}

func (h *progHarness) run(args ...string) result {
	h.t.Helper()
	var out, errb bytes.Buffer
	code := Main(testContext(h.t), append([]string{"--api-url", h.api}, args...), Env{
		Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return h.env[k] }, Now: time.Now,
	})
	return result{out.String(), errb.String(), code}
}

func (h *progHarness) ok(args ...string) string {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 0 {
		h.t.Fatalf("aleph %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

func (h *progHarness) json(v any, args ...string) {
	h.t.Helper()
	s := h.ok(append(args, "--json")...)
	if err := json.Unmarshal([]byte(s), v); err != nil {
		h.t.Fatalf("aleph %s --json: %v\n%s", strings.Join(args, " "), err, s)
	}
}

func (h *progHarness) fails(want string, args ...string) {
	h.t.Helper()
	r := h.run(args...)
	if r.code != 1 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, want) {
		h.t.Errorf("aleph %s: exit %d, stderr %q; want exit 1 and one line containing %q", strings.Join(args, " "), r.code, r.stderr, want)
	}
}

type programUploadOut struct {
	ItemHash string         `json:"item_hash"`
	Status   string         `json:"status"`
	Content  map[string]any `json:"content"`
	Code     struct {
		ItemHash string `json:"item_hash"`
		FileHash string `json:"file_hash"`
		Engine   string `json:"engine"`
		Encoding string `json:"encoding"`
		Ref      string `json:"ref"`
		Status   string `json:"status"`
	} `json:"code"`
	VMURL   string `json:"vm_url"`
	HostURL string `json:"host_url"`
}

// TestProgramCommands deploys, lists, shows, updates, reads the logs of and
// deletes programs with the CLI against a real node.
func TestProgramCommands(t *testing.T) {
	h := &progHarness{t: t, api: nodetest.Start(t), env: map[string]string{"ALEPH_CONFIG_DIR": filepath.Join(t.TempDir(), "cfg")}}
	h.ok("account", "import", "--private-key", ethKey)
	dir := t.TempDir()
	rtFile := filepath.Join(dir, "runtime.squashfs")
	if err := os.WriteFile(rtFile, append([]byte("hsqs"), make([]byte, 100)...), 0o644); err != nil {
		t.Fatal(err)
	}
	var rt struct {
		ItemHash string `json:"item_hash"`
	}
	h.json(&rt, "file", "upload", rtFile)
	app := filepath.Join(dir, "myapp")
	writeTree(t, app, appTree)
	crn := "http://crn.example.org:4020"

	// A directory, every option.
	var up programUploadOut
	h.json(&up, "program", "upload", app, "main:app", "--runtime", rt.ItemHash, "--crn", crn,
		"--vcpus", "2", "--memory", "512", "--timeout-seconds", "5", "--internet", "--updatable", "--persistent",
		"--persistent-volume", "name=data,mount=/data,size_mib=10", "--ephemeral-volume", "mount=/scratch,size_mib=5",
		"--immutable-volume", "mount=/opt/packages,ref="+rt.ItemHash, "--env-vars", "A=1,B=2", "--channel", "TEST")
	wantEnc := message.EncodingZip
	if _, err := exec.LookPath("mksquashfs"); err == nil {
		wantEnc = message.EncodingSquashfs
	}
	c := up.Content
	code, _ := c["code"].(map[string]any)
	if up.Status != "processed" || up.Code.Status != "processed" || up.Code.Encoding != wantEnc || up.Code.Engine != "storage" ||
		code["ref"] != up.Code.ItemHash || code["encoding"] != wantEnc || code["entrypoint"] != "main:app" ||
		c["allow_amend"] != true || fmt.Sprint(c["metadata"]) != "map[name:myapp]" || fmt.Sprint(c["variables"]) != "map[A:1 B:2]" ||
		fmt.Sprint(c["resources"]) != "map[memory:512 seconds:5 vcpus:2]" || fmt.Sprint(c["on"]) != "map[http:true persistent:true]" ||
		fmt.Sprint(c["environment"]) != "map[aleph_api:true internet:true reproducible:false shared_cache:false]" ||
		len(c["volumes"].([]any)) != 3 || fmt.Sprint(c["runtime"]) != "map[comment: ref:"+rt.ItemHash+" use_latest:true]" {
		t.Errorf("upload: %+v", up)
	}
	vm, host, _ := programURLs(crn, up.ItemHash)
	if up.VMURL != crn+"/vm/"+up.ItemHash || up.VMURL != vm || host == "" || up.HostURL != host || !strings.HasSuffix(host, ".crn.example.org:4020/") {
		t.Errorf("urls %q %q", up.VMURL, up.HostURL)
	}

	// A zip file, the runtime from the environment, human output.
	zipPath := filepath.Join(dir, "code.zip")
	if err := os.WriteFile(zipPath, zipBytes(t, map[string]string{"main.py": "app = 1\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	h.env[EnvDefaultRuntime] = rt.ItemHash
	h.env[EnvCRNURL] = "http://localhost:4020"
	human := h.ok("program", "create", zipPath, "main:app", "--name", "second", "--print-message")
	delete(h.env, EnvDefaultRuntime)
	var second string
	for _, line := range strings.Split(human, "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "program" && f[1] == "hash" {
			second = f[2]
		}
	}
	if !message.IsHexHash(second) || !strings.Contains(human, "url           http://localhost:4020/vm/"+second) ||
		!strings.Contains(human, "host url      http://") || !strings.Contains(human, `"type": "PROGRAM"`) ||
		!strings.Contains(human, "runtime       "+rt.ItemHash) || !strings.Contains(human, "(storage, zip,") {
		t.Errorf("human upload output:\n%s", human)
	}

	// The runtime the compute node advertises.
	crnSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/status/config" {
			fmt.Fprintf(w, `{"references":{"DEFAULT_RUNTIME_ID":%q}}`, rt.ItemHash)
			return
		}
		http.NotFound(w, r)
	}))
	defer crnSrv.Close()
	var third programUploadOut
	h.json(&third, "program", "upload", zipPath, "run.sh", "--crn", crnSrv.URL)
	if rtc, _ := third.Content["runtime"].(map[string]any); third.Status != "processed" || rtc["ref"] != rt.ItemHash {
		t.Errorf("runtime from the compute node: %+v", third)
	}
	noRuntime := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"references":{}}`) }))
	defer noRuntime.Close()
	h.fails("no runtime: give --runtime", "program", "upload", zipPath, "main:app", "--crn", noRuntime.URL)
	h.fails("not an item hash", "program", "upload", zipPath, "main:app", "--runtime", "latest")
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("not code"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.fails("neither a zip archive nor a squashfs image", "program", "upload", notes, "main:app", "--runtime", rt.ItemHash)
	h.fails("invalid --ephemeral-volume", "program", "upload", zipPath, "main:app", "--runtime", rt.ItemHash, "--ephemeral-volume", "mount=/x")
	h.fails("--vcpus must be at least 1", "program", "upload", zipPath, "main:app", "--runtime", rt.ItemHash, "--vcpus", "0")
	h.fails("invalid --crn", "program", "upload", zipPath, "main:app", "--crn", "localhost:4020")

	// list and show.
	var list []programJSON
	h.json(&list, "program", "list")
	var hashes []string
	for _, p := range list {
		hashes = append(hashes, p.ItemHash)
	}
	slices.Sort(hashes)
	want := []string{up.ItemHash, second, third.ItemHash}
	slices.Sort(want)
	if !slices.Equal(hashes, want) {
		t.Errorf("list: %q, want %q", hashes, want)
	}
	if table := h.ok("program", "list"); !strings.Contains(table, "ITEM HASH") || !strings.Contains(table, second+"  second") {
		t.Errorf("list table:\n%s", table)
	}
	var shown programJSON
	h.json(&shown, "program", "show", up.ItemHash, "--crn", crn)
	if shown.Name != "myapp" || shown.Owner != ethAddress || shown.CodeRef != up.Code.ItemHash || !shown.Persistent || !shown.AllowAmend ||
		shown.HostURL != up.HostURL || shown.Encoding != wantEnc {
		t.Errorf("show: %+v", shown)
	}
	if out := h.ok("program", "show", second); !strings.Contains(out, "entrypoint  main:app") || !strings.Contains(out, `"entrypoint": "main:app"`) {
		t.Errorf("show human:\n%s", out)
	}
	h.fails("not a PROGRAM", "program", "show", rt.ItemHash)

	// update: the same encoding only.
	newZip := filepath.Join(dir, "v2.zip")
	if err := os.WriteFile(newZip, zipBytes(t, map[string]string{"main.py": "app = 2\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	var upd programCodeJSON
	h.json(&upd, "program", "update", second, newZip)
	if upd.Status != "processed" || upd.Encoding != message.EncodingZip || !message.IsHexHash(upd.Ref) || upd.Ref == upd.ItemHash {
		t.Errorf("update: %+v", upd)
	}
	h.fails("the code encoding cannot change", "program", "update", second, rtFile)

	// logs: signed as the owner, checked by the real verifier.
	logCRN := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		addr, err := ownerauth.Verify(r, "127.0.0.1", time.Now())
		if err != nil {
			http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusUnauthorized)
			return
		}
		if !strings.EqualFold(addr, ethAddress) || r.URL.Path != "/control/machine/"+second+"/logs" {
			http.Error(w, `{"error":"Unauthorized sender"}`, http.StatusForbidden)
			return
		}
		fmt.Fprint(w, `[{"__REALTIME_TIMESTAMP":"2026-01-02T03:04:05.000001Z","MESSAGE":"hello \u001b[31mred","file":"stdout","SYSLOG_IDENTIFIER":"vm-x-stdout"},`+
			`{"__REALTIME_TIMESTAMP":"2026-01-02T03:04:06Z","MESSAGE":"boom","file":"stderr","SYSLOG_IDENTIFIER":"vm-x-stderr"}]`)
	}))
	defer logCRN.Close()
	logs := h.ok("program", "logs", second, "--crn", logCRN.URL)
	if want := "2026-01-02T03:04:05.000001Z stdout hello \\x1b[31mred\n2026-01-02T03:04:06.000000Z stderr boom\n"; logs != want {
		t.Errorf("logs:\n%q\nwant\n%q", logs, want)
	}
	var logJ []logJSON
	h.json(&logJ, "program", "logs", second, "--crn", logCRN.URL)
	if len(logJ) != 2 || logJ[1].Stream != "stderr" || logJ[1].Message != "boom" {
		t.Errorf("logs json: %+v", logJ)
	}
	h.fails("Unauthorized sender", "program", "logs", up.ItemHash, "--crn", logCRN.URL)
	h.fails("not a program hash", "program", "logs", "nope")

	// delete: with and without the code.
	var del programDeleteJSON
	h.json(&del, "program", "delete", up.ItemHash, "--reason", "test")
	if del.Program.Status != "processed" || del.Code == nil || del.Code.Status != "processed" || del.CodeRef != up.Code.ItemHash {
		t.Errorf("delete: %+v", del)
	}
	out := h.ok("program", "delete", second, "--keep-code")
	if !strings.Contains(out, "kept (--keep-code)") {
		t.Errorf("delete --keep-code:\n%s", out)
	}
	var after []programJSON
	h.json(&after, "program", "list")
	if len(after) != 1 || after[0].ItemHash != third.ItemHash {
		t.Errorf("list after delete: %+v", after)
	}
	var msg struct {
		Status string `json:"status"`
	}
	h.json(&msg, "message", "status", up.Code.ItemHash)
	if msg.Status != "forgotten" {
		t.Errorf("code STORE after delete: %s", msg.Status)
	}
	h.fails("forgotten", "program", "show", up.ItemHash)
	h.fails("missing subcommand", "program")
}
