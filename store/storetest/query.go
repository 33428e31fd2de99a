package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// dataset builds n varied messages with many equal times, so that orderings
// and cursors are exercised on ties.
func dataset(t *testing.T, n int) []*store.Message {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	types := []message.Type{message.TypePost, message.TypeAggregate, message.TypeStore, message.TypeProgram, message.TypeInstance, message.TypeForget}
	chains := []message.Chain{message.ChainETH, message.ChainSOL, message.ChainAVAX}
	senders := []string{"0xS0", "0xS1", "0xS2", "0xS3", "0xS4"}
	channels := []string{"", "c1", "c2", "c3"}
	tagPool := []string{"a", "b", "c"}
	var out []*store.Message
	for i := range n {
		o := msgOpts{
			typ:      types[rng.IntN(len(types))],
			chain:    chains[rng.IntN(len(chains))],
			sender:   senders[rng.IntN(len(senders))],
			channel:  channels[rng.IntN(len(channels))],
			timeText: fmt.Sprintf("%d.%d", 1700000000+rng.IntN(25), rng.IntN(2)*5),
		}
		if rng.IntN(4) == 0 {
			o.owner = "0xOwner" + fmt.Sprint(rng.IntN(2))
		}
		switch o.typ {
		case message.TypePost:
			o.contentType = []string{"blog", "chat"}[rng.IntN(2)]
			if rng.IntN(2) == 0 {
				o.ref = "ref" + fmt.Sprint(rng.IntN(3))
			}
		case message.TypeAggregate:
			o.key = []string{"k1", "k2"}[rng.IntN(2)]
		case message.TypeStore:
			o.itemHash = hashOf(fmt.Sprint("file", rng.IntN(4)))
			if rng.IntN(3) == 0 {
				o.ref = "ref" + fmt.Sprint(rng.IntN(3))
			}
		}
		switch o.typ {
		case message.TypeStore, message.TypeProgram, message.TypeInstance:
			o.payment = []string{"hold", "superfluid", "credit"}[rng.IntN(3)]
		}
		for _, tag := range tagPool {
			if rng.IntN(3) == 0 {
				o.tags = append(o.tags, tag)
			}
		}
		if rng.IntN(8) == 0 {
			o.status = message.StatusRemoving
		}
		m := newMessage(t, fmt.Sprint("m", i), o)
		m.ReceptionTime = baseTime.Add(time.Duration(i) * time.Second)
		out = append(out, m)
	}
	return out
}

// match is the reference implementation of MessageFilter.
func match(m *store.Message, f store.MessageFilter) bool {
	in := func(v string, list []string) bool { return len(list) == 0 || slices.Contains(list, v) }
	statuses := f.Statuses
	if len(statuses) == 0 {
		statuses = []message.Status{message.StatusProcessed, message.StatusRemoving}
	}
	tagOK := len(f.Tags) == 0
	for _, tag := range m.Tags {
		tagOK = tagOK || slices.Contains(f.Tags, tag)
	}
	var chains, types []string
	for _, c := range f.Chains {
		chains = append(chains, string(c))
	}
	for _, ty := range f.Types {
		types = append(types, string(ty))
	}
	nonEmpty := func(v string, list []string) bool { return len(list) == 0 || (v != "" && slices.Contains(list, v)) }
	sec := m.Time.Seconds()
	return in(m.ItemHash, f.Hashes) && in(m.Sender, f.Senders) && in(m.Owner, f.Owners) &&
		nonEmpty(m.ContentRef, f.Refs) && nonEmpty(m.ContentItemHash, f.ContentHashes) &&
		nonEmpty(m.ContentKey, f.ContentKeys) && nonEmpty(m.ContentType, f.ContentTypes) &&
		in(string(m.Chain), chains) && nonEmpty(m.Channel, f.Channels) && in(string(m.Type), types) &&
		nonEmpty(m.PaymentType, f.PaymentTypes) && tagOK && slices.Contains(statuses, m.Status) &&
		(f.StartDate == 0 || sec >= f.StartDate) && (f.EndDate == 0 || sec < f.EndDate)
}

