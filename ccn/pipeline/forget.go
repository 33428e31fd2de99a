package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// forgetTarget is a message a FORGET erases: a stored one, or one already
// forgotten (which only gets the FORGET added to its forgotten_by).
type forgetTarget struct {
	msg       *store.Message
	forgotten *store.Forgotten
	// tombstone is a target this node never had, forgotten on a peer: its
	// signed skeleton, from anti-entropy.
	tombstone *store.Forgotten
}

// Tombstones are skeletons of messages forgotten on peers, whose signatures
// were checked on receipt (anti-entropy keeps them). A FORGET whose target this
// node never had uses one instead of waiting for a message nobody can send any
// more.
type Tombstones interface {
	Tombstone(itemHash string) (*store.Forgotten, bool)
}

// checkForget (§3.8): a FORGET needs targets (500). Each hash must be a stored
// message (retry 501) that is not a FORGET (502), that the sender could have
// created (2), and, for a STORE, that no live VM uses (503); an already
// forgotten hash is accepted and gets this FORGET appended to its forgotten_by.
// Each aggregate key must have elements for content.address (retry 501), and
// every element is a target. A refusal (2, 502, 503) wins over missing targets,
// so a FORGET that can never pass is rejected at once; 501 details list every
// missing target as {"message": hash} or {"aggregate": key}.
func (p *Pipeline) checkForget(ctx context.Context, tx store.Tx, it *item, c *message.ForgetContent) (*plan, error) {
	m := &it.p.Message
	if len(c.Hashes) == 0 && len(c.Aggregates) == 0 {
		return nil, fail(message.CodeForgetNoTarget, "content.hashes", "nothing to forget")
	}
	var (
		targets []forgetTarget
		missing []map[string]string
		refusal error
		seen    = map[string]bool{}
	)
	consider := func(tm *store.Message) error {
		if seen[tm.ItemHash] {
			return nil
		}
		seen[tm.ItemHash] = true
		if refusal != nil {
			return nil
		}
		if tm.Type == message.TypeForget {
			refusal = fail(message.CodeForgetForget, "content.hashes", "%s is a FORGET, which cannot be forgotten", tm.ItemHash)
			return nil
		}
		if err := authorizeForget(ctx, tx, m, tm); err != nil {
			if _, ok := asFailure(err); !ok {
				return err
			}
			refusal = err
			return nil
		}
		if tm.Type == message.TypeStore {
			users, err := tx.VMsUsingRef(ctx, tm.ItemHash)
			if err != nil {
				return fmt.Errorf("vms using store: %w", err)
			}
			if len(users) > 0 {
				refusal = fail(message.CodeForgetNotAllowed, "content.hashes", "STORE %s is used by VM %s", tm.ItemHash, chain.Clip(users[0]))
				return nil
			}
		}
		targets = append(targets, forgetTarget{msg: tm})
		return nil
	}
	for _, h := range c.Hashes {
		if seen[h] {
			continue
		}
		tm, err := tx.GetMessage(ctx, h)
		if err == nil {
			if err := consider(tm); err != nil {
				return nil, err
			}
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("get forget target: %w", err)
		}
		sk, err := tx.GetForgotten(ctx, h)
		switch {
		case err == nil:
			seen[h] = true
			targets = append(targets, forgetTarget{forgotten: sk})
		case errors.Is(err, store.ErrNotFound):
			if ts, ok := p.tombstone(h); ok {
				seen[h] = true
				// The skeleton proves that its sender signed the target, not who
				// owned it: the sender is taken as the owner, so only the sender
				// or its delegates can forget it this way.
				tm := &store.Message{Message: message.Message{ItemHash: ts.ItemHash, Type: ts.Type, Chain: ts.Chain,
					Sender: ts.Sender, Channel: ts.Channel}, Owner: ts.Sender}
				if ts.Type == message.TypeForget {
					refusal = fail(message.CodeForgetForget, "content.hashes", "%s is a FORGET, which cannot be forgotten", h)
					continue
				}
				if err := authorizeForget(ctx, tx, m, tm); err != nil {
					if _, ok := asFailure(err); !ok {
						return nil, err
					}
					if refusal == nil {
						refusal = err
					}
					continue
				}
				targets = append(targets, forgetTarget{tombstone: ts})
				continue
			}
			missing = append(missing, map[string]string{"message": h})
		default:
			return nil, fmt.Errorf("get forgotten target: %w", err)
		}
	}
	for _, key := range c.Aggregates {
		els, err := tx.ListAggregateElements(ctx, c.Address, key)
		if err != nil {
			return nil, fmt.Errorf("list aggregate elements: %w", err)
		}
		if len(els) == 0 {
			missing = append(missing, map[string]string{"aggregate": key})
			continue
		}
		for _, el := range els {
			tm, err := tx.GetMessage(ctx, el.ItemHash)
			if err != nil {
				return nil, fmt.Errorf("get aggregate element message %s: %w", el.ItemHash, err)
			}
			if err := consider(tm); err != nil {
				return nil, err
			}
		}
	}
	if refusal != nil {
		return nil, refusal
	}
	if len(missing) > 0 {
		return nil, failDetails(message.CodeForgetTargetNotFound, missing, "%d targets not found", len(missing))
	}
	return &plan{apply: func(ctx context.Context, tx store.Tx, _ *store.Message) ([]events.Event, error) {
		f := &forgetter{tx: tx, hash: m.ItemHash, at: m.Time.Seconds(), now: p.now(), grace: p.cfg.GracePeriod,
			done: map[string]bool{}, aggregates: map[[2]string]bool{}, originals: map[string]bool{},
			tags: map[string]bool{}, files: map[string]string{}}
		return f.run(ctx, targets)
	}}, nil
}

