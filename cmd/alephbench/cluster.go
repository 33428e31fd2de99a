package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/events"
	"github.com/go-aleph/go-aleph/ccn/node"
	"github.com/go-aleph/go-aleph/internal/loadgen"
)

type clusterOpts struct {
	nodes, messages, concurrency int
	rate                         float64
	dir                          string
	timeout                      time.Duration
	jsonOut                      bool
	cpuProfile                   string
}

func newClusterCmd() *cobra.Command {
	var o clusterOpts
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Benchmark a cluster of real nodes run in this process on loopback",
	}
	pf := cmd.PersistentFlags()
	pf.IntVar(&o.nodes, "nodes", 5, "nodes in the cluster (fully connected)")
	pf.IntVarP(&o.messages, "messages", "n", 5000, "messages to send")
	pf.StringVar(&o.dir, "dir", "", "data directory (default: a temporary one, removed after)")
	pf.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	pf.BoolVar(&o.jsonOut, "json", false, "print the result as JSON")
	pf.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the measured part to this file")
	latency := &cobra.Command{
		Use:   "latency",
		Short: "Send messages to node 0 at --rate and measure when the other nodes have processed them",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCluster(cmd, o, clusterLatency)
		},
	}
	latency.Flags().Float64Var(&o.rate, "rate", 500, "messages per second sent to node 0")
	ingest := &cobra.Command{
		Use:   "ingest",
		Short: "Send messages to every node as fast as they are accepted and measure until all nodes processed all",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCluster(cmd, o, clusterIngest)
		},
	}
	ingest.Flags().IntVar(&o.concurrency, "concurrency", 64, "concurrent HTTP clients")
	partition := &cobra.Command{
		Use:   "partition",
		Short: "Cut the last node off, write --messages on each side, heal, and measure the time to converge",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runCluster(cmd, o, clusterPartition)
		},
	}
	cmd.AddCommand(latency, ingest, partition)
	return cmd
}

// ClusterResult is what a cluster benchmark measured.
type ClusterResult struct {
	Mode     string  `json:"mode"`
	Nodes    int     `json:"nodes"`
	Messages int     `json:"messages"`
	Rate     float64 `json:"rate_sent,omitempty"`
	// Latency: from the POST to node 0 to processed on each other node.
	P50ms float64 `json:"p50_ms,omitempty"`
	P90ms float64 `json:"p90_ms,omitempty"`
	P99ms float64 `json:"p99_ms,omitempty"`
	MaxMs float64 `json:"max_ms,omitempty"`
	// Ingest: messages per second accepted and processed on every node.
	IngestRate float64 `json:"ingest_rate,omitempty"`
	// Partition: from the heal to identical sets on every node.
	ConvergeSeconds float64 `json:"converge_seconds,omitempty"`
	Seconds         float64 `json:"seconds"`
}

type clusterRun func(ctx context.Context, o clusterOpts, nodes []*node.Node) (*ClusterResult, error)

func runCluster(cmd *cobra.Command, o clusterOpts, run clusterRun) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "alephbench-cluster-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	nodes, stop, err := startCluster(ctx, dir, o.nodes)
	if err != nil {
		return err
	}
	defer stop()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	res, err := run(ctx, o, nodes)
	if err != nil {
		return err
	}
	res.Mode, res.Nodes = cmd.Name(), o.nodes
	if o.jsonOut {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "%+v\n", *res)
	return nil
}

// startCluster runs n nodes on loopback, fully connected.
func startCluster(ctx context.Context, dir string, n int) ([]*node.Node, func(), error) {
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("ALEPHBENCH_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	var nodes []*node.Node
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, nd := range nodes {
			nd.Close(sctx)
		}
	}
	for i := range n {
		cfg := config.Dev(fmt.Sprintf("%s/node%d", dir, i))
		cfg.API.Listen = "127.0.0.1:0"
		cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.P2P.SyncInterval = config.Duration(2 * time.Second)
		cfg.Log.Level = "warn"
		nd, err := node.New(ctx, cfg, log.With("node", i))
		if err != nil {
			stop()
			return nil, nil, err
		}
		if err := nd.Start(ctx); err != nil {
			nd.Close(ctx)
			stop()
			return nil, nil, err
		}
		nodes = append(nodes, nd)
	}
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			if err := connect(ctx, a, b); err != nil {
				stop()
				return nil, nil, err
			}
		}
	}
	// Measure once every node knows every other is on the topic.
	for _, nd := range nodes {
		for nd.P2P().TopicPeers() < n-1 {
			select {
			case <-ctx.Done():
				stop()
				return nil, nil, fmt.Errorf("nodes never saw each other on the topic: %w", ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nodes, stop, nil
}

func connect(ctx context.Context, a, b *node.Node) error {
	h := b.P2P().Host()
	if err := a.P2P().Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
		return fmt.Errorf("connect nodes: %w", err)
	}
	return nil
}

// watch records when each node processes each message.
type watch struct {
	mu   sync.Mutex
	seen []map[string]time.Time
	subs []*events.Subscription
	wg   sync.WaitGroup
	left atomic.Int64 // (message, node) pairs still awaited
	done chan struct{}
}

func newWatch(nodes []*node.Node, want int) *watch {
	w := &watch{done: make(chan struct{})}
	w.left.Store(int64(want * len(nodes)))
	for i, nd := range nodes {
		w.seen = append(w.seen, map[string]time.Time{})
		sub := nd.Events().Subscribe(1 << 20)
		w.subs = append(w.subs, sub)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			for e := range sub.C {
				if e.Kind != events.Processed {
					continue
				}
				now := time.Now()
				w.mu.Lock()
				if _, ok := w.seen[i][e.ItemHash]; !ok {
					w.seen[i][e.ItemHash] = now
					if w.left.Add(-1) == 0 {
						close(w.done)
					}
				}
				w.mu.Unlock()
			}
		}()
	}
	return w
}

func (w *watch) wait(ctx context.Context) error {
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%d (message, node) pairs not processed: %w", w.left.Load(), ctx.Err())
	}
}

