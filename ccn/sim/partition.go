package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"

	"github.com/go-aleph/go-aleph/ccn/p2p/reconcile"
	"github.com/go-aleph/go-aleph/internal/loadgen"
)

// blackhole is the latency of a cut link: longer than any simulation.
const blackhole = 24 * time.Hour

// pollEvery spaces checks of the nodes' sets and digests: agreement across
// nodes has no event to await.
const pollEvery = 50 * time.Millisecond

// partition cuts every link between the halves, writes on each side, waits
// until each side agrees internally, heals the links and measures how long
// the whole network takes to converge. base is what every set held before.
func (s *sim) partition(ctx context.Context, sideA, sideB []loadgen.Post, base int) error {
	var halves [2][]int
	for i := range s.nodes {
		halves[s.g.side(i)] = append(halves[s.g.side(i)], i)
	}
	cross := s.g.cross()
	s.log.Info("partitioning", "cross_links", len(cross), "side_a", len(halves[0]), "side_b", len(halves[1]))
	if err := s.cut(cross); err != nil {
		return err
	}

	start := time.Now()
	var wg sync.WaitGroup
	var errs [2]error
	for side, posts := range [2][]loadgen.Post{sideA, sideB} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.write(ctx, posts, halves[side]); err != nil {
				errs[side] = err
				return
			}
			if err := s.waitAgree(ctx, halves[side], base+len(posts), true); err != nil {
				errs[side] = err
			}
		}()
	}
	wg.Wait()
	if cc := s.crossConns(); len(cc) > 0 {
		return fmt.Errorf("sim: partition: connections crossed it: %s", strings.Join(cc, ", "))
	}
	for side, err := range errs {
		if err != nil {
			return fmt.Errorf("sim: partition, side %c: %w", 'A'+side, err)
		}
	}
	s.res.PartitionSettle = time.Since(start)
	s.log.Info("each side agrees", "took", s.res.PartitionSettle)

	healed := time.Now()
	for _, e := range cross {
		if _, err := s.mn.LinkPeers(s.hosts[e.a].ID(), s.hosts[e.b].ID()); err != nil {
			return fmt.Errorf("sim: heal: link %d-%d: %w", e.a, e.b, err)
		}
	}
	if err := s.dial(ctx, cross); err != nil {
		return fmt.Errorf("sim: heal: %w", err)
	}
	all := make([]int, len(s.nodes))
	for i := range all {
		all[i] = i
	}
	want := base + len(sideA) + len(sideB)
	if err := s.waitAgree(ctx, all, want, false); err != nil {
		return fmt.Errorf("sim: after the heal: %w", err)
	}
	s.res.ConvergenceAfterHeal = time.Since(healed)
	s.res.FinalLen = want
	s.log.Info("converged after the heal", "took", s.res.ConvergenceAfterHeal, "messages", want)
	n := s.cfg.Nodes
	checked, err := s.sameDigest(ctx, slices.Compact([]int{0, n/2 - 1, n / 2, n - 1}))
	s.res.DigestsChecked = checked
	return err
}

// cut removes the links of the given edges and closes their connections, so
// that neither gossip nor anti-entropy nor a redial can cross them.
func (s *sim) cut(edges []edge) error {
	for _, e := range edges {
		a, b := s.hosts[e.a].ID(), s.hosts[e.b].ID()
		links := s.mn.LinksBetweenPeers(a, b)
		if len(links) == 0 {
			return fmt.Errorf("sim: partition: nodes %d and %d are not linked", e.a, e.b)
		}
		for _, l := range links {
			// The mock network lets a stream be opened on a connection that is
			// closing (gossipsub reopens its stream when the old one is reset
			// while the peer still looks connected); such a stream outlives the
			// connection. Making the link a black hole first keeps it from
			// carrying anything across.
			l.SetOptions(mocknet.LinkOptions{Latency: blackhole})
			if err := s.mn.Unlink(l); err != nil {
				return fmt.Errorf("sim: partition: unlink %d-%d: %w", e.a, e.b, err)
			}
		}
		// A dial already past the link check may still land: close again
		// until none is left.
		for try := 0; s.hosts[e.a].Network().Connectedness(b) == network.Connected ||
			s.hosts[e.b].Network().Connectedness(a) == network.Connected; try++ {
			if try == 10 {
				return fmt.Errorf("sim: partition: nodes %d and %d stay connected", e.a, e.b)
			}
			s.hosts[e.a].Network().ClosePeer(b)
			s.hosts[e.b].Network().ClosePeer(a)
		}
	}
	return nil
}

