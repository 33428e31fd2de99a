package node

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

//go:embed checkprogram
var checkProgram embed.FS

// CheckProgramZip is the check program's code: busybox httpd serving a page
// and a CGI that prints the environment. The archive is deterministic, so
// that its STORE is found again on the next start.
func CheckProgramZip() ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	err := fs.WalkDir(checkProgram, "checkprogram", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := checkProgram.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "checkprogram/")
		fh := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		mode := os.FileMode(0o644)
		if name == "run.sh" || strings.HasPrefix(name, "www/cgi-bin/") {
			mode = 0o755
		}
		fh.SetMode(mode)
		w, err := zw.CreateHeader(fh)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Published are the messages Bootstrap made (or found).
type Published struct {
	Runtime, CheckCode, CheckProgram string
}

// Bootstrap publishes, with c's signer, the runtime file and the check
// program on the CCN, for a network that has nothing yet (`alephd dev`).
// What is already there (same file, same program) is reused.
func Bootstrap(ctx context.Context, c *client.Client, owner string, runtime []byte) (*Published, error) {
	var out Published
	var err error
	if out.Runtime, err = ensureStore(ctx, c, owner, runtime); err != nil {
		return nil, fmt.Errorf("publish runtime: %w", err)
	}
	code, err := CheckProgramZip()
	if err != nil {
		return nil, err
	}
	if out.CheckCode, err = ensureStore(ctx, c, owner, code); err != nil {
		return nil, fmt.Errorf("publish check program code: %w", err)
	}
	f := false
	pc := &message.ProgramContent{
		Type:           message.ProgramTypeVMFunction,
		ExecutableHead: message.ExecutableHead{Metadata: json.RawMessage(`{"name":"go-aleph check program"}`)},
		Environment:    message.FunctionEnvironment{AlephAPI: true},
		ExecutableTail: message.ExecutableTail{Resources: message.MachineResources{VCPUs: 1, Memory: 64, Seconds: 30}, Volumes: []message.MachineVolume{}},
		Code:           message.CodeContent{Encoding: message.EncodingZip, Entrypoint: "run.sh", Ref: out.CheckCode, UseLatest: false},
		Runtime:        message.FunctionRuntime{Ref: out.Runtime, Comment: "go-aleph dev runtime"},
		On:             message.FunctionTriggers{HTTP: true, Persistent: &f},
	}
	// An earlier start may have published it already.
	filter := client.MessageFilter{Types: []message.Type{message.TypeProgram}, Owners: []string{owner}}
	for m, err := range c.AllMessages(ctx, filter, 100) {
		if err != nil {
			return nil, err
		}
		var got message.ProgramContent
		if json.Unmarshal(m.Content, &got) == nil && got.Code.Ref == out.CheckCode && got.Runtime.Ref == out.Runtime {
			out.CheckProgram = m.ItemHash
			return &out, nil
		}
	}
	w, err := c.Submit(ctx, message.TypeProgram, pc, client.WriteOptions{Sync: true})
	if err != nil {
		return nil, fmt.Errorf("publish check program: %w", err)
	}
	if w.Status != message.StatusProcessed {
		return nil, fmt.Errorf("publish check program: %s", w.Status)
	}
	out.CheckProgram = w.ItemHash
	return &out, nil
}

// ensureStore returns owner's STORE of b, uploading it if there is none.
func ensureStore(ctx context.Context, c *client.Client, owner string, b []byte) (string, error) {
	sum := sha256.Sum256(b)
	h := hex.EncodeToString(sum[:])
	list, err := c.ListMessages(ctx, client.MessageFilter{Types: []message.Type{message.TypeStore},
		Owners: []string{owner}, ContentHashes: []string{h}}, client.Page{Number: 1, Size: 1})
	if err != nil {
		return "", err
	}
	if len(list.Messages) > 0 {
		return list.Messages[0].ItemHash, nil
	}
	up, err := c.UploadFile(ctx, bytes.NewReader(b), client.UploadOptions{Engine: message.ItemStorage,
		WriteOptions: client.WriteOptions{Sync: true}})
	if err != nil {
		return "", err
	}
	if up.Status != message.StatusProcessed {
		return "", fmt.Errorf("store %s: %s", h, up.Status)
	}
	return up.ItemHash, nil
}
