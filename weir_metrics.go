package weir

import (
	"context"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/filters/metrics"
)

// metricsDrain bounds the wait for scrapes in flight when Weir stops.
const metricsDrain = 5 * time.Second

// metricsState is what the metrics section started: one registry for the
// life of the Server, so that counters survive reloads.
type metricsState struct {
	reg      *prometheus.Registry
	filter   *metrics.Filter
	forward  *metrics.ForwardCollector
	endpoint *metrics.Endpoint // nil before Listen
}

func newMetrics(c *config.Metrics) (*metricsState, error) {
	m := &metricsState{reg: metrics.NewRegistry(Version), forward: metrics.NewForwardCollector(c.MaxForwardUsers)}
	var err error
	if m.filter, err = metrics.New(m.reg); err != nil {
		return nil, err
	}
	if err := m.reg.Register(m.forward); err != nil {
		return nil, err
	}
	return m, nil
}

// listen opens the metrics port and adds the forward proxies to the
// collector.
func (m *metricsState) listen(c *config.Metrics, fps []*forwardProxy, log *slog.Logger) error {
	for _, f := range fps {
		m.forward.Add(f.name, f.srv)
	}
	e, err := metrics.Listen(c.Address, c.Path, m.reg, log.With("metrics", c.Address))
	if err != nil {
		return err
	}
	if c.Pprof {
		e.ServePprof()
	}
	m.endpoint = e
	return nil
}

// shutdown lets scrapes in flight finish, briefly, and closes the port.
func (m *metricsState) shutdown() {
	if m.endpoint == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), metricsDrain)
	defer cancel()
	_ = m.endpoint.Shutdown(ctx)
	_ = m.endpoint.Close()
}

// MetricsAddr returns the address the metrics are served on (after
// Listen), or nil when the configuration has no metrics section.
func (s *Server) MetricsAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.metrics == nil || s.metrics.endpoint == nil {
		return nil
	}
	return s.metrics.endpoint.Addr()
}

// MetricsRegistry returns the registry the metrics endpoint serves, for
// embedders to add collectors of their own to; nil when the
// configuration has no metrics section.
func (s *Server) MetricsRegistry() *prometheus.Registry {
	if s.metrics == nil {
		return nil
	}
	return s.metrics.reg
}
