package chaintest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
)

// recorder is a testing.TB that records failures instead of failing the test.
// Methods it does not override go to the real test.
type recorder struct {
	testing.TB
	msgs  []string
	fatal bool
}

func (r *recorder) Helper()                   {}
func (r *recorder) Fail()                     { r.msgs = append(r.msgs, "Fail") }
func (r *recorder) Failed() bool              { return len(r.msgs) > 0 }
func (r *recorder) Error(args ...any)         { r.msgs = append(r.msgs, fmt.Sprint(args...)) }
func (r *recorder) Errorf(f string, a ...any) { r.msgs = append(r.msgs, fmt.Sprintf(f, a...)) }
func (r *recorder) FailNow()                  { r.fatal = true; runtime.Goexit() }
func (r *recorder) Fatal(args ...any)         { r.Error(args...); r.FailNow() }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...); r.FailNow() }

// record runs fn with a recorder on its own goroutine, so that Fatal can stop it.
func record(t *testing.T, fn func(tb testing.TB)) *recorder {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(r)
	}()
	<-done
	return r
}

// want fails t unless r failed (fatally when fatal) with a message containing each of texts.
func (r *recorder) want(t *testing.T, fatal bool, texts ...string) {
	t.Helper()
	if !r.Failed() {
		t.Fatalf("no failure reported, want one mentioning %q", texts)
	}
	if r.fatal != fatal {
		t.Errorf("fatal = %v, want %v (%q)", r.fatal, fatal, r.msgs)
	}
	all := strings.Join(r.msgs, "\n")
	for _, s := range texts {
		if !strings.Contains(all, s) {
			t.Errorf("failure %q does not mention %q", all, s)
		}
	}
}

func (r *recorder) wantPass(t *testing.T) {
	t.Helper()
	if r.Failed() || r.fatal {
		t.Fatalf("failure reported for a correct input: %q", r.msgs)
	}
}

func TestCheckSignatureError(t *testing.T) {
	sigErr := chain.SignatureError("signature.publicKey", "bad key")
	record(t, func(tb testing.TB) { CheckSignatureError(tb, sigErr, "signature.publicKey") }).wantPass(t)

	record(t, func(tb testing.TB) { CheckSignatureError(tb, sigErr, "sender") }).
		want(t, false, `field "signature.publicKey", want "sender"`)
	record(t, func(tb testing.TB) { CheckSignatureError(tb, sigErr, "signature") }).
		want(t, false, `want "signature"`)
	record(t, func(tb testing.TB) { CheckSignatureError(tb, nil, "sender") }).
		want(t, true, "accepted")
	formatErr := message.Errorf(message.CodeInvalidFormat, "sender", "bad")
	record(t, func(tb testing.TB) { CheckSignatureError(tb, formatErr, "sender") }).
		want(t, false, "code 0, want 1", "not ErrInvalidSignature")
	record(t, func(tb testing.TB) { CheckSignatureError(tb, errors.New("plain"), "") }).
		want(t, false, "want 1", "not ErrInvalidSignature")
}

func TestCheckRejection(t *testing.T) {
	sub := chain.SignatureError("signature.publicKey", "bad key")
	sender := chain.SignatureError("sender", "bad sender")
	for _, tc := range []struct {
		err    error
		fields []string
	}{
		{sub, nil},
		{sub, []string{"signature"}},
		{sub, []string{"sender", "signature"}},
		{sub, []string{"signature.publicKey"}},
		{sender, []string{"sender", "signature"}},
	} {
		record(t, func(tb testing.TB) { CheckRejection(tb, tc.err, tc.fields...) }).wantPass(t)
	}

	record(t, func(tb testing.TB) { CheckRejection(tb, sub, "sender") }).
		want(t, false, `field "signature.publicKey"`)
	record(t, func(tb testing.TB) { CheckRejection(tb, sub, "sig") }).
		want(t, false, `field "signature.publicKey"`) // a prefix that is not a whole field
	record(t, func(tb testing.TB) { CheckRejection(tb, chain.SignatureError("", "no field")) }).
		want(t, false, "names no field")
	record(t, func(tb testing.TB) { CheckRejection(tb, nil) }).want(t, true, "accepted")
	record(t, func(tb testing.TB) {
		CheckRejection(tb, message.Errorf(message.CodeInvalidFormat, "chain", "unknown"))
	}).want(t, false, "code 0, want 1")
}

