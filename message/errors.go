package message

import (
	"errors"
	"fmt"
)

// ErrorCode is the protocol's error code for a rejected or retried message
// (pyaleph's ErrorCode enum, -1 … 504). Clients see it in API responses.
type ErrorCode int

// Error codes.
const (
	CodeInternalError          ErrorCode = -1
	CodeInvalidFormat          ErrorCode = 0
	CodeInvalidSignature       ErrorCode = 1
	CodePermissionDenied       ErrorCode = 2
	CodeContentUnavailable     ErrorCode = 3
	CodeFileUnavailable        ErrorCode = 4
	CodeBalanceInsufficient    ErrorCode = 5
	CodeCreditInsufficient     ErrorCode = 6
	CodePostAmendNoTarget      ErrorCode = 100
	CodePostAmendTargetMissing ErrorCode = 101
	CodePostAmendAmend         ErrorCode = 102
	CodeStoreRefNotFound       ErrorCode = 200
	CodeStoreUpdateUpdate      ErrorCode = 201
	CodeInvalidPaymentMethod   ErrorCode = 202
	CodeVMRefNotFound          ErrorCode = 300
	CodeVMVolumeNotFound       ErrorCode = 301
	CodeVMAmendNotAllowed      ErrorCode = 302
	CodeVMUpdateUpdate         ErrorCode = 303
	CodeVMVolumeTooSmall       ErrorCode = 304
	CodeForgetNoTarget         ErrorCode = 500
	CodeForgetTargetNotFound   ErrorCode = 501
	CodeForgetForget           ErrorCode = 502
	CodeForgetNotAllowed       ErrorCode = 503
	CodeForgottenDuplicate     ErrorCode = 504
)

var codeInfo = map[ErrorCode]struct {
	name  string
	retry bool
}{
	CodeInternalError:          {"INTERNAL_ERROR", true},
	CodeInvalidFormat:          {"INVALID_FORMAT", false},
	CodeInvalidSignature:       {"INVALID_SIGNATURE", false},
	CodePermissionDenied:       {"PERMISSION_DENIED", false},
	CodeContentUnavailable:     {"CONTENT_UNAVAILABLE", true},
	CodeFileUnavailable:        {"FILE_UNAVAILABLE", true},
	CodeBalanceInsufficient:    {"BALANCE_INSUFFICIENT", false},
	CodeCreditInsufficient:     {"CREDIT_INSUFFICIENT", false},
	CodePostAmendNoTarget:      {"POST_AMEND_NO_TARGET", false},
	CodePostAmendTargetMissing: {"POST_AMEND_TARGET_NOT_FOUND", true},
	CodePostAmendAmend:         {"POST_AMEND_AMEND", false},
	CodeStoreRefNotFound:       {"STORE_REF_NOT_FOUND", true},
	CodeStoreUpdateUpdate:      {"STORE_UPDATE_UPDATE", false},
	CodeInvalidPaymentMethod:   {"INVALID_PAYMENT_METHOD", false},
	CodeVMRefNotFound:          {"VM_REF_NOT_FOUND", true},
	CodeVMVolumeNotFound:       {"VM_VOLUME_NOT_FOUND", true},
	CodeVMAmendNotAllowed:      {"VM_AMEND_NOT_ALLOWED", false},
	CodeVMUpdateUpdate:         {"VM_UPDATE_UPDATE", false},
	CodeVMVolumeTooSmall:       {"VM_VOLUME_TOO_SMALL", false},
	CodeForgetNoTarget:         {"FORGET_NO_TARGET", false},
	CodeForgetTargetNotFound:   {"FORGET_TARGET_NOT_FOUND", true},
	CodeForgetForget:           {"FORGET_FORGET", false},
	CodeForgetNotAllowed:       {"FORGET_NOT_ALLOWED", false},
	CodeForgottenDuplicate:     {"FORGOTTEN_DUPLICATE", false},
}

