package files

import (
	"io"
	"math/rand/v2"
	"testing"
)

// BenchmarkAddIPFS256MiB adds fresh bytes through the service (no HTTP): the
// server-side cost of ipfs/add_file.
func BenchmarkAddIPFS256MiB(b *testing.B) {
	e := newEnv(b, envOpts{})
	const size = 256 << 20
	b.SetBytes(size)
	for i := 0; b.Loop(); i++ {
		r := io.LimitReader(rand.NewChaCha8([32]byte{byte(i), 1}), size)
		if _, err := e.svc.AddIPFS(e.ctx, r, 1<<30, ""); err != nil {
			b.Fatal(err)
		}
	}
}
