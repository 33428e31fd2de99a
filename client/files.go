package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/pyjson"
	"github.com/go-aleph/go-aleph/unixfs"
)

// File calls (ccn-protocol.md §5.6, clients.md §2.5). Uploads and downloads
// stream: no file is held in memory, whatever its size. Their HTTP requests are
// not bounded as a whole by the HTTP client's Timeout, which would cut off any
// large transfer; instead that timeout bounds each stall (no byte moving in
// either direction), and the context bounds the whole.

// ErrHashMismatch is wrapped when downloaded bytes do not hash to the file hash
// that was asked for, or when a node reports another hash for an upload.
var ErrHashMismatch = errors.New("file does not match its hash")

// ErrInvalidFileHash is wrapped for a file hash that is neither a sha256 hex
// digest nor a CID.
var ErrInvalidFileHash = errors.New("invalid file hash")

// DefaultUploadName is the filename of the multipart file part, as the
// TypeScript SDK sends a Blob.
const DefaultUploadName = "blob"

// UploadOptions configure UploadFile.
type UploadOptions struct {
	// Engine is message.ItemStorage (the default: the node keeps the file by its
	// sha256) or message.ItemIPFS (by its UnixFS CID, computed locally with
	// kubo's default profile, CIDv0).
	Engine message.ItemType
	// Ref is the STORE's ref: the item hash of another STORE it updates, or a
	// free string that names the file among the owner's ("owner/ref" tag).
	Ref string
	// Metadata becomes content.metadata; nil sends none.
	Metadata map[string]any
	// Name is the filename of the file part (DefaultUploadName when empty). It
	// is not part of the signed message.
	Name string
	// WriteOptions are the channel, the owner address (delegation) and sync.
	WriteOptions
	// Progress, when set, is called with the number of file bytes sent so far,
	// from the goroutine that writes the request body, one call at a time.
	Progress func(sent int64)
	// TempDir is where a reader that cannot seek is spooled ("" means
	// os.TempDir()).
	TempDir string
}

// UploadResult is an uploaded file and the STORE message that pins it.
type UploadResult struct {
	// WriteResult is the STORE message as signed and the node's answer; its
	// ItemHash is the message's hash.
	WriteResult
	// FileHash is the file's sha256 hex (storage) or CID (ipfs).
	FileHash string
	Engine   message.ItemType
	// Size is the number of bytes uploaded.
	Size int64
}

