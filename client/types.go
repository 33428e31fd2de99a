package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// Message is a message object as the API serves it: the signed envelope, the
// parsed content, its size and its on-chain confirmations.
//
// Decoding is lenient where the API is inconsistent: time may be a number or an
// ISO-8601 string (pending copies, Appendix A.23), the signature a string, an
// object or null, and forgotten or removed skeletons have no content.
type Message struct {
	message.Message
	// Content is the parsed content object, or nil when the answer omits it.
	Content json.RawMessage
	// Size is the byte length of the raw content (0 when the answer omits it).
	Size          int64
	Confirmed     bool
	Confirmations []Confirmation
	// Raw is the object exactly as received.
	Raw json.RawMessage
}

// Confirmation is an on-chain confirmation of a message.
type Confirmation struct {
	Chain  string `json:"chain"`
	Hash   string `json:"hash"`
	Height int64  `json:"height"`
}

// wireMessage is the API's message object, with every field optional.
type wireMessage struct {
	Chain         *string         `json:"chain"`
	Sender        *string         `json:"sender"`
	Type          *string         `json:"type"`
	Channel       *string         `json:"channel"`
	Time          json.RawMessage `json:"time"`
	ItemType      *string         `json:"item_type"`
	ItemContent   *string         `json:"item_content"`
	ItemHash      *string         `json:"item_hash"`
	Signature     json.RawMessage `json:"signature"`
	Content       json.RawMessage `json:"content"`
	Size          json.RawMessage `json:"size"`
	Confirmed     *bool           `json:"confirmed"`
	Confirmations []Confirmation  `json:"confirmations"`
}

// UnmarshalJSON decodes an API message object without validating it.
func (m *Message) UnmarshalJSON(data []byte) error {
	var w wireMessage
	if err := json.Unmarshal(data, &w); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	out := Message{Raw: bytes.Clone(data)}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	out.Chain = message.Chain(str(w.Chain))
	out.Sender = str(w.Sender)
	out.Type = message.Type(str(w.Type))
	out.Channel = str(w.Channel)
	out.ItemType = message.ItemType(str(w.ItemType))
	out.ItemContent = str(w.ItemContent)
	out.ItemHash = str(w.ItemHash)
	if out.ItemType == "" && w.ItemContent != nil {
		out.ItemType = message.ItemInline
	}
	if t, err := decodeMessageTime(w.Time); err != nil {
		return fmt.Errorf("decode message %s: time: %w", out.ItemHash, err)
	} else {
		out.Time = t
	}
	sig, err := signatureText(w.Signature)
	if err != nil {
		return fmt.Errorf("decode message %s: signature: %w", out.ItemHash, err)
	}
	out.Signature = sig
	if len(w.Content) > 0 && string(w.Content) != "null" {
		out.Content = bytes.Clone(w.Content)
	}
	if len(w.Size) > 0 && string(w.Size) != "null" {
		f, err := strconv.ParseFloat(string(w.Size), 64)
		if err != nil {
			return fmt.Errorf("decode message %s: size: %w", out.ItemHash, err)
		}
		out.Size = int64(f)
	}
	if w.Confirmed != nil {
		out.Confirmed = *w.Confirmed
	}
	out.Confirmations = w.Confirmations
	*m = out
	return nil
}

