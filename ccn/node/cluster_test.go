package node_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/node"
	"github.com/go-aleph/go-aleph/ccn/nodetest"
	"github.com/go-aleph/go-aleph/ccn/p2p"
	"github.com/go-aleph/go-aleph/chain/evm"
	"github.com/go-aleph/go-aleph/client"
	"github.com/go-aleph/go-aleph/internal/loadgen"
	"github.com/go-aleph/go-aleph/message"
	"github.com/go-aleph/go-aleph/store"
)

// These tests run real nodes in process: SQLite, HTTP and libp2p on random
// 127.0.0.1 ports.

func clusterCtx(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// bodies signs n POSTs on channel, ready for POST /api/v0/messages.
func bodies(t *testing.T, n int, channel string) []loadgen.Post {
	t.Helper()
	posts, err := loadgen.Posts(n, 10, channel, false)
	if err != nil {
		t.Fatal(err)
	}
	return posts
}

// postAll submits the posts to a node's API, 16 at a time.
func postAll(t *testing.T, ctx context.Context, base string, posts []loadgen.Post) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	var wg sync.WaitGroup
	errc := make(chan error, 16)
	next := make(chan []byte)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range next {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v0/messages", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := hc.Do(req)
				if err != nil {
					errc <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
					errc <- fmt.Errorf("post: HTTP %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	for _, p := range posts {
		select {
		case next <- p.Body:
		case err := <-errc:
			close(next)
			wg.Wait()
			t.Fatal(err)
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
}

// waitProcessed waits until every node has processed hash.
func waitProcessed(t *testing.T, ctx context.Context, nodes []*node.Node, hash string) {
	t.Helper()
	for i, n := range nodes {
		for {
			st, err := n.Store().GetStatus(ctx, hash)
			if err == nil && st.Status == message.StatusProcessed {
				break
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("node %d: status of %s: %v", i, hash, err)
			}
			if !pause(ctx) {
				t.Fatalf("node %d never processed %s (last status %q, err %v)", i, hash, st.Status, err)
			}
		}
	}
}

// pause waits a poll interval; false once ctx is done. The digest and status
// have no event to await across nodes, hence polling.
func pause(ctx context.Context) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(50 * time.Millisecond):
		return true
	}
}

// waitConverged waits until every node reports the same state digest with
// want messages, and returns how long that took.
func waitConverged(t *testing.T, ctx context.Context, nodes []*node.Node, want int64) time.Duration {
	t.Helper()
	start := time.Now()
	var last []string
	for {
		last = last[:0]
		same := true
		for _, n := range nodes {
			d, err := n.Store().StateDigest(ctx)
			if err != nil {
				if ctx.Err() != nil {
					break
				}
				t.Fatalf("state digest: %v", err)
			}
			last = append(last, fmt.Sprintf("%s(%d)", d.Digest[:12], d.Sections["statuses"].Count))
			if d.Sections["statuses"].Count != want || (len(last) > 1 && last[len(last)-1] != last[0]) {
				same = false
			}
		}
		if same && len(last) == len(nodes) {
			return time.Since(start)
		}
		if !pause(ctx) {
			t.Fatalf("nodes did not converge on %d messages: digests %v", want, last)
		}
	}
}

func TestClusterGossip(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3)
	ctx := clusterCtx(t, 60*time.Second)
	acct, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		c := client.New(n.URL(), client.WithSigner(acct))
		w, err := c.CreatePost(ctx, "note", map[string]any{"from": i}, "", client.WriteOptions{Channel: "GOSSIP"})
		if err != nil {
			t.Fatal(err)
		}
		waitProcessed(t, ctx, nodes, w.ItemHash)
	}
	// The ALIVE records announced every node's API to the others.
	for i, n := range nodes {
		for {
			if len(n.P2P().HTTPPeers()) == len(nodes)-1 {
				break
			}
			if !pause(ctx) {
				t.Fatalf("node %d knows HTTP peers %v", i, n.P2P().HTTPPeers())
			}
		}
	}
	waitConverged(t, ctx, nodes, 3)
}

