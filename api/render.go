package api

import (
	"bytes"
	"encoding/json"
	"strconv"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// contentFormat selects how much content a message object carries.
type contentFormat int

const (
	formatFull    contentFormat = iota // "content": the parsed content
	formatHeaders                      // "content": {address} plus the type's key fields
	formatNone                         // no "content"
)

// messageJSON is the message object of §5.2, in pyaleph's field order.
type messageJSON struct {
	Sender        string           `json:"sender"`
	Chain         message.Chain    `json:"chain"`
	Signature     *string          `json:"signature"`
	Type          message.Type     `json:"type"`
	ItemContent   *string          `json:"item_content"`
	ItemType      message.ItemType `json:"item_type"`
	ItemHash      string           `json:"item_hash"`
	Time          json.RawMessage  `json:"time"`
	Channel       *string          `json:"channel"`
	Content       json.RawMessage  `json:"content,omitempty"`
	Size          int64            `json:"size"`
	Confirmed     bool             `json:"confirmed"`
	Confirmations []confirmation   `json:"confirmations"`
}

// confirmation is an on-chain confirmation; the node has none yet.
type confirmation struct {
	Chain  string `json:"chain"`
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// timeJSON returns the original number text of an envelope time.
func timeJSON(t message.Time) json.RawMessage {
	b, _ := t.MarshalJSON() // never fails
	if len(b) == 0 {
		return json.RawMessage("0")
	}
	return b
}

// renderMessage builds the API message object of a stored message.
func renderMessage(m *store.Message, f contentFormat) messageJSON {
	out := messageJSON{
		Sender:        m.Sender,
		Chain:         m.Chain,
		Signature:     optString(m.Signature),
		Type:          m.Type,
		ItemType:      m.ItemType,
		ItemHash:      m.ItemHash,
		Time:          timeJSON(m.Time),
		Channel:       optString(m.Channel),
		Size:          m.Size,
		Confirmations: []confirmation{},
	}
	if m.ItemType == message.ItemInline {
		ic := m.ItemContent
		out.ItemContent = &ic
	}
	switch f {
	case formatFull:
		out.Content = rawOrNull(m.Content)
	case formatHeaders:
		out.Content = contentHeaders(m.Type, m.Content)
	}
	return out
}

// rawOrNull returns raw when it is valid JSON, and null otherwise, so that a
// corrupt row cannot make a whole listing fail.
func rawOrNull(raw json.RawMessage) json.RawMessage {
	if len(bytes.TrimSpace(raw)) == 0 || !json.Valid(raw) {
		return json.RawMessage("null")
	}
	return raw
}

// contentHeaders keeps content.address plus POST type/ref, AGGREGATE key and
// STORE item_hash/ref, in their original JSON form.
func contentHeaders(t message.Type, raw json.RawMessage) json.RawMessage {
	var c map[string]json.RawMessage
	if err := json.Unmarshal(raw, &c); err != nil {
		return json.RawMessage("{}")
	}
	keep := []string{"address"}
	switch t {
	case message.TypePost:
		keep = append(keep, "type", "ref")
	case message.TypeAggregate:
		keep = append(keep, "key")
	case message.TypeStore:
		keep = append(keep, "item_hash", "ref")
	}
	var b bytes.Buffer
	b.WriteByte('{')
	n := 0
	for _, k := range keep {
		v, ok := c[k]
		if !ok {
			continue
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(k))
		b.WriteByte(':')
		b.Write(v)
		n++
	}
	b.WriteByte('}')
	return b.Bytes()
}

// skeletonJSON is what is left of a forgotten message.
type skeletonJSON struct {
	Sender      string           `json:"sender"`
	Chain       message.Chain    `json:"chain"`
	Signature   *string          `json:"signature"`
	Type        message.Type     `json:"type"`
	ItemType    message.ItemType `json:"item_type"`
	ItemHash    string           `json:"item_hash"`
	Time        json.RawMessage  `json:"time"`
	Channel     *string          `json:"channel"`
	Owner       *string          `json:"owner"`
	PaymentType *string          `json:"payment_type"`
	Size        int64            `json:"size"`
	ForgottenAt string           `json:"forgotten_at"`
	Status      message.Status   `json:"status"`
	ForgottenBy []string         `json:"forgotten_by"`
}

func renderSkeleton(f *store.Forgotten) skeletonJSON {
	by := f.ForgottenBy
	if by == nil {
		by = []string{}
	}
	return skeletonJSON{
		Sender:      f.Sender,
		Chain:       f.Chain,
		Signature:   optString(f.Signature),
		Type:        f.Type,
		ItemType:    f.ItemType,
		ItemHash:    f.ItemHash,
		Time:        timeJSON(f.Time),
		Channel:     optString(f.Channel),
		Owner:       optString(f.Owner),
		PaymentType: optString(f.PaymentType),
		Size:        f.Size,
		ForgottenAt: isoSeconds(f.ForgottenAt),
		Status:      message.StatusForgotten,
		ForgottenBy: by,
	}
}

// pendingJSON is a queued copy of a message, as GET /messages/{hash} lists them.
type pendingJSON struct {
	Sender        string           `json:"sender"`
	Chain         message.Chain    `json:"chain"`
	Signature     *string          `json:"signature"`
	Type          message.Type     `json:"type"`
	ItemContent   *string          `json:"item_content"`
	ItemType      message.ItemType `json:"item_type"`
	ItemHash      string           `json:"item_hash"`
	Time          json.RawMessage  `json:"time"`
	Channel       *string          `json:"channel"`
	Content       json.RawMessage  `json:"content"`
	ReceptionTime string           `json:"reception_time"`
}

func renderPending(p *store.Pending) pendingJSON {
	m := &p.Message
	out := pendingJSON{
		Sender:        m.Sender,
		Chain:         m.Chain,
		Signature:     optString(m.Signature),
		Type:          m.Type,
		ItemType:      m.ItemType,
		ItemHash:      m.ItemHash,
		Time:          timeJSON(m.Time),
		Channel:       optString(m.Channel),
		Content:       json.RawMessage("null"),
		ReceptionTime: isoTime(p.ReceptionTime),
	}
	switch {
	case m.ItemType == message.ItemInline:
		ic := m.ItemContent
		out.ItemContent = &ic
		out.Content = rawOrNull(json.RawMessage(ic))
	case len(p.Content) > 0:
		out.Content = rawOrNull(p.Content)
	}
	return out
}
