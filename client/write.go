package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/pyjson"
)

// PublicationStatus is how a node reports the broadcast of a submitted message.
type PublicationStatus struct {
	// Status is "success", "warning" or "error".
	Status string `json:"status"`
	// Failed names the channels the broadcast failed on ("p2p", "ipfs").
	Failed []string `json:"failed"`
}

// SubmitResult is what a node answered to a submission.
type SubmitResult struct {
	ItemHash string
	// Status is processed (200), pending (202: queued, or still queued when a sync
	// wait timed out), or forgotten or removed (410) for a copy of such a message.
	Status            message.Status
	HTTPStatus        int
	PublicationStatus PublicationStatus
	// Raw is the answer's body.
	Raw json.RawMessage
}

// SubmitMessage posts a signed message to POST /api/v0/messages. With sync the
// node answers once it has processed or rejected the message (or its wait timed
// out). A rejection is a *RejectedError carrying the protocol error code.
func (c *Client) SubmitMessage(ctx context.Context, m *message.Message, sync bool) (*SubmitResult, error) {
	if m == nil {
		return nil, errors.New("submit message: nil message")
	}
	body := struct {
		Sync    bool             `json:"sync"`
		Message *message.Message `json:"message"`
	}{sync, m}
	r, err := c.do(ctx, http.MethodPost, "/api/v0/messages", "", body)
	if err != nil {
		return nil, err
	}
	res := &SubmitResult{ItemHash: m.ItemHash, HTTPStatus: r.status, Raw: r.body}
	var w struct {
		PublicationStatus *PublicationStatus `json:"publication_status"`
		MessageStatus     message.Status     `json:"message_status"`
	}
	decoded := json.Unmarshal(r.body, &w) == nil
	if decoded && w.PublicationStatus != nil {
		res.PublicationStatus = *w.PublicationStatus
	}
	switch r.status {
	case http.StatusOK, http.StatusAccepted, http.StatusGone:
		res.Status = w.MessageStatus
		if res.Status == "" {
			res.Status = map[int]message.Status{
				http.StatusOK: message.StatusProcessed, http.StatusAccepted: message.StatusPending, http.StatusGone: message.StatusForgotten,
			}[r.status]
		}
		if res.Status == message.StatusRejected {
			return res, c.rejection(ctx, m.ItemHash, r)
		}
		return res, nil
	case http.StatusUnprocessableEntity:
		return res, c.rejection(ctx, m.ItemHash, r)
	}
	return res, r.apiError()
}

// rejection builds the *RejectedError of a rejected submission from the answer,
// and, when the answer does not carry the error code, from the node's record of
// the message.
func (c *Client) rejection(ctx context.Context, itemHash string, r *response) error {
	rej := parseRejection(r.body)
	rej.ItemHash, rej.StatusCode = itemHash, r.status
	if rej.codeKnown {
		return rej.RejectedError
	}
	// The answer names no code (pyaleph sends only a class name): the node may
	// have recorded the rejection with its code.
	if res, err := c.GetMessage(ctx, itemHash); err == nil && res.Status == message.StatusRejected {
		rej.Code, rej.Details = res.ErrorCode, res.Details
	}
	return rej.RejectedError
}

type parsedRejection struct {
	*RejectedError
	codeKnown bool
}

