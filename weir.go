// Package weir runs a Weir proxy: it compiles a configuration into an
// immutable runtime graph (routes, upstream groups, filters), owns the
// listeners and the forward proxies (package forward), and handles the
// lifecycle: start, reload, drain, stop.
//
// Protocol details live below it, in packages proxy, http1 and upstream;
// library users who want their own filters build a proxy.Handler directly
// or pass Options.Filters here.
package weir

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/filters/accesslog"
	"github.com/weirproxy/weir/filters/headers"
	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/observe"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/route"
	"github.com/weirproxy/weir/tlsconf"
	"github.com/weirproxy/weir/tlsfp"
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
	// destinations the configuration names: the reverse proxy's and the
	// forward proxies'.
	AccessLog io.Writer
	// Filters run for every request, before the built-in access log.
	// Each must implement at least one hook of package proxy.
	Filters []any
	// NonBlockingFilters declares that Filters never block (no network
	// calls, no long-held locks), so listeners with engine: loop keep the
	// event-loop engine, which runs filters on its loop goroutines. Left
	// false with Filters set, every listener uses the goroutine engine.
	NonBlockingFilters bool
}

// Server is a running (or ready to run) Weir.
type Server struct {
	opts   Options
	log    *slog.Logger
	engine *proxy.Server

	mu        sync.Mutex
	cfg       *config.Config
	graph     *graph
	listeners []*listener
	forward   []*forwardProxy
	listened  bool // Listen succeeded
	serveErr  chan error

	// metrics is nil when the configuration has no metrics section.
	metrics *metricsState
}

// listener is one configured listener once open: its TCP socket, the
// options it is served with, and, with HTTP/3, its UDP socket.
type listener struct {
	name   string
	ln     net.Listener
	opts   *proxy.ListenerOptions
	pc     net.PacketConn // nil without HTTP/3
	closer func()         // stops certificate reloads or ACME renewals; nil without TLS
}

// close closes the sockets and stops what the listener started.
func (l *listener) close() {
	if l.ln != nil {
		l.ln.Close()
	}
	if l.pc != nil {
		l.pc.Close()
	}
	if l.closer != nil {
		l.closer()
	}
}

