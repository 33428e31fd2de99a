package protocol

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// Golden bytes: Python's msgpack.packb(..., use_bin_type=True) of the
// spec's examples (crn-compute.md Appendix C), as aleph-vm produces them.
const (
	goldenRequest = "81a573636f706586a474797065a468747470a470617468ac2f63616368652f6765742f61a66d6574686f64a3474554ac71756572795f737472696e67a3783d31a7686561646572739292c404686f7374c40f63726e2e6578616d706c652e6f726792c406616363657074c4032a2f2aa4626f6479c400"
	goldenResult  = "84a76865616465727383a474797065b3687474702e726573706f6e73652e7374617274a6737461747573ccc8a7686561646572739292c40e636f6e74656e742d6c656e677468c4013492c40c636f6e74656e742d74797065c4106170706c69636174696f6e2f6a736f6ea4626f647982a474797065b2687474702e726573706f6e73652e626f6479a4626f6479c40422343222a66f7574707574a0ab6f75747075745f64617461c400"
	goldenError   = "83a56572726f72a4626f6f6da974726163656261636bd92454726163656261636b20286d6f737420726563656e742063616c6c206c617374293a2078a66f7574707574a0"
	goldenReady   = "81a776657273696f6ea5322e302e30"
	goldenEvent   = "81a573636f706582a474797065ad616c6570682e6d657373616765a4626f6479a77b2261223a317d"
	goldenConfig  = "8eaa696e7075745f64617461c0a9696e74657266616365aa65786563757461626c65a7766d5f68617368d94061626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162616261626162a8656e636f64696e67a5706c61696eaa656e747279706f696e74a672756e2e7368a4636f6465c40a23212f62696e2f73680aa26970aa3137322e31362e342e32a5726f757465aa3137322e31362e342e31ab646e735f7365727665727391a7392e392e392e39a7766f6c756d65739183a56d6f756e74ad2f6f70742f7061636b61676573a6646576696365a3766463a9726561645f6f6e6c79c3a97661726961626c657381b0564d5f435553544f4d5f4e554d424552a23332a469707636c0ac697076365f67617465776179c0af617574686f72697a65645f6b657973c0"
	goldenAckOK   = "81a773756363657373c3"
	goldenAckFail = "83a773756363657373c2a56572726f72a3626164a974726163656261636ba27462"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func h(k, v string) [2][]byte { return [2][]byte{[]byte(k), []byte(v)} }

var (
	specScope = &Scope{Type: ScopeHTTP, Path: "/cache/get/a", Method: "GET", QueryString: "x=1",
		Headers: [][2][]byte{h("host", "crn.example.org"), h("accept", "*/*")}, Body: []byte{}}
	specResult = &Result{Status: 200, Headers: [][2][]byte{h("content-length", "4"), h("content-type", "application/json")},
		Body: []byte(`"42"`), OutputData: []byte{}}
	specConfig = &Configuration{Interface: InterfaceExecutable, VMHash: "abababababababababababababababababababababababababababababababab",
		Encoding: EncodingPlain, Entrypoint: "run.sh", Code: []byte("#!/bin/sh\n"), IP: "172.16.4.2", Route: "172.16.4.1",
		DNSServers: []string{"9.9.9.9"}, Volumes: []Volume{{Mount: "/opt/packages", Device: "vdc", ReadOnly: true}},
		Variables: map[string]string{"VM_CUSTOM_NUMBER": "32"}}
)

func TestEncodeMatchesAlephVM(t *testing.T) {
	cfgWire, err := EncodeConfiguration(specConfig)
	if err != nil {
		t.Fatal(err)
	}
	req, err := EncodeRequest(specScope)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := EncodeRequest(&Scope{Type: ScopeMessage, Body: []byte(`{"a":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := EncodeResult(specResult)
	if err != nil {
		t.Fatal(err)
	}
	errRes, err := EncodeResult(&Result{Error: "boom", Traceback: "Traceback (most recent call last): x"})
	if err != nil {
		t.Fatal(err)
	}
	cfgBody := unhex(t, goldenConfig)
	tests := []struct {
		name string
		got  []byte
		want []byte
	}{
		{"request", req, unhex(t, goldenRequest)},
		{"event request (body is str)", ev, unhex(t, goldenEvent)},
		{"result", res, unhex(t, goldenResult)},
		{"error result", errRes, unhex(t, goldenError)},
		{"ready", EncodeReady(Version), unhex(t, goldenReady)},
		{"configuration with length line", cfgWire, append([]byte("330\n"), cfgBody...)},
		{"ack ok", EncodeConfigAck(ConfigAck{Success: true}), unhex(t, goldenAckOK)},
		{"ack fail", EncodeConfigAck(ConfigAck{Error: "bad", Traceback: "tb"}), unhex(t, goldenAckFail)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !bytes.Equal(tt.got, tt.want) {
				t.Errorf("bytes differ\n got %x\nwant %x", tt.got, tt.want)
			}
		})
	}
	if len(cfgBody) != 330 {
		t.Fatalf("golden config is %d bytes; fix the length line above", len(cfgBody))
	}
}

func TestDecodeGolden(t *testing.T) {
	t.Run("request", func(t *testing.T) {
		s, err := DecodeRequestBytes(unhex(t, goldenRequest))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(s, specScope) {
			t.Errorf("got %+v", s)
		}
		if got := string(s.Header("host")); got != "crn.example.org" {
			t.Errorf("host header %q", got)
		}
	})
	t.Run("event", func(t *testing.T) {
		s, err := DecodeRequestBytes(unhex(t, goldenEvent))
		if err != nil {
			t.Fatal(err)
		}
		if s.Type != ScopeMessage || string(s.Body) != `{"a":1}` {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("result", func(t *testing.T) {
		r, err := DecodeResult(unhex(t, goldenResult))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(r, specResult) {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("error result", func(t *testing.T) {
		r, err := DecodeResult(unhex(t, goldenError))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Failed() || r.Error != "boom" || r.Traceback == "" {
			t.Errorf("got %+v", r)
		}
	})
	t.Run("configuration", func(t *testing.T) {
		c, err := DecodeConfiguration(unhex(t, goldenConfig))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, specConfig) {
			t.Errorf("got %+v\nwant %+v", c, specConfig)
		}
	})
	t.Run("ready", func(t *testing.T) {
		for in, want := range map[string]string{goldenReady: "2.0.0", "": LegacyVersion} {
			v, err := DecodeReady(unhex(t, in))
			if err != nil || v != want {
				t.Errorf("DecodeReady(%s) = %q, %v; want %q", in, v, err, want)
			}
		}
	})
	t.Run("acks", func(t *testing.T) {
		a, err := DecodeConfigAck(bytes.NewReader(unhex(t, goldenAckFail)))
		if err != nil || a.Success || a.Error != "bad" || a.Traceback != "tb" {
			t.Errorf("fail ack = %+v, %v", a, err)
		}
		a, err = DecodeConfigAck(bytes.NewReader(unhex(t, goldenAckOK)))
		if err != nil || !a.Success {
			t.Errorf("ok ack = %+v, %v", a, err)
		}
	})
}

// The bin/str distinction: headers and body are bin, query_string is str,
// nullable config strings are nil when empty.
func TestWireTypes(t *testing.T) {
	req, err := EncodeRequest(specScope)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := msgpack.Unmarshal(req, &v); err != nil {
		t.Fatal(err)
	}
	scope := v["scope"].(map[string]any)
	if _, ok := scope["query_string"].(string); !ok {
		t.Errorf("query_string is %T, want str", scope["query_string"])
	}
	if _, ok := scope["body"].([]byte); !ok {
		t.Errorf("body is %T, want bin", scope["body"])
	}
	pair := scope["headers"].([]any)[0].([]any)
	if _, ok := pair[0].([]byte); !ok {
		t.Errorf("header name is %T, want bin", pair[0])
	}
	cfg, err := msgpack.Marshal(&Configuration{Interface: InterfaceASGI, VMHash: "x", Encoding: EncodingSquashfs, Entrypoint: "main:app", Code: []byte{}})
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := msgpack.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"input_data", "ip", "route", "variables", "ipv6", "ipv6_gateway", "authorized_keys"} {
		if c[k] != nil {
			t.Errorf("%s = %#v, want nil", k, c[k])
		}
	}
	if b, ok := c["code"].([]byte); !ok || len(b) != 0 {
		t.Errorf("squashfs code = %#v, want empty bin", c["code"])
	}
	if a, ok := c["volumes"].([]any); !ok || len(a) != 0 {
		t.Errorf("volumes = %#v, want empty list", c["volumes"])
	}
}

func TestDecodeRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
	}{
		{"request not a map", func(b []byte) error { _, err := DecodeRequestBytes(b); return err }, enc("halt")},
		{"request without scope", func(b []byte) error { _, err := DecodeRequestBytes(b); return err }, enc(map[string]any{"x": 1})},
		{"unknown scope type", func(b []byte) error { _, err := DecodeRequestBytes(b); return err }, enc(map[string]any{"scope": map[string]any{"type": "websocket"}})},
		{"header of 3", func(b []byte) error { _, err := DecodeRequestBytes(b); return err },
			enc(map[string]any{"scope": map[string]any{"type": "http", "headers": [][]string{{"a", "b", "c"}}}})},
		{"result without headers or error", func(b []byte) error { _, err := DecodeResult(b); return err }, enc(map[string]any{"output": ""})},
		{"result bad status", func(b []byte) error { _, err := DecodeResult(b); return err },
			enc(map[string]any{"headers": map[string]any{"status": 7}})},
		{"truncated result", func(b []byte) error { _, err := DecodeResult(b); return err }, unhex(t, goldenResult)[:40]},
		{"config volume without mount", func(b []byte) error { _, err := DecodeConfiguration(b); return err },
			enc(map[string]any{"volumes": []map[string]any{{"device": "vdb"}}})},
		{"config wrong type", func(b []byte) error { _, err := DecodeConfiguration(b); return err }, enc(map[string]any{"volumes": "x"})},
		{"ready without version", func(b []byte) error { _, err := DecodeReady(b); return err }, enc(map[string]any{"v": "2"})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func FuzzDecodeResult(f *testing.F) {
	for _, s := range []string{goldenResult, goldenError, goldenReady} {
		f.Add(unhex(f, s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeResult(b)
		if err != nil {
			return
		}
		// A decoded result re-encodes and decodes to the same value.
		out, err := EncodeResult(r)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeResult(out); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func FuzzDecodeConfiguration(f *testing.F) {
	f.Add(unhex(f, goldenConfig))
	f.Add(unhex(f, goldenAckFail))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeConfiguration(b)
		if err != nil {
			return
		}
		if _, err := EncodeConfiguration(c); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzDecodeScope(f *testing.F) {
	f.Add(unhex(f, goldenRequest))
	f.Add(unhex(f, goldenEvent))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeRequestBytes(b)
		if err != nil {
			return
		}
		out, err := EncodeRequest(s)
		if err != nil {
			t.Fatal(err)
		}
		s2, err := DecodeRequestBytes(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(s.Headers, s2.Headers) || !bytes.Equal(s.Body, s2.Body) || s.Path != s2.Path {
			t.Fatalf("round trip changed the scope: %+v → %+v", s, s2)
		}
	})
}