// expected lists the hashes a filter selects, in its order.
func expected(ms []*store.Message, f store.MessageFilter) []string {
	var sel []*store.Message
	for _, m := range ms {
		if match(m, f) {
			sel = append(sel, m)
		}
	}
	sort.Slice(sel, func(i, j int) bool {
		a, b := sel[i].Time.Seconds(), sel[j].Time.Seconds()
		if a != b {
			if f.SortOrder == store.Ascending {
				return a < b
			}
			return a > b
		}
		return sel[i].ItemHash < sel[j].ItemHash
	})
	out := []string{}
	for _, m := range sel {
		out = append(out, m.ItemHash)
	}
	return out
}

func hashes(ms []*store.Message) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.ItemHash)
	}
	return out
}

// diff describes the first difference between two hash lists.
func diff(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("first difference at %d of %d/%d", i, len(got), len(want))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("got %d rows, want %d", len(got), len(want))
	}
	return ""
}

// filterCases covers every MessageFilter field alone and in combinations.
func filterCases(ms []*store.Message) map[string]store.MessageFilter {
	some := []string{ms[3].ItemHash, ms[10].ItemHash, ms[20].ItemHash, hashOf("absent")}
	return map[string]store.MessageFilter{
		"empty":              {},
		"ascending":          {SortOrder: store.Ascending},
		"hashes":             {Hashes: some},
		"sender":             {Senders: []string{"0xS1"}},
		"senders":            {Senders: []string{"0xS1", "0xS3"}},
		"owner":              {Owners: []string{"0xOwner0"}},
		"owners asc":         {Owners: []string{"0xS2", "0xOwner1"}, SortOrder: store.Ascending},
		"ref":                {Refs: []string{"ref1"}},
		"refs":               {Refs: []string{"ref0", "ref2"}},
		"content hash":       {ContentHashes: []string{hashOf("file1")}},
		"content key":        {ContentKeys: []string{"k2"}},
		"content type":       {ContentTypes: []string{"blog"}},
		"chain":              {Chains: []message.Chain{message.ChainSOL}},
		"chains":             {Chains: []message.Chain{message.ChainSOL, message.ChainAVAX}},
		"channel":            {Channels: []string{"c2"}},
		"type":               {Types: []message.Type{message.TypeStore}},
		"types":              {Types: []message.Type{message.TypePost, message.TypeForget}},
		"tag":                {Tags: []string{"a"}},
		"tags overlap":       {Tags: []string{"b", "c"}},
		"payment":            {PaymentTypes: []string{"credit"}},
		"removing":           {Statuses: []message.Status{message.StatusRemoving}},
		"processed":          {Statuses: []message.Status{message.StatusProcessed}},
		"both statuses":      {Statuses: []message.Status{message.StatusRemoving, message.StatusProcessed}},
		"pending":            {Statuses: []message.Status{message.StatusPending}},
		"removing+rejected":  {Statuses: []message.Status{message.StatusRemoving, message.StatusRejected}},
		"start":              {StartDate: 1700000010},
		"end":                {EndDate: 1700000010.5},
		"window asc":         {StartDate: 1700000005.5, EndDate: 1700000015, SortOrder: store.Ascending},
		"type+sender":        {Types: []message.Type{message.TypePost}, Senders: []string{"0xS0", "0xS4"}},
		"sender+owner":       {Senders: []string{"0xS1"}, Owners: []string{"0xOwner0", "0xOwner1"}},
		"owner+channel+tags": {Owners: []string{"0xS0", "0xS2"}, Channels: []string{"c1", "c3"}, Tags: []string{"a"}},
		"chain+window":       {Chains: []message.Chain{message.ChainETH}, StartDate: 1700000003, EndDate: 1700000020},
		"type+status":        {Types: []message.Type{message.TypeStore, message.TypeProgram}, Statuses: []message.Status{message.StatusProcessed}},
		"sender+type+status": {Senders: []string{"0xS2"}, Types: []message.Type{message.TypeAggregate}, Statuses: []message.Status{message.StatusRemoving}},
		"key+owner":          {ContentKeys: []string{"k1"}, Owners: []string{"0xS3"}},
		"ref+type":           {Refs: []string{"ref1"}, Types: []message.Type{message.TypeStore}},
		"no match":           {Senders: []string{"0xNobody"}},
	}
}

