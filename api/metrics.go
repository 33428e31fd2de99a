package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the API's own Prometheus series. Routes are labelled by their mux
// pattern, so label values stay bounded whatever clients request.
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	wsConnections prometheus.Gauge
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "aleph_api_requests_total",
			Help: "HTTP requests answered by the API, by method, route pattern and status code.",
		}, []string{"method", "route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "aleph_api_request_duration_seconds",
			Help:    "Time to answer an API request (for websockets, the connection's life), by route pattern.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		wsConnections: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "aleph_api_websocket_connections",
			Help: "Open messages websocket connections.",
		}),
	}
	m.requests = register(reg, m.requests)
	m.duration = register(reg, m.duration)
	m.wsConnections = register(reg, m.wsConnections)
	return m
}

// register adds c to reg, or returns the collector already registered under the
// same description (a second handler built on the same registry shares series).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		panic("api: register metrics: " + err.Error()) // a programming error: conflicting metric names
	}
	return c
}

// methodLabel keeps the method label bounded.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return m
	}
	return "OTHER"
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	method = methodLabel(method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}

// serveMetrics serves GET /metrics: Prometheus text from Deps.Metrics.
func (s *server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.d.Metrics, promhttp.HandlerOpts{ErrorLog: nil}).ServeHTTP(w, r)
}
