package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/go-aleph/go-aleph/message"
)

// SecurityKey is the aggregate key holding an address's delegations.
const SecurityKey = "security"

// Authorization lets a delegate address send messages on behalf of the owner of
// the security aggregate (ccn-protocol.md §3.7). Empty lists do not restrict.
type Authorization struct {
	Address       string         `json:"address"`
	Chain         message.Chain  `json:"chain,omitempty"`
	Channels      []string       `json:"channels"`
	Types         []message.Type `json:"types"`
	PostTypes     []string       `json:"post_types"`
	AggregateKeys []string       `json:"aggregate_keys"`
	// Raw is the entry as read from the node. MarshalJSON writes it back
	// unchanged, keeping fields this type does not know; set it to nil after
	// changing the other fields.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes an entry and keeps it in Raw.
func (a *Authorization) UnmarshalJSON(b []byte) error {
	type plain Authorization
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return fmt.Errorf("decode authorization: %w", err)
	}
	*a = Authorization(p)
	a.Raw = bytes.Clone(b)
	return nil
}

// MarshalJSON writes Raw when set, and otherwise the fields, with empty lists
// as [] and no chain when unset.
func (a Authorization) MarshalJSON() ([]byte, error) {
	if a.Raw != nil {
		var buf bytes.Buffer
		if err := json.Compact(&buf, a.Raw); err != nil {
			return nil, fmt.Errorf("encode authorization: %w", err)
		}
		return buf.Bytes(), nil
	}
	type plain Authorization
	p := plain(a)
	if p.Channels == nil {
		p.Channels = []string{}
	}
	if p.Types == nil {
		p.Types = []message.Type{}
	}
	if p.PostTypes == nil {
		p.PostTypes = []string{}
	}
	if p.AggregateKeys == nil {
		p.AggregateKeys = []string{}
	}
	return json.Marshal(p)
}

// Validate checks an entry as the SDKs do: an address, known types, post types
// only with POST among the types, aggregate keys only with AGGREGATE (when types
// are restricted at all).
func (a *Authorization) Validate() error {
	if a.Address == "" {
		return errors.New("authorization: empty delegate address")
	}
	if a.Chain != "" && !a.Chain.Known() {
		return fmt.Errorf("authorization: unknown chain %q", a.Chain)
	}
	for _, t := range a.Types {
		if !t.Known() {
			return fmt.Errorf("authorization: unknown message type %q", t)
		}
	}
	if len(a.PostTypes) > 0 && len(a.Types) > 0 && !slices.Contains(a.Types, message.TypePost) {
		return errors.New("authorization: post types need POST among the types")
	}
	if len(a.AggregateKeys) > 0 && len(a.Types) > 0 && !slices.Contains(a.Types, message.TypeAggregate) {
		return errors.New("authorization: aggregate keys need AGGREGATE among the types")
	}
	return nil
}

// Authorizations returns the delegations owner granted: the authorizations list
// of its security aggregate (empty when it has none).
func (c *Client) Authorizations(ctx context.Context, owner string) ([]Authorization, error) {
	raw, err := c.GetAggregate(ctx, owner, SecurityKey)
	if errors.Is(err, ErrNotFound) {
		return []Authorization{}, nil
	}
	if err != nil {
		return nil, err
	}
	var sec struct {
		Authorizations json.RawMessage `json:"authorizations"`
	}
	if err := json.Unmarshal(raw, &sec); err != nil {
		return nil, fmt.Errorf("security aggregate of %s is not an object: %w", owner, err)
	}
	if len(sec.Authorizations) == 0 || string(sec.Authorizations) == "null" {
		return []Authorization{}, nil
	}
	var list []Authorization
	if err := json.Unmarshal(sec.Authorizations, &list); err != nil {
		return nil, fmt.Errorf("security aggregate of %s: authorizations is not a list of entries: %w", owner, err)
	}
	if list == nil {
		list = []Authorization{}
	}
	return list, nil
}

// SetAuthorizations writes the whole authorizations list of the owner's security
// aggregate (o.Address, or the signer). Aggregates merge top-level keys, so the
// list replaces the previous one and other keys of the aggregate are kept.
func (c *Client) SetAuthorizations(ctx context.Context, list []Authorization, o WriteOptions) (*WriteResult, error) {
	for i := range list {
		if list[i].Raw != nil {
			continue
		}
		if err := list[i].Validate(); err != nil {
			return nil, err
		}
	}
	if list == nil {
		list = []Authorization{}
	}
	content, err := json.Marshal(struct {
		Authorizations []Authorization `json:"authorizations"`
	}{list})
	if err != nil {
		return nil, fmt.Errorf("encode authorizations: %w", err)
	}
	return c.CreateAggregate(ctx, SecurityKey, json.RawMessage(content), o)
}
