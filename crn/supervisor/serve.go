package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/crn/api"
	"github.com/go-aleph/go-aleph/crn/executor"
	"github.com/go-aleph/go-aleph/crn/protocol"
	"github.com/go-aleph/go-aleph/crn/resolve"
)

// Errors of the pool; httpStatus maps them to aleph-vm's answers.
var (
	errDraining    = errors.New("server is draining, try another node")
	errClosed      = errors.New("node stopping")
	errCapacity    = errors.New("insufficient capacity")
	errDownload    = errors.New("code, runtime or data not available")
	errBadProgram  = errors.New("program cannot run")
	errBoot        = errors.New("error starting the program")
	errInitTimeout = errors.New("error during runtime initialisation")
	errConfigure   = errors.New("error during vm initialisation")
	errNoInternet  = errors.New("this node gives programs no internet access")
	errNoBackend   = errors.New("this node does not offer the executor the program requires")
)

// permanent reports errors that retrying will not fix.
func permanent(err error) bool {
	for _, e := range []error{resolve.ErrNotFound, resolve.ErrForgotten, resolve.ErrNotProgram,
		resolve.ErrInvalidProgram, resolve.ErrOverLimit, resolve.ErrRefNotFound, errBadProgram, errNoInternet, errNoBackend} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// httpStatus maps a creation error to a status (crn-compute.md §1.5, with
// the client's mistakes as 4xx rather than upstream's 500s).
func httpStatus(err error) int {
	switch {
	case errors.Is(err, resolve.ErrNotFound), errors.Is(err, resolve.ErrForgotten),
		errors.Is(err, resolve.ErrNotProcessed):
		return http.StatusNotFound
	case errors.Is(err, resolve.ErrNotProgram), errors.Is(err, resolve.ErrInvalidProgram),
		errors.Is(err, resolve.ErrRefNotFound), errors.Is(err, errBadProgram), errors.Is(err, errDownload),
		errors.Is(err, resolve.ErrOverLimit):
		// Over this node's per-program limits: the program asks too much,
		// waiting will not help.
		return http.StatusBadRequest
	case errors.Is(err, errCapacity), errors.Is(err, errDraining),
		errors.Is(err, errClosed), errors.Is(err, errNoInternet), errors.Is(err, errNoBackend):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	default:
		return http.StatusInternalServerError
	}
}

// hopHeaders are not copied from the program's answer: the node frames the
// response itself.
var hopHeaders = map[string]bool{
	"connection": true, "keep-alive": true, "transfer-encoding": true, "content-length": true,
	"proxy-connection": true, "upgrade": true, "trailer": true, "te": true,
}

// ServeProgram implements api.Pool.
func (p *Pool) ServeProgram(w http.ResponseWriter, r *http.Request, hash, path string) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxRequest))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			api.WriteError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", protocol.MaxRequest))
			return
		}
		api.WriteError(w, http.StatusBadRequest, "read request body: "+err.Error())
		return
	}
	scope := &protocol.Scope{
		Type:        protocol.ScopeHTTP,
		Path:        path,
		Method:      r.Method,
		QueryString: r.URL.RawQuery,
		Body:        body,
	}
	scope.Headers = append(scope.Headers, [2][]byte{[]byte("host"), []byte(r.Host)})
	for k, vs := range r.Header {
		name := []byte(strings.ToLower(k))
		for _, v := range vs {
			scope.Headers = append(scope.Headers, [2][]byte{name, []byte(v)})
		}
	}
	res, ex, err := p.run(r.Context(), hash, scope)
	if err != nil {
		status, msg := p.failure(err, ex)
		api.WriteError(w, status, msg)
		return
	}
	if res.Failed() {
		// aleph-vm answers a program's exception with its traceback.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		tb := res.Traceback
		if tb == "" {
			tb = res.Error
		}
		_, _ = io.WriteString(w, tb)
		return
	}
	h := w.Header()
	for _, kv := range res.Headers {
		name := string(kv[0])
		if hopHeaders[strings.ToLower(name)] || !validHeader(name, kv[1]) {
			continue
		}
		h.Add(name, string(kv[1]))
	}
	h.Set("Content-Length", strconv.Itoa(len(res.Body)))
	h.Set("Aleph-Program-ItemHash", hash)
	if ex != nil && ex.prog != nil {
		h.Set("Aleph-Program-Code-Ref", ex.prog.Code.Ref)
	}
	status := res.Status
	if status < 100 || status > 999 {
		status = http.StatusBadGateway
	}
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(res.Body)
	}
}