func TestClusterFiles(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3)
	ctx := clusterCtx(t, 60*time.Second)
	acct, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	up := client.New(nodes[0].URL(), client.WithSigner(acct))
	for _, engine := range []message.ItemType{message.ItemStorage, message.ItemIPFS} {
		t.Run(string(engine), func(t *testing.T) {
			data := bytes.Repeat([]byte("go-aleph file "+string(engine)+" "), 40_000) // ~700 KB: several IPFS blocks
			res, err := up.UploadFile(ctx, bytes.NewReader(data), client.UploadOptions{Engine: engine, WriteOptions: client.WriteOptions{Sync: true}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != message.StatusProcessed {
				t.Fatalf("upload: status %s", res.Status)
			}
			waitProcessed(t, ctx, nodes, res.ItemHash)
			for i, n := range nodes[1:] {
				var got bytes.Buffer
				if _, err := client.New(n.URL()).DownloadFile(ctx, res.FileHash, &got, 0); err != nil {
					t.Fatalf("node %d: download: %v", i+1, err)
				}
				if !bytes.Equal(got.Bytes(), data) {
					t.Fatalf("node %d served %d bytes, want the %d uploaded", i+1, got.Len(), len(data))
				}
			}
		})
	}
}

func TestClusterPartitionHeals(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3)
	ctx := clusterCtx(t, 120*time.Second)
	a, b, c := nodes[0], nodes[1], nodes[2]
	// Cut c off from both others, in both directions.
	for _, n := range []*node.Node{a, b} {
		n.P2P().Block(c.P2P().ID())
		c.P2P().Block(n.P2P().ID())
	}
	sideA, sideC := bodies(t, 1000, "SIDE-A"), bodies(t, 1000, "SIDE-C")
	postAll(t, ctx, a.URL(), sideA)
	postAll(t, ctx, c.URL(), sideC)
	waitConverged(t, ctx, nodes[:2], 1000)
	waitConverged(t, ctx, nodes[2:], 1000)
	if st, err := c.Store().GetStatus(ctx, sideA[0].Message.ItemHash); err == nil {
		t.Fatalf("the partition leaked: c has %s (%s)", sideA[0].Message.ItemHash, st.Status)
	}

	// Heal: the reconnect loops dial again, the sessions on connect repair.
	healed := time.Now()
	for _, n := range []*node.Node{a, b} {
		n.P2P().Unblock(c.P2P().ID())
		c.P2P().Unblock(n.P2P().ID())
	}
	nodetest.Connect(t, c, a)
	nodetest.Connect(t, c, b)
	took := waitConverged(t, ctx, nodes, 2000)
	t.Logf("converged %v after healing (from the reconnect: %v)", time.Since(healed), took)
}

func TestClusterLateJoin(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 2_000
	}
	nodes := nodetest.StartCluster(t, 2)
	ctx := clusterCtx(t, 180*time.Second)
	postAll(t, ctx, nodes[0].URL(), bodies(t, n, "LATE"))
	waitConverged(t, ctx, nodes, int64(n))

	late := nodetest.StartNode(t)
	start := time.Now()
	nodetest.Connect(t, late, nodes[1])
	waitConverged(t, ctx, append(nodes, late), int64(n))
	t.Logf("a late node synced %d messages in %v", n, time.Since(start))
}

// attacker is a bare gossipsub peer, for what honest nodes never send.
type attacker struct {
	topic *pubsub.Topic
	h     host.Host
}

func newAttacker(t *testing.T, ctx context.Context, target *node.Node) *attacker {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageIdFn(p2p.MessageID), pubsub.WithPeerOutboundQueueSize(4096))
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join("ALEPH-TEST")
	if err != nil {
		t.Fatal(err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sub.Cancel)
	th := target.P2P().Host()
	before := target.P2P().TopicPeers()
	if err := h.Connect(ctx, peer.AddrInfo{ID: th.ID(), Addrs: th.Addrs()}); err != nil {
		t.Fatal(err)
	}
	// Both directions: the target announced its subscription to us, and
	// ours reached it, which it learns over our outbound stream, the one our
	// messages travel on.
	for len(topic.ListPeers()) == 0 || target.P2P().TopicPeers() <= before || !hasOutboundMeshsub(h, th.ID()) {
		if !pause(ctx) {
			t.Fatal("the target and the attacker never saw each other on the topic")
		}
	}
	return &attacker{topic: topic, h: h}
}