func testQuery(t *testing.T, open Opener) {
	s := open(t)
	ms := dataset(t, 150)
	insert(t, s, ms...)
	ctx := testCtx(t)
	cases := filterCases(ms)
	names := make([]string, 0, len(cases))
	for name := range cases {
		names = append(names, name)
	}
	sort.Strings(names)

	t.Run("AllRows", func(t *testing.T) {
		for _, name := range names {
			f := cases[name]
			want := expected(ms, f)
			got, next, err := s.QueryMessages(ctx, f, store.Page{})
			noErr(t, err, name)
			if next != nil {
				t.Errorf("%s: page mode returned a cursor", name)
			}
			if d := diff(hashes(got), want); d != "" {
				t.Errorf("%s: %s", name, d)
			}
			n, err := s.CountMessages(ctx, f)
			noErr(t, err, name+" count")
			if n != int64(len(want)) {
				t.Errorf("%s: count = %d, want %d", name, n, len(want))
			}
		}
		// The filters are not vacuous: most select some rows, none selects all.
		nonEmpty := 0
		for _, name := range names {
			if len(expected(ms, cases[name])) > 0 {
				nonEmpty++
			}
		}
		if nonEmpty < len(names)-3 {
			t.Errorf("only %d of %d filters select rows; the dataset is too thin", nonEmpty, len(names))
		}
	})

	t.Run("RowsAreComplete", func(t *testing.T) {
		byHash := map[string]*store.Message{}
		for _, m := range ms {
			byHash[m.ItemHash] = m
		}
		got, _, err := s.QueryMessages(ctx, store.MessageFilter{}, store.Page{Size: 30})
		noErr(t, err, "query")
		for _, m := range got {
			sameMessage(t, m, byHash[m.ItemHash])
		}
	})

	t.Run("PageMode", func(t *testing.T) {
		for _, name := range []string{"empty", "ascending", "sender", "tags overlap", "window asc", "removing"} {
			f := cases[name]
			want := expected(ms, f)
			var all []string
			for page := 1; ; page++ {
				got, _, err := s.QueryMessages(ctx, f, store.Page{Size: 7, Number: page})
				noErr(t, err, name)
				if len(got) > 7 {
					t.Fatalf("%s: page %d has %d rows", name, page, len(got))
				}
				if len(got) == 0 {
					break
				}
				all = append(all, hashes(got)...)
				if page > 100 {
					t.Fatalf("%s: pages never end", name)
				}
			}
			if d := diff(all, want); d != "" {
				t.Errorf("%s: pages: %s", name, d)
			}
		}
		// Number 0 is the first page.
		first, _, err := s.QueryMessages(ctx, store.MessageFilter{}, store.Page{Size: 5})
		noErr(t, err, "page 0")
		if d := diff(hashes(first), expected(ms, store.MessageFilter{})[:5]); d != "" {
			t.Errorf("page number 0: %s", d)
		}
	})

	t.Run("CursorMode", func(t *testing.T) {
		for _, name := range names {
			f := cases[name]
			want := expected(ms, f)
			for _, size := range []int{1, 7, 200} {
				var all []string
				cur := &store.Cursor{}
				pages := 0
				for cur != nil {
					got, next, err := s.QueryMessages(ctx, f, store.Page{Size: size, Number: 3, Cursor: cur})
					noErr(t, err, name)
					if len(got) > size {
						t.Fatalf("%s: cursor page of %d rows, size %d", name, len(got), size)
					}
					if next != nil && len(got) == 0 {
						t.Fatalf("%s: empty page with a next cursor", name)
					}
					if next != nil {
						last := got[len(got)-1]
						if next.Hash != last.ItemHash || next.Time != last.Time.Seconds() {
							t.Fatalf("%s: next cursor %+v is not the last row", name, next)
						}
					}
					all = append(all, hashes(got)...)
					cur = next
					if pages++; pages > len(ms)+2 {
						t.Fatalf("%s: cursor never ends", name)
					}
				}
				if d := diff(all, want); d != "" {
					t.Errorf("%s size %d: cursor walk: %s", name, size, d)
				}
				if size >= len(want) && len(want) > 0 && pages != 1 {
					t.Errorf("%s size %d: %d pages for %d rows", name, size, pages, len(want))
				}
			}
		}
	})

	t.Run("CountersFollowChanges", func(t *testing.T) {
		// Flip some statuses and delete some messages, then compare every count again.
		update(t, s, func(ctx context.Context, tx store.Tx) error {
			for i, m := range ms {
				switch i % 9 {
				case 1:
					next := message.StatusRemoving
					if m.Status == message.StatusRemoving {
						next = message.StatusProcessed
					}
					if err := tx.SetMessageStatus(ctx, m.ItemHash, next); err != nil {
						return err
					}
					m.Status = next
				case 2:
					if err := tx.DeleteMessage(ctx, m.ItemHash); err != nil {
						return err
					}
				}
			}
			return nil
		})
		var left []*store.Message
		for i, m := range ms {
			if i%9 != 2 {
				left = append(left, m)
			}
		}
		for _, name := range names {
			f := cases[name]
			n, err := s.CountMessages(ctx, f)
			noErr(t, err, name)
			if want := len(expected(left, f)); n != int64(want) {
				t.Errorf("%s: count after changes = %d, want %d", name, n, want)
			}
			got, _, err := s.QueryMessages(ctx, f, store.Page{})
			noErr(t, err, name)
			if d := diff(hashes(got), expected(left, f)); d != "" {
				t.Errorf("%s: after changes: %s", name, d)
			}
		}
	})

	t.Run("Channels", func(t *testing.T) {
		got, err := s.Channels(ctx)
		noErr(t, err, "channels")
		if strings.Join(got, ",") != "c1,c2,c3" {
			t.Errorf("channels = %v, want [c1 c2 c3]", got)
		}
	})
}

