// Package weir runs a Weir proxy: it compiles a configuration into an
// immutable runtime graph (routes, upstream groups, filters), owns the
// listeners, and handles the lifecycle: start, reload, drain, stop.
//
// Protocol details live below it, in packages proxy, http1 and upstream;
// library users who want their own filters build a proxy.Handler directly
// or pass Options.Filters here.
package weir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/netutil"

	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/filters/accesslog"
	"github.com/weirproxy/weir/filters/headers"
	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/observe"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/route"
	"github.com/weirproxy/weir/upstream"
)

// Version is the Weir release; set at build time with
// -ldflags "-X github.com/weirproxy/weir.Version=v1.2.3".
var Version = "v0.1.0-dev"

// Options are the parts of a running Weir that do not come from the
// configuration file.
type Options struct {
	// Logger receives Weir's own log (nil: slog.Default()).
	Logger *slog.Logger
	// AccessLog, when set, receives access lines instead of the
	// destination the configuration names.
	AccessLog io.Writer
	// Filters run for every request, before the built-in access log.
	// Each must implement at least one hook of package proxy.
	Filters []any
}

// Server is a running (or ready to run) Weir.
type Server struct {
	opts   Options
	log    *slog.Logger
	engine *proxy.Server

	mu        sync.Mutex
	cfg       *config.Config
	graph     *graph
	listeners []net.Listener
	serveErr  chan error
}

// graph is one compiled configuration and what it started.
type graph struct {
	handler *proxy.Handler
	groups  map[string]*upstream.Group
	cancel  context.CancelFunc // stops health checks
	access  *observe.LineWriter
	closeFn func() error // closes the access log file, if any
}

// New compiles cfg. It starts health checks but does not listen yet.
func New(cfg *config.Config, opts Options) (*Server, error) {
	s := &Server{opts: opts, log: opts.Logger, serveErr: make(chan error, 16)}
	if s.log == nil {
		s.log = slog.Default()
	}
	g, err := s.compile(cfg)
	if err != nil {
		return nil, err
	}
	s.cfg, s.graph = cfg, g
	s.engine = proxy.NewServer(g.handler)
	return s, nil
}

// compile turns a validated configuration into a runtime graph.
func (s *Server) compile(cfg *config.Config) (*graph, error) {
	ctx, cancel := context.WithCancel(context.Background())
	g := &graph{groups: map[string]*upstream.Group{}, cancel: cancel}
	fail := func(err error) (*graph, error) {
		g.close()
		return nil, err
	}
	for _, name := range cfg.UpstreamOrder {
		grp, err := s.compileGroup(ctx, cfg.Upstreams[name])
		if err != nil {
			return fail(err)
		}
		g.groups[name] = grp
	}
	var table route.Table[*proxy.Route]
	for i := range cfg.Routes {
		rc := &cfg.Routes[i]
		r := &proxy.Route{Name: rc.Name, Upstream: g.groups[rc.Upstream], SetHost: rc.SetHost}
		if r.Upstream == nil {
			return fail(fmt.Errorf("route %q: upstream %q is not defined", rc.Name, rc.Upstream))
		}
		if hf := headerFilter(rc); hf != nil {
			r.Chain = proxy.MustChain(hf)
		}
		spec := route.Spec{Hosts: rc.Match.Hosts, Path: rc.Match.Path, PathPrefix: rc.Match.PathPrefix,
			PathRegex: rc.Match.PathRegex, Methods: rc.Match.Methods, Headers: rc.Match.Headers}
		if err := table.Add(spec, r); err != nil {
			return fail(fmt.Errorf("route %q: %w", rc.Name, err))
		}
	}
	filters := append([]any(nil), s.opts.Filters...)
	if al, err := s.accessLog(cfg, g); err != nil {
		return fail(err)
	} else if al != nil {
		filters = append(filters, al)
	}
	chain, err := proxy.NewChain(filters...)
	if err != nil {
		return fail(err)
	}
	l := cfg.Limits
	h := &proxy.Handler{
		Limits: proxy.Limits{
			Parser:             http1.Limits{MaxRequestLine: l.MaxRequestLine, MaxHeaderBytes: l.MaxHeaderBytes, MaxHeaderFields: l.MaxHeaderFields},
			Chunk:              http1.ChunkLimits{MaxChunkLine: l.MaxChunkLine, MaxTrailerBytes: l.MaxTrailerBytes},
			HeaderReadTimeout:  l.HeaderReadTimeout,
			IdleTimeout:        l.IdleTimeout,
			BodyReadTimeout:    l.BodyReadTimeout,
			WriteTimeout:       l.WriteTimeout,
			MaxRequestsPerConn: l.MaxRequestsPerConn,
			MaxBodyBytes:       l.MaxBodyBytes,
		},
		Router: proxy.RouterFunc(func(ss *proxy.Session) *proxy.Route {
			r, _ := table.Match(&ss.Req)
			return r
		}),
		Chain:          chain,
		Via:            cfg.Proxy.Via,
		TrustForwarded: cfg.Proxy.TrustForwarded,
		ErrorLog:       s.log,
	}
	switch cfg.Proxy.ForwardedHeaders {
	case "forwarded":
		h.Forwarded = proxy.ForwardedRFC
	case "both":
		h.Forwarded = proxy.ForwardedBoth
	case "none":
		h.Forwarded = proxy.ForwardedNone
	default:
		h.Forwarded = proxy.ForwardedXFF
	}
	h.Prepare()
	g.handler = h
	return g, nil
}