// hasOutboundMeshsub reports whether h has its gossip stream open to p.
func hasOutboundMeshsub(h host.Host, p peer.ID) bool {
	for _, c := range h.Network().ConnsToPeer(p) {
		for _, st := range c.GetStreams() {
			if strings.HasPrefix(string(st.Protocol()), "/meshsub/") && st.Stat().Direction == network.DirOutbound {
				return true
			}
		}
	}
	return false
}

func (a *attacker) publish(t *testing.T, ctx context.Context, data []byte) {
	t.Helper()
	if err := a.topic.Publish(ctx, bytes.Clone(data)); err != nil {
		t.Fatal(err)
	}
}

func waitMetric(t *testing.T, ctx context.Context, n *node.Node, result string, min float64) float64 {
	t.Helper()
	for {
		v := n.P2P().Metrics().Received(result)
		if v >= min {
			return v
		}
		if !pause(ctx) {
			m := n.P2P().Metrics()
			for _, r := range []string{"duplicate", "invalid signature", "validation throttled", "validation queue full", "blacklisted peer", "missing signature", "undeliverable"} {
				if v := m.Dropped("ALEPH-TEST", r); v > 0 {
					t.Logf("dropped by gossipsub: %s %v", r, v)
				}
			}
			t.Fatalf("metric aleph_p2p_gossip_messages_total{result=%q} = %v, want ≥ %v (accepted %v, malformed %v, rejected %v, rate_limited %v, error %v)",
				result, v, min, m.Received("accepted"), m.Received("malformed"), m.Received("rejected"), m.Received("rate_limited"), m.Received("error"))
		}
	}
}

