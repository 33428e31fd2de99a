package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/crn/ownerauth"
)

// Control is the owner's control over executions; crn/supervisor implements it.
type Control interface {
	// Owner is the owner address (content.address) of the VM; ErrUnknownVM if the node does not know it.
	Owner(ctx context.Context, hash string) (string, error)
	// Logs are the VM's latest console lines, oldest first; ErrUnknownVM if it never ran here.
	Logs(hash string) ([]LogEntry, error)
	// Stop stops the execution; false if it was not running.
	Stop(ctx context.Context, hash string) (bool, error)
	// Reboot stops the execution and starts it again.
	Reboot(ctx context.Context, hash string) error
	// Erase stops the execution and deletes its persistent volumes.
	Erase(ctx context.Context, hash string) error
}

// LogEntry is one console line of a VM.
type LogEntry struct {
	Time    time.Time
	Stream  string // "stdout" or "stderr"
	Message string
}

// ErrUnknownVM is returned by Control for a VM the node does not know.
var ErrUnknownVM = errors.New("unknown vm")

// How long each control step may take. Reboot covers a fresh start, which may
// download the code and runtime.
const (
	controlLookupTimeout = 15 * time.Second
	controlStopTimeout   = 2 * time.Minute
	controlRebootTimeout = 5 * time.Minute
)

// registerControl adds the owner's /control/machine/{ref}/… routes (§4.1),
// each behind owner authentication (§4.2) and authorization.
func (s *server) registerControl() {
	s.mux.HandleFunc("GET /control/machine/{ref}/logs", s.controlLogs)
	s.mux.HandleFunc("POST /control/machine/{ref}/stop", s.controlStop)
	s.mux.HandleFunc("POST /control/machine/{ref}/reboot", s.controlReboot)
	s.mux.HandleFunc("POST /control/machine/{ref}/erase", s.controlErase)
}

// controlVM authenticates the request, checks the ref and that the sender may
// control the VM, and returns the VM's hash; on failure it has answered.
func (s *server) controlVM(w http.ResponseWriter, r *http.Request) (string, bool) {
	if s.d.Control == nil {
		writeError(w, http.StatusServiceUnavailable, "this node offers no VM control")
		return "", false
	}
	if s.d.Domain == "" {
		// Operations are signed for a domain; without ours none can match.
		writeError(w, http.StatusServiceUnavailable, "VM control needs the node's domain name, which is not configured")
		return "", false
	}
	sender, err := ownerauth.Verify(r, s.d.Domain, s.d.Now())
	if err != nil {
		status := http.StatusUnauthorized
		var ae *ownerauth.Error
		if errors.As(err, &ae) {
			status = ae.Status
		}
		writeError(w, status, err.Error())
		return "", false
	}
	ref := r.PathValue("ref")
	if !itemHashRE.MatchString(ref) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid ref: %q is not an item hash (64 hex characters)", clip(ref)))
		return "", false
	}
	hash := strings.ToLower(ref)
	ctx, cancel := context.WithTimeout(r.Context(), controlLookupTimeout)
	defer cancel()
	owner, err := s.d.Control.Owner(ctx, hash)
	if errors.Is(err, ErrUnknownVM) {
		writeError(w, http.StatusNotFound, "No virtual machine with ref "+hash)
		return "", false
	}
	if err != nil {
		s.d.Log.Error("vm owner", "vm", hash, "err", err)
		writeError(w, http.StatusInternalServerError, "finding the owner of VM "+hash+" failed")
		return "", false
	}
	ok := strings.EqualFold(owner, sender)
	if !ok && s.d.Authorized != nil {
		if ok, err = s.d.Authorized(ctx, owner, sender); err != nil {
			s.d.Log.Warn("owner delegations", "owner", owner, "sender", sender, "err", err)
			writeError(w, http.StatusServiceUnavailable, "reading the owner's delegations failed, try again later")
			return "", false
		}
	}
	if !ok {
		writeError(w, http.StatusForbidden, "Unauthorized sender")
		return "", false
	}
	s.d.Log.Info("vm control", "op", r.Method+" "+r.URL.Path, "vm", hash, "sender", sender)
	return hash, true
}

// logLine is a journald-style entry, as aleph-vm's logs route writes them.
type logLine struct {
	Identifier string `json:"SYSLOG_IDENTIFIER"`
	Message    string `json:"MESSAGE"`
	File       string `json:"file"`
	Time       any    `json:"__REALTIME_TIMESTAMP"`
}

func (s *server) controlLogs(w http.ResponseWriter, r *http.Request) {
	hash, ok := s.controlVM(w, r)
	if !ok {
		return
	}
	entries, err := s.d.Control.Logs(hash)
	if errors.Is(err, ErrUnknownVM) {
		writeError(w, http.StatusNotFound, "No execution found for this VM")
		return
	}
	if err != nil {
		s.d.Log.Error("vm logs", "vm", hash, "err", err)
		writeError(w, http.StatusInternalServerError, "reading the logs of VM "+hash+" failed")
		return
	}
	out := make([]logLine, 0, len(entries))
	for _, e := range entries {
		stream := e.Stream
		if stream != "stderr" {
			stream = "stdout"
		}
		out = append(out, logLine{
			Identifier: "vm-" + hash + "-" + stream, Message: e.Message, File: stream, Time: ts(e.Time),
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) controlStop(w http.ResponseWriter, r *http.Request) {
	hash, ok := s.controlVM(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), controlStopTimeout)
	defer cancel()
	stopped, err := s.d.Control.Stop(ctx, hash)
	if s.controlFailed(w, "stop", hash, err) {
		return
	}
	if !stopped {
		writeText(w, "Already stopped, nothing to do")
		return
	}
	writeText(w, "Stopped VM with ref "+hash)
}

func (s *server) controlReboot(w http.ResponseWriter, r *http.Request) {
	hash, ok := s.controlVM(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), controlRebootTimeout)
	defer cancel()
	if s.controlFailed(w, "reboot", hash, s.d.Control.Reboot(ctx, hash)) {
		return
	}
	writeText(w, "Rebooted VM with ref "+hash)
}

func (s *server) controlErase(w http.ResponseWriter, r *http.Request) {
	hash, ok := s.controlVM(w, r)
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), controlStopTimeout)
	defer cancel()
	if s.controlFailed(w, "erase", hash, s.d.Control.Erase(ctx, hash)) {
		return
	}
	writeText(w, "Erased VM with ref "+hash)
}

// controlFailed answers err, if any, and reports whether it did.
func (s *server) controlFailed(w http.ResponseWriter, op, hash string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrUnknownVM):
		writeError(w, http.StatusNotFound, "No virtual machine with ref "+hash)
	case errors.Is(err, context.DeadlineExceeded):
		s.d.Log.Error("vm control", "op", op, "vm", hash, "err", err)
		writeError(w, http.StatusGatewayTimeout, fmt.Sprintf("%s of VM %s did not finish in time", op, hash))
	default:
		s.d.Log.Error("vm control", "op", op, "vm", hash, "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("%s of VM %s failed: %v", op, hash, err))
	}
	return true
}

func writeText(w http.ResponseWriter, text string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, text)
}
