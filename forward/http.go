package forward

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/proxy"
	"github.com/weirproxy/weir/proxyauth"
	"github.com/weirproxy/weir/upstream"
)

// Session values the HTTP side sets, under keys of this package.
type (
	identityKey struct{}
	destKey     struct{}
	sourceKey   struct{}
	remoteKey   struct{}
	slotKey     struct{} // *userState of a use counted against UserLimits
)

// identity is who a request is for: the user (authenticated when the
// server has Auth) and the session part of the user name.
type identity struct {
	user, session string
	authed        bool
}

// httpFront is the HTTP side: the request filter (authentication, target
// checks), the router of absolute-form requests, the CONNECT handler and
// the access logger. It implements proxy.RequestFilter, proxy.Router,
// proxy.ConnectHandler and proxy.Logger.
type httpFront struct {
	srv       *Server
	policy    *egress.Policy
	challenge *message.Header // the fields of a 407
	tooMany   *message.Header // the fields of a 429 (UserLimits.MaxConns)
}

func (s *Server) newHandler(policy *egress.Policy) *proxy.Handler {
	f := &httpFront{srv: s, policy: policy, challenge: &message.Header{}, tooMany: &message.Header{}}
	f.challenge.AddString("Proxy-Authenticate", proxyauth.DefaultChallenge)
	f.challenge.AddString("Content-Type", "text/plain; charset=utf-8")
	f.tooMany.AddString("Content-Type", "text/plain; charset=utf-8")
	f.tooMany.AddString("Proxy-Status", proxyStatus("http_request_denied", errUserConns.Error()))
	chain := proxy.MustChain(f)
	if s.opts.UserLimits.BytesPerSecond > 0 {
		chain = proxy.MustChain(f, bodyPacer{s})
	}
	return &proxy.Handler{
		Limits:    s.opts.Limits,
		Router:    f,
		Chain:     chain,
		Connect:   f,
		Forwarded: proxy.ForwardedNone, // a forward proxy does not tell destinations who its clients are
		ErrorLog:  newDestinationLog(s.log),
	}
}

var (
	bodyAuth      = []byte("407 Proxy Authentication Required\n")
	bodyTooMany   = []byte("429 Too Many Requests: " + errUserConns.Error() + "\n")
	errOriginForm = &proxy.StatusError{Status: 400, Msg: "this is a forward proxy: send absolute-form requests (GET http://host/path) or CONNECT"}
	errH2Form     = &proxy.StatusError{Status: 400, Msg: "this is a forward proxy: over HTTP/2 only CONNECT is served; send plain http:// requests over HTTP/1.1"}
	errHTTPS      = &proxy.StatusError{Status: 400, Msg: "use CONNECT for https:// URLs"}
	errBadTarget  = &proxy.StatusError{Status: 400, Msg: "invalid destination"}
)

// RequestFilter authenticates the request, removes its credentials, and
// checks an absolute-form target before it is routed.
func (f *httpFront) RequestFilter(s *proxy.Session) error {
	id, ok := f.srv.authenticate(s.Req.Header.Get("Proxy-Authorization"))
	if !ok {
		return s.Respond(407, f.challenge, bodyAuth)
	}
	s.Req.Header.Del("Proxy-Authorization")
	s.SetValue(identityKey{}, id)
	u, ok := f.srv.users.acquire(userKey(id, s.Client.Addr()))
	if !ok {
		s.Err = errUserConns
		return s.Respond(429, f.tooMany, bodyTooMany)
	}
	if u != nil {
		// Released by Log, which runs once for every request.
		s.SetValue(slotKey{}, u)
	}
	if s.Req.IsMethod("CONNECT") {
		return nil // checked by Connect
	}
	t := s.Req.Target
	switch {
	case len(t) >= 7 && message.EqualFold(t[:7], "http://"):
	case len(t) >= 8 && message.EqualFold(t[:8], "https://"):
		return errHTTPS
	case s.Req.ProtoMajor >= 2:
		// HTTP/2 requests carry a path, never an absolute URL.
		return errH2Form
	default:
		return errOriginForm
	}
	dest, host, port, ok := normalizeAuthority(s.Req.Authority, 80)
	if !ok {
		return errBadTarget
	}
	// The name or literal and the port are checked here, so that a
	// refusal carries Proxy-Status; the addresses a name resolves to are
	// checked when the connection is made.
	if err := f.policy.CheckPort(port, false); err != nil {
		return respondRefused(s, err)
	}
	if err := f.policy.CheckName(host); err != nil {
		return respondRefused(s, err)
	}
	s.SetValue(destKey{}, dest)
	return nil
}

// authenticate checks a Proxy-Authorization value (nil: none). Without
// Auth, any credentials only name the user and session for source
// selection.
func (s *Server) authenticate(v []byte) (identity, bool) {
	auth := s.opts.Auth
	if v == nil {
		return identity{}, auth == nil
	}
	name, pass, ok := proxyauth.ParseProxyAuthorization(v)
	if !ok {
		return identity{}, auth == nil
	}
	user, session := egress.SplitSession(name)
	if auth == nil {
		return identity{user: user, session: session}, true
	}
	if !auth.Check(user, pass) {
		return identity{}, false
	}
	return identity{user: user, session: session, authed: true}, true
}