// parseRejection reads a 422 answer: a JSON object with error_code, details and a
// reason; a JSON list of validation errors; or plain text (an exception name).
func parseRejection(body []byte) parsedRejection {
	rej := parsedRejection{RejectedError: &RejectedError{Code: message.CodeInvalidFormat}}
	text := strings.TrimSpace(string(body))
	var obj map[string]json.RawMessage
	var list []json.RawMessage
	switch {
	case json.Unmarshal(body, &obj) == nil && obj != nil:
		if raw, ok := obj["error_code"]; ok {
			var code int
			if json.Unmarshal(raw, &code) == nil {
				rej.Code, rej.codeKnown = message.ErrorCode(code), true
			}
		}
		if d, ok := obj["details"]; ok && string(d) != "null" {
			rej.Details = d
		}
		for _, k := range []string{"reason", "error", "detail", "message"} {
			var s string
			if raw, ok := obj[k]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
				rej.Reason = s
				break
			}
		}
	case json.Unmarshal(body, &list) == nil:
		var msgs []string
		for _, item := range list {
			var e struct {
				Msg string `json:"msg"`
				Loc []any  `json:"loc"`
			}
			if json.Unmarshal(item, &e) == nil && e.Msg != "" {
				if len(e.Loc) > 0 {
					msgs = append(msgs, fmt.Sprint(e.Loc[len(e.Loc)-1])+": "+e.Msg)
				} else {
					msgs = append(msgs, e.Msg)
				}
			}
		}
		rej.Reason = strings.Join(msgs, "; ")
	default:
		rej.Reason = oneLine([]byte(text), 300)
		// pyaleph answers envelope errors with the exception's class name.
		switch text {
		case "InvalidSignature":
			rej.Code, rej.codeKnown = message.CodeInvalidSignature, true
		case "InvalidMessageFormat", "InvalidMessageException":
			rej.codeKnown = true
		}
	}
	return rej
}

// WriteOptions are common to every write method.
type WriteOptions struct {
	// Channel is the message's channel ("" for none).
	Channel string
	// Address is content.address, the owner the message acts for; "" means the
	// signer's address. Another address needs its authorization (delegation).
	Address string
	// Sync waits for the node to process the message before returning.
	Sync bool
}

// WriteResult is a message the client built, signed and submitted.
type WriteResult struct {
	// Message is the signed envelope as sent.
	Message *message.Message
	// Content is the exact item_content bytes (hashed by item_hash).
	Content json.RawMessage
	SubmitResult
}

// Submit builds a message of type typ around content (its address and time are
// filled in when unset), signs it with the client's signer, and submits it. Content
// of 50,000 characters or more is uploaded to the node's storage first.
func (c *Client) Submit(ctx context.Context, typ message.Type, content message.Content, o WriteOptions) (*WriteResult, error) {
	if c.signer == nil {
		return nil, fmt.Errorf("submit %s: %w", typ, ErrNoSigner)
	}
	if content != nil && o.Address != "" && content.Base().Address == "" {
		content.Base().Address = o.Address
	}
	b := message.Builder{Signer: c.signer, Now: c.now, Uploader: uploader{c}, ASCII: c.ascii}
	built, err := b.Build(ctx, typ, content, o.Channel)
	if err != nil {
		return nil, err
	}
	res, err := c.SubmitMessage(ctx, built.Message, o.Sync)
	out := &WriteResult{Message: built.Message, Content: built.Content}
	if res != nil {
		out.SubmitResult = *res
	}
	if err != nil {
		return out, err
	}
	return out, nil
}

// contentJSON turns a user value into JSON: json.RawMessage and []byte must
// already be JSON; anything else is encoded.
func contentJSON(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case nil:
		return nil, errors.New("content is missing")
	case json.RawMessage:
		return compactJSON(x)
	case []byte:
		return compactJSON(x)
	}
	b, err := pyjson.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode content: %w", err)
	}
	return b, nil
}

func compactJSON(b []byte) (json.RawMessage, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return nil, fmt.Errorf("content is not valid JSON: %w", err)
	}
	if buf.Len() == 0 {
		return nil, errors.New("content is empty")
	}
	return buf.Bytes(), nil
}

// CreatePost posts content (any JSON value, or a json.RawMessage) as a POST of
// postType; ref, when not "", refers to another message or free string.
func (c *Client) CreatePost(ctx context.Context, postType string, content any, ref string, o WriteOptions) (*WriteResult, error) {
	if strings.TrimSpace(postType) == "" {
		return nil, errors.New("create post: empty post type")
	}
	raw, err := contentJSON(content)
	if err != nil {
		return nil, fmt.Errorf("create post: %w", err)
	}
	pc := &message.PostContent{Type: postType, Content: raw}
	if ref != "" {
		pc.Ref = message.RefString(ref)
	}
	return c.Submit(ctx, message.TypePost, pc, o)
}

