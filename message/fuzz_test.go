package message

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the envelope parser. It must never panic, every
// error must be a *message.Error (so it carries a code), and anything accepted must
// hash correctly and survive a marshal/parse round trip unchanged.
func FuzzParse(f *testing.F) {
	for _, vs := range loadVectors(f) {
		for _, v := range vs {
			f.Add([]byte(v.Message))
		}
	}
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"chain":"ETH","sender":"0xA","type":"POST","time":1,"item_hash":"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Parse(data)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v is %T, not *message.Error", err, err)
			}
			return
		}
		if m.ItemType == ItemInline && HashContent([]byte(m.ItemContent)) != m.ItemHash {
			t.Fatalf("accepted inline message with wrong hash")
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Parse(out)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
		if *m2 != *m {
			t.Fatalf("round trip changed the message: %+v → %+v", m, m2)
		}
	})
}

// FuzzParseContent feeds arbitrary content JSON to every content schema.
func FuzzParseContent(f *testing.F) {
	f.Add(uint8(0), []byte(goodContent))
	f.Add(uint8(4), []byte(programJSON))
	f.Add(uint8(5), []byte(instanceJSON))
	f.Add(uint8(1), []byte(`{"address":"0xA","time":1.0,"key":{"name":"k"},"content":{"a":1}}`))
	f.Add(uint8(2), []byte(`{"address":"0xA","time":1.0,"item_type":"storage","item_hash":"`+h1+`","x":1}`))
	f.Add(uint8(3), []byte(`{"address":"0xA","time":1.0,"hashes":["`+h1+`"],"reason":"r"}`))
	f.Fuzz(func(t *testing.T, typ uint8, raw []byte) {
		mt := Types[int(typ)%len(Types)]
		c, err := ParseContent(mt, raw)
		if err != nil {
			var me *Error
			if !errors.As(err, &me) {
				t.Fatalf("error %v is %T, not *message.Error", err, err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed content fails Validate: %v", err)
		}
		// What we accepted must re-encode to content we accept again.
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatalf("marshal accepted content: %v", err)
		}
		if _, err := ParseContent(mt, out); err != nil {
			t.Fatalf("re-encoded %s content rejected: %v\n%s\n%s", mt, err, raw, out)
		}
	})
}