func (s *Server) compileGroup(ctx context.Context, u *config.Upstream) (*upstream.Group, error) {
	maxIdle := u.Keepalive.MaxIdle
	if maxIdle == 0 {
		maxIdle = -1 // the configuration's 0 means no reuse; the pool's 0 means its default
	}
	po := upstream.PoolOptions{
		MaxIdle:        maxIdle,
		MaxPerPeer:     u.Keepalive.MaxPerPeer,
		IdleTimeout:    u.Keepalive.IdleTimeout,
		ConnectTimeout: u.Timeouts.Connect,
	}
	peers := make([]*upstream.Peer, len(u.Peers))
	for i, p := range u.Peers {
		peers[i] = upstream.NewPeer(p.Address, p.Weight, i, po)
	}
	bal, err := upstream.NewBalancer(u.Balancer, peers)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	g := &upstream.Group{
		Name: u.Name, Peers: peers, Balancer: bal,
		Timeouts: upstream.Timeouts{Connect: u.Timeouts.Connect, ResponseHeader: u.Timeouts.ResponseHeader,
			Idle: u.Timeouts.Idle, Request: u.Timeouts.Request},
		Retries:         u.Retries,
		PassiveMaxFails: u.Passive.MaxFails,
		PassiveEjectFor: u.Passive.EjectFor,
		ResponseLimits:  http1.Limits{MaxHeaderBytes: u.MaxResponseHeaderBytes, MaxHeaderFields: limits.MaxResponseHeaderFields},
	}
	switch kind, name, _ := strings.Cut(u.HashOn, ":"); kind {
	case "client_ip":
		g.HashOn.Kind = upstream.HashClientIP
	case "path":
		g.HashOn.Kind = upstream.HashPath
	case "header":
		g.HashOn = upstream.HashOn{Kind: upstream.HashHeader, Name: name}
	case "cookie":
		g.HashOn = upstream.HashOn{Kind: upstream.HashCookie, Name: name}
	}
	if hc := u.HealthCheck; hc != nil {
		upstream.StartHealthChecks(ctx, peers, upstream.HealthConfig{
			Type: hc.Type, Path: hc.Path, Host: hc.Host, Interval: hc.Interval, Timeout: hc.Timeout,
			Rise: hc.Rise, Fall: hc.Fall, ExpectStatus: hc.ExpectStatus,
		}, s.log.With("upstream", u.Name))
	}
	return g, nil
}

func headerFilter(rc *config.Route) *headers.Filter {
	if len(rc.AddRequestHeaders)+len(rc.AddResponseHeaders)+len(rc.RemoveRequestHeaders)+len(rc.RemoveResponseHeaders) == 0 {
		return nil
	}
	f := &headers.Filter{RemoveRequest: rc.RemoveRequestHeaders, RemoveResponse: rc.RemoveResponseHeaders}
	for k, v := range rc.AddRequestHeaders {
		f.SetRequest = append(f.SetRequest, headers.Field{Name: k, Value: v})
	}
	for k, v := range rc.AddResponseHeaders {
		f.SetResponse = append(f.SetResponse, headers.Field{Name: k, Value: v})
	}
	return f
}

