package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/api"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/store/sqlstore"
)

// digestAnswer is the body of GET /api/v0/state/digest.
type digestAnswer struct {
	Digest   string `json:"digest"`
	Sections map[string]struct {
		Count int64  `json:"count"`
		Hash  string `json:"hash"`
	} `json:"sections"`
}

var hex64 = regexp.MustCompile(`^[0-9a-f]{64}$`)

// getDigest fetches the digest and checks that it is what the store computes.
func (n *node) getDigest(t *testing.T) digestAnswer {
	t.Helper()
	var got digestAnswer
	n.getJSON(t, "/api/v0/state/digest", http.StatusOK, &got)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	want, err := n.store.StateDigest(ctx)
	if err != nil {
		t.Fatalf("store digest: %v", err)
	}
	if got.Digest != want.Digest || !hex64.MatchString(got.Digest) {
		t.Errorf("digest %q, store says %q", got.Digest, want.Digest)
	}
	if len(got.Sections) != len(store.DigestSectionNames) {
		t.Errorf("sections %v, want %v", got.Sections, store.DigestSectionNames)
	}
	for _, name := range store.DigestSectionNames {
		g, w := got.Sections[name], want.Sections[name]
		if g.Count != w.Count || g.Hash != w.Hash || !hex64.MatchString(g.Hash) {
			t.Errorf("section %s = %+v, store says %+v", name, g, w)
		}
	}
	return got
}

// TestStateDigestOrderIndependent processes the same signed messages on two
// nodes in two different orders (each order respecting what a message needs:
// an amend after its original, a FORGET after its target) and requires equal
// digests. The second node runs on each backend.
func TestStateDigestOrderIndependent(t *testing.T) {
	backends(t, func(t *testing.T, backend string) {
		a := newNode(t, api.Config{})
		b := newNodeOn(t, backend, api.Config{})
		acc := accounts(t, 2)
		agg := func(i int, key, content string) *message.Built {
			return a.build(t, acc[i], message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: key},
				Content: json.RawMessage(content)}, "TEST")
		}
		storeMsg := func(i int, file, ref string) *message.Built {
			return a.build(t, acc[i], message.TypeStore, &message.StoreContent{ItemType: message.ItemStorage,
				ItemHash: message.HashContent([]byte(file)), Ref: ref}, "FILES")
		}
		p1 := a.build(t, acc[0], message.TypePost, post("blog", `{"body":"one"}`, ""), "TEST")
		p2 := a.build(t, acc[1], message.TypePost, post("note", `{"body":"two"}`, ""), "TEST")
		p3 := a.build(t, acc[1], message.TypePost, post("temp", `{"body":"to forget"}`, ""), "TEST")
		am1 := a.build(t, acc[0], message.TypePost, post(message.AmendType, `{"body":"one, amended"}`, p1.Message.ItemHash), "TEST")
		am2 := a.build(t, acc[0], message.TypePost, post(message.AmendType, `{"body":"one, amended again"}`, p1.Message.ItemHash), "TEST")
		g1 := agg(0, "profile", `{"name":"alice","age":1,"nested":{"b":1,"a":2}}`)
		g2 := agg(0, "profile", `{"age":2}`)
		g3 := agg(0, "profile", `{"name":"alicia","city":"x"}`)
		g4 := agg(1, "settings", `{"theme":"dark"}`)
		s1 := storeMsg(0, "hello", "doc")
		s2 := storeMsg(0, "world", "doc")
		s3 := storeMsg(1, "other", "")
		f1 := a.build(t, acc[1], message.TypeForget, &message.ForgetContent{Hashes: []string{p3.Message.ItemHash}, Aggregates: []string{}}, "TEST")

		forward := []*message.Built{p1, p2, p3, am1, am2, g1, g2, g3, g4, s1, s2, s3, f1}
		other := []*message.Built{g4, g3, s3, g1, s2, p3, p2, p1, am2, g2, s1, am1, f1}
		for _, m := range forward {
			a.mustProcess(t, m)
		}
		for _, m := range other {
			b.mustProcess(t, m)
		}
		da, db := a.getDigest(t), b.getDigest(t)
		if da.Digest != db.Digest {
			for _, name := range store.DigestSectionNames {
				if da.Sections[name] != db.Sections[name] {
					t.Errorf("section %s differs: %+v and %+v", name, da.Sections[name], db.Sections[name])
				}
			}
			t.Fatalf("digests differ: %s and %s", da.Digest, db.Digest)
		}
		// 12 processed messages and one forgotten; two originals left.
		for name, n := range map[string]int64{store.DigestStatuses: 13, store.DigestPosts: 2, store.DigestAggregates: 2} {
			if c := da.Sections[name].Count; c != n {
				t.Errorf("section %s counts %d rows, want %d", name, c, n)
			}
		}
		a.noInternalErrors(t)
		b.noInternalErrors(t)

		// One more message on one node only: the digests part.
		a.mustProcess(t, agg(1, "settings", `{"theme":"light"}`))
		if a.getDigest(t).Digest == db.Digest {
			t.Errorf("digest unchanged by a new aggregate revision")
		}
	})
}

// TestStateDigestStoreError answers 500 with the usual body when the store fails.
func TestStateDigestStoreError(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(t.TempDir(), "aleph.db"), sqlstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	log := &errorLog{}
	srv := httptest.NewServer(api.New(api.Deps{Store: st, Log: slog.New(log)}, api.Config{}))
	defer srv.Close()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/api/v0/state/digest", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusInternalServerError || body["error"] != "internal error" {
		t.Errorf("closed store: %d %v", resp.StatusCode, body)
	}
	if errs := log.errors(); len(errs) != 1 || !strings.Contains(errs[0], "state digest") {
		t.Errorf("logged errors %q, want the digest failure", errs)
	}
}
