// Package guestapi is the HTTP API a program reaches from inside its sandbox
// (crn-compute.md §2.8, aleph-vm's guest_api): a per-VM cache kept in an
// embedded store with a TTL, the node key's /properties and a /sign that only
// signs messages whose content address is the VM, pubsub publishing re-signed
// by the node, and read-only proxying of GET/HEAD to the node's CCN API. Every
// other request is refused, so nothing else on the host is reachable through it.
//
// The supervisor serves one Handler per VM on a Unix socket bind-mounted into
// the sandbox (Serve); the Cache is shared by all VMs of the node.
package guestapi

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// Body limits. Sign bodies carry inline content of up to 50,000 characters
// (message.InlineThreshold), JSON-escaped inside the envelope.
const (
	DefaultMaxSignBody   = 256 << 10
	DefaultMaxPubsubBody = 64 << 10
	DefaultProxyTimeout  = 2 * time.Minute
)

// Publisher submits a signed message (its JSON envelope) to the network; the
// supervisor wires it to its CCN's POST /api/v0/messages (see ClientPublisher).
type Publisher interface {
	Submit(ctx context.Context, raw []byte) error
}

// Config is what one VM's guest API needs.
type Config struct {
	// VMHash is the program's item hash (64 hex digits).
	VMHash string
	// Cache is the node's shared cache.
	Cache *Cache
	// Signer is the node's signing account.
	Signer message.Signer
	// CCN is the base URL of the node's CCN API, such as http://127.0.0.1:4024.
	CCN string
	// HTTPClient reaches the CCN; nil means a client with no overall timeout
	// (ProxyTimeout bounds each request).
	HTTPClient *http.Client
	// Publisher submits pubsub posts; nil refuses pubsub with 503.
	Publisher Publisher
	// Limits; zero means the default.
	MaxSignBody   int64
	MaxPubsubBody int64
	ProxyTimeout  time.Duration
	// Now is the clock for new messages; nil means time.Now.
	Now func() time.Time
	Log *slog.Logger
}

// Properties is the answer of GET /properties, read by the SDK's RemoteAccount.
type Properties struct {
	Chain     message.Chain `json:"chain"`
	Curve     string        `json:"curve"`
	Address   string        `json:"address"`
	PublicKey string        `json:"public_key"`
}

// PropertiesOf describes a signer as the Python SDK's accounts do: ETH gives
// curve secp256k1 and "0x" + the compressed key, SOL curve25519 and the hex
// key; other secp256k1 chains (CSDK, NULS2, AVAX) give the compressed key in hex.
func PropertiesOf(s message.Signer) (Properties, error) {
	p := Properties{Chain: s.Chain(), Address: s.Address()}
	switch k := s.(type) {
	case interface{ PublicKeyCompressedHex() string }:
		p.Curve, p.PublicKey = "secp256k1", k.PublicKeyCompressedHex()
	case interface{ PublicKey() ed25519.PublicKey }:
		p.Curve, p.PublicKey = "curve25519", hex.EncodeToString(k.PublicKey())
	case interface{ PublicKey() []byte }:
		p.Curve, p.PublicKey = "secp256k1", hex.EncodeToString(k.PublicKey())
	default:
		return Properties{}, fmt.Errorf("signer %T of chain %s exposes no public key", s, s.Chain())
	}
	return p, nil
}

// Handler is one VM's guest API.
type Handler struct {
	cfg   Config
	ccn   *url.URL
	props Properties
	mux   *http.ServeMux
	log   *slog.Logger
}

