package loadgen

import (
	"encoding/json"
	"testing"

	"github.com/go-aleph/go-aleph/chain/all"
	"github.com/go-aleph/go-aleph/message"
)

func TestPostsAreValidAndDistinct(t *testing.T) {
	posts, err := Posts(50, 7, "LOAD", true)
	if err != nil {
		t.Fatal(err)
	}
	reg := all.NewRegistry()
	seen := map[string]bool{}
	senders := map[string]bool{}
	for i, p := range posts {
		var req struct {
			Sync    bool            `json:"sync"`
			Message json.RawMessage `json:"message"`
		}
		if err := json.Unmarshal(p.Body, &req); err != nil || !req.Sync {
			t.Fatalf("post %d: bad body %s: %v", i, p.Body, err)
		}
		m, err := message.Parse(req.Message)
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		if err := reg.Verify(m); err != nil {
			t.Fatalf("post %d: signature: %v", i, err)
		}
		if seen[m.ItemHash] || m.Channel != "LOAD" {
			t.Fatalf("post %d: duplicate hash or wrong channel", i)
		}
		seen[m.ItemHash] = true
		senders[m.Sender] = true
	}
	if len(senders) != 7 {
		t.Errorf("%d distinct senders, want 7", len(senders))
	}
}
