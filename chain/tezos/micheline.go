package tezos

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// michelinePrefix starts every micheline payload: 0x05 (packed Michelson data) then
// 0x01 0x00, as the old Taquito/Beacon recipe wrote it.
var michelinePrefix = [3]byte{0x05, 0x01, 0x00}

// ISOTime formats the envelope time as wallets embed it in micheline payloads:
// "2006-01-02T15:04:05.000Z" in UTC, milliseconds truncated.
//
// It reproduces what pyaleph does, datetime.fromtimestamp(time, utc) and then
// microsecond // 1000: CPython first rounds the float's fraction to whole
// microseconds (half to even) and only then truncates to milliseconds. So
// 1663944079.029 (stored as …0289998) gives .029, and 1663944079.9999997 rolls over
// to the next second. Digits beyond microseconds in the JSON text therefore matter
// only through that rounding, and the text itself is not used.
func ISOTime(t message.Time) (string, error) {
	s := t.Seconds()
	// Protocol times are 0 … MaxContentTime; outside that range the year could leave
	// four digits, which Python would format differently.
	if math.IsNaN(s) || s < 0 || s > message.MaxContentTime {
		return "", fmt.Errorf("%s is out of range 0 to %.1f", t.String(), message.MaxContentTime)
	}
	sec, frac := math.Modf(s)
	us := math.RoundToEven(frac * 1e6)
	if us >= 1e6 {
		us -= 1e6
		sec++
	}
	ms := int(us) / 1000
	return time.Unix(int64(sec), 0).UTC().Format("2006-01-02T15:04:05") + fmt.Sprintf(".%03dZ", ms), nil
}

// MichelinePayload returns the bytes a Tezos web wallet signs for buffer:
// 0x05 0x01 0x00 ‖ ascii(decimal(len(hex(P)))) ‖ P, where
// P = "Tezos Signed Message: " + dAppURL + " " + ISOTime(t) + " " + buffer.
// The length field is the decimal text of twice len(P), not a binary integer.
func MichelinePayload(buffer []byte, t message.Time, dAppURL string) ([]byte, error) {
	iso, err := ISOTime(t)
	if err != nil {
		return nil, err
	}
	const head = "Tezos Signed Message: "
	plen := len(head) + len(dAppURL) + 1 + len(iso) + 1 + len(buffer)
	size := strconv.Itoa(2 * plen)
	out := make([]byte, 0, len(michelinePrefix)+len(size)+plen)
	out = append(out, michelinePrefix[:]...)
	out = append(out, size...)
	out = append(out, head...)
	out = append(out, dAppURL...)
	out = append(out, ' ')
	out = append(out, iso...)
	out = append(out, ' ')
	out = append(out, buffer...)
	return out, nil
}