func validHeader(name string, value []byte) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	for _, c := range value {
		if c == '\r' || c == '\n' || c == 0 {
			return false
		}
	}
	return true
}

// RunEvent delivers an on.message event (the message JSON) to a program.
func (p *Pool) RunEvent(ctx context.Context, hash string, messageJSON []byte) error {
	scope := &protocol.Scope{Type: protocol.ScopeMessage, Body: messageJSON}
	res, ex, err := p.run(ctx, hash, scope)
	if err != nil {
		_, msg := p.failure(err, ex)
		return errors.New(msg)
	}
	if res.Failed() {
		return fmt.Errorf("program failed: %s", res.Error)
	}
	return nil
}

// run sends one scope to the program, booting it if needed, within the
// program's resources.seconds.
func (p *Pool) run(ctx context.Context, hash string, scope *protocol.Scope) (*protocol.Result, *execution, error) {
	ex, err := p.acquire(ctx, hash)
	if err != nil {
		return nil, nil, err
	}
	defer ex.end(p)
	secs := ex.prog.Resources.Seconds
	if secs <= 0 {
		secs = 30
	}
	rctx, cancel := context.WithTimeout(ctx, time.Duration(secs)*time.Second)
	defer cancel()
	res, err := protocol.Run(rctx, ex.inst.Transport(), scope)
	if err == nil {
		return res, ex, nil
	}
	if dl, _ := rctx.Deadline(); ctx.Err() == nil && (rctx.Err() != nil || !time.Now().Before(dl)) {
		return nil, ex, &timeoutError{secs}
	}
	// The guest failed the request: if it is gone, its monitor records why.
	select {
	case <-ex.inst.Done():
	case <-time.After(200 * time.Millisecond):
	}
	select {
	case <-ex.inst.Done():
		return nil, ex, &crashError{err: ex.inst.Err()}
	default:
	}
	if errors.Is(err, protocol.ErrNoResponse) {
		// aleph-vm stops a VM that answers nothing; the next request boots it.
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.crashed(ex, "no response") }()
		if r, ok := ex.inst.(executor.OOMReporter); ok && r.OOMKilled() {
			p.log.Warn("program killed: out of memory", "hash", hash, "memory_mib", ex.prog.Resources.MemoryMiB)
			p.logLine(hash, "system", fmt.Sprintf("program killed: out of memory (limit %d MiB)", ex.prog.Resources.MemoryMiB))
			return nil, ex, &crashError{err: &executor.ExitError{OOM: true, Status: 137}}
		}
		p.logLine(hash, "system", "program exited")
		return nil, ex, &crashError{}
	}
	return nil, ex, &badGatewayError{err}
}

type timeoutError struct{ secs int }

func (e *timeoutError) Error() string {
	return fmt.Sprintf("program did not answer within %d seconds", e.secs)
}

type crashError struct{ err error }

func (e *crashError) Error() string {
	if executor.IsOOM(e.err) {
		return "program killed: out of memory"
	}
	if e.err != nil {
		return "program crashed: " + e.err.Error()
	}
	return "program exited"
}

type badGatewayError struct{ err error }

func (e *badGatewayError) Error() string {
	if errors.Is(e.err, protocol.ErrNoResponse) {
		return "No response from VM"
	}
	return "bad answer from the program: " + e.err.Error()
}

// failure maps a run error to a status and message.
func (p *Pool) failure(err error, ex *execution) (int, string) {
	var te *timeoutError
	var ce *crashError
	var be *badGatewayError
	switch {
	case errors.As(err, &te):
		return http.StatusGatewayTimeout, te.Error()
	case errors.As(err, &ce):
		msg := ce.Error()
		if executor.IsOOM(ce.err) && ex != nil && ex.prog != nil {
			msg = fmt.Sprintf("%s (limit %d MiB)", msg, ex.prog.Resources.MemoryMiB)
		}
		return http.StatusBadGateway, msg
	case errors.As(err, &be):
		return http.StatusBadGateway, be.Error()
	case errors.Is(err, context.Canceled):
		return 499, "request cancelled"
	}
	return httpStatus(err), err.Error()
}
