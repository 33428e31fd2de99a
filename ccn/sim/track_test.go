package sim

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
)

func TestPercentiles(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // reversed: percentiles must sort
	}
	for _, tc := range []struct {
		name string
		in   []time.Duration
		want Percentiles
	}{
		{"empty", nil, Percentiles{}},
		{"one", ms(7), Percentiles{P50: 7 * time.Millisecond, P90: 7 * time.Millisecond, P99: 7 * time.Millisecond, Max: 7 * time.Millisecond, Samples: 1}},
		{"hundred", ms(hundred...), Percentiles{P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond, Samples: 100}},
		{"ten", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), Percentiles{P50: 5 * time.Millisecond, P90: 9 * time.Millisecond, P99: 10 * time.Millisecond, Max: 10 * time.Millisecond, Samples: 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := percentiles(tc.in); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTracker(t *testing.T) {
	tr := newTracker(3, []string{"a", "b"})
	t0 := time.Now()
	tr.submit(0, 0, t0)
	tr.submit(1, 2, t0)
	bus := events.NewBus()
	sub := bus.Subscribe(16)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		follow(ctx, 1, sub, tr)
	}()
	bus.Publish(events.Event{Kind: events.Processed, ItemHash: "a"})
	bus.Publish(events.Event{Kind: events.Rejected, ItemHash: "b"}) // not a delivery
	bus.Publish(events.Event{Kind: events.Processed, ItemHash: "untracked"})
	sub.Close()
	<-done
	for _, n := range []int{0, 2} {
		tr.seen(n, "a", t0.Add(time.Duration(n+1)*time.Millisecond))
		tr.seen(n, "b", t0.Add(time.Duration(n+1)*time.Millisecond))
	}
	tr.seen(0, "a", t0.Add(time.Hour)) // a second delivery keeps the first time

	short, cancelShort := context.WithCancel(t.Context())
	cancelShort()
	err := tr.wait(short)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "1 of 6") || !strings.Contains(err.Error(), "node 1 lacks 1") {
		t.Fatalf("wait with b missing on node 1: %v", err)
	}
	tr.seen(1, "b", t0.Add(5*time.Millisecond))
	if err := tr.wait(ctx); err != nil {
		t.Fatal(err)
	}
	// a from node 0 (its origin) and b from node 2 (its origin) are excluded.
	lat := tr.latencies()
	if len(lat) != 4 {
		t.Fatalf("%d latencies %v, want 4", len(lat), lat)
	}
	want := map[time.Duration]bool{time.Millisecond: false, 3 * time.Millisecond: false, 5 * time.Millisecond: false}
	for _, d := range lat {
		if d >= time.Hour {
			t.Fatalf("latency %v: a later duplicate counted", d)
		}
		if _, ok := want[d]; ok {
			want[d] = true
		}
	}
	for d, ok := range want {
		if !ok {
			t.Fatalf("latencies %v lack %v", lat, d)
		}
	}
}
