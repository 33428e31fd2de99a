package client

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeAnswers feeds arbitrary node answers to every decoder: none may panic,
// and a message that decodes must encode back to valid JSON.
func FuzzDecodeAnswers(f *testing.F) {
	for _, seed := range []string{
		processedJSON,
		`{"status":"pending","messages":[{"time":"2023-11-14T22:13:20+00:00","item_hash":"h"}]}`,
		`{"status":"rejected","message":{"chain":1},"error_code":5,"details":{"errors":[]}}`,
		`{"status":"forgotten","message":{"item_hash":"h","time":1,"signature":{"a":1}},"forgotten_by":["x"]}`,
		`{"message_status":"rejected","error_code":2,"reason":"no"}`,
		`[{"loc":["message"],"msg":"field required"}]`,
		`InvalidMessageFormat`,
		`{"item_hash":"h","ref":{"item_hash":"r"},"size":1e400}`,
		`{"authorizations":[{"address":"0xA","types":["POST"]}]}`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = decodeMessageResult(data)
		_ = parseRejection(data)
		var m Message
		if json.Unmarshal(data, &m) == nil {
			out, err := json.Marshal(&m)
			if err != nil {
				t.Fatalf("decoded message does not encode: %v", err)
			}
			if !json.Valid(out) {
				t.Fatalf("invalid JSON: %s", out)
			}
		}
		var p Post
		_ = json.Unmarshal(data, &p)
		var a Authorization
		if json.Unmarshal(data, &a) == nil {
			if _, err := json.Marshal(a); err != nil {
				t.Fatalf("decoded authorization does not encode: %v", err)
			}
		}
		var tm Time
		_ = json.Unmarshal(data, &tm)
	})
}