// forge returns m with its signature altered at position i (still hex), so
// that it no longer verifies.
func forge(t *testing.T, m message.Message, i int) []byte {
	t.Helper()
	sig := []byte(m.Signature)
	j := 4 + i%60
	if sig[j] == '0' {
		sig[j] = '1'
	} else {
		sig[j] = '0'
	}
	m.Signature = string(sig)
	raw, err := json.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// publishUntil publishes next(i) for i = 0, 1, … until n's counter for result
// reaches min. Publishing again covers the attacker's gossip stream being
// replaced under it (a bare test peer, not the node, loses those messages).
func publishUntil(t *testing.T, ctx context.Context, att *attacker, n *node.Node, result string, min float64, next func(i int) []byte) {
	t.Helper()
	for i := 0; ; i++ {
		att.publish(t, ctx, next(i))
		deadline := time.Now().Add(time.Second)
		for time.Now().Before(deadline) {
			if n.P2P().Metrics().Received(result) >= min {
				return
			}
			if !pause(ctx) {
				waitMetric(t, ctx, n, result, min) // fails with the counters
			}
		}
	}
}

func TestGossipRejectsForgedAndMalformed(t *testing.T) {
	nodes := nodetest.StartCluster(t, 2)
	ctx := clusterCtx(t, 30*time.Second)
	att := newAttacker(t, ctx, nodes[0])
	posts := bodies(t, 2, "FORGE")

	publishUntil(t, ctx, att, nodes[0], "rejected", 1, func(i int) []byte { return forge(t, *posts[0].Message, i) })
	publishUntil(t, ctx, att, nodes[0], "malformed", 1, func(i int) []byte { return fmt.Appendf(nil, "not a message %d", i) })
	publishUntil(t, ctx, att, nodes[0], "malformed", 2, func(i int) []byte { return fmt.Appendf(nil, `{"item_hash":"nope-%d"}`, i) })
	hash := posts[0].Message.ItemHash
	if st, err := nodes[0].Store().GetStatus(ctx, hash); err != nil || st.Status != message.StatusRejected {
		t.Fatalf("forged message: status %q, %v; want rejected", st.Status, err)
	}

	// The attacker's score has dropped below gossipsub's thresholds by now;
	// a valid message through node 0's API still reaches node 1, and the
	// forged one was not forwarded to it.
	if _, err := client.New(nodes[0].URL()).SubmitMessage(ctx, posts[1].Message, false); err != nil {
		t.Fatal(err)
	}
	waitProcessed(t, ctx, nodes, posts[1].Message.ItemHash)
	if _, err := nodes[1].Store().GetStatus(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the forged message reached node 1: %v", err)
	}
	if v := nodes[1].P2P().Metrics().Received("rejected"); v != 0 {
		t.Fatalf("node 1 saw %v rejected messages: node 0 forwarded the forgery", v)
	}
}

func TestGossipFloodIsRateLimited(t *testing.T) {
	nodes := nodetest.StartCluster(t, 1, nodetest.WithConfig(func(c *config.Config) {
		c.P2P.PeerRate, c.P2P.PeerBurst = 20, 50
	}))
	ctx := clusterCtx(t, 60*time.Second)
	att := newAttacker(t, ctx, nodes[0])
	posts := bodies(t, 2000, "FLOOD")
	// Bursts of 500 (more than the bucket holds), until the node reports
	// dropping some; publishing again covers the bare test peer's gossip stream
	// being replaced under it, which loses what it carried.
	sent := 0
	for sent < len(posts) && nodes[0].P2P().Metrics().Received("rate_limited") == 0 {
		for _, p := range posts[sent : sent+500] {
			raw, _ := json.Marshal(p.Message)
			att.publish(t, ctx, raw)
		}
		sent += 500
		for i := 0; i < 40 && nodes[0].P2P().Metrics().Received("rate_limited") == 0; i++ {
			if !pause(ctx) {
				break
			}
		}
	}
	limited := waitMetric(t, ctx, nodes[0], "rate_limited", 1)
	accepted := nodes[0].P2P().Metrics().Received("accepted")
	t.Logf("flood of %d: %v accepted, %v rate-limited", sent, accepted, limited)
	if accepted >= float64(sent) {
		t.Fatalf("all %d flooded messages were admitted", sent)
	}
	// The node still serves its API.
	if _, err := client.New(nodes[0].URL()).Version(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestClusterForgetReachesANodeThatNeverHadTheTarget(t *testing.T) {
	nodes := nodetest.StartCluster(t, 3)
	ctx := clusterCtx(t, 60*time.Second)
	a, c := nodes[0], nodes[2]
	for _, n := range nodes[:2] {
		n.P2P().Block(c.P2P().ID())
		c.P2P().Block(n.P2P().ID())
	}
	acct, err := evm.NewAccount(nil)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(a.URL(), client.WithSigner(acct))
	sync := client.WriteOptions{Channel: "FORGET", Sync: true}
	p, err := cl.CreatePost(ctx, "note", map[string]any{"secret": true}, "", sync)
	if err != nil {
		t.Fatal(err)
	}
	f, err := cl.Forget(ctx, client.ForgetTargets{Hashes: []string{p.ItemHash}, Reason: "oops"}, sync)
	if err != nil {
		t.Fatal(err)
	}
	if f.Status != message.StatusProcessed {
		t.Fatalf("forget: status %s", f.Status)
	}
	waitConverged(t, ctx, nodes[:2], 2)

	for _, n := range nodes[:2] {
		n.P2P().Unblock(c.P2P().ID())
		c.P2P().Unblock(n.P2P().ID())
	}
	nodetest.Connect(t, c, a)
	waitConverged(t, ctx, nodes, 2)
	st, err := c.Store().GetStatus(ctx, p.ItemHash)
	if err != nil || st.Status != message.StatusForgotten {
		t.Fatalf("the target on the node that never had it: %q, %v; want forgotten", st.Status, err)
	}
	if _, err := c.Store().GetMessage(ctx, p.ItemHash); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the forgotten content reached the third node: %v", err)
	}
}
