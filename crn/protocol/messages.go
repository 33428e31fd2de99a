package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// Protocol constants (crn-compute.md §2.3, Appendix A).
const (
	// Version is the protocol version aleph-init announces in its ready signal.
	Version = "2.0.0"
	// LegacyVersion is what an empty ready payload means.
	LegacyVersion = "1.0.0"

	// HaltCommand is the whole payload of a halt connection.
	HaltCommand = "halt"
	// StopLine and StopzLine are the guest's answer to halt, in that order.
	StopLine  = "STOP\n"
	StopzLine = "STOPZ\n"
	// ShellPrefix starts a debug-shell payload ("!" + command).
	ShellPrefix = '!'

	// MaxConfigAck bounds the guest's configuration answer (aleph-vm reads 1 MB).
	MaxConfigAck = 1 << 20
	// MaxConfiguration bounds the configuration payload: two 10 MB archives
	// (code, input_data) plus the rest.
	MaxConfiguration = 24 << 20
	// MaxRequest bounds one request payload (aleph-vm's guest reads 10 MB).
	MaxRequest = 10_000_000
	// MaxResult bounds one result read by the host.
	MaxResult = 64 << 20
	// MaxReady bounds the ready signal.
	MaxReady = 64 << 10
)

// Interface is how the guest runs the program (ConfigurationPayload.interface).
type Interface string

// The interfaces aleph-vm knows ("binary" is mapped to executable by the host).
const (
	InterfaceASGI       Interface = "asgi"
	InterfaceExecutable Interface = "executable"
)

// Encoding is how the code is shipped (ConfigurationPayload.encoding).
type Encoding string

// The code encodings.
const (
	EncodingPlain    Encoding = "plain"
	EncodingZip      Encoding = "zip"
	EncodingSquashfs Encoding = "squashfs"
)

// Scope types.
const (
	ScopeHTTP    = "http"
	ScopeMessage = "aleph.message"
)

// Decoding errors.
var (
	// ErrMalformed wraps every decoding failure of a protocol message.
	ErrMalformed = errors.New("malformed protocol message")
	// ErrNoResponse means the guest closed a request connection without a
	// result (the host answers 502).
	ErrNoResponse = errors.New("guest sent no response")
)

// Volume is one entry of ConfigurationPayload.volumes. Device is the
// Firecracker drive id (vdb, …) in a VM; in a sandbox the host has mounted the
// volume already and Device is empty or a host-side path.
type Volume struct {
	Mount    string `msgpack:"mount"`
	Device   string `msgpack:"device"`
	ReadOnly bool   `msgpack:"read_only"`
}

// Configuration is aleph-vm's ConfigurationPayload, version 2. Empty strings
// and nil slices/maps of nullable fields go on the wire as nil.
type Configuration struct {
	InputData      []byte            `msgpack:"input_data"`
	Interface      Interface         `msgpack:"interface"`
	VMHash         string            `msgpack:"vm_hash"`
	Encoding       Encoding          `msgpack:"encoding"`
	Entrypoint     string            `msgpack:"entrypoint"`
	Code           []byte            `msgpack:"code"`
	IP             string            `msgpack:"ip"`
	Route          string            `msgpack:"route"`
	DNSServers     []string          `msgpack:"dns_servers"`
	Volumes        []Volume          `msgpack:"volumes"`
	Variables      map[string]string `msgpack:"variables"`
	IPv6           string            `msgpack:"ipv6"`
	IPv6Gateway    string            `msgpack:"ipv6_gateway"`
	AuthorizedKeys []string          `msgpack:"authorized_keys"`
}

var _ msgpack.CustomEncoder = (*Configuration)(nil)