// AmendPost replaces the content of the post original (a POST of type "amend"
// whose ref is the original's hash).
func (c *Client) AmendPost(ctx context.Context, original string, content any, o WriteOptions) (*WriteResult, error) {
	if !message.IsItemHash(original) {
		return nil, fmt.Errorf("amend post: %q is not an item hash", oneLine([]byte(original), 80))
	}
	return c.CreatePost(ctx, message.AmendType, content, original, o)
}

// CreateAggregate merges content (a JSON object) into the aggregate key of the
// owner: its top-level keys replace the aggregate's.
func (c *Client) CreateAggregate(ctx context.Context, key string, content any, o WriteOptions) (*WriteResult, error) {
	if key == "" {
		return nil, errors.New("create aggregate: empty key")
	}
	raw, err := contentJSON(content)
	if err != nil {
		return nil, fmt.Errorf("create aggregate: %w", err)
	}
	if t := strings.TrimSpace(string(raw)); t == "" || t[0] != '{' {
		return nil, errors.New("create aggregate: content must be a JSON object")
	}
	return c.Submit(ctx, message.TypeAggregate, &message.AggregateContent{Key: message.AggregateKey{Name: key}, Content: raw}, o)
}

// ForgetTargets lists what a FORGET erases.
type ForgetTargets struct {
	// Hashes are item hashes of messages.
	Hashes []string
	// Aggregates are aggregate keys of the owner. aleph-message validates them as
	// item hashes, so only hash-shaped keys can be forgotten this way.
	Aggregates []string
	// Reason is optional.
	Reason string
}

// ErrAggregateKeyNotHash is returned by Forget for an aggregate key that is not
// shaped like an item hash, which every node would reject.
var ErrAggregateKeyNotHash = errors.New("aggregate keys in a FORGET must look like item hashes (aleph-message validates them so)")

// Forget erases messages and aggregates with a FORGET message.
func (c *Client) Forget(ctx context.Context, t ForgetTargets, o WriteOptions) (*WriteResult, error) {
	if len(t.Hashes) == 0 && len(t.Aggregates) == 0 {
		return nil, errors.New("forget: nothing to forget")
	}
	for _, h := range t.Hashes {
		if !message.IsItemHash(h) {
			return nil, fmt.Errorf("forget: %q is not an item hash", oneLine([]byte(h), 80))
		}
	}
	for _, k := range t.Aggregates {
		if !message.IsItemHash(k) {
			return nil, fmt.Errorf("forget aggregate %q: %w", oneLine([]byte(k), 80), ErrAggregateKeyNotHash)
		}
	}
	fc := &message.ForgetContent{Hashes: t.Hashes, Aggregates: t.Aggregates}
	if fc.Hashes == nil {
		fc.Hashes = []string{}
	}
	if fc.Aggregates == nil {
		fc.Aggregates = []string{}
	}
	if t.Reason != "" {
		r := t.Reason
		fc.Reason = &r
	}
	return c.Submit(ctx, message.TypeForget, fc, o)
}

// uploader stores content too large to inline through the node's storage.
type uploader struct{ c *Client }

// UploadContent uploads the exact bytes with POST /api/v0/storage/add_file, so
// that the node's hash is the sha256 of these bytes (add_json would re-serialize
// them, Appendix A.4).
func (u uploader) UploadContent(ctx context.Context, engine message.ItemType, content []byte) (string, error) {
	if engine != message.ItemStorage {
		return "", fmt.Errorf("upload content: engine %s is not supported", engine)
	}
	r, err := u.c.do(ctx, http.MethodPost, "/api/v0/storage/add_file", "", content)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK {
		return "", r.apiError()
	}
	var w struct {
		Hash string `json:"hash"`
	}
	if err := json.Unmarshal(r.body, &w); err != nil || w.Hash == "" {
		return "", fmt.Errorf("POST %s: answer has no hash", r.path)
	}
	return w.Hash, nil
}