// UploadFile uploads the bytes of r with a signed STORE message that pins them,
// in one multipart request (POST /api/v0/storage/add_file or
// /api/v0/ipfs/add_file): part "metadata" = {"message", "sync"} first, then part
// "file". The message must name the file's hash, so the file is hashed first:
// an io.ReadSeeker is read twice (from its current offset), any other reader is
// copied to a temporary file while it is hashed. The node answers 200 once the
// message is processed, 202 while it is pending (410 for a copy of a forgotten
// message); a rejection is a *RejectedError, and a file over the node's limit
// an *APIError matching ErrTooLarge.
func (c *Client) UploadFile(ctx context.Context, r io.Reader, o UploadOptions) (*UploadResult, error) {
	if c.signer == nil {
		return nil, fmt.Errorf("upload file: %w", ErrNoSigner)
	}
	if r == nil {
		return nil, errors.New("upload file: nil reader")
	}
	engine := o.Engine
	if engine == "" {
		engine = message.ItemStorage
	}
	var path string
	switch engine {
	case message.ItemStorage:
		path = "/api/v0/storage/add_file"
	case message.ItemIPFS:
		path = "/api/v0/ipfs/add_file"
	default:
		return nil, fmt.Errorf("upload file: unknown storage engine %q (want storage or ipfs)", engine)
	}
	src, err := prepareUpload(ctx, r, engine, o.TempDir)
	if err != nil {
		return nil, fmt.Errorf("upload file: %w", err)
	}
	defer src.cleanup()

	sc := &message.StoreContent{ItemType: engine, ItemHash: src.hash, Ref: o.Ref}
	sc.Address = o.Address
	if o.Metadata != nil {
		if sc.Metadata, err = pyjson.Marshal(o.Metadata); err != nil {
			return nil, fmt.Errorf("upload file: encode metadata: %w", err)
		}
	}
	b := message.Builder{Signer: c.signer, Now: c.now, ASCII: c.ascii}
	built, err := b.Build(ctx, message.TypeStore, sc, o.Channel)
	if err != nil {
		return nil, fmt.Errorf("upload file: %w", err)
	}
	if built.Message.ItemType != message.ItemInline {
		return nil, errors.New("upload file: the STORE content is too large to inline (metadata too large?)")
	}
	meta, err := json.Marshal(struct {
		Message *message.Message `json:"message"`
		Sync    bool             `json:"sync"`
	}{built.Message, o.Sync})
	if err != nil {
		return nil, fmt.Errorf("upload file: encode metadata part: %w", err)
	}
	name := o.Name
	if name == "" {
		name = DefaultUploadName
	}

	resp, err := c.postMultipart(ctx, path, meta, name, src, o.Progress)
	if err != nil {
		return nil, err
	}
	out := &UploadResult{
		WriteResult: WriteResult{Message: built.Message, Content: built.Content,
			SubmitResult: SubmitResult{ItemHash: built.Message.ItemHash, HTTPStatus: resp.status, Raw: resp.body}},
		FileHash: src.hash, Engine: engine, Size: src.size,
	}
	switch resp.status {
	case http.StatusOK, http.StatusAccepted, http.StatusGone:
		var w struct {
			Hash              string             `json:"hash"`
			PublicationStatus *PublicationStatus `json:"publication_status"`
			MessageStatus     message.Status     `json:"message_status"`
		}
		_ = json.Unmarshal(resp.body, &w)
		if w.Hash != "" && w.Hash != src.hash {
			return out, fmt.Errorf("upload file: %w: the node stored %s, the message names %s", ErrHashMismatch, w.Hash, src.hash)
		}
		if w.PublicationStatus != nil {
			out.PublicationStatus = *w.PublicationStatus
		}
		out.Status = w.MessageStatus
		if out.Status == "" {
			out.Status = map[int]message.Status{http.StatusOK: message.StatusProcessed,
				http.StatusAccepted: message.StatusPending, http.StatusGone: message.StatusForgotten}[resp.status]
		}
		if out.Status == message.StatusRejected {
			return out, c.rejection(ctx, built.Message.ItemHash, resp)
		}
		return out, nil
	case http.StatusUnprocessableEntity:
		return out, c.rejection(ctx, built.Message.ItemHash, resp)
	}
	return out, resp.apiError()
}

// upload is a hashed file ready to stream.
type upload struct {
	r       io.Reader // positioned at the first byte
	size    int64
	hash    string
	cleanup func()
}

// prepareUpload hashes r for engine. A seekable r is rewound to where it was;
// anything else is spooled to a temporary file in dir.
func prepareUpload(ctx context.Context, r io.Reader, engine message.ItemType, dir string) (*upload, error) {
	if rs, ok := r.(io.ReadSeeker); ok {
		// A pipe or terminal is an *os.File whose Seek fails: spool it instead.
		if start, err := rs.Seek(0, io.SeekCurrent); err == nil {
			h, n, err := hashFile(ctx, rs, engine)
			if err != nil {
				return nil, fmt.Errorf("hash file: %w", err)
			}
			if _, err := rs.Seek(start, io.SeekStart); err != nil {
				return nil, fmt.Errorf("rewind file: %w", err)
			}
			return &upload{r: rs, size: n, hash: h, cleanup: func() {}}, nil
		}
	}
	f, err := os.CreateTemp(dir, "aleph-upload-*")
	if err != nil {
		return nil, fmt.Errorf("spool file: %w", err)
	}
	cleanup := func() {
		f.Close()
		os.Remove(f.Name())
	}
	tee := &teeWriteErr{r: r, w: f}
	h, n, err := hashFile(ctx, tee, engine)
	if err == nil && tee.err != nil {
		err = tee.err
	}
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("spool file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, fmt.Errorf("spool file: %w", err)
	}
	return &upload{r: f, size: n, hash: h, cleanup: cleanup}, nil
}

