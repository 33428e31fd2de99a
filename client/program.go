package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/message"
)

// Program calls (clients.md §1.4.6, §2.4, §2.6): PROGRAM messages built as the
// Python SDK's make_program_content builds them, their code updates, listing
// and deletion on the core channel node, and the two calls a client makes to a
// compute node (its default runtime, and a program's logs).

// Defaults of a PROGRAM, as the Python SDK's (clients.md §2.4).
const (
	DefaultProgramVCPUs     = 1
	DefaultProgramMemoryMiB = 256
	DefaultProgramSeconds   = 30
	// DefaultRuntimeID is the SDKs' default program runtime on mainnet.
	DefaultRuntimeID = "63f07193e6ee9d207b7d1fcf8286f9aee34e6f12f101d2ec77c1229f92964696"
	// DefaultRuntimeComment is runtime.comment for DefaultRuntimeID.
	DefaultRuntimeComment = "Official aleph.im runtime"
)

// ErrNotProgram is wrapped when a hash names a message that is not a PROGRAM.
var ErrNotProgram = errors.New("not a PROGRAM message")

// ErrEncodingChanged is wrapped when new code does not have the encoding of
// the program's code: the compute node would read it the old way.
var ErrEncodingChanged = errors.New("the code encoding cannot change")

// ProgramOptions describe a PROGRAM. Zero resources take the SDK defaults.
type ProgramOptions struct {
	// Name becomes metadata.name; "" sends no metadata.
	Name string
	// CodeRef is the item hash of the code's STORE message.
	CodeRef string
	// Encoding is the code's: message.EncodingZip, EncodingSquashfs or EncodingPlain.
	Encoding string
	// Entrypoint is "module:app" for an ASGI app, or the program to run.
	Entrypoint string
	// RuntimeRef is the item hash of the runtime's STORE message.
	RuntimeRef string
	// RuntimeComment is runtime.comment; "" gives DefaultRuntimeComment for
	// DefaultRuntimeID and "" for any other runtime, as the Python SDK does.
	RuntimeComment string
	VCPUs          int
	MemoryMiB      int
	Seconds        int
	Internet       bool
	// Updatable sets allow_amend: a later PROGRAM may replace this one.
	Updatable bool
	// Persistent keeps the program running instead of starting it per request.
	Persistent bool
	// Volumes are added in this order.
	Volumes   []message.MachineVolume
	Variables map[string]string
	// Subscriptions are message filters that also trigger the program (on.message).
	Subscriptions []message.Subscription
	// PaymentChain is payment.chain (ETH when empty); the payment type is hold.
	PaymentChain message.Chain
}

// NewProgramContent builds the content of a PROGRAM as make_program_content
// does: type vm-function, hold payment, code and runtime with use_latest, HTTP
// trigger, environment with the aleph API and no shared cache. The fields
// come out in aleph-message's order; address and time are left for the
// message builder.
func NewProgramContent(o ProgramOptions) (*message.ProgramContent, error) {
	if !message.IsItemHash(o.CodeRef) {
		return nil, fmt.Errorf("program content: code ref %q is not an item hash", oneLine([]byte(o.CodeRef), 80))
	}
	if !message.IsItemHash(o.RuntimeRef) {
		return nil, fmt.Errorf("program content: runtime ref %q is not an item hash", oneLine([]byte(o.RuntimeRef), 80))
	}
	switch o.Encoding {
	case message.EncodingZip, message.EncodingSquashfs, message.EncodingPlain:
	default:
		return nil, fmt.Errorf("program content: code encoding %q is not zip, squashfs or plain", oneLine([]byte(o.Encoding), 40))
	}
	if strings.TrimSpace(o.Entrypoint) == "" {
		return nil, errors.New("program content: empty entrypoint")
	}
	if o.VCPUs == 0 {
		o.VCPUs = DefaultProgramVCPUs
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = DefaultProgramMemoryMiB
	}
	if o.Seconds == 0 {
		o.Seconds = DefaultProgramSeconds
	}
	comment := o.RuntimeComment
	if comment == "" && o.RuntimeRef == DefaultRuntimeID {
		comment = DefaultRuntimeComment
	}
	chain := o.PaymentChain
	if chain == "" {
		chain = message.ChainETH
	}
	pc := &message.ProgramContent{Type: message.ProgramTypeVMFunction}
	pc.AllowAmend = o.Updatable
	if o.Name != "" {
		meta, err := json.Marshal(map[string]string{"name": o.Name})
		if err != nil {
			return nil, fmt.Errorf("program content: encode metadata: %w", err)
		}
		pc.Metadata = meta
	}
	if len(o.Variables) > 0 {
		pc.Variables = o.Variables
	}
	pc.Environment = message.FunctionEnvironment{Internet: o.Internet, AlephAPI: true}
	pc.Resources = message.MachineResources{VCPUs: o.VCPUs, Memory: o.MemoryMiB, Seconds: o.Seconds}
	pc.Payment = &message.Payment{Chain: chain, Type: message.PaymentHold}
	pc.Volumes = append([]message.MachineVolume{}, o.Volumes...)
	pc.Code = message.CodeContent{Encoding: o.Encoding, Entrypoint: o.Entrypoint, Ref: o.CodeRef, UseLatest: true}
	pc.Runtime = message.FunctionRuntime{Ref: o.RuntimeRef, UseLatest: true, Comment: comment}
	persistent := o.Persistent
	pc.On = message.FunctionTriggers{HTTP: true, Message: o.Subscriptions, Persistent: &persistent}
	return pc, nil
}

