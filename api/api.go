package api

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/store"
)

// Submitter admits a new message. *pipeline.Pipeline satisfies it.
type Submitter interface {
	Submit(ctx context.Context, raw []byte, opts pipeline.SubmitOptions) (pipeline.SubmitResult, error)
}

// Files is the file service behind the storage, ipfs and gateway endpoints
// (implemented by ccn/files). Its errors wrap filestore's sentinels
// (ErrTooLarge → 413, ErrHashMismatch → 422, ErrInvalidCAR → 422,
// ErrInvalidHash → 400, ErrTruncated → 400, ErrNotFound → 404, ErrIsDir) or
// store.ErrNotFound (404).
type Files interface {
	AddStorage(ctx context.Context, r io.Reader, limit int64, want string) (*store.File, error)
	AddIPFS(ctx context.Context, r io.Reader, limit int64, want string) (*store.File, error)
	AddCAR(ctx context.Context, r io.Reader, limit int64, wantRoot string) (*store.File, error)
	Open(ctx context.Context, hash string) (filestore.File, error)
	WriteTar(ctx context.Context, hash string, w io.Writer) error
	// Gateway serves GET and HEAD /ipfs/{cid}[/path].
	Gateway() http.Handler
}

// Deps are the node parts the API serves from.
type Deps struct {
	// Submitter admits messages posted to /api/v0/messages and the legacy pubsub
	// endpoints.
	Submitter Submitter
	// Store answers every query.
	Store store.Reader
	// Bus feeds the messages websocket; nil means the websocket only sends history.
	Bus *events.Bus
	// Metrics receives the API's request and websocket metrics and is served on
	// /metrics; nil means a private registry.
	Metrics *prometheus.Registry
	// Version is served by /api/v0/version and /version.
	Version string
	// Now is the clock; nil means time.Now. (No answer depends on the time yet;
	// durations in metrics use the monotonic clock.)
	Now func() time.Time
	// Log receives internal errors and recovered panics; nil discards.
	Log *slog.Logger
	// NodeMultiAddresses are served by /api/v0/info/public.json.
	NodeMultiAddresses []string
	// Files serves the storage, ipfs and gateway endpoints; nil makes uploads
	// answer 503 and downloads 404.
	Files Files
	// Verifier checks the signature of the STORE message that comes with an
	// authenticated upload, before the file is read; nil makes authenticated
	// uploads answer 503.
	Verifier *chain.Registry
}

// Config tunes the API. Zero fields take the values of DefaultConfig.
type Config struct {
	// BodyLimit bounds request bodies (pyaleph: 1 MiB); larger bodies get 413.
	BodyLimit int64
	// MessageTopic is the only topic the legacy pubsub endpoints accept.
	MessageTopic string
	// CORSOrigin is sent as Access-Control-Allow-Origin.
	CORSOrigin string
	// MaxWebsockets caps concurrent messages websockets; the next one is closed
	// with code 1013.
	MaxWebsockets int
	// WSPingInterval is the websocket heartbeat.
	WSPingInterval time.Duration
	// WSWriteTimeout bounds one websocket frame write (and a heartbeat's pong).
	WSWriteTimeout time.Duration
	// WSBuffer is how many processed messages a websocket may fall behind before
	// it is disconnected.
	WSBuffer int
	// CountCacheTTL keeps pagination totals of at least CountCacheMin rows for
	// this long (pyaleph caches counts for 300 s); 0 takes the default, a
	// negative value disables the cache.
	CountCacheTTL time.Duration
	CountCacheMin int64
	// Upload limits, in bytes (ccn-protocol.md §1.3), served by
	// /api/v0/storage/limits.json. An upload over its limit gets 413.
	// MaxUnauthenticatedUpload bounds uploads with no signed STORE message
	// (storage and ipfs engines, and add_json bodies); MaxStorageFile an
	// authenticated storage upload; MaxIPFSFile an authenticated ipfs upload;
	// MaxCARFile a CAR upload.
	MaxUnauthenticatedUpload int64
	MaxStorageFile           int64
	MaxIPFSFile              int64
	MaxCARFile               int64
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		BodyLimit: 1 << 20,

		MaxUnauthenticatedUpload: 25 << 20,
		MaxStorageFile:           100 << 20,
		MaxIPFSFile:              1 << 30,
		MaxCARFile:               4 << 30,
		MessageTopic:             "ALEPH-TEST",
		CORSOrigin:               "*",
		MaxWebsockets:            10_000,
		WSPingInterval:           30 * time.Second,
		WSWriteTimeout:           10 * time.Second,
		WSBuffer:                 256,
		CountCacheTTL:            30 * time.Second,
		CountCacheMin:            10_000,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BodyLimit <= 0 {
		c.BodyLimit = d.BodyLimit
	}
	if c.MaxUnauthenticatedUpload <= 0 {
		c.MaxUnauthenticatedUpload = d.MaxUnauthenticatedUpload
	}
	if c.MaxStorageFile <= 0 {
		c.MaxStorageFile = d.MaxStorageFile
	}
	if c.MaxIPFSFile <= 0 {
		c.MaxIPFSFile = d.MaxIPFSFile
	}
	if c.MaxCARFile <= 0 {
		c.MaxCARFile = d.MaxCARFile
	}
	if c.MessageTopic == "" {
		c.MessageTopic = d.MessageTopic
	}
	if c.CORSOrigin == "" {
		c.CORSOrigin = d.CORSOrigin
	}
	if c.MaxWebsockets <= 0 {
		c.MaxWebsockets = d.MaxWebsockets
	}
	if c.WSPingInterval <= 0 {
		c.WSPingInterval = d.WSPingInterval
	}
	if c.WSWriteTimeout <= 0 {
		c.WSWriteTimeout = d.WSWriteTimeout
	}
	if c.WSBuffer <= 0 {
		c.WSBuffer = d.WSBuffer
	}
	if c.CountCacheTTL == 0 {
		c.CountCacheTTL = d.CountCacheTTL
	}
	if c.CountCacheMin <= 0 {
		c.CountCacheMin = d.CountCacheMin
	}
	return c
}

