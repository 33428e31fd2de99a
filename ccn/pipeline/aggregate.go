package pipeline

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// checkAggregate: the sender must be allowed to write the key for the owner
// (the security key only by the owner or an explicit delegate). APPLY adds the
// element and updates the compacted aggregate.
func (p *Pipeline) checkAggregate(ctx context.Context, tx store.Tx, it *item, c *message.AggregateContent) (*plan, error) {
	m := &it.p.Message
	key := AggregateKeyString(c.Key)
	a := actOf(m, c.Address)
	a.Key = key
	if err := authorize(ctx, tx, a); err != nil {
		return nil, err
	}
	el := &store.AggregateElement{ItemHash: m.ItemHash, Key: key, Owner: c.Address, Content: c.Content, CreationTime: c.Time}
	return &plan{apply: func(ctx context.Context, tx store.Tx, _ *store.Message) ([]events.Event, error) {
		if err := tx.InsertAggregateElement(ctx, el); err != nil {
			return nil, fmt.Errorf("insert aggregate element: %w", err)
		}
		agg, err := tx.GetAggregate(ctx, el.Owner, el.Key)
		switch {
		case errors.Is(err, store.ErrNotFound):
			agg = nil
		case err != nil:
			return nil, fmt.Errorf("get aggregate: %w", err)
		}
		next, err := addElement(agg, el, func() ([]*store.AggregateElement, error) {
			return tx.ListAggregateElements(ctx, el.Owner, el.Key)
		})
		if err != nil {
			return nil, fmt.Errorf("merge aggregate: %w", err)
		}
		if err := tx.PutAggregate(ctx, next); err != nil {
			return nil, fmt.Errorf("put aggregate: %w", err)
		}
		return nil, nil
	}}, nil
}