func (w *watch) close() {
	for _, s := range w.subs {
		s.Close()
	}
	w.wg.Wait()
}

func sendOne(ctx context.Context, hc *http.Client, base string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v0/messages", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("POST message: HTTP %d", resp.StatusCode)
	}
	return nil
}

func clusterLatency(ctx context.Context, o clusterOpts, nodes []*node.Node) (*ClusterResult, error) {
	posts, err := loadgen.Posts(o.messages, 100, fmt.Sprintf("LAT-%d", time.Now().UnixNano()), false)
	if err != nil {
		return nil, err
	}
	w := newWatch(nodes, o.messages)
	defer w.close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	sent := make([]time.Time, len(posts))
	interval := time.Duration(float64(time.Second) / o.rate)
	start := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	for i, p := range posts {
		// Open loop: message i leaves at start + i×interval whatever the
		// answers, as clients would.
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d)
		}
		sent[i] = time.Now()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sendOne(ctx, hc, nodes[0].URL(), p.Body); err != nil {
				select {
				case errc <- err:
				default:
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return nil, err
	default:
	}
	if err := w.wait(ctx); err != nil {
		return nil, err
	}
	var lat []time.Duration
	w.mu.Lock()
	for i, p := range posts {
		for n := 1; n < len(nodes); n++ {
			lat = append(lat, w.seen[n][p.Message.ItemHash].Sub(sent[i]))
		}
	}
	w.mu.Unlock()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	return &ClusterResult{Messages: o.messages, Rate: o.rate, P50ms: q(0.50), P90ms: q(0.90), P99ms: q(0.99),
		MaxMs: q(1), Seconds: time.Since(start).Seconds()}, nil
}

func clusterIngest(ctx context.Context, o clusterOpts, nodes []*node.Node) (*ClusterResult, error) {
	posts, err := loadgen.Posts(o.messages, 100, fmt.Sprintf("ING-%d", time.Now().UnixNano()), false)
	if err != nil {
		return nil, err
	}
	w := newWatch(nodes, o.messages)
	defer w.close()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.concurrency}}
	start := time.Now()
	if err := sendAll(ctx, hc, func(i int) string { return nodes[i%len(nodes)].URL() }, posts, o.concurrency); err != nil {
		return nil, err
	}
	if err := w.wait(ctx); err != nil {
		return nil, err
	}
	d := time.Since(start)
	return &ClusterResult{Messages: o.messages, IngestRate: float64(o.messages) / d.Seconds(), Seconds: d.Seconds()}, nil
}

func clusterPartition(ctx context.Context, o clusterOpts, nodes []*node.Node) (*ClusterResult, error) {
	if len(nodes) < 2 {
		return nil, fmt.Errorf("partition needs at least 2 nodes")
	}
	last := nodes[len(nodes)-1]
	rest := nodes[:len(nodes)-1]
	for _, n := range rest {
		n.P2P().Block(last.P2P().ID())
		last.P2P().Block(n.P2P().ID())
	}
	tag := time.Now().UnixNano()
	sideA, err := loadgen.Posts(o.messages, 100, fmt.Sprintf("PART-A-%d", tag), false)
	if err != nil {
		return nil, err
	}
	sideB, err := loadgen.Posts(o.messages, 100, fmt.Sprintf("PART-B-%d", tag), false)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	wa, wb := newWatch(rest, o.messages), newWatch([]*node.Node{last}, o.messages)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	for side, job := range map[*node.Node][]loadgen.Post{rest[0]: sideA, last: sideB} {
		if err := sendAll(ctx, hc, func(int) string { return side.URL() }, job, 32); err != nil {
			return nil, err
		}
	}
	if err := wa.wait(ctx); err != nil {
		return nil, err
	}
	if err := wb.wait(ctx); err != nil {
		return nil, err
	}
	wa.close()
	wb.close()
	healed := time.Now()
	for _, n := range rest {
		n.P2P().Unblock(last.P2P().ID())
		last.P2P().Unblock(n.P2P().ID())
		if err := connect(ctx, last, n); err != nil {
			return nil, err
		}
	}
	want := 2 * o.messages
	for {
		same := true
		fp := nodes[0].AntiEntropy().Fingerprint()
		for _, n := range nodes {
			if n.AntiEntropy().Len() != want || n.AntiEntropy().Fingerprint() != fp {
				same = false
			}
		}
		if same {
			break
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no convergence: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	conv := time.Since(healed)
	// Confirm with the full state digests.
	d0, err := nodes[0].Store().StateDigest(ctx)
	if err != nil {
		return nil, err
	}
	for i, n := range nodes[1:] {
		d, err := n.Store().StateDigest(ctx)
		if err != nil {
			return nil, err
		}
		if d.Digest != d0.Digest {
			return nil, fmt.Errorf("node %d: state digest %s differs from node 0's %s", i+1, d.Digest, d0.Digest)
		}
	}
	return &ClusterResult{Messages: o.messages, ConvergeSeconds: conv.Seconds(), Seconds: time.Since(start).Seconds()}, nil
}

// sendAll POSTs the messages with conc concurrent clients, message i to the
// API at base(i).
func sendAll(ctx context.Context, hc *http.Client, base func(i int) string, posts []loadgen.Post, conc int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(posts) || ctx.Err() != nil {
					return
				}
				if err := sendOne(ctx, hc, base(i), posts[i].Body); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}
