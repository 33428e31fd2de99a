// Package chaintest is the test scaffolding shared by the signature verifiers under
// chain/: it loads the signed message vectors of testdata/messages, runs them
// through a chain.Verifier, seeds fuzz targets from them, and checks the errors
// verifiers return (code 1, message.ErrInvalidSignature, naming a field).
//
// It is a test-support package: only _test.go files import it.
package chaintest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

// Vector is one entry of a testdata/messages/<chain>.json file.
type Vector struct {
	Origin  string          `json:"origin"`
	Valid   bool            `json:"valid"`
	Note    string          `json:"note"`
	Message json.RawMessage `json:"message"`
}

// SignatureValid reports whether the vector's signature alone must verify: the
// valid entries, and the "hash mismatch" ones, which carry a good signature and are
// rejected by the content hash check, not by the verifier.
func (v Vector) SignatureValid() bool {
	return v.Valid || strings.HasPrefix(v.Note, "hash mismatch")
}

// vectorDir returns the module's testdata/messages directory, found by walking up
// from the working directory (the directory of the package under test) to go.mod.
func vectorDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatalf("working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "testdata", "messages")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("no go.mod above the working directory")
		}
		dir = parent
	}
}

// VectorFiles returns the base names of the vector files, sorted.
func VectorFiles(tb testing.TB) []string {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(vectorDir(tb), "*.json"))
	if err != nil {
		tb.Fatalf("listing vectors: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = filepath.Base(p)
	}
	return names
}

// LoadVectors reads testdata/messages/<file> (file is a base name such as
// "eth.json") and fails tb unless it holds at least one vector.
func LoadVectors(tb testing.TB, file string) []Vector {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join(vectorDir(tb), file))
	if err != nil {
		tb.Fatalf("read vectors: %v", err)
	}
	var vs []Vector
	if err := json.Unmarshal(data, &vs); err != nil {
		tb.Fatalf("decode vectors %s: %v", file, err)
	}
	if len(vs) == 0 {
		tb.Fatalf("no vectors in %s", file)
	}
	return vs
}

// DecodeMessage decodes an envelope without validating it (message.Parse is not
// what chain tests are about).
func DecodeMessage(tb testing.TB, raw json.RawMessage) *message.Message {
	tb.Helper()
	var m message.Message
	if err := json.Unmarshal(raw, &m); err != nil {
		tb.Fatalf("decode message: %v", err)
	}
	return &m
}

// ValidMessage returns a fresh copy of the message of the first valid vector of
// file whose note starts with notePrefix ("" matches any valid vector).
func ValidMessage(tb testing.TB, file, notePrefix string) *message.Message {
	tb.Helper()
	for _, v := range LoadVectors(tb, file) {
		if v.Valid && strings.HasPrefix(v.Note, notePrefix) {
			return DecodeMessage(tb, v.Message)
		}
	}
	tb.Fatalf("no valid vector in %s with note %q", file, notePrefix)
	return nil
}

// subtestName names the subtest of vector i: its index and the start of its note.
func subtestName(i int, note string) string {
	if len(note) > 40 {
		note = note[:40]
	}
	return fmt.Sprintf("%d/%s", i, note)
}

// CheckSignatureError fails tb unless err is a code-1 (CodeInvalidSignature) error
// matching message.ErrInvalidSignature that names exactly field.
func CheckSignatureError(tb testing.TB, err error, field string) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("accepted, want an error naming %q", field)
	}
	checkCode(tb, err)
	if got := message.FieldOf(err); got != field {
		tb.Errorf("field %q, want %q (err: %v)", got, field, err)
	}
}

// CheckVerdict fails tb unless err is nil when field is "", and otherwise an
// error CheckSignatureError accepts for field: the check of a table of cases that
// must verify or fail on a given field.
func CheckVerdict(tb testing.TB, err error, field string) {
	tb.Helper()
	if field == "" {
		if err != nil {
			tb.Fatalf("rejected: %v", err)
		}
		return
	}
	CheckSignatureError(tb, err, field)
}

// CheckRejection fails tb unless err is a code-1 error matching
// message.ErrInvalidSignature that names a field. With fields given, the field must
// be one of them or a sub-field of one ("signature" covers "signature.publicKey").
func CheckRejection(tb testing.TB, err error, fields ...string) {
	tb.Helper()
	if err == nil {
		tb.Fatal("accepted, want a code-1 error")
	}
	checkCode(tb, err)
	got := message.FieldOf(err)
	if got == "" {
		tb.Errorf("error %v names no field", err)
		return
	}
	if len(fields) == 0 {
		return
	}
	for _, f := range fields {
		if got == f || strings.HasPrefix(got, f+".") {
			return
		}
	}
	tb.Errorf("field %q, want one of %q or a sub-field (err: %v)", got, fields, err)
}

func checkCode(tb testing.TB, err error) {
	tb.Helper()
	if got := message.CodeOf(err); got != message.CodeInvalidSignature {
		tb.Errorf("code %d, want %d (err: %v)", got, message.CodeInvalidSignature, err)
	}
	if !errors.Is(err, message.ErrInvalidSignature) {
		tb.Errorf("error %v is not ErrInvalidSignature", err)
	}
}