func TestSignatureValid(t *testing.T) {
	tests := []struct {
		v    Vector
		want bool
	}{
		{Vector{Valid: true, Note: "ETH POST"}, true},
		{Vector{Note: "hash mismatch: last digit"}, true},
		{Vector{Note: "negative: hash mismatch"}, false},
		{Vector{Note: "negative: signature altered"}, false},
		{Vector{}, false},
	}
	for _, tt := range tests {
		if got := tt.v.SignatureValid(); got != tt.want {
			t.Errorf("%+v: SignatureValid = %v, want %v", tt.v, got, tt.want)
		}
	}
}

func TestLoadVectors(t *testing.T) {
	files := VectorFiles(t)
	if len(files) != 7 {
		t.Fatalf("vector files %v, want 7", files)
	}
	total := 0
	for _, f := range files {
		for i, v := range LoadVectors(t, f) {
			total++
			if m := DecodeMessage(t, v.Message); m.Chain == "" || v.Origin == "" {
				t.Errorf("%s[%d]: chain %q, origin %q", f, i, m.Chain, v.Origin)
			}
		}
	}
	if total != 99 { // testdata/README.md
		t.Errorf("%d vectors, want 99", total)
	}
	record(t, func(tb testing.TB) { LoadVectors(tb, "none.json") }).want(t, true, "read vectors")
	record(t, func(tb testing.TB) { DecodeMessage(tb, []byte(`[1]`)) }).want(t, true, "decode message")
	record(t, func(tb testing.TB) { ValidMessage(tb, "eth.json", "no such note") }).want(t, true, "no valid vector")

	m := ValidMessage(t, "eth.json", "ETH POST whose sender is the all-lowercase")
	if m.Sender != strings.ToLower(m.Sender) {
		t.Errorf("sender %s is not lower case", m.Sender)
	}
	m.Sender = "changed"
	if ValidMessage(t, "eth.json", "ETH POST whose sender").Sender == "changed" {
		t.Error("ValidMessage returned a shared message")
	}
}

func TestCheckVector(t *testing.T) {
	accept := chain.VerifierFunc(func(*message.Message) error { return nil })
	reject := chain.VerifierFunc(func(*message.Message) error { return chain.SignatureError("signature", "no") })
	internal := chain.VerifierFunc(func(*message.Message) error { return errors.New("boom") })
	raw := LoadVectors(t, "nuls2.json")[0].Message
	good := Vector{Valid: true, Note: "good", Message: raw}
	twin := Vector{Note: "hash mismatch: twin", Message: raw}
	bad := Vector{Note: "negative: bad", Message: raw}

	for _, tc := range []struct {
		vec Vector
		v   chain.Verifier
	}{{good, accept}, {twin, accept}, {bad, reject}} {
		record(t, func(tb testing.TB) { CheckVector(tb, tc.vec, tc.v) }).wantPass(t)
	}
	record(t, func(tb testing.TB) { CheckVector(tb, good, reject) }).want(t, true, "good: rejected")
	record(t, func(tb testing.TB) { CheckVector(tb, twin, reject) }).want(t, true, "twin: rejected")
	record(t, func(tb testing.TB) { CheckVector(tb, bad, accept) }).want(t, true, "bad: accepted")
	record(t, func(tb testing.TB) { CheckVector(tb, bad, internal) }).want(t, false, "not ErrInvalidSignature")
}

// oracle is a verifier that accepts exactly the signature-valid vectors of file.
func oracle(tb testing.TB, file string) chain.Verifier {
	tb.Helper()
	good := map[string]bool{}
	for _, v := range LoadVectors(tb, file) {
		if v.SignatureValid() {
			m := DecodeMessage(tb, v.Message)
			good[string(m.VerificationBuffer())+"\n"+m.Signature] = true
		}
	}
	return chain.VerifierFunc(func(m *message.Message) error {
		if good[string(m.VerificationBuffer())+"\n"+m.Signature] {
			return nil
		}
		return chain.SignatureError("signature", "not a signature-valid vector")
	})
}

func TestRunVectors(t *testing.T) {
	checked := 0
	valid, invalid := RunVectors(t, LoadVectors(t, "nuls2.json"), oracle(t, "nuls2.json"),
		func(t testing.TB, vec Vector, m *message.Message, err error) {
			checked++
			if (err == nil) != vec.SignatureValid() || m == nil {
				t.Errorf("check got %v for %s", err, vec.Note)
			}
		})
	if valid != 2 || invalid != 2 || checked != 4 {
		t.Errorf("valid %d, invalid %d, checked %d; want 2, 2, 4", valid, invalid, checked)
	}
}

