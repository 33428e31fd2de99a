package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"net/http"
	"strings"
)

// checkHash refuses an empty or path-breaking item hash before any request.
func checkHash(h string) error {
	if h == "" {
		return errors.New("empty item hash")
	}
	if strings.ContainsAny(h, "/?#% \t\r\n") {
		return fmt.Errorf("invalid item hash %q", oneLine([]byte(h), 80))
	}
	return nil
}

// GetMessage returns what the node knows of a message, whatever its status
// (GET /api/v0/messages/{hash}). An unknown hash gives an error matching
// ErrNotFound. Use MessageResult.Err to turn a status other than processed into
// a typed error (*ForgottenError, *RejectedError, *StatusError).
func (c *Client) GetMessage(ctx context.Context, itemHash string) (*MessageResult, error) {
	if err := checkHash(itemHash); err != nil {
		return nil, fmt.Errorf("get message: %w", err)
	}
	r, err := c.do(ctx, http.MethodGet, "/api/v0/messages/"+pathEscape(itemHash), "", nil)
	if err != nil {
		return nil, err
	}
	// pyaleph answers 410 for a removed message without a snapshot; the body may
	// still carry a status.
	if r.status != http.StatusOK && r.status != http.StatusGone {
		return nil, r.apiError()
	}
	res, err := decodeMessageResult(r.body)
	if err != nil {
		if r.status == http.StatusGone {
			return nil, r.apiError()
		}
		return nil, fmt.Errorf("GET %s: decode answer: %w", r.path, err)
	}
	return res, nil
}

// GetProcessedMessage returns a processed (or removing) message, and a typed
// error for any other status.
func (c *Client) GetProcessedMessage(ctx context.Context, itemHash string) (*Message, error) {
	res, err := c.GetMessage(ctx, itemHash)
	if err != nil {
		return nil, err
	}
	if err := res.Err(); err != nil {
		return nil, err
	}
	if res.Message == nil {
		return nil, fmt.Errorf("get message %s: answer has no message", itemHash)
	}
	return res.Message, nil
}

// MessageStatus returns a message's status (GET /api/v0/messages/{hash}/status).
func (c *Client) MessageStatus(ctx context.Context, itemHash string) (*StatusInfo, error) {
	if err := checkHash(itemHash); err != nil {
		return nil, fmt.Errorf("message status: %w", err)
	}
	var s StatusInfo
	body, err := c.getJSON(ctx, "/api/v0/messages/"+pathEscape(itemHash)+"/status", "", &s)
	if err != nil {
		return nil, err
	}
	s.Raw = body
	if s.Status == "" {
		return nil, fmt.Errorf("message status %s: answer has no status", itemHash)
	}
	return &s, nil
}

// MessageContent returns the content of a processed message (for a POST, its
// inner content) (GET /api/v0/messages/{hash}/content).
func (c *Client) MessageContent(ctx context.Context, itemHash string) (json.RawMessage, error) {
	if err := checkHash(itemHash); err != nil {
		return nil, fmt.Errorf("message content: %w", err)
	}
	var v json.RawMessage
	if _, err := c.getJSON(ctx, "/api/v0/messages/"+pathEscape(itemHash)+"/content", "", &v); err != nil {
		return nil, err
	}
	return v, nil
}

// ListMessages returns one page of messages (GET /api/v0/messages.json), in page
// mode or, with p.Cursor set, in cursor mode.
func (c *Client) ListMessages(ctx context.Context, f MessageFilter, p Page) (*MessageList, error) {
	var w struct {
		Messages []*Message `json:"messages"`
		wirePagination
	}
	body, err := c.getJSON(ctx, "/api/v0/messages.json", f.Query(p), &w)
	if err != nil {
		return nil, err
	}
	if w.Messages == nil {
		w.Messages = []*Message{}
	}
	return &MessageList{Messages: w.Messages, Pagination: w.pagination(), Raw: body}, nil
}

// AllMessages iterates over every message the filter selects, fetching pages of
// pageSize (0: 200) as it goes. It uses cursor mode, and falls back to page mode
// when the node answers without a cursor. The iteration stops at the first error,
// which it yields.
func (c *Client) AllMessages(ctx context.Context, f MessageFilter, pageSize int) iter.Seq2[*Message, error] {
	if pageSize <= 0 {
		pageSize = 200
	}
	return func(yield func(*Message, error) bool) {
		p := FirstCursor(pageSize)
		for {
			if err := ctx.Err(); err != nil {
				yield(nil, err)
				return
			}
			page, err := c.ListMessages(ctx, f, p)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, m := range page.Messages {
				if !yield(m, nil) {
					return
				}
			}
			switch {
			case page.Cursor:
				if page.NextCursor == nil || len(page.Messages) == 0 {
					return
				}
				if p.Cursor != nil && *p.Cursor == *page.NextCursor {
					yield(nil, fmt.Errorf("list messages: the node returned the same cursor again"))
					return
				}
				p.Cursor = page.NextCursor
			default:
				// No cursor support: walk pages until a short one.
				if p.Cursor != nil {
					p = Page{Number: 1, Size: pageSize}
				}
				if len(page.Messages) < pageSize {
					return
				}
				p.Number++
			}
		}
	}
}

// GetPosts returns one page of posts in the v0 shape (GET /api/v0/posts.json).
func (c *Client) GetPosts(ctx context.Context, f PostFilter, p Page) (*PostList, error) {
	var w struct {
		Posts []*Post `json:"posts"`
		wirePagination
	}
	body, err := c.getJSON(ctx, "/api/v0/posts.json", f.Query(p), &w)
	if err != nil {
		return nil, err
	}
	if w.Posts == nil {
		w.Posts = []*Post{}
	}
	return &PostList{Posts: w.Posts, Pagination: w.pagination(), Raw: body}, nil
}