// crossConns lists the connections between the halves (none should exist
// during the partition).
func (s *sim) crossConns() []string {
	side := map[string]int{}
	for i, h := range s.hosts {
		side[string(h.ID())] = s.g.side(i)
	}
	var out []string
	for i, h := range s.hosts {
		for _, p := range h.Network().Peers() {
			if j, ok := side[string(p)]; ok && j != s.g.side(i) {
				out = append(out, fmt.Sprintf("%d-%s", i, p.ShortString()))
			}
		}
	}
	return out
}

// write posts the messages round-robin to the given nodes, 16 at a time.
func (s *sim) write(ctx context.Context, posts []loadgen.Post, nodes []int) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	sem := make(chan struct{}, 16)
	errs := make([]error, len(posts))
	var wg sync.WaitGroup
	for i, p := range posts {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return fmt.Errorf("write message %d: %w", i, ctx.Err())
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			target := nodes[i%len(nodes)]
			if err := s.post(ctx, s.nodes[target].URL(), p.Body); err != nil {
				errs[i] = fmt.Errorf("write message %d to node %d: %w", i, target, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// waitAgree waits until every given node's anti-entropy set has want items
// and the same fingerprint. A set larger than want is an error at once: a
// message crossed the partition, or was counted twice; so is, while
// partitioned, a connection between the halves.
func (s *sim) waitAgree(ctx context.Context, nodes []int, want int, partitioned bool) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	start := time.Now()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		if cc := s.crossConns(); partitioned && len(cc) > 0 {
			return fmt.Errorf("connections crossed the partition: %s", strings.Join(cc, ", "))
		}
		lo, hi := -1, -1
		fps := map[reconcile.Fingerprint]int{}
		for _, i := range nodes {
			ae := s.nodes[i].AntiEntropy()
			n := ae.Len()
			if n > want {
				return fmt.Errorf("node %d holds %d messages, more than the %d written (%s)", i, n, want, s.channelCounts(ctx, i))
			}
			if lo < 0 || n < lo {
				lo = n
			}
			hi = max(hi, n)
			fps[ae.Fingerprint()]++
		}
		if lo == want && len(fps) == 1 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d nodes did not agree within %v: set sizes %d to %d (want %d), %d distinct fingerprints: %w",
				len(nodes), time.Since(start).Round(time.Millisecond), lo, hi, want, len(fps), ctx.Err())
		case <-tick.C:
		}
	}
}

// sameDigest waits until the given nodes report the same state digest and
// returns how many it compared.
func (s *sim) sameDigest(ctx context.Context, nodes []int) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		digests := make([]string, len(nodes))
		same := true
		for k, i := range nodes {
			d, err := s.nodes[i].Store().StateDigest(ctx)
			if err != nil {
				return 0, fmt.Errorf("sim: state digest of node %d: %w", i, err)
			}
			digests[k] = d.Digest
			same = same && d.Digest == digests[0]
		}
		if same {
			return len(nodes), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("sim: nodes %v report different state digests %v: %w", nodes, digests, ctx.Err())
		case <-tick.C:
		}
	}
}

// channelCounts says how many messages of each simulation channel node i
// stored, to explain a set larger than expected.
func (s *sim) channelCounts(ctx context.Context, i int) string {
	var parts []string
	for _, ch := range []string{chanWarmup, chanPropagation, chanSideA, chanSideB} {
		n, err := s.countChannel(ctx, s.nodes[i].URL(), ch)
		if err != nil {
			parts = append(parts, fmt.Sprintf("%s: %v", ch, err))
			continue
		}
		parts = append(parts, fmt.Sprintf("%s: %d", ch, n))
	}
	return strings.Join(parts, ", ")
}

func (s *sim) countChannel(ctx context.Context, base, channel string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/v0/messages.json?pagination=1&channels="+url.QueryEscape(channel), nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	var page struct {
		Total int64 `json:"pagination_total"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&page); err != nil {
		return 0, fmt.Errorf("decode messages page: %w", err)
	}
	return page.Total, nil
}
