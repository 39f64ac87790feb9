package forward

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/socks5"
)

// Defaults of Options. Each applies when its field is zero.
const (
	// DefaultListen is where a forward proxy listens when Options.Listen
	// is empty: the loopback interface, on the port HTTP proxies
	// traditionally use.
	DefaultListen = "127.0.0.1:3128"

	// DefaultHandshakeTimeout bounds the time from accepting a connection
	// to its first byte, and then the whole SOCKS5 handshake. HTTP
	// connections then follow the engine's own header read timeout.
	DefaultHandshakeTimeout = socks5.DefaultHandshakeTimeout

	// DefaultTunnelIdleTimeout ends a tunnel (CONNECT, SOCKS5 CONNECT)
	// through which no byte moved in either direction for this long.
	DefaultTunnelIdleTimeout = 10 * time.Minute

	// DefaultMaxDestinations bounds how many (destination, source address)
	// pairs keep a connection pool for absolute-form requests; past it
	// the one used longest ago is closed.
	DefaultMaxDestinations = 1024

	// DefaultMaxIdlePerDestination is how many idle keep-alive
	// connections are kept to one destination. Busy clients of one
	// destination need about as many as are in flight at once; fewer
	// means a new connection for the surplus on every burst.
	DefaultMaxIdlePerDestination = 128

	// DefaultDestinationIdle closes the pool of a destination no request
	// used for this long.
	DefaultDestinationIdle = 90 * time.Second
)

// Authenticator checks a user name and password. *proxyauth.Users is one.
// Check must be safe for concurrent use and should compare in constant
// time.
type Authenticator interface {
	Check(user, pass string) bool
}

