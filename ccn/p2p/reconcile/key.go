// Package reconcile finds which messages two core channel nodes hold that the
// other lacks, with range-based set reconciliation (A. Meyer's algorithm, as in
// Negentropy). Each node keeps a Set of message keys ordered by (envelope time,
// item hash); Initiate and Respond run one session between two sets over any
// io.ReadWriter and report the keys to fetch (Need) and to offer (Have). The
// traffic grows with the size of the difference, not with the size of the sets.
// docs/ANTI-ENTROPY.md describes the design, the wire format and its cost.
package reconcile

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// MaxHashLen is the longest Hash a Key may carry, in bytes.
const MaxHashLen = 128

// Key orders items: by Time (the message envelope time, float seconds), then by
// Hash (bytewise string compare).
type Key struct {
	Time float64
	Hash string
}

// ErrInvalidKey reports a key that cannot be stored or sent.
var ErrInvalidKey = errors.New("reconcile: invalid key")

// Compare returns -1, 0 or +1 as k sorts before, equal to or after o.
func (k Key) Compare(o Key) int {
	switch {
	case k.Time < o.Time:
		return -1
	case k.Time > o.Time:
		return 1
	}
	return strings.Compare(k.Hash, o.Hash)
}

// Validate reports whether k can be stored in a Set: a finite time and a
// non-empty hash of at most MaxHashLen bytes.
func (k Key) Validate() error {
	if math.IsNaN(k.Time) || math.IsInf(k.Time, 0) {
		return fmt.Errorf("%w: time %v is not finite", ErrInvalidKey, k.Time)
	}
	if k.Hash == "" {
		return fmt.Errorf("%w: empty hash", ErrInvalidKey)
	}
	if len(k.Hash) > MaxHashLen {
		return fmt.Errorf("%w: hash of %d bytes exceeds %d", ErrInvalidKey, len(k.Hash), MaxHashLen)
	}
	return nil
}

// String formats k as time/hash, for logs and test failures.
func (k Key) String() string {
	return strconv.FormatFloat(k.Time, 'f', -1, 64) + "/" + k.Hash
}

// Lowest is a bound below every valid key.
func Lowest() Key { return Key{Time: math.Inf(-1)} }

// Highest is a bound above every valid key.
func Highest() Key { return Key{Time: math.Inf(1)} }

// separator returns the shortest bound s with a < s <= b (a < b): it lets a
// range split between two neighbours without sending a whole hash.
func separator(a, b Key) Key {
	if a.Time < b.Time {
		return Key{Time: b.Time}
	}
	n := 0
	for n < len(a.Hash) && n < len(b.Hash) && a.Hash[n] == b.Hash[n] {
		n++
	}
	n++ // one byte past the common prefix; a < b so it exists in b
	// An even length keeps a hex prefix in the compact hex encoding.
	if n%2 == 1 && n < len(b.Hash) && isLowerHex(b.Hash[:n+1]) {
		n++
	}
	return Key{Time: b.Time, Hash: b.Hash[:n]}
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
