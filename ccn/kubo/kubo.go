// Package kubo is a small client for the HTTP RPC API of an external kubo
// (go-ipfs) node: the calls a core channel node needs to pin files there and
// read them back (cat, pin add/rm, dag import, files stat, id). It implements
// the ccn/files Source and Pinner interfaces for the ipfs engine; kubo cannot
// serve sha256-addressed (storage engine) files, so those are never found here.
//
// Linking kubo itself would pin old boxo and libp2p versions
// (dependencies-and-peers.md §A3); its RPC API is stable and small.
package kubo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/ccn/files"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/unixfs"
)

// Error is an error answer of the RPC API.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("kubo: http %d: %s", e.Status, e.Message)
}

// Client talks to one kubo node.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client for the RPC API at base ("http://127.0.0.1:5001").
// A nil hc uses a client with no overall timeout (calls are bounded by their
// contexts; cat streams may be long).
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 2 * time.Minute, MaxIdleConnsPerHost: 8}}
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

// Name implements files.Source.
func (c *Client) Name() string { return "kubo " + c.base }

// call POSTs to /api/v0/<cmd> with the query args and returns the response for
// the caller to read and close. Non-2xx answers become *Error.
func (c *Client) call(ctx context.Context, cmd string, args url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := c.base + "/api/v0/" + cmd
	if len(args) > 0 {
		u += "?" + args.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, body)
	if err != nil {
		return nil, fmt.Errorf("kubo %s: %w", cmd, err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("kubo %s: %w", cmd, err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e struct{ Message string }
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Message != "" {
			msg = e.Message
		}
		return nil, fmt.Errorf("kubo %s: %w", cmd, &Error{Status: resp.StatusCode, Message: msg})
	}
	return resp, nil
}

// ID returns the node's peer ID; a cheap health check.
func (c *Client) ID(ctx context.Context) (string, error) {
	resp, err := c.call(ctx, "id", nil, nil, "")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("kubo id: decode: %w", err)
	}
	return out.ID, nil
}

// Stat is what files/stat says of a CID.
type Stat struct {
	Hash           string
	Size           int64 // file size (0 for directories)
	CumulativeSize int64
	Blocks         int
	Type           string // "file" or "directory"
}

// Stat describes a CID (files/stat /ipfs/<cid>).
func (c *Client) Stat(ctx context.Context, cid string) (Stat, error) {
	resp, err := c.call(ctx, "files/stat", url.Values{"arg": {"/ipfs/" + cid}}, nil, "")
	if err != nil {
		return Stat{}, err
	}
	defer resp.Body.Close()
	var st Stat
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return Stat{}, fmt.Errorf("kubo files/stat: decode: %w", err)
	}
	return st, nil
}

// Cat streams a file's bytes, at most limit bytes when limit > 0.
func (c *Client) Cat(ctx context.Context, cid string, limit int64) (io.ReadCloser, error) {
	args := url.Values{"arg": {cid}}
	if limit > 0 {
		args.Set("length", strconv.FormatInt(limit+1, 10)) // one more, so the caller sees an overflow
	}
	resp, err := c.call(ctx, "cat", args, nil, "")
	if err != nil {
		return nil, err
	}
	return &streamBody{rc: resp.Body, resp: resp}, nil
}

// streamBody reports kubo's X-Stream-Error trailer, sent when a stream fails
// after the headers.
type streamBody struct {
	rc   io.ReadCloser
	resp *http.Response
}

func (s *streamBody) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if errors.Is(err, io.EOF) {
		if msg := s.resp.Trailer.Get("X-Stream-Error"); msg != "" {
			return n, fmt.Errorf("kubo cat: %w", &Error{Status: s.resp.StatusCode, Message: msg})
		}
	}
	return n, err
}

func (s *streamBody) Close() error { return s.rc.Close() }

// Fetch implements files.Source for the ipfs engine.
func (c *Client) Fetch(ctx context.Context, engine filestore.Engine, hash string, limit int64) (io.ReadCloser, error) {
	if engine != filestore.EngineIPFS {
		return nil, fmt.Errorf("kubo has no %s engine: %w", engine, files.ErrUnavailable)
	}
	if _, err := unixfs.ParseCID(hash); err != nil {
		return nil, fmt.Errorf("kubo fetch %s: %w", hash, err)
	}
	rc, err := c.Cat(ctx, hash, limit)
	var ke *Error
	if errors.As(err, &ke) && ke.Status == http.StatusInternalServerError {
		// kubo answers 500 for "not found", "is a directory", timeouts.
		return nil, fmt.Errorf("kubo cat %s: %s: %w", hash, ke.Message, files.ErrUnavailable)
	}
	return rc, err
}

// Pin implements files.Pinner: pin add (recursive). kubo fetches what it
// lacks from the IPFS network; use Import to push content it cannot find.
func (c *Client) Pin(ctx context.Context, engine filestore.Engine, hash string) error {
	if engine != filestore.EngineIPFS {
		return nil
	}
	resp, err := c.call(ctx, "pin/add", url.Values{"arg": {hash}, "progress": {"false"}}, nil, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return err
}

// Unpin implements files.Pinner: pin rm; a CID that is not pinned is not an error.
func (c *Client) Unpin(ctx context.Context, engine filestore.Engine, hash string) error {
	if engine != filestore.EngineIPFS {
		return nil
	}
	resp, err := c.call(ctx, "pin/rm", url.Values{"arg": {hash}}, nil, "")
	var ke *Error
	if errors.As(err, &ke) && strings.Contains(ke.Message, "not pinned") {
		return nil
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return err
}

// Import sends a CAR stream to dag/import and pins its roots; it returns the
// root CIDs kubo reports.
func (c *Client) Import(ctx context.Context, car io.Reader) ([]string, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", "import.car")
		if err == nil {
			_, err = io.Copy(part, car)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	resp, err := c.call(ctx, "dag/import", url.Values{"pin-roots": {"true"}}, pr, mw.FormDataContentType())
	if err != nil {
		pr.CloseWithError(err)
		return nil, err
	}
	defer resp.Body.Close()
	var roots []string
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	for sc.Scan() {
		var line struct {
			Root *struct {
				Cid struct {
					Slash string `json:"/"`
				}
				PinErrorMsg string
			}
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, fmt.Errorf("kubo dag/import: decode: %w", err)
		}
		if line.Root == nil {
			continue
		}
		if line.Root.PinErrorMsg != "" {
			return nil, fmt.Errorf("kubo dag/import: pin %s: %s", line.Root.Cid.Slash, line.Root.PinErrorMsg)
		}
		roots = append(roots, line.Root.Cid.Slash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("kubo dag/import: %w", err)
	}
	return roots, nil
}

var (
	_ files.Source = (*Client)(nil)
	_ files.Pinner = (*Client)(nil)
)
