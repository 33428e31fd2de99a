package client

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

const (
	hashA = "a7b56e1e2d6f4e9d6d1ed3a3f0a0c24de9a2b7c3d4d1c2b3a4f5e6d7c8b9a0f1"
	hashB = "b7b56e1e2d6f4e9d6d1ed3a3f0a0c24de9a2b7c3d4d1c2b3a4f5e6d7c8b9a0f2"
)

// processedJSON is a message object in the API's shape (ccn-protocol.md §5.2).
const processedJSON = `{"sender":"0xAbC","chain":"ETH","signature":"0x12","type":"POST",
 "item_content":"{\"type\":\"t\"}","item_type":"inline","item_hash":"` + hashA + `",
 "time":1700000000.1230,"channel":"TEST","content":{"type":"t","address":"0xAbC","time":1700000000.123,"content":{"x":1}},
 "size":129,"confirmed":true,"confirmations":[{"chain":"ETH","hash":"0xdead","height":123}]}`

func TestMessageDecode(t *testing.T) {
	var m Message
	if err := json.Unmarshal([]byte(processedJSON), &m); err != nil {
		t.Fatal(err)
	}
	if m.Sender != "0xAbC" || m.Chain != message.ChainETH || m.Type != message.TypePost || m.ItemHash != hashA ||
		m.ItemType != message.ItemInline || m.Channel != "TEST" || m.Signature != "0x12" || m.ItemContent != `{"type":"t"}` {
		t.Errorf("envelope %+v", m.Message)
	}
	if m.Time.String() != "1700000000.1230" {
		t.Errorf("time text %q: the exact number text must be kept", m.Time.String())
	}
	if m.Size != 129 || !m.Confirmed || len(m.Confirmations) != 1 || m.Confirmations[0].Height != 123 {
		t.Errorf("extras: size %d confirmed %v confirmations %+v", m.Size, m.Confirmed, m.Confirmations)
	}
	if string(m.Raw) != processedJSON {
		t.Error("Raw is not the object as received")
	}
	// MarshalJSON writes the envelope then the extras, and decodes back the same.
	out, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	if byValue, err := json.Marshal(m); err != nil || string(byValue) != string(out) {
		t.Errorf("a Message value encodes differently: %s", byValue)
	}
	var back Message
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.ItemHash != m.ItemHash || back.Time.String() != m.Time.String() || back.Size != m.Size || string(back.Content) != `{"type":"t","address":"0xAbC","time":1700000000.123,"content":{"x":1}}` {
		t.Errorf("round trip: %s", out)
	}
}

func TestMessageDecodeVariants(t *testing.T) {
	tests := []struct {
		name  string
		json  string
		check func(t *testing.T, m *Message)
		bad   bool
	}{
		{"pending copy with ISO time", `{"sender":"s","chain":"ETH","type":"POST","item_hash":"` + hashA + `","item_type":"inline","time":"2023-11-14T22:13:20.123000+00:00"}`,
			func(t *testing.T, m *Message) {
				if got := m.Time.Seconds(); got != 1700000000.123 {
					t.Errorf("time %v", got)
				}
			}, false},
		{"object signature", `{"sender":"S","chain":"SOL","type":"POST","item_hash":"` + hashA + `","time":1,"signature":{"signature":"x", "publicKey":"y"}}`,
			func(t *testing.T, m *Message) {
				if m.Signature != `{"signature":"x","publicKey":"y"}` {
					t.Errorf("signature %q", m.Signature)
				}
			}, false},
		{"skeleton without content", `{"sender":"s","chain":"ETH","type":"POST","item_hash":"` + hashA + `","item_type":"inline","time":1.5,"channel":null,"signature":null,"owner":"o","forgotten_by":["` + hashB + `"]}`,
			func(t *testing.T, m *Message) {
				if m.Content != nil || m.Channel != "" || m.Signature != "" || m.Size != 0 {
					t.Errorf("skeleton %+v", m)
				}
			}, false},
		{"item type inferred", `{"item_content":"{}","item_hash":"` + hashA + `","time":1}`,
			func(t *testing.T, m *Message) {
				if m.ItemType != message.ItemInline {
					t.Errorf("item type %q", m.ItemType)
				}
			}, false},
		{"float size", `{"item_hash":"h","size":12.0}`, func(t *testing.T, m *Message) {
			if m.Size != 12 {
				t.Errorf("size %d", m.Size)
			}
		}, false},
		{"not an object", `[1]`, nil, true},
		{"time is a bool", `{"time":true}`, nil, true},
		{"bad ISO time", `{"time":"yesterday"}`, nil, true},
		{"signature is a number", `{"signature":5}`, nil, true},
		{"size is text", `{"size":"big"}`, nil, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var m Message
			err := json.Unmarshal([]byte(tc.json), &m)
			if tc.bad {
				if err == nil {
					t.Fatalf("accepted: %+v", m)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &m)
		})
	}
}

