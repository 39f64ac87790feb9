package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/internal/testutil"
)

// sample is one line of a scrape: a metric name, its labels and value.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var labelRE = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

// scrape fetches url and parses the Prometheus text format it serves.
func scrape(t testing.TB, url string) []sample {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("scrape %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("scrape %s: Content-Type %q, want the text format", url, ct)
	}
	var out []sample
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape %s: bad line %q", url, line)
		}
		s := sample{labels: map[string]string{}, value: v}
		series := line[:i]
		if j := strings.IndexByte(series, '{'); j >= 0 {
			s.name = series[:j]
			for _, m := range labelRE.FindAllStringSubmatch(series[j:], -1) {
				s.labels[m[1]] = m[2]
			}
		} else {
			s.name = series
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	return out
}

// lookup returns the value of the series of name with exactly the given
// labels, and whether there is one.
func lookup(samples []sample, name string, labels map[string]string) (float64, bool) {
next:
	for _, s := range samples {
		if s.name != name || len(s.labels) != len(labels) {
			continue
		}
		for k, v := range labels {
			if got, ok := s.labels[k]; !ok || got != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

// series formats a series for messages.
func series(name string, labels map[string]string) string {
	return fmt.Sprintf("%s%v", name, labels)
}

// waitForSample scrapes url until the series reaches want (counts are
// added once a request ends, which may be a moment after the client has
// read the response) and fails the test if it does not.
func waitForSample(t testing.TB, url, name string, labels map[string]string, want float64) []sample {
	t.Helper()
	var samples []sample
	ok := testutil.Eventually(10*time.Second, func() bool {
		samples = scrape(t, url)
		v, found := lookup(samples, name, labels)
		return found && v >= want
	})
	v, found := lookup(samples, name, labels)
	if !ok || v != want {
		t.Fatalf("%s = %v (present: %v), want %v", series(name, labels), v, found, want)
	}
	return samples
}

// TestMetricsConfig runs a reverse proxy listener, a forward proxy with
// users and metrics from one configuration, sends requests through both,
// and reads the counters from the metrics endpoint.
func TestMetricsConfig(t *testing.T) {
	o := namedOrigin(t, "origin")
	_, port, _ := net.SplitHostPort(o.addr())
	users := usersFile(t, "alice", "s3cret")
	cfg := forwardConfig(t, `
routes:
  - name: app
    match: {path_prefix: /app/}
    upstream: app
upstreams:
  app:
    peers: ["http://`+o.addr()+`"]
forward_proxies:
  - name: egress
    address: "`+forwardPlaceholder+`"
    users_file: "`+users+`"
    policy:
      allow_private: true
      connect_ports: [`+port+`]
metrics:
  address: "127.0.0.1:9090"
  path: /internal/metrics
`)
	if cfg.Metrics == nil || cfg.Metrics.Path != "/internal/metrics" {
		t.Fatalf("metrics section parsed as %+v", cfg.Metrics)
	}
	cfg.Metrics.Address = "127.0.0.1:0"
	w := testutil.StartWeirConfig(t, cfg, weir.Options{})
	addr := w.Srv.MetricsAddr()
	if addr == nil {
		t.Fatal("MetricsAddr is nil with a metrics section")
	}
	url := "http://" + addr.String() + "/internal/metrics"

	c := newClient(t)
	for range 3 {
		if code, body := get(t, c, w.URL("/app/page")); code != 200 || body != "origin" {
			t.Fatalf("GET /app/page: %d %q, want 200 \"origin\"", code, body)
		}
	}
	if code, _ := get(t, c, w.URL("/elsewhere")); code != 404 {
		t.Fatalf("GET /elsewhere: %d, want 404 (no route)", code)
	}
	fwd := w.Srv.ForwardAddrs()[0].String()
	target := "http://" + o.addr() + "/page"
	if out, _ := curl(t, "-x", "http://alice:s3cret@"+fwd, target); string(out) != "origin" {
		t.Fatalf("curl -x: got %q, want \"origin\"", out)
	}
	if out, _ := curl(t, "--socks5", fwd, "--proxy-user", "alice:s3cret", target); string(out) != "origin" {
		t.Fatalf("curl --socks5: got %q, want \"origin\"", out)
	}
	if out, _ := curl(t, "-x", "http://"+fwd, "-o", os.DevNull, "-w", "%{http_code}", target); string(out) != "407" {
		t.Fatalf("curl -x without credentials: status %s, want 407", out)
	}

	waitForSample(t, url, "weir_requests_total", map[string]string{"route": "app", "code_class": "2xx", "proto": "1.1"}, 3)
	waitForSample(t, url, "weir_requests_total", map[string]string{"route": "", "code_class": "4xx", "proto": "1.1"}, 1)
	waitForSample(t, url, "weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "http"}, 1)
	samples := waitForSample(t, url, "weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "tunnel"}, 1)

	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"weir_response_bytes_total", map[string]string{"route": "app"}, 3 * float64(len("origin"))},
		{"weir_upstream_attempts_total", map[string]string{"route": "app"}, 3},
		{"weir_request_duration_seconds_count", map[string]string{"route": "app"}, 3},
		{"weir_upstream_duration_seconds_count", map[string]string{"route": "app"}, 3},
		{"weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "alice", "kind": "udp"}, 0},
		{"weir_forward_users", map[string]string{"proxy": "egress"}, 1},
		{"weir_forward_users_omitted", map[string]string{"proxy": "egress"}, 0},
	} {
		if got, ok := lookup(samples, c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s = %v (present: %v), want %v", series(c.name, c.labels), got, ok, c.want)
		}
	}
	for _, dir := range []string{"up", "down"} {
		labels := map[string]string{"proxy": "egress", "user": "alice", "direction": dir}
		if got, ok := lookup(samples, "weir_forward_user_bytes_total", labels); !ok || got <= 0 {
			t.Errorf("%s = %v (present: %v), want more than 0", series("weir_forward_user_bytes_total", labels), got, ok)
		}
	}
	// The client without credentials was refused: it used nothing.
	if _, ok := lookup(samples, "weir_forward_user_requests_total", map[string]string{"proxy": "egress", "user": "", "kind": "http"}); ok {
		t.Errorf("a refused client has usage series: %+v", samples)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if _, ok := lookup(samples, name, map[string]string{}); !ok {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if _, ok := lookup(samples, "weir_build_info", map[string]string{"version": weir.Version}); !ok {
		t.Errorf("no weir_build_info{version=%q} in the scrape", weir.Version)
	}

	// A reload that keeps metrics keeps the counters; one that changes
	// them fails.
	same := *cfg
	if err := w.Srv.Reload(&same); err != nil {
		t.Fatalf("reload with the same metrics: %v", err)
	}
	get(t, c, w.URL("/app/page"))
	waitForSample(t, url, "weir_requests_total", map[string]string{"route": "app", "code_class": "2xx", "proto": "1.1"}, 4)
	changed := *cfg
	m := *cfg.Metrics
	m.Path = "/other"
	changed.Metrics = &m
	if err := w.Srv.Reload(&changed); err == nil || !strings.Contains(err.Error(), "metrics changed; restart Weir") {
		t.Errorf("reload with changed metrics: %v, want an error asking for a restart", err)
	}

	// Shutdown closes the metrics port too.
	w.Stop()
	if conn, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
		conn.Close()
		t.Error("the metrics port still accepts connections after shutdown")
	}
}

// TestMetricsOffByDefault: without the key there is no metrics port.
func TestMetricsOffByDefault(t *testing.T) {
	w := testutil.StartWeir(t, testutil.OneRoute("127.0.0.1:1", "", ""), weir.Options{})
	if a := w.Srv.MetricsAddr(); a != nil {
		t.Errorf("MetricsAddr = %v without a metrics section", a)
	}
	if r := w.Srv.MetricsRegistry(); r != nil {
		t.Errorf("MetricsRegistry = %v without a metrics section", r)
	}
}

// TestMetricsCLIReverseProxy: weir reverse-proxy --metrics ADDR.
func TestMetricsCLIReverseProxy(t *testing.T) {
	o := namedOrigin(t, "origin")
	from := testutil.FreePort(t)
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "reverse-proxy", "--from", from, "--to", o.peer(), "--access-log", "off", "--metrics", addr}
	})
	c := newClient(t)
	for range 2 {
		if code, body := get(t, c, "http://"+from+"/"); code != 200 || body != "origin" {
			t.Fatalf("GET through weir reverse-proxy: %d %q", code, body)
		}
	}
	waitForSample(t, "http://"+p.Addr+"/metrics", "weir_requests_total", map[string]string{"route": "default", "code_class": "2xx", "proto": "1.1"}, 2)
}

// TestMetricsCLIForwardProxy: weir forward-proxy --metrics ADDR.
func TestMetricsCLIForwardProxy(t *testing.T) {
	o := namedOrigin(t, "origin")
	listen := testutil.FreePort(t)
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", listen, "--allow-private", "--auth", "alice:s3cret",
			"--access-log", "off", "--metrics", addr}
	})
	if out, _ := curl(t, "-x", "http://alice:s3cret@"+listen, "http://"+o.addr()+"/"); string(out) != "origin" {
		t.Fatalf("curl -x: got %q, want \"origin\"", out)
	}
	samples := waitForSample(t, "http://"+p.Addr+"/metrics", "weir_forward_user_requests_total",
		map[string]string{"proxy": "default", "user": "alice", "kind": "http"}, 1)
	labels := map[string]string{"proxy": "default", "user": "alice", "direction": "down"}
	if got, ok := lookup(samples, "weir_forward_user_bytes_total", labels); !ok || got <= 0 {
		t.Errorf("%s = %v (present: %v), want more than 0", series("weir_forward_user_bytes_total", labels), got, ok)
	}
}
