// Package chain dispatches signature verification to one verifier per chain code.
// Each signature family lives in its own subpackage (chain/evm, chain/solana, …) and
// registers its chain codes in a Registry; chain/all builds a Registry with them all.
package chain

import (
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/go-aleph/go-aleph/message"
)

// Verifier checks a message's signature over its verification buffer, and that the
// signing key belongs to the message's sender. It returns nil when both hold, and an
// *message.Error with code CodeInvalidSignature (1) naming the field otherwise.
type Verifier interface {
	Verify(m *message.Message) error
}

// VerifierFunc adapts a function to Verifier.
type VerifierFunc func(m *message.Message) error

// Verify calls f.
func (f VerifierFunc) Verify(m *message.Message) error { return f(m) }

// Registry maps chain codes to verifiers. It is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[message.Chain]Verifier
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{m: make(map[message.Chain]Verifier)}
}

// Register binds chain c to v. Registering a chain twice is a programming error and panics.
func (r *Registry) Register(c message.Chain, v Verifier) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[c]; dup {
		panic(fmt.Sprintf("chain: verifier for %s registered twice", c))
	}
	r.m[c] = v
}

// Chains returns the registered chain codes, sorted.
func (r *Registry) Chains() []message.Chain {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]message.Chain, 0, len(r.m))
	for c := range r.m {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// Verify checks m's signature with the verifier of m.Chain. A chain without a
// verifier (AURORA, STT, or an unknown code) is rejected with CodeInvalidFormat (0);
// a missing or wrong signature with CodeInvalidSignature (1).
func (r *Registry) Verify(m *message.Message) error {
	r.mu.RLock()
	v, ok := r.m[m.Chain]
	r.mu.RUnlock()
	if !ok {
		return &message.Error{Code: message.CodeInvalidFormat, Field: "chain",
			Reason: fmt.Sprintf("no signature verifier for chain %q", m.Chain), Err: message.ErrUnsupportedChain}
	}
	if m.Signature == "" {
		return message.Errorf(message.CodeInvalidSignature, "signature", "missing")
	}
	return v.Verify(m)
}

// SignatureError builds the error verifiers return: code 1, naming the field
// ("signature", "sender", or a sub-field such as "signature.publicKey").
func SignatureError(field, format string, args ...any) error {
	return &message.Error{Code: message.CodeInvalidSignature, Field: field,
		Reason: fmt.Sprintf(format, args...), Err: message.ErrInvalidSignature}
}

// Clip shortens hostile input before it goes into an error message: text longer
// than 100 bytes is cut there, or before, at a character boundary, and marked with
// "…".
func Clip(s string) string {
	n := 100
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