// acmeTimeout bounds the first issuance of ACME certificates at start.
const acmeTimeout = 5 * time.Minute

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
	if cfg.Metrics != nil {
		m, err := newMetrics(cfg.Metrics)
		if err != nil {
			return nil, err
		}
		s.metrics = m
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
		r := &proxy.Route{Name: rc.Name, Upstream: g.groups[rc.Upstream], SetHost: rc.SetHost, GRPCWeb: rc.GRPCWeb}
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
	if s.metrics != nil {
		filters = append(filters, s.metrics.filter)
	}
	if al, err := s.accessLog(cfg, g); err != nil {
		return fail(err)
	} else if al != nil {
		filters = append(filters, al)
	}
	chain, err := proxy.NewChain(filters...)
	if err != nil {
		return fail(err)
	}
	h := &proxy.Handler{
		Limits: handlerLimits(cfg.Limits),
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

// handlerLimits maps the limits section onto the engine's limits.
func handlerLimits(l config.Limits) proxy.Limits {
	return proxy.Limits{
		Parser:             http1.Limits{MaxRequestLine: l.MaxRequestLine, MaxHeaderBytes: l.MaxHeaderBytes, MaxHeaderFields: l.MaxHeaderFields},
		Chunk:              http1.ChunkLimits{MaxChunkLine: l.MaxChunkLine, MaxTrailerBytes: l.MaxTrailerBytes},
		HeaderReadTimeout:  l.HeaderReadTimeout,
		IdleTimeout:        l.IdleTimeout,
		BodyReadTimeout:    l.BodyReadTimeout,
		WriteTimeout:       l.WriteTimeout,
		MaxRequestsPerConn: l.MaxRequestsPerConn,
		MaxBodyBytes:       l.MaxBodyBytes,
	}
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
	clientTLS, err := s.upstreamTLS(u)
	if err != nil {
		return nil, err
	}
	peers := make([]*upstream.Peer, len(u.Peers))
	for i, p := range u.Peers {
		po := po
		if u.Scheme == "https" {
			po.TLS = tlsconf.ForHost(clientTLS, p.Address)
		}
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
	if u.Scheme == "h2c" || u.Scheme == "h2" {
		g.Proto = upstream.ProtoH2
		g.H2 = upstream.NewH2Transport(upstream.H2Options{
			TLS:               clientTLS, // nil for h2c
			ConnectTimeout:    u.Timeouts.Connect,
			IdleTimeout:       u.Keepalive.IdleTimeout,
			MaxHeaderListSize: uint32(u.MaxResponseHeaderBytes),
		})
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
			TLS: clientTLS, H2: g.H2, // nil, nil for http:// peers
		}, s.log.With("upstream", u.Name))
	}
	return g, nil
}

// upstreamTLS returns the TLS configuration toward the peers of u, or nil
// for cleartext peers.
func (s *Server) upstreamTLS(u *config.Upstream) (*tls.Config, error) {
	if u.Scheme != "https" && u.Scheme != "h2" {
		return nil, nil
	}
	var co tlsconf.ClientOptions
	if t := u.TLS; t != nil {
		co = tlsconf.ClientOptions{CAFile: t.CA, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify,
			CertFile: t.Cert, KeyFile: t.Key, MinVersion: t.MinVersion}
	}
	if u.Scheme == "h2" {
		co.ALPN = []string{tlsconf.ALPNHTTP2}
	}
	conf, err := tlsconf.NewClient(co)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", u.Name, err)
	}
	if co.InsecureSkipVerify {
		s.log.Warn("TLS certificate verification is off for this upstream: anyone on the path can pose as its peers; use tls.insecure_skip_verify only in tests",
			"upstream", u.Name)
	}
	return conf, nil
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

// Listen opens every configured listener: its TCP socket, its TLS
// certificates (obtaining them first when they come over ACME) and, with
// HTTP/3, its UDP socket on the same port; then every forward proxy: its
// users file and its port; then the metrics port. Call it before Serve;
// it is separate so that callers learn about a busy port before serving.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listened {
		return errors.New("weir: Listen called twice")
	}
	fail := func(err error) error {
		for _, o := range s.listeners {
			o.close()
		}
		for _, f := range s.forward {
			f.close()
		}
		s.listeners, s.forward = nil, nil
		return err
	}
	// No TCP keep-alive probes on client connections: idle_timeout closes
	// idle ones, and the four setsockopt calls per accepted connection
	// are a measurable share of a short connection's cost.
	lc := net.ListenConfig{KeepAlive: -1}
	for i := range s.cfg.Listeners {
		l, err := s.listen(&lc, &s.cfg.Listeners[i])
		if err != nil {
			return fail(fmt.Errorf("listener %q: %w", s.cfg.Listeners[i].Name, err))
		}
		s.listeners = append(s.listeners, l)
	}
	for i := range s.cfg.ForwardProxies {
		f, err := s.openForward(&lc, &s.cfg.ForwardProxies[i])
		if err != nil {
			return fail(fmt.Errorf("forward proxy %q: %w", s.cfg.ForwardProxies[i].Name, err))
		}
		s.forward = append(s.forward, f)
	}
	if s.metrics != nil {
		if err := s.metrics.listen(s.cfg.Metrics, s.forward, s.log); err != nil {
			return fail(fmt.Errorf("metrics: %w", err))
		}
	}
	s.listened = true
	return nil
}

