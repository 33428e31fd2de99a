package antientropy

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	sessions *prometheus.CounterVec
	items    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, setLen func() float64) *metrics {
	m := &metrics{
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_sync_sessions_total",
			Help: "Anti-entropy sessions, by role (initiator, responder) and result.",
		}, []string{"role", "result"}),
		items: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_sync_items_total",
			Help: "Messages moved by anti-entropy, by direction and result.",
		}, []string{"direction", "result"}),
	}
	if reg != nil {
		reg.MustRegister(m.sessions, m.items, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "aleph_sync_set_size",
			Help: "Messages in the local anti-entropy set (processed or forgotten).",
		}, setLen))
	}
	return m
}