// EncodeMsgpack writes every key in aleph-vm's order, nullable ones as nil
// when empty; bytes as bin, strings as str.
func (c *Configuration) EncodeMsgpack(e *msgpack.Encoder) error {
	w := errWriter{e: e}
	w.mapLen(14)
	w.str("input_data")
	w.bin(c.InputData)
	w.str("interface")
	w.str(string(c.Interface))
	w.str("vm_hash")
	w.str(c.VMHash)
	w.str("encoding")
	w.str(string(c.Encoding))
	w.str("entrypoint")
	w.str(c.Entrypoint)
	w.str("code")
	w.bin(c.Code)
	w.str("ip")
	w.nullStr(c.IP)
	w.str("route")
	w.nullStr(c.Route)
	w.str("dns_servers")
	w.strs(c.DNSServers, false)
	w.str("volumes")
	w.arrayLen(len(c.Volumes))
	for _, v := range c.Volumes {
		w.mapLen(3)
		w.str("mount")
		w.str(v.Mount)
		w.str("device")
		w.str(v.Device)
		w.str("read_only")
		w.bool(v.ReadOnly)
	}
	w.str("variables")
	if c.Variables == nil {
		w.nil()
	} else {
		w.mapLen(len(c.Variables))
		for _, k := range slices.Sorted(maps.Keys(c.Variables)) {
			w.str(k)
			w.str(c.Variables[k])
		}
	}
	w.str("ipv6")
	w.nullStr(c.IPv6)
	w.str("ipv6_gateway")
	w.nullStr(c.IPv6Gateway)
	w.str("authorized_keys")
	w.strs(c.AuthorizedKeys, true)
	return w.err
}

// EncodeConfiguration returns the configuration as the host sends it:
// "<decimal length>\n" followed by the msgpack payload.
func EncodeConfiguration(c *Configuration) ([]byte, error) {
	body, err := msgpack.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode configuration: %w", err)
	}
	out := fmt.Appendf(nil, "%d\n", len(body))
	return append(out, body...), nil
}

// DecodeConfiguration decodes the msgpack payload (without the length line).
func DecodeConfiguration(b []byte) (*Configuration, error) {
	var c Configuration
	if err := checkLengths(b); err != nil {
		return nil, fmt.Errorf("%w: configuration: %v", ErrMalformed, err)
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: configuration: %v", ErrMalformed, err)
	}
	for i, v := range c.Volumes {
		if v.Mount == "" {
			return nil, fmt.Errorf("%w: configuration: volume %d has no mount", ErrMalformed, i)
		}
	}
	return &c, nil
}

// ConfigAck is the guest's answer to the configuration.
type ConfigAck struct {
	Success   bool
	Error     string
	Traceback string
}

// EncodeConfigAck encodes {"success": true} or {"success": false, "error",
// "traceback"} like init1.py.
func EncodeConfigAck(a ConfigAck) []byte {
	var buf bytes.Buffer
	w := errWriter{e: msgpack.NewEncoder(&buf)}
	if a.Success {
		w.mapLen(1)
		w.str("success")
		w.bool(true)
	} else {
		w.mapLen(3)
		w.str("success")
		w.bool(false)
		w.str("error")
		w.str(a.Error)
		w.str("traceback")
		w.str(a.Traceback)
	}
	return buf.Bytes()
}

// DecodeConfigAck reads one ack from r.
func DecodeConfigAck(r io.Reader) (ConfigAck, error) {
	var a ConfigAck
	dec := msgpack.NewDecoder(r)
	n, err := dec.DecodeMapLen()
	if err != nil {
		return a, fmt.Errorf("%w: config ack: %v", ErrMalformed, err)
	}
	seen := false
	for range max(n, 0) {
		k, err := dec.DecodeString()
		if err != nil {
			return a, fmt.Errorf("%w: config ack key: %v", ErrMalformed, err)
		}
		switch k {
		case "success":
			seen = true
			a.Success, err = dec.DecodeBool()
		case "error":
			a.Error, err = decodeLooseString(dec)
		case "traceback":
			a.Traceback, err = decodeLooseString(dec)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return a, fmt.Errorf("%w: config ack %q: %v", ErrMalformed, k, err)
		}
	}
	if !seen {
		return a, fmt.Errorf("%w: config ack has no success field", ErrMalformed)
	}
	return a, nil
}

// EncodeReady is the guest's ready signal, msgpack {"version": v}.
func EncodeReady(version string) []byte {
	b, _ := msgpack.Marshal(map[string]string{"version": version})
	return b
}

