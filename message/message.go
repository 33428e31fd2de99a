// Package message is the Aleph message protocol core: the signed envelope, item
// types and hashes, the content schemas of every message type with their
// validation rules, the verification buffer that signatures cover, the protocol
// error codes and statuses, and a builder that hashes and signs new messages.
//
// The package knows nothing of HTTP, databases or specific chains; chain
// verifiers live under chain/ and plug in through chain.Registry.
package message

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Limits from the protocol.
const (
	// MaxInlineSize is the largest inline item_content, in characters.
	MaxInlineSize = 200_000
	// InlineThreshold is where the builder moves content to storage: content of
	// this many characters or more is not inlined (the SDKs' MAX_INLINE_SIZE).
	InlineThreshold = 50_000
	// MaxChannelLength is the longest channel, in characters.
	MaxChannelLength = 128
	// MaxContentTime is the largest content.time accepted (aleph-message MAX_CONTENT_TIME).
	MaxContentTime = 9_223_372_036.0
	// MaxEnvelopeSize bounds the JSON text of one envelope. Inline content is at most
	// 200,000 characters, and JSON escaping inside the envelope can at most sextuple it.
	MaxEnvelopeSize = 2 << 20
	// MaxSenderLength bounds the sender address; real addresses are under 100 characters.
	MaxSenderLength = 256
	// MaxSignatureLength bounds the signature field; the longest real form (a Cosmos
	// or Tezos JSON object) is well under 1 KiB.
	MaxSignatureLength = 8192
)

// Message is the signed envelope of an Aleph message, as clients post it and as nodes
// gossip it. Only Chain, Sender, Type and ItemHash are covered by the signature.
//
// ItemContent is kept as the exact text received: the inline item_hash is the sha256
// of those bytes, so it is never re-serialized.
type Message struct {
	Chain       Chain
	Sender      string
	Type        Type
	Channel     string // "" is sent as null
	Time        Time
	ItemType    ItemType
	ItemContent string // set iff ItemType is inline
	ItemHash    string
	Signature   string // "" is sent as null
}

// VerificationBuffer returns the bytes every chain signs:
// "<chain>\n<sender>\n<type>\n<item_hash>".
func (m *Message) VerificationBuffer() []byte {
	return VerificationBuffer(m.Chain, m.Sender, m.Type, m.ItemHash)
}

// VerificationBuffer builds the signed buffer from its four parts.
func VerificationBuffer(chain Chain, sender string, typ Type, itemHash string) []byte {
	b := make([]byte, 0, len(chain)+len(sender)+len(typ)+len(itemHash)+3)
	b = append(b, chain...)
	b = append(b, '\n')
	b = append(b, sender...)
	b = append(b, '\n')
	b = append(b, typ...)
	b = append(b, '\n')
	b = append(b, itemHash...)
	return b
}

// HashContent returns the inline item_hash of content: lowercase hex sha256.
func HashContent(content []byte) string {
	sum := sha256.Sum256(content)
	return hex.EncodeToString(sum[:])
}

// envelope is the wire form used for decoding. Pointers tell absent or null apart
// from empty; unknown envelope fields (confirmed, size, content, …) are ignored,
// as pyaleph ignores them.
type envelope struct {
	Chain       *string         `json:"chain"`
	Sender      *string         `json:"sender"`
	Type        *string         `json:"type"`
	Channel     *string         `json:"channel"`
	Time        json.RawMessage `json:"time"`
	ItemType    *string         `json:"item_type"`
	ItemContent *string         `json:"item_content"`
	ItemHash    *string         `json:"item_hash"`
	HashType    *string         `json:"hash_type"`
	Signature   json.RawMessage `json:"signature"`
}

