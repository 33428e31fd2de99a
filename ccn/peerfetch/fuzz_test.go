package peerfetch

import (
	"testing"

	"github.com/go-aleph/go-aleph/filestore"
)

// FuzzParseAnswer: any answer of a peer's JSON storage endpoint gives
// content within the bound or an error, never a panic.
func FuzzParseAnswer(f *testing.F) {
	h := "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	f.Add([]byte(`{"status":"success","hash":"`+h+`","engine":"storage","content":"Zm9v\n"}`), "storage", h)
	f.Add([]byte(`{"status":"success","hash":"`+h+`","engine":"storage","content":""}`), "storage", h)
	f.Add([]byte(`{"status":"error","hash":"`+h+`"}`), "storage", h)
	f.Add([]byte(`{"status":"success","hash":"`+h+`","content":"!!!"}`), "ipfs", h)
	f.Add([]byte(`[1,2,3]`), "storage", h)
	f.Fuzz(func(t *testing.T, raw []byte, engine, hash string) {
		const max = 1 << 10
		content, err := parseAnswer(raw, filestore.Engine(engine), hash, max)
		if err == nil && len(content) > max {
			t.Fatalf("%d bytes of content, over the bound of %d", len(content), max)
		}
	})
}
