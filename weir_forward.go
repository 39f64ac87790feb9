package weir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/weirproxy/weir/config"
	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/forward"
	"github.com/weirproxy/weir/proxyauth"
)

// forwardProxy is one configured forward proxy once its port is open.
type forwardProxy struct {
	name   string
	srv    *forward.Server
	log    *slog.Logger
	users  *proxyauth.Users // nil without a users file
	access io.Closer        // the access log file; nil otherwise
	tls    func()           // stops certificate reloads; nil without TLS
}

// close stops the forward proxy at once and releases what it holds.
func (f *forwardProxy) close() {
	if f.srv != nil {
		_ = f.srv.Close()
	}
	f.release()
}

// release stops the users file watcher and certificate reloads and
// closes the access log, once the server is stopped.
func (f *forwardProxy) release() {
	if f.tls != nil {
		f.tls()
	}
	if f.users != nil {
		_ = f.users.Close()
	}
	if f.access != nil {
		_ = f.access.Close()
	}
}

// reloadUsers reads the users file again, as a reload of the
// configuration asks.
func (f *forwardProxy) reloadUsers() {
	if f.users == nil {
		return
	}
	if err := f.users.Reload(); err != nil {
		f.log.Error("users file not reloaded; the previous users stay", "err", err)
		return
	}
	f.log.Info("users file reloaded", "users", f.users.Len())
}

// openForward opens one forward proxy: its users file, certificates,
// access log and TCP port (and, with HTTP/3, the UDP port of the same
// number, which package forward opens).
func (s *Server) openForward(lc *net.ListenConfig, c *config.ForwardProxy) (_ *forwardProxy, err error) {
	log := s.log.With("forward_proxy", c.Name)
	f := &forwardProxy{name: c.Name, log: log}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	o := forwardOptions(c, s.cfg)
	o.Logger = log
	if c.UsersFile != "" {
		if f.users, err = proxyauth.Load(c.UsersFile); err != nil {
			return nil, fmt.Errorf("users file: %w", err)
		}
		err = f.users.Watch(0, func(err error) {
			if err != nil {
				log.Error("users file not reloaded; the previous users stay", "err", err)
				return
			}
			log.Info("users file reloaded", "users", f.users.Len())
		})
		if err != nil {
			return nil, fmt.Errorf("users file: %w", err)
		}
		o.Auth = f.users
	}
	if o.AccessLog, f.access, err = s.forwardAccessLog(c.AccessLog, s.cfg.Log.Format); err != nil {
		return nil, err
	}
	if c.TLS != nil {
		if o.TLS, f.tls, err = s.serverTLS(log, c.TLS); err != nil {
			return nil, err
		}
	}
	ln, err := lc.Listen(context.Background(), "tcp", c.Address)
	if err != nil {
		return nil, err
	}
	o.Listener = ln // forward.New closes it if it fails
	if f.srv, err = forward.New(o); err != nil {
		return nil, err
	}
	return f, nil
}

