package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// uploadKind is what an upload endpoint stores.
type uploadKind int

const (
	uploadStorage uploadKind = iota // storage/add_file
	uploadIPFS                      // ipfs/add_file
	uploadCAR                       // ipfs/add_car
)

// itemType is the STORE item_type the endpoint's metadata must carry.
func (k uploadKind) itemType() message.ItemType {
	if k == uploadStorage {
		return message.ItemStorage
	}
	return message.ItemIPFS
}

// authLimit is the file limit of an upload whose signed STORE came first.
func (s *server) authLimit(k uploadKind) int64 {
	switch k {
	case uploadIPFS:
		return s.cfg.MaxIPFSFile
	case uploadCAR:
		return s.cfg.MaxCARFile
	}
	return s.cfg.MaxStorageFile
}

// uploadResponse is the answer of the add_file and add_car endpoints. name is
// set by ipfs/add_file, size by the ipfs endpoints. When a STORE message was
// submitted, message_status is its status, and a rejection adds pyaleph's
// reasons (as POST /api/v0/messages does).
type uploadResponse struct {
	Status        string         `json:"status"`
	Hash          string         `json:"hash"`
	Name          *string        `json:"name,omitempty"`
	Size          *int64         `json:"size,omitempty"`
	MessageStatus message.Status `json:"message_status,omitempty"`
	*rejection
}

// uploadMeta is a verified metadata part: a signed STORE and the sync flag.
type uploadMeta struct {
	raw     json.RawMessage // the envelope, submitted as received
	content *message.StoreContent
	sync    bool
}

// storageAddFile serves POST /api/v0/storage/add_file: a raw body (any
// content type but multipart) is an unauthenticated upload; a multipart body
// carries a "file" part and an optional "metadata" part.
func (s *server) storageAddFile(w http.ResponseWriter, r *http.Request) {
	if !s.filesReady(w) {
		return
	}
	if !isMultipart(r) {
		s.rawUpload(w, r)
		return
	}
	s.multipartUpload(w, r, uploadStorage)
}

// ipfsAddFile serves POST /api/v0/ipfs/add_file (multipart only).
func (s *server) ipfsAddFile(w http.ResponseWriter, r *http.Request) {
	if !s.filesReady(w) {
		return
	}
	s.multipartUpload(w, r, uploadIPFS)
}

// ipfsAddCAR serves POST /api/v0/ipfs/add_car (multipart, metadata required
// and first).
func (s *server) ipfsAddCAR(w http.ResponseWriter, r *http.Request) {
	if !s.filesReady(w) {
		return
	}
	s.multipartUpload(w, r, uploadCAR)
}

func isMultipart(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "multipart/form-data"
}

// rawUpload stores a raw request body in the storage engine, unauthenticated.
func (s *server) rawUpload(w http.ResponseWriter, r *http.Request) {
	limit := s.cfg.MaxUnauthenticatedUpload
	if r.ContentLength > limit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file is over the %d-byte limit of unauthenticated uploads", limit))
		return
	}
	f, err := s.d.Files.AddStorage(r.Context(), r.Body, limit, "")
	if err != nil {
		s.fileError(w, r, "add file", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, uploadResponse{Status: "success", Hash: f.Hash})
}

// multipartOverhead is what a multipart upload may carry beside its file: the
// metadata part (at most BodyLimit), other small parts and the framing.
func (s *server) multipartOverhead() int64 { return s.cfg.BodyLimit + 64<<10 }

// multipartUpload reads the parts in order, streaming. The file limit depends
// on what came before the file part (see the package documentation): a
// verified metadata part raises it from MaxUnauthenticatedUpload to the
// endpoint's authenticated limit.
func (s *server) multipartUpload(w http.ResponseWriter, r *http.Request, kind uploadKind) {
	unauth, auth := s.cfg.MaxUnauthenticatedUpload, s.authLimit(kind)
	if kind == uploadCAR {
		unauth = 0 // a CAR is only taken with its STORE message
	}
	maxBody := max(unauth, auth) + s.multipartOverhead()
	if r.ContentLength > maxBody {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", maxBody))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, http.StatusBadRequest, "expected a multipart/form-data body with a boundary: "+err.Error())
		return
	}
	var (
		meta *uploadMeta
		file *store.File
		name string
	)
	for {
		part, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			s.multipartError(w, r, err)
			return
		}
		switch part.FormName() {
		case "metadata":
			if meta != nil {
				writeError(w, http.StatusBadRequest, "more than one metadata part")
				return
			}
			raw, ok := s.readSmallPart(w, r, part, "metadata")
			if !ok {
				return
			}
			if meta, ok = s.parseUploadMeta(w, r, raw, kind); !ok {
				return
			}
			if file != nil && file.Hash != meta.content.ItemHash {
				// The file came first and was kept as an unauthenticated upload.
				writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("file hash does not match: the file hashes to %s, not %s", file.Hash, meta.content.ItemHash))
				return
			}
		case "file":
			if file != nil {
				writeError(w, http.StatusBadRequest, "more than one file part")
				return
			}
			if kind == uploadCAR && meta == nil {
				writeError(w, http.StatusUnprocessableEntity, "add_car needs the metadata part (a signed STORE message) before the file part")
				return
			}
			limit, want := unauth, ""
			if meta != nil {
				limit, want = auth, meta.content.ItemHash
			}
			name = part.FileName()
			var f *store.File
			src := newReadAhead(part)
			switch kind {
			case uploadStorage:
				f, err = s.d.Files.AddStorage(r.Context(), src, limit, want)
			case uploadIPFS:
				f, err = s.d.Files.AddIPFS(r.Context(), src, limit, want)
			default:
				f, err = s.d.Files.AddCAR(r.Context(), src, limit, want)
			}
			src.Close()
			if err != nil {
				s.fileError(w, r, "add file", err)
				return
			}
			file = f
		default:
			if _, ok := s.readSmallPart(w, r, part, fmt.Sprintf("%q", clip(part.FormName()))); !ok {
				return
			}
		}
	}
	if file == nil {
		writeError(w, http.StatusBadRequest, `no "file" part in the multipart body`)
		return
	}
	if kind == uploadCAR && meta == nil {
		writeError(w, http.StatusUnprocessableEntity, "add_car needs a metadata part with a signed STORE message")
		return
	}
	resp := uploadResponse{Status: "success", Hash: file.Hash}
	switch kind {
	case uploadIPFS:
		if name == "" {
			name = file.Hash // kubo names an unnamed upload by its CID
		}
		resp.Name, resp.Size = &name, &file.Size
	case uploadCAR:
		resp.Size = &file.Size
	}
	if meta == nil {
		s.writeJSON(w, r, http.StatusOK, resp)
		return
	}
	res, err := s.d.Submitter.Submit(r.Context(), meta.raw, pipeline.SubmitOptions{Sync: meta.sync, Origin: "api"})
	if err != nil {
		s.submitError(w, r, err)
		return
	}
	code, known := submitStatusCode(res.Status)
	if !known {
		s.internalError(w, r, "submit store message", fmt.Errorf("pipeline answered unknown status %q", res.Status))
		return
	}
	resp.MessageStatus = res.Status
	if res.Status == message.StatusRejected {
		resp.Status = "error"
		resp.rejection = rejectionOf(res.Err, res.Details)
	}
	s.writeJSON(w, r, code, resp)
}