// DecodeReady decodes a ready signal; an empty payload means LegacyVersion.
func DecodeReady(b []byte) (string, error) {
	if len(b) == 0 {
		return LegacyVersion, nil
	}
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := dec.DecodeMapLen()
	if err != nil {
		return "", fmt.Errorf("%w: ready: %v", ErrMalformed, err)
	}
	version := ""
	for range max(n, 0) {
		k, err := dec.DecodeString()
		if err != nil {
			return "", fmt.Errorf("%w: ready key: %v", ErrMalformed, err)
		}
		if k == "version" {
			version, err = dec.DecodeString()
		} else {
			err = dec.Skip()
		}
		if err != nil {
			return "", fmt.Errorf("%w: ready %q: %v", ErrMalformed, k, err)
		}
	}
	if version == "" {
		return "", fmt.Errorf("%w: ready has no version", ErrMalformed)
	}
	return version, nil
}

// Scope is one request: an HTTP scope (type "http") or an event scope (type
// "aleph.message", whose Body is the message JSON and goes on the wire as str).
type Scope struct {
	Type        string
	Path        string
	Method      string
	QueryString string
	// Headers are [name, value] pairs, names lower-case, both msgpack bin.
	Headers [][2][]byte
	Body    []byte
}

// Header returns the first value of header name (lower-case), or nil.
func (s *Scope) Header(name string) []byte {
	for _, h := range s.Headers {
		if string(h[0]) == name {
			return h[1]
		}
	}
	return nil
}

// EncodeRequest encodes {"scope": s} as the host sends it.
func EncodeRequest(s *Scope) ([]byte, error) {
	var buf bytes.Buffer
	w := errWriter{e: msgpack.NewEncoder(&buf)}
	w.mapLen(1)
	w.str("scope")
	if s.Type == ScopeMessage {
		w.mapLen(2)
		w.str("type")
		w.str(s.Type)
		w.str("body")
		w.str(string(s.Body))
	} else {
		w.mapLen(6)
		w.str("type")
		w.str(s.Type)
		w.str("path")
		w.str(s.Path)
		w.str("method")
		w.str(s.Method)
		w.str("query_string")
		w.str(s.QueryString)
		w.str("headers")
		w.headers(s.Headers)
		w.str("body")
		w.bin(nonNil(s.Body))
	}
	if w.err != nil {
		return nil, fmt.Errorf("encode request: %w", w.err)
	}
	return buf.Bytes(), nil
}

// DecodeRequest reads one {"scope": …} value from dec. Strings and bytes are
// accepted in either msgpack type, as Python's decoder would pass them on.
func DecodeRequest(dec *msgpack.Decoder) (*Scope, error) {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, fmt.Errorf("%w: request: %v", ErrMalformed, err)
	}
	var s *Scope
	for range max(n, 0) {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("%w: request key: %v", ErrMalformed, err)
		}
		if k != "scope" {
			if err := dec.Skip(); err != nil {
				return nil, fmt.Errorf("%w: request %q: %v", ErrMalformed, k, err)
			}
			continue
		}
		if s, err = decodeScope(dec); err != nil {
			return nil, err
		}
	}
	if s == nil {
		return nil, fmt.Errorf("%w: request has no scope", ErrMalformed)
	}
	return s, nil
}

// DecodeRequestBytes is DecodeRequest over a byte slice.
func DecodeRequestBytes(b []byte) (*Scope, error) {
	return DecodeRequest(msgpack.NewDecoder(bytes.NewReader(b)))
}

func decodeScope(dec *msgpack.Decoder) (*Scope, error) {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, fmt.Errorf("%w: scope: %v", ErrMalformed, err)
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: scope is nil", ErrMalformed)
	}
	s := &Scope{}
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("%w: scope key: %v", ErrMalformed, err)
		}
		switch k {
		case "type":
			s.Type, err = decodeLooseString(dec)
		case "path":
			s.Path, err = decodeLooseString(dec)
		case "method":
			s.Method, err = decodeLooseString(dec)
		case "query_string":
			s.QueryString, err = decodeLooseString(dec)
		case "headers":
			s.Headers, err = decodeHeaders(dec)
		case "body":
			s.Body, err = dec.DecodeBytes()
		default:
			err = dec.Skip()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: scope %q: %v", ErrMalformed, k, err)
		}
	}
	switch s.Type {
	case ScopeHTTP:
		if s.Method == "" {
			s.Method = "GET"
		}
		if s.Path == "" {
			s.Path = "/"
		}
	case ScopeMessage:
	default:
		return nil, fmt.Errorf("%w: scope type %q", ErrMalformed, s.Type)
	}
	return s, nil
}

