package guestapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// PubsubPostType is the post type of every message a program publishes
// through pubsub. It is fixed, as upstream's connector fixes it, so that a
// program cannot make the node's key publish network-significant post types
// (corechan-operation, amend, …).
const PubsubPostType = "POST"

// maxTopicLength bounds the topic; real ones ("ALEPH-TEST") are short.
const maxTopicLength = 256

// PubsubPost is what a program asked to publish.
type PubsubPost struct {
	Topic   string
	Channel string
	Content json.RawMessage // the post's content.content; nil when absent
}

// ParsePubsub decodes a pubsub body: {"topic": str, "data": str}, where data
// is the JSON text of a message whose item_content holds {"content": …} and
// whose channel is kept. Upstream (guest_api + vm_connector) keeps exactly
// these three things and re-creates the message under the node's key.
func ParsePubsub(body []byte) (*PubsubPost, error) {
	var req struct {
		Topic *string `json:"topic"`
		Data  *string `json:"data"`
	}
	if err := strictDecode(body, &req); err != nil {
		return nil, fmt.Errorf("body must be a JSON object with topic and data: %w", err)
	}
	if req.Topic == nil || *req.Topic == "" || len(*req.Topic) > maxTopicLength {
		return nil, fmt.Errorf("topic must be a string of 1 to %d bytes", maxTopicLength)
	}
	if req.Data == nil {
		return nil, errors.New("data must be a string holding the message JSON")
	}
	var msg struct {
		ItemContent *string `json:"item_content"`
		Channel     *string `json:"channel"`
	}
	if err := strictDecode([]byte(*req.Data), &msg); err != nil {
		return nil, fmt.Errorf("data must be the JSON text of a message: %w", err)
	}
	if msg.ItemContent == nil {
		return nil, errors.New("data.item_content must be a string (an inline message)")
	}
	var content struct {
		Content json.RawMessage `json:"content"`
	}
	if err := strictDecode([]byte(*msg.ItemContent), &content); err != nil {
		return nil, fmt.Errorf("data.item_content must be a JSON object: %w", err)
	}
	p := &PubsubPost{Topic: *req.Topic}
	if msg.Channel != nil {
		p.Channel = *msg.Channel
	}
	if len(content.Content) > 0 && string(content.Content) != "null" {
		p.Content = content.Content
	}
	return p, nil
}

// strictDecode decodes one JSON value and refuses trailing data.
func strictDecode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		return errors.New("invalid JSON or wrong field types")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// BuildPubsubPost signs p as a POST of type PubsubPostType whose address is
// the node's (so that the CCN accepts it without a delegation); the program's
// content and channel are kept. Content too large to inline is refused: the
// guest API uploads nothing.
func BuildPubsubPost(ctx context.Context, p *PubsubPost, b *message.Builder) (*message.Message, error) {
	c := &message.PostContent{Type: PubsubPostType, Content: p.Content}
	built, err := b.Build(ctx, message.TypePost, c, p.Channel)
	if err != nil {
		return nil, err
	}
	if built.Message.ItemType != message.ItemInline {
		return nil, fmt.Errorf("post content is %d bytes, too large to inline", len(built.Content))
	}
	return built.Message, nil
}

func (h *Handler) pubsub(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, h.cfg.MaxPubsubBody)
	if !ok {
		return
	}
	p, err := ParsePubsub(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if h.cfg.Publisher == nil {
		writeError(w, http.StatusServiceUnavailable, "publishing is not available on this node")
		return
	}
	b := &message.Builder{Signer: h.cfg.Signer, Now: h.cfg.Now}
	m, err := BuildPubsubPost(r.Context(), p, b)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	raw, err := m.MarshalJSON()
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.ProxyTimeout)
	defer cancel()
	if err := h.cfg.Publisher.Submit(ctx, raw); err != nil {
		h.log.Warn("guest api publish failed", "item_hash", m.ItemHash, "err", err)
		writeError(w, http.StatusBadGateway, fmt.Sprintf("the ccn did not take the message: %v", err))
		return
	}
	h.log.Info("guest api published a post", "item_hash", m.ItemHash, "topic", p.Topic, "channel", p.Channel)
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "item_hash": m.ItemHash})
}

// ClientPublisher submits through a CCN client (POST /api/v0/messages).
type ClientPublisher struct {
	Client *client.Client
	// Sync waits for the CCN to process the message, so that a rejection
	// reaches the program as a 502.
	Sync bool
}

// Submit parses raw and submits it.
func (p ClientPublisher) Submit(ctx context.Context, raw []byte) error {
	m, err := message.Parse(raw)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if _, err := p.Client.SubmitMessage(ctx, m, p.Sync); err != nil {
		return fmt.Errorf("publish %s: %w", m.ItemHash, err)
	}
	return nil
}