// Options configure a forward proxy Server.
type Options struct {
	// Listen is the TCP address to listen on (default DefaultListen).
	// Ignored when Listener is set.
	Listen string
	// Listener, when set, is served instead of listening on Listen. The
	// Server closes it on Shutdown.
	Listener net.Listener

	// Policy says which destinations clients may reach. The zero value is
	// the safe default of package egress: no loopback, private,
	// link-local or other special-purpose address; tunnels to port 443
	// only.
	Policy egress.PolicyConfig

	// Auth checks credentials; nil means no authentication. A Server
	// with no Auth refuses to listen on a non-loopback address unless
	// AllowOpen is set.
	Auth Authenticator
	// AllowOpen lets a Server without Auth listen on a non-loopback
	// address. It logs a warning when it starts.
	AllowOpen bool

	// Sources picks the source address of outbound connections. With no
	// Addrs the kernel chooses.
	Sources egress.SourceConfig

	// Resolver looks destination names up. Nil means a caching resolver
	// of package resolver, configured by DNS.
	Resolver egress.Resolver

	// UDP lets SOCKS5 clients use UDP ASSOCIATE. Not with Upstream.
	UDP bool

	// SOCKS5Bind lets SOCKS5 clients use BIND (RFC 1928 section 4), for
	// protocols where the server connects back, like active-mode FTP:
	// Weir listens on an egress address (the picked source address, or
	// that of the interface that routes to DST.ADDR), answers with it,
	// accepts one connection from DST.ADDR within SOCKS5BindTimeout and
	// relays it like a CONNECT tunnel. DST.ADDR is checked by Policy as
	// a CONNECT destination's, except its port. When false, BIND is
	// answered with reply 0x07 (command not supported). Not with
	// Upstream.
	SOCKS5Bind bool

	// Upstream, when set, sends every outbound connection through
	// another proxy: "http://[user:pass@]host:port" (tunnels through
	// CONNECT, plain requests forwarded in absolute form) or
	// "socks5://[user:pass@]host:port" (everything through SOCKS5
	// CONNECT; "socks5h://" is the same). Destination names are sent to
	// that proxy, which resolves them: the policy checks ports, names
	// and address literals, and the next proxy's own rules decide about
	// the addresses names resolve to.
	Upstream string

	// Logger receives the server's own log (nil: slog.Default()).
	Logger *slog.Logger
	// AccessLog, when set, receives one line per HTTP request, CONNECT
	// tunnel, SOCKS5 connection (method=BIND for a BIND) and UDP
	// association.
	AccessLog *slog.Logger

	// Limits bound HTTP client connections (zero fields: the engine's
	// defaults, from package limits).
	Limits proxy.Limits

	// HandshakeTimeout: see DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
	// ConnectTimeout bounds one outbound connect, name resolution
	// included (default egress.DefaultConnectTimeout).
	ConnectTimeout time.Duration
	// TunnelIdleTimeout: see DefaultTunnelIdleTimeout. Negative means no
	// idle limit.
	TunnelIdleTimeout time.Duration
	// SOCKS5BindTimeout bounds a SOCKS5 BIND's wait for its incoming
	// connection (default DefaultSOCKS5BindTimeout).
	SOCKS5BindTimeout time.Duration
	// UDPIdleTimeout ends a UDP association that relayed nothing for this
	// long (default socks5.DefaultUDPIdleTimeout).
	UDPIdleTimeout time.Duration
	// MaxDestinations: see DefaultMaxDestinations.
	MaxDestinations int
	// MaxIdlePerDestination: see DefaultMaxIdlePerDestination.
	MaxIdlePerDestination int
	// DestinationIdle: see DefaultDestinationIdle.
	DestinationIdle time.Duration

	// DialControl, when set, is called with every outbound TCP socket
	// before it connects (as net.Dialer.Control): to set socket options
	// or, in tests, to count connection attempts.
	DialControl func(network, address string, c syscall.RawConn) error

	// TLS, when set, makes the port an HTTPS proxy as well: a connection
	// whose first byte starts a TLS handshake record (0x16) is served
	// over TLS with these certificates, while SOCKS5 and cleartext HTTP
	// keep working on the same port. Clients that negotiate HTTP/2
	// (ALPN "h2") open tunnels with HTTP/2 CONNECT (RFC 9113 8.5); the
	// others speak HTTP/1.1 inside TLS. When NextProtos is empty it is
	// set to "h2" and "http/1.1". The configuration is cloned.
	TLS *tls.Config

	// HTTP3 also serves MASQUE, CONNECT-UDP (RFC 9298) over HTTP/3, on
	// the UDP port with the same number as the TCP one (or on
	// PacketConn): clients relay UDP through Weir as HTTP datagrams,
	// with the same authentication, destination policy, source
	// addresses, per-user limits, counters and access log as the other
	// protocols. Needs TLS; not with Upstream.
	HTTP3 bool
	// PacketConn, when set with HTTP3, is the UDP socket HTTP/3 is served
	// on instead of one opened on the TCP port's number. The Server
	// closes it on Shutdown.
	PacketConn net.PacketConn

	// UserLimits bound what each user may use at once (zero fields: no
	// limit). Without Auth, each client IP address counts as one user.
	UserLimits UserLimits

	// DNS chooses the caching resolver built when Resolver is nil (zero
	// value: the nameservers of /etc/resolv.conf).
	DNS DNSOptions
}

// UserLimits bound each user's use of the proxy. A user is an
// authenticated user name, or a client IP address when the server has no
// Auth. Zero fields mean no limit.
type UserLimits struct {
	// MaxConns bounds a user's concurrent uses: CONNECT tunnels (over
	// HTTP/1.1 or HTTP/2 streams), plain HTTP requests in flight, SOCKS5
	// CONNECT tunnels and BINDs, SOCKS5 UDP associations and MASQUE
	// flows each count as one while they last; an idle kept-alive client
	// connection counts for nothing. One more is refused: HTTP answers 429 with
	// "Proxy-Status: weir; error=http_request_denied", SOCKS5 replies
	// 0x01 (general failure), MASQUE answers 429 like HTTP.
	MaxConns int

	// BytesPerSecond bounds a user's throughput in each direction
	// separately: at most this many bytes per second from the user's
	// clients toward destinations, and as many back, summed over all of
	// the user's tunnels and requests (one token bucket per direction,
	// shared by every flow of the user). The bucket holds 100 ms of
	// traffic and at least 64 KiB, so short bursts pass at full speed.
	// Tunnels (CONNECT, SOCKS5 CONNECT) are slowed to the rate; so are
	// plain HTTP response bodies, which are then sent chunked to
	// HTTP/1.1 clients; SOCKS5 UDP datagrams over the rate are dropped,
	// since UDP has no flow control to slow a sender down. Plain HTTP
	// request bodies and MASQUE flows are counted but not slowed.
	BytesPerSecond int64
}

