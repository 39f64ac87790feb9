package config

import (
	"math"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Metrics serves Prometheus metrics over HTTP on a port of their own,
// apart from the listeners (docs/metrics.md lists the metrics).
type Metrics struct {
	// Address is the "host:port" the metrics are served on (key address,
	// required), written like a listener's. It may not collide with a
	// listener's or a forward proxy's address. The metrics tell a lot
	// about the traffic: keep them on a loopback or private address.
	Address string

	// Path is where the metrics are served (key path; default
	// DefaultMetricsPath). It starts with "/".
	Path string

	// MaxForwardUsers bounds how many users of each forward proxy get
	// series of their own, those with the most bytes first (key
	// max_forward_users; default DefaultMaxForwardUsers).
	MaxForwardUsers int

	// Pprof also serves Go's profiler under /debug/pprof/ on the same
	// address (key pprof; default false).
	Pprof bool
}

// Defaults of the metrics section.
const (
	DefaultMetricsPath     = "/metrics"
	DefaultMaxForwardUsers = 1000
)

// metrics decodes the metrics section. It also returns the node of the
// address, for checkMetricsAddress.
func (d *decoder) metrics(e entry) (*Metrics, *yaml.Node) {
	m := &Metrics{Path: DefaultMetricsPath, MaxForwardUsers: DefaultMaxForwardUsers}
	var addrAt, pprofAt *yaml.Node
	f := d.mapping(e.v, "metrics", "in metrics", fields{
		"address": func(e entry) {
			s, ok := d.str(e.v, "metrics.address")
			if !ok {
				return
			}
			if _, _, msg := splitListenAddress(s); msg != "" {
				d.errorf(e.v, "invalid address %q for metrics: %s", clip(s), msg)
				return
			}
			m.Address, addrAt = s, e.v
		},
		"path": func(e entry) {
			s, ok := d.str(e.v, "metrics.path")
			if !ok {
				return
			}
			if msg := checkPath(s); msg != "" {
				d.errorf(e.v, "invalid metrics.path %q: %s", clip(s), msg)
				return
			}
			if strings.ContainsAny(s, "{}") {
				d.errorf(e.v, "invalid metrics.path %q: paths may not contain { or } (percent-encode them)", clip(s))
				return
			}
			m.Path = s
		},
		"max_forward_users": func(e entry) {
			d.intField(e.v, "metrics.max_forward_users", 1, math.MaxInt, &m.MaxForwardUsers)
		},
		"pprof": func(e entry) {
			if d.boolean(e.v, "metrics.pprof", &m.Pprof) {
				pprofAt = e.v
			}
		},
	})
	if e.v.Kind != yaml.MappingNode && !isNull(e.v) {
		return nil, nil // already reported
	}
	if m.Pprof && strings.HasPrefix(m.Path, "/debug/pprof") {
		d.errorf(pprofAt, "metrics.path %q is where pprof: true serves the profiler (/debug/pprof/); move the metrics elsewhere", clip(m.Path))
	}
	if _, ok := f["address"]; !ok {
		d.errorf(e.k, "metrics needs an address, like metrics: {address: \"127.0.0.1:9090\"}; leave the key out to turn metrics off")
	}
	return m, addrAt
}

// checkMetricsAddress reports a metrics address that collides with a
// listener's or a forward proxy's. at holds the address node of each
// forward proxy (nil when it has none); metricsAt is nil when there is
// nothing to check.
func (d *decoder) checkMetricsAddress(cfg *Config, listeners []bound, at []*yaml.Node, metricsAt *yaml.Node) {
	if cfg.Metrics == nil || metricsAt == nil {
		return
	}
	taken := slices.Clone(listeners)
	for i, fp := range cfg.ForwardProxies {
		if host, port, msg := splitListenAddress(fp.Address); msg == "" && at[i] != nil {
			taken = append(taken, bound{host: host, port: port, kind: "forward proxy", name: fp.Name, at: at[i]})
		}
	}
	host, port, _ := splitListenAddress(cfg.Metrics.Address)
	if c := collision("metrics", cfg.Metrics.Address, host, port, taken); c != "" {
		d.errorf(metricsAt, "%s", c)
	}
}