// Result is the guest's answer to one request: a response, or an error with
// a traceback (the host answers 500 with the traceback).
type Result struct {
	Status     int
	Headers    [][2][]byte
	Body       []byte
	Output     string
	OutputData []byte

	Error     string
	Traceback string
}

// Failed reports whether the result is the error form.
func (r *Result) Failed() bool { return r.Error != "" || r.Traceback != "" }

// EncodeResult encodes r in init1.py's shape.
func EncodeResult(r *Result) ([]byte, error) {
	var buf bytes.Buffer
	w := errWriter{e: msgpack.NewEncoder(&buf)}
	if r.Failed() {
		w.mapLen(3)
		w.str("error")
		w.str(r.Error)
		w.str("traceback")
		w.str(r.Traceback)
		w.str("output")
		w.str(r.Output)
	} else {
		w.mapLen(4)
		w.str("headers")
		w.mapLen(3)
		w.str("type")
		w.str("http.response.start")
		w.str("status")
		w.int(r.Status)
		w.str("headers")
		w.headers(r.Headers)
		w.str("body")
		w.mapLen(2)
		w.str("type")
		w.str("http.response.body")
		w.str("body")
		w.bin(nonNil(r.Body))
		w.str("output")
		w.str(r.Output)
		w.str("output_data")
		w.bin(nonNil(r.OutputData))
	}
	if w.err != nil {
		return nil, fmt.Errorf("encode result: %w", w.err)
	}
	return buf.Bytes(), nil
}

// DecodeResult decodes a guest's result.
func DecodeResult(b []byte) (*Result, error) {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	n, err := dec.DecodeMapLen()
	if err != nil {
		return nil, fmt.Errorf("%w: result: %v", ErrMalformed, err)
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: result is nil", ErrMalformed)
	}
	r := &Result{}
	hasStart := false
	for range n {
		k, err := dec.DecodeString()
		if err != nil {
			return nil, fmt.Errorf("%w: result key: %v", ErrMalformed, err)
		}
		switch k {
		case "headers":
			hasStart = true
			err = decodeMap(dec, func(k string) error {
				var err error
				switch k {
				case "status":
					r.Status, err = dec.DecodeInt()
				case "headers":
					r.Headers, err = decodeHeaders(dec)
				default:
					err = dec.Skip()
				}
				return err
			})
		case "body":
			err = decodeMap(dec, func(k string) error {
				if k == "body" {
					var err error
					r.Body, err = dec.DecodeBytes()
					return err
				}
				return dec.Skip()
			})
		case "output":
			r.Output, err = decodeLooseString(dec)
		case "output_data":
			r.OutputData, err = dec.DecodeBytes()
		case "error":
			r.Error, err = decodeLooseString(dec)
		case "traceback":
			r.Traceback, err = decodeLooseString(dec)
		default:
			err = dec.Skip()
		}
		if err != nil {
			return nil, fmt.Errorf("%w: result %q: %v", ErrMalformed, k, err)
		}
	}
	if r.Failed() {
		if r.Error == "" {
			r.Error = "guest error"
		}
		return r, nil
	}
	if !hasStart {
		return nil, fmt.Errorf("%w: result has neither headers nor error", ErrMalformed)
	}
	if r.Status < 100 || r.Status > 999 {
		return nil, fmt.Errorf("%w: result status %d", ErrMalformed, r.Status)
	}
	return r, nil
}

func decodeMap(dec *msgpack.Decoder, field func(k string) error) error {
	n, err := dec.DecodeMapLen()
	if err != nil {
		return err
	}
	for range max(n, 0) {
		k, err := dec.DecodeString()
		if err != nil {
			return err
		}
		if err := field(k); err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
	}
	return nil
}

