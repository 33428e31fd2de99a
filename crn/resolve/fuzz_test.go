package resolve_test

import (
	"encoding/json"
	"testing"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/crn/resolve"
	"github.com/go-aleph/go-aleph/message"
)

// FuzzMatchSubscription: any subscription against any message from the stream
// answers without panicking, and the empty subscription matches everything.
func FuzzMatchSubscription(f *testing.F) {
	f.Add(`{"channel":"TEST"}`, `{"type":"POST","channel":"TEST","item_hash":"h","content":{"a":1}}`)
	f.Add(`{"content":{"a":{"b":[1]}}}`, `{"type":"POST","content":{"a":{"b":[1]}}}`)
	f.Fuzz(func(t *testing.T, sub, raw string) {
		var m client.Message
		if json.Unmarshal([]byte(raw), &m) != nil {
			return
		}
		var s message.Subscription
		if json.Unmarshal([]byte(sub), &s) == nil {
			resolve.MatchSubscription(s, &m)
		}
		if !resolve.MatchSubscription(message.Subscription{}, &m) {
			t.Fatal("the empty subscription must match")
		}
	})
}
