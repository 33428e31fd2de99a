// Package peerfetch gets files from other core channel nodes over their HTTP
// API: the storage engine (sha256-addressed files, which no IPFS peer has),
// and ipfs files as a fallback to bitswap.
//
// Each peer is asked GET /api/v0/storage/raw/{hash} first: it streams the
// bytes with no size cap and no encoding, and every node that has the JSON
// endpoint has it too (pyaleph and ours). Only when that route fails other
// than with 404 (an old or odd node: 405, 5xx…) is the documented
// node-to-node endpoint GET /api/v0/storage/{hash} used, whose base64 JSON
// (MIME lines, at most 100 MiB on pyaleph) is read whole into memory.
//
// Nothing here is trusted: the files service re-hashes what a peer returns
// (sha256 for the storage engine, a UnixFS re-chunk against the CID for
// ipfs). Source is a files.Fanout, so the service asks the peers one by one
// and a peer that serves wrong bytes is passed over for the next.
//
// The storage endpoints only ever read the local store, so a node that asks
// itself gets a 404, never a recursive fetch; SetSelf skips our own URLs
// anyway.
package peerfetch

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/unixfs"
)

// Defaults.
const (
	// DefaultMaxPeers is how many peers one fetch asks at most.
	DefaultMaxPeers = 16
	// DefaultHeaderTimeout bounds a peer's answer up to its headers.
	DefaultHeaderTimeout = 10 * time.Second
	// DefaultIdleTimeout ends a body that sends nothing for this long.
	DefaultIdleTimeout = 30 * time.Second
	// maxJSONContent bounds the decoded content of the JSON fallback, which
	// is read into memory (pyaleph serves at most 100 MiB there).
	maxJSONContent = 100 << 20
)

// Option adjusts a Source.
type Option func(*Source)

// WithMaxPeers sets how many peers one fetch asks at most (n > 0).
func WithMaxPeers(n int) Option {
	return func(s *Source) {
		if n > 0 {
			s.maxPeers = n
		}
	}
}

// WithTimeouts sets the header and idle timeouts (zero keeps a default).
func WithTimeouts(header, idle time.Duration) Option {
	return func(s *Source) {
		if header > 0 {
			s.headerTimeout = header
		}
		if idle > 0 {
			s.idleTimeout = idle
		}
	}
}

// Source fetches files from peer nodes' HTTP APIs. Its methods are safe for
// concurrent use.
type Source struct {
	peers         func() []string
	hc            *http.Client
	log           *slog.Logger
	maxPeers      int
	headerTimeout time.Duration
	idleTimeout   time.Duration
	noShuffle     bool // tests: ask the peers in the order given

	selfMu sync.RWMutex
	self   map[string]bool
}