// teeWriteErr is io.TeeReader that keeps the write error apart, so that a full
// disk is reported as such rather than as a read error of the source.
type teeWriteErr struct {
	r   io.Reader
	w   io.Writer
	err error
}

func (t *teeWriteErr) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if n > 0 {
		if _, werr := t.w.Write(p[:n]); werr != nil {
			t.err = werr
			return n, werr
		}
	}
	return n, err
}

// hashFile returns the file hash of r under engine and its size.
func hashFile(ctx context.Context, r io.Reader, engine message.ItemType) (string, int64, error) {
	cr := &countingReader{r: r, ctx: ctx}
	switch engine {
	case message.ItemStorage:
		h := sha256.New()
		if _, err := io.Copy(h, cr); err != nil {
			return "", cr.n, err
		}
		return hex.EncodeToString(h.Sum(nil)), cr.n, nil
	case message.ItemIPFS:
		c, err := unixfs.Sum(cr, unixfs.KuboV0)
		if err != nil {
			return "", cr.n, err
		}
		return c.String(), cr.n, nil
	}
	return "", 0, fmt.Errorf("unknown storage engine %q", engine)
}

// countingReader counts bytes, reports them, and stops when ctx ends.
type countingReader struct {
	r        io.Reader
	ctx      context.Context
	n        int64
	progress func(int64)
	touch    func()
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	if n > 0 {
		c.n += int64(n)
		if c.touch != nil {
			c.touch()
		}
		if c.progress != nil {
			c.progress(c.n)
		}
	}
	return n, err
}

// errBodyAbandoned ends the body writer once the request is over.
var errBodyAbandoned = errors.New("request ended before the body was sent")

// postMultipart streams a multipart body of two parts, "metadata" (JSON) then
// "file", and reads the answer.
func (c *Client) postMultipart(ctx context.Context, path string, meta []byte, name string, src *upload, progress func(int64)) (*response, error) {
	ctx, touch, stop := c.stallGuard(ctx)
	defer stop()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	done := make(chan error, 1)
	go func() {
		err := writeUploadBody(mw, meta, name, &countingReader{r: src.r, ctx: ctx, progress: progress, touch: touch}, src.size)
		pw.CloseWithError(err) // nil: EOF
		done <- err
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, pr)
	if err != nil {
		pr.CloseWithError(errBodyAbandoned)
		<-done
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.send(ctx, req, path)
	// The transport may stop reading the body early (an early answer, an error):
	// unblock the writer, then wait for it, so no goroutine outlives the call.
	pr.CloseWithError(errBodyAbandoned)
	if werr := <-done; werr != nil && !errors.Is(werr, errBodyAbandoned) && !errors.Is(werr, io.ErrClosedPipe) && ctx.Err() == nil {
		// The source failed (a read error, a file that changed size), so the
		// node got a broken body: that is the cause, whatever it answered.
		return nil, fmt.Errorf("POST %s: send file: %w", path, werr)
	}
	return resp, err
}

// writeUploadBody writes the two parts; the file part must be exactly size
// bytes, the size that was hashed.
func writeUploadBody(mw *multipart.Writer, meta []byte, name string, src io.Reader, size int64) error {
	h := make(textproto.MIMEHeader)
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	pw, err := mw.CreatePart(h)
	if err != nil {
		return err
	}
	if _, err := pw.Write(meta); err != nil {
		return err
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		return err
	}
	// Large writes keep the pipe handoffs few.
	n, err := io.CopyBuffer(fw, io.LimitReader(src, size), make([]byte, 256<<10))
	if err == nil && n < size {
		err = io.EOF
	}
	if err != nil {
		if err == io.EOF {
			return fmt.Errorf("the file changed while it was uploaded: %d bytes hashed, %d read", size, n)
		}
		return err
	}
	return mw.Close()
}

// send runs a request on the streaming HTTP client and reads the whole (small)
// answer.
func (c *Client) send(ctx context.Context, req *http.Request, shown string) (*response, error) {
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.streamHTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, shown, causeOf(ctx, unwrapURLError(err)))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", req.Method, shown, causeOf(ctx, err))
	}
	if len(data) > maxResponseSize {
		return nil, fmt.Errorf("%s %s: answer larger than %d bytes", req.Method, shown, maxResponseSize)
	}
	return &response{status: resp.StatusCode, body: data, path: shown, method: req.Method}, nil
}