// normalizeAuthority turns an authority ("Example.com", "[::1]:8080")
// into the destination key "example.com:80", with its host and port.
func normalizeAuthority(a []byte, defPort uint16) (dest, host string, port uint16, ok bool) {
	s := strings.ToLower(string(a))
	hasPort := false
	if i := strings.LastIndexByte(s, ':'); i >= 0 && !strings.Contains(s[i:], "]") {
		hasPort = true
	}
	if !hasPort {
		s = s + ":" + strconv.Itoa(int(defPort))
	}
	host, port, err := egress.SplitHostPort(s)
	if err != nil {
		return "", "", 0, false
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port))), host, port, true
}

// respondRefused answers a policy refusal with 403 and Proxy-Status.
func respondRefused(s *proxy.Session, err error) error {
	var refused *egress.Refused
	if !errors.As(err, &refused) {
		return err
	}
	s.Err = err
	var h message.Header
	h.AddString("Content-Type", "text/plain; charset=utf-8")
	h.AddString("Proxy-Status", proxyStatus("destination_ip_prohibited", refused.Reason))
	return s.Respond(403, &h, []byte("403 Forbidden: "+refused.Reason+"\n"))
}

// proxyStatus builds a Proxy-Status value (RFC 9209) naming Weir.
func proxyStatus(errType, details string) string {
	v := "weir; error=" + errType
	if details != "" {
		v += "; details=" + strconv.Quote(details)
	}
	return v
}

// Route implements proxy.Router for absolute-form requests: one upstream
// group per (destination, source address).
func (f *httpFront) Route(s *proxy.Session) *proxy.Route {
	dest, _ := s.Value(destKey{}).(string)
	if dest == "" {
		return nil
	}
	id, _ := s.Value(identityKey{}).(identity)
	src := f.srv.sources.Pick(id.user, id.session)
	if src.IsValid() {
		s.SetValue(sourceKey{}, src)
	}
	if ch := f.srv.chain; ch != nil && !ch.socks {
		dest = "" // one pool per source address toward the next proxy
	}
	return f.srv.groups.route(dest, src)
}

// Connect implements proxy.ConnectHandler: it checks and dials the
// target, answers 200, and relays bytes both ways until both sides are
// done.
func (f *httpFront) Connect(s *proxy.Session, t *proxy.Tunnel) error {
	srv := f.srv
	id, _ := s.Value(identityKey{}).(identity)
	dest := string(s.Req.Authority)
	if _, _, err := egress.SplitHostPort(dest); err != nil {
		return errBadTarget
	}
	src := srv.sources.Pick(id.user, id.session)
	if src.IsValid() {
		s.SetValue(sourceKey{}, src)
	}
	up, remote, err := srv.dialOut(bgCtx, dest, src, false)
	if err != nil {
		status, errType, details := classifyDialError(err)
		s.Err = err
		refuseConnect(t, status, errType, details)
		if status != 403 {
			srv.log.Debug("CONNECT failed", "client", s.Client, "dest", dest, "err", err)
		}
		return err
	}
	defer up.Close()
	if remote.IsValid() {
		s.SetValue(remoteKey{}, remote)
	}
	client, err := t.Accept(nil)
	if err != nil {
		s.Err = err
		return nil
	}
	u, _ := s.Value(slotKey{}).(*userState)
	in, out, err := relay(srv.ctx, client, nil, up, srv.opts.TunnelIdleTimeout, u)
	s.BytesIn, s.BytesOut = in, out
	if err != nil {
		s.Err = err
	}
	return nil
}

// classifyDialError maps a dial error to the status, the Proxy-Status
// error type (RFC 9209) and details safe to show the client.
func classifyDialError(err error) (status int, errType, details string) {
	var refused *egress.Refused
	var chainErr *ChainError
	switch {
	case errors.As(err, &refused):
		return 403, "destination_ip_prohibited", refused.Reason
	case errors.As(err, &chainErr):
		return 502, "destination_unavailable", chainErr.Error()
	case isDNSError(err) && isTimeout(err):
		return 504, "dns_timeout", "the destination's name could not be resolved in time"
	case isDNSError(err):
		return 502, "dns_error", "the destination's name could not be resolved"
	case isTimeout(err):
		return 504, "connection_timeout", "the destination did not answer in time"
	case isRefused(err):
		return 502, "connection_refused", "the destination refused the connection"
	}
	return 502, "destination_unavailable", "the destination could not be reached"
}

// refuseConnect answers a CONNECT that could not be carried out, with
// a Proxy-Status field (RFC 9209) saying why.
func refuseConnect(t *proxy.Tunnel, status int, errType, details string) {
	var hd message.Header
	hd.AddString("Content-Type", "text/plain; charset=utf-8")
	hd.AddString("Proxy-Status", proxyStatus(errType, details))
	body := strconv.Itoa(status) + " " + statusText(status) + ": " + details + "\n"
	_ = t.Refuse(status, &hd, []byte(body))
}

