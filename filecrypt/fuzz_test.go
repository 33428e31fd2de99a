package filecrypt

import (
	"bytes"
	"io"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

// FuzzDecrypt feeds arbitrary bytes to Decrypt: it must never panic, and
// whatever it accepts must come from a valid file for the identity (random input
// never authenticates).
func FuzzDecrypt(f *testing.F) {
	id := derive(f, message.ChainETH, devEVMAddr)
	var ct bytes.Buffer
	if _, err := EncryptStream(&ct, bytes.NewReader([]byte("hello aleph")), id.Recipient()); err != nil {
		f.Fatal(err)
	}
	f.Add(ct.Bytes())
	f.Add([]byte("age-encryption.org/v1\n-> X25519 AAAA\n\n--- AAAA\n"))
	f.Add([]byte("age-encryption.org/v1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := Decrypt(bytes.NewReader(data), id)
		if err != nil {
			return
		}
		// Bound the output: a valid header can precede a long payload.
		_, _ = io.Copy(io.Discard, io.LimitReader(r, 16<<20))
	})
}
