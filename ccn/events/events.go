// Package events is the in-process bus on which the pipeline announces what became
// of each message (processed, rejected, retried, forgotten). The API listens on it
// to answer sync submissions and to feed websocket subscribers.
package events

import (
	"encoding/json"
	"sync"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// Kind says what happened to a message.
type Kind string

// Event kinds.
const (
	Processed Kind = "processed" // stored and applied; Message is set
	Confirmed Kind = "confirmed" // a copy of an already processed message
	Retry     Kind = "retry"     // failed with a retryable error; will be tried again
	Rejected  Kind = "rejected"  // refused for good; Code and Details say why
	Forgotten Kind = "forgotten" // erased by a FORGET
)

// Event is one outcome.
type Event struct {
	Kind     Kind
	ItemHash string
	// Message is the stored message, for Processed and Confirmed.
	Message *store.Message
	// Code and Details explain Rejected and Retry.
	Code    message.ErrorCode
	Details json.RawMessage
	Err     error
}

// Bus fans events out to subscribers. Publish never blocks: a subscriber that
// falls more than its buffer behind is dropped (its channel is closed and Lagged
// reports true), so one slow websocket cannot stall processing.
type Bus struct {
	mu      sync.Mutex
	subs    map[*Subscription]struct{}
	waiters map[string][]chan Event
}

// NewBus returns an empty bus.
func NewBus() *Bus {
	return &Bus{subs: map[*Subscription]struct{}{}, waiters: map[string][]chan Event{}}
}

// Subscription receives every event published after it was made.
type Subscription struct {
	C      <-chan Event
	c      chan Event
	bus    *Bus
	lagged bool
	closed bool
}

// Subscribe returns a subscription with the given buffer size (at least 1).
func (b *Bus) Subscribe(buffer int) *Subscription {
	if buffer < 1 {
		buffer = 1
	}
	c := make(chan Event, buffer)
	s := &Subscription{C: c, c: c, bus: b}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Close ends the subscription and closes C.
func (s *Subscription) Close() {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	s.closeLocked()
}

func (s *Subscription) closeLocked() {
	if s.closed {
		return
	}
	s.closed = true
	delete(s.bus.subs, s)
	close(s.c)
}

// Lagged reports whether the subscription was dropped for falling behind.
func (s *Subscription) Lagged() bool {
	s.bus.mu.Lock()
	defer s.bus.mu.Unlock()
	return s.lagged
}

// Await returns a channel that receives the first final event (Processed,
// Confirmed, Rejected or Forgotten) or Retry for itemHash published after the
// call. Register before submitting, so the outcome cannot be missed. Call cancel
// when no longer waiting.
func (b *Bus) Await(itemHash string) (ch <-chan Event, cancel func()) {
	c := make(chan Event, 1)
	b.mu.Lock()
	b.waiters[itemHash] = append(b.waiters[itemHash], c)
	b.mu.Unlock()
	return c, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		ws := b.waiters[itemHash]
		for i, w := range ws {
			if w == c {
				b.waiters[itemHash] = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(b.waiters[itemHash]) == 0 {
			delete(b.waiters, itemHash)
		}
	}
}

// Publish delivers e to every subscriber and waiter without blocking.
func (b *Bus) Publish(e Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.c <- e:
		default:
			s.lagged = true
			s.closeLocked()
		}
	}
	if ws, ok := b.waiters[e.ItemHash]; ok {
		for _, w := range ws {
			select {
			case w <- e:
			default: // already has an outcome
			}
		}
	}
}