// New returns a source over the base URLs peers returns at each fetch (such
// as http://127.0.0.1:4024). A nil client gets one that connects within 1 s
// and has no overall timeout (bodies stream; the source bounds the wait for
// headers and between reads).
func New(peers func() []string, client *http.Client, log *slog.Logger, opts ...Option) *Source {
	if client == nil {
		client = &http.Client{Transport: &http.Transport{
			DialContext:           (&net.Dialer{Timeout: time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: DefaultHeaderTimeout,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		}}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if peers == nil {
		peers = func() []string { return nil }
	}
	s := &Source{peers: peers, hc: client, log: log, maxPeers: DefaultMaxPeers,
		headerTimeout: DefaultHeaderTimeout, idleTimeout: DefaultIdleTimeout}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Name implements files.Source.
func (s *Source) Name() string { return "peers" }

// SetSelf names this node's own base URLs, which fetches skip.
func (s *Source) SetSelf(urls ...string) {
	m := make(map[string]bool, len(urls))
	for _, u := range urls {
		m[normalize(u)] = true
	}
	s.selfMu.Lock()
	s.self = m
	s.selfMu.Unlock()
}

func normalize(u string) string { return strings.TrimRight(strings.TrimSpace(u), "/") }

// order returns the peers to ask: valid http(s) URLs, not ours, each once,
// shuffled, at most maxPeers.
func (s *Source) order() []string {
	s.selfMu.RLock()
	self := s.self
	s.selfMu.RUnlock()
	seen := map[string]bool{}
	var out []string
	for _, p := range s.peers() {
		p = normalize(p)
		if p == "" || seen[p] || self[p] {
			continue
		}
		seen[p] = true
		u, err := url.Parse(p)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			s.log.Debug("skip peer with a bad URL", "url", p)
			continue
		}
		out = append(out, p)
	}
	if !s.noShuffle {
		rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	if len(out) > s.maxPeers {
		out = out[:s.maxPeers]
	}
	return out
}

// Sources implements files.Fanout: one source per peer, in the order to ask
// them.
func (s *Source) Sources(_ context.Context, _ filestore.Engine, _ string) []files.Source {
	peers := s.order()
	out := make([]files.Source, len(peers))
	for i, p := range peers {
		out[i] = peer{s: s, base: p}
	}
	return out
}

// Fetch implements files.Source: the first peer that answers with the file
// wins. It cannot tell bytes that fail their hash; the files service, which
// re-hashes, asks the peers one by one through Sources instead.
func (s *Source) Fetch(ctx context.Context, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	if err := checkHash(engine, hash); err != nil {
		return nil, err
	}
	peers := s.order()
	if len(peers) == 0 {
		return nil, fmt.Errorf("peerfetch %s: no peers: %w", hash, files.ErrUnavailable)
	}
	var errs []error
	for _, p := range peers {
		rc, err := s.fetchFrom(ctx, p, engine, hash, limit)
		if err == nil {
			return rc, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("peerfetch %s: no peer has it: %w", hash, errors.Join(files.ErrUnavailable, errors.Join(errs...)))
}

// peer is one peer as a files.Source.
type peer struct {
	s    *Source
	base string
}

func (p peer) Name() string { return "peer " + p.base }

func (p peer) Fetch(ctx context.Context, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	if err := checkHash(engine, hash); err != nil {
		return nil, err
	}
	return p.s.fetchFrom(ctx, p.base, engine, hash, limit)
}

// checkHash refuses a hash that is not of engine's shape, before it goes
// into a URL.
func checkHash(engine filestore.Engine, hash string) error {
	switch engine {
	case filestore.EngineStorage:
		if !message.IsHexHash(hash) {
			return fmt.Errorf("peerfetch: %w: %q is not a sha256 hex", filestore.ErrInvalidHash, clip(hash))
		}
	case filestore.EngineIPFS:
		if _, err := unixfs.ParseCID(hash); err != nil {
			return fmt.Errorf("peerfetch: %w: %w", filestore.ErrInvalidHash, err)
		}
	default:
		return fmt.Errorf("peerfetch: unknown engine %q", clip(string(engine)))
	}
	return nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// httpError is a peer's unexpected answer.
type httpError struct {
	url    string
	status int
	msg    string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("peerfetch: GET %s: http %d: %s", e.url, e.status, e.msg)
}

// fetchFrom gets hash from one peer: raw first, the JSON endpoint if raw
// fails other than with "not found".
func (s *Source) fetchFrom(ctx context.Context, base string, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	rc, err := s.raw(ctx, base, hash, limit)
	var he *httpError
	if !errors.As(err, &he) || he.status == http.StatusNotFound {
		return rc, err
	}
	s.log.Debug("raw download failed, trying the JSON endpoint", "peer", base, "hash", hash, "err", err)
	rc, jerr := s.json(ctx, base, engine, hash, limit)
	if jerr != nil {
		return nil, fmt.Errorf("%w; %w", err, jerr)
	}
	return rc, nil
}

// get sends a GET and waits for the headers at most headerTimeout. On
// success the caller must call the returned cancel once done with the body.
func (s *Source) get(ctx context.Context, u string) (*http.Response, context.CancelFunc, error) {
	rctx, cancel := context.WithCancel(ctx)
	var slow atomic.Bool
	t := time.AfterFunc(s.headerTimeout, func() { slow.Store(true); cancel() })
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		t.Stop()
		cancel()
		return nil, nil, fmt.Errorf("peerfetch: %w", err)
	}
	resp, err := s.hc.Do(req)
	t.Stop()
	if err != nil {
		cancel()
		if slow.Load() {
			err = fmt.Errorf("no answer within %s", s.headerTimeout)
		}
		// A peer that is down or slow does not have the file, as far as
		// this fetch can tell.
		return nil, nil, fmt.Errorf("peerfetch: GET %s: %w: %w", u, files.ErrUnavailable, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, cancel, nil
	}
	defer cancel()
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	msg := strings.TrimSpace(string(b))
	var je struct{ Error, Message string }
	if json.Unmarshal(b, &je) == nil && (je.Error != "" || je.Message != "") {
		msg = je.Error + je.Message
	}
	herr := &httpError{url: u, status: resp.StatusCode, msg: clip(msg)}
	switch resp.StatusCode {
	case http.StatusNotFound:
		return nil, nil, fmt.Errorf("%w: %w", herr, files.ErrUnavailable)
	case http.StatusRequestEntityTooLarge:
		return nil, nil, fmt.Errorf("%w: %w", herr, filestore.ErrTooLarge)
	}
	return nil, nil, herr
}

// raw streams GET {base}/api/v0/storage/raw/{hash}.
func (s *Source) raw(ctx context.Context, base, hash string, limit int64) (io.ReadCloser, error) {
	u := base + "/api/v0/storage/raw/" + url.PathEscape(hash)
	resp, cancel, err := s.get(ctx, u)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (io.ReadCloser, error) {
		resp.Body.Close()
		cancel()
		return nil, err
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "application/x-tar") {
		return fail(fmt.Errorf("peerfetch: GET %s: a directory (tar), not a file: %w", u, filestore.ErrIsDir))
	}
	if limit > 0 && resp.ContentLength > limit {
		return fail(fmt.Errorf("peerfetch: GET %s: %d bytes: %w", u, resp.ContentLength, &filestore.TooLargeError{Limit: limit}))
	}
	b := &body{rc: resp.Body, cancel: cancel, url: u, idle: s.idleTimeout, left: -1}
	if limit > 0 {
		b.left = limit + 1 // one more, so that the reader sees the overflow
	}
	b.timer = time.AfterFunc(s.idleTimeout, func() { b.stalled.Store(true); cancel() })
	return b, nil
}

// body is a streaming answer: it ends the request when it sends nothing for
// idle, and reads at most left bytes (< 0: no bound).
type body struct {
	rc      io.ReadCloser
	cancel  context.CancelFunc
	url     string
	idle    time.Duration
	timer   *time.Timer
	stalled atomic.Bool
	left    int64
}

func (b *body) Read(p []byte) (int, error) {
	if b.left == 0 {
		return 0, io.EOF
	}
	if b.left > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.timer.Reset(b.idle)
	n, err := b.rc.Read(p)
	if b.left > 0 {
		b.left -= int64(n)
	}
	if err != nil && err != io.EOF && b.stalled.Load() {
		err = fmt.Errorf("peerfetch: GET %s: nothing received for %s: %w", b.url, b.idle, err)
	}
	return n, err
}

func (b *body) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}

// storageAnswer is the JSON of GET /api/v0/storage/{hash}.
type storageAnswer struct {
	Status  string `json:"status"`
	Hash    string `json:"hash"`
	Engine  string `json:"engine"`
	Content string `json:"content"`
}

// json reads GET {base}/api/v0/storage/{hash} whole and decodes its MIME
// base64 content.
func (s *Source) json(ctx context.Context, base string, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	u := base + "/api/v0/storage/" + url.PathEscape(hash)
	max := int64(maxJSONContent)
	if limit > 0 && limit < max {
		max = limit
	}
	resp, cancel, err := s.get(ctx, u)
	if err != nil {
		return nil, err
	}
	defer cancel()
	defer resp.Body.Close()
	// base64 is 4/3 of the bytes, plus a two-character `\n` per 76; then
	// the other fields.
	b64 := (max + 2) / 3 * 4
	bound := b64 + 2*(b64/76+1) + 4<<10
	b := &body{rc: resp.Body, cancel: cancel, url: u, idle: s.idleTimeout, left: bound + 1}
	b.timer = time.AfterFunc(s.idleTimeout, func() { b.stalled.Store(true); cancel() })
	defer b.timer.Stop()
	raw, err := io.ReadAll(b)
	if err != nil {
		return nil, fmt.Errorf("peerfetch: GET %s: %w", u, err)
	}
	if int64(len(raw)) > bound {
		return nil, fmt.Errorf("peerfetch: GET %s: answer over %d bytes: %w", u, bound, &filestore.TooLargeError{Limit: max})
	}
	content, err := parseAnswer(raw, engine, hash, max)
	if err != nil {
		return nil, fmt.Errorf("peerfetch: GET %s: %w", u, err)
	}
	return io.NopCloser(bytes.NewReader(content)), nil
}

// parseAnswer checks a storage answer for hash and decodes its content, at
// most max bytes.
func parseAnswer(raw []byte, engine filestore.Engine, hash string, max int64) ([]byte, error) {
	var a storageAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	switch {
	case a.Status != "success":
		return nil, fmt.Errorf("status %q", clip(a.Status))
	case a.Hash != hash:
		return nil, fmt.Errorf("answer is for %q", clip(a.Hash))
	case a.Engine != "" && a.Engine != string(engine):
		return nil, fmt.Errorf("answer is for engine %q, not %s", clip(a.Engine), engine)
	}
	b64 := strings.NewReplacer("\n", "", "\r", "").Replace(a.Content)
	if int64(base64.StdEncoding.DecodedLen(len(b64))) > max+2 {
		return nil, &filestore.TooLargeError{Limit: max}
	}
	content, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("content: %w", err)
	}
	if int64(len(content)) > max {
		return nil, &filestore.TooLargeError{Limit: max}
	}
	return content, nil
}

var (
	_ files.Source = (*Source)(nil)
	_ files.Fanout = (*Source)(nil)
	_ files.Source = peer{}
)