// authorizeForget: the FORGET's sender must be allowed to create the target,
// evaluated with the target's owner, type, channel, post type and key and the
// FORGET's chain. An amend is judged as its creation was, against the original
// post's channel and type, while the original is still there.
func authorizeForget(ctx context.Context, tx store.Tx, fm *message.Message, tm *store.Message) error {
	a := act{Sender: fm.Sender, Owner: tm.Owner, Chain: fm.Chain, Channel: tm.Channel, Type: tm.Type,
		PostType: tm.ContentType, Key: tm.ContentKey}
	if tm.Type == message.TypePost && tm.ContentType == message.AmendType && tm.ContentRef != "" {
		orig, err := tx.GetMessage(ctx, tm.ContentRef)
		switch {
		case err == nil:
			a.Channel, a.PostType = orig.Channel, orig.ContentType
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("get amended message: %w", err)
		}
	}
	return authorize(ctx, tx, a)
}

// forgetter applies one FORGET: it erases the targets and what cascades from
// them, then recomputes what they leave behind.
type forgetter struct {
	tx   store.Tx
	hash string  // the FORGET
	at   float64 // its envelope time
	now  time.Time
	// grace is how long a file that lost its last pin is kept.
	grace time.Duration
	evs   []events.Event
	done  map[string]bool
	// Recomputed after the erasures.
	aggregates map[[2]string]bool // (owner, key)
	originals  map[string]bool    // posts whose amends were forgotten
	tags       map[string]bool
	files      map[string]string // file hash → owner, checked for a grace pin
}

func (f *forgetter) run(ctx context.Context, targets []forgetTarget) ([]events.Event, error) {
	for _, t := range targets {
		if t.tombstone != nil {
			if f.done[t.tombstone.ItemHash] {
				continue
			}
			f.done[t.tombstone.ItemHash] = true
			sk := *t.tombstone
			sk.Owner, sk.ForgottenBy, sk.ForgottenAt = sk.Sender, []string{f.hash}, f.at
			if err := f.tx.PutForgotten(ctx, &sk); err != nil {
				return nil, fmt.Errorf("put tombstone %s: %w", sk.ItemHash, err)
			}
			if err := f.tx.SetStatus(ctx, store.StatusRecord{ItemHash: sk.ItemHash, Status: message.StatusForgotten, ReceptionTime: f.now}); err != nil {
				return nil, fmt.Errorf("set status forgotten: %w", err)
			}
			f.evs = append(f.evs, events.Event{Kind: events.Forgotten, ItemHash: sk.ItemHash})
			continue
		}
		if t.forgotten != nil {
			if f.done[t.forgotten.ItemHash] {
				continue
			}
			f.done[t.forgotten.ItemHash] = true
			add := *t.forgotten
			add.ForgottenBy = []string{f.hash}
			if err := f.tx.PutForgotten(ctx, &add); err != nil {
				return nil, fmt.Errorf("append forgotten_by: %w", err)
			}
			continue
		}
		if err := f.forget(ctx, t.msg); err != nil {
			return nil, err
		}
	}
	if err := f.recompute(ctx); err != nil {
		return nil, err
	}
	return f.evs, nil
}