func statusText(status int) string {
	switch status {
	case 403:
		return "Forbidden"
	case 504:
		return "Gateway Timeout"
	}
	return "Bad Gateway"
}

// Log implements proxy.Logger: the end of the request's use of the
// user's limits, per-user counters and the access line.
func (f *httpFront) Log(s *proxy.Session) {
	if u, ok := s.Value(slotKey{}).(*userState); ok && u != nil {
		s.SetValue(slotKey{}, (*userState)(nil))
		u.release()
	}
	id, _ := s.Value(identityKey{}).(identity)
	kind := kindHTTP
	if s.Req.IsMethod("CONNECT") {
		kind = kindConnect
	}
	if s.Status != 407 {
		f.srv.usage.add(id, kind, s.BytesIn, s.BytesOut)
	}
	al := f.srv.opts.AccessLog
	if al == nil {
		return
	}
	attrs := make([]any, 0, 28)
	attrs = append(attrs,
		"proto", kind.String(),
		"client", s.Client.Addr().Unmap().String(),
		"user", id.user,
		"method", string(s.Req.Method),
		"host", string(s.Req.Authority),
	)
	if kind == kindHTTP {
		attrs = append(attrs, "path", string(s.Req.Path))
	}
	attrs = append(attrs, "status", s.Status, "bytes_in", s.BytesIn, "bytes_out", s.BytesOut)
	if src, ok := s.Value(sourceKey{}).(netip.Addr); ok {
		attrs = append(attrs, "source", src.String())
	}
	if remote, ok := s.Value(remoteKey{}).(netip.AddrPort); ok {
		attrs = append(attrs, "upstream", remote.String())
	} else if s.Peer != nil {
		attrs = append(attrs, "upstream", s.Peer.Addr)
	}
	attrs = append(attrs, "duration", s.Duration().Seconds())
	if s.Err != nil {
		attrs = append(attrs, "error", s.Err.Error())
	}
	al.Info("access", attrs...)
}

// newGroup builds the upstream group of one destination reached from one
// source address: a single peer whose connections go through dialOut, so
// a name is checked and resolved once per connection and only checked
// addresses are dialed. With an HTTP next proxy, dest is empty and the
// one peer is that proxy, which gets every request in absolute form.
func (s *Server) newGroup(dest string, src netip.Addr) *upstream.Group {
	var dial func(ctx context.Context, addr string) (net.Conn, error)
	if s.chain != nil && !s.chain.socks {
		dest = s.chain.addr
		dial = func(ctx context.Context, _ string) (net.Conn, error) {
			return s.dialChainProxy(ctx, src)
		}
	} else {
		dial = func(ctx context.Context, addr string) (net.Conn, error) {
			c, _, err := s.dialOut(ctx, addr, src, true)
			if err != nil {
				var refused *egress.Refused
				var chainErr *ChainError
				switch {
				case errors.As(err, &refused):
					return nil, &proxy.StatusError{Status: 403, Msg: refused.Reason}
				case errors.As(err, &chainErr):
					return nil, &proxy.StatusError{Status: 502, Msg: chainErr.Error()}
				}
				return nil, err
			}
			return c, nil
		}
	}
	peer := upstream.NewPeer(dest, 1, 0, upstream.PoolOptions{
		MaxIdle:        s.opts.MaxIdlePerDestination,
		IdleTimeout:    limits.PoolIdleTimeout,
		ConnectTimeout: s.opts.ConnectTimeout,
		Dial:           dial,
	})
	bal, err := upstream.NewBalancer(upstream.RoundRobin, []*upstream.Peer{peer})
	if err != nil {
		panic("forward: one peer must make a balancer: " + err.Error())
	}
	return &upstream.Group{
		Name:     "forward",
		Peers:    []*upstream.Peer{peer},
		Balancer: bal,
		Timeouts: upstream.Timeouts{
			Connect:        s.opts.ConnectTimeout,
			ResponseHeader: limits.ResponseHeaderTimeout,
			Idle:           limits.UpstreamIdleTimeout,
		},
		// One destination is one peer: there is nothing to retry on or
		// to eject it in favour of.
		Retries: 0,
	}
}

// bodyPacer slows plain HTTP request and response bodies to the user's
// rate (UserLimits.BytesPerSecond), each direction on its own bucket. It
// is in the chain only when a rate is set, since a response body filter
// makes the engine send bodies chunked to HTTP/1.1 clients.
type bodyPacer struct{ srv *Server }

// RequestBodyFilter implements proxy.RequestBodyFilter.
func (p bodyPacer) RequestBodyFilter(s *proxy.Session, chunk []byte, _ bool) error {
	u, _ := s.Value(slotKey{}).(*userState)
	return waitN(p.srv.ctx, u.limiter(true), len(chunk))
}

// ResponseBodyFilter implements proxy.ResponseBodyFilter.
func (p bodyPacer) ResponseBodyFilter(s *proxy.Session, chunk []byte, _ bool) ([]byte, error) {
	u, _ := s.Value(slotKey{}).(*userState)
	if err := waitN(p.srv.ctx, u.limiter(false), len(chunk)); err != nil {
		return nil, err
	}
	return chunk, nil
}