// ErrorCodes lists every protocol error code in ascending order.
var ErrorCodes = []ErrorCode{
	CodeInternalError, CodeInvalidFormat, CodeInvalidSignature, CodePermissionDenied,
	CodeContentUnavailable, CodeFileUnavailable, CodeBalanceInsufficient, CodeCreditInsufficient,
	CodePostAmendNoTarget, CodePostAmendTargetMissing, CodePostAmendAmend,
	CodeStoreRefNotFound, CodeStoreUpdateUpdate, CodeInvalidPaymentMethod,
	CodeVMRefNotFound, CodeVMVolumeNotFound, CodeVMAmendNotAllowed, CodeVMUpdateUpdate, CodeVMVolumeTooSmall,
	CodeForgetNoTarget, CodeForgetTargetNotFound, CodeForgetForget, CodeForgetNotAllowed, CodeForgottenDuplicate,
}

// String returns the upstream enum name, such as "INVALID_SIGNATURE".
func (c ErrorCode) String() string {
	if i, ok := codeInfo[c]; ok {
		return i.name
	}
	return fmt.Sprintf("ErrorCode(%d)", int(c))
}

// Retryable reports whether a message failing with c is retried (with backoff) rather
// than rejected at once.
func (c ErrorCode) Retryable() bool { return codeInfo[c].retry }

// Status is the processing status of a message.
type Status string

// Message statuses.
const (
	StatusPending   Status = "pending"
	StatusProcessed Status = "processed"
	StatusRejected  Status = "rejected"
	StatusForgotten Status = "forgotten"
	StatusRemoving  Status = "removing"
	StatusRemoved   Status = "removed"
)

// Statuses lists every message status.
var Statuses = []Status{StatusPending, StatusProcessed, StatusRejected, StatusForgotten, StatusRemoving, StatusRemoved}

var transitions = map[Status][]Status{
	StatusPending:   {StatusProcessed, StatusRejected},
	StatusProcessed: {StatusForgotten, StatusRemoving},
	StatusRemoving:  {StatusProcessed, StatusForgotten, StatusRemoved},
	StatusRejected:  {StatusPending},
}

// CanBecome reports whether the protocol allows a message to move from s to next.
// Forgotten and removed are terminal.
func (s Status) CanBecome(next Status) bool {
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// Sentinel errors. Each is wrapped in an *Error that carries its protocol code.
var (
	// ErrInvalidFormat marks a message that does not follow the schema.
	ErrInvalidFormat = errors.New("invalid format")
	// ErrInvalidSignature marks a missing or wrong signature.
	ErrInvalidSignature = errors.New("invalid signature")
	// ErrHashMismatch marks inline content whose sha256 is not the item_hash.
	ErrHashMismatch = errors.New("item_hash does not match item_content")
	// ErrUnsupportedChain marks a chain without a signature verifier.
	ErrUnsupportedChain = errors.New("unsupported chain")
	// ErrTooLong marks a field over its size limit.
	ErrTooLong = errors.New("too long")
)

// Error is a validation or processing error. It carries the protocol error code and
// the name of the offending field, so that API answers can say what is wrong.
type Error struct {
	Code   ErrorCode
	Field  string // JSON path of the offending field, such as "content.resources.vcpus"; may be empty
	Reason string // lowercase, human-readable
	Err    error  // optional cause or sentinel
}

func (e *Error) Error() string {
	msg := e.Reason
	if e.Field != "" {
		msg = e.Field + ": " + msg
	}
	if e.Err != nil && e.Reason == "" {
		msg = e.Err.Error()
		if e.Field != "" {
			msg = e.Field + ": " + msg
		}
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// Is lets errors.Is match the code's sentinel: every code-0 error is an ErrInvalidFormat
// and every code-1 error an ErrInvalidSignature.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrInvalidFormat:
		return e.Code == CodeInvalidFormat
	case ErrInvalidSignature:
		return e.Code == CodeInvalidSignature
	}
	return false
}

// Errorf builds an *Error with a formatted reason.
func Errorf(code ErrorCode, field, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Wrap builds an *Error around a cause.
func Wrap(code ErrorCode, field string, err error) *Error {
	return &Error{Code: code, Field: field, Err: err}
}

// CodeOf returns the protocol code carried by err, or CodeInternalError when err
// carries none.
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternalError
}

// FieldOf returns the field named by err, or "".
func FieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