// accessLog opens the access log the configuration names.
func (s *Server) accessLog(cfg *config.Config, g *graph) (proxy.Logger, error) {
	var w io.Writer
	switch dest := cfg.Log.Access; {
	case s.opts.AccessLog != nil:
		w = s.opts.AccessLog
	case dest == "off":
		return nil, nil
	case dest == "" || dest == "stdout":
		w = os.Stdout
	case dest == "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("access log: %w", err)
		}
		w, g.closeFn = f, f.Close
	}
	g.access = observe.NewLineWriter(w, 200*time.Millisecond)
	format := accesslog.Text
	if cfg.Log.Format == "json" {
		format = accesslog.JSON
	}
	return accesslog.New(g.access, format), nil
}

func (g *graph) close() {
	g.cancel()
	for _, grp := range g.groups {
		grp.Close()
	}
	if g.access != nil {
		g.access.Close()
	}
	if g.closeFn != nil {
		_ = g.closeFn()
	}
}

// Listen opens every configured listener. Call it before Serve; it is
// separate so that callers learn about a busy port before serving.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// No TCP keep-alive probes on client connections: idle_timeout closes
	// idle ones, and the four setsockopt calls per accepted connection
	// are a measurable share of a short connection's cost.
	lc := net.ListenConfig{KeepAlive: -1}
	for _, l := range s.cfg.Listeners {
		ln, err := lc.Listen(context.Background(), "tcp", l.Address)
		if err != nil {
			for _, o := range s.listeners {
				o.Close()
			}
			s.listeners = nil
			return fmt.Errorf("listener %q: %w", l.Name, err)
		}
		if s.cfg.Limits.MaxConnections > 0 {
			ln = netutil.LimitListener(ln, s.cfg.Limits.MaxConnections)
		}
		s.listeners = append(s.listeners, ln)
	}
	return nil
}

// Addrs returns the addresses Weir listens on (after Listen).
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, ln := range s.listeners {
		out[i] = ln.Addr()
	}
	return out
}

// Serve serves every listener until ctx is done, then drains for the
// configured grace period. It returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.listeners == nil {
		s.mu.Unlock()
		if err := s.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
	}
	lns := s.listeners
	s.mu.Unlock()
	for _, ln := range lns {
		s.log.Info("listening", "address", ln.Addr().String())
		go func() {
			if err := s.engine.Serve(ln); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				s.serveErr <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-s.serveErr:
		s.log.Error("listener failed", "err", err)
	}
	s.mu.Lock()
	grace := s.cfg.ShutdownGrace
	s.mu.Unlock()
	s.log.Info("draining", "grace", grace.String(), "connections", s.engine.ActiveConns())
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if serr := s.engine.Shutdown(sctx); serr != nil {
		s.log.Warn("grace period over; closed remaining connections", "err", serr)
	}
	s.mu.Lock()
	s.graph.close()
	s.mu.Unlock()
	s.log.Info("stopped")
	return err
}

// Reload compiles cfg and swaps it in atomically. Requests in flight
// finish on the graph they started with. Listener changes need a restart
// and are reported as an error; on any error the old graph keeps serving.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sameListeners(s.cfg.Listeners, cfg.Listeners) {
		return errors.New("reload: listeners changed; restart Weir to change listeners")
	}
	g, err := s.compile(cfg)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	old := s.graph
	s.engine.SetHandler(g.handler)
	s.cfg, s.graph = cfg, g
	// Health checks and idle connections of the old graph stop now; a
	// request still running on it returns its connection to a pool that
	// nobody reads, where the idle timeout closes it.
	old.cancel()
	for _, grp := range old.groups {
		grp.Close()
	}
	if old.access != nil {
		go func() {
			// Let requests still logging to it finish first.
			t := time.NewTimer(5 * time.Second)
			<-t.C
			old.access.Close()
			if old.closeFn != nil {
				_ = old.closeFn()
			}
		}()
	}
	return nil
}

func sameListeners(a, b []config.Listener) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Address != b[i].Address {
			return false
		}
	}
	return true
}

// Engine exposes the proxy engine, for tests and embedding.
func (s *Server) Engine() *proxy.Server { return s.engine }

// Group returns the compiled upstream group by name (nil if none).
func (s *Server) Group(name string) *upstream.Group {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.graph.groups[name]
}
