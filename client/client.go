// Package client is the Go SDK for a core channel node's HTTP API: typed calls for
// the read endpoints (messages, posts, aggregates, statistics, channels, version),
// the messages websocket, write methods that build, sign and broadcast POST,
// AGGREGATE, STORE and FORGET messages with message.Builder and a configured
// signer, and file calls: UploadFile (the file and its signed STORE in one
// streaming request), DownloadFile (streaming, resumable with Range, checked
// against the hash), PinFile, and the storage lookups (ccn-protocol.md §5.6).
//
// The requests are those of the official SDKs (clients.md §2, ts-sdk-http-calls.md),
// so a Client works against go-aleph and pyaleph nodes alike. Every call takes a
// context; without one that ends, the default HTTP client's timeout still bounds
// each request (for a file transfer, each stall), so no call hangs forever.
//
// Errors are typed: *APIError for an unexpected HTTP answer (errors.Is(err,
// ErrNotFound) for a 404), *RejectedError when the node rejects a message (it
// carries the protocol error code, and message.CodeOf works on it), and
// *ForgottenError for a message that was forgotten.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// DefaultTimeout bounds each HTTP request of a Client built without
// WithHTTPClient. It is longer than a node's wait for a sync submission (30 s).
const DefaultTimeout = 60 * time.Second

// DefaultUserAgent is sent unless WithUserAgent replaces it.
const DefaultUserAgent = "go-aleph-client/1"

// maxResponseSize bounds the bytes read from one HTTP answer.
const maxResponseSize = 64 << 20

// Client talks to one node. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[:port][/prefix], no trailing slash
	http      *http.Client
	signer    message.Signer
	now       func() time.Time
	userAgent string
	ascii     bool
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (its Timeout bounds each request).
func WithHTTPClient(h *http.Client) Option { return func(c *Client) { c.http = h } }

// WithSigner sets the account that signs the write methods' messages.
func WithSigner(s message.Signer) Option { return func(c *Client) { c.signer = s } }

// WithClock sets the clock that stamps new messages (time.Now by default).
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithASCIIContent makes written item_content escape non-ASCII characters, as the
// Python SDK does, instead of writing raw UTF-8 as the TypeScript SDK does.
func WithASCIIContent(ascii bool) Option { return func(c *Client) { c.ascii = ascii } }

// New returns a client for the node at baseURL, such as "http://127.0.0.1:4024".
// Trailing slashes are ignored.
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(strings.TrimSpace(baseURL), "/"),
		http:      &http.Client{Timeout: DefaultTimeout},
		now:       time.Now,
		userAgent: DefaultUserAgent,
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: DefaultTimeout}
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// BaseURL returns the node URL the client talks to.
func (c *Client) BaseURL() string { return c.base }

// Signer returns the configured signer, or nil.
func (c *Client) Signer() message.Signer { return c.signer }

// ErrNotFound matches (with errors.Is) an *APIError whose HTTP status is 404.
var ErrNotFound = errors.New("not found")

// ErrTooLarge matches (with errors.Is) an *APIError whose HTTP status is 413:
// an upload over the node's size limit.
var ErrTooLarge = errors.New("too large")

// ErrNoSigner is returned by write methods when the client has no signer.
var ErrNoSigner = errors.New("no signer configured")

// APIError is an HTTP answer the call did not expect.
type APIError struct {
	Method     string
	Path       string // the request path and query
	StatusCode int
	// Body is the start of the answer's body (at most 4 KiB).
	Body []byte
}

// Error names the request, the status and a one-line excerpt of the body.
func (e *APIError) Error() string {
	msg := fmt.Sprintf("%s %s: http %d", e.Method, e.Path, e.StatusCode)
	if b := oneLine(e.Body, 200); b != "" {
		msg += ": " + b
	}
	return msg
}

// Is makes errors.Is(err, ErrNotFound) true for a 404, and errors.Is(err,
// ErrTooLarge) for a 413.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrTooLarge:
		return e.StatusCode == http.StatusRequestEntityTooLarge
	}
	return false
}

// RejectedError is a message the node rejected, with the protocol error code.
type RejectedError struct {
	ItemHash string
	Code     message.ErrorCode
	// Reason is the node's explanation, when it gave one.
	Reason string
	// Details is the node's JSON context for the rejection, or nil.
	Details json.RawMessage
	// StatusCode is the HTTP status of the answer that reported it (422 when
	// submitting, 200 when read back with GetMessage).
	StatusCode int
}