func testMessageHashes(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	type rec struct {
		hash   string
		status message.Status
		at     time.Time
	}
	var recs []rec
	statuses := []message.Status{message.StatusPending, message.StatusProcessed, message.StatusRejected}
	for i := range 12 {
		// Pairs share a reception time, to exercise the tie-break.
		recs = append(recs, rec{hashOf(fmt.Sprint("h", i)), statuses[i%3], baseTime.Add(time.Duration(i/2) * time.Second)})
	}
	update(t, s, func(ctx context.Context, tx store.Tx) error {
		for _, r := range recs {
			if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: r.hash, Status: r.status, ReceptionTime: r.at}); err != nil {
				return err
			}
		}
		return nil
	})
	sec := func(tm time.Time) float64 { return float64(tm.UnixNano()) / 1e9 }
	want := func(status message.Status, start, end float64, order store.SortOrder) []string {
		var sel []rec
		for _, r := range recs {
			at := sec(r.at)
			if (status == "" || r.status == status) && (start == 0 || at >= start) && (end == 0 || at < end) {
				sel = append(sel, r)
			}
		}
		sort.Slice(sel, func(i, j int) bool {
			if !sel[i].at.Equal(sel[j].at) {
				if order == store.Ascending {
					return sel[i].at.Before(sel[j].at)
				}
				return sel[i].at.After(sel[j].at)
			}
			return sel[i].hash < sel[j].hash
		})
		out := []string{}
		for _, r := range sel {
			out = append(out, r.hash)
		}
		return out
	}
	start, end := sec(baseTime.Add(time.Second))-0.001, sec(baseTime.Add(4*time.Second))-0.001
	cases := []struct {
		name       string
		status     message.Status
		start, end float64
		order      store.SortOrder
	}{
		{"all", "", 0, 0, store.Descending},
		{"all asc", "", 0, 0, store.Ascending},
		{"processed", message.StatusProcessed, 0, 0, store.Descending},
		{"window", "", start, end, store.Ascending},
		{"rejected window", message.StatusRejected, start, 0, store.Descending},
	}
	for _, c := range cases {
		got, err := s.MessageHashes(ctx, c.status, c.start, c.end, c.order, store.Page{})
		noErr(t, err, c.name)
		if d := diff(got, want(c.status, c.start, c.end, c.order)); d != "" {
			t.Errorf("%s: %s", c.name, d)
		}
	}
	var paged []string
	for page := 1; page <= 5; page++ {
		got, err := s.MessageHashes(ctx, "", 0, 0, store.Ascending, store.Page{Size: 5, Number: page})
		noErr(t, err, "paged")
		paged = append(paged, got...)
	}
	if d := diff(paged, want("", 0, 0, store.Ascending)); d != "" {
		t.Errorf("pages: %s", d)
	}
}

