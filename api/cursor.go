package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/store"
)

// Cursors are base64url (no padding) of compact sorted-key JSON, as pyaleph's:
// {"h": item_hash, "t": ISO time} for messages and posts, {"k": key, "o": owner,
// "t": ISO time} for aggregates and {"a": address} for address stats. The time keeps every digit of the float it came from, so a
// cursor lands exactly between two rows.

type timeCursor struct {
	H string `json:"h"`
	T string `json:"t"`
}

// encodeCursor returns the cursor text of c, or nil at the end of a listing.
func encodeCursor(c *store.Cursor) *string {
	if c == nil {
		return nil
	}
	b, err := json.Marshal(timeCursor{H: c.Hash, T: exactISO(c.Time)})
	if err != nil { // strings always encode
		return nil
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

// maxCursorLen bounds what is decoded.
const maxCursorLen = 1024

func decodeTimeCursor(s string) (*store.Cursor, error) {
	if len(s) > maxCursorLen {
		return nil, errors.New("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("decode cursor: %w", err)
	}
	var c timeCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode cursor: %w", err)
	}
	if c.T == "" {
		return nil, errors.New("cursor has no time")
	}
	t, err := parseISOSeconds(c.T)
	if err != nil {
		return nil, err
	}
	return &store.Cursor{Time: t, Hash: c.H}, nil
}

// exactISO writes unix seconds as an ISO-8601 UTC time with "+00:00" and as many
// fractional digits as the float needs to be read back exactly.
func exactISO(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 253402300799 {
		f = 0
	}
	s := strconv.FormatFloat(f, 'f', -1, 64)
	whole, frac, _ := strings.Cut(s, ".")
	sec, _ := strconv.ParseInt(whole, 10, 64)
	out := time.Unix(sec, 0).UTC().Format("2006-01-02T15:04:05")
	if frac != "" {
		out += "." + frac
	}
	return out + "+00:00"
}

var isoRe = regexp.MustCompile(`^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,18}))?(Z|[+-]\d{2}:?\d{2})?$`)

// parseISOSeconds reads an ISO-8601 time (a naive time is UTC, as pyaleph's are)
// back into unix seconds, keeping every fractional digit.
func parseISOSeconds(s string) (float64, error) {
	m := isoRe.FindStringSubmatch(s)
	if m == nil {
		return 0, fmt.Errorf("invalid ISO time %q", clip(s))
	}
	layout := "2006-01-02T15:04:05"
	text := m[1] + "T" + m[2]
	if off := m[4]; off != "" && off != "Z" {
		if !strings.Contains(off, ":") {
			off = off[:3] + ":" + off[3:]
		}
		layout += "-07:00"
		text += off
	}
	t, err := time.Parse(layout, text)
	if err != nil {
		return 0, fmt.Errorf("invalid ISO time %q: %w", clip(s), err)
	}
	sec := t.Unix()
	if sec < 0 {
		return 0, fmt.Errorf("ISO time %q is before 1970", clip(s))
	}
	num := strconv.FormatInt(sec, 10)
	if m[3] != "" {
		num += "." + m[3]
	}
	return strconv.ParseFloat(num, 64)
}

// isoTime writes t as Python's datetime.isoformat() does for an aware UTC time:
// microseconds only when non-zero, and "+00:00".
func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.UTC().Round(time.Microsecond)
	out := t.Format("2006-01-02T15:04:05")
	if us := t.Nanosecond() / 1000; us != 0 {
		out += fmt.Sprintf(".%06d", us)
	}
	return out + "+00:00"
}

// isoSeconds writes float unix seconds like isoTime.
func isoSeconds(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		f = 0
	}
	sec, frac := math.Modf(f)
	return isoTime(time.Unix(int64(sec), int64(math.Round(frac*1e6))*1000))
}

// encodeAddressCursor returns the address stats cursor {"a": address}.
func encodeAddressCursor(addr string) *string {
	b, err := json.Marshal(struct {
		A string `json:"a"`
	}{addr})
	if err != nil { // strings always encode
		return nil
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

func decodeAddressCursor(s string) (string, error) {
	if len(s) > maxCursorLen {
		return "", errors.New("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return "", fmt.Errorf("decode cursor: %w", err)
	}
	var c struct {
		A *string `json:"a"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("decode cursor: %w", err)
	}
	if c.A == nil {
		return "", errors.New("cursor has no address")
	}
	return *c.A, nil
}

// aggregateCursor is pyaleph's aggregates cursor.
type aggregateCursor struct {
	K string `json:"k"`
	O string `json:"o"`
	T string `json:"t"`
}

// encodeAggregateCursor returns the cursor that continues after a.
func encodeAggregateCursor(a *store.Aggregate, sortBy string) *string {
	t := a.LastUpdateTime
	if sortBy == "creation_time" {
		t = a.CreationTime
	}
	b, err := json.Marshal(aggregateCursor{K: a.Key, O: a.Owner, T: exactISO(t)})
	if err != nil { // strings always encode
		return nil
	}
	s := base64.RawURLEncoding.EncodeToString(b)
	return &s
}

// decodeAggregateCursor reads an aggregates cursor into the store's form: the
// sort time and "owner/key".
func decodeAggregateCursor(s string) (*store.Cursor, error) {
	if len(s) > maxCursorLen {
		return nil, errors.New("cursor too long")
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return nil, fmt.Errorf("decode cursor: %w", err)
	}
	var c aggregateCursor
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("decode cursor: %w", err)
	}
	if c.T == "" || c.O == "" || strings.Contains(c.O, "/") {
		return nil, errors.New("cursor has no time or owner")
	}
	t, err := parseISOSeconds(c.T)
	if err != nil {
		return nil, err
	}
	return &store.Cursor{Time: t, Hash: c.O + "/" + c.K}, nil
}