// multipartError answers a failure to read the multipart framing.
func (s *server) multipartError(w http.ResponseWriter, r *http.Request, err error) {
	var maxBytes *http.MaxBytesError
	if errors.As(err, &maxBytes) {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", maxBytes.Limit))
		return
	}
	writeError(w, http.StatusBadRequest, "malformed or truncated multipart body: "+err.Error())
}

// readSmallPart reads a non-file part of at most BodyLimit bytes.
func (s *server) readSmallPart(w http.ResponseWriter, r *http.Request, part *multipart.Part, what string) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(part, s.cfg.BodyLimit+1))
	if err != nil {
		s.multipartError(w, r, err)
		return nil, false
	}
	if int64(len(b)) > s.cfg.BodyLimit {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the %s part is over the %d-byte limit", what, s.cfg.BodyLimit))
		return nil, false
	}
	return b, true
}

// parseUploadMeta reads the metadata part, {"message": envelope, "sync": bool},
// and checks it before any file byte is read: the envelope must parse (422),
// its signature verify (403), and it must be a STORE with inline content whose
// item_type is the endpoint's (422). It answers itself when ok is false.
func (s *server) parseUploadMeta(w http.ResponseWriter, r *http.Request, raw []byte, kind uploadKind) (*uploadMeta, bool) {
	fields, err := bodyFields(raw)
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, "invalid metadata part: "+err.Error())
		return nil, false
	}
	sync, ok := parseSync(fields["sync"])
	if !ok {
		writeError(w, http.StatusUnprocessableEntity, "invalid metadata part: sync must be a boolean")
		return nil, false
	}
	env, ok := fields["message"]
	if !ok || isNull(env) {
		writeError(w, http.StatusUnprocessableEntity, "invalid metadata part: the message field is required")
		return nil, false
	}
	m, err := message.Parse(env)
	if err != nil {
		s.writeRejection(w, r, err, nil)
		return nil, false
	}
	if s.d.Verifier == nil {
		writeError(w, http.StatusServiceUnavailable, "this node cannot verify signatures: authenticated uploads are disabled")
		return nil, false
	}
	if err := s.d.Verifier.Verify(m); err != nil {
		if message.CodeOf(err) == message.CodeInvalidSignature {
			writeError(w, http.StatusForbidden, "invalid signature: "+err.Error())
		} else {
			s.writeRejection(w, r, err, nil)
		}
		return nil, false
	}
	if m.Type != message.TypeStore {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("the metadata message is a %s; a STORE message is required", m.Type))
		return nil, false
	}
	if m.ItemType != message.ItemInline {
		writeError(w, http.StatusUnprocessableEntity, "the STORE message content is needed: its item_type must be inline")
		return nil, false
	}
	c, err := m.DecodeContent([]byte(m.ItemContent))
	if err != nil {
		s.writeRejection(w, r, err, nil)
		return nil, false
	}
	sc, ok := c.(*message.StoreContent)
	if !ok {
		s.internalError(w, r, "decode store content", fmt.Errorf("STORE content decoded as %T", c))
		return nil, false
	}
	if want := kind.itemType(); sc.ItemType != want {
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("the STORE content item_type is %s; this endpoint takes %s", sc.ItemType, want))
		return nil, false
	}
	if kind == uploadStorage && !message.IsHexHash(sc.ItemHash) {
		writeError(w, http.StatusUnprocessableEntity, "the STORE content item_hash must be a sha256 hex")
		return nil, false
	}
	return &uploadMeta{raw: env, content: sc, sync: sync}, true
}
