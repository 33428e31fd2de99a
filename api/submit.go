package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/message"
)

// publicationStatus reports where a message was published. The node hands it to
// its own pipeline (which gossips it), so publication cannot partly fail here.
type publicationStatus struct {
	Status string   `json:"status"`
	Failed []string `json:"failed"`
}

var published = &publicationStatus{Status: "success", Failed: []string{}}

// submitResponse is the answer of POST /api/v0/messages. The rejection fields
// (error_code, field, reason, details) go beyond pyaleph, which answers an
// envelope error with the bare exception class name (for instance
// "InvalidMessageFormat") and nothing else.
type submitResponse struct {
	PublicationStatus *publicationStatus `json:"publication_status,omitempty"`
	MessageStatus     message.Status     `json:"message_status"`
	ItemHash          string             `json:"item_hash,omitempty"`
	*rejection
}

type rejection struct {
	Error     string            `json:"error"`
	ErrorCode message.ErrorCode `json:"error_code"`
	Field     string            `json:"field,omitempty"`
	Reason    string            `json:"reason"`
	Details   json.RawMessage   `json:"details"`
}

func rejectionOf(err error, details []byte) *rejection {
	rj := &rejection{Error: "invalid message", ErrorCode: message.CodeOf(err), Field: message.FieldOf(err), Details: json.RawMessage("null")}
	if err != nil {
		rj.Reason = err.Error()
	}
	if len(details) > 0 && json.Valid(details) {
		rj.Details = details
	}
	if rj.ErrorCode != message.CodeInvalidFormat {
		rj.Error = "message rejected: " + rj.ErrorCode.String()
	}
	return rj
}

// readBody reads a bounded request body; ok=false means it answered (413 or 400).
func (s *server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.BodyLimit))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", s.cfg.BodyLimit))
		return nil, false
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "cannot read the request body")
		return nil, false
	}
	return body, true
}

// bodyFields decodes a JSON object body into its raw fields; a nil map with an
// error means the body is not a JSON object.
func bodyFields(body []byte) (map[string]json.RawMessage, error) {
	if !json.Valid(body) {
		return nil, errors.New("request body is not valid JSON")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil || fields == nil {
		return nil, errors.New("request body must be a JSON object")
	}
	return fields, nil
}

func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}

// submitMessage serves POST /api/v0/messages: {"sync": bool, "message": {…}}.
func (s *server) submitMessage(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	fields, err := bodyFields(body)
	if err != nil {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "", "%s", err.Error()), nil)
		return
	}
	sync, ok := parseSync(fields["sync"])
	if !ok {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "sync", "must be a boolean"), nil)
		return
	}
	raw, ok := fields["message"]
	if !ok || isNull(raw) {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "message", "field required"), nil)
		return
	}
	if raw = bytes.TrimSpace(raw); raw[0] != '{' {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "message", "must be a JSON object"), nil)
		return
	}
	res, err := s.d.Submitter.Submit(r.Context(), raw, pipeline.SubmitOptions{Sync: sync, Origin: "api"})
	if err != nil {
		s.submitError(w, r, err)
		return
	}
	code, known := submitStatusCode(res.Status)
	if !known {
		s.internalError(w, r, "submit message", fmt.Errorf("pipeline answered unknown status %q", res.Status))
		return
	}
	resp := submitResponse{PublicationStatus: published, MessageStatus: res.Status, ItemHash: res.ItemHash}
	if res.Status == message.StatusRejected {
		resp.rejection = rejectionOf(res.Err, res.Details)
	}
	s.writeJSON(w, r, code, resp)
}

// parseSync reads a "sync" field as pydantic reads a bool: true/false, 0/1, or
// a string such as "yes"; absent or null is false. ok=false means it is none of
// these.
func parseSync(raw json.RawMessage) (sync, ok bool) {
	if isNull(raw) {
		return false, true
	}
	var b bool
	var str string
	switch {
	case json.Unmarshal(raw, &b) == nil:
		return b, true
	case json.Unmarshal(raw, &str) == nil:
		return parseBool(str)
	case string(raw) == "0" || string(raw) == "1":
		return string(raw) == "1", true
	}
	return false, false
}

// submitStatusCode maps a message status to the HTTP status pyaleph answers.
func submitStatusCode(st message.Status) (int, bool) {
	switch st {
	case message.StatusPending:
		return http.StatusAccepted, true
	case message.StatusProcessed, message.StatusRemoving:
		return http.StatusOK, true
	case message.StatusRejected:
		return http.StatusUnprocessableEntity, true
	case message.StatusForgotten, message.StatusRemoved:
		return http.StatusGone, true
	}
	return 0, false
}

// submitError answers an error returned by Submit: a protocol error is the
// client's (422), anything else is ours (500, logged).
func (s *server) submitError(w http.ResponseWriter, r *http.Request, err error) {
	var me *message.Error
	if errors.As(err, &me) {
		s.writeRejection(w, r, err, nil)
		return
	}
	s.internalError(w, r, "submit message", err)
}

func (s *server) writeRejection(w http.ResponseWriter, r *http.Request, err error, details []byte) {
	s.writeJSON(w, r, http.StatusUnprocessableEntity, submitResponse{MessageStatus: message.StatusRejected, rejection: rejectionOf(err, details)})
}

// pubsubPub serves the legacy POST /api/v0/ipfs/pubsub/pub and /api/v0/p2p/pubsub/pub:
// {"topic": "ALEPH-TEST", "data": "<envelope as a JSON string>"}. The message is
// queued like an asynchronous submission.
func (s *server) pubsubPub(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	fields, err := bodyFields(body)
	if err != nil {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "", "%s", err.Error()), nil)
		return
	}
	var topic string
	if err := json.Unmarshal(fields["topic"], &topic); err != nil || isNull(fields["topic"]) {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "topic", "must be a string"), nil)
		return
	}
	if topic != s.cfg.MessageTopic {
		writeError(w, http.StatusForbidden, "unauthorized topic")
		return
	}
	var data string
	if err := json.Unmarshal(fields["data"], &data); err != nil || isNull(fields["data"]) {
		s.writeRejection(w, r, message.Errorf(message.CodeInvalidFormat, "data", "must be a string holding the message JSON"), nil)
		return
	}
	res, err := s.d.Submitter.Submit(r.Context(), []byte(data), pipeline.SubmitOptions{Origin: "api"})
	if err != nil {
		s.submitError(w, r, err)
		return
	}
	if res.Status == message.StatusRejected {
		s.writeRejection(w, r, res.Err, res.Details)
		return
	}
	s.writeJSON(w, r, http.StatusOK, published)
}