// CheckVector verifies the vector's message with v and fails tb unless v accepts
// it exactly when the vector is signature-valid, rejecting it otherwise with an
// error that passes CheckRejection. It returns the message and v's answer.
func CheckVector(tb testing.TB, vec Vector, v chain.Verifier) (*message.Message, error) {
	tb.Helper()
	m := DecodeMessage(tb, vec.Message)
	err := v.Verify(m)
	switch {
	case vec.SignatureValid() && err != nil:
		tb.Fatalf("%s: rejected: %v", vec.Note, err)
	case !vec.SignatureValid() && err == nil:
		tb.Fatalf("%s: accepted", vec.Note)
	case err != nil:
		CheckRejection(tb, err)
	}
	return m, err
}

// A VectorCheck is a further check RunVectors makes of a vector, given the message
// it decoded and the verifier's answer.
type VectorCheck func(tb testing.TB, vec Vector, m *message.Message, err error)

// RejectionNames returns a VectorCheck that the error rejecting a vector names
// exactly the field field(vec), as CheckSignatureError checks; when field(vec) is
// "", any field will do.
func RejectionNames(field func(vec Vector) string) VectorCheck {
	return func(tb testing.TB, vec Vector, _ *message.Message, err error) {
		tb.Helper()
		if f := field(vec); err != nil && f != "" {
			CheckSignatureError(tb, err, f)
		}
	}
}

// RunVectors runs CheckVector on every vector, each in a subtest named by its
// index and the start of its note, then check, if not nil. The vectors must
// include signature-valid and invalid ones; it returns how many of each there are.
func RunVectors(t *testing.T, vs []Vector, v chain.Verifier, check VectorCheck) (valid, invalid int) {
	t.Helper()
	for i, vec := range vs {
		if vec.SignatureValid() {
			valid++
		} else {
			invalid++
		}
		t.Run(subtestName(i, vec.Note), func(t *testing.T) {
			m, err := CheckVector(t, vec, v)
			if check != nil {
				check(t, vec, m, err)
			}
		})
	}
	if valid == 0 || invalid == 0 {
		t.Errorf("%d signature-valid and %d invalid vectors: they should exercise both", valid, invalid)
	}
	return valid, invalid
}

// CheckVerify verifies m with v as a fuzz target does an arbitrary input, and
// checks what must hold whatever the input: v gives the same answer twice, a
// rejection passes CheckRejection(tb, err, fields...), and an acceptance does not
// carry over to another item_hash, since the signature covers the buffer. m is
// left unchanged. It reports whether v accepted m.
func CheckVerify(tb testing.TB, v chain.Verifier, m *message.Message, fields ...string) bool {
	tb.Helper()
	err := v.Verify(m)
	if again := v.Verify(m); (again == nil) != (err == nil) {
		tb.Fatalf("verification is not deterministic: %v, then %v", err, again)
	}
	if err != nil {
		CheckRejection(tb, err, fields...)
		return false
	}
	other := *m
	other.ItemHash += "0"
	if v.Verify(&other) == nil {
		tb.Fatal("the signature also verifies for another item_hash")
	}
	return true
}

// BenchVerify benchmarks v verifying m, which v must accept.
func BenchVerify(b *testing.B, v chain.Verifier, m *message.Message) {
	b.Helper()
	if err := v.Verify(m); err != nil {
		b.Fatalf("rejected: %v", err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := v.Verify(m); err != nil {
			b.Fatal(err)
		}
	}
}

// SeedFuzz adds one seed per vector to f: args(m) of the vector's message, in the
// order of the fuzz function's parameters.
func SeedFuzz(f *testing.F, vs []Vector, args func(m *message.Message) []any) {
	f.Helper()
	for _, v := range vs {
		f.Add(args(DecodeMessage(f, v.Message))...)
	}
}

// FuzzEnvelope fuzzes over the signed envelope fields chain, sender, type,
// item_hash and signature, seeded with those of the vectors in file: fn gets a
// message made of each input.
func FuzzEnvelope(f *testing.F, file string, fn func(t *testing.T, m *message.Message)) {
	f.Helper()
	SeedFuzz(f, LoadVectors(f, file), envelopeArgs)
	f.Fuzz(func(t *testing.T, chainCode, sender, typ, itemHash, signature string) {
		fn(t, &message.Message{Chain: message.Chain(chainCode), Sender: sender, Type: message.Type(typ),
			ItemHash: itemHash, Signature: signature})
	})
}

// FuzzSigned is FuzzEnvelope with the chain fixed to c: it fuzzes over sender,
// type, item_hash and signature.
func FuzzSigned(f *testing.F, file string, c message.Chain, fn func(t *testing.T, m *message.Message)) {
	f.Helper()
	SeedFuzz(f, LoadVectors(f, file), signedArgs)
	f.Fuzz(func(t *testing.T, sender, typ, itemHash, signature string) {
		fn(t, &message.Message{Chain: c, Sender: sender, Type: message.Type(typ), ItemHash: itemHash, Signature: signature})
	})
}

func envelopeArgs(m *message.Message) []any {
	return []any{string(m.Chain), m.Sender, string(m.Type), m.ItemHash, m.Signature}
}

func signedArgs(m *message.Message) []any {
	return []any{m.Sender, string(m.Type), m.ItemHash, m.Signature}
}