// streamHTTP is the HTTP client without its overall timeout, which the stall
// guard replaces for transfers.
func (c *Client) streamHTTP() *http.Client {
	h := *c.http
	h.Timeout = 0
	return &h
}

// StallError is the cause of a transfer cancelled because no byte moved for the
// HTTP client's timeout.
type StallError struct{ After time.Duration }

// Error names the stall.
func (e *StallError) Error() string {
	return fmt.Sprintf("transfer stalled: no progress for %s", e.After)
}

// stallGuard returns a context that is cancelled with a *StallError when touch
// has not been called for the HTTP client's timeout (no guard when it is 0),
// and the function that releases it.
func (c *Client) stallGuard(parent context.Context) (ctx context.Context, touch func(), stop func()) {
	d := c.http.Timeout
	ctx, cancel := context.WithCancelCause(parent)
	if d <= 0 {
		return ctx, func() {}, func() { cancel(nil) }
	}
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	var t *time.Timer
	var check func()
	check = func() {
		idle := time.Duration(time.Now().UnixNano() - last.Load())
		if idle >= d {
			cancel(&StallError{After: d})
			return
		}
		t.Reset(d - idle)
	}
	t = time.AfterFunc(d, check)
	return ctx, func() { last.Store(time.Now().UnixNano()) }, func() {
		t.Stop()
		cancel(nil)
	}
}

// causeOf replaces a context error by the context's cause (a stall).
func causeOf(ctx context.Context, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if c := context.Cause(ctx); c != nil {
			var se *StallError
			if errors.As(c, &se) {
				return c
			}
		}
	}
	return err
}

// FileHashEngine classifies a file hash: 64 lowercase hex digits are a sha256
// (storage), anything unixfs.ParseCID accepts is a CID (ipfs). Anything else is
// an error wrapping ErrInvalidFileHash.
func FileHashEngine(h string) (message.ItemType, error) {
	if message.IsHexHash(h) {
		return message.ItemStorage, nil
	}
	if _, err := unixfs.ParseCID(h); err == nil {
		return message.ItemIPFS, nil
	}
	return "", fmt.Errorf("%w %q: want a sha256 hex digest or a CID", ErrInvalidFileHash, oneLine([]byte(h), 80))
}

// DownloadResult describes a download.
type DownloadResult struct {
	// Size is the whole file's size when the node gave it, else -1.
	Size int64
	// Written is the number of bytes this call wrote.
	Written int64
	// Resumed is true when the node honoured the range (206), so only the bytes
	// from the offset came over the network.
	Resumed bool
	// Verified is true when the call saw every byte of the file and they hash
	// to the file hash. A resumed download cannot be verified this way: check
	// the whole file with VerifyFile.
	Verified bool
	// ContentType is the answer's (application/x-tar for an IPFS directory,
	// which cannot be verified against its CID).
	ContentType string
}