func (o *Options) fill() {
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	setDur(&o.HandshakeTimeout, DefaultHandshakeTimeout)
	setDur(&o.ConnectTimeout, egress.DefaultConnectTimeout)
	setDur(&o.TunnelIdleTimeout, DefaultTunnelIdleTimeout)
	setDur(&o.UDPIdleTimeout, socks5.DefaultUDPIdleTimeout)
	setDur(&o.SOCKS5BindTimeout, DefaultSOCKS5BindTimeout)
	setDur(&o.DestinationIdle, DefaultDestinationIdle)
	if o.MaxDestinations <= 0 {
		o.MaxDestinations = DefaultMaxDestinations
	}
	if o.MaxIdlePerDestination == 0 {
		o.MaxIdlePerDestination = DefaultMaxIdlePerDestination
	}
}

func setDur(d *time.Duration, def time.Duration) {
	if *d == 0 {
		*d = def
	}
}

// OpenProxyError is New's refusal to run without authentication on an
// address other hosts can reach.
type OpenProxyError struct {
	Addr string
}

func (e *OpenProxyError) Error() string {
	return "refusing to run an open proxy on " + e.Addr + ": add users (--auth or --users) or --allow-open"
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = proxy.ErrServerClosed

// Server is a forward proxy. Create one with New, run it with Serve, stop
// it with Shutdown.
type Server struct {
	opts    Options
	log     *slog.Logger
	dialer  *egress.Dialer
	policy  *egress.Policy
	sources *egress.SourcePool // nil: the kernel chooses
	chain   *chain             // nil: connect directly

	ln     net.Listener
	httpLn *connListener
	tlsLn  *connListener // nil without TLS
	tls    *tls.Config
	pc     net.PacketConn // HTTP/3's socket; nil without HTTP3
	h3     *http3.Server
	engine *proxy.Server
	groups *groupCache
	usage  usageTable
	users  *userTable
	dns    string // which resolver backend, for the start log
	open   bool   // no authentication on a non-loopback address

	// ctx ends when Shutdown gives up waiting: it stops rate waits.
	ctx    context.Context
	cancel context.CancelFunc

	serving atomic.Bool

	mu      sync.Mutex
	conns   map[net.Conn]bool // accepted connections not handed to the engine; true once tunnelling
	closing bool
	wg      sync.WaitGroup
}

// New checks o, listens and builds the server. It fails with an
// *OpenProxyError for a server without Auth on a non-loopback address
// unless o.AllowOpen is set. On failure it closes o.Listener and
// o.PacketConn, if given.
func New(o Options) (*Server, error) {
	s, err := newServer(o)
	if err != nil {
		if o.Listener != nil {
			o.Listener.Close()
		}
		if o.PacketConn != nil {
			o.PacketConn.Close()
		}
	}
	return s, err
}

func newServer(o Options) (*Server, error) {
	o.fill()
	policy, err := egress.NewPolicy(o.Policy)
	if err != nil {
		return nil, fmt.Errorf("forward: policy: %w", err)
	}
	var sources *egress.SourcePool
	if len(o.Sources.Addrs) > 0 {
		if sources, err = egress.NewSourcePool(o.Sources); err != nil {
			return nil, fmt.Errorf("forward: source addresses: %w", err)
		}
	}
	var ch *chain
	if o.Upstream != "" {
		if ch, err = parseChain(o.Upstream); err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		if o.UDP || o.HTTP3 {
			return nil, errors.New("forward: UDP relaying cannot go through an upstream proxy")
		}
		if o.SOCKS5Bind {
			return nil, errors.New("forward: SOCKS5 BIND cannot go through an upstream proxy")
		}
	}
	if o.HTTP3 && o.TLS == nil {
		return nil, errors.New("forward: HTTP/3 needs TLS: give certificates")
	}
	if o.UserLimits.MaxConns < 0 || o.UserLimits.BytesPerSecond < 0 {
		return nil, errors.New("forward: negative user limit")
	}
	var tlsConf *tls.Config
	if o.TLS != nil {
		tlsConf = o.TLS.Clone()
		if len(tlsConf.NextProtos) == 0 {
			tlsConf.NextProtos = []string{"h2", "http/1.1"}
		}
	}
	dnsDesc := "custom"
	if o.Resolver == nil {
		r, what, err := newResolver(o.DNS)
		if err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		o.Resolver, dnsDesc = r, what
	}
	ln := o.Listener
	where := o.Listen
	var loopback bool
	if ln != nil {
		where = ln.Addr().String()
		loopback = isLoopbackAddr(ln.Addr())
	} else {
		loopback = isLoopbackListen(o.Listen)
	}
	if o.Auth == nil && !loopback && !o.AllowOpen {
		return nil, &OpenProxyError{Addr: where}
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", o.Listen); err != nil {
			return nil, fmt.Errorf("forward: %w", err)
		}
		if o.HTTP3 && o.PacketConn == nil {
			// The UDP port is bound here too, so that a failure closes the
			// TCP port this call opened.
			pc, err := listenUDPBeside(ln.Addr())
			if err != nil {
				ln.Close()
				return nil, fmt.Errorf("forward: HTTP/3: %w", err)
			}
			o.PacketConn = pc
		}
	}
	if o.HTTP3 && o.PacketConn == nil {
		pc, err := listenUDPBeside(ln.Addr())
		if err != nil {
			return nil, fmt.Errorf("forward: HTTP/3: %w", err)
		}
		o.PacketConn = pc
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		opts:    o,
		log:     o.Logger,
		sources: sources,
		policy:  policy,
		chain:   ch,
		ln:      ln,
		tls:     tlsConf,
		users:   newUserTable(o.UserLimits),
		dns:     dnsDesc,
		ctx:     ctx,
		cancel:  cancel,
		open:    o.Auth == nil && !loopback,
		conns:   map[net.Conn]bool{},
		dialer: &egress.Dialer{
			Policy:   policy,
			Resolver: o.Resolver,
			Timeout:  o.ConnectTimeout,
			Control:  o.DialControl,
		},
	}
	s.httpLn = newConnListener(ln.Addr())
	if tlsConf != nil {
		s.tlsLn = newConnListener(ln.Addr())
	}
	if o.HTTP3 {
		s.pc = o.PacketConn
		s.h3 = s.newHTTP3(tlsConf)
	}
	s.groups = newGroupCache(s, o.MaxDestinations, o.DestinationIdle)
	s.engine = proxy.NewServer(s.newHandler(policy))
	return s, nil
}

