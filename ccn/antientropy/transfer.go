package antientropy

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// After reconciliation the stream carries the transfer, in frames of
// uvarint(length) ‖ JSON: the initiator's want list (a JSON array of item
// hashes), the responder's items, then the initiator's pushed items. Each
// item frame is {"message": envelope} or {"forgotten": skeleton}; a frame of
// length 0 ends a list of items.

// ErrProtocol is the error of a peer that breaks the transfer protocol.
var ErrProtocol = errors.New("antientropy: protocol violation")

const (
	maxItemFrame = 1 << 20 // an envelope with inline content is far smaller
	maxHashLen   = 128
)

type item struct {
	Message   json.RawMessage `json:"message,omitempty"`
	Forgotten *forgotten      `json:"forgotten,omitempty"`
}

// forgotten is the skeleton of a forgotten message: its signed envelope
// without the content.
type forgotten struct {
	ItemHash    string        `json:"item_hash"`
	Type        message.Type  `json:"type"`
	Chain       message.Chain `json:"chain"`
	Sender      string        `json:"sender"`
	Signature   string        `json:"signature"`
	ItemType    string        `json:"item_type"`
	Time        float64       `json:"time"`
	Channel     string        `json:"channel,omitempty"`
	ForgottenBy []string      `json:"forgotten_by"`
}

func writeFrame(w io.Writer, payload []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(payload)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(payload)
	return err
}

// readFrame reads one frame of at most limit bytes; an empty frame is (nil, nil).
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, fmt.Errorf("read frame length: %w", err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: frame of %d bytes (limit %d)", ErrProtocol, n, limit)
	}
	if n == 0 {
		return nil, nil
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("read frame: %w", err)
	}
	return buf, nil
}

func writeWant(w io.Writer, hashes []string) error {
	if hashes == nil {
		hashes = []string{}
	}
	b, err := json.Marshal(hashes)
	if err != nil {
		return err
	}
	if err := writeFrame(w, b); err != nil {
		return fmt.Errorf("write want list: %w", err)
	}
	return nil
}

func readWant(r *bufio.Reader, max int) ([]string, error) {
	b, err := readFrame(r, max*(maxHashLen+3)+2)
	if err != nil {
		return nil, fmt.Errorf("want list: %w", err)
	}
	var hashes []string
	if err := json.Unmarshal(b, &hashes); err != nil {
		return nil, fmt.Errorf("%w: want list: %w", ErrProtocol, err)
	}
	if len(hashes) > max {
		return nil, fmt.Errorf("%w: %d hashes wanted (limit %d)", ErrProtocol, len(hashes), max)
	}
	for _, h := range hashes {
		if h == "" || len(h) > maxHashLen {
			return nil, fmt.Errorf("%w: want list holds a hash of %d bytes", ErrProtocol, len(h))
		}
	}
	return hashes, nil
}

// sendHashes writes the items of hashes this node has (others are skipped)
// and the end frame.
func (s *Service) sendHashes(ctx context.Context, w io.Writer, hashes []string) (int, error) {
	bw := bufio.NewWriterSize(w, 64<<10)
	sent := 0
	for _, h := range hashes {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		it, err := s.itemOf(ctx, h)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return sent, err
		}
		b, err := json.Marshal(it)
		if err != nil {
			return sent, fmt.Errorf("encode item %s: %w", h, err)
		}
		if err := writeFrame(bw, b); err != nil {
			return sent, fmt.Errorf("write item: %w", err)
		}
		sent++
	}
	if err := writeFrame(bw, nil); err != nil {
		return sent, fmt.Errorf("write end: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return sent, fmt.Errorf("write items: %w", err)
	}
	s.m.items.WithLabelValues("sent", "message").Add(float64(sent))
	return sent, nil
}

func (s *Service) itemOf(ctx context.Context, hash string) (*item, error) {
	m, err := s.deps.Store.GetMessage(ctx, hash)
	if err == nil {
		raw, err := json.Marshal(&m.Message)
		if err != nil {
			return nil, fmt.Errorf("encode message %s: %w", hash, err)
		}
		return &item{Message: raw}, nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("get message %s: %w", hash, err)
	}
	f, err := s.deps.Store.GetForgotten(ctx, hash)
	if err != nil {
		return nil, err
	}
	return &item{Forgotten: &forgotten{ItemHash: f.ItemHash, Type: f.Type, Chain: f.Chain, Sender: f.Sender,
		Signature: f.Signature, ItemType: string(f.ItemType), Time: f.Time.Seconds(), Channel: f.Channel,
		ForgottenBy: f.ForgottenBy}}, nil
}

