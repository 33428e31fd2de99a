package api

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/unixfs"
)

// immutable is the Cache-Control of content-addressed answers: the bytes behind
// a hash never change.
const immutable = "public, max-age=31536000, immutable"

// fileEngine classifies a file hash: 64 lowercase hex digits are a storage
// sha256, a CID that unixfs.ParseCID accepts (v0, or v1 dag-pb or raw with
// sha2-256, any multibase) is ipfs.
func fileEngine(h string) (filestore.Engine, bool) {
	if message.IsHexHash(h) {
		return filestore.EngineStorage, true
	}
	if _, err := unixfs.ParseCID(h); err == nil {
		return filestore.EngineIPFS, true
	}
	return "", false
}

// fileHashParam reads and checks a file hash path value; it answers 400 itself.
func fileHashParam(w http.ResponseWriter, r *http.Request, name string) (string, filestore.Engine, bool) {
	h := r.PathValue(name)
	engine, ok := fileEngine(h)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid file hash %q: want a sha256 hex or an IPFS CID", clip(h)))
		return "", "", false
	}
	return h, engine, true
}

// filesReady answers 503 when the node has no file service.
func (s *server) filesReady(w http.ResponseWriter) bool {
	if s.d.Files == nil {
		writeError(w, http.StatusServiceUnavailable, "file storage is not enabled on this node")
		return false
	}
	return true
}

// addFile stores an upload in the engine's store.
func (s *server) addFile(ctx context.Context, engine filestore.Engine, r io.Reader, limit int64, want string) (*store.File, error) {
	if engine == filestore.EngineIPFS {
		return s.d.Files.AddIPFS(ctx, r, limit, want)
	}
	return s.d.Files.AddStorage(ctx, r, limit, want)
}

// fileError answers an error of the file service or of reading an upload: the
// client's problems are 4xx naming the problem; anything else is a logged 500.
func (s *server) fileError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var (
		tooLarge *filestore.TooLargeError
		mismatch *filestore.MismatchError
		maxBytes *http.MaxBytesError
	)
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file is over the %d-byte limit", tooLarge.Limit))
	case errors.As(err, &maxBytes):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the %d-byte limit", maxBytes.Limit))
	case errors.Is(err, filestore.ErrTooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, "file too large")
	case errors.As(err, &mismatch):
		writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("file hash does not match: the file hashes to %s, not %s", mismatch.Got, mismatch.Want))
	case errors.Is(err, filestore.ErrHashMismatch):
		writeError(w, http.StatusUnprocessableEntity, "file hash does not match")
	case errors.Is(err, filestore.ErrInvalidCAR):
		writeError(w, http.StatusUnprocessableEntity, "invalid CAR: "+err.Error())
	case errors.Is(err, filestore.ErrInvalidHash):
		writeError(w, http.StatusBadRequest, "invalid hash: "+err.Error())
	case errors.Is(err, filestore.ErrTruncated):
		writeError(w, http.StatusBadRequest, "upload interrupted: the request body ended or failed before the file was complete; nothing was kept")
	case errors.Is(err, filestore.ErrNotFound), errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, "file not found")
	case errors.Is(err, filestore.ErrIsDir):
		writeError(w, http.StatusUnprocessableEntity, "the hash names a directory: download it as a tar archive from /api/v0/storage/raw/{hash}")
	default:
		s.internalError(w, r, what, err)
	}
}

// getFileRow reads a file row; ok=false means it answered (404 or 500).
func (s *server) getFileRow(w http.ResponseWriter, r *http.Request, hash string) (*store.File, bool) {
	f, err := s.d.Store.GetFile(r.Context(), hash)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "file not found")
		return nil, false
	}
	if err != nil {
		s.internalError(w, r, "get file", err)
		return nil, false
	}
	return f, true
}

// storageRaw serves GET and HEAD /api/v0/storage/raw/{hash}: a file's bytes with
// Range, If-Range, conditional requests and HEAD (http.ServeContent); a
// directory as an uncompressed tar archive (no Range). The TypeScript SDK's
// literal "?find" query is ignored like any other.
func (s *server) storageRaw(w http.ResponseWriter, r *http.Request) {
	hash, _, ok := fileHashParam(w, r, "hash")
	if !ok {
		return
	}
	if s.d.Files == nil {
		writeError(w, http.StatusNotFound, "file not found")
		return
	}
	f, err := s.d.Files.Open(r.Context(), hash)
	if errors.Is(err, filestore.ErrIsDir) {
		s.serveTar(w, r, hash)
		return
	}
	if err != nil {
		s.fileError(w, r, "open file", err)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+hash+`"`)
	h.Set("Cache-Control", immutable)
	jw := &jsonErrorWriter{ResponseWriter: w}
	http.ServeContent(jw, r, "", time.Time{}, f)
	jw.finish()
}

