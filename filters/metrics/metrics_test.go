package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/weirproxy/weir/forward"
	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/proxy"
)

// find returns the metric of family name whose labels include want, or
// nil.
func find(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) *dto.Metric {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return m
		}
	}
	return nil
}

// value returns the value of a counter or gauge, or -1 when the series
// does not exist.
func value(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := find(t, g, name, labels)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

// session builds a finished exchange as the engine hands it to Loggers.
func session(route string, status, major, minor int, dur time.Duration) *proxy.Session {
	s := &proxy.Session{Status: status, Attempts: 1, BytesIn: 10, BytesOut: 100}
	if route != "" {
		s.Route = &proxy.Route{Name: route}
	}
	s.Req.ProtoMajor, s.Req.ProtoMinor = major, minor
	s.Start = time.Unix(1000, 0)
	s.UpstreamHeadAt = s.Start.Add(dur / 2)
	s.End = s.Start.Add(dur)
	return s
}

func newFilter(t testing.TB) (*Filter, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	f, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	return f, reg
}

func TestMetricsFilterCounts(t *testing.T) {
	f, reg := newFilter(t)
	for range 3 {
		f.Log(session("api", 200, 1, 1, 20*time.Millisecond))
	}
	f.Log(session("api", 404, 2, 0, time.Millisecond))
	f.Log(session("api", 503, 3, 0, time.Millisecond))
	f.Log(session("web", 302, 1, 0, 2*time.Second))
	unrouted := session("", 404, 1, 1, 0)
	unrouted.UpstreamHeadAt, unrouted.Attempts, unrouted.BytesOut = time.Time{}, 0, 9
	f.Log(unrouted)

	for _, c := range []struct {
		route, class, proto string
		want                float64
	}{
		{"api", "2xx", "1.1", 3},
		{"api", "4xx", "2", 1},
		{"api", "5xx", "3", 1},
		{"web", "3xx", "1.0", 1},
		{"", "4xx", "1.1", 1},
		{"api", "5xx", "1.1", -1}, // never counted, never exported
	} {
		got := value(t, reg, "weir_requests_total", map[string]string{"route": c.route, "code_class": c.class, "proto": c.proto})
		if got != c.want {
			t.Errorf("weir_requests_total{route=%q,code_class=%q,proto=%q} = %v, want %v", c.route, c.class, c.proto, got, c.want)
		}
	}
	if got := value(t, reg, "weir_request_bytes_total", map[string]string{"route": "api"}); got != 50 {
		t.Errorf("request bytes of api = %v, want 50", got)
	}
	if got := value(t, reg, "weir_response_bytes_total", map[string]string{"route": "api"}); got != 500 {
		t.Errorf("response bytes of api = %v, want 500", got)
	}
	if got := value(t, reg, "weir_response_bytes_total", map[string]string{"route": ""}); got != 9 {
		t.Errorf("response bytes of unrouted requests = %v, want 9", got)
	}
	if got := value(t, reg, "weir_upstream_attempts_total", map[string]string{"route": "api"}); got != 5 {
		t.Errorf("attempts of api = %v, want 5", got)
	}
	h := find(t, reg, "weir_request_duration_seconds", map[string]string{"route": "api"}).GetHistogram()
	if h.GetSampleCount() != 5 || h.GetSampleSum() < 0.061 || h.GetSampleSum() > 0.063 {
		t.Errorf("api duration: count %d sum %v, want 5 and 0.062", h.GetSampleCount(), h.GetSampleSum())
	}
	web := find(t, reg, "weir_request_duration_seconds", map[string]string{"route": "web"}).GetHistogram()
	for _, b := range web.GetBucket() {
		if want := uint64(0); b.GetUpperBound() >= 2.5 {
			want = 1
			if b.GetCumulativeCount() != want {
				t.Errorf("web duration bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
			}
		} else if b.GetCumulativeCount() != want {
			t.Errorf("web duration bucket le=%v holds %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if up := find(t, reg, "weir_upstream_duration_seconds", map[string]string{"route": "api"}).GetHistogram(); up.GetSampleCount() != 5 {
		t.Errorf("api upstream duration count = %d, want 5", up.GetSampleCount())
	}
	if m := find(t, reg, "weir_upstream_duration_seconds", map[string]string{"route": ""}); m != nil {
		t.Errorf("unrouted requests got an upstream duration series: %v", m)
	}
}

func TestMetricsFilterErrorPhases(t *testing.T) {
	f, reg := newFilter(t)
	for _, err := range []error{
		&proxy.UpstreamError{Peer: "10.0.0.7:8080", Phase: "connect", Err: errors.New("connection refused")},
		&proxy.UpstreamError{Peer: "[::1]:8080", Phase: "connect", Err: errors.New("connection refused")},
		&proxy.UpstreamError{Peer: "10.0.0.7:8080", Phase: "read response", Err: errors.New("i/o timeout")},
		&proxy.UpstreamError{Peer: "10.0.0.7:8080", Phase: "write body", Err: errors.New("broken pipe")},
		&proxy.UpstreamError{Peer: "10.0.0.7:8080", Phase: "exchange", Err: errors.New("stream reset")},
		&proxy.ClientError{Err: errors.New("connection reset by peer")},
		fmt.Errorf("wrapped: %w", &http1.Error{Status: 400, Reason: "bad"}),
		proxy.Reject(403, "forbidden"),
		errors.New("something new"),
	} {
		s := session("api", 502, 1, 1, time.Millisecond)
		s.Err = err
		f.Log(s)
	}
	want := map[string]float64{
		"connect": 2, "read_response": 1, "write_body": 1, "exchange": 1, "client": 1,
		"bad_request": 1, "local": 1, "other": 1, "write_request": -1, "read_body": -1,
	}
	for phase, n := range want {
		if got := value(t, reg, "weir_errors_total", map[string]string{"route": "api", "phase": phase}); got != n {
			t.Errorf("weir_errors_total{phase=%q} = %v, want %v", phase, got, n)
		}
	}
}

// TestMetricsFilterConcurrent logs from many goroutines, for the race
// detector and the lazily resolved children.
func TestMetricsFilterConcurrent(t *testing.T) {
	f, reg := newFilter(t)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				f.Log(session(fmt.Sprint("r", (g+i)%5), 200+100*(i%4), 1, 1, time.Millisecond))
			}
		})
	}
	wg.Wait()
	var total float64
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "weir_requests_total" {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	if total != 1600 {
		t.Errorf("requests counted: %v, want 1600", total)
	}
}

func TestMetricsNewTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := New(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := New(reg); err == nil {
		t.Fatal("a second Filter registered on the same registry")
	}
}

// usageFunc adapts a map to UsageSource.
type usageFunc func() map[string]forward.Usage

func (f usageFunc) Usage() map[string]forward.Usage { return f() }

func TestMetricsForwardCollector(t *testing.T) {
	var mu sync.Mutex
	usage := map[string]forward.Usage{
		"alice": {Requests: 3, Tunnels: 2, Associations: 1, BytesIn: 100, BytesOut: 1000},
		"":      {Requests: 1, BytesIn: 5, BytesOut: 7},
	}
	c := NewForwardCollector(0)
	c.Add("egress", usageFunc(func() map[string]forward.Usage {
		mu.Lock()
		defer mu.Unlock()
		return usage
	}))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	check := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got := value(t, reg, name, labels); got != want {
			t.Errorf("%s%v = %v, want %v", name, labels, got, want)
		}
	}
	check("weir_forward_user_bytes_total", map[string]string{"proxy": "egress", "user": "alice", "direction": "up"}, 100)
	check("weir_forward_user_bytes_total", map[string]string{"proxy": "egress", "user": "alice", "direction": "down"}, 1000)
	check("weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "http"}, 3)
	check("weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "tunnel"}, 2)
	check("weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "udp"}, 1)
	check("weir_forward_user_bytes_total", map[string]string{"proxy": "egress", "user": "", "direction": "down"}, 7)
	check("weir_forward_bytes_total", map[string]string{"proxy": "egress", "direction": "up"}, 105)
	check("weir_forward_requests_total", map[string]string{"proxy": "egress", "kind": "http"}, 4)
	check("weir_forward_users", map[string]string{"proxy": "egress"}, 2)
	check("weir_forward_users_omitted", map[string]string{"proxy": "egress"}, 0)

	// Counters follow Usage at the next scrape.
	mu.Lock()
	usage = map[string]forward.Usage{"alice": {Requests: 4, BytesIn: 150, BytesOut: 1000}}
	mu.Unlock()
	check("weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "http"}, 4)
	check("weir_forward_user_bytes_total", map[string]string{"proxy": "egress", "user": "alice", "direction": "up"}, 150)
}

// TestMetricsForwardCollectorBound: past the bound, the users with the most
// bytes are exported, the totals still count everyone.
func TestMetricsForwardCollectorBound(t *testing.T) {
	usage := map[string]forward.Usage{}
	for i := range 50 {
		usage[fmt.Sprintf("10.0.0.%d", i)] = forward.Usage{Requests: 1, BytesIn: int64(i), BytesOut: int64(i)}
	}
	usage["bad\xffname"] = forward.Usage{BytesIn: 1000}
	c := NewForwardCollector(10)
	c.Add("open", usageFunc(func() map[string]forward.Usage { return usage }))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	users := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "weir_forward_user_bytes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "user" {
					users[lp.GetValue()] = true
				}
			}
		}
	}
	if len(users) != 10 {
		t.Fatalf("exported %d users, want 10: %v", len(users), users)
	}
	for _, want := range []string{"bad\uFFFDname", "10.0.0.49", "10.0.0.41"} {
		if !users[want] {
			t.Errorf("user %q, among the top by bytes, is missing: %v", want, users)
		}
	}
	if got := value(t, reg, "weir_forward_requests_total", map[string]string{"proxy": "open", "kind": "http"}); got != 50 {
		t.Errorf("total requests = %v, want 50", got)
	}
	if got := value(t, reg, "weir_forward_users_omitted", map[string]string{"proxy": "open"}); got != 41 {
		t.Errorf("omitted users = %v, want 41", got)
	}
}

