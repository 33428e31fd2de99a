package resolve

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// EventKind classifies a message of the stream for the supervisor.
type EventKind int

// Event kinds.
const (
	// EventMessage is any other message (only for on.message triggers).
	EventMessage EventKind = iota
	// EventProgram is a PROGRAM: new, or an update of Replaces.
	EventProgram
	// EventRefUpdate is a STORE amending Ref: programs watching Ref restart.
	EventRefUpdate
	// EventForget is a FORGET of Forgotten (programs, STOREs, anything).
	EventForget
)

func (k EventKind) String() string {
	switch k {
	case EventProgram:
		return "program"
	case EventRefUpdate:
		return "ref-update"
	case EventForget:
		return "forget"
	}
	return "message"
}

// Event is one processed message of the node's stream, classified. Every
// message comes as exactly one event, so on.message subscriptions are matched
// against Message whatever the kind.
type Event struct {
	Kind    EventKind
	Message *client.Message
	// Program and Replaces are set for EventProgram (Replaces "" for a new one).
	Program  *message.ProgramContent
	Replaces string
	// Ref and FileHash are set for EventRefUpdate: the original STORE amended
	// and the new file.
	Ref      string
	FileHash string
	// Forgotten lists the item hashes of an EventForget.
	Forgotten []string
}

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	Client *client.Client
	Log    *slog.Logger
	// Now is the clock (time.Now when nil): the stream starts at Now().
	Now func() time.Time
	// MinBackoff and MaxBackoff bound the wait between reconnections
	// (defaults 100 ms and 8 s, as aleph-vm).
	MinBackoff, MaxBackoff time.Duration
	// Replay is how many of the latest stored messages the node is asked to
	// send again on reconnection, so that those processed while disconnected are
	// not missed (default 100; the node's cap is 199). Repeats are dropped, and
	// so are replayed messages dated over a minute before Run started.
	Replay int
	// OnConnect, when set, is called each time the stream is (re)connected.
	OnConnect func()
}

// Watcher follows a node's message websocket and emits Events.
type Watcher struct {
	cfg  WatcherConfig
	seen *recent
}

// NewWatcher returns a Watcher; Run starts it.
func NewWatcher(cfg WatcherConfig) *Watcher {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(8*time.Second, cfg.MinBackoff)
	}
	if cfg.Replay <= 0 {
		cfg.Replay = 100
	}
	return &Watcher{cfg: cfg, seen: newRecent(4096)}
}

// Run sends the events to out until ctx ends, reconnecting with exponential
// backoff; it returns ctx's error. The first connection streams messages
// processed from then on. No date filter is asked of the node: it would apply
// to the live stream too, and drop messages whose senders' clocks run late.
func (w *Watcher) Run(ctx context.Context, out chan<- Event) error {
	oldest := w.cfg.Now().Add(-time.Minute)
	backoff := w.cfg.MinBackoff
	for first := true; ; first = false {
		replay := 0
		if !first {
			replay = w.cfg.Replay
		}
		got, err := w.session(ctx, replay, oldest, out)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if got {
			backoff = w.cfg.MinBackoff
		}
		w.cfg.Log.Warn("watch: stream lost, reconnecting", "err", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, w.cfg.MaxBackoff)
	}
}

// session reads one connection until it fails; got reports whether it
// delivered anything (which resets the backoff).
func (w *Watcher) session(ctx context.Context, replay int, oldest time.Time, out chan<- Event) (got bool, err error) {
	watch, err := w.cfg.Client.WatchMessages(ctx, client.WatchFilter{History: &replay})
	if err != nil {
		return false, err
	}
	defer watch.Close()
	if w.cfg.OnConnect != nil {
		w.cfg.OnConnect()
	}
	for {
		m, err := watch.Next(ctx)
		if err != nil {
			return got, err
		}
		got = true
		if !w.seen.add(m.ItemHash) || replay > 0 && m.Time.Std().Before(oldest) {
			continue
		}
		ev := classifyMessage(m, w.cfg.Log)
		select {
		case out <- ev:
		case <-ctx.Done():
			return got, ctx.Err()
		}
	}
}

func classifyMessage(m *client.Message, log *slog.Logger) Event {
	ev := Event{Kind: EventMessage, Message: m}
	if m.Content == nil {
		return ev
	}
	switch m.Type {
	case message.TypeProgram:
		c, err := m.DecodeContent(m.Content)
		if err != nil {
			log.Warn("watch: invalid PROGRAM content", "hash", m.ItemHash, "err", err)
			return ev
		}
		pc := c.(*message.ProgramContent)
		ev.Kind, ev.Program = EventProgram, pc
		if pc.Replaces != nil {
			ev.Replaces = *pc.Replaces
		}
	case message.TypeStore:
		var sc struct {
			Ref      string `json:"ref"`
			ItemHash string `json:"item_hash"`
		}
		if json.Unmarshal(m.Content, &sc) == nil && sc.Ref != "" {
			ev.Kind, ev.Ref, ev.FileHash = EventRefUpdate, sc.Ref, sc.ItemHash
		}
	case message.TypeForget:
		var fc struct {
			Hashes []string `json:"hashes"`
		}
		if json.Unmarshal(m.Content, &fc) == nil {
			ev.Kind, ev.Forgotten = EventForget, fc.Hashes
		}
	}
	return ev
}

// recent remembers the last n item hashes, to drop repeats after a reconnection.
type recent struct {
	set  map[string]struct{}
	ring []string
	next int
}

func newRecent(n int) *recent {
	return &recent{set: make(map[string]struct{}, n), ring: make([]string, n)}
}

// add reports whether h is new.
func (r *recent) add(h string) bool {
	if _, ok := r.set[h]; ok {
		return false
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = h
	r.set[h] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
	return true
}

// MatchSubscription reports whether m matches an on.message subscription as
// aleph-vm's subscription_matches does: every key of sub must equal the
// message's field of that name, objects compared key by key recursively
// (extra keys in the message are fine). The message's "content" is its parsed
// content.
func MatchSubscription(sub message.Subscription, m *client.Message) bool {
	var msg map[string]json.RawMessage
	if json.Unmarshal(m.Raw, &msg) != nil {
		return false
	}
	if m.Content != nil {
		msg["content"] = m.Content
	}
	return matchObject(sub, msg, 0)
}

func matchObject(sub, obj map[string]json.RawMessage, depth int) bool {
	if depth > 32 {
		return false
	}
	for k, want := range sub {
		got, ok := obj[k]
		if !ok || !matchValue(want, got, depth+1) {
			return false
		}
	}
	return true
}

func matchValue(want, got json.RawMessage, depth int) bool {
	want, got = bytes.TrimSpace(want), bytes.TrimSpace(got)
	if len(want) > 0 && want[0] == '{' {
		var ws, gs map[string]json.RawMessage
		if json.Unmarshal(want, &ws) != nil || json.Unmarshal(got, &gs) != nil {
			return false
		}
		return matchObject(ws, gs, depth)
	}
	var wv, gv any
	if json.Unmarshal(want, &wv) != nil || json.Unmarshal(got, &gv) != nil {
		return false
	}
	return sameJSON(wv, gv)
}

func sameJSON(a, b any) bool {
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ab, bb)
}
