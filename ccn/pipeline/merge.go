package pipeline

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sort"

	"github.com/go-aleph/go-aleph/store"
)

// maxCompactElements is the element count above which an aggregate that needs a
// full recompute is marked dirty instead, and recomputed when it is read.
const maxCompactElements = 1000

// shallowMerge merges JSON objects left to right: a later object's top-level
// keys replace earlier ones whole (nested objects are not merged, nothing is
// deleted). The result has its keys sorted and its values compacted, so that the
// same elements give the same bytes whichever path (append, prepend or full
// recompute) computed them.
func shallowMerge(objects ...[]byte) ([]byte, error) {
	merged := map[string]json.RawMessage{}
	for i, o := range objects {
		if len(o) == 0 {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(o, &m); err != nil {
			return nil, fmt.Errorf("merge object %d: %w", i, err)
		}
		if m == nil { // the JSON null
			return nil, fmt.Errorf("merge object %d: not an object", i)
		}
		for k, v := range m {
			merged[k] = v
		}
	}
	return encodeObject(merged)
}

// encodeObject writes m with sorted keys, compact values and no HTML escaping.
func encodeObject(m map[string]json.RawMessage) ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		if err := enc.Encode(k); err != nil {
			return nil, fmt.Errorf("encode key: %w", err)
		}
		b.Truncate(b.Len() - 1) // Encode's newline
		b.WriteByte(':')
		if err := json.Compact(&b, m[k]); err != nil {
			return nil, fmt.Errorf("encode value of %q: %w", k, err)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// elementBefore orders aggregate elements by (content.time, item hash).
func elementBefore(aTime float64, aHash string, bTime float64, bHash string) bool {
	if aTime != bTime {
		return aTime < bTime
	}
	return aHash < bHash
}

// sortElements sorts elements in merge order, whatever order the store gave.
func sortElements(els []*store.AggregateElement) {
	slices.SortFunc(els, func(a, b *store.AggregateElement) int {
		switch {
		case elementBefore(a.CreationTime, a.ItemHash, b.CreationTime, b.ItemHash):
			return -1
		case elementBefore(b.CreationTime, b.ItemHash, a.CreationTime, a.ItemHash):
			return 1
		}
		return 0
	})
}

// compactAggregate computes the aggregate of (owner, key) from all its elements
// (at least one).
func compactAggregate(owner, key string, els []*store.AggregateElement) (*store.Aggregate, error) {
	if len(els) == 0 {
		return nil, fmt.Errorf("compact aggregate %s/%s: no elements", owner, key)
	}
	els = slices.Clone(els)
	sortElements(els)
	contents := make([][]byte, len(els))
	for i, e := range els {
		contents[i] = e.Content
	}
	content, err := shallowMerge(contents...)
	if err != nil {
		return nil, fmt.Errorf("compact aggregate %s/%s: %w", owner, key, err)
	}
	first, last := els[0], els[len(els)-1]
	return &store.Aggregate{
		Key: key, Owner: owner, Content: content,
		CreationTime: first.CreationTime, LastUpdateTime: last.CreationTime,
		OriginalHash: first.ItemHash, LastRevisionHash: last.ItemHash,
	}, nil
}

// addElement returns the aggregate after adding e to agg (nil when the aggregate
// does not exist yet). It takes the fast paths when e is the newest element
// (append) or the oldest (prepend: a shallow merge is associative); otherwise it
// needs every element, which list returns (e included), and marks the aggregate
// dirty rather than merging more than maxCompactElements.
func addElement(agg *store.Aggregate, e *store.AggregateElement, list func() ([]*store.AggregateElement, error)) (*store.Aggregate, error) {
	if agg == nil {
		return compactAggregate(e.Owner, e.Key, []*store.AggregateElement{e})
	}
	next := *agg
	newest := elementBefore(agg.LastUpdateTime, agg.LastRevisionHash, e.CreationTime, e.ItemHash)
	oldest := elementBefore(e.CreationTime, e.ItemHash, agg.CreationTime, agg.OriginalHash)
	switch {
	case agg.Dirty:
		// The content is stale anyway; keep the bounds right for the reader.
	case newest:
		content, err := shallowMerge(agg.Content, e.Content)
		if err != nil {
			return nil, err
		}
		next.Content = content
	case oldest:
		content, err := shallowMerge(e.Content, agg.Content)
		if err != nil {
			return nil, err
		}
		next.Content = content
	default:
		els, err := list()
		if err != nil {
			return nil, err
		}
		if len(els) > maxCompactElements {
			next.Dirty = true
			break
		}
		return compactAggregate(agg.Owner, agg.Key, els)
	}
	if newest {
		next.LastUpdateTime, next.LastRevisionHash = e.CreationTime, e.ItemHash
	}
	if oldest {
		next.CreationTime, next.OriginalHash = e.CreationTime, e.ItemHash
	}
	return &next, nil
}

// recomputeAggregate rebuilds an aggregate from its remaining elements (after a
// FORGET): nil when none is left, dirty when there are too many to merge now.
func recomputeAggregate(owner, key string, els []*store.AggregateElement) (*store.Aggregate, error) {
	if len(els) == 0 {
		return nil, nil
	}
	if len(els) > maxCompactElements {
		els = slices.Clone(els)
		sortElements(els)
		first, last := els[0], els[len(els)-1]
		return &store.Aggregate{
			Key: key, Owner: owner, Content: json.RawMessage(`{}`), Dirty: true,
			CreationTime: first.CreationTime, LastUpdateTime: last.CreationTime,
			OriginalHash: first.ItemHash, LastRevisionHash: last.ItemHash,
		}, nil
	}
	return compactAggregate(owner, key, els)
}
