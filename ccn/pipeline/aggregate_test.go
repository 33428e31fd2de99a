package pipeline

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/go-aleph/go-aleph/message"
)

func TestAggregateMergeOutOfOrder(t *testing.T) {
	alice := account(t, "alice")
	els := []*msg{
		build(t, "e0", alice, message.TypeAggregate, aggregate("profile", `{"name":"a","bio":"x","n":{"deep":1}}`), "", 0),
		build(t, "e1", alice, message.TypeAggregate, aggregate("profile", `{"bio":"y"}`), "", 10),
		build(t, "e2", alice, message.TypeAggregate, aggregate("profile", `{"n":{"other":2},"age":3}`), "", 20),
		build(t, "e3", alice, message.TypeAggregate, aggregate("profile", `{"name":"b"}`), "", 5),
		build(t, "e4", alice, message.TypeAggregate, aggregate("profile", `{"age":4}`), "", 15),
	}
	const want = `{"age":3,"bio":"y","n":{"other":2},"name":"b"}`
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 8 {
		order := rng.Perm(len(els))
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			e := newEnv(t, envOpts{})
			for _, i := range order {
				e.ingest(els[i])
			}
			a := e.aggregate(alice.Address(), "profile")
			if a == nil {
				t.Fatal("no aggregate")
			}
			if string(a.Content) != want {
				t.Errorf("round %d: content %s, want %s", round, a.Content, want)
			}
			if a.OriginalHash != els[0].hash || a.LastRevisionHash != els[2].hash ||
				a.CreationTime != els[0].time || a.LastUpdateTime != els[2].time || a.Dirty {
				t.Errorf("bounds %+v", a)
			}
		})
	}
}

func TestAggregatePermissions(t *testing.T) {
	alice, carol, dave := account(t, "alice"), account(t, "carol"), account(t, "dave")
	grant := func(name string, at float64, entries string) *msg {
		return securityAggregate(t, name, alice, at, entries)
	}
	unrestricted := grant("unrestricted", 0, fmt.Sprintf(`[{"address":%q}]`, carol.Address()))
	keysOnly := grant("keysOnly", 0, fmt.Sprintf(`[{"address":%q,"aggregate_keys":["profile"]}]`, carol.Address()))
	explicit := grant("explicit", 0, fmt.Sprintf(`[{"address":%q,"aggregate_keys":["profile","security"]}]`, carol.Address()))

	carolProfile := build(t, "carolProfile", carol, message.TypeAggregate, owned(aggregate("profile", `{"x":1}`), alice.Address()), "", 10)
	carolSettings := build(t, "carolSettings", carol, message.TypeAggregate, owned(aggregate("settings", `{"x":1}`), alice.Address()), "", 11)
	carolGrantsDave := build(t, "carolGrantsDave", carol, message.TypeAggregate, owned(aggregate(SecurityKey,
		fmt.Sprintf(`{"authorizations":[{"address":%q}]}`, dave.Address())), alice.Address()), "", 12)
	daveProfile := build(t, "daveProfile", dave, message.TypeAggregate, owned(aggregate("profile", `{"d":1}`), alice.Address()), "", 13)
	// The owner itself may always rewrite its security aggregate.
	aliceRevokes := grant("aliceRevokes", 20, `[]`)
	carolAfterRevoke := build(t, "carolAfterRevoke", carol, message.TypeAggregate, owned(aggregate("profile", `{"x":2}`), alice.Address()), "", 21)
	// The aggregate owner is looked up as written: another spelling of the owner
	// has no security aggregate.
	carolOtherSpelling := build(t, "carolOtherSpelling", carol, message.TypeAggregate, owned(aggregate("profile", `{"x":3}`), lowerHex(alice.Address())), "", 14)

	runScenarios(t, Config{}, []scenario{
		{name: "unrestricted delegate writes other keys", msgs: []*msg{unrestricted, carolProfile, carolSettings},
			want: []outcome{processed(carolProfile), processed(carolSettings)}},
		{name: "decision: unrestricted delegate cannot rewrite security", msgs: []*msg{unrestricted, carolGrantsDave, daveProfile},
			want: []outcome{rejected(carolGrantsDave, message.CodePermissionDenied), rejected(daveProfile, message.CodePermissionDenied)}},
		{name: "key-restricted delegate", msgs: []*msg{keysOnly, carolProfile, carolSettings, carolGrantsDave},
			want: []outcome{processed(carolProfile), rejected(carolSettings, message.CodePermissionDenied), rejected(carolGrantsDave, message.CodePermissionDenied)}},
		{name: "decision: explicit security grant", msgs: []*msg{explicit, carolGrantsDave, daveProfile},
			want: []outcome{processed(carolGrantsDave), processed(daveProfile)}},
		{name: "owner revokes", msgs: []*msg{unrestricted, carolProfile, aliceRevokes, carolAfterRevoke},
			want: []outcome{processed(carolProfile), processed(aliceRevokes), rejected(carolAfterRevoke, message.CodePermissionDenied)}},
		{name: "owner looked up as written", msgs: []*msg{unrestricted, carolOtherSpelling},
			want: []outcome{rejected(carolOtherSpelling, message.CodePermissionDenied)}},
	})
}

// lowerHex spells an EVM address in lowercase.
func lowerHex(addr string) string {
	b := []byte(addr)
	for i, c := range b {
		if c >= 'A' && c <= 'F' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}

func TestAggregateObjectKey(t *testing.T) {
	alice := account(t, "alice")
	obj := build(t, "obj", alice, message.TypeAggregate,
		&message.AggregateContent{Key: message.AggregateKey{Name: "profile", Object: true}, Content: []byte(`{"a":1}`)}, "", 0)
	plain := build(t, "plain", alice, message.TypeAggregate, aggregate("profile", `{"b":2}`), "", 1)
	e := newEnv(t, envOpts{})
	e.ingest(obj, plain)
	e.want(processed(obj), processed(plain))
	if a := e.aggregate(alice.Address(), "{'name': 'profile'}"); a == nil || string(a.Content) != `{"a":1}` {
		t.Errorf("object-key aggregate = %+v", a)
	}
	if a := e.aggregate(alice.Address(), "profile"); a == nil || string(a.Content) != `{"b":2}` {
		t.Errorf("string-key aggregate = %+v", a)
	}
	m, err := e.store.GetMessage(e.ctx, obj.hash)
	if err != nil || m.ContentKey != "{'name': 'profile'}" {
		t.Errorf("message content_key = %q (%v)", m.ContentKey, err)
	}
}
