package message

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"
	"unicode/utf8"

	"github.com/go-aleph/go-aleph/pyjson"
)

// ContentUploader stores non-inline content and returns its item hash: the sha256
// hex for the storage engine, the CID for ipfs. A client implements it over a
// node's API; a node implements it over its local store.
type ContentUploader interface {
	UploadContent(ctx context.Context, engine ItemType, content []byte) (itemHash string, err error)
}

// ErrNeedUploader is returned when content must go to IPFS and no uploader is set.
var ErrNeedUploader = errors.New("content too large to inline and no uploader for the ipfs engine")

// Builder makes signed messages. The zero value is not usable: Signer is required.
type Builder struct {
	// Signer signs the verification buffer and gives the sender and chain.
	Signer Signer
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Engine is where content of InlineThreshold characters or more goes: storage
	// (the default) or ipfs.
	Engine ItemType
	// Uploader stores non-inline content. With the storage engine and no uploader,
	// the hash is computed locally and the caller uploads Built.Content itself.
	Uploader ContentUploader
	// NoInline forces content to the engine whatever its size.
	NoInline bool
	// ASCII escapes non-ASCII characters in item_content, as the Python SDK does.
	// The default writes raw UTF-8, as the TypeScript and Rust SDKs do.
	ASCII bool
}

// Built is a signed message and the exact bytes of its content.
type Built struct {
	Message *Message
	// Content is the item_content bytes. For a non-inline message these are the
	// bytes the item hash names, which must be uploaded if no Uploader did it.
	Content []byte
}

// Build fills in the content's address (the signer's) and time (now) when they are
// unset, validates it, serializes it as compact JSON with Python-style floats and
// no HTML escaping, inlines it or hands it to the engine, computes item_hash, and
// signs the verification buffer.
func (b *Builder) Build(ctx context.Context, typ Type, content Content, channel string) (*Built, error) {
	if b.Signer == nil {
		return nil, errors.New("build message: no signer")
	}
	if content == nil {
		return nil, Errorf(CodeInvalidFormat, "content", "missing")
	}
	want, err := NewContent(typ)
	if err != nil {
		return nil, err
	}
	if reflect.TypeOf(want) != reflect.TypeOf(content) {
		return nil, Errorf(CodeInvalidFormat, "content", "%T is not the content of a %s message", content, typ)
	}
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	envTime := TimeFrom(now())
	base := content.Base()
	if base.Address == "" {
		base.Address = b.Signer.Address()
	}
	if base.Time == 0 {
		base.Time = envTime.Seconds()
	}
	if err := content.Validate(); err != nil {
		return nil, fmt.Errorf("build %s: %w", typ, err)
	}
	raw, err := pyjson.Options{ASCII: b.ASCII}.Marshal(content)
	if err != nil {
		return nil, fmt.Errorf("build %s: serialize content: %w", typ, err)
	}
	m := &Message{
		Chain:   b.Signer.Chain(),
		Sender:  b.Signer.Address(),
		Type:    typ,
		Channel: channel,
		Time:    envTime,
	}
	if !b.NoInline && utf8.RuneCount(raw) < InlineThreshold {
		m.ItemType = ItemInline
		m.ItemContent = string(raw)
		m.ItemHash = HashContent(raw)
	} else {
		engine := b.Engine
		if engine == "" {
			engine = ItemStorage
		}
		if engine != ItemStorage && engine != ItemIPFS {
			return nil, fmt.Errorf("build %s: unknown storage engine %q", typ, engine)
		}
		m.ItemType = engine
		switch {
		case b.Uploader != nil:
			h, err := b.Uploader.UploadContent(ctx, engine, raw)
			if err != nil {
				return nil, fmt.Errorf("build %s: upload content: %w", typ, err)
			}
			if engine == ItemStorage && h != HashContent(raw) {
				return nil, fmt.Errorf("build %s: uploader returned hash %s for content whose sha256 is %s", typ, h, HashContent(raw))
			}
			m.ItemHash = h
		case engine == ItemStorage:
			m.ItemHash = HashContent(raw)
		default:
			return nil, fmt.Errorf("build %s: %w", typ, ErrNeedUploader)
		}
	}
	if err := Sign(m, b.Signer); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("build %s: built message does not validate: %w", typ, err)
	}
	return &Built{Message: m, Content: raw}, nil
}

// Sign sets m's chain and sender from s and signs its verification buffer.
func Sign(m *Message, s Signer) error {
	m.Chain, m.Sender = s.Chain(), s.Address()
	sig, err := s.Sign(m.VerificationBuffer())
	if err != nil {
		return fmt.Errorf("sign %s message: %w", m.Chain, err)
	}
	m.Signature = sig
	return nil
}
