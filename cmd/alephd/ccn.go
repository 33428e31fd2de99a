package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/go-aleph/go-aleph/ccn/config"
	"github.com/go-aleph/go-aleph/ccn/node"
)

// nodeFlags are the flags alephd ccn and alephd dev share; a flag set on the
// command line wins over the file and the environment.
type nodeFlags struct {
	configFile, db, dataDir, listen, logLevel, logFormat string
	pprofListen, ipfsAPI, filesDir                       string
	p2pListen, peers                                     []string
	noP2P                                                bool
}

func (f *nodeFlags) register(cmd *cobra.Command, defaultDataDir string) {
	fl := cmd.Flags()
	fl.StringVarP(&f.configFile, "config", "c", "", "YAML configuration file")
	fl.StringVar(&f.db, "db", "", "database: postgres://… DSN or SQLite file (default <data-dir>/aleph.db)")
	fl.StringVar(&f.dataDir, "data-dir", defaultDataDir, "data directory")
	fl.StringVar(&f.listen, "listen", "", "API listen address host:port")
	fl.StringVar(&f.logLevel, "log-level", "", "debug, info, warn or error")
	fl.StringVar(&f.logFormat, "log-format", "", "text or json")
	fl.StringVar(&f.ipfsAPI, "ipfs-api", "", "also pin files to, and read missing ones from, an external kubo node at this HTTP RPC URL (http://127.0.0.1:5001)")
	fl.StringVar(&f.filesDir, "files-dir", "", "file store directory (default <data-dir>/files)")
	fl.StringSliceVar(&f.p2pListen, "p2p-listen", nil, "libp2p listen multiaddrs (default /ip4/0.0.0.0/tcp/4025; alephd dev: 127.0.0.1)")
	fl.StringSliceVar(&f.peers, "peers", nil, "bootstrap peers: multiaddrs ending in /p2p/<peer id>")
	fl.BoolVar(&f.noP2P, "no-p2p", false, "run without the libp2p host (a node alone: no gossip, no anti-entropy)")
	fl.StringVar(&f.pprofListen, "pprof-listen", "", "serve Go profiling endpoints (/debug/pprof/) on this host:port; off when empty")
}

// load builds the configuration: base defaults, then the file, the ALEPH_*
// environment, and the flags that were set.
func (f *nodeFlags) load(cmd *cobra.Command, base config.Config) (config.Config, error) {
	cfg := base
	if f.configFile != "" {
		if err := cfg.LoadFile(f.configFile); err != nil {
			return cfg, err
		}
	}
	if err := cfg.LoadEnv(os.Environ()); err != nil {
		return cfg, err
	}
	set := func(name string, dst *string, v string) {
		if cmd.Flags().Changed(name) {
			*dst = v
		}
	}
	set("db", &cfg.DB, f.db)
	set("data-dir", &cfg.DataDir, f.dataDir)
	set("listen", &cfg.API.Listen, f.listen)
	set("log-level", &cfg.Log.Level, f.logLevel)
	set("log-format", &cfg.Log.Format, f.logFormat)
	set("ipfs-api", &cfg.IPFS.API, f.ipfsAPI)
	set("files-dir", &cfg.Storage.Dir, f.filesDir)
	if cmd.Flags().Changed("p2p-listen") {
		cfg.P2P.Listen = f.p2pListen
	}
	if cmd.Flags().Changed("peers") {
		cfg.P2P.Peers = f.peers
	}
	if f.noP2P {
		cfg.P2P.Enabled = false
	}
	return cfg, cfg.Validate()
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated already
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func newCCNCmd() *cobra.Command {
	var f nodeFlags
	cmd := &cobra.Command{
		Use:   "ccn",
		Short: "Run a core channel node",
		Long: "Run a core channel node. Settings come from defaults, then --config (YAML), then ALEPH_* " +
			"environment variables (ALEPH_DB, ALEPH_API_LISTEN, …), then flags.",
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := f.load(cmd, config.Default())
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.Log)
			stop, err := startPprof(f.pprofListen, log)
			if err != nil {
				return err
			}
			defer stop()
			return runNode(cmd.Context(), cfg, log, nil)
		},
	}
	f.register(cmd, config.Default().DataDir)
	return cmd
}

// startPprof serves the profiling handlers on their own listener, never on the
// public API, when addr is set.
func startPprof(addr string, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	log.Info("profiling endpoints", "url", "http://"+ln.Addr().String()+"/debug/pprof/")
	return func() { srv.Close() }, nil
}

// runNode starts a node, calls ready with it, and runs until ctx ends (SIGINT or
// SIGTERM), then shuts down gracefully.
func runNode(ctx context.Context, cfg config.Config, log *slog.Logger, ready func(*node.Node) error, beforeClose ...func()) error {
	return runNodes(ctx, []config.Config{cfg}, log, func(ns []*node.Node) error {
		if ready == nil {
			return nil
		}
		return ready(ns[0])
	}, beforeClose...)
}

// runNodes starts nodes in order, calls ready with them, and runs until ctx
// ends, then shuts them all down gracefully.
func runNodes(ctx context.Context, cfgs []config.Config, log *slog.Logger, ready func([]*node.Node) error, beforeClose ...func()) error {
	node.Version = version
	var nodes []*node.Node
	closeAll := func(ctx context.Context) error {
		var errs []error
		for i := len(nodes) - 1; i >= 0; i-- {
			if err := nodes[i].Close(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	for i, cfg := range cfgs {
		nlog := log
		if len(cfgs) > 1 {
			nlog = log.With("node", i)
		}
		n, err := node.New(ctx, cfg, nlog)
		if err != nil {
			closeAll(context.Background())
			return err
		}
		if err := n.Start(ctx); err != nil {
			n.Close(context.Background())
			closeAll(context.Background())
			return err
		}
		nodes = append(nodes, n)
	}
	if ready != nil {
		if err := ready(nodes); err != nil {
			closeAll(context.Background())
			return err
		}
	}
	<-ctx.Done()
	for _, f := range beforeClose {
		f()
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfgs[0].API.ShutdownTimeout))
	defer cancel()
	if err := closeAll(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