// forwardOptions maps the settings of a forward proxy onto
// forward.Options; what needs opening (users file, certificates, access
// log, socket) is left to openForward.
func forwardOptions(c *config.ForwardProxy, cfg *config.Config) forward.Options {
	p := c.Policy
	o := forward.Options{
		Policy: egress.PolicyConfig{
			AllowPrivate:  p.AllowPrivate,
			AllowCIDRs:    p.AllowCIDRs,
			DenyCIDRs:     p.DenyCIDRs,
			AllowDomains:  p.AllowDomains,
			DenyDomains:   p.DenyDomains,
			ConnectPorts:  p.ConnectPorts,
			HTTPPorts:     p.HTTPPorts,
			UDPPorts:      p.UDPPorts,
			AllowAllPorts: p.AllowAllPorts,
		},
		AllowOpen:             c.AllowOpen,
		UDP:                   c.UDP,
		SOCKS5Bind:            c.SOCKS5Bind,
		HTTP3:                 c.HTTP3.Enabled,
		Upstream:              c.UpstreamProxy,
		UserLimits:            forward.UserLimits{MaxConns: c.UserLimits.MaxConns, BytesPerSecond: c.UserLimits.BytesPerSecond},
		DNS:                   forward.DNSOptions{Servers: c.DNS.Servers, DoH: c.DNS.DoH},
		Limits:                handlerLimits(cfg.Limits),
		HandshakeTimeout:      c.Timeouts.Handshake,
		ConnectTimeout:        c.Timeouts.Connect,
		TunnelIdleTimeout:     c.Timeouts.TunnelIdle,
		UDPIdleTimeout:        c.Timeouts.UDPIdle,
		MaxDestinations:       c.Keepalive.MaxDestinations,
		MaxIdlePerDestination: c.Keepalive.MaxIdle,
		DestinationIdle:       c.Keepalive.IdleTimeout,
	}
	if o.TunnelIdleTimeout == 0 {
		o.TunnelIdleTimeout = -1 // the configuration's 0 means no limit; forward's 0 means its default
	}
	if o.MaxIdlePerDestination == 0 {
		o.MaxIdlePerDestination = -1 // the configuration's 0 means no reuse; the pool's 0 means its default
	}
	if src := c.Sources; src != nil {
		o.Sources = egress.SourceConfig{Addrs: src.Addresses, Mode: src.Mode, StickyTTL: src.StickyTTL, MaxSessions: src.MaxSessions}
	}
	return o
}

// forwardAccessLog opens a forward proxy's access log: Options.AccessLog
// when set, else the destination the configuration names. The closer is
// that of a file, or nil.
func (s *Server) forwardAccessLog(dest, format string) (*slog.Logger, io.Closer, error) {
	var w io.Writer
	var c io.Closer
	switch {
	case s.opts.AccessLog != nil:
		w = s.opts.AccessLog
	case dest == "off":
		return nil, nil, nil
	case dest == "" || dest == "stdout":
		w = os.Stdout
	case dest == "stderr":
		w = os.Stderr
	default:
		f, err := os.OpenFile(dest, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("access log: %w", err)
		}
		w, c = f, f
	}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil)), c, nil
	}
	return slog.New(slog.NewTextHandler(w, nil)), c, nil
}

// serveForward serves the forward proxies; a failure other than their
// shutdown goes to serveErr.
func (s *Server) serveForward(fps []*forwardProxy) {
	for _, f := range fps {
		go func() {
			if err := f.srv.Serve(); err != nil && !errors.Is(err, forward.ErrServerClosed) {
				s.serveErr <- fmt.Errorf("forward proxy %q: %w", f.name, err)
			}
		}()
	}
}

// drainForward shuts the forward proxies down within ctx, all at once,
// and releases what they hold.
func (s *Server) drainForward(ctx context.Context, fps []*forwardProxy) {
	var wg sync.WaitGroup
	for _, f := range fps {
		wg.Go(func() {
			if err := f.srv.Shutdown(ctx); err != nil {
				f.log.Warn("grace period over; closed remaining connections", "err", err)
			}
			f.release()
		})
	}
	wg.Wait()
}

// ForwardAddrs returns the TCP addresses Weir's forward proxies listen on
// (after Listen), one per forward proxy in configuration order.
func (s *Server) ForwardAddrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, len(s.forward))
	for i, f := range s.forward {
		out[i] = f.srv.Addr()
	}
	return out
}

// ForwardProxy returns the running forward proxy of the given name (after
// Listen), or nil: for its usage counters, or for tests.
func (s *Server) ForwardProxy(name string) *forward.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.forward {
		if f.name == name {
			return f.srv
		}
	}
	return nil
}

// sameForwardProxies reports whether two configurations have the same
// forward proxies, in the same order. Names may differ, and so may an
// access log that follows log.access in both: the new destination then
// applies to the reverse proxy at once and to forward proxies from the
// next start.
func sameForwardProxies(a, b *config.Config) bool {
	return sameEach(a.ForwardProxies, b.ForwardProxies, func(x, y *config.ForwardProxy) {
		x.Name, y.Name = "", ""
		if x.AccessLog == a.Log.Access && y.AccessLog == b.Log.Access {
			x.AccessLog, y.AccessLog = "", ""
		}
	})
}