// forget erases one stored message and cascades: the amends of an original
// post, the updates of a VM.
func (f *forgetter) forget(ctx context.Context, tm *store.Message) error {
	if f.done[tm.ItemHash] {
		return nil
	}
	f.done[tm.ItemHash] = true
	tx := f.tx
	if err := tx.PutForgotten(ctx, skeleton(tm, f.hash, f.at)); err != nil {
		return fmt.Errorf("put forgotten %s: %w", tm.ItemHash, err)
	}
	if err := tx.DeleteMessage(ctx, tm.ItemHash); err != nil {
		return fmt.Errorf("delete message %s: %w", tm.ItemHash, err)
	}
	if err := tx.SetStatus(ctx, store.StatusRecord{ItemHash: tm.ItemHash, Status: message.StatusForgotten, ReceptionTime: tm.ReceptionTime}); err != nil {
		return fmt.Errorf("set status forgotten: %w", err)
	}
	f.evs = append(f.evs, events.Event{Kind: events.Forgotten, ItemHash: tm.ItemHash})
	if tm.ItemType != message.ItemInline {
		if err := tx.DeleteFilePins(ctx, tm.ItemHash, store.PinContent); err != nil {
			return fmt.Errorf("unpin content: %w", err)
		}
		f.files[tm.ItemHash] = tm.Owner
	}
	switch tm.Type {
	case message.TypePost:
		return f.forgetPost(ctx, tm)
	case message.TypeAggregate:
		if err := tx.DeleteAggregateElement(ctx, tm.ItemHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete aggregate element: %w", err)
		}
		f.aggregates[[2]string{tm.Owner, tm.ContentKey}] = true
	case message.TypeStore:
		if err := tx.DeleteFilePins(ctx, tm.ItemHash, store.PinMessage); err != nil {
			return fmt.Errorf("unpin file: %w", err)
		}
		f.tags[storeTag(tm.ItemHash, tm.Owner, tm.ContentRef)] = true
		if tm.ContentItemHash != "" {
			f.files[tm.ContentItemHash] = tm.Owner
		}
	case message.TypeProgram, message.TypeInstance:
		if err := tx.DeleteVM(ctx, tm.ItemHash); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("delete vm: %w", err)
		}
		updates, err := tx.VMUpdates(ctx, tm.ItemHash)
		if err != nil {
			return fmt.Errorf("vm updates: %w", err)
		}
		return f.cascade(ctx, updates)
	}
	return nil
}

func (f *forgetter) forgetPost(ctx context.Context, tm *store.Message) error {
	post, err := f.tx.GetPost(ctx, tm.ItemHash)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get post: %w", err)
	}
	if err := f.tx.DeletePost(ctx, tm.ItemHash); err != nil {
		return fmt.Errorf("delete post: %w", err)
	}
	if post.Amends != "" {
		f.originals[post.Amends] = true
		return nil
	}
	amends, err := f.tx.ListAmends(ctx, tm.ItemHash)
	if err != nil {
		return fmt.Errorf("list amends: %w", err)
	}
	hashes := make([]string, len(amends))
	for i, a := range amends {
		hashes[i] = a.ItemHash
	}
	return f.cascade(ctx, hashes)
}

// cascade forgets the stored messages among hashes.
func (f *forgetter) cascade(ctx context.Context, hashes []string) error {
	for _, h := range hashes {
		if f.done[h] {
			continue
		}
		tm, err := f.tx.GetMessage(ctx, h)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("get cascaded message %s: %w", h, err)
		}
		if err := f.forget(ctx, tm); err != nil {
			return err
		}
	}
	return nil
}

// recompute fixes what the erasures left: latest amends, aggregates, file tags,
// and grace-period pins for files that lost their last pin. It goes in sorted
// order so the writes do not depend on map order.
func (f *forgetter) recompute(ctx context.Context) error {
	tx := f.tx
	for _, orig := range sortedKeys(f.originals) {
		if f.done[orig] {
			continue
		}
		amends, err := tx.ListAmends(ctx, orig)
		if err != nil {
			return fmt.Errorf("list amends: %w", err)
		}
		latest := ""
		if a := latestAmend(amends); a != nil {
			latest = a.ItemHash
		}
		if err := tx.SetLatestAmend(ctx, orig, latest); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("set latest amend: %w", err)
		}
	}
	keys := make([][2]string, 0, len(f.aggregates))
	for k := range f.aggregates {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int {
		if a[0] != b[0] {
			return strings.Compare(a[0], b[0])
		}
		return strings.Compare(a[1], b[1])
	})
	for _, k := range keys {
		owner, key := k[0], k[1]
		els, err := tx.ListAggregateElements(ctx, owner, key)
		if err != nil {
			return fmt.Errorf("list aggregate elements: %w", err)
		}
		agg, err := recomputeAggregate(owner, key, els)
		if err != nil {
			return err
		}
		if agg == nil {
			if err := tx.DeleteAggregate(ctx, owner, key); err != nil && !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("delete aggregate: %w", err)
			}
			continue
		}
		if err := tx.PutAggregate(ctx, agg); err != nil {
			return fmt.Errorf("put aggregate: %w", err)
		}
	}
	for _, tag := range sortedKeys(f.tags) {
		if err := refreshTag(ctx, tx, tag); err != nil {
			return err
		}
	}
	files := make([]string, 0, len(f.files))
	for h := range f.files {
		files = append(files, h)
	}
	sort.Strings(files)
	for _, h := range files {
		n, err := tx.CountFilePins(ctx, h)
		if err != nil {
			return fmt.Errorf("count file pins: %w", err)
		}
		if n > 0 {
			continue
		}
		deleteBy := f.now.Add(f.grace)
		if err := tx.InsertFilePin(ctx, &store.FilePin{
			FileHash: h, Type: store.PinGracePeriod, Owner: f.files[h],
			Created: float64(f.now.UnixMicro()) / 1e6, DeleteBy: &deleteBy,
		}); err != nil {
			return fmt.Errorf("grace pin: %w", err)
		}
	}
	return nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