// listenUDPBeside opens the UDP socket with the address and port number
// of a TCP listener.
func listenUDPBeside(a net.Addr) (net.PacketConn, error) {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return nil, fmt.Errorf("cannot tell the port of %s", a)
	}
	return net.ListenUDP("udp", &net.UDPAddr{IP: ta.IP, Port: ta.Port, Zone: ta.Zone})
}

// isLoopbackListen reports whether a listen address only binds loopback:
// a loopback IP or "localhost". An empty host binds every interface.
func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func isLoopbackAddr(a net.Addr) bool {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().IsLoopback()
	}
	return isLoopbackListen(a.String())
}

// Addr returns the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve accepts connections until Shutdown or Close, then returns
// ErrServerClosed (or the listener's error if it failed for good).
func (s *Server) Serve() error {
	if !s.serving.CompareAndSwap(false, true) {
		return errors.New("forward: Serve called twice")
	}
	s.logStart()
	var fronts sync.WaitGroup
	fronts.Go(func() {
		if err := s.engine.Serve(s.httpLn); err != nil && !errors.Is(err, proxy.ErrServerClosed) && !s.isClosing() {
			s.log.Error("forward proxy: HTTP side stopped", "err", err)
		}
	})
	if s.tlsLn != nil {
		fronts.Go(func() {
			err := s.engine.ServeListener(s.tlsLn, &proxy.ListenerOptions{TLS: s.tls})
			if err != nil && !errors.Is(err, proxy.ErrServerClosed) && !s.isClosing() {
				s.log.Error("forward proxy: HTTPS side stopped", "err", err)
			}
		})
	}
	if s.h3 != nil {
		fronts.Go(func() {
			err := s.h3.Serve(s.pc)
			if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, quic.ErrServerClosed) && !s.isClosing() {
				s.log.Error("forward proxy: HTTP/3 side stopped", "err", err)
			}
		})
	}
	engineDone := make(chan struct{})
	go func() {
		fronts.Wait()
		close(engineDone)
	}()
	var backoff time.Duration
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if s.isClosing() {
				<-engineDone
				return ErrServerClosed
			}
			if isTemporaryAccept(err) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed; retrying", "err", err, "retry_in", backoff)
				t := time.NewTimer(backoff)
				<-t.C
				continue
			}
			s.closeFronts()
			<-engineDone
			return err
		}
		backoff = 0
		if !s.track(c) {
			c.Close()
			continue
		}
		go s.handleConn(c)
	}
}