// DownloadFile writes the file with hash (sha256 hex or CID) to w, from byte
// offset from (GET /api/v0/storage/raw/{hash}, with "Range: bytes=from-" when
// from > 0), to resume an interrupted download into a writer that already holds
// the first from bytes.
//
// A node that ignores the range and answers 200 sends the whole file: its
// first from bytes are read and dropped (the writer cannot be rewound), which
// also lets the call verify the whole file. A node that answers 416 with a size
// equal to from means the file was already complete: nothing is written.
//
// When the call sees the whole file, it checks it against hash and returns an
// error wrapping ErrHashMismatch if it does not match (the bytes were written
// by then; discard them). An unknown file is an error matching ErrNotFound.
func (c *Client) DownloadFile(ctx context.Context, hash string, w io.Writer, from int64) (*DownloadResult, error) {
	if _, err := FileHashEngine(hash); err != nil {
		return nil, fmt.Errorf("download file: %w", err)
	}
	if from < 0 {
		return nil, fmt.Errorf("download file: negative offset %d", from)
	}
	if w == nil {
		return nil, errors.New("download file: nil writer")
	}
	path := "/api/v0/storage/raw/" + pathEscape(hash)
	ctx, touch, stop := c.stallGuard(ctx)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	if from > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(from, 10)+"-")
	}
	resp, err := c.streamHTTP().Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", path, causeOf(ctx, unwrapURLError(err)))
	}
	defer resp.Body.Close()
	res := &DownloadResult{Size: -1, ContentType: resp.Header.Get("Content-Type")}
	body := &countingReader{r: resp.Body, ctx: ctx, touch: touch}

	switch resp.StatusCode {
	case http.StatusOK:
		res.Size = resp.ContentLength
	case http.StatusPartialContent:
		start, end, total, err := parseContentRange(resp.Header.Get("Content-Range"))
		if err != nil {
			return nil, fmt.Errorf("GET %s: %w", path, err)
		}
		if start != from {
			return nil, fmt.Errorf("GET %s: asked for bytes from %d, the node sent bytes from %d", path, from, start)
		}
		if total >= 0 && end != total-1 {
			return nil, fmt.Errorf("GET %s: asked for bytes %d to the end (%d), the node sent bytes %d-%d", path, from, total, start, end)
		}
		res.Size, res.Resumed = total, from > 0
	case http.StatusRequestedRangeNotSatisfiable:
		total, err := parseUnsatisfiedRange(resp.Header.Get("Content-Range"))
		switch {
		case err != nil:
			return nil, fmt.Errorf("GET %s: range not satisfiable: %w", path, err)
		case total == from:
			res.Size, res.Resumed = total, true
			return res, nil
		}
		return nil, fmt.Errorf("GET %s: the local copy (%d bytes) is larger than the file (%d bytes)", path, from, total)
	default:
		r := &response{status: resp.StatusCode, path: path, method: http.MethodGet}
		r.body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
		return nil, r.apiError()
	}

	// A 200, or a 206 from byte 0, carries the whole file.
	whole := !res.Resumed
	var v verifier
	if whole && res.ContentType != "application/x-tar" {
		v = newVerifier(ctx, hash)
	}
	var src io.Reader = body
	if v != nil {
		src = io.TeeReader(body, v)
	}
	if whole && from > 0 {
		// The node ignored the range: drop what the writer already has.
		n, err := io.CopyN(io.Discard, src, from)
		if err != nil {
			abort(v)
			if err == io.EOF {
				return nil, fmt.Errorf("GET %s: the file (%d bytes) is smaller than the local copy (%d bytes)", path, n, from)
			}
			return nil, fmt.Errorf("GET %s: %w", path, causeOf(ctx, err))
		}
	}
	n, err := io.Copy(w, src)
	res.Written = n
	if err != nil {
		abort(v)
		return res, fmt.Errorf("GET %s: after %d bytes: %w", path, n, causeOf(ctx, err))
	}
	if res.Size < 0 {
		res.Size = from + n
	}
	if v != nil {
		if err := v.Close(); err != nil {
			return res, fmt.Errorf("download %s: %w", hash, err)
		}
		res.Verified = true
	}
	return res, nil
}

// parseContentRange reads "bytes START-END/TOTAL" (TOTAL may be "*": -1).
func parseContentRange(s string) (start, end, total int64, err error) {
	bad := fmt.Errorf("invalid Content-Range %q", oneLine([]byte(s), 80))
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !ok {
		return 0, 0, 0, bad
	}
	span, size, ok := strings.Cut(rest, "/")
	a, b, ok2 := strings.Cut(span, "-")
	if !ok || !ok2 {
		return 0, 0, 0, bad
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	total = -1
	var err3 error
	if size != "*" {
		total, err3 = strconv.ParseInt(size, 10, 64)
	}
	if err1 != nil || err2 != nil || err3 != nil || start < 0 || end < start || (total >= 0 && end >= total) {
		return 0, 0, 0, bad
	}
	return start, end, total, nil
}

// parseUnsatisfiedRange reads the "bytes */TOTAL" of a 416 answer.
func parseUnsatisfiedRange(s string) (int64, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), "bytes */")
	if !ok {
		return 0, fmt.Errorf("invalid Content-Range %q", oneLine([]byte(s), 80))
	}
	n, err := strconv.ParseInt(rest, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid Content-Range %q", oneLine([]byte(s), 80))
	}
	return n, nil
}