func TestCheckVerify(t *testing.T) {
	m := &message.Message{ItemHash: "h"}
	binding := chain.VerifierFunc(func(m *message.Message) error {
		if m.ItemHash != "h" {
			return chain.SignatureError("signature", "other buffer")
		}
		return nil
	})
	var accepted bool
	record(t, func(tb testing.TB) { accepted = CheckVerify(tb, binding, m) }).wantPass(t)
	if !accepted || m.ItemHash != "h" {
		t.Errorf("CheckVerify = %v, message %+v; want true and the message unchanged", accepted, m)
	}
	reject := chain.VerifierFunc(func(*message.Message) error { return chain.SignatureError("sender", "no") })
	record(t, func(tb testing.TB) { accepted = CheckVerify(tb, reject, m, "sender") }).wantPass(t)
	if accepted {
		t.Error("CheckVerify reported a rejection as an acceptance")
	}

	record(t, func(tb testing.TB) { CheckVerify(tb, reject, m, "signature") }).want(t, false, `field "sender"`)
	internal := chain.VerifierFunc(func(*message.Message) error { return errors.New("boom") })
	record(t, func(tb testing.TB) { CheckVerify(tb, internal, m) }).want(t, false, "not ErrInvalidSignature")
	loose := chain.VerifierFunc(func(*message.Message) error { return nil })
	record(t, func(tb testing.TB) { CheckVerify(tb, loose, m) }).want(t, true, "another item_hash")
	calls := 0
	flaky := chain.VerifierFunc(func(*message.Message) error {
		calls++
		if calls%2 == 0 {
			return chain.SignatureError("signature", "changed its mind")
		}
		return nil
	})
	record(t, func(tb testing.TB) { CheckVerify(tb, flaky, m) }).want(t, true, "not deterministic")
}

func TestRejectionNames(t *testing.T) {
	check := RejectionNames(func(v Vector) string {
		if v.Note == "sender" {
			return "sender"
		}
		return ""
	})
	senderErr := chain.SignatureError("sender", "no")
	sigErr := chain.SignatureError("signature", "no")
	senderVec, otherVec := Vector{Note: "sender"}, Vector{Note: "other"}
	record(t, func(tb testing.TB) { check(tb, senderVec, nil, senderErr) }).wantPass(t)
	record(t, func(tb testing.TB) { check(tb, otherVec, nil, sigErr) }).wantPass(t)
	record(t, func(tb testing.TB) { check(tb, senderVec, nil, nil) }).wantPass(t) // acceptance is CheckVector's business
	record(t, func(tb testing.TB) { check(tb, senderVec, nil, sigErr) }).want(t, false, `field "signature", want "sender"`)
}

func TestCheckVerdict(t *testing.T) {
	sigErr := chain.SignatureError("signature", "no")
	record(t, func(tb testing.TB) { CheckVerdict(tb, nil, "") }).wantPass(t)
	record(t, func(tb testing.TB) { CheckVerdict(tb, sigErr, "signature") }).wantPass(t)
	record(t, func(tb testing.TB) { CheckVerdict(tb, sigErr, "") }).want(t, true, "rejected")
	record(t, func(tb testing.TB) { CheckVerdict(tb, nil, "signature") }).want(t, true, "accepted")
	record(t, func(tb testing.TB) { CheckVerdict(tb, sigErr, "sender") }).want(t, false, `want "sender"`)
}

func TestSeedArgs(t *testing.T) {
	m := &message.Message{Chain: message.ChainSOL, Sender: "s", Type: message.TypePost, ItemHash: "h", Signature: "sig"}
	if got := fmt.Sprint(envelopeArgs(m)); got != "[SOL s POST h sig]" {
		t.Errorf("envelopeArgs = %s", got)
	}
	if got := fmt.Sprint(signedArgs(m)); got != "[s POST h sig]" {
		t.Errorf("signedArgs = %s", got)
	}
}

// FuzzEnvelopeOracle runs FuzzEnvelope over a verifier that knows sol.json's good
// signatures: the seeds include them, and any other input must be rejected.
func FuzzEnvelopeOracle(f *testing.F) {
	v := oracle(f, "sol.json")
	FuzzEnvelope(f, "sol.json", func(t *testing.T, m *message.Message) {
		CheckVerify(t, v, m, "signature")
	})
}

// FuzzSignedOracle is FuzzEnvelopeOracle for FuzzSigned, which must also fix the chain.
func FuzzSignedOracle(f *testing.F) {
	v := oracle(f, "nuls2.json")
	FuzzSigned(f, "nuls2.json", message.ChainNULS2, func(t *testing.T, m *message.Message) {
		if m.Chain != message.ChainNULS2 {
			t.Fatalf("chain %q, want NULS2", m.Chain)
		}
		CheckVerify(t, v, m)
	})
}
