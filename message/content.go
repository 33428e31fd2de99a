package message

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// Limits of the content schemas (aleph-message).
const (
	MaxForgetTargets   = 1000
	MaxForgetReason    = 1000
	MaxSubscriptionKey = 32
)

// BaseContent holds the fields every content type has: the owner the message acts
// for (which may differ from the sender under a delegation) and the content time.
type BaseContent struct {
	Address string  `json:"address" aleph:"required"`
	Time    float64 `json:"time" aleph:"required"`
}

// Base returns the common fields.
func (b *BaseContent) Base() *BaseContent { return b }

func (b *BaseContent) validate() error {
	if b.Address == "" {
		return Errorf(CodeInvalidFormat, "content.address", "must not be empty")
	}
	if len(b.Address) > MaxSenderLength {
		return Errorf(CodeInvalidFormat, "content.address", "longer than %d bytes", MaxSenderLength)
	}
	return checkTimeRange("content.time", b.Time)
}

// Content is the parsed content of a message: one of *PostContent,
// *AggregateContent, *StoreContent, *ProgramContent, *InstanceContent or
// *ForgetContent.
type Content interface {
	Base() *BaseContent
	// Validate checks the value rules (ranges, lengths, cross-field rules) that the
	// JSON shape alone does not express.
	Validate() error
}

// NewContent returns an empty content value for a message type.
func NewContent(t Type) (Content, error) {
	switch t {
	case TypePost:
		return &PostContent{}, nil
	case TypeAggregate:
		return &AggregateContent{}, nil
	case TypeStore:
		return &StoreContent{}, nil
	case TypeProgram:
		return &ProgramContent{}, nil
	case TypeInstance:
		return &InstanceContent{}, nil
	case TypeForget:
		return &ForgetContent{}, nil
	}
	return nil, Errorf(CodeInvalidFormat, "type", "unknown message type %q", truncate(string(t), 40))
}

// ParseContent strictly decodes and validates raw content JSON for message type t.
func ParseContent(t Type, raw []byte) (Content, error) {
	return decodeContent(t, raw, nil)
}

func decodeContent(t Type, raw []byte, defaults *BaseContent) (Content, error) {
	if bytes.Contains(raw, []byte(`\u0000`)) {
		return nil, Errorf(CodeInvalidFormat, "item_content", `must not contain the \u0000 escape`)
	}
	if !json.Valid(raw) {
		return nil, Errorf(CodeInvalidFormat, "item_content", "not valid JSON")
	}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, Errorf(CodeInvalidFormat, "content", "must be a JSON object")
	}
	if defaults != nil {
		var err error
		if raw, err = fillBase(raw, defaults); err != nil {
			return nil, err
		}
	}
	c, err := NewContent(t)
	if err != nil {
		return nil, err
	}
	if err := decodeStrict("content", raw, c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// fillBase adds address and time to non-inline content that lacks them, as
// pyaleph's MessageDb._coerce_content does.
func fillBase(raw []byte, d *BaseContent) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, Errorf(CodeInvalidFormat, "content", "must be a JSON object")
	}
	_, hasAddr := m["address"]
	_, hasTime := m["time"]
	if hasAddr && hasTime {
		return raw, nil
	}
	if !hasAddr {
		b, _ := json.Marshal(d.Address)
		m["address"] = b
	}
	if !hasTime {
		m["time"] = json.RawMessage(TimeFromSeconds(d.Time).String())
	}
	return json.Marshal(m)
}

// PostContent is the content of a POST: a user document of some type, optionally
// amending (type "amend") or referring to another post.
type PostContent struct {
	BaseContent
	Type    string          `json:"type" aleph:"required"`
	Content json.RawMessage `json:"content,omitempty"`
	Ref     *PostRef        `json:"ref,omitempty"`
}

// AmendType is the POST type that replaces the content of the post named by ref.
const AmendType = "amend"

