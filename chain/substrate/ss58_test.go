package substrate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mr-tron/base58"

	"github.com/go-aleph/go-aleph/internal/chaintest"
)

// TestSS58Known checks addresses published by substrate tooling and the senders
// of the signed vectors.
func TestSS58Known(t *testing.T) {
	alice := key32(t, alicePublic)
	tests := []struct {
		name    string
		format  uint16
		key     [32]byte
		address string
	}{
		{"alice substrate", 42, alice, aliceSubstrate},
		{"alice polkadot", 0, alice, alicePolkadot},
		{"alice kusama", 2, alice, aliceKusama},
		{"dev phrase root", 42, key32(t, devPublic), devAddress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeSS58(tt.format, tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.address {
				t.Errorf("encode: %s, want %s", got, tt.address)
			}
			format, key, err := DecodeSS58(tt.address)
			if err != nil {
				t.Fatal(err)
			}
			if format != tt.format || key != tt.key {
				t.Errorf("decode: format %d key %x, want %d %x", format, key, tt.format, tt.key)
			}
		})
	}
	// The vectors' senders re-encode to themselves.
	for _, v := range loadVectors(t) {
		sender := chaintest.DecodeMessage(t, v.Message).Sender
		format, key, err := DecodeSS58(sender)
		if err != nil {
			t.Errorf("vector sender %s: %v", sender, err)
			continue
		}
		if format != DefaultFormat {
			t.Errorf("vector sender %s: format %d, want 42", sender, format)
		}
		if got, err := EncodeSS58(format, key); err != nil || got != sender {
			t.Errorf("vector sender %s re-encodes to %s (%v)", sender, got, err)
		}
	}
}

func TestSS58RoundTrip(t *testing.T) {
	key := key32(t, alicePublic)
	tests := []struct {
		format uint16
		prefix []byte // the address's leading bytes
	}{
		{0, []byte{0x00}},
		{1, []byte{0x01}},
		{2, []byte{0x02}},
		{42, []byte{0x2a}},
		{63, []byte{0x3f}},
		{64, []byte{0x50, 0x00}},
		{65, []byte{0x50, 0x40}},
		{255, []byte{0x7f, 0xc0}},
		{256, []byte{0x40, 0x01}},
		{1000, []byte{0x7a, 0x03}},
		{16383, []byte{0x7f, 0xff}},
	}
	for _, tt := range tests {
		addr, err := EncodeSS58(tt.format, key)
		if err != nil {
			t.Errorf("format %d: %v", tt.format, err)
			continue
		}
		raw, err := base58.Decode(addr)
		if err != nil {
			t.Fatalf("format %d: own address %s is not base58: %v", tt.format, addr, err)
		}
		if !bytes.HasPrefix(raw, tt.prefix) || len(raw) != len(tt.prefix)+34 {
			t.Errorf("format %d: address bytes %x, want prefix %x and %d bytes", tt.format, raw, tt.prefix, len(tt.prefix)+34)
		}
		format, got, err := DecodeSS58(addr)
		if err != nil || format != tt.format || got != key {
			t.Errorf("format %d: %s decodes to format %d key %x (%v)", tt.format, addr, format, got, err)
		}
	}
}

func TestSS58EncodeErrors(t *testing.T) {
	for _, f := range []uint16{46, 47, MaxFormat + 1, 65535} {
		if addr, err := EncodeSS58(f, [32]byte{1}); err == nil {
			t.Errorf("format %d encoded as %s", f, addr)
		}
	}
}

func TestSS58DecodeErrors(t *testing.T) {
	key := key32(t, alicePublic)
	tests := []struct {
		name    string
		address string
		want    string // part of the error text
	}{
		{"empty", "", "empty"},
		{"bad base58", "0" + aliceSubstrate[1:], "base58"},
		{"too long text", strings.Repeat("1", 51), "characters"},
		{"checksum", aliceSubstrate[:len(aliceSubstrate)-1] + "Z", "checksum"},
		{"one byte", "2", "decodes to"},
		{"two-byte prefix cut", base58.Encode([]byte{0x50}), "too short"},
		{"prefix byte 0x80", rawSS58(append([]byte{0x80}, key[:]...)), "prefix"},
		{"prefix byte 0xff", rawSS58(append([]byte{0xff, 0xff}, key[:]...)), "prefix"},
		{"reserved 46", rawSS58(append([]byte{46}, key[:]...)), "reserved"},
		{"reserved 47", rawSS58(append([]byte{47}, key[:]...)), "reserved"},
		{"8-byte account index", rawSS58(append([]byte{42}, key[:8]...)), "decodes to"},
		{"33-byte key", rawSS58(append([]byte{42}, append(key[:], 2)...)), "decodes to"},
		{"one-byte checksum", base58.Encode(append(append([]byte{42}, key[:]...), ss58Checksum(append([]byte{42}, key[:]...))[0])), "decodes to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			format, got, err := DecodeSS58(tt.address)
			if err == nil {
				t.Fatalf("accepted as format %d key %x", format, got)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func BenchmarkDecodeSS58(b *testing.B) {
	for b.Loop() {
		if _, _, err := DecodeSS58(aliceSubstrate); err != nil {
			b.Fatal(err)
		}
	}
}