// server holds what the handlers share.
type server struct {
	d       Deps
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	mux     *http.ServeMux
	docs    *docs
	wsConns atomic.Int64
	counts  *countCache
	digests digestFlight
}

// route is one endpoint: its mux pattern, the OpenAPI path that documents it, and
// its handler.
type route struct {
	method  string // GET or POST
	pattern string // the ServeMux path pattern
	docPath string // the OpenAPI path
	handler func(s *server, w http.ResponseWriter, r *http.Request)
}

// routes lists every endpoint. GET routes also answer HEAD (ServeMux does it).
var routes = []route{
	{"POST", "/api/v0/messages", "/api/v0/messages", (*server).submitMessage},
	{"POST", "/api/v0/ipfs/pubsub/pub", "/api/v0/ipfs/pubsub/pub", (*server).pubsubPub},
	{"POST", "/api/v0/p2p/pubsub/pub", "/api/v0/p2p/pubsub/pub", (*server).pubsubPub},

	{"GET", "/api/v0/messages.json", "/api/v0/messages.json", (*server).listMessages},
	{"GET", "/api/v0/messages/page/{page}", "/api/v0/messages/page/{page}.json", (*server).listMessages},
	{"GET", "/api/v0/messages/hashes", "/api/v0/messages/hashes", (*server).messageHashes},
	{"GET", "/api/v0/messages/{hash}", "/api/v0/messages/{item_hash}", (*server).getMessage},
	{"GET", "/api/v0/messages/{hash}/{sub}", "/api/v0/messages/{item_hash}/status", (*server).messageSub},
	{"GET", "/api/v0/messages/{hash}/{sub}", "/api/v0/messages/{item_hash}/content", (*server).messageSub},
	{"GET", "/api/ws0/messages", "/api/ws0/messages", (*server).messagesSocket},

	{"GET", "/api/v0/posts.json", "/api/v0/posts.json", (*server).postsV0},
	{"GET", "/api/v0/posts/page/{page}", "/api/v0/posts/page/{page}.json", (*server).postsV0},
	{"GET", "/api/v1/posts.json", "/api/v1/posts.json", (*server).postsV1},
	{"GET", "/api/v1/posts/page/{page}", "/api/v1/posts/page/{page}.json", (*server).postsV1},

	{"GET", "/api/v0/aggregates/{file}", "/api/v0/aggregates/{address}.json", (*server).addressAggregates},
	{"GET", "/api/v0/aggregates", "/api/v0/aggregates", (*server).listAggregates},
	{"GET", "/api/v0/aggregates.json", "/api/v0/aggregates.json", (*server).listAggregates},

	{"GET", "/api/v0/addresses/stats.json", "/api/v0/addresses/stats.json", (*server).addressStatsV0},
	{"GET", "/api/v1/addresses/stats.json", "/api/v1/addresses/stats.json", (*server).addressStatsV1},
	{"GET", "/api/v0/addresses/{address}/post_types", "/api/v0/addresses/{address}/post_types", (*server).addressPostTypes},
	{"GET", "/api/v0/addresses/{address}/channels", "/api/v0/addresses/{address}/channels", (*server).addressChannels},
	{"GET", "/api/v0/channels/list.json", "/api/v0/channels/list.json", (*server).channelsList},
	{"GET", "/api/v0/state/digest", "/api/v0/state/digest", (*server).stateDigest},

	{"POST", "/api/v0/storage/add_file", "/api/v0/storage/add_file", (*server).storageAddFile},
	{"POST", "/api/v0/storage/add_json", "/api/v0/storage/add_json", (*server).storageAddJSON},
	{"POST", "/api/v0/ipfs/add_file", "/api/v0/ipfs/add_file", (*server).ipfsAddFile},
	{"POST", "/api/v0/ipfs/add_json", "/api/v0/ipfs/add_json", (*server).ipfsAddJSON},
	{"POST", "/api/v0/ipfs/add_car", "/api/v0/ipfs/add_car", (*server).ipfsAddCAR},
	{"GET", "/api/v0/storage/limits.json", "/api/v0/storage/limits.json", (*server).storageLimits},
	{"GET", "/api/v0/storage/raw/{hash}", "/api/v0/storage/raw/{file_hash}", (*server).storageRaw},
	{"GET", "/api/v0/storage/metadata/{hash}", "/api/v0/storage/metadata/{file_hash}", (*server).storageMetadata},
	{"GET", "/api/v0/storage/by-message-hash/{message_hash}", "/api/v0/storage/by-message-hash/{message_hash}", (*server).storageByMessageHash},
	{"GET", "/api/v0/storage/by-ref/{ref}", "/api/v0/storage/by-ref/{ref}", (*server).storageByRef},
	{"GET", "/api/v0/storage/by-ref/{address}/{ref}", "/api/v0/storage/by-ref/{address}/{ref}", (*server).storageByRef},
	{"GET", "/api/v0/storage/count/{hash}", "/api/v0/storage/count/{file_hash}", (*server).storageCount},
	{"GET", "/api/v0/storage/{hash}", "/api/v0/storage/{file_hash}", (*server).storageGet},
	{"GET", "/api/v0/addresses/{address}/files", "/api/v0/addresses/{address}/files", (*server).addressFiles},
	{"GET", "/ipfs/{cid}", "/ipfs/{cid}", (*server).ipfsGateway},
	{"GET", "/ipfs/{cid}/{path...}", "/ipfs/{cid}/{path}", (*server).ipfsGateway},

	{"GET", "/api/v0/version", "/api/v0/version", (*server).version},
	{"GET", "/version", "/version", (*server).version},
	{"GET", "/api/v0/info/public.json", "/api/v0/info/public.json", (*server).publicInfo},
	{"GET", "/metrics", "/metrics", (*server).serveMetrics},
	{"GET", "/api/docs", "/api/docs", (*server).docsPage},
	{"GET", "/api/docs/openapi.json", "/api/docs/openapi.json", (*server).openAPI},
}

// New returns the API handler.
func New(d Deps, cfg Config) http.Handler {
	s := &server{d: d, cfg: cfg.withDefaults(), log: d.Log}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.d.Metrics == nil {
		s.d.Metrics = prometheus.NewRegistry()
	}
	s.metrics = newMetrics(s.d.Metrics)
	now := s.d.Now
	if now == nil {
		now = time.Now
	}
	s.counts = newCountCache(s.cfg.CountCacheTTL, s.cfg.CountCacheMin, now)
	s.docs = mustLoadDocs()
	s.mux = http.NewServeMux()
	seen := map[string]bool{}
	for _, rt := range routes {
		p := rt.method + " " + rt.pattern
		if seen[p] {
			continue // one pattern documented under several paths
		}
		seen[p] = true
		h := rt.handler
		s.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
	}
	s.mux.HandleFunc("/", s.fallback)
	return s.middleware(s.mux)
}
