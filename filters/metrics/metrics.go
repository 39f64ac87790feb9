// Package metrics exports Weir's Prometheus metrics: a proxy.Logger that
// counts the reverse proxy's requests per route, a collector that reads
// the forward proxies' per-user usage counters when Prometheus scrapes,
// and an endpoint that serves a registry on its own listener.
//
// Everything registers on a registry of its own (NewRegistry), never on
// client_golang's global one, so that two Weirs in one process do not
// share or collide over metrics. docs/metrics.md lists every metric.
package metrics

import (
	"errors"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/proxy"
)

// NewRegistry returns a registry with the Go runtime and process
// collectors and weir_build_info{version} registered on it.
func NewRegistry(version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "weir_build_info",
			Help:        "Always 1; the version label names the running Weir.",
			ConstLabels: prometheus.Labels{"version": version},
		}, func() float64 { return 1 }),
	)
	return reg
}

// DurationBuckets are the upper bounds, in seconds, of the request and
// upstream duration histograms: from 1ms, for a cached or local answer,
// to a minute, for long downloads and streams.
var DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

// The values of the code_class label, indexed by status/100; index 0 is
// a request that got no status at all.
var codeClasses = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

// The values of the proto label.
var protos = [...]string{"1.0", "1.1", "2", "3"}

const (
	proto10 = iota
	proto11
	proto2
	proto3
)

// The values of the phase label of weir_errors_total.
var phases = [...]string{
	"connect", "write_request", "write_body", "read_response", "read_body", "exchange",
	"client", "bad_request", "local", "other",
}

const (
	phaseConnect = iota
	phaseWriteRequest
	phaseWriteBody
	phaseReadResponse
	phaseReadBody
	phaseExchange
	phaseClient
	phaseBadRequest
	phaseLocal
	phaseOther
)

// Filter records the reverse proxy's requests. It implements
// proxy.Logger; Weir adds it to the handler chain, so it sees every
// request, routed or not. Its counters outlive reloads of the
// configuration: keep one Filter per registry.
type Filter struct {
	requests    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	upstream    *prometheus.HistogramVec
	reqBytes    *prometheus.CounterVec
	respBytes   *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	errors      *prometheus.CounterVec
	routes      atomic.Pointer[map[string]*routeMetrics] // copied on write
	routesWrite sync.Mutex
}

var _ proxy.Logger = (*Filter)(nil)

// routeMetrics holds the children of one route, resolved once, so that
// Log only looks them up in a map and adds. The children whose labels
// vary beyond the route are resolved the first time they are needed,
// so that no series is exported before it counted something.
type routeMetrics struct {
	requests  [len(protos)][len(codeClasses)]lazyCounter
	errors    [len(phases)]lazyCounter
	upstream  atomic.Pointer[observerRef]
	duration  prometheus.Observer
	reqBytes  prometheus.Counter
	respBytes prometheus.Counter
	attempts  prometheus.Counter
}

type counterRef struct{ c prometheus.Counter }

type observerRef struct{ o prometheus.Observer }

// lazyCounter is a child counter resolved on first use.
type lazyCounter struct{ p atomic.Pointer[counterRef] }

func (l *lazyCounter) get(vec *prometheus.CounterVec, labels ...string) prometheus.Counter {
	if r := l.p.Load(); r != nil {
		return r.c
	}
	r := &counterRef{vec.WithLabelValues(labels...)}
	l.p.CompareAndSwap(nil, r) // a racing twin resolved the same child
	return r.c
}

