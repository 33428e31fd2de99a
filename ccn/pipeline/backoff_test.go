package pipeline

import (
	"testing"
	"time"
)

func TestBackoffCeiling(t *testing.T) {
	max := 300 * time.Second
	tests := []struct {
		retries int
		want    time.Duration
	}{
		{-1, time.Second}, {0, time.Second}, {1, 2 * time.Second}, {4, 16 * time.Second},
		{8, 256 * time.Second}, {9, max}, {32, max}, {33, max}, {34, max}, {63, max}, {64, max}, {1000, max},
	}
	for _, tc := range tests {
		if got := backoffCeiling(tc.retries, max); got != tc.want {
			t.Errorf("backoffCeiling(%d) = %v, want %v", tc.retries, got, tc.want)
		}
	}
}

func TestBackoffFullJitter(t *testing.T) {
	max := 300 * time.Second
	for retries := range 12 {
		ceil := backoffCeiling(retries, max)
		// The draw spans [0, ceiling]: its extremes give 0 and the ceiling.
		if got := backoff(retries, max, func(int64) int64 { return 0 }); got != 0 {
			t.Errorf("retries %d, lowest draw: %v, want 0", retries, got)
		}
		if got := backoff(retries, max, func(n int64) int64 { return n - 1 }); got != ceil {
			t.Errorf("retries %d, highest draw: %v, want %v", retries, got, ceil)
		}
		for range 100 {
			if got := backoff(retries, max, nil); got < 0 || got > ceil {
				t.Fatalf("retries %d: %v outside [0, %v]", retries, got, ceil)
			}
		}
	}
}
