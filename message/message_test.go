package message

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

type vector struct {
	Origin  string          `json:"origin"`
	Valid   bool            `json:"valid"`
	Note    string          `json:"note"`
	Message json.RawMessage `json:"message"`
}

func loadVectors(t testing.TB) map[string][]vector {
	t.Helper()
	files, err := filepath.Glob("../testdata/messages/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors: %v", err)
	}
	out := map[string][]vector{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var vs []vector
		if err := json.Unmarshal(data, &vs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = vs
	}
	return out
}

// TestVectorsEnvelope checks the envelope and content rules on every shared vector:
// hash-mismatch entries fail on item_hash, every other entry parses (signatures are
// checked in chain/all).
func TestVectorsEnvelope(t *testing.T) {
	n := 0
	for file, vs := range loadVectors(t) {
		for i, v := range vs {
			m, err := Parse(v.Message)
			if strings.HasPrefix(v.Note, "hash mismatch") {
				if !errors.Is(err, ErrHashMismatch) || FieldOf(err) != "item_hash" {
					t.Errorf("%s[%d]: err = %v, want a hash mismatch on item_hash", file, i, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s[%d] (%s): %v", file, i, v.Note, err)
				continue
			}
			n++
			// Re-emitting keeps the exact time text and content bytes.
			out, _ := json.Marshal(m)
			m2, err := Parse(out)
			if err != nil {
				t.Errorf("%s[%d]: re-parse: %v", file, i, err)
				continue
			}
			if *m2 != *m {
				t.Errorf("%s[%d]: round trip changed the message:\n%+v\n%+v", file, i, m, m2)
			}
			var orig struct {
				Time json.Number `json:"time"`
			}
			_ = json.Unmarshal(v.Message, &orig)
			if m.Time.String() != string(orig.Time) {
				t.Errorf("%s[%d]: time text %q, want %q", file, i, m.Time, orig.Time)
			}
		}
	}
	if n < 70 {
		t.Errorf("only %d vectors parsed", n)
	}
}

func TestVerificationBuffer(t *testing.T) {
	tests := []struct {
		chain        Chain
		sender, hash string
		typ          Type
		want         string
	}{
		{ChainETH, "SENDER", "7e4f914865028356704919810073ec5690ecc4bb0ee3bd6bdb24829fd532398f", TypeStore,
			"ETH\nSENDER\nSTORE\n7e4f914865028356704919810073ec5690ecc4bb0ee3bd6bdb24829fd532398f"},
		{ChainARB, "0xABCD", "0000000000000000000000000000000000000000000000000000000000000001", TypeAggregate,
			"ARB\n0xABCD\nAGGREGATE\n0000000000000000000000000000000000000000000000000000000000000001"},
		{ChainETH, "0x101d8D16372dBf5f1614adaE95Ee5CCE61998Fc9", "bd79839bf96e595a06da5ac0b6ba51dea6f7e2591bb913deccded04d831d29f4", "inline",
			"ETH\n0x101d8D16372dBf5f1614adaE95Ee5CCE61998Fc9\ninline\nbd79839bf96e595a06da5ac0b6ba51dea6f7e2591bb913deccded04d831d29f4"},
	}
	for _, tt := range tests {
		m := &Message{Chain: tt.chain, Sender: tt.sender, Type: tt.typ, ItemHash: tt.hash}
		if got := string(m.VerificationBuffer()); got != tt.want {
			t.Errorf("buffer = %q, want %q", got, tt.want)
		}
	}
}

func TestItemTypeFromHash(t *testing.T) {
	tests := []struct {
		hash string
		want ItemType
		ok   bool
	}{
		{"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH", ItemIPFS, true},
		{"bafybeiawhayvhrtunmsazigmne75kqyyb2z7oqlvky3abpk4tbkqyzv6iu", ItemIPFS, true},
		{"7e4f914865028356704919810073ec5690ecc4bb0ee3bd6bdb24829fd532398f", ItemStorage, true},
		{"7E4F914865028356704919810073EC5690ECC4BB0EE3BD6BDB24829FD532398F", "", false},
		{"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1Aw0l", "", false}, // 0 and l are not base58
		{"bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "", false},
		{"", "", false},
		{"abc", "", false},
	}
	for _, tt := range tests {
		got, err := ItemTypeFromHash(tt.hash)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ItemTypeFromHash(%q) = %q, %v; want %q, ok=%v", tt.hash, got, err, tt.want, tt.ok)
		}
		if err != nil && (CodeOf(err) != CodeInvalidFormat || FieldOf(err) != "item_hash") {
			t.Errorf("ItemTypeFromHash(%q) error %v lacks code 0 / field item_hash", tt.hash, err)
		}
	}
}

const goodContent = `{"address":"0xA","time":1700000000.0,"type":"test","content":{"body":"hi"}}`

// envelopeJSON returns a valid inline POST envelope with edits applied to its fields.
func envelopeJSON(t *testing.T, edit func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"chain": "ETH", "sender": "0xA", "type": "POST", "channel": "TEST",
		"time": json.Number("1700000000.123"), "item_type": "inline",
		"item_content": goodContent, "item_hash": HashContent([]byte(goodContent)),
		"signature": "0x00",
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withContent(c string) func(m map[string]any) {
	return func(m map[string]any) {
		m["item_content"] = c
		m["item_hash"] = HashContent([]byte(c))
	}
}

func TestParseRejects(t *testing.T) {
	long := strings.Repeat("é", MaxChannelLength+1)
	tests := []struct {
		name  string
		data  []byte
		field string
		code  ErrorCode
	}{
		{"not json", []byte(`{"chain":`), "", CodeInvalidFormat},
		{"array", []byte(`[]`), "", CodeInvalidFormat},
		{"trailing", append(envelopeJSON(t, nil), []byte(` {}`)...), "", CodeInvalidFormat},
		{"missing chain", envelopeJSON(t, func(m map[string]any) { delete(m, "chain") }), "chain", CodeInvalidFormat},
		{"chain number", envelopeJSON(t, func(m map[string]any) { m["chain"] = 1 }), "chain", CodeInvalidFormat},
		{"unknown chain", envelopeJSON(t, func(m map[string]any) { m["chain"] = "BTC" }), "chain", CodeInvalidFormat},
		{"missing sender", envelopeJSON(t, func(m map[string]any) { delete(m, "sender") }), "sender", CodeInvalidFormat},
		{"empty sender", envelopeJSON(t, func(m map[string]any) { m["sender"] = "" }), "sender", CodeInvalidFormat},
		{"huge sender", envelopeJSON(t, func(m map[string]any) { m["sender"] = strings.Repeat("a", 300) }), "sender", CodeInvalidFormat},
		{"unknown type", envelopeJSON(t, func(m map[string]any) { m["type"] = "V-PROGRAM" }), "type", CodeInvalidFormat},
		{"channel too long", envelopeJSON(t, func(m map[string]any) { m["channel"] = long }), "channel", CodeInvalidFormat},
		{"time string", envelopeJSON(t, func(m map[string]any) { m["time"] = "1700000000" }), "time", CodeInvalidFormat},
		{"time negative", envelopeJSON(t, func(m map[string]any) { m["time"] = -1 }), "time", CodeInvalidFormat},
		{"time huge", envelopeJSON(t, func(m map[string]any) { m["time"] = json.Number("1e300") }), "time", CodeInvalidFormat},
		{"time overflow", envelopeJSON(t, func(m map[string]any) { m["time"] = json.Number("1e999") }), "time", CodeInvalidFormat},
		{"missing time", envelopeJSON(t, func(m map[string]any) { delete(m, "time") }), "time", CodeInvalidFormat},
		{"bad item_type", envelopeJSON(t, func(m map[string]any) { m["item_type"] = "INLINE" }), "item_type", CodeInvalidFormat},
		{"inline without content", envelopeJSON(t, func(m map[string]any) { delete(m, "item_content") }), "item_content", CodeInvalidFormat},
		{"storage with content", envelopeJSON(t, func(m map[string]any) { m["item_type"] = "storage" }), "item_content", CodeInvalidFormat},
		{"ipfs type on sha256 hash", envelopeJSON(t, func(m map[string]any) {
			m["item_type"] = "ipfs"
			delete(m, "item_content")
		}), "item_type", CodeInvalidFormat},
		{"hash mismatch", envelopeJSON(t, func(m map[string]any) { m["item_hash"] = strings.Repeat("0", 64) }), "item_hash", CodeInvalidFormat},
		{"uppercase hash", envelopeJSON(t, func(m map[string]any) { m["item_hash"] = strings.ToUpper(m["item_hash"].(string)) }), "item_hash", CodeInvalidFormat},
		{"hash_type", envelopeJSON(t, func(m map[string]any) { m["hash_type"] = "md5" }), "hash_type", CodeInvalidFormat},
		{"signature number", envelopeJSON(t, func(m map[string]any) { m["signature"] = 5 }), "signature", CodeInvalidFormat},
		{"signature huge", envelopeJSON(t, func(m map[string]any) { m["signature"] = strings.Repeat("a", MaxSignatureLength+10) }), "signature", CodeInvalidSignature},
		{"content not json", envelopeJSON(t, withContent(`{"address"`)), "item_content", CodeInvalidFormat},
		{"content array", envelopeJSON(t, withContent(`[1]`)), "content", CodeInvalidFormat},
		{"content NUL escape", envelopeJSON(t, withContent(`{"address":"0xA","time":1.0,"type":"t","content":"a\u0000"}`)), "item_content", CodeInvalidFormat},
		{"content too long", envelopeJSON(t, withContent(`{"address":"0xA","time":1.0,"type":"t","content":"`+strings.Repeat("x", MaxInlineSize)+`"}`)), "item_content", CodeInvalidFormat},
		{"content time range", envelopeJSON(t, withContent(`{"address":"0xA","time":9223372037.0,"type":"t"}`)), "content.time", CodeInvalidFormat},
		{"content time negative", envelopeJSON(t, withContent(`{"address":"0xA","time":-0.5,"type":"t"}`)), "content.time", CodeInvalidFormat},
		{"content missing address", envelopeJSON(t, withContent(`{"time":1.0,"type":"t"}`)), "content.address", CodeInvalidFormat},
		{"content extra field", envelopeJSON(t, withContent(`{"address":"0xA","time":1.0,"type":"t","evil":1}`)), "content.evil", CodeInvalidFormat},
		{"post type not string", envelopeJSON(t, withContent(`{"address":"0xA","time":1.0,"type":3}`)), "content.type", CodeInvalidFormat},
		{"oversized envelope", []byte(`{"x":"` + strings.Repeat("x", MaxEnvelopeSize) + `"}`), "", CodeInvalidFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.data)
			if err == nil {
				t.Fatalf("Parse accepted %+v", m)
			}
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v (%T) is not a *message.Error", err, err)
			}
			if me.Field != tt.field || me.Code != tt.code {
				t.Errorf("error %q: field %q code %d, want field %q code %d", err, me.Field, me.Code, tt.field, tt.code)
			}
			if err.Error() == "" || strings.ToLower(err.Error()[:1]) != err.Error()[:1] {
				t.Errorf("error message %q should start lowercase", err)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	exactChannel := strings.Repeat("é", MaxChannelLength)
	tests := []struct {
		name  string
		data  []byte
		check func(t *testing.T, m *Message)
	}{
		{"null channel", envelopeJSON(t, func(m map[string]any) { m["channel"] = nil }), func(t *testing.T, m *Message) {
			if m.Channel != "" {
				t.Errorf("channel = %q", m.Channel)
			}
		}},
		{"128-char channel", envelopeJSON(t, func(m map[string]any) { m["channel"] = exactChannel }), nil},
		{"item_type inferred inline", envelopeJSON(t, func(m map[string]any) { delete(m, "item_type") }), func(t *testing.T, m *Message) {
			if m.ItemType != ItemInline {
				t.Errorf("item_type = %q", m.ItemType)
			}
		}},
		{"item_type inferred storage", envelopeJSON(t, func(m map[string]any) {
			delete(m, "item_type")
			delete(m, "item_content")
		}), func(t *testing.T, m *Message) {
			if m.ItemType != ItemStorage {
				t.Errorf("item_type = %q", m.ItemType)
			}
		}},
		{"item_type inferred ipfs", envelopeJSON(t, func(m map[string]any) {
			delete(m, "item_type")
			delete(m, "item_content")
			m["item_hash"] = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
		}), func(t *testing.T, m *Message) {
			if m.ItemType != ItemIPFS {
				t.Errorf("item_type = %q", m.ItemType)
			}
		}},
		{"signature object", envelopeJSON(t, func(m map[string]any) {
			m["signature"] = map[string]any{"signature": "abc", "publicKey": "def"}
		}), func(t *testing.T, m *Message) {
			if m.Signature != `{"publicKey":"def","signature":"abc"}` {
				t.Errorf("signature = %q", m.Signature)
			}
		}},
		{"null signature", envelopeJSON(t, func(m map[string]any) { m["signature"] = nil }), func(t *testing.T, m *Message) {
			if m.Signature != "" {
				t.Errorf("signature = %q", m.Signature)
			}
		}},
		{"extra envelope fields ignored", envelopeJSON(t, func(m map[string]any) {
			m["confirmed"] = true
			m["size"] = 12
			m["content"] = map[string]any{"ignored": true}
		}), nil},
		{"exact inline limit", envelopeJSON(t, withContent(`{"address":"0xA","time":1.0,"type":"t","content":"`+
			strings.Repeat("x", MaxInlineSize-len(`{"address":"0xA","time":1.0,"type":"t","content":""}`))+`"}`)), nil},
		{"escaped backslash-u is not NUL", envelopeJSON(t, withContent(`{"address":"0xA","time":1.0,"type":"t","content":"\\u0001"}`)), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := Parse(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if tt.check != nil {
				tt.check(t, m)
			}
		})
	}
}

func TestErrorCodes(t *testing.T) {
	if len(ErrorCodes) != 24 {
		t.Errorf("%d error codes, want 24", len(ErrorCodes))
	}
	want := map[ErrorCode]string{-1: "INTERNAL_ERROR", 0: "INVALID_FORMAT", 5: "BALANCE_INSUFFICIENT",
		101: "POST_AMEND_TARGET_NOT_FOUND", 304: "VM_VOLUME_TOO_SMALL", 504: "FORGOTTEN_DUPLICATE"}
	for c, name := range want {
		if c.String() != name {
			t.Errorf("%d.String() = %q, want %q", c, c.String(), name)
		}
	}
	retry := map[ErrorCode]bool{-1: true, 0: false, 1: false, 3: true, 4: true, 101: true, 200: true, 300: true, 301: true, 501: true, 502: false, 504: false}
	for c, r := range retry {
		if c.Retryable() != r {
			t.Errorf("%s.Retryable() = %v, want %v", c, c.Retryable(), r)
		}
	}
	if !StatusPending.CanBecome(StatusProcessed) || StatusForgotten.CanBecome(StatusProcessed) ||
		!StatusRejected.CanBecome(StatusPending) || StatusRemoved.CanBecome(StatusPending) {
		t.Error("status transitions wrong")
	}
	err := Errorf(CodeInvalidSignature, "signature", "bad")
	if !errors.Is(err, ErrInvalidSignature) || errors.Is(err, ErrInvalidFormat) || CodeOf(err) != 1 {
		t.Error("errors.Is by code does not work")
	}
	if CodeOf(errors.New("x")) != CodeInternalError {
		t.Error("plain errors should map to INTERNAL_ERROR")
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 50) // 100 bytes
	for n := 1; n < 100; n++ {
		got := truncate(s, n)
		if !utf8.ValidString(got) || len(got) > n+len("…") {
			t.Fatalf("truncate(%d) = %q", n, got)
		}
	}
	if truncate("short", 10) != "short" {
		t.Error("short strings must be kept whole")
	}
}