// closeFronts stops the HTTP, HTTPS and HTTP/3 sides after the listener
// failed for good.
func (s *Server) closeFronts() {
	s.httpLn.Close()
	if s.tlsLn != nil {
		s.tlsLn.Close()
	}
	if s.h3 != nil {
		s.h3.Close()
		s.pc.Close()
	}
}

func (s *Server) logStart() {
	attrs := []any{
		"addr", s.ln.Addr().String(),
		"auth", s.opts.Auth != nil,
		"udp", s.opts.UDP,
		"socks5_bind", s.opts.SOCKS5Bind,
		"allow_private", s.opts.Policy.AllowPrivate,
		"tls", s.tls != nil,
		"dns", s.dns,
	}
	if s.pc != nil {
		attrs = append(attrs, "http3", s.pc.LocalAddr().String())
	}
	if l := s.opts.UserLimits; l.MaxConns > 0 || l.BytesPerSecond > 0 {
		attrs = append(attrs, "user_max_conns", l.MaxConns, "user_bytes_per_second", l.BytesPerSecond)
	}
	if s.sources != nil {
		mode := s.opts.Sources.Mode
		if mode == "" {
			mode = egress.ModeRoundRobin
		}
		attrs = append(attrs, "source_addrs", len(s.opts.Sources.Addrs), "source_mode", mode)
	}
	if s.chain != nil {
		attrs = append(attrs, "upstream_proxy", s.chain.display)
	}
	what := "forward proxy listening (HTTP and SOCKS5 on one port)"
	if s.tls != nil {
		what = "forward proxy listening (HTTP, HTTPS and SOCKS5 on one port)"
	}
	s.log.Info(what, attrs...)
	if s.open {
		s.log.Warn("WARNING: open proxy: no authentication on a non-loopback address; anyone who can reach " +
			s.ln.Addr().String() + " can use it")
	}
}

func isTemporaryAccept(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// track registers a connection the server owns until it is handed to the
// engine; false when the server is closing.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = false
	s.wg.Add(1)
	return true
}

// tunnelling marks a tracked connection as carrying a tunnel or UDP
// association, which Shutdown lets finish within its grace.
func (s *Server) tunnelling(c net.Conn) {
	if r, ok := c.(*replayConn); ok {
		c = r.Conn
	}
	s.mu.Lock()
	if _, ok := s.conns[c]; ok {
		s.conns[c] = true
	}
	s.mu.Unlock()
}

