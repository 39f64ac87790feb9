package metrics

import (
	"cmp"
	"slices"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirproxy/weir/forward"
)

// DefaultMaxForwardUsers is how many users of one forward proxy the
// per-user series cover when the collector is given no other bound.
const DefaultMaxForwardUsers = 1000

// UsageSource is what ForwardCollector reads: a *forward.Server.
type UsageSource interface {
	Usage() map[string]forward.Usage
}

// ForwardCollector exports the forward proxies' usage counters
// (forward.Server.Usage) as counters, read when Prometheus scrapes:
// nothing is counted twice and the proxies' hot paths are untouched.
//
// Users are bounded by the users file; a proxy without one counts
// everything under the user "". Should a proxy report more users than
// the bound (say, one per client address), the per-user series cover the
// ones with the most bytes, and the per-proxy totals still count
// everyone.
type ForwardCollector struct {
	max int

	mu      sync.Mutex
	sources []namedSource

	userBytes, userRequests, bytes, requests, users, omitted *prometheus.Desc
}

type namedSource struct {
	name string
	src  UsageSource
}

// NewForwardCollector returns a collector that exports at most maxUsers
// users per forward proxy (DefaultMaxForwardUsers when maxUsers is 0 or
// less). Add the proxies to it, then register it.
func NewForwardCollector(maxUsers int) *ForwardCollector {
	if maxUsers <= 0 {
		maxUsers = DefaultMaxForwardUsers
	}
	return &ForwardCollector{
		max: maxUsers,
		userBytes: prometheus.NewDesc("weir_forward_user_bytes_total",
			"Bytes one user moved through a forward proxy: direction up is client to destinations, down is destinations to client.",
			[]string{"proxy", "user", "direction"}, nil),
		userRequests: prometheus.NewDesc("weir_forward_user_requests_total",
			"What one user opened through a forward proxy: kind http (plain requests), tunnel (CONNECT and SOCKS5 CONNECT) or udp (SOCKS5 UDP associations and MASQUE flows).",
			[]string{"proxy", "user", "kind"}, nil),
		bytes: prometheus.NewDesc("weir_forward_bytes_total",
			"Bytes all users moved through a forward proxy, by direction.",
			[]string{"proxy", "direction"}, nil),
		requests: prometheus.NewDesc("weir_forward_requests_total",
			"What all users opened through a forward proxy, by kind.",
			[]string{"proxy", "kind"}, nil),
		users: prometheus.NewDesc("weir_forward_users",
			"Users that used a forward proxy since Weir started.",
			[]string{"proxy"}, nil),
		omitted: prometheus.NewDesc("weir_forward_users_omitted",
			"Users of a forward proxy left out of the per-user series by the bound on their number.",
			[]string{"proxy"}, nil),
	}
}

// Add makes the collector report src under the proxy label name.
func (c *ForwardCollector) Add(name string, src UsageSource) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sources = append(c.sources, namedSource{name, src})
}

// Describe implements prometheus.Collector.
func (c *ForwardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.userBytes, c.userRequests, c.bytes, c.requests, c.users, c.omitted} {
		ch <- d
	}
}

// userUsage is one user's counters, for sorting.
type userUsage struct {
	name string
	u    forward.Usage
}

// Collect implements prometheus.Collector.
func (c *ForwardCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	sources := slices.Clone(c.sources)
	c.mu.Unlock()
	for _, s := range sources {
		usage := s.src.Usage()
		all := make([]userUsage, 0, len(usage))
		var total forward.Usage
		for name, u := range usage {
			all = append(all, userUsage{name, u})
			total.Requests += u.Requests
			total.Tunnels += u.Tunnels
			total.Associations += u.Associations
			total.BytesIn += u.BytesIn
			total.BytesOut += u.BytesOut
		}
		kept := all
		if len(all) > c.max {
			slices.SortFunc(all, func(a, b userUsage) int {
				if c := cmp.Compare(b.u.BytesIn+b.u.BytesOut, a.u.BytesIn+a.u.BytesOut); c != 0 {
					return c
				}
				return strings.Compare(a.name, b.name)
			})
			kept = all[:c.max]
		}
		for _, uu := range kept {
			user := strings.ToValidUTF8(uu.name, "\uFFFD")
			c.emit(ch, c.userBytes, c.userRequests, uu.u, s.name, user)
		}
		c.emit(ch, c.bytes, c.requests, total, s.name)
		ch <- prometheus.MustNewConstMetric(c.users, prometheus.GaugeValue, float64(len(all)), s.name)
		ch <- prometheus.MustNewConstMetric(c.omitted, prometheus.GaugeValue, float64(len(all)-len(kept)), s.name)
	}
}

// emit sends the byte and request counters of u, labelled with labels
// and then the direction or kind.
func (c *ForwardCollector) emit(ch chan<- prometheus.Metric, bytes, requests *prometheus.Desc, u forward.Usage, labels ...string) {
	with := func(v string) []string { return append(slices.Clip(labels), v) }
	ch <- prometheus.MustNewConstMetric(bytes, prometheus.CounterValue, float64(u.BytesIn), with("up")...)
	ch <- prometheus.MustNewConstMetric(bytes, prometheus.CounterValue, float64(u.BytesOut), with("down")...)
	ch <- prometheus.MustNewConstMetric(requests, prometheus.CounterValue, float64(u.Requests), with("http")...)
	ch <- prometheus.MustNewConstMetric(requests, prometheus.CounterValue, float64(u.Tunnels), with("tunnel")...)
	ch <- prometheus.MustNewConstMetric(requests, prometheus.CounterValue, float64(u.Associations), with("udp")...)
}
