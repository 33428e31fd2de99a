package p2p

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestSipHash(t *testing.T) {
	// SipHash-2-4 reference vectors (key 00..0f), then SipHash-1-3 with zero
	// keys against CPython's hash() of bytes (siphash13, PYTHONHASHSEED=0).
	k0, k1 := uint64(0x0706050403020100), uint64(0x0f0e0d0c0b0a0908)
	msg15 := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14}
	tests := []struct {
		name   string
		c, d   int
		k0, k1 uint64
		msg    []byte
		want   uint64
	}{
		{"2-4 empty", 2, 4, k0, k1, nil, 0x726fdb47dd0e0e31},
		{"2-4 15 bytes", 2, 4, k0, k1, msg15, 0xa129ca6149be45e5},
		{"1-3 hello", 1, 3, 0, 0, []byte("hello"), 16350172494705860510},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sipHash(tt.c, tt.d, tt.k0, tt.k1, tt.msg); got != tt.want {
				t.Fatalf("sipHash = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestRustHash(t *testing.T) {
	// le64(len) ‖ data through SipHash-1-3, as Rust hashes a Vec<u8>; values
	// from CPython's siphash13 over the same bytes.
	tests := map[string]uint64{
		"":      13646096770106105413,
		"hello": 9754003402134539932,
		"ALEPH-TEST message payload of some length > 8": 14692044925106308371,
	}
	for in, want := range tests {
		if got := rustHash([]byte(in)); got != want {
			t.Errorf("rustHash(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestDecodePayload(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"plain JSON kept as is, percent signs included", `{"a":"100%41"}`, `{"a":"100%41"}`, false},
		{"url-encoded JSON", `%7B%22a%22%3A1%7D`, `{"a":1}`, false},
		{"invalid escapes stay", `%7B%22a%22%3A%22%zz%22%7D`, `{"a":"%zz"}`, false},
		{"plus stays a plus", `%7B%22a%22%3A%22x+y%22%7D`, `{"a":"x+y"}`, false},
		{"not JSON", `hello`, ``, true},
		{"truncated escape", `%7B%22a%22%3A1%7`, ``, true},
		{"empty", ``, ``, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodePayload([]byte(tt.in))
			if tt.err {
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("err = %v, want ErrMalformed", err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("DecodePayload = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func FuzzDecodePayload(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `%7B%7D`, `%`, `%%41`, `[1,2]`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := DecodePayload(data)
		if err == nil && len(out) > len(data) {
			t.Fatalf("decoded %d bytes from %d", len(out), len(data))
		}
	})
}

func TestParseAlive(t *testing.T) {
	_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPublicKey(pub)
	_, otherPub, _ := crypto.GenerateEd25519Key(rand.Reader)
	other, _ := peer.IDFromPublicKey(otherPub)
	tests := []struct {
		name string
		data string
		ok   bool
	}{
		{"http", `{"address":"http://1.2.3.4:4024","interests":null,"peer_type":"HTTP","version":"v1"}`, true},
		{"p2p of the sender", `{"address":"/ip4/1.2.3.4/tcp/4025/p2p/` + id.String() + `","peer_type":"P2P"}`, true},
		{"ipfs", `{"address":"/ip4/1.2.3.4/tcp/4001/p2p/QmX","peer_type":"IPFS"}`, true},
		{"p2p of another peer", `{"address":"/ip4/1.2.3.4/tcp/4025/p2p/` + other.String() + `","peer_type":"P2P"}`, false},
		{"p2p without id", `{"address":"/ip4/1.2.3.4/tcp/4025","peer_type":"P2P"}`, false},
		{"http not a URL", `{"address":"file:///etc/passwd","peer_type":"HTTP"}`, false},
		{"unknown type", `{"address":"x","peer_type":"SMTP"}`, false},
		{"not JSON", `nope`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAlive([]byte(tt.data), id)
			if (err == nil) != tt.ok {
				t.Fatalf("parseAlive err = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrMalformed) {
				t.Fatalf("err %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func FuzzParseAlive(f *testing.F) {
	f.Add([]byte(`{"address":"http://1.2.3.4:4024","interests":null,"peer_type":"HTTP","version":"v1"}`))
	f.Add([]byte(`{"address":"/ip4/1.2.3.4/tcp/4025/p2p/12D3KooWA","peer_type":"P2P"}`))
	_, pub, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPublicKey(pub)
	f.Fuzz(func(t *testing.T, data []byte) {
		parseAlive(data, id)
	})
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "p2p", "identity.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) {
		t.Fatal("the key changed between starts")
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode: %v %v", fi.Mode(), err)
	}

	// pyaleph's RSA PKCS#8 DER key keeps its Qm… peer ID.
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(rk)
	rpath := filepath.Join(dir, "node-secret.pkcs8.der")
	os.WriteFile(rpath, der, 0o600)
	k3, err := LoadOrCreateKey(rpath)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k3)
	if s := id.String(); s[:2] != "Qm" {
		t.Fatalf("RSA peer ID %s, want a Qm… ID", s)
	}

	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte("not a key"), 0o600)
	if _, err := LoadOrCreateKey(garbage); err == nil {
		t.Fatal("garbage accepted as a key")
	}
}