// serveTar streams a directory as a tar archive. Its length is not known in
// advance, so there is no Content-Length and no Range.
func (s *server) serveTar(w http.ResponseWriter, r *http.Request, hash string) {
	h := w.Header()
	h.Set("Content-Type", "application/x-tar")
	h.Set("ETag", `"`+hash+`.tar"`)
	h.Set("Cache-Control", immutable)
	h.Set("Accept-Ranges", "none")
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	cw := &countingWriter{w: w}
	if err := s.d.Files.WriteTar(r.Context(), hash, cw); err != nil {
		if cw.n == 0 {
			h.Del("ETag")
			h.Del("Cache-Control")
			h.Del("Accept-Ranges")
			s.fileError(w, r, "write tar", err)
			return
		}
		// The status is gone: cut the connection so the client sees a short body.
		s.log.Warn("tar download failed midway", "hash", hash, "written", cw.n, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	return n, err
}

// jsonErrorWriter turns the plain-text errors http.ServeContent writes (416,
// 500 on a failed seek) into this API's JSON errors; everything else passes
// through.
type jsonErrorWriter struct {
	http.ResponseWriter
	errCode int
	errText strings.Builder
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code >= 400 {
		w.errCode = code
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *jsonErrorWriter) Write(b []byte) (int, error) {
	if w.errCode != 0 {
		if w.errText.Len() < 512 {
			w.errText.Write(b)
		}
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the underlying writer's fast path (sendfile) for io.Copy.
func (w *jsonErrorWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.errCode != 0 {
		return io.Copy(io.Discard, r)
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *jsonErrorWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// finish writes the JSON error, if ServeContent answered one.
func (w *jsonErrorWriter) finish() {
	if w.errCode == 0 {
		return
	}
	h := w.Header()
	h.Del("X-Content-Type-Options")
	h.Del("ETag")
	h.Del("Cache-Control")
	msg := strings.TrimSpace(w.errText.String())
	if msg == "" {
		msg = http.StatusText(w.errCode)
	}
	writeError(w.ResponseWriter, w.errCode, msg)
}

// writerOnly hides a writer's ReadFrom, so that io.Copy does not recurse.
type writerOnly struct{ io.Writer }

// storageGet serves GET /api/v0/storage/{hash}, also the node-to-node content
// API: the file as MIME base64 (76-character lines, each ending in "\n", as
// Python's base64.encodebytes writes) inside {"status","hash","engine",
// "content"}. Files over MaxStorageFile get 413. The answer is streamed with a
// precomputed Content-Length.
func (s *server) storageGet(w http.ResponseWriter, r *http.Request) {
	if h := r.PathValue("hash"); h == "add_file" || h == "add_json" {
		// The upload routes only take POST; {hash} caught the GET.
		w.Header().Set("Allow", "POST, OPTIONS")
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
		return
	}
	hash, engine, ok := fileHashParam(w, r, "hash")
	if !ok {
		return
	}
	row, ok := s.getFileRow(w, r, hash)
	if !ok {
		return
	}
	if row.Size > s.cfg.MaxStorageFile {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file is %d bytes, over the %d-byte limit of this endpoint: use /api/v0/storage/raw/%s", row.Size, s.cfg.MaxStorageFile, hash))
		return
	}
	if s.d.Files == nil {
		writeError(w, http.StatusNotFound, "file not found")
		return
	}
	f, err := s.d.Files.Open(r.Context(), hash)
	if err != nil {
		s.fileError(w, r, "open file", err)
		return
	}
	defer f.Close()
	size := f.Info().Size
	if size > s.cfg.MaxStorageFile {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("file is %d bytes, over the %d-byte limit of this endpoint: use /api/v0/storage/raw/%s", size, s.cfg.MaxStorageFile, hash))
		return
	}
	head, err := marshal(struct {
		Status string           `json:"status"`
		Hash   string           `json:"hash"`
		Engine filestore.Engine `json:"engine"`
	}{"success", hash, engine})
	if err != nil {
		s.internalError(w, r, "encode response", err)
		return
	}
	// {"status":…,"engine":…} + ,"content":" … "}\n
	head = head[:len(head)-2] // drop "}\n"
	prefix := string(head) + `,"content":"`
	const suffix = "\"}\n"
	hd := w.Header()
	hd.Set("Content-Type", "application/json; charset=utf-8")
	hd.Set("Content-Length", fmt.Sprint(int64(len(prefix))+mimeBase64JSONLen(size)+int64(len(suffix))))
	hd.Set("Cache-Control", immutable)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.WriteString(w, prefix); err != nil {
		return
	}
	n, err := writeMIMEBase64JSON(w, f)
	if err == nil && n != size {
		err = fmt.Errorf("file is %d bytes, not the %d its metadata says", n, size)
	}
	if err != nil {
		if r.Context().Err() == nil {
			s.log.Error("storage content download failed midway", "hash", hash, "err", err)
		}
		panic(http.ErrAbortHandler) // the status is sent: cut the body short
	}
	_, _ = io.WriteString(w, suffix)
}

// mimeLine is the length of a MIME base64 line (RFC 2045).
const mimeLine = 76

// mimeBase64JSONLen is the length of n bytes as MIME base64 inside a JSON
// string: every line break is the two characters `\n`.
func mimeBase64JSONLen(n int64) int64 {
	b64 := (n + 2) / 3 * 4
	lines := (b64 + mimeLine - 1) / mimeLine
	return b64 + 2*lines
}

// writeMIMEBase64JSON streams r as base64 in lines of 76 characters, each
// followed by a JSON-escaped newline, as Python's base64.encodebytes (empty
// input gives nothing). It returns the number of bytes read.
func writeMIMEBase64JSON(w io.Writer, r io.Reader) (int64, error) {
	// 57 input bytes make one 76-character line; read many lines at once.
	const linesPerChunk = 1024
	in := make([]byte, 57*linesPerChunk)
	out := make([]byte, 0, (mimeLine+2)*linesPerChunk)
	var total int64
	for {
		n, err := io.ReadFull(r, in)
		total += int64(n)
		if n > 0 {
			out = out[:0]
			for i := 0; i < n; i += 57 {
				end := min(i+57, n)
				out = base64.StdEncoding.AppendEncode(out, in[i:end])
				out = append(out, '\\', 'n')
			}
			if _, werr := w.Write(out); werr != nil {
				return total, werr
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// fileMetadata is the answer of /api/v0/storage/metadata/{hash}.
type fileMetadata struct {
	FileHash    string `json:"file_hash"`
	Type        string `json:"type"`
	Size        int64  `json:"size"`
	DownloadURL string `json:"download_url"`
}

func downloadURL(hash string) string { return "/api/v0/storage/raw/" + hash }

// storageMetadata serves GET /api/v0/storage/metadata/{hash}.
func (s *server) storageMetadata(w http.ResponseWriter, r *http.Request) {
	hash, _, ok := fileHashParam(w, r, "hash")
	if !ok {
		return
	}
	f, ok := s.getFileRow(w, r, hash)
	if !ok {
		return
	}
	s.writeJSON(w, r, http.StatusOK, fileMetadata{FileHash: f.Hash, Type: f.Type, Size: f.Size, DownloadURL: downloadURL(f.Hash)})
}

// refMetadata is the answer of the by-message-hash and by-ref lookups.
type refMetadata struct {
	Ref         string `json:"ref"`
	Owner       string `json:"owner"`
	FileHash    string `json:"file_hash"`
	DownloadURL string `json:"download_url"`
	Size        int64  `json:"size"`
}

// storageByMessageHash serves GET /api/v0/storage/by-message-hash/{message_hash}:
// the file a processed STORE pins; ref is the STORE's ref, or its item hash
// when it has none.
func (s *server) storageByMessageHash(w http.ResponseWriter, r *http.Request) {
	h := r.PathValue("message_hash")
	if !message.IsItemHash(h) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid message hash %q", clip(h)))
		return
	}
	pin, err := s.d.Store.GetStorePin(r.Context(), h)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, "no processed STORE message with this hash")
		return
	}
	if err != nil {
		s.internalError(w, r, "get store pin", err)
		return
	}
	f, ok := s.getFileRow(w, r, pin.FileHash)
	if !ok {
		return
	}
	ref := pin.Ref
	if ref == "" {
		ref = h
	}
	s.writeJSON(w, r, http.StatusOK, refMetadata{Ref: ref, Owner: pin.Owner, FileHash: f.Hash, DownloadURL: downloadURL(f.Hash), Size: f.Size})
}

// storageByRef serves GET /api/v0/storage/by-ref/{ref} (a STORE item hash
// used as ref) and /api/v0/storage/by-ref/{address}/{ref} (a user ref, tag
// "<address>/<ref>"): the latest file of the tag.
func (s *server) storageByRef(w http.ResponseWriter, r *http.Request) {
	ref, addr := r.PathValue("ref"), r.PathValue("address")
	if !cleanString(ref) || !cleanString(addr) || ref == "" {
		writeError(w, http.StatusBadRequest, "invalid ref: want valid UTF-8 without NUL")
		return
	}
	tag := ref
	if addr != "" {
		tag = addr + "/" + ref
	}
	t, err := s.d.Store.GetFileTag(r.Context(), tag)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no file for ref %q", clip(tag)))
		return
	}
	if err != nil {
		s.internalError(w, r, "get file tag", err)
		return
	}
	f, ok := s.getFileRow(w, r, t.FileHash)
	if !ok {
		return
	}
	s.writeJSON(w, r, http.StatusOK, refMetadata{Ref: ref, Owner: t.Owner, FileHash: f.Hash, DownloadURL: downloadURL(f.Hash), Size: f.Size})
}

// storageCount serves GET /api/v0/storage/count/{hash}: the number of pins of
// any type on the file, a bare integer (0 for an unknown file).
func (s *server) storageCount(w http.ResponseWriter, r *http.Request) {
	hash, _, ok := fileHashParam(w, r, "hash")
	if !ok {
		return
	}
	n, err := s.d.Store.CountFilePins(r.Context(), hash)
	if err != nil {
		s.internalError(w, r, "count file pins", err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, n)
}

// storageLimits serves GET /api/v0/storage/limits.json.
func (s *server) storageLimits(w http.ResponseWriter, r *http.Request) {
	type storageLimits struct {
		MaxFileSize                      int64 `json:"max_file_size"`
		MaxUnauthenticatedUploadFileSize int64 `json:"max_unauthenticated_upload_file_size"`
	}
	type ipfsLimits struct {
		MaxUploadFileSize                int64 `json:"max_upload_file_size"`
		MaxUploadCARSize                 int64 `json:"max_upload_car_size"`
		MaxUnauthenticatedUploadFileSize int64 `json:"max_unauthenticated_upload_file_size"`
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Storage storageLimits `json:"storage"`
		IPFS    ipfsLimits    `json:"ipfs"`
	}{
		storageLimits{s.cfg.MaxStorageFile, s.cfg.MaxUnauthenticatedUpload},
		ipfsLimits{s.cfg.MaxIPFSFile, s.cfg.MaxCARFile, s.cfg.MaxUnauthenticatedUpload},
	})
}

// ownerFileJSON is one file of /api/v0/addresses/{address}/files.
type ownerFileJSON struct {
	FileHash string `json:"file_hash"`
	Size     int64  `json:"size"`
	Type     string `json:"type"`
	Created  string `json:"created"`
	ItemHash string `json:"item_hash"`
}

// addressFiles serves GET /api/v0/addresses/{address}/files: the files the
// address's STORE messages pin, by STORE time (sort_order, default -1), with
// pagination (default 100, 0 = all) and page. created is ISO-8601, as pyaleph's
// datetime. An address with no files answers 200 with an empty list (pyaleph:
// 404).
func (s *server) addressFiles(w http.ResponseWriter, r *http.Request) {
	addr, ok := addressParam(w, r)
	if !ok {
		return
	}
	q := newQuery(r)
	size := q.int("pagination", 100, 0, maxPagination)
	page := q.int("page", 1, 1, maxPage)
	orderName := "sort_order"
	if !q.has(orderName) && q.has("sortOrder") {
		orderName = "sortOrder"
	}
	order := q.sortOrder(orderName)
	if len(q.errs) > 0 {
		s.writeParamErrors(w, r, q.errs)
		return
	}
	files, total, totalSize, err := s.d.Store.OwnerFiles(r.Context(), addr, order, store.Page{Size: size, Number: page})
	if err != nil {
		s.internalError(w, r, "owner files", err)
		return
	}
	out := make([]ownerFileJSON, 0, len(files))
	for _, f := range files {
		out = append(out, ownerFileJSON{FileHash: f.FileHash, Size: f.Size, Type: f.Type, Created: isoSeconds(f.Created), ItemHash: f.ItemHash})
	}
	s.writeJSON(w, r, http.StatusOK, struct {
		Address           string          `json:"address"`
		TotalSize         int64           `json:"total_size"`
		Files             []ownerFileJSON `json:"files"`
		PaginationPage    int             `json:"pagination_page"`
		PaginationTotal   int64           `json:"pagination_total"`
		PaginationPerPage int             `json:"pagination_per_page"`
		PaginationItem    string          `json:"pagination_item"`
	}{addr, totalSize, out, page, total, size, "files"})
}
