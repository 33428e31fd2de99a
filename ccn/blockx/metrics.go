package blockx

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/go-aleph/go-aleph/ccn/files"
)

// metrics counts fetches by result, and the blocks and bytes they used.
type metrics struct {
	fetches *prometheus.CounterVec
	blocks  prometheus.Counter
	bytes   prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_blockx_fetches_total",
			Help: "Fetches of an ipfs DAG over bitswap, by result (ok, unavailable, error).",
		}, []string{"result"}),
		blocks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aleph_blockx_blocks_total",
			Help: "Blocks used by fetches, from peers or the local store.",
		}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "aleph_blockx_block_bytes_total",
			Help: "Bytes of the blocks used by fetches.",
		}),
	}
	for _, c := range []prometheus.Collector{m.fetches, m.blocks, m.bytes} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("blockx: metrics: %w", err)
		}
	}
	return m, nil
}

func (m *metrics) fetch(err error) {
	switch {
	case err == nil:
		m.fetches.WithLabelValues("ok").Inc()
	case errors.Is(err, files.ErrUnavailable):
		m.fetches.WithLabelValues("unavailable").Inc()
	default:
		m.fetches.WithLabelValues("error").Inc()
	}
}

func (m *metrics) block(size int) {
	m.blocks.Inc()
	m.bytes.Add(float64(size))
}
