package events

import (
	"testing"
	"time"
)

func TestPublishSubscribe(t *testing.T) {
	b := NewBus()
	s := b.Subscribe(4)
	defer s.Close()
	b.Publish(Event{Kind: Processed, ItemHash: "a"})
	select {
	case e := <-s.C:
		if e.ItemHash != "a" || e.Kind != Processed {
			t.Fatalf("got %+v", e)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
}

func TestSlowSubscriberIsDropped(t *testing.T) {
	b := NewBus()
	slow := b.Subscribe(1)
	fast := b.Subscribe(10)
	for i := 0; i < 3; i++ {
		b.Publish(Event{Kind: Processed, ItemHash: "x"})
	}
	if !slow.Lagged() {
		t.Error("slow subscriber not marked lagged")
	}
	n := 0
	for range slow.C { // closed after the buffered event
		n++
	}
	if n != 1 {
		t.Errorf("slow subscriber got %d events before close, want 1", n)
	}
	if len(fast.C) != 3 || fast.Lagged() {
		t.Errorf("fast subscriber has %d events, lagged=%v", len(fast.C), fast.Lagged())
	}
	fast.Close()
	fast.Close() // idempotent
}

func TestAwait(t *testing.T) {
	b := NewBus()
	ch, cancel := b.Await("h")
	defer cancel()
	other, cancelOther := b.Await("other")
	cancelOther()
	b.Publish(Event{Kind: Rejected, ItemHash: "h", Code: 1})
	b.Publish(Event{Kind: Processed, ItemHash: "h"}) // second outcome must not block
	e := <-ch
	if e.Kind != Rejected || e.Code != 1 {
		t.Errorf("got %+v", e)
	}
	select {
	case e := <-other:
		t.Errorf("cancelled waiter got %+v", e)
	default:
	}
	if len(b.waiters["other"]) != 0 {
		t.Error("cancel did not remove the waiter")
	}
}
