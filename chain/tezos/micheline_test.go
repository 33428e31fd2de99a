package tezos

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"golang.org/x/crypto/blake2b"

	"github.com/go-aleph/go-aleph/message"
)

func parseTime(tb testing.TB, text string) message.Time {
	tb.Helper()
	var tm message.Time
	if err := json.Unmarshal([]byte(text), &tm); err != nil {
		tb.Fatalf("time %s: %v", text, err)
	}
	return tm
}

// TestISOTime checks the time formatting against CPython 3.11:
// datetime.fromtimestamp(float(text), timezone.utc), then microsecond // 1000, which
// is what pyaleph's datetime_to_iso_8601 prints. The cases where the fraction's
// decimal digits, truncated, would give another answer are marked.
func TestISOTime(t *testing.T) {
	tests := []struct {
		text string
		want string
	}{
		{"1663944079.029", "2022-09-23T14:41:19.029Z"}, // tezos.json[2]; the double is …0289998
		{"1657534863.1375434", "2022-07-11T10:21:03.137Z"},
		{"1661451074.86", "2022-08-25T18:11:14.860Z"},
		{"1641038783.675789", "2022-01-01T12:06:23.675Z"},  // pyaleph test_datetime_to_iso_8601
		{"1663944079.0289999", "2022-09-23T14:41:19.029Z"}, // digits say .028: µs rounding lifts it
		{"1663944079.0299996", "2022-09-23T14:41:19.029Z"}, // digits round to .030000, the double does not
		{"1663944079.9999997", "2022-09-23T14:41:20.000Z"}, // rolls over to the next second
		{"0.0009995", "1970-01-01T00:00:00.001Z"},          // digits say .000
		{"1663944079.9995", "2022-09-23T14:41:19.999Z"},
		{"1700000000.0005", "2023-11-14T22:13:20.000Z"},
		{"1700000000.0015", "2023-11-14T22:13:20.001Z"},
		{"1663944079.00049", "2022-09-23T14:41:19.000Z"},
		{"1e9", "2001-09-09T01:46:40.000Z"},
		{"1663944079", "2022-09-23T14:41:19.000Z"},
		{"0", "1970-01-01T00:00:00.000Z"},
		{"9223372036.0", "2262-04-11T23:47:16.000Z"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := ISOTime(parseTime(t, tt.text))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	for _, text := range []string{"-1", "-0.5", "9223372036.5", "1e300"} {
		if got, err := ISOTime(parseTime(t, text)); err == nil {
			t.Errorf("time %s gave %s, want an out-of-range error", text, got)
		}
	}
}

// TestMichelinePayload rebuilds the payload of tezos.json[2] and compares it with
// testdata/primitives.json.
func TestMichelinePayload(t *testing.T) {
	data, err := os.ReadFile("../../testdata/primitives.json")
	if err != nil {
		t.Fatal(err)
	}
	var prim struct {
		Payload []struct {
			PayloadHex string  `json:"payload_hex"`
			Blake2b256 string  `json:"blake2b_256"`
			ISOTime    string  `json:"iso_time"`
			Time       float64 `json:"time"`
		} `json:"tezos_micheline_payload"`
	}
	if err := json.Unmarshal(data, &prim); err != nil {
		t.Fatal(err)
	}
	if len(prim.Payload) == 0 {
		t.Fatal("no tezos_micheline_payload in primitives.json")
	}
	want := prim.Payload[0]
	m := vectorMessage(t, 2)
	iso, err := ISOTime(m.Time)
	if err != nil || iso != want.ISOTime {
		t.Fatalf("ISOTime = %q, %v; want %s", iso, err, want.ISOTime)
	}
	got, err := MichelinePayload(m.VerificationBuffer(), m.Time, DefaultDAppURL)
	if err != nil {
		t.Fatal(err)
	}
	if h := hex.EncodeToString(got); h != want.PayloadHex {
		t.Fatalf("payload\n got %s\nwant %s", h, want.PayloadHex)
	}
	if sum := blake2b.Sum256(got); hex.EncodeToString(sum[:]) != want.Blake2b256 {
		t.Fatalf("blake2b-256 %x, want %s", sum, want.Blake2b256)
	}
	// The length field is decimal ASCII of the hex length: 168 bytes → "336".
	if string(got[:6]) != "\x05\x01\x00336" {
		t.Fatalf("payload starts %q", got[:6])
	}
}

// TestMichelineLengthDigits checks the length field as P grows past digit boundaries.
func TestMichelineLengthDigits(t *testing.T) {
	tm := parseTime(t, "1663944079.029")
	const fixed = len("Tezos Signed Message: ") + 1 + len("2022-09-23T14:41:19.029Z") + 1
	tests := []struct {
		bufLen int
		want   string
	}{
		{0, "96"},           // P = 48 bytes with an empty dApp URL and buffer
		{2, "100"},          // 50 bytes
		{4952, "10000"},     // 5000 bytes
		{499952, "1000000"}, // 500000 bytes
	}
	for _, tt := range tests {
		buf := make([]byte, tt.bufLen)
		got, err := MichelinePayload(buf, tm, "")
		if err != nil {
			t.Fatal(err)
		}
		head := string(got[3 : 3+len(tt.want)])
		if head != tt.want || len(got) != 3+len(tt.want)+fixed+tt.bufLen {
			t.Errorf("buffer of %d bytes: length field %q, total %d", tt.bufLen, head, len(got))
		}
	}
}
