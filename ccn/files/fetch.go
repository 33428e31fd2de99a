package files

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/go-aleph/go-aleph/ccn/pipeline"
	"github.com/go-aleph/go-aleph/filestore"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
	"github.com/go-aleph/go-aleph/unixfs"
)

// FetchContent implements pipeline.ContentFetcher: the content of a storage or
// ipfs message, from the local store or a source, at most MaxContentSize bytes,
// re-hashed.
func (s *Service) FetchContent(ctx context.Context, itemType message.ItemType, itemHash string) ([]byte, error) {
	engine := filestore.Engine(itemType)
	if engine != filestore.EngineStorage && engine != filestore.EngineIPFS {
		return nil, fmt.Errorf("files: fetch content %s: item type %q has no file", itemHash, itemType)
	}
	if got, err := engineOf(itemHash); err != nil || got != engine {
		return nil, fmt.Errorf("files: fetch content %s: not a %s hash: %w", itemHash, engine, errors.Join(ErrUnavailable, pipeline.ErrContentUnavailable, err))
	}
	limit := s.cfg.MaxContentSize
	if f, err := s.files.Open(ctx, itemHash); err == nil {
		raw, err := readVerified(ctx, f, engine, itemHash, limit)
		f.Close()
		if err == nil {
			return raw, nil
		}
		// Local bytes that fail their hash (or are too big) are worth no more
		// than none: try the sources.
		s.log.Warn("local content unusable", "hash", itemHash, "err", err)
	} else if !errors.Is(err, filestore.ErrNotFound) {
		s.log.Warn("open local content", "hash", itemHash, "err", err)
	}
	var errs []error
	for _, src := range s.expand(ctx, engine, itemHash) {
		if ds, ok := src.(DAGSource); ok && engine == filestore.EngineIPFS {
			raw, err := s.fetchContentDAG(ctx, src, ds, itemHash, limit)
			if err != nil {
				errs = append(errs, err)
				if ctx.Err() != nil {
					break
				}
				continue
			}
			return raw, nil
		}
		raw, err := s.fetchContentFrom(ctx, src, engine, itemHash, limit)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		// Keep it, so that the next reader finds it here.
		add := s.AddStorage
		if engine == filestore.EngineIPFS {
			add = s.AddIPFS
		}
		if _, err := add(ctx, bytes.NewReader(raw), limit, itemHash); err != nil {
			s.log.Warn("keep fetched content", "hash", itemHash, "source", src.Name(), "err", err)
		}
		return raw, nil
	}
	return nil, unavailable(pipeline.ErrContentUnavailable, "content", itemHash, errs)
}

// expand lists the sources to ask for hash in order, each Fanout replaced by
// the sources it stands for.
func (s *Service) expand(ctx context.Context, engine filestore.Engine, hash string) []Source {
	out := make([]Source, 0, len(s.sources))
	for _, src := range s.sources {
		if f, ok := src.(Fanout); ok {
			out = append(out, f.Sources(ctx, engine, hash)...)
			continue
		}
		out = append(out, src)
	}
	return out
}

// dagLimit is the bound on a DAG's blocks (and its CAR stream) for a file
// limit: the file's bytes plus room for the DAG's own nodes and the CAR's
// section headers (a fraction of a percent with the usual chunkers).
func dagLimit(limit int64) int64 {
	const room = 1 << 20
	if limit > (math.MaxInt64-room)/9*8 {
		return math.MaxInt64
	}
	return limit + limit/8 + room
}

