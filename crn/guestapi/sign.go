package guestapi

import (
	"bytes"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-aleph/go-aleph/message"
)

// ErrBadSignRequest is wrapped by every refusal of a /sign body.
var ErrBadSignRequest = errors.New("bad sign request")

func signError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadSignRequest, fmt.Sprintf(format, args...))
}

// isVMAddress reports whether address is one of the content addresses a VM may sign for: its item hash, and
// the base32 form init1 exports as ALEPH_ADDRESS_TO_USE (crn-compute.md §2.3),
// which the SDK puts in content.address.
func isVMAddress(address, vmHash string) bool {
	if strings.EqualFold(address, vmHash) {
		return true
	}
	raw, err := hex.DecodeString(vmHash)
	return err == nil && strings.EqualFold(address, base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
}

// PrepareSign checks an unsigned message dict posted to /sign by the VM
// vmHash and returns it, as parsed, with its fields; the caller signs it.
//
// Upstream only checks json.loads(item_content)["address"] == vm_hash and then
// signs whatever item_hash it is given, so a program could get the node's
// signature over any other content. Here the whole envelope must validate:
// an inline message (the guest API must see the content) whose item_hash is
// the sha256 of item_content, a known type, and a content schema that holds.
// A missing sender or chain is filled in from the signer, as the SDK's
// _setup_sender does; a different one is refused.
func PrepareSign(body []byte, vmHash string, signer message.Signer) (*message.Message, map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var fields map[string]json.RawMessage
	if err := dec.Decode(&fields); err != nil || fields == nil {
		return nil, nil, signError("body must be a JSON object (the unsigned message)")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, nil, signError("trailing data after the message object")
	}
	// Keys differing only in case would read differently to Python (exact) and
	// Go (case-insensitive) decoders: the signed fields must be unambiguous.
	folded := make(map[string]bool, len(fields))
	for k := range fields {
		if folded[strings.ToLower(k)] {
			return nil, nil, signError("field %q appears twice with different case", truncate(k, 40))
		}
		folded[strings.ToLower(k)] = true
	}
	var itemContent string
	if raw, ok := fields["item_content"]; !ok || json.Unmarshal(raw, &itemContent) != nil {
		return nil, nil, signError("item_content must be a string: only inline messages can be signed")
	}
	// Exact-key lookup, as Python's json.loads; the decoded content is checked
	// again below with the node's own (case-insensitive) decoder, so content
	// like {"address": vm, "ADDRESS": node} cannot read differently to each.
	var content map[string]json.RawMessage
	var address string
	if err := json.Unmarshal([]byte(itemContent), &content); err != nil || content == nil {
		return nil, nil, signError("item_content is not a JSON object")
	}
	if raw, ok := content["address"]; !ok || json.Unmarshal(raw, &address) != nil {
		return nil, nil, signError("item_content has no address string")
	}
	if !isVMAddress(address, vmHash) {
		return nil, nil, signError("message address %q does not match the VM item_hash %s", truncate(address, 80), vmHash)
	}
	for name, want := range map[string]string{"sender": signer.Address(), "chain": string(signer.Chain())} {
		var got string
		raw, ok := fields[name]
		if ok && string(raw) != "null" {
			if json.Unmarshal(raw, &got) != nil {
				return nil, nil, signError("%s must be a string", name)
			}
		}
		if got == "" {
			fields[name], _ = json.Marshal(want)
			continue
		}
		if !strings.EqualFold(got, want) {
			return nil, nil, signError("%s %q is not the node's signing account (%s)", name, truncate(got, 80), want)
		}
		fields[name], _ = json.Marshal(want) // the node's spelling (EIP-55 case)
	}
	delete(fields, "signature")
	envelope, err := json.Marshal(fields)
	if err != nil {
		return nil, nil, signError("cannot re-encode the message")
	}
	m, err := message.Parse(envelope)
	if err != nil {
		return nil, nil, signError("invalid message: %v", err)
	}
	if m.ItemType != message.ItemInline {
		return nil, nil, signError("only inline messages can be signed, got item_type %s", m.ItemType)
	}
	c, err := m.DecodeContent([]byte(m.ItemContent))
	if err != nil {
		return nil, nil, signError("invalid content: %v", err)
	}
	if a := c.Base().Address; !isVMAddress(a, vmHash) {
		return nil, nil, signError("message address %q does not match the VM item_hash %s", truncate(a, 80), vmHash)
	}
	return m, fields, nil
}

func (h *Handler) sign(w http.ResponseWriter, r *http.Request) {
	body, ok := readBody(w, r, h.cfg.MaxSignBody)
	if !ok {
		return
	}
	m, fields, err := PrepareSign(body, h.cfg.VMHash, h.cfg.Signer)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sig, err := h.cfg.Signer.Sign(m.VerificationBuffer())
	if err != nil {
		// The envelope validated, so this is the node's key failing.
		h.log.Error("guest api sign failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "the node cannot sign")
		return
	}
	fields["signature"], _ = json.Marshal(sig)
	h.log.Info("guest api signed a message", "item_hash", m.ItemHash, "type", m.Type)
	writeJSON(w, http.StatusOK, fields)
}
