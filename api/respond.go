package api

import (
	"bytes"
	"encoding/json"
	"net/http"
)

// writeJSON encodes v completely before writing anything, so that an encoding
// failure (a bug) can still be answered with a 500.
func (s *server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := marshal(v)
	if err != nil {
		s.internalError(w, r, "encode response", err)
		return
	}
	writeRaw(w, status, b)
}

// marshal is json.Marshal without HTML escaping.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// errorBody is the shape of every error that is not a parameter validation list.
type errorBody struct {
	Error string `json:"error"`
}

// writeError answers {"error": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := marshal(errorBody{Error: msg}) // a struct of one string always encodes
	writeRaw(w, status, b)
}

// internalError logs the cause and answers a generic 500.
func (s *server) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	if r.Context().Err() != nil {
		// The client is gone; there is nobody to answer and nothing went wrong here.
		s.log.Debug("api request cancelled", "path", r.URL.Path, "op", what, "err", err)
		writeError(w, http.StatusServiceUnavailable, "request cancelled")
		return
	}
	s.log.Error("api internal error", "method", r.Method, "path", r.URL.Path, "op", what, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error")
}

// paramError is one entry of a 422 parameter validation answer, in pydantic's shape.
type paramError struct {
	Type  string   `json:"type"`
	Loc   []string `json:"loc"`
	Msg   string   `json:"msg"`
	Input *string  `json:"input,omitempty"`
}

// writeParamErrors answers 422 with the validation error list.
func (s *server) writeParamErrors(w http.ResponseWriter, r *http.Request, errs []paramError) {
	s.writeJSON(w, r, http.StatusUnprocessableEntity, errs)
}