// listen opens one listener.
func (s *Server) listen(lc *net.ListenConfig, c *config.Listener) (_ *listener, err error) {
	h := c.HTTP2
	l := &listener{name: c.Name, opts: &proxy.ListenerOptions{
		H2C:       h.H2C,
		EventLoop: c.Engine == config.EngineLoop && (len(s.opts.Filters) == 0 || s.opts.NonBlockingFilters),
		H2: proxy.H2Limits{
			MaxConcurrentStreams: uint32(h.MaxConcurrentStreams),
			MaxHeaderListSize:    uint32(h.MaxHeaderListSize),
			StreamWindow:         int32(h.StreamWindow),
			ConnWindow:           int32(h.ConnectionWindow),
			MaxReadFrameSize:     uint32(h.MaxFrameSize),
			IdleTimeout:          s.cfg.Limits.IdleTimeout,
			GlitchBudget:         h.GlitchBudget,
			GlitchRate:           h.GlitchRate,
		},
	}}
	defer func() {
		if err != nil {
			l.close()
		}
	}()
	if t := c.TLS; t != nil {
		if l.opts.TLS, l.closer, err = s.serverTLS(s.log.With("listener", c.Name), t); err != nil {
			return nil, err
		}
		if t.Fingerprint {
			l.opts.Fingerprint = tlsfp.Fingerprint
		}
	}
	if l.ln, err = lc.Listen(context.Background(), "tcp", c.Address); err != nil {
		return nil, err
	}
	if c.HTTP3.Enabled {
		// The same port number as the TCP socket, also when the
		// configuration asked for any free port (":0").
		host, _, _ := net.SplitHostPort(c.Address)
		port := strconv.Itoa(l.ln.Addr().(*net.TCPAddr).Port)
		if l.pc, err = lc.ListenPacket(context.Background(), "udp", net.JoinHostPort(host, port)); err != nil {
			return nil, fmt.Errorf("http3: %w", err)
		}
		l.opts.AltSvc = `h3=":` + port + `"; ma=86400`
	}
	l.opts.MaxConns = s.cfg.Limits.MaxConnections
	return l, nil
}

// serverTLS starts TLS termination for a listener or forward proxy,
// which log names: certificates from files, kept current by tlsconf, or
// obtained over ACME. The returned function stops the reloads or
// renewals.
func (s *Server) serverTLS(log *slog.Logger, t *config.ListenerTLS) (*tls.Config, func(), error) {
	if a := t.ACME; a != nil {
		ctx, cancel := context.WithTimeout(context.Background(), acmeTimeout)
		defer cancel()
		m, err := tlsconf.NewACME(ctx, tlsconf.ACMEOptions{
			Email: a.Email, CA: a.CA, Domains: a.Domains, StorageDir: a.Storage, CARoot: a.CARoot, Agree: a.Agree,
			ALPN: t.ALPN, MinVersion: t.MinVersion,
			OnEvent: func(event string, data map[string]any) {
				switch event {
				case "cert_obtained", "cert_renewed":
					log.Info("ACME certificate "+strings.TrimPrefix(event, "cert_"), "identifier", data["identifier"])
				case "cert_failed":
					log.Error("ACME certificate could not be obtained", "identifier", data["identifier"], "err", data["error"])
				}
			},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("acme: %w", err)
		}
		return m.TLSConfig(), m.Close, nil
	}
	opts := tlsconf.ServerOptions{
		Default:        t.DefaultCertificate,
		ClientAuth:     t.ClientAuth,
		ClientCAFile:   t.ClientCA,
		MinVersion:     t.MinVersion,
		ALPN:           t.ALPN,
		ReloadInterval: t.ReloadInterval,
	}
	if opts.ReloadInterval == 0 {
		opts.ReloadInterval = -1 // the configuration's 0 means never; tlsconf's 0 means its default
	}
	for _, c := range t.Certificates {
		opts.Certs = append(opts.Certs, tlsconf.CertFiles{CertFile: c.Cert, KeyFile: c.Key, Names: c.Names})
	}
	opts.OnReload = func(err error) {
		if err != nil {
			log.Error("certificate files changed but cannot be used; still serving the previous ones", "err", err)
			return
		}
		log.Info("certificates reloaded")
	}
	srv, err := tlsconf.NewServer(opts)
	if err != nil {
		return nil, nil, err
	}
	return srv.TLSConfig(), srv.Close, nil
}

// Addrs returns the TCP addresses Weir listens on (after Listen), one
// per listener in configuration order.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		out[i] = l.ln.Addr()
	}
	return out
}

// PacketAddrs returns the UDP addresses Weir serves HTTP/3 on (after
// Listen), one per listener in configuration order: nil for a listener
// without HTTP/3.
func (s *Server) PacketAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		if l.pc != nil {
			out[i] = l.pc.LocalAddr()
		}
	}
	return out
}