// MarshalJSON writes the envelope's nine fields followed by content, size,
// confirmed and confirmations.
func (m Message) MarshalJSON() ([]byte, error) {
	env, err := m.Message.MarshalJSON()
	if err != nil {
		return nil, err
	}
	b := bytes.NewBuffer(env[:len(env)-1])
	if m.Content != nil {
		b.WriteString(`,"content":`)
		if err := json.Compact(b, m.Content); err != nil {
			return nil, fmt.Errorf("encode message content: %w", err)
		}
	}
	fmt.Fprintf(b, `,"size":%d,"confirmed":%t,"confirmations":`, m.Size, m.Confirmed)
	conf := m.Confirmations
	if conf == nil {
		conf = []Confirmation{}
	}
	c, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	b.Write(c)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// decodeMessageTime reads a message time given as a number (kept with its exact
// text) or as an ISO-8601 string.
func decodeMessageTime(raw json.RawMessage) (message.Time, error) {
	raw = bytes.TrimSpace(raw)
	var t message.Time
	if len(raw) == 0 || string(raw) == "null" {
		return t, nil
	}
	if raw[0] == '"' {
		std, err := parseTimeJSON(raw)
		if err != nil {
			return t, err
		}
		return message.TimeFromSeconds(float64(std.UnixMicro()) / 1e6), nil
	}
	if err := t.UnmarshalJSON(raw); err != nil {
		return t, err
	}
	return t, nil
}

// signatureText reads a signature given as a string, a JSON object (kept as its
// compact text) or null.
func signatureText(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	switch raw[0] {
	case '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case '{':
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			return "", err
		}
		return b.String(), nil
	}
	return "", errors.New("must be a string, an object or null")
}

// Time layouts the API uses: Python's isoformat with an offset, and without one
// (taken as UTC).
var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// parseTimeJSON reads a JSON time: unix seconds as a number, or an ISO-8601 string.
func parseTimeJSON(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
		return parseISOTime(s)
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return time.Time{}, fmt.Errorf("invalid time %q", oneLine(raw, 40))
	}
	return unixFloat(f), nil
}

func parseISOTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		return unixFloat(f), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q", oneLine([]byte(s), 40))
}

func unixFloat(f float64) time.Time {
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
}

// Time is a time in an API answer, given there either as unix seconds or as an
// ISO-8601 string. The zero value means absent.
type Time struct{ time.Time }

// UnmarshalJSON accepts a number, a string or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	v, err := parseTimeJSON(b)
	if err != nil {
		return err
	}
	t.Time = v
	return nil
}

// MarshalJSON writes the time as an RFC 3339 string, or null when zero.
func (t Time) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format(time.RFC3339Nano))
}

// Ref is a POST ref as the API serves it: a string, a {"item_hash": …} object, or
// null. It holds the hash (or free string); "" means none.
type Ref string

// UnmarshalJSON accepts a string, an object with item_hash, or null.
func (r *Ref) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || string(b) == "null":
		*r = ""
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*r = Ref(s)
	case b[0] == '{':
		var o struct {
			ItemHash string `json:"item_hash"`
		}
		if err := json.Unmarshal(b, &o); err != nil {
			return err
		}
		*r = Ref(o.ItemHash)
	default:
		return fmt.Errorf("ref must be a string, an object or null")
	}
	return nil
}

// MessageResult is the answer of GET /api/v0/messages/{hash}: the status and,
// depending on it, the message.
type MessageResult struct {
	Status        message.Status
	ItemHash      string
	ReceptionTime time.Time
	// Message is the message when processed or removing, the skeleton when
	// forgotten or removed, and the message as received (decoded leniently) when
	// rejected; nil when pending or when the rejected JSON is not an object.
	Message *Message
	// Pending lists the queued copies of a pending message.
	Pending []*Message
	// MessageJSON is the "message" field exactly as received.
	MessageJSON json.RawMessage
	// ErrorCode and Details explain a rejection.
	ErrorCode message.ErrorCode
	Details   json.RawMessage
	// ForgottenBy lists the FORGET messages that erased a forgotten message.
	ForgottenBy []string
	// Reason explains a removing or removed message.
	Reason    string
	RemovedAt time.Time
	// Raw is the whole answer.
	Raw json.RawMessage
}

type wireMessageResult struct {
	Status        message.Status    `json:"status"`
	ItemHash      string            `json:"item_hash"`
	ReceptionTime Time              `json:"reception_time"`
	Message       json.RawMessage   `json:"message"`
	Messages      []json.RawMessage `json:"messages"`
	ErrorCode     *int              `json:"error_code"`
	Details       json.RawMessage   `json:"details"`
	ForgottenBy   []string          `json:"forgotten_by"`
	Reason        *string           `json:"reason"`
	RemovedAt     Time              `json:"removed_at"`
}