func TestMessageResultShapes(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		status  message.Status
		check   func(t *testing.T, r *MessageResult)
		wantErr error
	}{
		{"processed", `{"status":"processed","item_hash":"` + hashA + `","reception_time":"2023-11-14T22:13:20.5+00:00","message":` + processedJSON + `}`,
			message.StatusProcessed, func(t *testing.T, r *MessageResult) {
				if r.Message == nil || r.Message.ItemHash != hashA {
					t.Error("no message")
				}
				if !r.ReceptionTime.Equal(time.Unix(1700000000, 500_000_000)) {
					t.Errorf("reception time %v", r.ReceptionTime)
				}
			}, nil},
		{"pending", `{"status":"pending","item_hash":"` + hashA + `","reception_time":"2023-11-14T22:13:20+00:00","messages":[{"sender":"s","chain":"ETH","type":"POST","item_hash":"` + hashA + `","item_type":"inline","item_content":"{}","time":"2023-11-14T22:13:20+00:00","signature":"0x1"}]}`,
			message.StatusPending, func(t *testing.T, r *MessageResult) {
				if len(r.Pending) != 1 || r.Pending[0].Time.Seconds() != 1700000000 || r.Message != nil {
					t.Errorf("pending %+v", r.Pending)
				}
			}, &StatusError{}},
		{"rejected with invalid message", `{"status":"rejected","item_hash":"` + hashA + `","reception_time":"2023-11-14T22:13:20+00:00","message":{"chain":"NOPE","time":"x"},"error_code":1,"details":{"errors":["bad"]}}`,
			message.StatusRejected, func(t *testing.T, r *MessageResult) {
				if r.ErrorCode != message.CodeInvalidSignature || string(r.Details) != `{"errors":["bad"]}` || r.Message != nil || len(r.MessageJSON) == 0 {
					t.Errorf("rejected %+v", r)
				}
				var rej *RejectedError
				if !errors.As(r.Err(), &rej) || rej.Code != message.CodeInvalidSignature || message.CodeOf(r.Err()) != message.CodeInvalidSignature {
					t.Errorf("Err = %v", r.Err())
				}
			}, &RejectedError{}},
		{"forgotten", `{"status":"forgotten","item_hash":"` + hashA + `","reception_time":"2023-11-14T22:13:20+00:00","message":{"sender":"s","chain":"ETH","type":"POST","item_hash":"` + hashA + `","item_type":"inline","time":1700000000.0,"channel":null,"signature":"0x1"},"forgotten_by":["` + hashB + `"]}`,
			message.StatusForgotten, func(t *testing.T, r *MessageResult) {
				var fe *ForgottenError
				if !errors.As(r.Err(), &fe) || fe.ItemHash != hashA || len(fe.ForgottenBy) != 1 || fe.ForgottenBy[0] != hashB {
					t.Errorf("Err = %v", r.Err())
				}
				if r.Err().Error() != "message "+hashA+" has been forgotten by "+hashB {
					t.Errorf("message %q", r.Err())
				}
			}, &ForgottenError{}},
		{"removing", `{"status":"removing","item_hash":"` + hashA + `","reception_time":"2023-11-14T22:13:20+00:00","message":` + processedJSON + `,"reason":"balance_insufficient"}`,
			message.StatusRemoving, func(t *testing.T, r *MessageResult) {
				if r.Reason != "balance_insufficient" || r.Message == nil {
					t.Errorf("removing %+v", r)
				}
			}, nil},
		{"removed", `{"status":"removed","item_hash":"` + hashA + `","reception_time":"2023-11-14T22:13:20+00:00","message":{"item_hash":"` + hashA + `","time":1},"reason":"balance_insufficient","removed_at":1700000100.0,"size":10}`,
			message.StatusRemoved, func(t *testing.T, r *MessageResult) {
				if !r.RemovedAt.Equal(time.Unix(1700000100, 0)) {
					t.Errorf("removed at %v", r.RemovedAt)
				}
			}, &StatusError{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := decodeMessageResult([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tc.status || r.ItemHash != hashA {
				t.Errorf("status %s hash %s", r.Status, r.ItemHash)
			}
			tc.check(t, r)
			err = r.Err()
			switch tc.wantErr.(type) {
			case nil:
				if err != nil {
					t.Errorf("Err = %v", err)
				}
			case *StatusError:
				var se *StatusError
				if !errors.As(err, &se) || se.Status != tc.status {
					t.Errorf("Err = %v, want a StatusError", err)
				}
			case *RejectedError:
				var re *RejectedError
				if !errors.As(err, &re) {
					t.Errorf("Err = %v, want a RejectedError", err)
				}
			case *ForgottenError:
				var fe *ForgottenError
				if !errors.As(err, &fe) {
					t.Errorf("Err = %v, want a ForgottenError", err)
				}
			}
		})
	}
	for _, bad := range []string{`{}`, `[]`, `{"status":"processed","message":{"time":"x"}}`, `{"status":"pending","messages":[1]}`} {
		if _, err := decodeMessageResult([]byte(bad)); err == nil {
			t.Errorf("decoded %s", bad)
		}
	}
}

func TestPostDecode(t *testing.T) {
	raw := `{"chain":"ETH","item_hash":"` + hashB + `","sender":"0xS","type":"amend","channel":null,"confirmed":false,
	 "content":{"body":"new"},"item_content":null,"item_type":"inline","signature":{"signature":"s","publicKey":"p"},
	 "size":20.0,"time":1700000001.5,"original_item_hash":"` + hashA + `","original_signature":"0xo","original_type":"blog",
	 "hash":"` + hashA + `","address":"0xS","ref":{"item_hash":"` + hashA + `"}}`
	var p Post
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		t.Fatal(err)
	}
	if p.ItemHash != hashB || p.OriginalItemHash != hashA || p.Hash != hashA || p.OriginalType != "blog" || p.Type != "amend" ||
		p.Signature != `{"signature":"s","publicKey":"p"}` || p.OriginalSignature != "0xo" || p.Size != 20 ||
		string(p.Ref) != hashA || p.Channel != "" || p.ItemContent != "" || string(p.Content) != `{"body":"new"}` ||
		!p.Time.Equal(time.Unix(1700000001, 500_000_000)) || string(p.Raw) != raw {
		t.Errorf("post %+v", p)
	}
	var v1 PostV1
	if err := json.Unmarshal([]byte(`{"item_hash":"h","content":1,"original_item_hash":"o","original_type":"t","address":"a","ref":null,"channel":"c","created":"2023-11-14T22:13:20+00:00","last_updated":"2023-11-14T22:13:21+00:00"}`), &v1); err != nil {
		t.Fatal(err)
	}
	if v1.Ref != "" || v1.LastUpdated.Sub(v1.Created.Time) != time.Second {
		t.Errorf("v1 %+v", v1)
	}
	for _, bad := range []string{`{"ref":1}`, `{"signature":[]}`, `{"size":"x"}`} {
		if err := json.Unmarshal([]byte(bad), &p); err == nil {
			t.Errorf("decoded post %s", bad)
		}
	}
}

