// Package metrics builds paygate's Prometheus registry and the collectors the
// request path updates. Nothing here uses the global default registry: the
// app creates one Registry and hands its collectors to the packages that
// update them.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every collector paygate exports.
type Metrics struct {
	Registry *prometheus.Registry

	ToolCalls      *prometheus.CounterVec // tool, status
	CreditsCharged *prometheus.CounterVec // tool
	Denials        *prometheus.CounterVec // reason
	RateLimitHits  *prometheus.CounterVec // scope: key, tool
	Refunds        *prometheus.CounterVec // tool
	RefundCredits  *prometheus.CounterVec // tool
	HTTPRequests   *prometheus.CounterVec // method, route, code
	HTTPDuration   *prometheus.HistogramVec
	GateDuration   prometheus.Histogram
	BackendLatency *prometheus.HistogramVec // backend
	ActiveKeys     prometheus.GaugeFunc
	ActiveSessions prometheus.Gauge
	InFlight       prometheus.Gauge
	BackendUp      *prometheus.GaugeVec   // backend
	BackendRestart *prometheus.CounterVec // backend
	BuildInfo      *prometheus.GaugeVec
	Uptime         prometheus.GaugeFunc
}

// Options configures New.
type Options struct {
	Version    string
	Commit     string
	ActiveKeys func() float64 // may be nil
	Start      time.Time
}

// fast latency buckets: the gate costs microseconds, backends milliseconds.
var gateBuckets = []float64{5e-6, 10e-6, 25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 5e-3, 25e-3}

// New creates the registry and all collectors.
func New(o Options) *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{Registry: r}
	f := func(c prometheus.Collector) { r.MustRegister(c) }

	m.ToolCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_tool_calls_total", Help: "Tool calls processed, by tool and status (allowed, denied, error, refunded)."}, []string{"tool", "status"})
	m.CreditsCharged = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_credits_charged_total", Help: "Credits charged (net of refunds), by tool."}, []string{"tool"})
	m.Denials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_denials_total", Help: "Gate denials by reason."}, []string{"reason"})
	m.RateLimitHits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_rate_limit_hits_total", Help: "Calls refused by a rate limit, by scope (key or tool)."}, []string{"scope"})
	m.Refunds = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_refunds_total", Help: "Refunded tool calls, by tool."}, []string{"tool"})
	m.RefundCredits = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_refunded_credits_total", Help: "Credits refunded, by tool."}, []string{"tool"})
	m.HTTPRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_http_requests_total", Help: "HTTP requests by method, route and status code."}, []string{"method", "route", "code"})
	m.HTTPDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paygate_http_request_duration_seconds", Help: "HTTP request latency by route.", Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 12)}, []string{"route"})
	m.GateDuration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "paygate_gate_duration_seconds", Help: "Time spent deciding and charging a call (gate + reserve).", Buckets: gateBuckets})
	m.BackendLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "paygate_backend_duration_seconds", Help: "Backend round-trip time of forwarded requests.", Buckets: prometheus.ExponentialBuckets(100e-6, 2.5, 14)}, []string{"backend"})
	m.ActiveSessions = prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_active_sessions_total", Help: "Open MCP sessions."})
	m.InFlight = prometheus.NewGauge(prometheus.GaugeOpts{Name: "paygate_inflight_requests", Help: "MCP requests being processed."})
	m.BackendUp = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_backend_up", Help: "1 when the backend is ready, 0 otherwise."}, []string{"backend"})
	m.BackendRestart = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "paygate_backend_restarts_total", Help: "Backend restarts (child process or session re-established)."}, []string{"backend"})
	m.BuildInfo = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "paygate_build_info", Help: "Build information; value is always 1."}, []string{"version", "commit", "goversion"})
	m.BuildInfo.WithLabelValues(o.Version, o.Commit, runtime.Version()).Set(1)

	start := o.Start
	if start.IsZero() {
		start = time.Now()
	}
	m.Uptime = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paygate_uptime_seconds", Help: "Seconds since the gateway started."}, func() float64 { return time.Since(start).Seconds() })
	activeKeys := o.ActiveKeys
	if activeKeys == nil {
		activeKeys = func() float64 { return 0 }
	}
	m.ActiveKeys = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "paygate_active_keys_total", Help: "API keys that can be used now (not revoked, suspended or expired)."}, activeKeys)

	for _, c := range []prometheus.Collector{m.ToolCalls, m.CreditsCharged, m.Denials, m.RateLimitHits, m.Refunds, m.RefundCredits, m.HTTPRequests, m.HTTPDuration, m.GateDuration, m.BackendLatency, m.ActiveSessions, m.InFlight, m.BackendUp, m.BackendRestart, m.BuildInfo, m.Uptime, m.ActiveKeys} {
		f(c)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{EnableOpenMetrics: false})
}
