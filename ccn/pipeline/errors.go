package pipeline

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
)

// ErrContentUnavailable is what a ContentFetcher wraps when the content of a
// storage or ipfs message cannot be had (yet): the message is retried with
// CONTENT_UNAVAILABLE (3).
var ErrContentUnavailable = errors.New("content unavailable")

// ErrFileUnavailable is what a FileProvider wraps when the file of a STORE
// cannot be had (yet): the message is retried with FILE_UNAVAILABLE (4).
var ErrFileUnavailable = errors.New("file unavailable")

// StatusOf maps a pipeline event to the status a client is told: processed and
// confirmed mean processed, retry means still pending, rejected and forgotten
// are themselves.
func StatusOf(k events.Kind) message.Status {
	switch k {
	case events.Processed, events.Confirmed:
		return message.StatusProcessed
	case events.Rejected:
		return message.StatusRejected
	case events.Forgotten:
		return message.StatusForgotten
	}
	return message.StatusPending
}

// ResultOf turns the event a sync submission waited for into its result. Err and
// Details are set for rejections only.
func ResultOf(e events.Event) SubmitResult {
	r := SubmitResult{ItemHash: e.ItemHash, Status: StatusOf(e.Kind)}
	if e.Kind == events.Rejected {
		r.Err, r.Details = e.Err, e.Details
		if r.Err == nil {
			r.Err = message.Errorf(e.Code, "", "rejected")
		}
	}
	return r
}

// failure is a protocol error raised while processing a message: it carries the
// error code (in err) and optional JSON details for the rejection record. Any
// other error met while processing is a database error and aborts the batch.
type failure struct {
	err     *message.Error
	details json.RawMessage
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() error { return f.err }

// fail builds a failure without details.
func fail(code message.ErrorCode, field, format string, args ...any) *failure {
	return &failure{err: message.Errorf(code, field, format, args...)}
}

// failDetails builds a failure whose details are v encoded as JSON.
func failDetails(code message.ErrorCode, details any, format string, args ...any) *failure {
	f := fail(code, "", format, args...)
	if b, err := json.Marshal(details); err == nil {
		f.details = b
	}
	return f
}

// asFailure reports whether err is a protocol error and returns it as a failure.
// A *message.Error (a content schema error, say) counts; anything else is a
// database or internal error.
func asFailure(err error) (*failure, bool) {
	var f *failure
	if errors.As(err, &f) {
		return f, true
	}
	var me *message.Error
	if errors.As(err, &me) {
		return &failure{err: me}, true
	}
	return nil, false
}

// internalFailure wraps an unexpected error as a retryable INTERNAL_ERROR (-1).
func internalFailure(err error) *failure {
	return &failure{err: &message.Error{Code: message.CodeInternalError, Reason: fmt.Sprintf("internal error: %v", err)}}
}
