// Package proxy is Weir's engine: per connection a keep-alive loop, per
// request a Session that runs the phases (see the diagram in hooks.go),
// picks an upstream peer, and streams both bodies. Every built-in feature
// is a filter written against the same public hooks a library user gets.
package proxy

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/upstream"
)

// Limits bounds what one client connection may use. Zero fields take the
// defaults in package limits.
type Limits struct {
	Parser             http1.Limits
	Chunk              http1.ChunkLimits // request bodies' chunk framing
	HeaderReadTimeout  time.Duration
	IdleTimeout        time.Duration
	BodyReadTimeout    time.Duration
	WriteTimeout       time.Duration
	MaxRequestsPerConn int
	MaxBodyBytes       int64 // 0: no limit
}

func (l *Limits) fill() {
	d := http1.DefaultLimits()
	if l.Parser.MaxRequestLine == 0 {
		l.Parser.MaxRequestLine = d.MaxRequestLine
	}
	if l.Parser.MaxHeaderBytes == 0 {
		l.Parser.MaxHeaderBytes = d.MaxHeaderBytes
	}
	if l.Parser.MaxHeaderFields == 0 {
		l.Parser.MaxHeaderFields = d.MaxHeaderFields
	}
	setDur(&l.HeaderReadTimeout, limits.HeaderReadTimeout)
	setDur(&l.IdleTimeout, limits.IdleTimeout)
	setDur(&l.BodyReadTimeout, limits.BodyReadTimeout)
	setDur(&l.WriteTimeout, limits.WriteTimeout)
	if l.MaxRequestsPerConn == 0 {
		l.MaxRequestsPerConn = limits.MaxRequestsPerConn
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// ForwardedMode selects which forwarding headers Weir adds upstream.
type ForwardedMode uint8

// Forwarded header modes.
const (
	ForwardedXFF  ForwardedMode = iota // X-Forwarded-For, -Proto, -Host
	ForwardedRFC                       // RFC 7239 Forwarded
	ForwardedBoth                      // both of the above
	ForwardedNone                      // neither
)

// Route is where a matched request goes.
type Route struct {
	Name     string
	Upstream *upstream.Group
	// Chain holds the route's own filters (nil: none).
	Chain *Chain
	// SetHost, when not empty, replaces the Host sent upstream.
	SetHost string
	// GRPCWeb translates gRPC-Web requests (application/grpc-web and
	// application/grpc-web-text) to gRPC for the route's HTTP/2 peers,
	// and their responses back.
	GRPCWeb bool
}

// Router chooses the route for a request; nil means no route (404).
type Router interface {
	Route(s *Session) *Route
}

// RouterFunc adapts a function to Router.
type RouterFunc func(s *Session) *Route

// Route implements Router.
func (f RouterFunc) Route(s *Session) *Route { return f(s) }

// Handler is the immutable runtime graph one listener serves with. A
// reload builds a new Handler and swaps it in with Server.SetHandler;
// requests already running finish on the one they started with.
type Handler struct {
	Limits Limits
	Router Router
	// Chain holds filters that run for every request (nil: none).
	Chain *Chain
	// Forwarded selects the forwarding headers; Via adds "Via: 1.1 weir".
	Forwarded ForwardedMode
	Via       bool
	// TrustForwarded appends to an incoming X-Forwarded-For instead of
	// replacing it.
	TrustForwarded bool
	// ErrorLog receives engine errors (nil: slog.Default()).
	ErrorLog *slog.Logger
	// Connect, when set, takes CONNECT requests (a forward proxy's
	// tunnels) after the handler chain's RequestFilters ran, instead of
	// routing them. Without it, CONNECT is routed like any request.
	Connect ConnectHandler
}

// Prepare fills defaults. Server.SetHandler calls it.
func (h *Handler) Prepare() {
	h.Limits.fill()
	if h.ErrorLog == nil {
		h.ErrorLog = slog.Default()
	}
}

// Server serves HTTP/1.1 connections with the current Handler.
type Server struct {
	handler atomic.Pointer[Handler]

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	states    []*listenerState
	h3        []*http3.Server
	draining  atomic.Bool
	connWG    sync.WaitGroup
}

// NewServer returns a server using h.
func NewServer(h *Handler) *Server {
	s := &Server{listeners: map[net.Listener]struct{}{}, conns: map[*conn]struct{}{}}
	s.SetHandler(h)
	return s
}

// SetHandler swaps in a new runtime graph atomically.
func (s *Server) SetHandler(h *Handler) {
	h.Prepare()
	s.handler.Store(h)
}

// Handler returns the current runtime graph.
func (s *Server) Handler() *Handler { return s.handler.Load() }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts cleartext HTTP/1.1 connections on ln until it is closed
// or Shutdown is called.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListener(ln, nil) }

// ServeListener is Serve with options: TLS, HTTP/2, Alt-Svc.
func (s *Server) ServeListener(ln net.Listener, o *ListenerOptions) error {
	ls := newListenerState(o)
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.states = append(s.states, ls)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	if o != nil && o.EventLoop && loopSupported && o.TLS == nil && !o.H2C {
		if tl, ok := ln.(*net.TCPListener); ok {
			return s.serveLoops(tl, ls)
		}
	}
	var backoff time.Duration
	for {
		if ls.slots != nil {
			// At MaxConns, wait for a connection to close before taking
			// the next one from the backlog.
			ls.slots <- struct{}{}
		}
		nc, err := ln.Accept()
		if err != nil {
			ls.release()
			if s.draining.Load() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporaryAccept(err) {
				// Out of file descriptors and similar: back off, keep serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.Handler().ErrorLog.Warn("accept failed; retrying", "err", err, "retry_in", backoff)
				t := time.NewTimer(backoff)
				<-t.C
				continue
			}
			return err
		}
		backoff = 0
		c := newConn(s, nc, ls)
		s.mu.Lock()
		if s.draining.Load() {
			s.mu.Unlock()
			nc.Close()
			ls.release()
			return ErrServerClosed
		}
		s.conns[c] = struct{}{}
		s.connWG.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.ls.release()
	s.connWG.Done()
}

// release gives back the slot of a connection that closed (or of an
// accept that failed), when the listener bounds its connections.
func (ls *listenerState) release() {
	if ls.slots != nil {
		<-ls.slots
	}
}

// Shutdown drains: listeners close, idle connections close, and requests in
// flight finish (their connections close after the response). When ctx
// ends first, remaining connections are closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	for ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.wakeIfIdle()
	}
	// HTTP/2 connections get GOAWAY and end once their streams are done.
	s.mu.Lock()
	for _, ls := range s.states {
		ls.drainH2()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.shutdownH3(ctx)
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Draining reports whether Shutdown has begun.
func (s *Server) Draining() bool { return s.draining.Load() }

// ActiveConns returns the number of open client connections.
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