// GetPostsV1 returns one page of posts in the v1 shape (GET /api/v1/posts.json).
func (c *Client) GetPostsV1(ctx context.Context, f PostFilter, p Page) (*PostListV1, error) {
	var w struct {
		Posts []*PostV1 `json:"posts"`
		wirePagination
	}
	body, err := c.getJSON(ctx, "/api/v1/posts.json", f.Query(p), &w)
	if err != nil {
		return nil, err
	}
	if w.Posts == nil {
		w.Posts = []*PostV1{}
	}
	return &PostListV1{Posts: w.Posts, Pagination: w.pagination(), Raw: body}, nil
}

// GetPost returns the post whose original hash is h, with its latest amend merged
// in; an error matching ErrNotFound when there is none.
func (c *Client) GetPost(ctx context.Context, h string) (*Post, error) {
	if err := checkHash(h); err != nil {
		return nil, fmt.Errorf("get post: %w", err)
	}
	list, err := c.GetPosts(ctx, PostFilter{Hashes: []string{h}}, Page{})
	if err != nil {
		return nil, err
	}
	for _, p := range list.Posts {
		if p.OriginalItemHash == h || p.Hash == h || p.ItemHash == h {
			return p, nil
		}
	}
	return nil, fmt.Errorf("get post %s: %w", h, ErrNotFound)
}

// GetAggregates returns an address's aggregates (GET
// /api/v0/aggregates/{address}.json). An address without aggregates gives an
// error matching ErrNotFound.
func (c *Client) GetAggregates(ctx context.Context, address string, q AggregateQuery) (*Aggregates, error) {
	if address == "" || strings.ContainsAny(address, "/?#") {
		return nil, fmt.Errorf("get aggregates: invalid address %q", oneLine([]byte(address), 80))
	}
	var w struct {
		Address string                     `json:"address"`
		Data    map[string]json.RawMessage `json:"data"`
		Info    map[string]AggregateInfo   `json:"info"`
	}
	body, err := c.getJSON(ctx, "/api/v0/aggregates/"+pathEscape(address)+".json", q.query(), &w)
	if err != nil {
		return nil, err
	}
	if w.Data == nil {
		w.Data = map[string]json.RawMessage{}
	}
	return &Aggregates{Address: w.Address, Data: w.Data, Info: w.Info, Raw: body}, nil
}

// GetAggregate returns the merged content of one aggregate key of an address; an
// error matching ErrNotFound when the key does not exist.
func (c *Client) GetAggregate(ctx context.Context, address, key string) (json.RawMessage, error) {
	a, err := c.GetAggregates(ctx, address, AggregateQuery{Keys: []string{key}})
	if err != nil {
		return nil, err
	}
	v, ok := a.Data[key]
	if !ok || len(bytes.TrimSpace(v)) == 0 || string(v) == "null" {
		return nil, fmt.Errorf("aggregate %s of %s: %w", key, address, ErrNotFound)
	}
	return v, nil
}

// ListAggregates returns one page of aggregates across addresses (GET
// /api/v0/aggregates).
func (c *Client) ListAggregates(ctx context.Context, f AggregateFilter, p Page) (*AggregateList, error) {
	var w struct {
		Aggregates []*AggregateEntry `json:"aggregates"`
		wirePagination
	}
	body, err := c.getJSON(ctx, "/api/v0/aggregates", f.Query(p), &w)
	if err != nil {
		return nil, err
	}
	if w.Aggregates == nil {
		w.Aggregates = []*AggregateEntry{}
	}
	return &AggregateList{Aggregates: w.Aggregates, Pagination: w.pagination(), Raw: body}, nil
}

// AddressStats counts the messages of each address by type (GET
// /api/v0/addresses/stats.json). Addresses without messages may be absent.
func (c *Client) AddressStats(ctx context.Context, addresses []string) (map[string]AddressStat, error) {
	var q query
	q.repeated("addresses[]", addresses)
	var w struct {
		Data map[string]AddressStat `json:"data"`
	}
	if _, err := c.getJSON(ctx, "/api/v0/addresses/stats.json", q.String(), &w); err != nil {
		return nil, err
	}
	if w.Data == nil {
		w.Data = map[string]AddressStat{}
	}
	return w.Data, nil
}

// AddressPostTypes lists the post types an address has used (GET
// /api/v0/addresses/{address}/post_types).
func (c *Client) AddressPostTypes(ctx context.Context, address string) ([]string, error) {
	var w struct {
		PostTypes []string `json:"post_types"`
	}
	if _, err := c.getJSON(ctx, "/api/v0/addresses/"+pathEscape(address)+"/post_types", "", &w); err != nil {
		return nil, err
	}
	if w.PostTypes == nil {
		w.PostTypes = []string{}
	}
	return w.PostTypes, nil
}

// AddressChannels lists the channels an address has posted in (GET
// /api/v0/addresses/{address}/channels).
func (c *Client) AddressChannels(ctx context.Context, address string) ([]string, error) {
	var w struct {
		Channels []string `json:"channels"`
	}
	if _, err := c.getJSON(ctx, "/api/v0/addresses/"+pathEscape(address)+"/channels", "", &w); err != nil {
		return nil, err
	}
	if w.Channels == nil {
		w.Channels = []string{}
	}
	return w.Channels, nil
}