// fetchContentDAG imports the DAG of ipfs content from a DAGSource, keeps it
// with its row and a grace pin like any fetched content, and reads the file
// back. The bytes are those of blocks the store checked against their CIDs,
// so they are not re-chunked to be verified.
func (s *Service) fetchContentDAG(ctx context.Context, src Source, ds DAGSource, hash string, limit int64) ([]byte, error) {
	unlock, err := s.locks.lock(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name(), err)
	}
	defer unlock()
	info, err := s.importDAG(ctx, src, ds, hash, limit, true)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Name(), err)
	}
	if _, err := s.record(ctx, info); err != nil {
		s.log.Warn("keep fetched content", "hash", hash, "source", src.Name(), "err", err)
	}
	f, err := s.files.Open(ctx, hash)
	if err != nil {
		return nil, fmt.Errorf("%s: read back %s: %w", src.Name(), hash, err)
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read back %s: %w", src.Name(), hash, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("%s: content %s: %w", src.Name(), hash, &filestore.TooLargeError{Limit: limit})
	}
	return raw, nil
}

// importDAG streams the DAG of hash from a DAGSource into the filestore, which
// checks every block against its CID and that the DAG is complete. A result
// over limit (or a directory, when fileOnly) is refused, and removed unless
// it was here before. The caller holds the hash's lock.
func (s *Service) importDAG(ctx context.Context, src Source, ds DAGSource, hash string, limit int64, fileOnly bool) (filestore.Info, error) {
	_, statErr := s.files.Stat(ctx, hash)
	existed := statErr == nil
	rc, err := ds.FetchDAG(ctx, hash, dagLimit(limit))
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			s.log.Warn("fetch dag", "hash", hash, "source", src.Name(), "err", err)
		}
		return filestore.Info{}, err
	}
	defer rc.Close()
	info, err := s.files.AddCAR(ctx, rc, dagLimit(limit), hash)
	if err != nil {
		s.log.Warn("refused dag", "hash", hash, "source", src.Name(), "err", err)
		return filestore.Info{}, err
	}
	var refused error
	switch {
	case info.Size > limit:
		refused = fmt.Errorf("%s: %w", hash, &filestore.TooLargeError{Limit: limit})
	case fileOnly && info.Kind != filestore.KindFile:
		refused = fmt.Errorf("content %s: %w", hash, filestore.ErrIsDir)
	}
	if refused != nil {
		s.log.Warn("refused dag", "hash", hash, "source", src.Name(), "err", refused)
		if !existed {
			if err := s.files.Delete(ctx, hash); err != nil {
				s.log.Warn("drop refused dag", "hash", hash, "err", err)
			}
		}
		return filestore.Info{}, refused
	}
	return info, nil
}

// fetchContentFrom reads and checks the content from one source.
func (s *Service) fetchContentFrom(ctx context.Context, src Source, engine filestore.Engine, hash string, limit int64) ([]byte, error) {
	rc, err := src.Fetch(ctx, engine, hash, limit)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			s.log.Warn("fetch content", "hash", hash, "source", src.Name(), "err", err)
		}
		return nil, fmt.Errorf("%s: %w", src.Name(), err)
	}
	defer rc.Close()
	raw, err := readVerified(ctx, rc, engine, hash, limit)
	if err != nil {
		s.log.Warn("refused content", "hash", hash, "source", src.Name(), "err", err)
		return nil, fmt.Errorf("%s: %w", src.Name(), err)
	}
	return raw, nil
}

// readVerified reads at most limit bytes of r and checks they hash to hash.
func readVerified(ctx context.Context, r io.Reader, engine filestore.Engine, hash string, limit int64) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", hash, err)
	}
	if int64(len(raw)) > limit {
		return nil, fmt.Errorf("content %s: %w", hash, &filestore.TooLargeError{Limit: limit})
	}
	switch engine {
	case filestore.EngineStorage:
		if got := message.HashContent(raw); got != hash {
			return nil, &filestore.MismatchError{Want: hash, Got: got}
		}
	case filestore.EngineIPFS:
		if err := unixfs.VerifyContext(ctx, bytes.NewReader(raw), hash); err != nil {
			return nil, fmt.Errorf("%w: %w", filestore.ErrHashMismatch, err)
		}
	}
	return raw, nil
}

