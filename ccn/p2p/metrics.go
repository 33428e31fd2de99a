package p2p

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the p2p counters, registered once per node.
type Metrics struct {
	received  *prometheus.CounterVec
	alive     *prometheus.CounterVec
	published *prometheus.CounterVec
	dropped   *prometheus.CounterVec
	peers     atomic.Pointer[func() float64]
}

// NewMetrics registers the p2p metrics with reg (nil: unregistered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_p2p_gossip_messages_total",
			Help: "Gossiped messages received, by outcome: accepted, rejected (bad signature or refused at admission), malformed, rate_limited, error.",
		}, []string{"result"}),
		alive: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_p2p_alive_records_total",
			Help: "ALIVE records received, by outcome.",
		}, []string{"result"}),
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_p2p_published_total",
			Help: "Messages this node published on gossip, by outcome: ok, failed, dropped (queue full).",
		}, []string{"result"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_p2p_gossip_dropped_total",
			Help: "Gossip messages gossipsub dropped outside the validator, by topic and reason (duplicate, invalid signature, validation throttled, …).",
		}, []string{"topic", "reason"}),
	}
	if reg != nil {
		peers := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aleph_p2p_peers",
			Help: "Connected libp2p peers.",
		}, func() float64 {
			if f := m.peers.Load(); f != nil {
				return (*f)()
			}
			return 0
		})
		reg.MustRegister(m.received, m.alive, m.published, m.dropped, peers)
	}
	return m
}

func (m *Metrics) setPeers(f func() float64) { m.peers.Store(&f) }

// Received returns the count of gossiped messages with the given outcome.
func (m *Metrics) Received(result string) float64 {
	return counterValue(m.received.WithLabelValues(result))
}

// Dropped returns the count of messages gossipsub dropped on topic for reason.
func (m *Metrics) Dropped(topic, reason string) float64 {
	return counterValue(m.dropped.WithLabelValues(topic, reason))
}

func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
