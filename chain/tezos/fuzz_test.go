package tezos

import (
	"encoding/json"
	"testing"

	"github.com/go-aleph/go-aleph/internal/chaintest"
	"github.com/go-aleph/go-aleph/message"
)

// FuzzVerify feeds arbitrary senders, signature texts, times and item hashes to the
// verifier. It must never panic, must reject with a code-1 error naming a field,
// and anything it accepts must be consistent: the key hashes to the sender, the
// result is stable, and another item hash breaks it.
func FuzzVerify(f *testing.F) {
	chaintest.SeedFuzz(f, chaintest.LoadVectors(f, vectorFile), func(m *message.Message) []any {
		return []any{m.Sender, m.Signature, m.Time.String(), m.ItemHash}
	})
	f.Add("tz1SmGHzna3YhKropa3WudVq72jhTPDBn4r5", `{"signature":5}`, "1", "")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, sender, signature, timeText, itemHash string) {
		m := &message.Message{
			Chain:     message.ChainTEZOS,
			Sender:    sender,
			Type:      message.TypePost,
			ItemType:  message.ItemStorage,
			ItemHash:  itemHash,
			Signature: signature,
		}
		var tm message.Time
		if json.Unmarshal([]byte(timeText), &tm) == nil {
			m.Time = tm
		}
		if !chaintest.CheckVerify(t, Verifier{}, m) {
			return
		}
		obj, err := parseSignatureObject(signature)
		if err != nil {
			t.Fatalf("accepted an unparsable signature: %v", err)
		}
		if addr, err := AddressFromPublicKey(obj.publicKey); err != nil || addr != sender {
			t.Fatalf("accepted sender %q for the key of %q (%v)", sender, addr, err)
		}
	})
}
