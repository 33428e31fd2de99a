package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/chain"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// amendNewer reports whether amend (t, h) beats amend (ct, ch) as the latest:
// the greater content.time wins, and on a tie the smaller item hash, so the
// latest amend does not depend on the order amends arrive in.
func amendNewer(t float64, h string, ct float64, ch string) bool {
	if t != ct {
		return t > ct
	}
	return h < ch
}

// checkPost: an original POST needs the sender to be allowed to post for its
// owner. An amend needs a ref (100) naming a known post (retry 101) that is an
// original (102) with the same owner (2); its permission is evaluated against
// the original's owner and attributes.
//
// An amend whose original was forgotten before it came is forgotten on
// arrival, with the original's forgotten_by, as it would have been had it come
// first: the outcome does not depend on arrival order.
func (p *Pipeline) checkPost(ctx context.Context, tx store.Tx, it *item, c *message.PostContent) (*plan, error) {
	m := &it.p.Message
	inner := c.Content
	if inner == nil {
		inner = json.RawMessage("null")
	}
	post := &store.Post{
		ItemHash: m.ItemHash, Owner: c.Address, Type: c.Type, Channel: m.Channel,
		Content: inner, CreationTime: c.Time, Tags: tagsIn(c.Content),
	}
	if c.Ref != nil {
		post.Ref = c.Ref.Hash
	}
	if c.Type != message.AmendType {
		a := actOf(m, c.Address)
		a.PostType = c.Type
		if err := authorize(ctx, tx, a); err != nil {
			return nil, err
		}
		return &plan{apply: func(ctx context.Context, tx store.Tx, _ *store.Message) ([]events.Event, error) {
			if err := tx.InsertPost(ctx, post); err != nil {
				return nil, fmt.Errorf("insert post: %w", err)
			}
			return nil, nil
		}}, nil
	}

	if c.Ref == nil {
		return nil, fail(message.CodePostAmendNoTarget, "content.ref", "an amend needs the hash of the post it amends")
	}
	ref := c.Ref.Hash
	orig, err := tx.GetPost(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		return p.amendOfMissing(ctx, tx, it, c, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("get amended post: %w", err)
	}
	if orig.Amends != "" || orig.Type == message.AmendType {
		return nil, fail(message.CodePostAmendAmend, "content.ref", "%s is an amend; amend the original post instead", chain.Clip(ref))
	}
	if !strings.EqualFold(c.Address, orig.Owner) {
		return nil, fail(message.CodePermissionDenied, "content.address", "the amend's owner %s is not the post's owner %s", chain.Clip(c.Address), chain.Clip(orig.Owner))
	}
	origMsg, err := tx.GetMessage(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("get amended message: %w", err)
	}
	a := actOf(&origMsg.Message, orig.Owner)
	a.Sender, a.PostType = m.Sender, orig.Type
	if err := authorize(ctx, tx, a); err != nil {
		return nil, err
	}
	post.Amends = ref
	return &plan{apply: func(ctx context.Context, tx store.Tx, _ *store.Message) ([]events.Event, error) {
		if err := tx.InsertPost(ctx, post); err != nil {
			return nil, fmt.Errorf("insert amend: %w", err)
		}
		newer := orig.LatestAmend == ""
		if !newer {
			cur, err := tx.GetPost(ctx, orig.LatestAmend)
			switch {
			case errors.Is(err, store.ErrNotFound):
				newer = true
			case err != nil:
				return nil, fmt.Errorf("get latest amend: %w", err)
			default:
				newer = amendNewer(post.CreationTime, post.ItemHash, cur.CreationTime, cur.ItemHash)
			}
		}
		if newer {
			if err := tx.SetLatestAmend(ctx, ref, post.ItemHash); err != nil {
				return nil, fmt.Errorf("set latest amend: %w", err)
			}
		}
		return nil, nil
	}}, nil
}

// amendOfMissing handles an amend whose target has no post row: forgotten on
// arrival when the target is a forgotten POST, retried (101) otherwise.
func (p *Pipeline) amendOfMissing(ctx context.Context, tx store.Tx, it *item, c *message.PostContent, ref string) (*plan, error) {
	m := &it.p.Message
	sk, err := tx.GetForgotten(ctx, ref)
	if errors.Is(err, store.ErrNotFound) || err == nil && sk.Type != message.TypePost {
		return nil, fail(message.CodePostAmendTargetMissing, "content.ref", "post %s not found", chain.Clip(ref))
	}
	if err != nil {
		return nil, fmt.Errorf("get forgotten post: %w", err)
	}
	if !strings.EqualFold(c.Address, sk.Owner) {
		return nil, fail(message.CodePermissionDenied, "content.address", "the amend's owner %s is not the post's owner %s", chain.Clip(c.Address), chain.Clip(sk.Owner))
	}
	// The skeleton keeps no post type: an entry restricted to post types cannot
	// be shown to match, so it does not.
	a := act{Sender: m.Sender, Owner: sk.Owner, Chain: sk.Chain, Channel: sk.Channel, Type: message.TypePost}
	if err := authorize(ctx, tx, a); err != nil {
		return nil, err
	}
	return &plan{forget: forgottenOnArrival(it, sk)}, nil
}

// forgottenOnArrival is the skeleton of a message erased with its target, sk.
func forgottenOnArrival(it *item, sk *store.Forgotten) *store.Forgotten {
	sm := storedMessage(&it.p.Message, it.raw, it.content, it.p.ReceptionTime)
	f := skeleton(sm, "", sk.ForgottenAt)
	f.ForgottenBy = slices.Clone(sk.ForgottenBy)
	return f
}

// latestAmend picks the latest of amends (nil: none).
func latestAmend(amends []*store.Post) *store.Post {
	var best *store.Post
	for _, a := range amends {
		if best == nil || amendNewer(a.CreationTime, a.ItemHash, best.CreationTime, best.ItemHash) {
			best = a
		}
	}
	return best
}