// Serve serves every listener and forward proxy until ctx is done, then
// drains them all for the configured grace period. It returns nil after
// a clean drain.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if !s.listened {
		s.mu.Unlock()
		if err := s.Listen(); err != nil {
			return err
		}
		s.mu.Lock()
	}
	lns, fps := s.listeners, s.forward
	var metricsPath string
	var pprofOn bool
	if s.metrics != nil {
		metricsPath, pprofOn = s.cfg.Metrics.Path, s.cfg.Metrics.Pprof
	}
	s.mu.Unlock()
	for _, l := range lns {
		attrs := []any{"listener", l.name, "address", l.ln.Addr().String(), "tls", l.opts.TLS != nil}
		if l.opts.TLS != nil {
			attrs = append(attrs, "alpn", l.opts.TLS.NextProtos)
		}
		if l.opts.H2C {
			attrs = append(attrs, "h2c", true)
		}
		if l.pc != nil {
			attrs = append(attrs, "http3", l.pc.LocalAddr().String())
		}
		s.log.Info("listening", attrs...)
		go func() {
			if err := s.engine.ServeListener(l.ln, l.opts); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				s.serveErr <- err
			}
		}()
		if l.pc != nil {
			go func() {
				if err := s.engine.ServeHTTP3(l.pc, l.opts.TLS, l.opts); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
					s.serveErr <- fmt.Errorf("http3 on %s: %w", l.pc.LocalAddr(), err)
				}
			}()
		}
	}
	s.serveForward(fps)
	if s.metrics != nil {
		s.log.Info("serving metrics", "address", s.metrics.endpoint.Addr().String(), "path", metricsPath, "pprof", pprofOn)
		go func() {
			if err := s.metrics.endpoint.Serve(); err != nil {
				s.serveErr <- fmt.Errorf("metrics: %w", err)
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
	forwardDone := make(chan struct{})
	go func() {
		defer close(forwardDone)
		s.drainForward(sctx, fps)
	}()
	if serr := s.engine.Shutdown(sctx); serr != nil {
		s.log.Warn("grace period over; closed remaining connections", "err", serr)
	}
	<-forwardDone
	if s.metrics != nil {
		s.metrics.shutdown()
	}
	s.mu.Lock()
	for _, l := range s.listeners {
		l.close()
	}
	s.graph.close()
	s.mu.Unlock()
	s.log.Info("stopped")
	return err
}

// Reload compiles cfg and swaps it in atomically. Requests in flight
// finish on the graph they started with. Listener changes (address, tls,
// http2, http3), forward proxy changes and metrics changes need a
// restart and are reported as an error; on any error the old graph keeps
// serving. Certificate files and users files need no reload: they are
// read again when they change; a successful reload also reads the users
// files at once. Metrics counters carry on across reloads.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !sameListeners(s.cfg, cfg) {
		return errors.New("reload: listeners changed (address, tls, http2, http3 or engine); restart Weir to change listeners")
	}
	if !sameForwardProxies(s.cfg, cfg) {
		return errors.New("reload: forward_proxies changed; restart Weir to change forward proxies (their users files reload by themselves)")
	}
	if !reflect.DeepEqual(s.cfg.Metrics, cfg.Metrics) {
		return errors.New("reload: metrics changed; restart Weir to change metrics")
	}
	g, err := s.compile(cfg)
	if err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	old := s.graph
	s.engine.SetHandler(g.handler)
	s.cfg, s.graph = cfg, g
	for _, f := range s.forward {
		f.reloadUsers()
	}
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

// sameListeners reports whether two configurations have the same
// listeners: the same addresses, TLS, HTTP/2 and HTTP/3 settings, in the
// same order. Names may differ, and so may an HTTP/2 header list size
// that follows limits.max_header_bytes in both: the new limit then
// applies to HTTP/1.1 at once and to HTTP/2 from the next start.
func sameListeners(a, b *config.Config) bool {
	return sameEach(a.Listeners, b.Listeners, func(x, y *config.Listener) {
		x.Name, y.Name = "", ""
		if x.HTTP2.MaxHeaderListSize == a.Limits.MaxHeaderBytes && y.HTTP2.MaxHeaderListSize == b.Limits.MaxHeaderBytes {
			x.HTTP2.MaxHeaderListSize, y.HTTP2.MaxHeaderListSize = 0, 0
		}
	})
}

// sameEach reports whether xs and ys are equal item by item once ignore
// has cleared, on copies, what may differ between the two.
func sameEach[T any](xs, ys []T, ignore func(x, y *T)) bool {
	if len(xs) != len(ys) {
		return false
	}
	for i := range xs {
		x, y := xs[i], ys[i]
		ignore(&x, &y)
		if !reflect.DeepEqual(x, y) {
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
