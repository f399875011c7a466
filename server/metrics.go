package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are a server's Prometheus metrics, in a registry of its own.
type metrics struct {
	registry     *prometheus.Registry
	requests     *prometheus.CounterVec   // route, method, code
	latency      *prometheus.HistogramVec // route, method, code
	inflight     prometheus.Gauge         // HTTP requests being served
	audioSeconds *prometheus.CounterVec   // mode
	rtf          *prometheus.HistogramVec // mode
	firstAudio   prometheus.Histogram
}

// Label values of the mode label.
const (
	modeWhole  = "whole"
	modeStream = "stream"
)

// newMetrics registers the service's metrics, the pool's queue depth and
// busy workers, and the Go runtime and process collectors (memory, CPU,
// file descriptors).
func newMetrics(p *pool) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glowvoc_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code (499: client went away).",
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "glowvoc_http_request_duration_seconds",
			Help:    "Time from request arrival to the end of the response, by route pattern, method and status code.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14), // 1 ms to 150 s
		}, []string{"route", "method", "code"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "glowvoc_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		audioSeconds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "glowvoc_audio_seconds_total",
			Help: "Seconds of audio synthesised, by mode (whole or stream).",
		}, []string{"mode"}),
		rtf: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "glowvoc_real_time_factor",
			Help:    "Synthesis time (for streams including sending) divided by the duration of the audio produced, by mode; below 1 is faster than real time.",
			Buckets: prometheus.ExponentialBuckets(0.01, 2, 12), // 0.01 to 20
		}, []string{"mode"}),
		firstAudio: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "glowvoc_stream_first_audio_seconds",
			Help:    "Time from request arrival to the first audio written, for streamed synthesis.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14), // 5 ms to 41 s
		}),
	}
	reg.MustRegister(m.requests, m.latency, m.inflight, m.audioSeconds, m.rtf, m.firstAudio,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "glowvoc_queue_depth",
			Help: "Requests admitted and waiting for a worker (or still uploading).",
		}, func() float64 { w, _ := p.depth(); return float64(w) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "glowvoc_workers_busy",
			Help: "Requests being computed (synthesis, scoring, mel).",
		}, func() float64 { _, r := p.depth(); return float64(r) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "glowvoc_workers",
			Help: "Requests that can be computed at once.",
		}, func() float64 { return float64(cap(p.running)) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "glowvoc_queue_capacity",
			Help: "Requests that can wait for a worker before the server answers 429.",
		}, func() float64 { return float64(cap(p.admitted) - cap(p.running)) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// handler serves the registry in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}
