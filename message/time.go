package message

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/go-aleph/go-aleph/pyjson"
)

// Time is a unix time in seconds, as a JSON number. It keeps the exact text it was
// decoded from, so that a node re-emits "1648467547.771" and not a rounded variant.
type Time struct {
	text string
	sec  float64
}

// TimeFromSeconds makes a Time from unix seconds; its text is Python's float repr.
func TimeFromSeconds(s float64) Time {
	return Time{text: pyjson.FormatFloat(s), sec: s}
}

// TimeFrom makes a Time from a time.Time, at microsecond precision like Python's time.time().
func TimeFrom(t time.Time) Time {
	return TimeFromSeconds(float64(t.UnixMicro()) / 1e6)
}

// Seconds returns the time as float unix seconds.
func (t Time) Seconds() float64 { return t.sec }

// Std returns the time as a time.Time in UTC.
func (t Time) Std() time.Time {
	sec, frac := math.Modf(t.sec)
	return time.Unix(int64(sec), int64(math.Round(frac*1e9))).UTC()
}

// IsZero reports whether t was never set.
func (t Time) IsZero() bool { return t.text == "" && t.sec == 0 }

// String returns the JSON text of the time.
func (t Time) String() string {
	if t.text == "" {
		return pyjson.FormatFloat(t.sec)
	}
	return t.text
}

// MarshalJSON writes the original number text.
func (t Time) MarshalJSON() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalJSON accepts a JSON number only.
func (t *Time) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return Errorf(CodeInvalidFormat, "", "must be a number")
	}
	if !json.Valid(b) {
		return Errorf(CodeInvalidFormat, "", "invalid number %q", truncate(string(b), 40))
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) {
		return Errorf(CodeInvalidFormat, "", "number %q out of range", truncate(string(b), 40))
	}
	*t = Time{text: string(b), sec: f}
	return nil
}

func (t Time) validate(field string) error {
	return checkTimeRange(field, t.sec)
}

func checkTimeRange(field string, s float64) error {
	if math.IsNaN(s) || s < 0 || s > MaxContentTime {
		return Errorf(CodeInvalidFormat, field, "%s is out of range 0 to %.1f", pyjson.FormatFloat(s), MaxContentTime)
	}
	return nil
}
