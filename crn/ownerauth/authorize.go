package ownerauth

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/message"
)

// Cache bounds of an Authorizer.
const (
	// CacheTTL is how long an owner's delegations are reused, as aleph-vm.
	CacheTTL = 120 * time.Second
	// MaxCacheEntries bounds the owners remembered at once.
	MaxCacheEntries = 1024
	// fetchTimeout bounds one read of a security aggregate.
	fetchTimeout = 10 * time.Second
)

// Delegations reads the authorizations an owner granted in its security
// aggregate; *client.Client implements it.
type Delegations interface {
	Authorizations(ctx context.Context, owner string) ([]client.Authorization, error)
}

// Authorizer decides whether an authenticated address may control a VM
// (crn-compute.md §4.2 step 8). It is safe for concurrent use.
type Authorizer struct {
	src Delegations
	now func() time.Time

	mu    sync.Mutex
	cache map[string]cached // by lowercase owner
}

type cached struct {
	list    []client.Authorization
	expires time.Time
}

// NewAuthorizer returns an Authorizer reading delegations from src (a client of
// the node's CCN).
func NewAuthorizer(src Delegations) *Authorizer {
	return &Authorizer{src: src, now: time.Now, cache: map[string]cached{}}
}

// Authorized reports whether sender may control the VMs of owner: sender is
// owner (any case), or owner's security aggregate has an authorization for
// sender whose types are empty or include PROGRAM or INSTANCE. An error means
// the delegations could not be read; it is not cached.
func (a *Authorizer) Authorized(ctx context.Context, owner, sender string) (bool, error) {
	if owner == "" || sender == "" {
		return false, nil
	}
	if strings.EqualFold(owner, sender) {
		return true, nil
	}
	list, err := a.delegations(ctx, owner)
	if err != nil {
		return false, err
	}
	for _, d := range list {
		if strings.EqualFold(d.Address, sender) && coversVMs(d.Types) {
			return true, nil
		}
	}
	return false, nil
}

// coversVMs: no types means every type; upstream checks INSTANCE, and this node
// runs programs too.
func coversVMs(types []message.Type) bool {
	if len(types) == 0 {
		return true
	}
	for _, t := range types {
		if t == message.TypeProgram || t == message.TypeInstance {
			return true
		}
	}
	return false
}

func (a *Authorizer) delegations(ctx context.Context, owner string) ([]client.Authorization, error) {
	k := strings.ToLower(owner)
	now := a.now()
	a.mu.Lock()
	c, ok := a.cache[k]
	a.mu.Unlock()
	if ok && now.Before(c.expires) {
		return c.list, nil
	}
	if a.src == nil {
		return nil, fmt.Errorf("delegations of %s: no CCN to read them from", clip(owner))
	}
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	list, err := a.src.Authorizations(ctx, owner)
	if err != nil {
		return nil, fmt.Errorf("delegations of %s: %w", clip(owner), err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= MaxCacheEntries {
		a.evict(now)
	}
	a.cache[k] = cached{list: list, expires: now.Add(CacheTTL)}
	return list, nil
}

// evict drops expired entries, then, if still full, the one expiring first.
// Called with mu held.
func (a *Authorizer) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, c := range a.cache {
		if !now.Before(c.expires) {
			delete(a.cache, k)
			continue
		}
		if oldest == "" || c.expires.Before(oldestAt) {
			oldest, oldestAt = k, c.expires
		}
	}
	if len(a.cache) >= MaxCacheEntries {
		delete(a.cache, oldest)
	}
}