func testStats(t *testing.T, open Opener) {
	s := open(t)
	ctx := testCtx(t)
	var ms []*store.Message
	add := func(label string, o msgOpts) { ms = append(ms, newMessage(t, label, o)) }
	add("1", msgOpts{sender: "0xA", owner: "0xA", channel: "c1"})
	add("2", msgOpts{sender: "0xA", owner: "0xB", typ: message.TypeAggregate, channel: "c2"})
	add("3", msgOpts{sender: "0xA", typ: message.TypeAggregate})
	add("4", msgOpts{sender: "0xA", typ: message.TypeStore, status: message.StatusRemoving, channel: "c3"})
	add("5", msgOpts{sender: "0xC", owner: "0xA", channel: "c1"})
	add("6", msgOpts{sender: "0xC", typ: message.TypeForget})
	insert(t, s, ms...)

	stats, err := s.AddressStats(ctx, []string{"0xC", "0xA", "0xNone", "0xA"})
	noErr(t, err, "stats")
	if len(stats) != 2 || stats[0].Address != "0xC" || stats[1].Address != "0xA" {
		t.Fatalf("stats = %+v, want 0xC then 0xA", stats)
	}
	a := stats[1]
	if a.Messages != 3 || a.ByType[message.TypePost] != 1 || a.ByType[message.TypeAggregate] != 2 || a.ByType[message.TypeStore] != 0 {
		t.Errorf("stats of 0xA = %+v (processed messages by sender)", a)
	}
	if c := stats[0]; c.Messages != 2 || c.ByType[message.TypeForget] != 1 || c.ByType[message.TypePost] != 1 {
		t.Errorf("stats of 0xC = %+v", c)
	}
	all, err := s.AddressStats(ctx, nil)
	noErr(t, err, "all stats")
	if len(all) != 2 || all[0].Address != "0xA" || all[1].Address != "0xC" {
		t.Errorf("all stats = %+v", all)
	}

	chans, err := s.AddressChannels(ctx, "0xA")
	noErr(t, err, "address channels")
	if strings.Join(chans, ",") != "c1,c3" {
		t.Errorf("channels of owner 0xA = %v, want [c1 c3]", chans)
	}
	chans, err = s.AddressChannels(ctx, "0xNone")
	noErr(t, err, "address channels")
	if len(chans) != 0 {
		t.Errorf("channels of unknown owner = %v", chans)
	}
	all2, err := s.Channels(ctx)
	noErr(t, err, "channels")
	if strings.Join(all2, ",") != "c1,c2,c3" {
		t.Errorf("channels = %v", all2)
	}
}
