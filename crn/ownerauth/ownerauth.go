// Package ownerauth is aleph-vm's VM-owner authentication (crn-compute.md §4.2):
// a wallet signs a short-lived ephemeral P-256 key (header X-SignedPubKey), the
// ephemeral key signs each operation (header X-SignedOperation), and the node
// checks both before letting the owner, or an address the owner delegated to in
// its security aggregate, control a VM.
//
// Verify is the node's side, SignRequest the client's, Authorizer the
// delegation check. Wallets are ETH (EIP-191 personal_sign over the raw pubkey
// payload JSON) or SOL (ed25519 over the payload's hex text), as upstream.
package ownerauth

import (
	"fmt"
	"net/http"
)

// Header names.
const (
	HeaderSignedPubKey    = "X-SignedPubKey"
	HeaderSignedOperation = "X-SignedOperation"
)

// Reasons, as aleph-vm words them; Error.Reason is one of these.
const (
	ReasonMissingPubKey      = "Missing X-SignedPubKey header"
	ReasonPubKeyFormat       = "Invalid X-SignedPubKey format"
	ReasonPubKeyData         = "Invalid X-SignedPubKey data"
	ReasonTokenExpired       = "Token expired"
	ReasonInvalidSignature   = "Invalid signature"
	ReasonMissingOperation   = "Missing X-SignedOperation header"
	ReasonOperationFormat    = "Invalid X-SignedOperation format"
	ReasonOperationFields    = "Invalid X-SignedOperation fields"
	ReasonInvalidDomain      = "Invalid domain"
	ReasonInvalidPath        = "Invalid path"
	ReasonInvalidMethod      = "Invalid method"
	ReasonOperationSignature = "Signature could not verified" // sic, upstream's wording
)

// Error is an authentication failure with the HTTP status to answer: 400 for a
// missing or malformed header, 401 for an expired token, a bad signature or an
// operation meant for another domain, path or method.
type Error struct {
	Status int
	Reason string // upstream's reason, one of the Reason constants
	Detail string // what exactly is wrong, for people; may be empty
}

func (e *Error) Error() string {
	if e.Detail == "" {
		return e.Reason
	}
	return e.Reason + ": " + e.Detail
}

func badRequest(reason, format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}

func unauthorized(reason, format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
