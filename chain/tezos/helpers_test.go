package tezos

import (
	"encoding/json"
	"testing"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

const vectorFile = "tezos.json"

// vectorMessage returns a fresh copy of vector i's message.
func vectorMessage(tb testing.TB, i int) *message.Message {
	tb.Helper()
	vs := chaintest.LoadVectors(tb, vectorFile)
	if i >= len(vs) {
		tb.Fatalf("no vector %d", i)
	}
	return chaintest.DecodeMessage(tb, vs[i].Message)
}

// signatureFields returns the signature object of m as a map, for tests to alter.
func signatureFields(tb testing.TB, m *message.Message) map[string]any {
	tb.Helper()
	var f map[string]any
	if err := json.Unmarshal([]byte(m.Signature), &f); err != nil {
		tb.Fatalf("signature JSON: %v", err)
	}
	return f
}

func encodeFields(tb testing.TB, f map[string]any) string {
	tb.Helper()
	b, err := json.Marshal(f)
	if err != nil {
		tb.Fatalf("encode signature: %v", err)
	}
	return string(b)
}