// CreateProgram publishes a PROGRAM built by NewProgramContent and waits for
// the node to process it (the submission is always synchronous, as the
// official CLI's).
func (c *Client) CreateProgram(ctx context.Context, p ProgramOptions, o WriteOptions) (*WriteResult, error) {
	pc, err := NewProgramContent(p)
	if err != nil {
		return nil, fmt.Errorf("create program: %w", err)
	}
	o.Sync = true
	return c.Submit(ctx, message.TypeProgram, pc, o)
}

// Program is a PROGRAM message with its parsed content.
type Program struct {
	Message *Message
	// Content is nil in a listing when the node's content does not parse.
	Content *message.ProgramContent
}

// Name returns metadata.name, or "".
func (p *Program) Name() string {
	if p.Content == nil || len(p.Content.Metadata) == 0 {
		return ""
	}
	var m struct {
		Name any `json:"name"`
	}
	if json.Unmarshal(p.Content.Metadata, &m) != nil || m.Name == nil {
		return ""
	}
	if s, ok := m.Name.(string); ok {
		return s
	}
	return fmt.Sprint(m.Name)
}

// Owner returns content.address, or the sender when the content is unknown.
func (p *Program) Owner() string {
	if p.Content != nil && p.Content.Address != "" {
		return p.Content.Address
	}
	return p.Message.Sender
}

func programOf(m *Message) (*Program, error) {
	if m.Type != message.TypeProgram {
		return nil, fmt.Errorf("message %s is a %s: %w", m.ItemHash, m.Type, ErrNotProgram)
	}
	if m.Content == nil {
		return nil, fmt.Errorf("message %s: answer has no content", m.ItemHash)
	}
	c, err := message.ParseContent(message.TypeProgram, m.Content)
	if err != nil {
		return nil, fmt.Errorf("program %s: %w", m.ItemHash, err)
	}
	return &Program{Message: m, Content: c.(*message.ProgramContent)}, nil
}

// GetProgram returns a processed PROGRAM. A forgotten one is a *ForgottenError,
// another message type wraps ErrNotProgram.
func (c *Client) GetProgram(ctx context.Context, itemHash string) (*Program, error) {
	m, err := c.GetProcessedMessage(ctx, itemHash)
	if err != nil {
		return nil, err
	}
	return programOf(m)
}

// ListPrograms returns the PROGRAMs owner (content.address) has published and
// not forgotten, newest first. Only processed and removing messages are
// asked for, so forgotten ones are left out by the node; a forgotten skeleton
// (no content) that still comes back is dropped too. A program whose content
// does not parse is kept with a nil Content.
func (c *Client) ListPrograms(ctx context.Context, owner string) ([]*Program, error) {
	if strings.TrimSpace(owner) == "" {
		return nil, errors.New("list programs: empty owner address")
	}
	f := MessageFilter{
		Types:     []message.Type{message.TypeProgram},
		Owners:    []string{owner},
		Statuses:  []message.Status{message.StatusProcessed, message.StatusRemoving},
		SortOrder: Descending,
	}
	out := []*Program{}
	for m, err := range c.AllMessages(ctx, f, 200) {
		if err != nil {
			return nil, fmt.Errorf("list programs: %w", err)
		}
		if m.Content == nil {
			continue
		}
		p, err := programOf(m)
		if err != nil {
			p = &Program{Message: m}
		}
		out = append(out, p)
	}
	return out, nil
}