// verifier hashes what is written to it; Close reports whether it matched.
type verifier interface {
	io.Writer
	Close() error
	abort()
}

func abort(v verifier) {
	if v != nil {
		v.abort()
	}
}

// newVerifier checks a sha256 hex hash or a CID (VerifyFile's rules).
func newVerifier(ctx context.Context, want string) verifier {
	if message.IsHexHash(want) {
		return &shaVerifier{h: sha256.New(), want: want}
	}
	pr, pw := io.Pipe()
	v := &cidVerifier{pw: pw, done: make(chan error, 1)}
	go func() {
		err := unixfs.VerifyContext(ctx, pr, want)
		pr.CloseWithError(errBodyAbandoned) // unblock the writer if Verify stopped early
		v.done <- err
	}()
	return v
}

type shaVerifier struct {
	h    hash.Hash
	want string
}

func (s *shaVerifier) Write(p []byte) (int, error) { return s.h.Write(p) }
func (s *shaVerifier) abort()                      {}
func (s *shaVerifier) Close() error {
	if got := hex.EncodeToString(s.h.Sum(nil)); got != s.want {
		return fmt.Errorf("%w: sha256 is %s", ErrHashMismatch, got)
	}
	return nil
}

type cidVerifier struct {
	pw   *io.PipeWriter
	done chan error
}

func (c *cidVerifier) Write(p []byte) (int, error) {
	// When the verifier stopped reading early, the write fails: its own error
	// comes with Close, and the download goes on.
	_, _ = c.pw.Write(p)
	return len(p), nil
}

func (c *cidVerifier) abort() {
	c.pw.CloseWithError(errBodyAbandoned)
	<-c.done
}

func (c *cidVerifier) Close() error {
	c.pw.Close()
	err := <-c.done
	if errors.Is(err, unixfs.ErrMismatch) {
		return fmt.Errorf("%w: %w", ErrHashMismatch, err)
	}
	return err
}

// VerifyFile reads r to the end and checks that it is the file with hash: the
// sha256 hex digest for the storage engine, or the CID (any of the profiles
// unixfs.Verify knows) for ipfs. A mismatch wraps ErrHashMismatch.
func VerifyFile(ctx context.Context, r io.Reader, hash string) error {
	if _, err := FileHashEngine(hash); err != nil {
		return fmt.Errorf("verify file: %w", err)
	}
	v := newVerifier(ctx, hash)
	if _, err := io.Copy(v, &countingReader{r: r, ctx: ctx}); err != nil {
		v.abort()
		return fmt.Errorf("verify file: %w", err)
	}
	if err := v.Close(); err != nil {
		return fmt.Errorf("verify file: %w", err)
	}
	return nil
}

// FileHead is what HEAD /api/v0/storage/raw/{hash} tells about a file.
type FileHead struct {
	// Size is the Content-Length, or -1 when the node did not give it.
	Size         int64
	ContentType  string
	ETag         string
	AcceptRanges string
}

// HeadFile asks a file's size and type without downloading it. An unknown file
// is an error matching ErrNotFound.
func (c *Client) HeadFile(ctx context.Context, hash string) (*FileHead, error) {
	if _, err := FileHashEngine(hash); err != nil {
		return nil, fmt.Errorf("head file: %w", err)
	}
	path := "/api/v0/storage/raw/" + pathEscape(hash)
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("HEAD %s: %w", path, err)
	}
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("HEAD %s: %w", path, unwrapURLError(err))
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, (&response{status: resp.StatusCode, path: path, method: http.MethodHead}).apiError()
	}
	return &FileHead{Size: resp.ContentLength, ContentType: resp.Header.Get("Content-Type"),
		ETag: resp.Header.Get("ETag"), AcceptRanges: resp.Header.Get("Accept-Ranges")}, nil
}