// done forgets a tracked connection; its goroutine ends.
func (s *Server) done(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// handleConn peeks at a new connection's first byte and serves it as
// SOCKS5 or hands it to the HTTP engine.
func (s *Server) handleConn(c net.Conn) {
	deadline := time.Now().Add(s.opts.HandshakeTimeout)
	_ = c.SetReadDeadline(deadline)
	first, pc, err := peekFirst(c)
	if err != nil {
		s.log.Debug("connection closed before its first byte", "client", c.RemoteAddr().String(), "err", err)
		c.Close()
		s.done(c)
		return
	}
	switch {
	case first == socks5.Version:
		s.serveSOCKS(pc, deadline)
		pc.Close()
		s.done(c)
		return
	case first == socks4Version:
		// A SOCKS4 client gets SOCKS4's "request rejected" rather than
		// silence, so it can tell its user what went wrong.
		_ = pc.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = pc.Write(socks4Rejected)
		s.log.Debug("SOCKS4 is not supported; use SOCKS5", "client", c.RemoteAddr().String())
		pc.Close()
		s.done(c)
		return
	case first == tlsHandshakeRecord && s.tlsLn != nil:
		// A TLS ClientHello: the engine terminates TLS and serves
		// HTTP/1.1 or HTTP/2 inside it.
		_ = pc.SetReadDeadline(time.Time{})
		s.done(c)
		if !s.tlsLn.deliver(pc) {
			pc.Close()
		}
		return
	case !httpStart[first]:
		// Not a request line (a TLS ClientHello without TLS configured,
		// noise): nothing to answer.
		s.log.Debug("neither HTTP nor SOCKS5; closing", "client", c.RemoteAddr().String(), "first_byte", first)
		pc.Close()
		s.done(c)
		return
	}
	_ = pc.SetReadDeadline(time.Time{})
	s.done(c)
	if !s.httpLn.deliver(pc) {
		pc.Close()
	}
}

// tlsHandshakeRecord is the content type of a TLS record carrying a
// handshake message (RFC 8446 5.1), the first byte of every ClientHello.
const tlsHandshakeRecord = 0x16

// Shutdown drains: the listener closes, connections that have not sent
// a request or finished a SOCKS5 handshake close, HTTP requests in flight
// finish, and tunnels run until they end. When ctx ends first, everything
// left is closed and ctx's error returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	var waiting []net.Conn
	for c, tunnel := range s.conns {
		if !tunnel {
			waiting = append(waiting, c)
		}
	}
	s.mu.Unlock()
	s.ln.Close()
	for _, c := range waiting {
		c.Close()
	}
	engineErr := make(chan error, 1)
	go func() { engineErr <- s.engine.Shutdown(ctx) }()
	h3Err := make(chan error, 1)
	go func() {
		if s.h3 == nil {
			h3Err <- nil
			return
		}
		err := s.h3.Shutdown(ctx)
		s.pc.Close()
		h3Err <- err
	}()
	stopWaits := context.AfterFunc(ctx, s.cancel)
	defer stopWaits()
	ownDone := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(ownDone)
	}()
	var err error
	select {
	case <-ownDone:
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		<-ownDone
		err = ctx.Err()
	}
	if e := <-engineErr; e != nil && err == nil {
		err = e
	}
	if e := <-h3Err; e != nil && err == nil {
		err = e
	}
	s.httpLn.Close()
	if s.tlsLn != nil {
		s.tlsLn.Close()
	}
	s.groups.close()
	s.cancel()
	return err
}

// Close stops the server at once, closing every connection.
func (s *Server) Close() error {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Shutdown(ctx)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// ActiveConns returns the number of open client connections: HTTP ones
// and those the server holds itself (SOCKS5, not yet identified).
func (s *Server) ActiveConns() int {
	s.mu.Lock()
	n := len(s.conns)
	s.mu.Unlock()
	return n + s.engine.ActiveConns()
}

const socks4Version = 4

// socks4Rejected is SOCKS4's reply "request rejected or failed" (VN 0,
// CD 91).
var socks4Rejected = []byte{0, 91, 0, 0, 0, 0, 0, 0}

// httpStart marks the bytes an HTTP/1 request may start with: a method's
// token characters (RFC 9110 5.6.2), or the empty line RFC 9112 2.2 lets a
// client send before a request.
var httpStart = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~\r\n" {
		t[c] = true
	}
	return t
}()