// UpdateProgramCode uploads new code for a program as a STORE whose ref is the
// program's code STORE, with that STORE's storage engine and (unless o names
// one) its channel. The program keeps its hash: its code.use_latest makes the
// compute nodes take the newest STORE of the ref. encoding must be the
// program's code encoding (ErrEncodingChanged).
func (c *Client) UpdateProgramCode(ctx context.Context, programHash string, code io.Reader, encoding string, o WriteOptions) (*UploadResult, error) {
	if c.signer == nil {
		return nil, fmt.Errorf("update program code: %w", ErrNoSigner)
	}
	p, err := c.GetProgram(ctx, programHash)
	if err != nil {
		return nil, fmt.Errorf("update program code: %w", err)
	}
	pc := p.Content
	if encoding != pc.Code.Encoding {
		return nil, fmt.Errorf("update program code: %w: program %s has %s code, the new code is %s", ErrEncodingChanged, programHash, pc.Code.Encoding, encoding)
	}
	if !pc.Code.UseLatest {
		return nil, fmt.Errorf("update program code: program %s pins its code (code.use_latest is false), so an update would not reach it", programHash)
	}
	owner := o.Address
	if owner == "" {
		owner = c.signer.Address()
	}
	if !strings.EqualFold(owner, pc.Address) {
		return nil, fmt.Errorf("update program code: program %s belongs to %s, not %s", programHash, pc.Address, owner)
	}
	store, err := c.GetProcessedMessage(ctx, pc.Code.Ref)
	if err != nil {
		return nil, fmt.Errorf("update program code: code STORE %s: %w", pc.Code.Ref, err)
	}
	if store.Type != message.TypeStore {
		return nil, fmt.Errorf("update program code: code ref %s is a %s, not a STORE", pc.Code.Ref, store.Type)
	}
	var sc struct {
		ItemType message.ItemType `json:"item_type"`
	}
	if err := json.Unmarshal(store.Content, &sc); err != nil || (sc.ItemType != message.ItemStorage && sc.ItemType != message.ItemIPFS) {
		return nil, fmt.Errorf("update program code: code STORE %s has no storage or ipfs item_type", pc.Code.Ref)
	}
	if o.Channel == "" {
		o.Channel = store.Channel
	}
	res, err := c.UploadFile(ctx, code, UploadOptions{Engine: sc.ItemType, Ref: pc.Code.Ref, WriteOptions: o})
	if err != nil {
		return res, fmt.Errorf("update program code: %w", err)
	}
	return res, nil
}

// ForgetProgramResult holds the FORGETs of a program deletion.
type ForgetProgramResult struct {
	Program *WriteResult
	// Code is nil when the code was kept.
	Code    *WriteResult
	CodeRef string
}

// ForgetProgram forgets a program and then, unless keepCode, its code STORE
// (the original one that code.ref names, as the official CLI does). Both
// FORGETs are synchronous: a node refuses to forget a STORE a live program
// uses, so the program must be gone first.
func (c *Client) ForgetProgram(ctx context.Context, programHash string, keepCode bool, reason string, o WriteOptions) (*ForgetProgramResult, error) {
	p, err := c.GetProgram(ctx, programHash)
	if err != nil {
		return nil, fmt.Errorf("forget program: %w", err)
	}
	o.Sync = true
	out := &ForgetProgramResult{CodeRef: p.Content.Code.Ref}
	if out.Program, err = c.Forget(ctx, ForgetTargets{Hashes: []string{programHash}, Reason: reason}, o); err != nil {
		return out, fmt.Errorf("forget program %s: %w", programHash, err)
	}
	if keepCode {
		return out, nil
	}
	if out.Code, err = c.Forget(ctx, ForgetTargets{Hashes: []string{out.CodeRef}, Reason: reason}, o); err != nil {
		return out, fmt.Errorf("program %s forgotten, but not its code STORE %s: %w", programHash, out.CodeRef, err)
	}
	return out, nil
}

// CRNSigner makes the owner-authentication headers (X-SignedPubKey,
// X-SignedOperation) of one request to a compute node: domain is the node's
// host name without port, path the request's URL path. crn/ownerauth.SignRequest
// with the account's signer implements it.
type CRNSigner func(domain, method, path string) (http.Header, error)

// LogEntry is one line of a program's console.
type LogEntry struct {
	Time time.Time
	// Stream is "stdout" or "stderr".
	Stream     string
	Message    string
	Identifier string
}

// crnRequest sends a request to the compute node at crnURL and reads the
// answer, whatever its status.
func (c *Client) crnRequest(ctx context.Context, crnURL, method, path string, h http.Header) (*response, error) {
	base, err := checkCRNURL(crnURL)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	for k, vs := range h {
		req.Header[k] = vs
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s%s: %w", method, base, path, unwrapURLError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s%s: read answer: %w", method, base, path, err)
	}
	if len(data) > maxResponseSize {
		return nil, fmt.Errorf("%s %s%s: answer larger than %d bytes", method, base, path, maxResponseSize)
	}
	return &response{status: resp.StatusCode, body: data, path: base + path, method: method}, nil
}

// checkCRNURL validates a compute node URL and drops trailing slashes.
func checkCRNURL(s string) (string, error) {
	s = strings.TrimRight(strings.TrimSpace(s), "/")
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("invalid compute node URL %q: want http(s)://host[:port]", s)
	}
	return s, nil
}