func decodeMessageResult(body []byte) (*MessageResult, error) {
	var w wireMessageResult
	if err := json.Unmarshal(body, &w); err != nil {
		return nil, err
	}
	if w.Status == "" {
		return nil, errors.New("answer has no status")
	}
	r := &MessageResult{
		Status:        w.Status,
		ItemHash:      w.ItemHash,
		ReceptionTime: w.ReceptionTime.Time,
		ForgottenBy:   w.ForgottenBy,
		RemovedAt:     w.RemovedAt.Time,
		Raw:           bytes.Clone(body),
	}
	if w.ErrorCode != nil {
		r.ErrorCode = message.ErrorCode(*w.ErrorCode)
	}
	if len(w.Details) > 0 && string(w.Details) != "null" {
		r.Details = bytes.Clone(w.Details)
	}
	if w.Reason != nil {
		r.Reason = *w.Reason
	}
	if len(w.Message) > 0 && string(w.Message) != "null" {
		r.MessageJSON = bytes.Clone(w.Message)
		var m Message
		if err := json.Unmarshal(w.Message, &m); err == nil {
			r.Message = &m
		} else if w.Status != message.StatusRejected {
			// A rejected message is kept as received, valid or not.
			return nil, err
		}
	}
	for i, raw := range w.Messages {
		var m Message
		if err := json.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("pending copy %d: %w", i, err)
		}
		r.Pending = append(r.Pending, &m)
	}
	if r.ItemHash == "" && r.Message != nil {
		r.ItemHash = r.Message.ItemHash
	}
	return r, nil
}

// Err reports a message that is not served as processed: nil for processed and
// removing, *RejectedError, *ForgottenError, or *StatusError for pending and
// removed.
func (r *MessageResult) Err() error {
	switch r.Status {
	case message.StatusProcessed, message.StatusRemoving:
		return nil
	case message.StatusRejected:
		return &RejectedError{ItemHash: r.ItemHash, Code: r.ErrorCode, Details: r.Details, StatusCode: 200}
	case message.StatusForgotten:
		return &ForgottenError{ItemHash: r.ItemHash, ForgottenBy: r.ForgottenBy}
	}
	return &StatusError{ItemHash: r.ItemHash, Status: r.Status}
}

// StatusInfo is the answer of GET /api/v0/messages/{hash}/status.
type StatusInfo struct {
	Status        message.Status `json:"status"`
	ItemHash      string         `json:"item_hash"`
	ReceptionTime Time           `json:"reception_time"`
	// Raw is the whole answer.
	Raw json.RawMessage `json:"-"`
}

// Pagination describes the page of a list answer. In cursor mode Page and Total
// are zero, Cursor is true, and NextCursor is nil at the end.
type Pagination struct {
	Page       int
	PerPage    int
	Total      int64
	Item       string
	Cursor     bool
	NextCursor *string
}

type wirePagination struct {
	Page       *int            `json:"pagination_page"`
	PerPage    *int            `json:"pagination_per_page"`
	Total      *int64          `json:"pagination_total"`
	Item       string          `json:"pagination_item"`
	NextCursor json.RawMessage `json:"next_cursor"`
}

func (w *wirePagination) pagination() Pagination {
	var p Pagination
	if w.Page != nil {
		p.Page = *w.Page
	}
	if w.PerPage != nil {
		p.PerPage = *w.PerPage
	}
	if w.Total != nil {
		p.Total = *w.Total
	}
	p.Item = w.Item
	if w.NextCursor != nil {
		p.Cursor = true
		var s *string
		if json.Unmarshal(w.NextCursor, &s) == nil && s != nil && *s != "" {
			p.NextCursor = s
		}
	}
	return p
}

// MessageList is a page of GET /api/v0/messages.json.
type MessageList struct {
	Messages []*Message
	Pagination
	// Raw is the whole answer.
	Raw json.RawMessage
}

// Post is a post in the v0 (legacy) shape of GET /api/v0/posts.json: the original
// with its latest amend merged in.
type Post struct {
	// ItemHash is the latest version's hash (the latest amend, or the original).
	ItemHash  string `json:"item_hash"`
	Chain     string `json:"chain"`
	Sender    string `json:"sender"`
	Address   string `json:"address"`
	Channel   string `json:"channel"`
	Signature string `json:"-"`
	// Type is the post type of the latest version ("amend" once amended);
	// OriginalType is the original's.
	Type         string `json:"type"`
	OriginalType string `json:"original_type"`
	// OriginalItemHash (and Hash) are the original's hash.
	OriginalItemHash  string `json:"original_item_hash"`
	OriginalSignature string `json:"-"`
	Hash              string `json:"hash"`
	Ref               Ref    `json:"ref"`
	// Content is the inner content of the latest version.
	Content       json.RawMessage `json:"content"`
	ItemContent   string          `json:"item_content"`
	ItemType      string          `json:"item_type"`
	Size          int64           `json:"size"`
	Time          Time            `json:"time"`
	Confirmed     bool            `json:"confirmed"`
	Confirmations []Confirmation  `json:"confirmations"`
	// Raw is the object exactly as received.
	Raw json.RawMessage `json:"-"`
}

