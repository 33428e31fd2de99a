package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/ccn/sim"
)

type simOpts struct {
	cfg        sim.Config
	json       bool
	cpuProfile string
	nodeLogs   bool
}

func newSimCmd() *cobra.Command {
	var o simOpts
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Run a network of full nodes in process on libp2p's mock network; measure gossip propagation and convergence after a partition",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSim(cmd, o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.cfg.Nodes, "nodes", 100, "full nodes")
	f.IntVar(&o.cfg.Degree, "degree", 8, "random links per node")
	f.DurationVar(&o.cfg.Latency, "latency", 50*time.Millisecond, "one-way latency of each link")
	f.IntVar(&o.cfg.Messages, "messages", 500, "messages injected for the propagation measurement")
	f.Float64Var(&o.cfg.Rate, "rate", 50, "messages per second injected (at random nodes)")
	f.IntVar(&o.cfg.PartitionMessages, "partition", 1000, "messages written on each side of a partition (0: no partition)")
	f.StringVar(&o.cfg.Dir, "dir", "", "data directory for the nodes (default: a temporary one, removed afterwards)")
	f.Uint64Var(&o.cfg.Seed, "seed", 0, "graph and node choice seed (0: random)")
	f.DurationVar(&o.cfg.SyncInterval, "sync-interval", 2*time.Second, "anti-entropy session interval of each node")
	f.DurationVar(&o.cfg.Timeout, "timeout", 5*time.Minute, "bound on each wait")
	f.BoolVar(&o.json, "json", false, "print the result as JSON")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the run to this file")
	f.BoolVar(&o.nodeLogs, "node-logs", false, "print the nodes' own logs (warnings and errors) to stderr")
	return cmd
}

func runSim(cmd *cobra.Command, o simOpts) error {
	cfg := o.cfg
	cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
	if o.nodeLogs {
		cfg.NodeLog = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "alephbench-sim-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := sim.Run(cmd.Context(), cfg)
	if err != nil {
		return err
	}
	if o.json {
		return json.NewEncoder(cmd.OutOrStdout()).Encode(simJSON(res))
	}
	printSim(cmd.OutOrStdout(), res)
	return nil
}

// SimResult is the JSON the sim command prints; durations in milliseconds.
type SimResult struct {
	Nodes                  int     `json:"nodes"`
	Degree                 int     `json:"degree"`
	Links                  int     `json:"links"`
	CrossLinks             int     `json:"cross_links"`
	LatencyMS              float64 `json:"link_latency_ms"`
	Seed                   uint64  `json:"seed"`
	StartupMS              float64 `json:"startup_ms"`
	Messages               int     `json:"messages"`
	Rate                   float64 `json:"rate_per_second"`
	PropagationP50MS       float64 `json:"propagation_p50_ms"`
	PropagationP90MS       float64 `json:"propagation_p90_ms"`
	PropagationP99MS       float64 `json:"propagation_p99_ms"`
	PropagationMaxMS       float64 `json:"propagation_max_ms"`
	PropagationSamples     int     `json:"propagation_samples"`
	PartitionMessages      int     `json:"partition_messages_per_side"`
	PartitionSettleMS      float64 `json:"partition_settle_ms"`
	ConvergenceAfterHealMS float64 `json:"convergence_after_heal_ms"`
	FinalLen               int     `json:"final_set_size"`
	DigestsChecked         int     `json:"digests_checked"`
	RSSAfterStartMiB       float64 `json:"rss_after_start_mib"`
	PeakRSSMiB             float64 `json:"peak_rss_mib"`
	CPUSeconds             float64 `json:"cpu_seconds"`
	WallSeconds            float64 `json:"wall_seconds"`
	Goroutines             int     `json:"goroutines"`
}

func simMiB(b int64) float64 { return float64(b) / (1 << 20) }

func simJSON(r *sim.Result) SimResult {
	return SimResult{
		Nodes: r.Nodes, Degree: r.Degree, Links: r.Links, CrossLinks: r.CrossLinks, LatencyMS: ms(r.Latency), Seed: r.Seed,
		StartupMS: ms(r.Startup), Messages: r.Messages, Rate: r.Rate,
		PropagationP50MS: ms(r.Propagation.P50), PropagationP90MS: ms(r.Propagation.P90),
		PropagationP99MS: ms(r.Propagation.P99), PropagationMaxMS: ms(r.Propagation.Max), PropagationSamples: r.Propagation.Samples,
		PartitionMessages: r.PartitionMessages, PartitionSettleMS: ms(r.PartitionSettle), ConvergenceAfterHealMS: ms(r.ConvergenceAfterHeal),
		FinalLen: r.FinalLen, DigestsChecked: r.DigestsChecked,
		RSSAfterStartMiB: simMiB(r.RSSAfterStart), PeakRSSMiB: simMiB(r.PeakRSS), CPUSeconds: r.CPU.Seconds(), WallSeconds: r.Wall.Seconds(),
		Goroutines: r.Goroutines,
	}
}

func printSim(w io.Writer, r *sim.Result) {
	fmt.Fprintf(w, "network      %d nodes, degree %d (%d links, %d across the partition), link latency %v, seed %d\n",
		r.Nodes, r.Degree, r.Links, r.CrossLinks, r.Latency, r.Seed)
	fmt.Fprintf(w, "startup      %v (RSS %.0f MiB, %d goroutines)\n", r.Startup.Round(time.Millisecond), simMiB(r.RSSAfterStart), r.Goroutines)
	if r.Messages > 0 {
		p := r.Propagation
		fmt.Fprintf(w, "propagation  %d messages at %g/s: p50 %v  p90 %v  p99 %v  max %v  (%d samples)\n", r.Messages, r.Rate,
			p.P50.Round(time.Millisecond), p.P90.Round(time.Millisecond), p.P99.Round(time.Millisecond), p.Max.Round(time.Millisecond), p.Samples)
	}
	if r.PartitionMessages > 0 {
		fmt.Fprintf(w, "partition    %d messages per side; each side agreed after %v\n", r.PartitionMessages, r.PartitionSettle.Round(time.Millisecond))
		fmt.Fprintf(w, "heal         all %d nodes converged on %d messages %v after the heal (state digest confirmed on %d nodes)\n",
			r.Nodes, r.FinalLen, r.ConvergenceAfterHeal.Round(time.Millisecond), r.DigestsChecked)
	}
	fmt.Fprintf(w, "resources    peak RSS %.0f MiB, CPU %.1f s over %.1f s wall\n", simMiB(r.PeakRSS), r.CPU.Seconds(), r.Wall.Seconds())
}
