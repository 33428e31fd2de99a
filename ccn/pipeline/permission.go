package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// SecurityKey is the aggregate key holding an owner's delegations.
const SecurityKey = "security"

// act describes a message as the permission rules see it: who sends it, on whose
// behalf, and the attributes a delegation can restrict.
type act struct {
	Sender   string
	Owner    string
	Chain    message.Chain
	Channel  string
	Type     message.Type
	PostType string // POST content.type
	Key      string // AGGREGATE key, as stored
}

// authorizedBy reports whether the compacted security aggregate content sec
// lets a.Sender act for a.Owner (§3.7). The first matching entry of
// "authorizations" wins. An entry needs an "address" equal to the sender, case
// insensitively; "chain", "channels", "types", "post_types" (POST only) and
// "aggregate_keys" (AGGREGATE only) restrict it when set and non-empty.
//
// Malformed data never grants more: a list field that is not a list of strings,
// or a chain that is not a string, makes the entry not match (upstream, Python
// would do a substring test on a string).
//
// go-aleph decision: an AGGREGATE on the "security" key itself only matches an
// entry whose aggregate_keys explicitly lists "security"; an unrestricted
// delegate cannot rewrite the delegations (upstream lets it).
func authorizedBy(a act, sec []byte) bool {
	if len(sec) == 0 {
		return false
	}
	var doc struct {
		Authorizations json.RawMessage `json:"authorizations"`
	}
	if err := json.Unmarshal(sec, &doc); err != nil {
		return false
	}
	var entries []json.RawMessage
	if err := json.Unmarshal(doc.Authorizations, &entries); err != nil {
		return false
	}
	for _, raw := range entries {
		var e map[string]json.RawMessage
		if err := json.Unmarshal(raw, &e); err != nil || e == nil {
			continue
		}
		if entryMatches(e, a) {
			return true
		}
	}
	return false
}

func entryMatches(e map[string]json.RawMessage, a act) bool {
	addr, ok := optString(e["address"])
	if !ok || addr == "" || !strings.EqualFold(addr, a.Sender) {
		return false
	}
	chain, ok := optString(e["chain"])
	if !ok || chain != "" && chain != string(a.Chain) {
		return false
	}
	channels, ok := optStrings(e["channels"])
	if !ok || len(channels) > 0 && !slices.Contains(channels, a.Channel) {
		return false
	}
	types, ok := optStrings(e["types"])
	if !ok || len(types) > 0 && !slices.Contains(types, string(a.Type)) {
		return false
	}
	postTypes, ok := optStrings(e["post_types"])
	if !ok || a.Type == message.TypePost && len(postTypes) > 0 && !slices.Contains(postTypes, a.PostType) {
		return false
	}
	keys, ok := optStrings(e["aggregate_keys"])
	if !ok {
		return false
	}
	if a.Type == message.TypeAggregate {
		if a.Key == SecurityKey {
			return slices.Contains(keys, SecurityKey)
		}
		if len(keys) > 0 && !slices.Contains(keys, a.Key) {
			return false
		}
	}
	return true
}

// optString decodes an optional string: absent or null is "", ok; anything but
// a string is not ok.
func optString(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// optStrings decodes an optional list of strings: absent or null is empty, ok;
// anything but a list of strings is not ok.
func optStrings(raw json.RawMessage) ([]string, bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, true
	}
	var l []string
	if err := json.Unmarshal(raw, &l); err != nil {
		return nil, false
	}
	return l, true
}

// authorize checks that a.Sender may act for a.Owner: it is the owner itself
// (case-insensitively) or a delegate in the owner's security aggregate, looked
// up with the owner string exactly as written. Code 2 otherwise.
func authorize(ctx context.Context, tx store.Tx, a act) error {
	if strings.EqualFold(a.Sender, a.Owner) {
		return nil
	}
	sec, err := securityContent(ctx, tx, a.Owner)
	if err != nil {
		return err
	}
	if authorizedBy(a, sec) {
		return nil
	}
	what := string(a.Type)
	switch {
	case a.Type == message.TypePost && a.PostType != "":
		what += " " + chain.Clip(a.PostType)
	case a.Type == message.TypeAggregate:
		what += " " + chain.Clip(a.Key)
	}
	return fail(message.CodePermissionDenied, "sender", "%s is not authorized to send %s for %s", chain.Clip(a.Sender), what, chain.Clip(a.Owner))
}

// securityContent returns the owner's compacted security aggregate content, nil
// if there is none. A dirty aggregate is merged from its elements.
func securityContent(ctx context.Context, tx store.Tx, owner string) ([]byte, error) {
	agg, err := tx.GetAggregate(ctx, owner, SecurityKey)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get security aggregate: %w", err)
	}
	if !agg.Dirty {
		return agg.Content, nil
	}
	els, err := tx.ListAggregateElements(ctx, owner, SecurityKey)
	if err != nil {
		return nil, fmt.Errorf("list security aggregate elements: %w", err)
	}
	if len(els) == 0 {
		return nil, nil
	}
	full, err := compactAggregate(owner, SecurityKey, els)
	if err != nil {
		return nil, err
	}
	return full.Content, nil
}