// UnmarshalJSON decodes a v0 post, accepting object signatures.
func (p *Post) UnmarshalJSON(b []byte) error {
	type plain Post
	var w struct {
		plain
		Signature         json.RawMessage `json:"signature"`
		OriginalSignature json.RawMessage `json:"original_signature"`
		Size              json.RawMessage `json:"size"`
		ItemContent       *string         `json:"item_content"`
		Channel           *string         `json:"channel"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("decode post: %w", err)
	}
	*p = Post(w.plain)
	p.Raw = bytes.Clone(b)
	var err error
	if p.Signature, err = signatureText(w.Signature); err != nil {
		return fmt.Errorf("decode post: signature: %w", err)
	}
	if p.OriginalSignature, err = signatureText(w.OriginalSignature); err != nil {
		return fmt.Errorf("decode post: original_signature: %w", err)
	}
	if len(w.Size) > 0 && string(w.Size) != "null" {
		f, err := strconv.ParseFloat(string(w.Size), 64)
		if err != nil {
			return fmt.Errorf("decode post: size: %w", err)
		}
		p.Size = int64(f)
	}
	if w.ItemContent != nil {
		p.ItemContent = *w.ItemContent
	}
	if w.Channel != nil {
		p.Channel = *w.Channel
	}
	return nil
}

// PostList is a page of GET /api/v0/posts.json.
type PostList struct {
	Posts []*Post
	Pagination
	Raw json.RawMessage
}

// PostV1 is a post in the shape of GET /api/v1/posts.json.
type PostV1 struct {
	ItemHash         string          `json:"item_hash"`
	Content          json.RawMessage `json:"content"`
	OriginalItemHash string          `json:"original_item_hash"`
	OriginalType     string          `json:"original_type"`
	Address          string          `json:"address"`
	Ref              Ref             `json:"ref"`
	Channel          string          `json:"channel"`
	Created          Time            `json:"created"`
	LastUpdated      Time            `json:"last_updated"`
}

// PostListV1 is a page of GET /api/v1/posts.json.
type PostListV1 struct {
	Posts []*PostV1
	Pagination
	Raw json.RawMessage
}

// Aggregates is the answer of GET /api/v0/aggregates/{address}.json.
type Aggregates struct {
	Address string
	// Data maps each key to its merged content.
	Data map[string]json.RawMessage
	// Info is filled when asked for (AggregateQuery.WithInfo).
	Info map[string]AggregateInfo
	Raw  json.RawMessage
}

// AggregateInfo describes one key of an address's aggregates. The two hashes are
// reported under the names the node uses (which pyaleph swaps, Appendix A.13).
type AggregateInfo struct {
	Created            Time   `json:"created"`
	LastUpdated        Time   `json:"last_updated"`
	OriginalItemHash   string `json:"original_item_hash"`
	LastUpdateItemHash string `json:"last_update_item_hash"`
}

// AggregateEntry is one (address, key) aggregate of GET /api/v0/aggregates.
type AggregateEntry struct {
	Address     string          `json:"address"`
	Key         string          `json:"key"`
	Content     json.RawMessage `json:"content"`
	Created     Time            `json:"created"`
	LastUpdated Time            `json:"last_updated"`
}

// AggregateList is a page of GET /api/v0/aggregates.
type AggregateList struct {
	Aggregates []*AggregateEntry
	Pagination
	Raw json.RawMessage
}

// AddressStat counts an address's messages by type
// (GET /api/v0/addresses/stats.json).
type AddressStat struct {
	Messages  int64 `json:"messages"`
	Post      int64 `json:"post"`
	Aggregate int64 `json:"aggregate"`
	Store     int64 `json:"store"`
	Forget    int64 `json:"forget"`
	Program   int64 `json:"program"`
	Instance  int64 `json:"instance"`
}
