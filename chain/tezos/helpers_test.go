package tezos

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

// vector is one entry of testdata/messages/tezos.json.
type vector struct {
	Origin  string          `json:"origin"`
	Valid   bool            `json:"valid"`
	Note    string          `json:"note"`
	Message json.RawMessage `json:"message"`
}

// signatureValid reports whether the entry's signature must verify: hash-mismatch
// entries are rejected by the hash check elsewhere, not by the signature.
func (v *vector) signatureValid() bool {
	return v.Valid || strings.HasPrefix(v.Note, "hash mismatch")
}

func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	data, err := os.ReadFile("../../testdata/messages/tezos.json")
	if err != nil {
		tb.Fatalf("read vectors: %v", err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		tb.Fatalf("decode vectors: %v", err)
	}
	if len(vs) == 0 {
		tb.Fatal("no vectors")
	}
	return vs
}

// decodeMessage decodes an envelope without validating it.
func decodeMessage(tb testing.TB, raw []byte) *message.Message {
	tb.Helper()
	var m message.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("decode message: %v", err)
	}
	return &m
}

// vectorMessage returns a fresh copy of vector i's message.
func vectorMessage(tb testing.TB, i int) *message.Message {
	tb.Helper()
	vs := loadVectors(tb)
	if i >= len(vs) {
		tb.Fatalf("no vector %d", i)
	}
	return decodeMessage(tb, vs[i].Message)
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

// checkSignatureError asserts that err is a code-1 *message.Error naming field.
func checkSignatureError(tb testing.TB, err error, field string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("accepted, want an error on %q", field)
	}
	var me *message.Error
	if !errors.As(err, &me) {
		tb.Fatalf("error %v is %T, not *message.Error", err, err)
	}
	if me.Code != message.CodeInvalidSignature || !errors.Is(err, message.ErrInvalidSignature) {
		tb.Errorf("error %v has code %v, want INVALID_SIGNATURE", err, me.Code)
	}
	if me.Field != field {
		tb.Errorf("error %v names field %q, want %q", err, me.Field, field)
	}
}