func TestMetricsEndpoint(t *testing.T) {
	reg := NewRegistry("v9.9.9")
	f, err := New(reg)
	if err != nil {
		t.Fatal(err)
	}
	f.Log(session("api", 200, 1, 1, time.Millisecond))
	e, err := Listen("127.0.0.1:0", "/m", reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve() }()
	base := "http://" + e.Addr().String()
	resp, err := http.Get(base + "/m")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`weir_requests_total{code_class="2xx",proto="1.1",route="api"} 1`,
		`weir_build_info{version="v9.9.9"} 1`,
		"go_goroutines ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("scrape lacks %q:\n%s", want, body)
		}
	}
	if resp, err := http.Get(base + "/metrics"); err != nil || resp.StatusCode != 404 {
		t.Errorf("GET /metrics on an endpoint at /m: %v %v, want 404", resp, err)
	} else {
		resp.Body.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := e.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	_ = e.Close()
}

// BenchmarkLog measures Log on a known route; it should not allocate.
func BenchmarkLog(b *testing.B) {
	f, _ := newFilter(b)
	s := session("api", 200, 1, 1, 3*time.Millisecond)
	f.Log(s)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		f.Log(s)
	}
}

// BenchmarkLogParallel is BenchmarkLog from every core at once.
func BenchmarkLogParallel(b *testing.B) {
	f, _ := newFilter(b)
	f.Log(session("api", 200, 1, 1, 3*time.Millisecond))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s := session("api", 200, 1, 1, 3*time.Millisecond)
		for pb.Next() {
			f.Log(s)
		}
	})
}