// receiveItems reads items until the end frame, at most max, and admits the
// messages through SubmitMany in batches; it returns how many it read. Pushed
// items (not asked for) whose hash another session brought or claimed recently
// are skipped: during heavy gossip several peers push the same messages.
func (s *Service) receiveItems(ctx context.Context, r *bufio.Reader, max int, pushed bool) (int, error) {
	batches := make(chan [][]byte, 2)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range batches {
			s.admit(ctx, b)
		}
	}()
	var batch [][]byte
	flush := func() {
		if len(batch) > 0 {
			batches <- batch
			batch = nil
		}
	}
	defer func() {
		flush()
		close(batches)
		<-done
	}()
	n := 0
	for {
		b, err := readFrame(r, maxItemFrame)
		if err != nil {
			return n, err
		}
		if b == nil {
			return n, nil
		}
		if n == max {
			return n, fmt.Errorf("%w: more than %d items", ErrProtocol, max)
		}
		n++
		var it item
		if err := json.Unmarshal(b, &it); err != nil {
			s.m.items.WithLabelValues("received", "malformed").Inc()
			return n, fmt.Errorf("%w: item: %w", ErrProtocol, err)
		}
		switch {
		case it.Message != nil:
			if pushed {
				var head struct {
					ItemHash string `json:"item_hash"`
				}
				if json.Unmarshal(it.Message, &head) == nil && !s.claim(head.ItemHash) {
					s.m.items.WithLabelValues("received", "duplicate").Inc()
					continue
				}
			}
			batch = append(batch, it.Message)
			if len(batch) == submitBatch {
				flush()
			}
		case it.Forgotten != nil:
			s.tombstone(ctx, it.Forgotten)
		default:
			s.m.items.WithLabelValues("received", "malformed").Inc()
			return n, fmt.Errorf("%w: item is neither a message nor a forgotten skeleton", ErrProtocol)
		}
	}
}

// submitBatch is how many received messages are admitted at once.
const submitBatch = 512

// tombstone keeps a forgotten skeleton the peer sent, once its signature (over
// chain, sender, type and item hash: no content needed) checks out, so that the
// FORGET that erased it can be processed here too.
func (s *Service) tombstone(ctx context.Context, f *forgotten) {
	if s.deps.Tombstones == nil || s.deps.Verify == nil {
		s.m.items.WithLabelValues("received", "forgotten_ignored").Inc()
		return
	}
	t := message.TimeFromSeconds(f.Time)
	if f.ItemHash == "" || len(f.ItemHash) > maxHashLen || f.Time < 0 {
		s.m.items.WithLabelValues("received", "malformed").Inc()
		return
	}
	m := &message.Message{Chain: f.Chain, Sender: f.Sender, Type: f.Type, ItemHash: f.ItemHash,
		ItemType: message.ItemType(f.ItemType), Signature: f.Signature, Time: t, Channel: f.Channel}
	if err := s.deps.Verify(m); err != nil {
		s.m.items.WithLabelValues("received", "rejected").Inc()
		return
	}
	if _, err := s.deps.Store.GetForgotten(ctx, f.ItemHash); err == nil {
		return // known here already
	}
	s.deps.Tombstones.add(&store.Forgotten{ItemHash: f.ItemHash, Type: f.Type, Chain: f.Chain, Sender: f.Sender,
		Signature: f.Signature, ItemType: m.ItemType, Time: t, Channel: f.Channel})
	s.m.items.WithLabelValues("received", "forgotten").Inc()
}

func (s *Service) admit(ctx context.Context, raws [][]byte) {
	res, err := s.deps.Submitter.SubmitMany(ctx, raws, "p2p")
	if err != nil {
		s.m.items.WithLabelValues("received", "error").Add(float64(len(raws)))
		if ctx.Err() == nil {
			s.log.Warn("admit synced messages", "count", len(raws), "err", err)
		}
		return
	}
	for _, r := range res {
		var merr *message.Error
		switch {
		case errors.As(r.Err, &merr) && r.Status == "":
			s.m.items.WithLabelValues("received", "malformed").Inc()
		case r.Status == message.StatusRejected:
			s.m.items.WithLabelValues("received", "rejected").Inc()
		default:
			s.m.items.WithLabelValues("received", "accepted").Inc()
		}
	}
}

// countingStream counts the bytes a session moves.
type countingStream struct {
	rw         io.ReadWriter
	sent, recv int64
}

// SetDeadline lets the reconciliation session end a blocked read when its
// context ends.
func (c *countingStream) SetDeadline(t time.Time) error {
	if d, ok := c.rw.(interface{ SetDeadline(time.Time) error }); ok {
		return d.SetDeadline(t)
	}
	return nil
}

func (c *countingStream) Read(p []byte) (int, error) {
	n, err := c.rw.Read(p)
	c.recv += int64(n)
	return n, err
}

func (c *countingStream) Write(p []byte) (int, error) {
	n, err := c.rw.Write(p)
	c.sent += int64(n)
	return n, err
}
