// Command alephbench measures a core channel node from the outside, over HTTP,
// as a client would:
//
//	alephbench ingest --url http://127.0.0.1:4024 -n 20000
//	    signs n ETH POSTs, submits them concurrently, and reports the rate at which
//	    they are acknowledged and the rate at which they are processed and queryable;
//	alephbench seed --db /tmp/bench/aleph.db -n 1000000
//	    fills a store directly with n processed messages (and a 1,000-element
//	    aggregate), for the query benchmarks;
//	alephbench query --url http://127.0.0.1:4024
//	    measures messages.json and aggregate latencies (p50, p99);
//	alephbench cluster latency|ingest|partition --nodes 5
//	    runs a cluster of real nodes in this process (SQLite, HTTP and libp2p on
//	    127.0.0.1) and measures gossip propagation, cluster ingest, and
//	    convergence after a partition.
//
// It sends traffic only to the URL given, which should be on this machine.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{Use: "alephbench", Short: "Load and latency benchmarks for a go-aleph node", SilenceUsage: true, SilenceErrors: true}
	root.AddCommand(newIngestCmd(), newSeedCmd(), newQueryCmd(), newFilesCmd(), newClusterCmd(), newSimCmd())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "alephbench:", err)
		os.Exit(1)
	}
}