// Error names the message, the code and the reason.
func (e *RejectedError) Error() string {
	msg := "message rejected"
	if e.ItemHash != "" {
		msg = "message " + e.ItemHash + " rejected"
	}
	msg += fmt.Sprintf(": %s (%d)", e.Code, int(e.Code))
	if e.Reason != "" {
		msg += ": " + e.Reason
	}
	if d := oneLine(e.Details, 200); d != "" && d != "null" {
		msg += ": " + d
	}
	return msg
}

// Unwrap exposes the code as a *message.Error, so that message.CodeOf(err) works.
func (e *RejectedError) Unwrap() error {
	return &message.Error{Code: e.Code, Reason: e.Reason}
}

// ForgottenError reports that a message was forgotten.
type ForgottenError struct {
	ItemHash    string
	ForgottenBy []string
}

// Error names the message and the FORGET messages that erased it.
func (e *ForgottenError) Error() string {
	if len(e.ForgottenBy) == 0 {
		return "message " + e.ItemHash + " has been forgotten"
	}
	return "message " + e.ItemHash + " has been forgotten by " + strings.Join(e.ForgottenBy, ", ")
}

// StatusError reports a message that is not (or no longer) processed: pending,
// removing or removed.
type StatusError struct {
	ItemHash string
	Status   message.Status
}

// Error names the message and its status.
func (e *StatusError) Error() string {
	return "message " + e.ItemHash + " is " + string(e.Status)
}

// oneLine returns b as one line of at most n bytes (at a character boundary).
func oneLine(b []byte, n int) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		cut := n
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// response is an HTTP answer read in full.
type response struct {
	status int
	body   []byte
	path   string
	method string
}

func (r *response) apiError() *APIError {
	body := r.body
	if len(body) > 4096 {
		body = body[:4096]
	}
	return &APIError{Method: r.method, Path: r.path, StatusCode: r.status, Body: bytes.Clone(body)}
}

// do sends a request and reads the answer, whatever its status.
func (c *Client) do(ctx context.Context, method, path string, query string, body any) (*response, error) {
	target := c.base + path
	shown := path
	if query != "" {
		target += "?" + query
		shown += "?" + query
	}
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case []byte:
			rd = bytes.NewReader(b)
		default:
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(body); err != nil {
				return nil, fmt.Errorf("%s %s: encode body: %w", method, path, err)
			}
			rd = &buf
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, shown, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if body != nil {
		if _, raw := body.([]byte); raw {
			req.Header.Set("Content-Type", "application/octet-stream")
		} else {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, shown, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, shown, err)
	}
	if len(data) > maxResponseSize {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", method, shown, maxResponseSize)
	}
	return &response{status: resp.StatusCode, body: data, path: shown, method: method}, nil
}

// unwrapURLError drops *url.Error's repetition of the method and URL, which the
// caller's message already names.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// getJSON GETs path and decodes a 200 answer into v; other statuses are *APIError.
// It returns the raw body.
func (c *Client) getJSON(ctx context.Context, path, query string, v any) ([]byte, error) {
	r, err := c.do(ctx, http.MethodGet, path, query, nil)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, r.apiError()
	}
	if err := json.Unmarshal(r.body, v); err != nil {
		return nil, fmt.Errorf("GET %s: decode answer: %w", r.path, err)
	}
	return r.body, nil
}

// Version returns the node's software version (GET /api/v0/version).
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	if _, err := c.getJSON(ctx, "/api/v0/version", "", &v); err != nil {
		return "", err
	}
	return v.Version, nil
}

// Channels lists the channels of the node's processed messages
// (GET /api/v0/channels/list.json).
func (c *Client) Channels(ctx context.Context) ([]string, error) {
	var v struct {
		Channels []string `json:"channels"`
	}
	if _, err := c.getJSON(ctx, "/api/v0/channels/list.json", "", &v); err != nil {
		return nil, err
	}
	if v.Channels == nil {
		v.Channels = []string{}
	}
	return v.Channels, nil
}

// pathEscape escapes one path segment.
func pathEscape(s string) string { return url.PathEscape(s) }