// FileMetadata is GET /api/v0/storage/metadata/{hash}.
type FileMetadata struct {
	FileHash string `json:"file_hash"`
	// Type is "file" or "dir".
	Type        string `json:"type"`
	Size        int64  `json:"size"`
	DownloadURL string `json:"download_url"`
	// Raw is the whole answer.
	Raw json.RawMessage `json:"-"`
}

// FileMetadata returns what the node records of a file; an unknown file is an
// error matching ErrNotFound.
func (c *Client) FileMetadata(ctx context.Context, hash string) (*FileMetadata, error) {
	if _, err := FileHashEngine(hash); err != nil {
		return nil, fmt.Errorf("file metadata: %w", err)
	}
	var m FileMetadata
	raw, err := c.getJSON(ctx, "/api/v0/storage/metadata/"+pathEscape(hash), "", &m)
	if err != nil {
		return nil, err
	}
	m.Raw = raw
	return &m, nil
}

// FileRef is the file a STORE message or a ref points to
// (/api/v0/storage/by-message-hash, /api/v0/storage/by-ref).
type FileRef struct {
	// Ref is the STORE's ref, or its item hash when it has none.
	Ref         string `json:"ref"`
	Owner       string `json:"owner"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
	Size        int64  `json:"size"`
	// Raw is the whole answer.
	Raw json.RawMessage `json:"-"`
}

// FileByMessageHash returns the file a STORE message pins; an unknown message
// is an error matching ErrNotFound.
func (c *Client) FileByMessageHash(ctx context.Context, itemHash string) (*FileRef, error) {
	if err := checkHash(itemHash); err != nil {
		return nil, fmt.Errorf("file by message hash: %w", err)
	}
	return c.fileRef(ctx, "/api/v0/storage/by-message-hash/"+pathEscape(itemHash))
}

// FileByRef returns the latest file of a ref: with address, the owner's free
// string ref; with address "", a ref that is a STORE's item hash.
func (c *Client) FileByRef(ctx context.Context, address, ref string) (*FileRef, error) {
	if ref == "" {
		return nil, errors.New("file by ref: empty ref")
	}
	path := "/api/v0/storage/by-ref/" + pathEscape(ref)
	if address != "" {
		if strings.ContainsAny(address, "/?#") {
			return nil, fmt.Errorf("file by ref: invalid address %q", oneLine([]byte(address), 80))
		}
		path = "/api/v0/storage/by-ref/" + pathEscape(address) + "/" + pathEscape(ref)
	}
	return c.fileRef(ctx, path)
}

func (c *Client) fileRef(ctx context.Context, path string) (*FileRef, error) {
	var f FileRef
	raw, err := c.getJSON(ctx, path, "", &f)
	if err != nil {
		return nil, err
	}
	f.Raw = raw
	return &f, nil
}

// FilePinCount returns the number of pins that hold a file (GET
// /api/v0/storage/count/{hash}); 0 for a file the node does not keep.
func (c *Client) FilePinCount(ctx context.Context, hash string) (int64, error) {
	if _, err := FileHashEngine(hash); err != nil {
		return 0, fmt.Errorf("file pin count: %w", err)
	}
	var n int64
	if _, err := c.getJSON(ctx, "/api/v0/storage/count/"+pathEscape(hash), "", &n); err != nil {
		return 0, err
	}
	return n, nil
}

// StorageLimits are a node's upload limits in bytes (GET
// /api/v0/storage/limits.json).
type StorageLimits struct {
	Storage struct {
		MaxFileSize                      int64 `json:"max_file_size"`
		MaxUnauthenticatedUploadFileSize int64 `json:"max_unauthenticated_upload_file_size"`
	} `json:"storage"`
	IPFS struct {
		MaxUploadFileSize                int64 `json:"max_upload_file_size"`
		MaxUploadCarSize                 int64 `json:"max_upload_car_size"`
		MaxUnauthenticatedUploadFileSize int64 `json:"max_unauthenticated_upload_file_size"`
	} `json:"ipfs"`
	// Raw is the whole answer.
	Raw json.RawMessage `json:"-"`
}

// StorageLimits returns the node's upload limits.
func (c *Client) StorageLimits(ctx context.Context) (*StorageLimits, error) {
	var l StorageLimits
	raw, err := c.getJSON(ctx, "/api/v0/storage/limits.json", "", &l)
	if err != nil {
		return nil, err
	}
	l.Raw = raw
	return &l, nil
}

// FileEntry is one file of an address.
type FileEntry struct {
	FileHash string `json:"file_hash"`
	Size     int64  `json:"size"`
	// Type is "file" or "dir".
	Type     string `json:"type"`
	Created  Time   `json:"created"`
	ItemHash string `json:"item_hash"`
}

// FileList is a page of an address's files.
type FileList struct {
	Address   string
	TotalSize int64
	Files     []FileEntry
	Pagination
	// Raw is the whole answer.
	Raw json.RawMessage
}

// ListFiles returns a page of the files an address's STORE messages pin (GET
// /api/v0/addresses/{address}/files). Page numbers start at 1; Size 0 leaves
// the node's default (100), NoLimit asks for all. A node answers 404 for an
// address without files: an error matching ErrNotFound.
func (c *Client) ListFiles(ctx context.Context, address string, p Page, order SortOrder) (*FileList, error) {
	if address == "" || strings.ContainsAny(address, "/?#") {
		return nil, fmt.Errorf("list files: invalid address %q", oneLine([]byte(address), 80))
	}
	var q query
	q.page(Page{Number: p.Number, Size: p.Size})
	if order != 0 {
		q.add("sort_order", strconv.Itoa(int(order)))
	}
	var w struct {
		Address   string      `json:"address"`
		TotalSize int64       `json:"total_size"`
		Files     []FileEntry `json:"files"`
		wirePagination
	}
	raw, err := c.getJSON(ctx, "/api/v0/addresses/"+pathEscape(address)+"/files", q.String(), &w)
	if err != nil {
		return nil, err
	}
	if w.Files == nil {
		w.Files = []FileEntry{}
	}
	return &FileList{Address: w.Address, TotalSize: w.TotalSize, Files: w.Files, Pagination: w.pagination(), Raw: raw}, nil
}

// PinOptions configure PinFile.
type PinOptions struct {
	// Ref and Metadata are as in UploadOptions.
	Ref      string
	Metadata map[string]any
	WriteOptions
}

// PinFile pins a file the network already has (an IPFS CID, or the sha256 of a
// file a node stores) with a STORE message sent to POST /api/v0/messages. The
// node processes it once it has the file.
func (c *Client) PinFile(ctx context.Context, hash string, o PinOptions) (*WriteResult, error) {
	engine, err := message.ItemTypeFromHash(hash)
	if err != nil {
		return nil, fmt.Errorf("pin file: %w %q: want a CIDv0 (Qm…), a CIDv1 (bafy…) or a sha256 hex digest", ErrInvalidFileHash, oneLine([]byte(hash), 80))
	}
	sc := &message.StoreContent{ItemType: engine, ItemHash: hash, Ref: o.Ref}
	if o.Metadata != nil {
		if sc.Metadata, err = pyjson.Marshal(o.Metadata); err != nil {
			return nil, fmt.Errorf("pin file: encode metadata: %w", err)
		}
	}
	return c.Submit(ctx, message.TypeStore, sc, o.WriteOptions)
}

// ForgetFiles forgets STORE messages (by their item hashes, not the file
// hashes): their pins go, and a file no other pin holds is deleted after the
// node's grace period. It is Forget with only message hashes.
func (c *Client) ForgetFiles(ctx context.Context, itemHashes []string, reason string, o WriteOptions) (*WriteResult, error) {
	return c.Forget(ctx, ForgetTargets{Hashes: itemHashes, Reason: reason}, o)
}