// Parse decodes and validates one envelope from JSON. It checks the envelope rules
// (known chain and type, lengths, item type against hash shape, the inline hash, the
// \u0000 ban) and, for inline messages, the content schema. It does not verify the
// signature: that is chain.Registry's job. Every error is an *Error naming its field.
func Parse(data []byte) (*Message, error) {
	m, err := decodeEnvelope(data)
	if err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func decodeEnvelope(data []byte) (*Message, error) {
	if len(data) > MaxEnvelopeSize {
		return nil, &Error{Code: CodeInvalidFormat, Reason: fmt.Sprintf("message is %d bytes, over the %d-byte limit", len(data), MaxEnvelopeSize), Err: ErrTooLong}
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		return nil, jsonError("", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, Errorf(CodeInvalidFormat, "", "trailing data after the message object")
	}
	return env.message()
}

func (env *envelope) message() (*Message, error) {
	m := &Message{}
	var missing string
	switch {
	case env.Chain == nil:
		missing = "chain"
	case env.Sender == nil:
		missing = "sender"
	case env.Type == nil:
		missing = "type"
	case env.Time == nil:
		missing = "time"
	case env.ItemHash == nil:
		missing = "item_hash"
	}
	if missing != "" {
		return nil, Errorf(CodeInvalidFormat, missing, "field required")
	}
	m.Chain = Chain(*env.Chain)
	m.Sender = *env.Sender
	m.Type = Type(*env.Type)
	if err := m.Time.UnmarshalJSON(env.Time); err != nil {
		return nil, jsonError("time", err)
	}
	m.ItemHash = *env.ItemHash
	if env.Channel != nil {
		m.Channel = *env.Channel
	}
	if env.HashType != nil && *env.HashType != "sha256" {
		return nil, Errorf(CodeInvalidFormat, "hash_type", "only sha256 is supported, got %q", truncate(*env.HashType, 40))
	}
	if env.ItemContent != nil {
		m.ItemContent = *env.ItemContent
	}
	switch {
	case env.ItemType != nil:
		m.ItemType = ItemType(*env.ItemType)
		if !m.ItemType.Known() {
			return nil, Errorf(CodeInvalidFormat, "item_type", "unknown item type %q", truncate(*env.ItemType, 40))
		}
	case env.ItemContent != nil:
		m.ItemType = ItemInline
	default:
		t, err := ItemTypeFromHash(m.ItemHash)
		if err != nil {
			return nil, err
		}
		m.ItemType = t
	}
	if m.ItemType == ItemInline && env.ItemContent == nil {
		return nil, Errorf(CodeInvalidFormat, "item_content", "field required for inline messages")
	}
	if m.ItemType != ItemInline && env.ItemContent != nil {
		return nil, Errorf(CodeInvalidFormat, "item_content", "must be absent for %s messages", m.ItemType)
	}
	sig, err := signatureText(env.Signature)
	if err != nil {
		return nil, err
	}
	m.Signature = sig
	return m, nil
}

// signatureText accepts the signature as a string or null, and also as a JSON object
// (the form some API answers use for SOL/DOT/CSDK/TEZOS signatures); an object is
// kept as its compact JSON text, which the JSON-signature verifiers parse.
func signatureText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	if len(raw) > MaxSignatureLength+2 {
		return "", Errorf(CodeInvalidSignature, "signature", "longer than %d bytes", MaxSignatureLength)
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", Errorf(CodeInvalidFormat, "signature", "invalid string")
		}
		return s, nil
	case '{':
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return "", Errorf(CodeInvalidFormat, "signature", "invalid JSON object")
		}
		return buf.String(), nil
	}
	return "", Errorf(CodeInvalidFormat, "signature", "must be a string, an object or null")
}

