package tezos

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
)

// TestPrefixTableAgainstVectors decodes every address, key and signature of the
// valid vectors and re-encodes it: the table rows and the checksum must reproduce
// the upstream text exactly.
func TestPrefixTableAgainstVectors(t *testing.T) {
	tests := []struct {
		name  string
		text  string
		kind  kind
		curve curve
		size  int
	}{
		{"tz2 sender", "tz2M3NQJ982QV1YwvGL77drZCY55tfBzWm3x", kindAddress, curveSecp256k1, 20},
		{"tz1 sender", "tz1SmGHzna3YhKropa3WudVq72jhTPDBn4r5", kindAddress, curveEd25519, 20},
		{"tz1 micheline sender", "tz1VrPqrVdMFsgykWyhGH7SYcQ9avHTjPcdD", kindAddress, curveEd25519, 20},
		{"sppk", "sppk7cKmJSNo8LxB6R3eUGGRg3Lt7xn6K4wRNNxjSLxeB5zPZhvkQ6k", kindPublicKey, curveSecp256k1, 33},
		{"edpk", "edpkvUuhtQDPA9KfC3BY7ydh89hT34KTANMfX7L22BUrA9aGWg6QxF", kindPublicKey, curveEd25519, 32},
		{"spsig1", "spsig1Z3B4PduY14W2FjbHPuaYG8CRSFzJiZeNDPhdivyiDGqyAG1ZRKtubTmq7zfKywekzUBaAdop6mxoodBfq8Yi9RqroECk5", kindSignature, curveSecp256k1, 64},
		{"generic sig", "siggLSTX5i9ZZJHb6vUoi5gNxWEjEcBD62Jjs8JdFgDND3uc9xb5YC9bUFLpBAoudhdTRNfmV7GTnJzoWUm9y1cDh7T6KX59", kindSignature, curveGeneric, 64},
		// The flextesa sandbox "alice" account, widely published with its keys.
		{"edsk seed", "edsk3QoqBuvdamxouPhin7swCvkQNgq4jP5KZPbwWNnwdZpSpJiEbq", kindSecretKey, curveEd25519, 32},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc, payload, err := decode(tt.text, tt.kind)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if enc.curve != tt.curve || len(payload) != tt.size || !strings.HasPrefix(tt.text, enc.text) {
				t.Fatalf("decoded as %s %s with %d bytes", enc.text, enc.curve, len(payload))
			}
			if got := enc.encode(payload); got != tt.text {
				t.Fatalf("re-encoded as %s", got)
			}
		})
	}
}

// TestPrefixTableShapes checks that every row encodes any payload of its size with
// its text prefix and the expected length, for all-zero and all-0xff payloads.
func TestPrefixTableShapes(t *testing.T) {
	lengths := map[string]int{"tz1": 36, "tz2": 36, "tz3": 36, "edpk": 54, "sppk": 55, "p2pk": 55,
		"edsig": 99, "spsig1": 99, "p2sig": 98, "sig": 96}
	for i := range encodings {
		e := &encodings[i]
		for _, fill := range []byte{0x00, 0xff} {
			text := e.encode(bytes.Repeat([]byte{fill}, e.size))
			if !strings.HasPrefix(text, e.text) {
				t.Errorf("%s payload %#x… encodes as %s", e.text, fill, text)
			}
			if want, ok := lengths[e.text]; ok && len(text) != want {
				t.Errorf("%s encodes to %d characters, want %d", e.text, len(text), want)
			}
			got, payload, err := decode(text, e.kind)
			if err != nil || got != e || payload[0] != fill {
				t.Errorf("%s: decode(%s) = %v, %v", e.text, text, got, err)
			}
		}
	}
}

func TestDecodeErrors(t *testing.T) {
	edpk := lookup(kindPublicKey, curveEd25519, 32)
	valid := edpk.encode(bytes.Repeat([]byte{7}, 32))
	flipped := []byte(valid)
	if flipped[20] == 'a' {
		flipped[20] = 'b'
	} else {
		flipped[20] = 'a'
	}
	tests := []struct {
		name string
		text string
		kind kind
		want error // nil: any error
	}{
		{"empty", "", kindPublicKey, nil},
		{"bad base58 character", "edpk0OIl" + valid[8:], kindPublicKey, nil},
		{"bad checksum", string(flipped), kindPublicKey, errChecksum},
		{"too short", base58.Encode([]byte{1, 2, 3}), kindPublicKey, errLength},
		{"too long text", strings.Repeat("1", maxEncodedLength+1), kindPublicKey, errLength},
		{"short payload", base58Check(append([]byte{13, 15, 37, 217}, make([]byte, 31)...)), kindPublicKey, errLength},
		{"long payload", base58Check(append([]byte{13, 15, 37, 217}, make([]byte, 33)...)), kindPublicKey, errLength},
		{"unknown prefix", base58Check(append([]byte{1, 2, 3, 4}, make([]byte, 32)...)), kindPublicKey, errUnknownPrefix},
		{"address as key", "tz1SmGHzna3YhKropa3WudVq72jhTPDBn4r5", kindPublicKey, errUnknownPrefix},
		{"key as signature", valid, kindSignature, errUnknownPrefix},
		{"secret key as key", "edsk3QoqBuvdamxouPhin7swCvkQNgq4jP5KZPbwWNnwdZpSpJiEbq", kindPublicKey, errUnknownPrefix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := decode(tt.text, tt.kind)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, err := decode(valid, kindPublicKey); err != nil {
		t.Fatalf("control value rejected: %v", err)
	}
}