// decodeHeaders reads a list of [name, value] pairs (bin or str each).
func decodeHeaders(dec *msgpack.Decoder) ([][2][]byte, error) {
	n, err := dec.DecodeArrayLen()
	if err != nil {
		return nil, err
	}
	var hs [][2][]byte
	for i := range max(n, 0) {
		m, err := dec.DecodeArrayLen()
		if err != nil {
			return nil, fmt.Errorf("header %d: %w", i, err)
		}
		if m != 2 {
			return nil, fmt.Errorf("header %d: %d elements, want 2", i, m)
		}
		var h [2][]byte
		for j := range 2 {
			if h[j], err = dec.DecodeBytes(); err != nil {
				return nil, fmt.Errorf("header %d: %w", i, err)
			}
			if h[j] == nil {
				return nil, fmt.Errorf("header %d: nil", i)
			}
		}
		hs = append(hs, h)
	}
	return hs, nil
}

// decodeLooseString accepts str, bin or nil.
func decodeLooseString(dec *msgpack.Decoder) (string, error) {
	c, err := dec.PeekCode()
	if err != nil {
		return "", err
	}
	if c == msgpcode.Nil {
		return "", dec.DecodeNil()
	}
	return dec.DecodeString()
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// errWriter keeps the first encoding error so encoders read as a list of
// fields.
type errWriter struct {
	e   *msgpack.Encoder
	err error
}

func (w *errWriter) do(f func() error) {
	if w.err == nil {
		w.err = f()
	}
}
func (w *errWriter) mapLen(n int)   { w.do(func() error { return w.e.EncodeMapLen(n) }) }
func (w *errWriter) arrayLen(n int) { w.do(func() error { return w.e.EncodeArrayLen(n) }) }
func (w *errWriter) str(s string)   { w.do(func() error { return w.e.EncodeString(s) }) }
func (w *errWriter) bin(b []byte)   { w.do(func() error { return w.e.EncodeBytes(b) }) }
func (w *errWriter) bool(b bool)    { w.do(func() error { return w.e.EncodeBool(b) }) }
func (w *errWriter) int(n int)      { w.do(func() error { return w.e.EncodeInt(int64(n)) }) }
func (w *errWriter) nil()           { w.do(w.e.EncodeNil) }
func (w *errWriter) nullStr(s string) {
	if s == "" {
		w.nil()
		return
	}
	w.str(s)
}
func (w *errWriter) strs(ss []string, nullable bool) {
	if ss == nil && nullable {
		w.nil()
		return
	}
	w.arrayLen(len(ss))
	for _, s := range ss {
		w.str(s)
	}
}
func (w *errWriter) headers(hs [][2][]byte) {
	w.arrayLen(len(hs))
	for _, h := range hs {
		w.arrayLen(2)
		w.bin(nonNil(h[0]))
		w.bin(nonNil(h[1]))
	}
}

// checkLengths walks a msgpack value and refuses any array or map that
// declares more elements than bytes are left: msgpack v5.4.1 allocates a
// declared slice length in full when it decodes into a typed slice (its
// allocation limit is never applied), so a 10-byte payload could ask for
// gigabytes.
func checkLengths(b []byte) error {
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	pending := 1
	for pending > 0 {
		pending--
		c, err := dec.PeekCode()
		if err != nil {
			return err
		}
		switch {
		case msgpcode.IsFixedArray(c) || c == msgpcode.Array16 || c == msgpcode.Array32:
			n, err := dec.DecodeArrayLen()
			if err != nil {
				return err
			}
			if n > r.Len() {
				return fmt.Errorf("an array of %d elements in %d bytes", n, r.Len())
			}
			pending += max(n, 0)
		case msgpcode.IsFixedMap(c) || c == msgpcode.Map16 || c == msgpcode.Map32:
			n, err := dec.DecodeMapLen()
			if err != nil {
				return err
			}
			if 2*n > r.Len() {
				return fmt.Errorf("a map of %d entries in %d bytes", n, r.Len())
			}
			pending += 2 * max(n, 0)
		default:
			if err := dec.Skip(); err != nil {
				return err
			}
		}
	}
	return nil
}