func TestMetricsLogDoesNotAllocate(t *testing.T) {
	f, _ := newFilter(t)
	s := session("api", 200, 2, 0, 3*time.Millisecond)
	f.Log(s)
	if n := testing.AllocsPerRun(1000, func() { f.Log(s) }); n != 0 {
		t.Errorf("Log allocates %v times per request, want 0", n)
	}
}

// TestMetricsEndpointPprof: the profiler is served only when asked for,
// next to the metrics.
func TestMetricsEndpointPprof(t *testing.T) {
	reg := NewRegistry("v9.9.9")
	for _, on := range []bool{false, true} {
		e, err := Listen("127.0.0.1:0", "", reg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if on {
			e.ServePprof()
		}
		go e.Serve()
		base := "http://" + e.Addr().String()
		want := map[string]int{"/metrics": 200, "/debug/pprof/": 404, "/debug/pprof/heap?debug=1": 404, "/debug/pprof/profile?seconds=1": 404}
		if on {
			want = map[string]int{"/metrics": 200, "/debug/pprof/": 200, "/debug/pprof/heap?debug=1": 200, "/debug/pprof/profile?seconds=1": 200}
		}
		for path, code := range want {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != code {
				t.Errorf("pprof %v: GET %s: %d, want %d", on, path, resp.StatusCode, code)
			}
			if on && path == "/debug/pprof/heap?debug=1" && !strings.Contains(string(body), "heap profile") {
				t.Errorf("GET %s: not a heap profile: %.80q", path, body)
			}
		}
		_ = e.Close()
	}
}
