package ed25519strict

import (
	"bytes"
	"crypto/ed25519"
	"math/big"
	"slices"
	"testing"
)

// edwards is just enough big-int arithmetic on edwards25519 to check the blocklist.
type edwards struct{ p, d *big.Int }

func newEdwards() *edwards {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// d = -121665 / 121666
	d := new(big.Int).Mul(big.NewInt(-121665), new(big.Int).ModInverse(big.NewInt(121666), p))
	return &edwards{p: p, d: d.Mod(d, p)}
}

// x recovers an x for y, or nil when y is not on the curve.
func (e *edwards) x(y *big.Int) *big.Int {
	y2 := new(big.Int).Mul(y, y)
	num := new(big.Int).Sub(y2, big.NewInt(1))
	den := new(big.Int).Add(new(big.Int).Mul(e.d, y2), big.NewInt(1))
	den.Mod(den, e.p)
	x2 := num.Mul(num, new(big.Int).ModInverse(den, e.p))
	x2.Mod(x2, e.p)
	return new(big.Int).ModSqrt(x2, e.p)
}

// add is the unified (complete, since d is not a square) addition for a = -1.
func (e *edwards) add(x1, y1, x2, y2 *big.Int) (*big.Int, *big.Int) {
	m := func(a, b *big.Int) *big.Int { return new(big.Int).Mod(new(big.Int).Mul(a, b), e.p) }
	t := m(e.d, m(m(x1, x2), m(y1, y2)))
	xn := new(big.Int).Add(m(x1, y2), m(y1, x2))
	yn := new(big.Int).Add(m(y1, y2), m(x1, x2))
	xd := new(big.Int).Add(big.NewInt(1), t)
	yd := new(big.Int).Sub(big.NewInt(1), t)
	yd.Mod(yd, e.p)
	return m(xn, new(big.Int).ModInverse(xd, e.p)), m(yn, new(big.Int).ModInverse(yd, e.p))
}

// TestSmallOrderBlocklist proves every blocklist entry is a point of order dividing
// 8 (or an unreduced encoding of one), and that the list covers all five small-order
// y values, so no small-order key slips through.
func TestSmallOrderBlocklist(t *testing.T) {
	e := newEdwards()
	seen := map[string]bool{}
	for i, enc := range smallOrderY {
		le := slices.Clone(enc[:])
		slices.Reverse(le)
		y := new(big.Int).SetBytes(le)
		y.Mod(y, e.p)
		x := e.x(y)
		if x == nil {
			t.Fatalf("entry %d: y = %v is not on the curve", i, y)
		}
		px, py := x, y
		for range 3 {
			px, py = e.add(px, py, px, py)
		}
		if px.Sign() != 0 || py.Cmp(big.NewInt(1)) != 0 {
			t.Fatalf("entry %d: 8·P = (%v, %v), not the identity", i, px, py)
		}
		seen[y.String()] = true
	}
	if len(seen) != 5 {
		t.Fatalf("%d distinct small-order y values, want 5", len(seen))
	}
	// The base point, y = 4/5, is of large order and must pass.
	base := new(big.Int).Mul(big.NewInt(4), new(big.Int).ModInverse(big.NewInt(5), e.p))
	base.Mod(base, e.p)
	le := base.FillBytes(make([]byte, 32))
	slices.Reverse(le)
	if hasSmallOrder(le) || !canonicalY(le) {
		t.Fatal("base point flagged")
	}
	for _, enc := range smallOrderY {
		flipped := slices.Clone(enc[:])
		flipped[31] |= 0x80 // the x sign bit is ignored
		if !hasSmallOrder(enc[:]) || !hasSmallOrder(flipped) {
			t.Fatalf("entry %x not matched", enc)
		}
	}
}

func TestCanonicalY(t *testing.T) {
	enc := func(low byte, top byte) []byte {
		b := bytes.Repeat([]byte{0xff}, 32)
		b[0], b[31] = low, top
		return b
	}
	tests := []struct {
		name string
		s    []byte
		want bool
	}{
		{"zero", make([]byte, 32), true},
		{"p-1", enc(0xec, 0x7f), true},
		{"p-1 with sign bit", enc(0xec, 0xff), true},
		{"p", enc(0xed, 0x7f), false},
		{"p+2", enc(0xef, 0x7f), false},
		{"2^255-1 with sign bit", enc(0xff, 0xff), false},
		{"a middle byte below 0xff", func() []byte { b := enc(0xff, 0x7f); b[15] = 0xfe; return b }(), true},
	}
	for _, tt := range tests {
		if got := canonicalY(tt.s); got != tt.want {
			t.Errorf("%s: canonicalY = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestVerifySmallOrderKey shows why the blocklist matters: with the identity as
// public key, R = identity and S = 0 pass crypto/ed25519 for any message, but
// libsodium (and so upstream) refuses them.
func TestVerifySmallOrderKey(t *testing.T) {
	identity := append([]byte{1}, make([]byte, 31)...)
	sig := append(slices.Clone(identity), make([]byte, 32)...)
	msg := []byte("any message at all")
	if !ed25519.Verify(identity, msg, sig) {
		t.Fatal("premise: crypto/ed25519 should accept this forgery")
	}
	if Verify(identity, msg, sig) {
		t.Error("Verify accepted a forgery for the identity key")
	}
}

func TestVerifyNormal(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("hello")
	sig := ed25519.Sign(priv, msg)
	if !Verify(pub, msg, sig) {
		t.Error("a genuine signature was rejected")
	}
	sig[5] ^= 1
	if Verify(pub, msg, sig) || Verify(pub[:31], msg, sig) || Verify(pub, msg, sig[:63]) {
		t.Error("a broken signature or short input was accepted")
	}
}
