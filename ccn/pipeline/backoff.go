package pipeline

import (
	"math"
	"math/rand/v2"
	"time"
)

// backoffCeiling is the upper bound of the retry delay after a message has
// failed retries times before: min(2^retries s, max).
func backoffCeiling(retries int, max time.Duration) time.Duration {
	if retries < 0 {
		retries = 0
	}
	if retries > 32 { // 2^33 s would overflow a Duration; it is past any cap anyway
		return max
	}
	c := time.Duration(int64(1)<<retries) * time.Second
	if c > max {
		return max
	}
	return c
}

// backoff returns a full-jitter delay U(0, min(2^retries s, max)), drawing from
// rnd (rnd(n) returns a value in [0, n)). A nil rnd uses math/rand/v2.
func backoff(retries int, max time.Duration, rnd func(n int64) int64) time.Duration {
	c := backoffCeiling(retries, max)
	if c <= 0 {
		return 0
	}
	if rnd == nil {
		rnd = rand.Int64N
	}
	n := int64(c)
	if n < math.MaxInt64 {
		n++ // include the ceiling
	}
	return time.Duration(rnd(n))
}