// Validate checks the POST rules.
func (c *PostContent) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Ref != nil && c.Ref.Hash == "" {
		return Errorf(CodeInvalidFormat, "content.ref", "must not be empty")
	}
	return nil
}

// PostRef is a post reference: a plain string (usually an item hash), or a chain
// reference object of which only item_hash is used.
type PostRef struct {
	Hash   string          // the referenced hash (or free string)
	Object json.RawMessage // the original object, when given as one
}

// RefString returns r as a plain reference.
func RefString(h string) *PostRef { return &PostRef{Hash: h} }

func (r *PostRef) decodeSchema(path string, raw []byte) error {
	switch raw[0] {
	case '"':
		return decodeValue(path, raw, valueOf(&r.Hash), fieldOpts{}, 0)
	case '{':
		var obj struct {
			ItemHash string `json:"item_hash"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.ItemHash == "" {
			return Errorf(CodeInvalidFormat, path+".item_hash", "a reference object needs a string item_hash")
		}
		r.Hash, r.Object = obj.ItemHash, bytes.Clone(raw)
		return nil
	}
	return Errorf(CodeInvalidFormat, path, "must be a string or a reference object")
}

// MarshalJSON writes the original form.
func (r PostRef) MarshalJSON() ([]byte, error) {
	if r.Object != nil {
		return r.Object, nil
	}
	return json.Marshal(r.Hash)
}

// AggregateContent is the content of an AGGREGATE: top-level keys of Content are
// merged into the owner's aggregate named Key.
type AggregateContent struct {
	BaseContent
	Key     AggregateKey    `json:"key" aleph:"required"`
	Content json.RawMessage `json:"content" aleph:"required"`
}

// Validate checks the AGGREGATE rules: content must be an object.
func (c *AggregateContent) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if len(c.Content) == 0 || c.Content[0] != '{' {
		return Errorf(CodeInvalidFormat, "content.content", "must be an object")
	}
	if c.Key.Name == "" {
		return Errorf(CodeInvalidFormat, "content.key", "must not be empty")
	}
	return nil
}

// AggregateKey is the aggregate name: a string, or the legacy {"name": …} object.
type AggregateKey struct {
	Name   string
	Object bool // given as {"name": …}
}

func (k *AggregateKey) decodeSchema(path string, raw []byte) error {
	switch raw[0] {
	case '"':
		return decodeValue(path, raw, valueOf(&k.Name), fieldOpts{}, 0)
	case '{':
		var obj struct {
			Name string `json:"name" aleph:"required"`
		}
		if err := decodeStrict(path, raw, &obj); err != nil {
			return err
		}
		k.Name, k.Object = obj.Name, true
		return nil
	}
	return Errorf(CodeInvalidFormat, path, "must be a string or an object with a name")
}

// MarshalJSON writes the original form.
func (k AggregateKey) MarshalJSON() ([]byte, error) {
	if k.Object {
		return json.Marshal(map[string]string{"name": k.Name})
	}
	return json.Marshal(k.Name)
}

// StoreContent is the content of a STORE: it pins a file, by sha256 (storage) or
// by CID (ipfs). Unknown fields are ignored, as upstream does, and kept in the
// stored item_content.
type StoreContent struct {
	BaseContent
	ItemType    ItemType        `json:"item_type" aleph:"required"`
	ItemHash    string          `json:"item_hash" aleph:"required"`
	Size        *int64          `json:"size,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	Ref         string          `json:"ref,omitempty"`
	Metadata    json.RawMessage `json:"metadata,omitempty"`
	Payment     *Payment        `json:"payment,omitempty"`
}

func (*StoreContent) allowExtra() {}

// Validate checks the STORE rules.
func (c *StoreContent) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.ItemType != ItemStorage && c.ItemType != ItemIPFS {
		return Errorf(CodeInvalidFormat, "content.item_type", "must be storage or ipfs, got %q", truncate(string(c.ItemType), 40))
	}
	t, err := ItemTypeFromHash(c.ItemHash)
	if err != nil {
		return Errorf(CodeInvalidFormat, "content.item_hash", "unknown hash %q", truncate(c.ItemHash, 80))
	}
	if t != c.ItemType {
		return Errorf(CodeInvalidFormat, "content.item_type", "expected %s based on hash, got %s", t, c.ItemType)
	}
	if c.Size != nil && *c.Size < 0 {
		return Errorf(CodeInvalidFormat, "content.size", "must not be negative")
	}
	if c.Metadata != nil && c.Metadata[0] != '{' && string(c.Metadata) != "null" {
		return Errorf(CodeInvalidFormat, "content.metadata", "must be an object")
	}
	if c.Payment != nil {
		if err := c.Payment.validate("content.payment"); err != nil {
			return err
		}
		if c.Payment.Type != PaymentHold && c.Payment.Type != PaymentCredit {
			return Errorf(CodeInvalidFormat, "content.payment.type", "a STORE can only be paid by hold or credit, not %s", c.Payment.Type)
		}
	}
	return nil
}

// ForgetContent is the content of a FORGET: the messages and aggregates to erase.
type ForgetContent struct {
	BaseContent
	Hashes     []string `json:"hashes" aleph:"required,nonnull"`
	Aggregates []string `json:"aggregates" aleph:"nonnull"`
	Reason     *string  `json:"reason,omitempty"`
}

func (c *ForgetContent) setDefaults() { c.Aggregates = []string{} }

// Validate checks the FORGET rules. Aggregate keys must look like item hashes, as
// aleph-message types them (see docs/PROTOCOL-DECISIONS.md).
func (c *ForgetContent) Validate() error {
	if err := c.validate(); err != nil {
		return err
	}
	if len(c.Hashes) > MaxForgetTargets {
		return Errorf(CodeInvalidFormat, "content.hashes", "%d entries, over the limit of %d", len(c.Hashes), MaxForgetTargets)
	}
	if len(c.Aggregates) > MaxForgetTargets {
		return Errorf(CodeInvalidFormat, "content.aggregates", "%d entries, over the limit of %d", len(c.Aggregates), MaxForgetTargets)
	}
	for i, h := range c.Hashes {
		if !IsItemHash(h) {
			return Errorf(CodeInvalidFormat, fmt.Sprintf("content.hashes[%d]", i), "not an item hash: %q", truncate(h, 80))
		}
	}
	for i, h := range c.Aggregates {
		if !IsItemHash(h) {
			return Errorf(CodeInvalidFormat, fmt.Sprintf("content.aggregates[%d]", i), "not an item hash: %q", truncate(h, 80))
		}
	}
	if c.Reason != nil && utf8.RuneCountInString(*c.Reason) > MaxForgetReason {
		return Errorf(CodeInvalidFormat, "content.reason", "over %d characters", MaxForgetReason)
	}
	return nil
}

// PaymentType is how a resource is paid for.
type PaymentType string

// Payment types.
const (
	PaymentHold       PaymentType = "hold"
	PaymentSuperfluid PaymentType = "superfluid"
	PaymentCredit     PaymentType = "credit"
)

// Payment says how a STORE, PROGRAM or INSTANCE is paid. Absent means hold.
type Payment struct {
	Chain    Chain       `json:"chain,omitempty"`
	Receiver string      `json:"receiver,omitempty"`
	Type     PaymentType `json:"type" aleph:"required"`
}

// IsPAYG reports whether the payment streams tokens (pay-as-you-go).
func (p *Payment) IsPAYG() bool { return p != nil && p.Type == PaymentSuperfluid }

func (p *Payment) validate(path string) error {
	switch p.Type {
	case PaymentHold, PaymentSuperfluid, PaymentCredit:
	default:
		return Errorf(CodeInvalidFormat, path+".type", "must be hold, superfluid or credit, got %q", truncate(string(p.Type), 40))
	}
	if p.Chain != "" && !p.Chain.Known() {
		return Errorf(CodeInvalidFormat, path+".chain", "unknown chain %q", truncate(string(p.Chain), 40))
	}
	return nil
}