func TestTimeJSON(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{`1700000000.25`, time.Unix(1700000000, 250_000_000), false},
		{`"2023-11-14T22:13:20+00:00"`, time.Unix(1700000000, 0), false},
		{`"2023-11-14T23:13:20.000001+01:00"`, time.Unix(1700000000, 1000), false},
		{`"2023-11-14T22:13:20.5"`, time.Unix(1700000000, 500_000_000), false},
		{`"1700000000.5"`, time.Unix(1700000000, 500_000_000), false},
		{`null`, time.Time{}, false},
		{`""`, time.Time{}, false},
		{`"soon"`, time.Time{}, true},
		{`true`, time.Time{}, true},
		{`1e999`, time.Time{}, true},
	}
	for _, tc := range tests {
		var tm Time
		err := json.Unmarshal([]byte(tc.in), &tm)
		if tc.bad {
			if err == nil {
				t.Errorf("%s accepted as %v", tc.in, tm)
			}
			continue
		}
		if err != nil || !tm.Equal(tc.want) {
			t.Errorf("%s = %v, %v; want %v", tc.in, tm.Time, err, tc.want)
		}
	}
	b, _ := json.Marshal(Time{time.Unix(1700000000, 0)})
	if string(b) != `"2023-11-14T22:13:20Z"` {
		t.Errorf("marshal %s", b)
	}
	b, _ = json.Marshal(Time{})
	if string(b) != "null" {
		t.Errorf("marshal zero %s", b)
	}
}

func TestErrorsText(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&APIError{Method: "GET", Path: "/api/v0/x", StatusCode: 500, Body: []byte("boom\n  at line")}, "GET /api/v0/x: http 500: boom at line"},
		{&APIError{Method: "GET", Path: "/p", StatusCode: 404}, "GET /p: http 404"},
		{&RejectedError{ItemHash: hashA, Code: message.CodePermissionDenied, Reason: "not allowed"}, "message " + hashA + " rejected: PERMISSION_DENIED (2): not allowed"},
		{&RejectedError{Code: message.CodeForgetTargetNotFound, Details: json.RawMessage(`[{"message": "x"}]`)}, `message rejected: FORGET_TARGET_NOT_FOUND (501): [{"message": "x"}]`},
		{&ForgottenError{ItemHash: "h"}, "message h has been forgotten"},
		{&StatusError{ItemHash: "h", Status: message.StatusPending}, "message h is pending"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("got  %q\nwant %q", got, tc.want)
		}
	}
	if !errors.Is(&APIError{StatusCode: 404}, ErrNotFound) || errors.Is(&APIError{StatusCode: 410}, ErrNotFound) {
		t.Error("ErrNotFound matching")
	}
	if got := oneLine([]byte("ééééé"), 3); got != "é…" {
		t.Errorf("oneLine cut inside a character: %q", got)
	}
}