// Validate checks the envelope rules and, for inline messages, the content schema.
func (m *Message) Validate() error {
	if !m.Chain.Known() {
		return Errorf(CodeInvalidFormat, "chain", "unknown chain %q", truncate(string(m.Chain), 40))
	}
	if m.Sender == "" {
		return Errorf(CodeInvalidFormat, "sender", "must not be empty")
	}
	if len(m.Sender) > MaxSenderLength {
		return Errorf(CodeInvalidFormat, "sender", "longer than %d bytes", MaxSenderLength)
	}
	if !m.Type.Known() {
		return Errorf(CodeInvalidFormat, "type", "unknown message type %q", truncate(string(m.Type), 40))
	}
	if n := utf8.RuneCountInString(m.Channel); n > MaxChannelLength {
		return Errorf(CodeInvalidFormat, "channel", "%d characters, over the %d-character limit", n, MaxChannelLength)
	}
	if err := m.Time.validate("time"); err != nil {
		return err
	}
	if len(m.Signature) > MaxSignatureLength {
		return Errorf(CodeInvalidSignature, "signature", "longer than %d bytes", MaxSignatureLength)
	}
	if !m.ItemType.Known() {
		return Errorf(CodeInvalidFormat, "item_type", "unknown item type %q", truncate(string(m.ItemType), 40))
	}
	if m.ItemType != ItemInline {
		if m.ItemContent != "" {
			return Errorf(CodeInvalidFormat, "item_content", "must be absent for %s messages", m.ItemType)
		}
		t, err := ItemTypeFromHash(m.ItemHash)
		if err != nil {
			return err
		}
		if t != m.ItemType {
			return Errorf(CodeInvalidFormat, "item_type", "expected %s based on hash, got %s", t, m.ItemType)
		}
		return nil
	}
	if n := utf8.RuneCountInString(m.ItemContent); n > MaxInlineSize {
		return &Error{Code: CodeInvalidFormat, Field: "item_content", Reason: fmt.Sprintf("message too long: %d characters, over the %d-character limit", n, MaxInlineSize), Err: ErrTooLong}
	}
	if !IsHexHash(m.ItemHash) {
		return Errorf(CodeInvalidFormat, "item_hash", "inline messages need a 64-digit lowercase sha256 hex hash, got %q", truncate(m.ItemHash, 80))
	}
	if got := HashContent([]byte(m.ItemContent)); got != m.ItemHash {
		return &Error{Code: CodeInvalidFormat, Field: "item_hash", Reason: fmt.Sprintf("sha256 of item_content is %s, not %s", got, m.ItemHash), Err: ErrHashMismatch}
	}
	_, err := m.DecodeContent([]byte(m.ItemContent))
	return err
}

// DecodeContent parses and validates the content of m from its raw JSON: the inline
// item_content, or the bytes fetched from storage or IPFS. For non-inline content, a
// missing address defaults to the sender and a missing time to the envelope time, as
// pyaleph does; inline content must carry both.
func (m *Message) DecodeContent(raw []byte) (Content, error) {
	var defaults *BaseContent
	if m.ItemType != ItemInline {
		defaults = &BaseContent{Address: m.Sender, Time: m.Time.Seconds()}
	}
	return decodeContent(m.Type, raw, defaults)
}

// MarshalJSON writes the nine fields clients broadcast, keeping the time's original
// text and item_content byte for byte.
func (m *Message) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"sender":`)
	writeJSONString(&b, m.Sender)
	b.WriteString(`,"chain":`)
	writeJSONString(&b, string(m.Chain))
	b.WriteString(`,"signature":`)
	writeOptString(&b, m.Signature)
	b.WriteString(`,"type":`)
	writeJSONString(&b, string(m.Type))
	b.WriteString(`,"item_hash":`)
	writeJSONString(&b, m.ItemHash)
	b.WriteString(`,"item_type":`)
	writeJSONString(&b, string(m.ItemType))
	if m.ItemType == ItemInline {
		b.WriteString(`,"item_content":`)
		writeJSONString(&b, m.ItemContent)
	}
	b.WriteString(`,"time":`)
	t, _ := m.Time.MarshalJSON()
	b.Write(t)
	b.WriteString(`,"channel":`)
	writeOptString(&b, m.Channel)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes an envelope without validating it; call Validate, or use Parse.
func (m *Message) UnmarshalJSON(data []byte) error {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return jsonError("", err)
	}
	got, err := env.message()
	if err != nil {
		return err
	}
	*m = *got
	return nil
}

func writeOptString(b *bytes.Buffer, s string) {
	if s == "" {
		b.WriteString("null")
		return
	}
	writeJSONString(b, s)
}

func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	b.Truncate(b.Len() - 1)
}

// jsonError turns an encoding/json error into an *Error naming the field.
func jsonError(prefix string, err error) error {
	var me *Error
	if errors.As(err, &me) {
		if prefix != "" && me.Field != "" {
			me.Field = prefix + "." + me.Field
		} else if prefix != "" {
			me.Field = prefix
		}
		return me
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if prefix != "" {
			field = joinField(prefix, field)
		}
		return &Error{Code: CodeInvalidFormat, Field: field, Reason: fmt.Sprintf("expected %s, got a JSON %s", te.Type, te.Value)}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return &Error{Code: CodeInvalidFormat, Field: prefix, Reason: fmt.Sprintf("invalid JSON at offset %d: %v", se.Offset, se)}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &Error{Code: CodeInvalidFormat, Field: prefix, Reason: "unexpected end of JSON"}
	}
	return &Error{Code: CodeInvalidFormat, Field: prefix, Reason: err.Error()}
}

func joinField(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	}
	return prefix + "." + field
}