// New returns a Filter whose metrics are registered on reg.
func New(reg prometheus.Registerer) (*Filter, error) {
	f := &Filter{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_requests_total",
			Help: "Requests the reverse proxy finished, by route, status class and client HTTP version.",
		}, []string{"route", "code_class", "proto"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_request_duration_seconds",
			Help:    "Time from a complete request head to the end of the response, by route.",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		upstream: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "weir_upstream_duration_seconds",
			Help:    "Time from a complete request head to the upstream's response head, by route; only requests that got one.",
			Buckets: DurationBuckets,
		}, []string{"route"}),
		reqBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_request_bytes_total",
			Help: "Request body bytes read from clients, by route.",
		}, []string{"route"}),
		respBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_response_bytes_total",
			Help: "Response body bytes sent to clients, by route.",
		}, []string{"route"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_upstream_attempts_total",
			Help: "Attempts to reach an upstream peer, retries included, by route.",
		}, []string{"route"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "weir_errors_total",
			Help: "Requests that ended with an error, by route and the phase that failed.",
		}, []string{"route", "phase"}),
	}
	for _, c := range []prometheus.Collector{f.requests, f.duration, f.upstream, f.reqBytes, f.respBytes, f.attempts, f.errors} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	empty := map[string]*routeMetrics{}
	f.routes.Store(&empty)
	return f, nil
}

// Log implements proxy.Logger.
func (f *Filter) Log(s *proxy.Session) {
	name := ""
	if s.Route != nil {
		name = s.Route.Name
	}
	rm := (*f.routes.Load())[name]
	if rm == nil {
		rm = f.addRoute(name)
	}
	class := 0
	if s.Status >= 100 && s.Status < 600 {
		class = s.Status / 100
	}
	p := protoIndex(s.Req.ProtoMajor, s.Req.ProtoMinor)
	rm.requests[p][class].get(f.requests, name, codeClasses[class], protos[p]).Inc()
	rm.duration.Observe(s.End.Sub(s.Start).Seconds())
	if !s.UpstreamHeadAt.IsZero() {
		o := rm.upstream.Load()
		if o == nil {
			o = &observerRef{f.upstream.WithLabelValues(name)}
			rm.upstream.CompareAndSwap(nil, o)
		}
		o.o.Observe(s.UpstreamHeadAt.Sub(s.Start).Seconds())
	}
	if s.BytesIn > 0 {
		rm.reqBytes.Add(float64(s.BytesIn))
	}
	if s.BytesOut > 0 {
		rm.respBytes.Add(float64(s.BytesOut))
	}
	if s.Attempts > 0 {
		rm.attempts.Add(float64(s.Attempts))
	}
	if s.Err != nil {
		ph := phaseOf(s.Err)
		rm.errors[ph].get(f.errors, name, phases[ph]).Inc()
	}
}

// addRoute resolves the children of a route seen for the first time.
func (f *Filter) addRoute(name string) *routeMetrics {
	f.routesWrite.Lock()
	defer f.routesWrite.Unlock()
	old := *f.routes.Load()
	if rm := old[name]; rm != nil {
		return rm
	}
	rm := &routeMetrics{
		duration:  f.duration.WithLabelValues(name),
		reqBytes:  f.reqBytes.WithLabelValues(name),
		respBytes: f.respBytes.WithLabelValues(name),
		attempts:  f.attempts.WithLabelValues(name),
	}
	next := maps.Clone(old)
	next[name] = rm
	f.routes.Store(&next)
	return rm
}

func protoIndex(major, minor int) int {
	switch {
	case major == 2:
		return proto2
	case major == 3:
		return proto3
	case major == 1 && minor == 0:
		return proto10
	}
	// HTTP/1.1, and heads too broken to tell, which arrive over HTTP/1.x.
	return proto11
}

// phaseOf names the phase an error of the engine comes from.
func phaseOf(err error) int {
	if _, ok := errors.AsType[*http1.Error](err); ok {
		return phaseBadRequest
	}
	if _, ok := errors.AsType[*proxy.StatusError](err); ok {
		return phaseLocal
	}
	switch proxy.ErrorPhase(err) {
	case "client":
		return phaseClient
	case "connect":
		return phaseConnect
	case "write request":
		return phaseWriteRequest
	case "write body":
		return phaseWriteBody
	case "read response":
		return phaseReadResponse
	case "read body":
		return phaseReadBody
	case "exchange":
		return phaseExchange
	}
	return phaseOther
}