// CRNDomain returns the host name of a compute node URL, without port: the
// domain owner-authentication signatures name.
func CRNDomain(crnURL string) (string, error) {
	s, err := checkCRNURL(crnURL)
	if err != nil {
		return "", err
	}
	u, _ := url.Parse(s)
	return u.Hostname(), nil
}

// CRNDefaultRuntime returns the default program runtime a compute node
// advertises in GET /status/config, field references.DEFAULT_RUNTIME_ID (a
// go-aleph extension). A node that does not advertise one gives an error
// matching ErrNotFound.
func (c *Client) CRNDefaultRuntime(ctx context.Context, crnURL string) (string, error) {
	r, err := c.crnRequest(ctx, crnURL, http.MethodGet, "/status/config", nil)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK {
		return "", r.apiError()
	}
	var cfg struct {
		References struct {
			DefaultRuntimeID string `json:"DEFAULT_RUNTIME_ID"`
		} `json:"references"`
	}
	if err := json.Unmarshal(r.body, &cfg); err != nil {
		return "", fmt.Errorf("GET %s: decode answer: %w", r.path, err)
	}
	id := cfg.References.DefaultRuntimeID
	if id == "" {
		return "", fmt.Errorf("GET %s: no references.DEFAULT_RUNTIME_ID: %w", r.path, ErrNotFound)
	}
	if !message.IsItemHash(id) {
		return "", fmt.Errorf("GET %s: references.DEFAULT_RUNTIME_ID %q is not an item hash", r.path, oneLine([]byte(id), 80))
	}
	return id, nil
}

// GetProgramLogs returns the latest console lines of a program on the compute
// node at crnURL (GET /control/machine/{hash}/logs), oldest first, signed by
// sign as the program's owner.
func (c *Client) GetProgramLogs(ctx context.Context, crnURL, programHash string, sign CRNSigner) ([]LogEntry, error) {
	if !message.IsHexHash(programHash) {
		return nil, fmt.Errorf("program logs: %q is not a program hash", oneLine([]byte(programHash), 80))
	}
	if sign == nil {
		return nil, fmt.Errorf("program logs: %w", ErrNoSigner)
	}
	domain, err := CRNDomain(crnURL)
	if err != nil {
		return nil, fmt.Errorf("program logs: %w", err)
	}
	path := "/control/machine/" + programHash + "/logs"
	h, err := sign(domain, http.MethodGet, path)
	if err != nil {
		return nil, fmt.Errorf("program logs: sign request: %w", err)
	}
	r, err := c.crnRequest(ctx, crnURL, http.MethodGet, path, h)
	if err != nil {
		return nil, err
	}
	if r.status != http.StatusOK {
		return nil, r.apiError()
	}
	var wire []struct {
		Time       json.RawMessage `json:"__REALTIME_TIMESTAMP"`
		Message    json.RawMessage `json:"MESSAGE"`
		File       string          `json:"file"`
		Identifier string          `json:"SYSLOG_IDENTIFIER"`
	}
	if err := json.Unmarshal(r.body, &wire); err != nil {
		return nil, fmt.Errorf("GET %s: decode answer: %w", r.path, err)
	}
	out := make([]LogEntry, 0, len(wire))
	for i, w := range wire {
		t, err := parseLogTime(w.Time)
		if err != nil {
			return nil, fmt.Errorf("GET %s: entry %d: __REALTIME_TIMESTAMP: %w", r.path, i, err)
		}
		out = append(out, LogEntry{Time: t, Stream: w.File, Message: logMessage(w.Message), Identifier: w.Identifier})
	}
	return out, nil
}

// parseLogTime reads a journald timestamp: microseconds since the epoch (a
// number or a string of digits) or an ISO-8601 string. Absent is the zero time.
func parseLogTime(raw json.RawMessage) (time.Time, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &s); err != nil {
			return time.Time{}, err
		}
	} else {
		s = string(raw)
	}
	s = strings.TrimSpace(s)
	if us, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.UnixMicro(us).UTC(), nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && raw[0] != '"' {
		return time.UnixMicro(int64(f)).UTC(), nil
	}
	t, err := parseISOTime(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither microseconds nor an ISO-8601 time", oneLine([]byte(s), 60))
	}
	return t.UTC(), nil
}

// logMessage reads MESSAGE: a string, or (journald, for non-UTF-8 text) an
// array of bytes.
func logMessage(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var b []byte
	var ints []int
	if json.Unmarshal(raw, &ints) == nil {
		for _, i := range ints {
			b = append(b, byte(i))
		}
		return strings.ToValidUTF8(string(b), "\uFFFD")
	}
	return string(raw)
}