// New checks cfg and returns the VM's handler.
func New(cfg Config) (*Handler, error) {
	if !message.IsHexHash(cfg.VMHash) {
		return nil, fmt.Errorf("guest api: vm hash %q is not 64 lowercase hex digits", cfg.VMHash)
	}
	if cfg.Cache == nil || cfg.Signer == nil {
		return nil, errors.New("guest api: cache and signer are required")
	}
	props, err := PropertiesOf(cfg.Signer)
	if err != nil {
		return nil, fmt.Errorf("guest api: %w", err)
	}
	u, err := url.Parse(strings.TrimRight(cfg.CCN, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("guest api: ccn url %q is not an http(s) base url", cfg.CCN)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{}
	}
	if cfg.MaxSignBody <= 0 {
		cfg.MaxSignBody = DefaultMaxSignBody
	}
	if cfg.MaxPubsubBody <= 0 {
		cfg.MaxPubsubBody = DefaultMaxPubsubBody
	}
	if cfg.ProxyTimeout <= 0 {
		cfg.ProxyTimeout = DefaultProxyTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, ccn: u, props: props, log: log.With("vm", cfg.VMHash)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /properties", h.properties)
	mux.HandleFunc("POST /sign", h.sign)
	mux.HandleFunc("GET /cache/{$}", h.cacheList)
	mux.HandleFunc("GET /cache/{key}", h.cacheGet)
	mux.HandleFunc("PUT /cache/{key}", h.cachePut)
	mux.HandleFunc("DELETE /cache/{key}", h.cacheDelete)
	mux.HandleFunc("POST /api/v0/ipfs/pubsub/pub", h.pubsub)
	mux.HandleFunc("POST /api/v0/p2p/pubsub/pub", h.pubsub)
	// Everything else: GET/HEAD go to the CCN proxy, which applies its
	// allow-list; other methods are refused.
	mux.HandleFunc("/", h.fallback)
	h.mux = mux
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func (h *Handler) fallback(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s: the guest api only proxies GET and HEAD", r.Method, truncate(r.URL.Path, 100)))
		return
	}
	h.proxy(w, r)
}

func (h *Handler) properties(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.props)
}

func (h *Handler) cacheKey(w http.ResponseWriter, r *http.Request) (string, bool) {
	key := r.PathValue("key")
	if !ValidKey(key) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid cache key %q: want 1 to %d word characters (letters, digits, _)", truncate(key, 80), MaxKeyLength))
		return "", false
	}
	return key, true
}

func (h *Handler) cacheList(w http.ResponseWriter, r *http.Request) {
	pattern := "*"
	if q := r.URL.Query(); q.Has("pattern") {
		pattern = q.Get("pattern")
	}
	if !ValidPattern(pattern) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid pattern %q: want 1 to %d word characters or ? * ^ -", truncate(pattern, 80), MaxPatternLength))
		return
	}
	keys, err := h.cfg.Cache.Keys(h.cfg.VMHash, pattern)
	if err != nil {
		h.storeError(w, "list", err)
		return
	}
	writeJSON(w, http.StatusOK, keys)
}

func (h *Handler) cacheGet(w http.ResponseWriter, r *http.Request) {
	key, ok := h.cacheKey(w, r)
	if !ok {
		return
	}
	v, found, err := h.cfg.Cache.Get(h.cfg.VMHash, key)
	if err != nil {
		h.storeError(w, "get", err)
		return
	}
	if !found {
		writeError(w, http.StatusNotFound, "No such key in cache")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(v)
}

func (h *Handler) cachePut(w http.ResponseWriter, r *http.Request) {
	key, ok := h.cacheKey(w, r)
	if !ok {
		return
	}
	limit := int64(h.cfg.Cache.cfg.MaxValueSize)
	v, ok := readBody(w, r, limit)
	if !ok {
		return
	}
	err := h.cfg.Cache.Set(h.cfg.VMHash, key, v)
	switch {
	case errors.Is(err, ErrValueTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, err.Error())
	case errors.Is(err, ErrQuota):
		writeError(w, http.StatusInsufficientStorage, err.Error())
	case err != nil:
		h.storeError(w, "set", err)
	default:
		writeJSON(w, http.StatusOK, true)
	}
}

func (h *Handler) cacheDelete(w http.ResponseWriter, r *http.Request) {
	key, ok := h.cacheKey(w, r)
	if !ok {
		return
	}
	n, err := h.cfg.Cache.Delete(h.cfg.VMHash, key)
	if err != nil {
		h.storeError(w, "delete", err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// storeError answers a failure of the node's own store: the program did
// nothing wrong, so it is a 503 and not a 4xx.
func (h *Handler) storeError(w http.ResponseWriter, op string, err error) {
	h.log.Error("guest api cache failure", "op", op, "err", err)
	writeError(w, http.StatusServiceUnavailable, "cache unavailable")
}

// readBody reads a body of at most limit bytes; ok=false means it answered.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, bool) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", limit))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the request body")
		return nil, false
	}
	return b, true
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own types reach here; they always encode.
		b, status = []byte(`{"error":"cannot encode the answer"}`), http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Serve serves h on ln until ctx ends, then shuts down, giving in-flight
// requests up to five seconds. It closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("guest api serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; !errors.Is(serr, http.ErrServerClosed) && serr != nil {
		return fmt.Errorf("guest api serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("guest api shutdown: %w", err)
	}
	return nil
}
