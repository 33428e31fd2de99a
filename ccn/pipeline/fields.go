package pipeline

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// AggregateKeyString returns the key an AGGREGATE is stored and looked up
// under: the string itself, or for the legacy {"name": …} form the Python str()
// of that dict, as upstream stores it (Appendix A.9), so that such aggregates
// keep the key other nodes show.
func AggregateKeyString(k message.AggregateKey) string {
	if !k.Object {
		return k.Name
	}
	return "{'name': " + pyRepr(k.Name) + "}"
}

// pyRepr writes s as Python 3's repr() of a str does.
func pyRepr(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x80 || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}

// tagsIn returns the string entries of obj's "tags" list (non-strings are
// ignored), or nil when obj is not an object or has no such list.
func tagsIn(obj []byte) []string {
	if len(obj) == 0 || obj[0] != '{' {
		return nil
	}
	var doc struct {
		Tags []json.RawMessage `json:"tags"`
	}
	if err := json.Unmarshal(obj, &doc); err != nil {
		return nil
	}
	var tags []string
	for _, t := range doc.Tags {
		var s string
		if len(t) > 0 && t[0] == '"' && json.Unmarshal(t, &s) == nil {
			tags = append(tags, s)
		}
	}
	return tags
}

// paymentType is the payment column of STORE, PROGRAM and INSTANCE messages:
// the payment type, hold when absent.
func paymentType(p *message.Payment) string {
	if p == nil || p.Type == "" {
		return string(message.PaymentHold)
	}
	return string(p.Type)
}

// storeTag is the file tag a STORE updates: its own item hash without ref, the
// ref when it is an item hash, "<owner>/<ref>" for a user string.
func storeTag(itemHash, owner, ref string) string {
	switch {
	case ref == "":
		return itemHash
	case message.IsItemHash(ref):
		return ref
	}
	return owner + "/" + ref
}

// storedMessage builds the messages row of a processed message, with the
// columns denormalised from its content.
func storedMessage(m *message.Message, raw []byte, c message.Content, reception time.Time) *store.Message {
	sm := &store.Message{
		Message:       *m,
		Content:       json.RawMessage(raw),
		Size:          int64(len(raw)),
		Owner:         c.Base().Address,
		Status:        message.StatusProcessed,
		ReceptionTime: reception,
	}
	switch c := c.(type) {
	case *message.PostContent:
		sm.ContentType = c.Type
		if c.Ref != nil {
			sm.ContentRef = c.Ref.Hash
		}
		sm.Tags = tagsIn(c.Content)
	case *message.AggregateContent:
		sm.ContentKey = AggregateKeyString(c.Key)
		sm.Tags = tagsIn(c.Content)
	case *message.StoreContent:
		sm.ContentRef = c.Ref
		sm.ContentItemHash = c.ItemHash
		sm.PaymentType = paymentType(c.Payment)
		sm.Tags = tagsIn(raw)
	case *message.ProgramContent:
		sm.PaymentType = paymentType(c.Payment)
		sm.Tags = tagsIn(c.Metadata)
	case *message.InstanceContent:
		sm.PaymentType = paymentType(c.Payment)
		sm.Tags = tagsIn(c.Metadata)
	}
	return sm
}

// skeleton is the forgotten_messages record of a stored message.
func skeleton(m *store.Message, forgetHash string, forgetTime float64) *store.Forgotten {
	pt := m.PaymentType
	if pt == "" {
		pt = string(message.PaymentHold)
	}
	return &store.Forgotten{
		ItemHash: m.ItemHash, Type: m.Type, Chain: m.Chain, Sender: m.Sender,
		Signature: m.Signature, ItemType: m.ItemType, Time: m.Time, Channel: m.Channel,
		Owner: m.Owner, PaymentType: pt, Size: m.Size,
		ForgottenBy: []string{forgetHash}, ForgottenAt: forgetTime,
	}
}