// unavailable is the error of content or a file found nowhere: it wraps
// ErrUnavailable, the pipeline's sentinel and what each source said.
func unavailable(sentinel error, what, hash string, causes []error) error {
	err := fmt.Errorf("files: %s %s not found locally nor at any source: %w", what, hash, errors.Join(ErrUnavailable, sentinel))
	if len(causes) > 0 {
		err = fmt.Errorf("%w (%w)", err, errors.Join(causes...))
	}
	return err
}

// flight is one EnsureFile in progress; concurrent callers for the same hash
// wait for it instead of fetching again.
type flight struct {
	done chan struct{}
	row  *store.File
	err  error
}

// EnsureFile implements pipeline.FileProvider: it makes the file of a STORE
// present locally (fetching and re-hashing it from a source if needed), makes
// sure its file row exists, and returns the row.
//
// Concurrent calls for one hash share one attempt. The attempt runs under
// FetchTimeout on its own: a caller whose context ends gets an error at once,
// and the fetch goes on for the next caller (until Close).
func (s *Service) EnsureFile(ctx context.Context, engine filestore.Engine, hash string) (*store.File, error) {
	if got, err := engineOf(hash); err != nil || got != engine {
		return nil, fmt.Errorf("files: ensure %s: not a %s hash: %w", hash, engine, errors.Join(ErrUnavailable, pipeline.ErrFileUnavailable, err))
	}
	s.flightMu.Lock()
	fl := s.flights[hash]
	if fl == nil {
		if s.bg.Err() != nil {
			s.flightMu.Unlock()
			return nil, fmt.Errorf("files: ensure %s: service closed: %w", hash, errors.Join(ErrUnavailable, pipeline.ErrFileUnavailable))
		}
		fl = &flight{done: make(chan struct{})}
		s.flights[hash] = fl
		s.bgWG.Add(1)
		go s.fly(fl, engine, hash)
	}
	s.flightMu.Unlock()
	select {
	case <-fl.done:
		return fl.row, fl.err
	case <-ctx.Done():
		return nil, fmt.Errorf("files: ensure %s: %w", hash, errors.Join(ErrUnavailable, pipeline.ErrFileUnavailable, ctx.Err()))
	}
}

// fly runs one EnsureFile attempt, then asks the pinners to pin a file that
// came from a source.
func (s *Service) fly(fl *flight, engine filestore.Engine, hash string) {
	defer s.bgWG.Done()
	ctx, cancel := context.WithTimeout(s.bg, s.cfg.FetchTimeout)
	defer cancel()
	row, fetched, err := s.ensure(ctx, engine, hash)
	s.flightMu.Lock()
	delete(s.flights, hash)
	s.flightMu.Unlock()
	fl.row, fl.err = row, err
	close(fl.done)
	switch {
	case err == nil && fetched:
		s.pinAll(ctx, engine, hash)
	case err == nil && engine == filestore.EngineIPFS:
		s.pushAll(ctx, hash)
	}
}

// pushAll sends a local ipfs file's DAG to every Importer source, which pins
// it: a STORE pins its file there too, even when the file was uploaded here.
func (s *Service) pushAll(ctx context.Context, hash string) {
	for _, src := range s.sources {
		imp, ok := src.(Importer)
		if !ok {
			continue
		}
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(s.files.WriteCAR(ctx, hash, pw)) }()
		roots, err := imp.Import(ctx, pr)
		pr.CloseWithError(errors.New("import ended"))
		switch {
		case err != nil:
			s.log.Warn("push to source", "hash", hash, "source", src.Name(), "err", err)
		case len(roots) != 1 || roots[0] != hash:
			s.log.Warn("push to source: unexpected roots", "hash", hash, "source", src.Name(), "roots", roots)
		default:
			s.log.Debug("pushed to source", "hash", hash, "source", src.Name())
		}
	}
}

