// Package metrics holds NOFX's Prometheus registry and the collectors that
// more than one package records into.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics is the registry served at /metrics and its shared collectors.
type Metrics struct {
	Registry     *prometheus.Registry
	HTTPRequests *prometheus.CounterVec
	HTTPDuration *prometheus.HistogramVec
	HTTPInFlight prometheus.Gauge

	ProviderCalls   *prometheus.CounterVec
	ProviderLatency *prometheus.HistogramVec
	ProviderTokens  *prometheus.CounterVec
	ProviderErrors  *prometheus.CounterVec

	// RateLimited counts requests refused by a rate limit, by tier.
	RateLimited *prometheus.CounterVec

	// Recent keeps the last hour of provider calls and refusals for the
	// health page.
	Recent *Recent
}

// Refused counts a request refused by the rate limit of tier.
func (m *Metrics) Refused(tier string) {
	m.RateLimited.WithLabelValues(tier).Inc()
	m.Recent.Refused(tier)
}

// New builds a registry with the Go and process collectors and NOFX's own.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Recent:   &Recent{},
		HTTPRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nofx_http_requests_total",
			Help: "HTTP requests answered, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		HTTPDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nofx_http_request_duration_seconds",
			Help:    "Time to answer HTTP requests, by method and route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
		HTTPInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "nofx_http_requests_in_flight",
			Help: "HTTP requests being answered now.",
		}),
	}
	m.ProviderCalls = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nofx_provider_calls_total",
		Help: "LLM provider calls, by provider and outcome (success, error, retryable_error, circuit_open, canceled).",
	}, []string{"provider", "outcome"})
	m.ProviderLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "nofx_provider_call_duration_seconds",
		Help:    "Time of LLM provider calls, by provider.",
		Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
	}, []string{"provider"})
	m.ProviderTokens = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nofx_provider_tokens_total",
		Help: "Tokens used by LLM provider calls, by provider and direction (input, output).",
	}, []string{"provider", "direction"})
	m.ProviderErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nofx_provider_errors_total",
		Help: "Failed LLM provider calls, by provider and class (rate_limited, overloaded, server_error, timeout, client_error, connection, other).",
	}, []string{"provider", "class"})
	m.RateLimited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "nofx_rate_limited_total",
		Help: "Requests refused by a rate limit, by tier (general, auth, expensive, admin, webhooks, plan, streams).",
	}, []string{"tier"})
	// Every tier from the start, so that a dashboard sees zero, not nothing.
	for _, tier := range []string{"general", "auth", "expensive", "admin", "webhooks", "plan", "streams"} {
		m.RateLimited.WithLabelValues(tier)
	}
	m.Registry.MustRegister(
		m.RateLimited,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.HTTPRequests, m.HTTPDuration, m.HTTPInFlight,
		m.ProviderCalls, m.ProviderLatency, m.ProviderTokens, m.ProviderErrors,
	)
	return m
}

// RunsListCache reports the runs list cache's pages answered from it and
// read again, and its size in bytes, when metrics are scraped.
func (m *Metrics) RunsListCache(stats func() (hits, misses uint64, bytes int)) {
	m.Registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "nofx_runs_list_cache_hits_total",
			Help: "Pages of GET /api/v1/runs answered from this process's cache, unchanged since they were read.",
		}, func() float64 { h, _, _ := stats(); return float64(h) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "nofx_runs_list_cache_misses_total",
			Help: "Pages of GET /api/v1/runs read from the database: new, or changed since they were kept.",
		}, func() float64 { _, miss, _ := stats(); return float64(miss) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "nofx_runs_list_cache_bytes",
			Help: "Bytes of encoded runs list pages this process keeps (NOFX_RUNS_LIST_CACHE bounds them).",
		}, func() float64 { _, _, b := stats(); return float64(b) }),
	)
}

// CircuitLabels are the labels of one nofx_provider_circuit_state series:
// the provider and the kind of credential ("instance" or "team", never a
// team's id: labels name no team, user or run).
type CircuitLabels struct {
	Provider string
	Scope    string
}

// CircuitStates reports each provider circuit's state (0 closed, 1
// half-open, 2 open) when metrics are scraped.
func (m *Metrics) CircuitStates(states func() map[CircuitLabels]float64) {
	m.Registry.MustRegister(&circuitCollector{states: states})
}

var circuitDesc = prometheus.NewDesc("nofx_provider_circuit_state",
	"State of each provider circuit, by provider and credential scope: 0 closed, 1 half-open, 2 open.", []string{"provider", "scope"}, nil)

type circuitCollector struct {
	states func() map[CircuitLabels]float64
}

func (c *circuitCollector) Describe(ch chan<- *prometheus.Desc) { ch <- circuitDesc }

func (c *circuitCollector) Collect(ch chan<- prometheus.Metric) {
	for labels, state := range c.states() {
		ch <- prometheus.MustNewConstMetric(circuitDesc, prometheus.GaugeValue, state, labels.Provider, labels.Scope)
	}
}
