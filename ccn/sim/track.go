package sim

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
)

// tracker records when each node first processed each tracked message, from
// the nodes' event buses.
type tracker struct {
	nodes int

	mu        sync.Mutex
	index     map[string]int // item hash → message index
	submitted []time.Time    // per message; zero until submitted
	origin    []int          // per message: the node it was submitted to
	at        [][]time.Time  // [message][node]: first processed; zero until then
	missing   int            // (message, node) pairs not yet processed
	done      chan struct{}  // closed when missing reaches 0
	lagged    []string       // nodes whose subscription was dropped
}

func newTracker(nodes int, hashes []string) *tracker {
	t := &tracker{nodes: nodes, index: make(map[string]int, len(hashes)), submitted: make([]time.Time, len(hashes)),
		origin: make([]int, len(hashes)), at: make([][]time.Time, len(hashes)), missing: len(hashes) * nodes, done: make(chan struct{})}
	for i, h := range hashes {
		t.index[h] = i
		t.at[i] = make([]time.Time, nodes)
	}
	if t.missing == 0 {
		close(t.done)
	}
	return t
}

// follow reads node's subscription until it closes or ctx ends, feeding
// every tracker.
func follow(ctx context.Context, node int, sub *events.Subscription, ts ...*tracker) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-sub.C:
			if !ok {
				if sub.Lagged() {
					for _, t := range ts {
						t.lag(node)
					}
				}
				return
			}
			if e.Kind == events.Processed || e.Kind == events.Confirmed {
				now := time.Now()
				for _, t := range ts {
					t.seen(node, e.ItemHash, now)
				}
			}
		}
	}
}

func (t *tracker) lag(node int) {
	t.mu.Lock()
	t.lagged = append(t.lagged, fmt.Sprint(node))
	t.mu.Unlock()
}

func (t *tracker) seen(node int, hash string, at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i, ok := t.index[hash]
	if !ok || !t.at[i][node].IsZero() {
		return
	}
	t.at[i][node] = at
	t.missing--
	if t.missing == 0 {
		close(t.done)
	}
}

// submit records that message i is about to be submitted to node.
func (t *tracker) submit(i, node int, at time.Time) {
	t.mu.Lock()
	t.submitted[i], t.origin[i] = at, node
	t.mu.Unlock()
}

// wait returns when every node processed every message, or an error saying
// what is missing when ctx ends first.
func (t *tracker) wait(ctx context.Context) error {
	select {
	case <-t.done:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	perNode := make([]int, t.nodes)
	incomplete := 0
	for _, row := range t.at {
		lacking := false
		for n, at := range row {
			if at.IsZero() {
				perNode[n]++
				lacking = true
			}
		}
		if lacking {
			incomplete++
		}
	}
	var worst []string
	for n, c := range perNode {
		if c > 0 && len(worst) < 10 {
			worst = append(worst, fmt.Sprintf("node %d lacks %d", n, c))
		}
	}
	msg := fmt.Sprintf("%d of %d (message, node) deliveries missing; %d of %d messages did not reach every node (%s)",
		t.missing, len(t.at)*t.nodes, incomplete, len(t.at), strings.Join(worst, ", "))
	if len(t.lagged) > 0 {
		msg += "; event subscriptions dropped on nodes " + strings.Join(t.lagged, ",")
	}
	return fmt.Errorf("%s: %w", msg, ctx.Err())
}

// latencies returns processed-on-node minus submit time over every (message,
// node other than its origin) pair.
func (t *tracker) latencies() []time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []time.Duration
	for i, row := range t.at {
		for n, at := range row {
			if n == t.origin[i] || at.IsZero() || t.submitted[i].IsZero() {
				continue
			}
			out = append(out, at.Sub(t.submitted[i]))
		}
	}
	return out
}

// Percentiles summarise a latency distribution.
type Percentiles struct {
	P50, P90, P99, Max time.Duration
	Samples            int
}

// percentiles uses the nearest-rank method.
func percentiles(d []time.Duration) Percentiles {
	if len(d) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(math.Ceil(p*float64(len(s)))) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: s[len(s)-1], Samples: len(s)}
}