// ensure makes the file present under its hash lock and reports whether it
// came from a source.
func (s *Service) ensure(ctx context.Context, engine filestore.Engine, hash string) (*store.File, bool, error) {
	unlock, err := s.locks.lock(ctx, hash)
	if err != nil {
		return nil, false, fmt.Errorf("files: ensure %s: %w", hash, errors.Join(ErrUnavailable, pipeline.ErrFileUnavailable, err))
	}
	defer unlock()
	info, err := s.files.Stat(ctx, hash)
	switch {
	case err == nil:
		row, err := s.ensureRow(ctx, info)
		return row, false, err
	case !errors.Is(err, filestore.ErrNotFound):
		return nil, false, fmt.Errorf("files: ensure %s: %w", hash, err)
	}
	var errs []error
	for _, src := range s.expand(ctx, engine, hash) {
		info, err := s.fetchFileFrom(ctx, src, engine, hash)
		if err != nil {
			errs = append(errs, err)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		row, err := s.record(ctx, info)
		return row, true, err
	}
	return nil, false, unavailable(pipeline.ErrFileUnavailable, "file", hash, errs)
}

// ensureRow makes sure a local file has its row, and that the row is not
// left for the collector: an unpinned row gets a fresh grace pin, so that the
// file stays until the STORE that asked for it pins it. The caller holds the
// hash's lock.
func (s *Service) ensureRow(ctx context.Context, info filestore.Info) (*store.File, error) {
	row, err := s.db.GetFile(ctx, info.Hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.record(ctx, info)
	case err != nil:
		return nil, fmt.Errorf("files: ensure %s: %w", info.Hash, err)
	}
	n, err := s.db.CountFilePins(ctx, info.Hash)
	if err != nil {
		return nil, fmt.Errorf("files: ensure %s: %w", info.Hash, err)
	}
	if n == 0 {
		return s.record(ctx, info)
	}
	return row, nil
}

// fetchFileFrom streams a file from one source into the filestore, which
// re-hashes it against hash: the DAG of an ipfs file from a DAGSource (the
// blocks are checked against their CIDs), the bytes otherwise.
func (s *Service) fetchFileFrom(ctx context.Context, src Source, engine filestore.Engine, hash string) (filestore.Info, error) {
	limit := s.cfg.MaxFetchSize
	if ds, ok := src.(DAGSource); ok && engine == filestore.EngineIPFS {
		info, err := s.importDAG(ctx, src, ds, hash, limit, false)
		if err != nil {
			return filestore.Info{}, fmt.Errorf("%s: %w", src.Name(), err)
		}
		return info, nil
	}
	rc, err := src.Fetch(ctx, engine, hash, limit)
	if err != nil {
		if !errors.Is(err, ErrUnavailable) {
			s.log.Warn("fetch file", "hash", hash, "source", src.Name(), "err", err)
		}
		return filestore.Info{}, fmt.Errorf("%s: %w", src.Name(), err)
	}
	defer rc.Close()
	var info filestore.Info
	if engine == filestore.EngineIPFS {
		info, err = s.files.AddUnixFS(ctx, rc, limit, hash, nil)
	} else {
		info, err = s.files.PutStorage(ctx, rc, limit, hash)
	}
	if err != nil {
		s.log.Warn("refused file", "hash", hash, "source", src.Name(), "err", err)
		return filestore.Info{}, fmt.Errorf("%s: %w", src.Name(), err)
	}
	return info, nil
}

// pinAll asks every source that keeps copies to pin the file; failures are
// logged, the file is here either way.
func (s *Service) pinAll(ctx context.Context, engine filestore.Engine, hash string) {
	for _, src := range s.sources {
		if p, ok := src.(Pinner); ok {
			if err := p.Pin(ctx, engine, hash); err != nil {
				s.log.Warn("pin", "hash", hash, "source", src.Name(), "err", err)
			}
		}
	}
}
