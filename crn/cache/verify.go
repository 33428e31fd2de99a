package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// errAbandoned stops a CID check whose download failed.
var errAbandoned = errors.New("download abandoned")

// verifier hashes the bytes written to it; finish reports whether they match
// the key (sha256 hex, or a CID checked by client.VerifyFile).
type verifier struct {
	sha  hash.Hash
	want string
	pw   *io.PipeWriter
	done chan error
}

func newVerifier(ctx context.Context, key string) *verifier {
	if message.IsHexHash(key) {
		return &verifier{sha: sha256.New(), want: key}
	}
	pr, pw := io.Pipe()
	v := &verifier{want: key, pw: pw, done: make(chan error, 1)}
	go func() {
		err := client.VerifyFile(ctx, pr, key)
		// Unblock the writer when the check stopped before the end.
		pr.CloseWithError(errAbandoned)
		v.done <- err
	}()
	return v
}

func (v *verifier) Write(p []byte) (int, error) {
	if v.sha != nil {
		return v.sha.Write(p)
	}
	// A check that stopped early fails the writes; its error comes from finish.
	_, _ = v.pw.Write(p)
	return len(p), nil
}

// finish ends the check; with abandon, only releases it.
func (v *verifier) finish(abandon bool) error {
	if v.sha != nil {
		if abandon {
			return nil
		}
		if got := hex.EncodeToString(v.sha.Sum(nil)); got != v.want {
			return fmt.Errorf("%w: sha256 is %s", ErrHashMismatch, got)
		}
		return nil
	}
	if abandon {
		v.pw.CloseWithError(errAbandoned)
		<-v.done
		return nil
	}
	v.pw.Close()
	if err := <-v.done; err != nil {
		if errors.Is(err, ErrHashMismatch) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrHashMismatch, err)
	}
	return nil
}
