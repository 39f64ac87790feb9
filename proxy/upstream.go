package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/internal/rbuf"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/upstream"
)

// outcome is how one upstream attempt ended.
type outcome uint8

const (
	done       outcome = iota // response relayed (or a clean error sent)
	retryStale                // a pooled connection was dead before any byte; try a fresh one
	retryPeer                 // the peer failed before any response byte; another may serve
	failed                    // the exchange failed and was answered or aborted
)

// UpstreamError is an error tagged with the phase and peer, as it should
// read in logs: "upstream 10.0.0.7:8080: connect: connection refused".
type UpstreamError struct {
	Peer  string // the peer's address
	Phase string // connect, write request, write body, read response, read body, exchange
	Err   error
}

func (e *UpstreamError) Error() string {
	return "upstream " + e.Peer + ": " + e.Phase + ": " + e.Err.Error()
}

func (e *UpstreamError) Unwrap() error { return e.Err }

var (
	errNoPeer     = &StatusError{Status: 503, Msg: ""}
	errEarlyClose = errors.New("connection closed before the response head")
)

// proxy sends the request upstream, retrying on another peer where that is
// safe, and relays the response.
func (c *conn) proxy(h *Handler, s *Session) {
	g := s.Route.Upstream
	if g.Proto != upstream.ProtoHTTP1 {
		c.proxyGeneral(h, s)
		return
	}
	if s.Route.GRPCWeb {
		if _, ok := isGRPCWeb(&s.Req); ok {
			c.proxyGeneral(h, s)
			return
		}
	}
	// A body already fully buffered goes out with the head and can be
	// sent again on a retry; a streamed one cannot.
	req := &s.Req
	inline := c.bodyBuffered() && !c.expect100
	replayable := (req.ContentLength == 0 && !req.Chunked) || inline
	if !c.beforeAttempts(h, s, g, inline) {
		return
	}
	a := attempts{key: hashKey(g, s)}
	for {
		p := c.pick(h, g, &a)
		if p == nil {
			return
		}
		// Every reused connection is probed, replayable request or not:
		// bytes a peer sent unasked after its last response (a second
		// response to one request, or junk) would otherwise be read as
		// the response to this request, which may be another client's:
		// response queue poisoning (Kettle, "HTTP Desync Attacks"; RFC
		// 9112 9.3.2). A peer closing is caught by retryStale, but unasked
		// bytes look like a valid answer. The probe is one non-blocking
		// peek; adversarial/TestResponseSplittingAcrossClients covers it.
		up, err := p.Pool().Get(context.Background(), true)
		if err != nil {
			var se *StatusError
			if errors.As(err, &se) {
				// A dial hook's refusal (an egress policy): answered as
				// it says, not held against the peer.
				c.fail(h, se)
				return
			}
			if c.connectFailed(h, g, p, err) {
				continue
			}
			return
		}
		s.Reused = up.Reused
		p.Begin()
		res := c.exchange(h, s, g, up, inline, replayable)
		p.End()
		if !c.settle(h, g, p, res, &a) {
			return
		}
	}
}

// beforeAttempts does what precedes the first attempt of an HTTP/1.1
// exchange: the request deadline, the upstream head and its filters, and
// the request body filters on an inline body (filtered once; a retry
// sends the same, filtered bytes). false: the request was answered.
func (c *conn) beforeAttempts(h *Handler, s *Session, g *upstream.Group, inline bool) bool {
	if g.Timeouts.Request > 0 {
		c.reqDeadline = s.Start.Add(g.Timeouts.Request)
	}
	if !c.upstreamHead(h, s) {
		return false
	}
	if inline && hasRequestBodyFilter(h, s) {
		if err := filterRequestBody(h, s, c.in.Unread()[:s.Req.ContentLength], true); err != nil {
			c.fail(h, err)
			return false
		}
	}
	return true
}

// attempts is the retry state of one request: the balancer's key, the
// peers tried, and how many dead pooled connections were met.
type attempts struct {
	key   uint64
	tried uint64
	stale int
}

// pick chooses the peer of the next attempt and counts the attempt. nil:
// no peer is left, and the request was answered (503, or the last
// failure's 502/504).
func (c *conn) pick(h *Handler, g *upstream.Group, a *attempts) *upstream.Peer {
	s := &c.sess
	p := g.Balancer.Pick(a.key, a.tried)
	if p == nil {
		if s.Attempts == 0 {
			s.Err = errNoPeer
			c.writeError(h, 503, true)
		} else {
			c.upstreamFailed(h, s.Err)
		}
		return nil
	}
	a.tried |= 1 << uint(p.Index)
	s.Peer = p
	s.Attempts++
	return p
}

// settle acts on how an attempt against p ended (passive health, the
// answer to a failure) and reports whether another attempt follows.
func (c *conn) settle(h *Handler, g *upstream.Group, p *upstream.Peer, res outcome, a *attempts) bool {
	s := &c.sess
	switch res {
	case done:
		p.ReportSuccess()
	case retryStale:
		// The pooled connection had been closed by the peer; that says
		// nothing about the peer's health. Its other idle connections
		// are likely gone too (a restart): drop those, then try again.
		p.Pool().PruneClosed()
		a.stale++
		if a.stale <= 3 {
			a.tried &^= 1 << uint(p.Index)
			s.Attempts--
			return true
		}
		c.peerFailed(h, g, p)
		c.upstreamFailed(h, s.Err)
	case retryPeer:
		c.peerFailed(h, g, p)
		if s.Attempts <= g.Retries {
			return true
		}
		c.upstreamFailed(h, s.Err)
	case failed:
		c.peerFailed(h, g, p)
	}
	return false
}

// upstreamHead builds the upstream request head and runs the
// UpstreamRequestFilters on it; false: the request was answered.
func (c *conn) upstreamHead(h *Handler, s *Session) bool {
	buildUpstreamRequest(h, s)
	if err := s.Route.Chain.runUpstream(s, &s.UpstreamReq); err != nil {
		c.fail(h, err)
		return false
	}
	if err := h.Chain.runUpstream(s, &s.UpstreamReq); err != nil {
		c.fail(h, err)
		return false
	}
	return true
}

// connectFailed records a failure to connect to p and reports whether
// another attempt may follow; if not, the request was answered.
func (c *conn) connectFailed(h *Handler, g *upstream.Group, p *upstream.Peer, err error) bool {
	s := &c.sess
	s.Err = &UpstreamError{p.Addr, "connect", err}
	if !errors.Is(err, upstream.ErrPoolFull) {
		c.peerFailed(h, g, p)
	}
	if s.Attempts <= g.Retries {
		return true
	}
	c.upstreamFailed(h, s.Err)
	return false
}

// peerFailed counts a failure against the peer for passive health, and
// logs the moment it gets ejected.
func (c *conn) peerFailed(h *Handler, g *upstream.Group, p *upstream.Peer) {
	peerFailed(h, &c.sess, g, p)
}

// peerFailed counts a failure against p and logs its ejection; s.Err is
// the failure.
func peerFailed(h *Handler, s *Session, g *upstream.Group, p *upstream.Peer) {
	if p.ReportFailure(g.PassiveMaxFails, g.PassiveEjectFor) {
		h.ErrorLog.Warn("peer ejected after consecutive failures", "upstream", g.Name, "peer", p.Addr,
			"failures", g.PassiveMaxFails, "for", g.PassiveEjectFor.String(), "last_err", s.Err)
	}
}

// upstreamFailed answers 504 for timeouts and 502 otherwise.
func (c *conn) upstreamFailed(h *Handler, err error) {
	s := &c.sess
	s.Err = err
	if c.wroteHead {
		c.keepAlive = false
		return
	}
	status := 502
	if isTimeout(err) {
		status = 504
	}
	h.ErrorLog.Warn("upstream failed", "client", s.Client, "route", s.Route.Name, "status", status, "err", err)
	c.writeError(h, status, true)
}

// hopByHop lists fields that describe one connection, not the message
// (RFC 9110 7.6.1), plus the proxy-only ones.
var hopByHop = [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade", "Proxy-Authenticate", "Proxy-Authorization"}

// removeHopByHop deletes hop-by-hop fields and those named in Connection.
// Framing and Host can never be removed through Connection.
func removeHopByHop(hd *message.Header) {
	for {
		i := 0
		for i < len(hd.Fields) && !message.EqualFold(hd.Fields[i].Name, "Connection") {
			i++
		}
		if i == len(hd.Fields) {
			break
		}
		// The value aliases the read buffer, so it stays valid while
		// fields are removed around it.
		v := hd.Fields[i].Value
		hd.Fields = append(hd.Fields[:i], hd.Fields[i+1:]...)
		message.EachToken(v, func(tok []byte) bool {
			if !message.EqualFold(tok, "Host") && !message.EqualFold(tok, "Content-Length") &&
				!message.EqualFold(tok, "Transfer-Encoding") {
				hd.Del(message.B(tok))
			}
			return true
		})
	}
	hd.DelFunc(func(f *message.Field) bool {
		for _, n := range hopByHop {
			if message.EqualFold(f.Name, n) {
				return true
			}
		}
		return false
	})
}

// isUpgrade reports a request to switch protocols (WebSocket and the like).
// An h2c upgrade is never one: after a 101 the client would speak
// HTTP/2 straight to the origin through the tunnel, past Weir's routing
// and filters ("h2c smuggling"; RFC 9113 3.1 deprecates h2c upgrades).
// Its Upgrade field is then dropped as hop-by-hop.
func isUpgrade(req *message.Request) bool {
	return req.Header.Has("Upgrade") && req.Header.HasToken("Connection", "upgrade") &&
		!req.Header.HasToken("Upgrade", "h2c")
}

// buildUpstreamRequest derives the upstream head from the client's.
func buildUpstreamRequest(h *Handler, s *Session) {
	req, ur := &s.Req, &s.UpstreamReq
	upgrade := isUpgrade(req)
	ur.Method, ur.Target, ur.Path, ur.Authority = req.Method, req.Target, req.Path, req.Authority
	ur.Scheme, ur.ProtoMajor, ur.ProtoMinor = "http", 1, 1
	ur.ContentLength, ur.Chunked = req.ContentLength, req.Chunked
	ur.Header.CopyFrom(&req.Header)
	var upgradeProto []byte
	if upgrade {
		upgradeProto = req.Header.Get("Upgrade")
	}
	removeHopByHop(&ur.Header)
	ur.Header.Del("Expect") // Weir answers 100-continue itself
	if v := ur.Header.Get("Content-Length"); len(v) > 1 && v[0] == '0' {
		// RFC 9110 8.6 allows leading zeros ("007"), but a reader that
		// takes them for octal or rejects them would frame the body
		// differently from Weir: the origin gets the canonical value.
		start := len(s.scratch)
		s.scratch = http1.AppendInt(s.scratch, req.ContentLength)
		ur.Header.Set("Content-Length", s.scratch[start:len(s.scratch):len(s.scratch)])
	}
	if req.Chunked {
		ur.Header.AddString("Transfer-Encoding", "chunked")
	}
	if upgrade {
		ur.Header.Add(message.S("Upgrade"), upgradeProto)
		ur.Header.AddString("Connection", "Upgrade")
	}
	if t := req.Target; len(t) > 0 && t[0] != '/' && t[0] != '*' && !req.IsMethod("CONNECT") {
		// Absolute-form target: RFC 9112 3.2.2 has a proxy replace Host
		// with the target's authority, which is also what Weir routed on.
		ur.Header.Set("Host", req.Authority)
	}
	if s.Route.SetHost != "" {
		ur.Header.SetString("Host", s.Route.SetHost)
		ur.Authority = message.S(s.Route.SetHost)
	}
	addForwarded(h, s)
	if h.Via {
		ur.Header.AddString("Via", "1.1 weir")
	}
}

// addForwarded adds X-Forwarded-* and/or Forwarded as configured.
func addForwarded(h *Handler, s *Session) {
	ur := &s.UpstreamReq
	start := len(s.scratch)
	s.scratch = s.Client.Addr().Unmap().AppendTo(s.scratch)
	ip := s.scratch[start:len(s.scratch):len(s.scratch)]
	proto := s.Req.Scheme
	if h.Forwarded == ForwardedXFF || h.Forwarded == ForwardedBoth {
		if h.TrustForwarded && ur.Header.Has("X-Forwarded-For") {
			start := len(s.scratch)
			first := true
			for _, f := range ur.Header.Fields {
				if message.EqualFold(f.Name, "X-Forwarded-For") {
					if !first {
						s.scratch = append(s.scratch, ", "...)
					}
					s.scratch = append(s.scratch, f.Value...)
					first = false
				}
			}
			s.scratch = append(s.scratch, ", "...)
			s.scratch = append(s.scratch, ip...)
			ur.Header.Set("X-Forwarded-For", s.scratch[start:len(s.scratch):len(s.scratch)])
		} else {
			ur.Header.Set("X-Forwarded-For", ip)
		}
		ur.Header.SetString("X-Forwarded-Proto", proto)
		if s.Req.Authority != nil {
			ur.Header.Set("X-Forwarded-Host", s.Req.Authority)
		}
	}
	if h.Forwarded == ForwardedRFC || h.Forwarded == ForwardedBoth {
		start := len(s.scratch)
		s.scratch = append(s.scratch, "for="...)
		if s.Client.Addr().Unmap().Is6() {
			s.scratch = append(s.scratch, "\"["...)
			s.scratch = append(s.scratch, ip...)
			s.scratch = append(s.scratch, "]\""...)
		} else {
			s.scratch = append(s.scratch, ip...)
		}
		if s.Req.Authority != nil {
			s.scratch = append(s.scratch, ";host="...)
			s.scratch = appendForwardedValue(s.scratch, s.Req.Authority)
		}
		s.scratch = append(s.scratch, ";proto="...)
		s.scratch = append(s.scratch, proto...)
		v := s.scratch[start:len(s.scratch):len(s.scratch)]
		if h.TrustForwarded {
			ur.Header.Add(message.S("Forwarded"), v)
		} else {
			ur.Header.Set("Forwarded", v)
		}
	}
}

// appendForwardedValue appends v as an RFC 7239 value: as is when it is
// a token, else as a quoted-string. A host with a port or an IPv6 literal
// is not a token (":" and "[" are not tchars), so it must be quoted.
func appendForwardedValue(b, v []byte) []byte {
	token := len(v) > 0
	for _, ch := range v {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", ch) >= 0) {
			token = false
			break
		}
	}
	if token {
		return append(b, v...)
	}
	b = append(b, '"')
	for _, ch := range v {
		if ch == '"' || ch == '\\' {
			b = append(b, '\\')
		}
		b = append(b, ch)
	}
	return append(b, '"')
}

// hashKey computes the consistent-hash key the group asks for.
func hashKey(g *upstream.Group, s *Session) uint64 {
	switch g.HashOn.Kind {
	case upstream.HashClientIP:
		a := s.Client.Addr().Unmap().As16()
		return upstream.HashKey(a[:])
	case upstream.HashPath:
		return upstream.HashKey(s.Req.Path)
	case upstream.HashHeader:
		return upstream.HashKey(s.Req.Header.Get(g.HashOn.Name))
	case upstream.HashCookie:
		return upstream.HashKey(cookieValue(&s.Req.Header, g.HashOn.Name))
	}
	return 0
}

// cookieValue returns the value of cookie name in the Cookie fields.
func cookieValue(hd *message.Header, name string) []byte {
	for _, f := range hd.Fields {
		if !message.EqualFold(f.Name, "Cookie") {
			continue
		}
		v := f.Value
		for len(v) > 0 {
			var pair []byte
			if i := bytes.IndexByte(v, ';'); i >= 0 {
				pair, v = v[:i], v[i+1:]
			} else {
				pair, v = v, nil
			}
			pair = message.TrimOWS(pair)
			if eq := bytes.IndexByte(pair, '='); eq >= 0 && string(pair[:eq]) == name {
				return pair[eq+1:]
			}
		}
	}
	return nil
}

// exchange runs one attempt against one upstream connection.
func (c *conn) exchange(h *Handler, s *Session, g *upstream.Group, up *upstream.Conn, inline, replayable bool) outcome {
	req := &s.Req
	idle := g.Timeouts.Idle
	hasBody := req.ContentLength > 0 || req.Chunked

	c.requestBytes(s, inline)
	c.armUpWrite(up, idle)
	if _, err := up.Write(c.up); err != nil {
		up.Close()
		s.Err = &UpstreamError{s.Peer.Addr, "write request", err}
		return c.retryable(h, up.Reused, replayable, true)
	}
	if hasBody && !inline {
		if err := c.sendBody(h, s, up, idle); err != nil {
			up.Close()
			var ce *ClientError
			if errors.As(err, &ce) {
				s.Err = ce.Err
				c.keepAlive = false
				if isTimeout(ce.Err) {
					c.writeError(h, 408, false)
				} else if _, ok := ce.Err.(*http1.Error); ok {
					c.writeError(h, 400, false)
				} else if se, ok := ce.Err.(*StatusError); ok {
					// A chunked body over max_body_bytes: 413.
					c.writeLocalStatus(h, se.Status, se.Msg)
				}
				return done
			}
			s.Err = &UpstreamError{s.Peer.Addr, "write body", err}
			c.upstreamFailed(h, s.Err)
			return failed
		}
	}

	// Read the response head, skipping interim 1xx responses.
	// The response-head timeout is set exactly: a 504 must not come early.
	up.ReadDL = c.deadline(g.Timeouts.ResponseHeader)
	_ = up.SetReadDeadline(up.ReadDL)
	got := false
	for {
		err := parseResponseHead(&up.In, &g.ResponseLimits, &s.Resp)
		if err == nil {
			break
		}
		if err != http1.ErrIncomplete {
			up.Close()
			s.Err = &UpstreamError{s.Peer.Addr, "read response", err}
			c.upstreamFailed(h, s.Err)
			return failed
		}
		rn, rerr := up.In.Fill(up)
		if rn > 0 {
			got = true
			continue
		}
		up.Close()
		if rerr == nil || rerr == io.EOF {
			rerr = errEarlyClose
		}
		s.Err = &UpstreamError{s.Peer.Addr, "read response", rerr}
		if !got && !isTimeout(rerr) {
			return c.retryable(h, up.Reused, replayable, false)
		}
		c.upstreamFailed(h, s.Err)
		return failed
	}
	if inline {
		c.inlineBodySent()
	}
	s.UpstreamHeadAt = time.Now()
	return c.relayResponse(h, s, g, up)
}

// requestBytes puts in c.up what an attempt sends: the upstream head
// (with Host naming the peer if the client sent none) and the body
// buffered with it when inline.
func (c *conn) requestBytes(s *Session, inline bool) {
	hostOrPeer(s)
	c.up = http1.AppendRequestHead(c.up[:0], &s.UpstreamReq)
	if inline {
		c.up = append(c.up, c.in.Unread()[:s.Req.ContentLength]...)
	}
}

// hostOrPeer gives an upstream head that has no Host field
// the peer's address as Host.
func hostOrPeer(s *Session) {
	if !s.UpstreamReq.Header.Has("Host") {
		s.UpstreamReq.Header.AddString("Host", s.Peer.Addr)
	}
}

// inlineBodySent consumes a body that went out with the head, once the
// response head shows that the peer took it.
func (c *conn) inlineBodySent() {
	cl := c.sess.Req.ContentLength
	c.in.Consume(int(cl))
	c.bodyDone = true
	c.sess.BytesIn = cl
}

// parseResponseHead parses the response head buffered in in, skipping
// interim 1xx responses (but not 101); http1.ErrIncomplete: more bytes
// are needed.
func parseResponseHead(in *rbuf.Buffer, lim *http1.Limits, resp *message.Response) error {
	for {
		n, err := http1.ParseResponse(in.Unread(), lim, resp)
		if err != nil {
			return err
		}
		in.Consume(n)
		if resp.Status >= 100 && resp.Status < 200 && resp.Status != 101 {
			resp.Reset()
			continue
		}
		return nil
	}
}

// bodyBuffered reports whether the request has a Content-Length body of
// at most inlineBody bytes that is wholly in the read buffer: one that can
// go out with the head, and again on a retry.
func (c *conn) bodyBuffered() bool {
	req := &c.sess.Req
	return !req.Chunked && req.ContentLength > 0 && req.ContentLength <= inlineBody &&
		int64(c.in.Buffered()) >= req.ContentLength
}

// retryable decides between the retry kinds for a failure before any
// response byte arrived.
func (c *conn) retryable(h *Handler, reused, replayable, writeFailed bool) outcome {
	if !replayable {
		c.upstreamFailed(h, c.sess.Err)
		return failed
	}
	if reused {
		return retryStale
	}
	// A fresh connection that failed: the request may have been acted on
	// unless it never got out, so only idempotent requests go elsewhere.
	if writeFailed || c.sess.Req.Idempotent() {
		return retryPeer
	}
	c.upstreamFailed(h, c.sess.Err)
	return failed
}

// ClientError marks an error on the client side of an exchange (a
// reset, a timeout while its body arrived). It does not unwrap: a
// client's timeout must not read as a peer's.
type ClientError struct{ Err error }

func (e *ClientError) Error() string { return "client: " + e.Err.Error() }

// sendBody streams the request body to the upstream: Content-Length
// bodies as they are, chunked bodies decoded and encoded again so that
// only clean framing reaches the peer.
func (c *conn) sendBody(h *Handler, s *Session, up *upstream.Conn, idle time.Duration) error {
	req := &s.Req
	if c.expect100 && c.in.Buffered() == 0 {
		if err := c.write(h, []byte("HTTP/1.1 100 Continue\r\n\r\n")); err != nil {
			return &ClientError{err}
		}
	}
	max := h.Limits.MaxBodyBytes
	filter := hasRequestBodyFilter(h, s)
	if !req.Chunked {
		left := req.ContentLength
		for left > 0 {
			if c.in.Buffered() == 0 && left >= spliceMin && !filter {
				return c.spliceRequestBody(h, s, up, idle, left)
			}
			if c.in.Buffered() == 0 {
				if err := c.readClient(h); err != nil {
					return &ClientError{err}
				}
			}
			p := c.in.Unread()
			if int64(len(p)) > left {
				p = p[:left]
			}
			if filter {
				if err := filterRequestBody(h, s, p, int64(len(p)) == left); err != nil {
					return &ClientError{err}
				}
			}
			if err := c.bodyWriteDeadline(up, idle); err != nil {
				return err
			}
			if _, err := up.Write(p); err != nil {
				return err
			}
			c.in.Consume(len(p))
			left -= int64(len(p))
			s.BytesIn += int64(len(p))
		}
		c.bodyDone = true
		return nil
	}
	c.reqDec.Reset(h.Limits.Chunk)
	for !c.reqDec.Done() {
		data, n, err := c.reqDec.Decode(c.in.Unread())
		c.in.Consume(n)
		if err != nil && err != http1.ErrIncomplete {
			return &ClientError{err}
		}
		if len(data) > 0 {
			s.BytesIn += int64(len(data))
			if max > 0 && s.BytesIn > max {
				return &ClientError{errTooLarge}
			}
			if filter {
				if err := filterRequestBody(h, s, data, false); err != nil {
					return &ClientError{err}
				}
			}
			c.up = http1.AppendChunkHeader(c.up[:0], len(data))
			if err := c.bodyWriteDeadline(up, idle); err != nil {
				return err
			}
			c.nbuf = append(c.bufs[:0], c.up, data, crlf)
			if _, err := c.nbuf.WriteTo(up); err != nil {
				return err
			}
			continue
		}
		if n == 0 && !c.reqDec.Done() {
			if err := c.readClient(h); err != nil {
				return &ClientError{err}
			}
		}
	}
	if filter {
		if err := filterRequestBody(h, s, nil, true); err != nil {
			return &ClientError{err}
		}
	}
	c.up = http1.AppendLastChunk(c.up[:0], c.reqDec.Trailer())
	if err := c.bodyWriteDeadline(up, idle); err != nil {
		return err
	}
	if _, err := up.Write(c.up); err != nil {
		return err
	}
	c.bodyDone = true
	return nil
}

// bodyWriteDeadline sets the deadline for writing request body bytes to
// the peer. When the request's overall deadline (timeouts.request) has
// already passed, the body came too late from the client, not the peer:
// that is the client's error (408), and it must not count as a failure of
// the peer, or slow clients could get healthy peers ejected by passive
// health checking.
// spliceMin is the size of a body's remainder (what is left once the
// bytes read along with the head are sent) from which the kernel moves the
// bytes (splice) instead of the connection's 16 KiB buffer. It is not
// larger: part of a body always arrives with its head, so a threshold of
// 64 KiB would leave a 64 KiB upload to the buffer (BENCHMARKS.md).
const spliceMin = 16 << 10

// spliceRequestBody moves the rest of a large Content-Length request body
// from client to peer in the kernel (splice), in steps so the timeouts
// apply per step. Without two TCP connections it copies as usual.
func (c *conn) spliceRequestBody(h *Handler, s *Session, up *upstream.Conn, idle time.Duration, left int64) error {
	_, ok1 := c.nc.(*net.TCPConn)
	dst, ok2 := up.Conn.(*net.TCPConn)
	lr := &io.LimitedReader{R: c.nc}
	for left > 0 {
		if err := c.bodyWriteDeadline(up, idle); err != nil {
			return err
		}
		c.armRead(h.Limits.BodyReadTimeout)
		step := min(left, 4<<20)
		lr.N = step
		var n int64
		var err error
		if ok1 && ok2 {
			n, err = dst.ReadFrom(lr)
		} else {
			n, err = io.Copy(up.Conn, lr)
		}
		left -= n
		s.BytesIn += n
		if err != nil {
			// EPIPE can only come from writing to the peer; anything else
			// (a reset, a timeout) is taken as the client's doing.
			if errors.Is(err, syscall.EPIPE) {
				return err
			}
			return &ClientError{err}
		}
		if n < step {
			return &ClientError{io.ErrUnexpectedEOF}
		}
	}
	c.bodyDone = true
	return nil
}

func (c *conn) bodyWriteDeadline(up *upstream.Conn, idle time.Duration) error {
	if !c.reqDeadline.IsZero() && !time.Now().Before(c.reqDeadline) {
		return &ClientError{context.DeadlineExceeded}
	}
	c.armUpWrite(up, idle)
	return nil
}

var crlf = []byte("\r\n")

// relayResponse sends the response head and streams its body.
func (c *conn) relayResponse(h *Handler, s *Session, g *upstream.Group, up *upstream.Conn) outcome {
	resp := &s.Resp
	req := &s.Req
	if resp.Status == 101 {
		if !isUpgrade(req) {
			up.Close()
			s.Err = &UpstreamError{s.Peer.Addr, "read response", errors.New("101 without an upgrade request")}
			c.upstreamFailed(h, s.Err)
			return failed
		}
		return c.tunnel(h, s, up)
	}
	pl, ok := c.responseHead(h, s)
	if !ok {
		up.Close()
		return done
	}
	return c.relayBody(h, s, g, up, pl)
}

// respPlan is how a response's body goes to the client, decided with its
// head.
type respPlan struct {
	mode       http1.BodyMode
	length     int64
	filtered   bool
	chunkOut   bool
	upReusable bool
}

// responseHead runs the ResponseFilters and builds the client's response
// head in c.out. false: a filter failed and the request was answered.
func (c *conn) responseHead(h *Handler, s *Session) (respPlan, bool) {
	resp := &s.Resp
	req := &s.Req
	if err := s.Route.Chain.runResponse(s, resp); err != nil {
		c.fail(h, err)
		return respPlan{}, false
	}
	if err := h.Chain.runResponse(s, resp); err != nil {
		c.fail(h, err)
		return respPlan{}, false
	}
	mode, length := http1.ResponseBodyMode(req.Method, resp)
	upReusable := !resp.Close && mode != http1.BodyUntilClose
	if req.IsMethod("CONNECT") && resp.Status < 300 {
		// RFC 9110 9.3.6: after a 2xx to CONNECT the peer treats the
		// connection as a tunnel to the CONNECT target; a request pooled
		// onto it (perhaps another client's) would go into that tunnel.
		upReusable = false
	}
	filtered := (s.Route.Chain.hasBody() || h.Chain.hasBody()) && mode != http1.BodyNone
	client11 := req.ProtoMinor >= 1

	removeHopByHop(&resp.Header)
	if mode == http1.BodyLength && !filtered {
		// The parser accepts a repeated identical Content-Length and
		// leading zeros from a peer (RFC 9110 8.6); the client gets one
		// field with the canonical value, so that no reader downstream
		// (a cache, another proxy) can frame the body differently.
		if v := resp.Header.Get("Content-Length"); len(v) > 1 && v[0] == '0' || resp.Header.Count("Content-Length") > 1 {
			start := len(s.scratch)
			s.scratch = http1.AppendInt(s.scratch, length)
			resp.Header.Set("Content-Length", s.scratch[start:len(s.scratch):len(s.scratch)])
		}
	}
	// Decide the framing toward the client.
	chunkOut := false
	if mode == http1.BodyChunked || mode == http1.BodyUntilClose || (filtered && mode == http1.BodyLength) {
		if filtered {
			resp.Header.Del("Content-Length")
		}
		if client11 {
			chunkOut = true
			resp.Header.AddString("Transfer-Encoding", "chunked")
		} else {
			c.keepAlive = false
		}
	}
	if h.Via {
		resp.Header.AddString("Via", "1.1 weir")
	}
	if c.altSvc != "" {
		resp.Header.AddString("Alt-Svc", c.altSvc)
	}
	if !c.bodyDone || c.srv.draining.Load() {
		c.keepAlive = false
	}
	if !c.keepAlive {
		resp.Header.AddString("Connection", "close")
	} else if !client11 {
		resp.Header.AddString("Connection", "keep-alive")
	}
	status := resp.Status
	c.out = http1.AppendResponseHead(c.out[:0], resp)
	s.Status = status
	c.wroteHead = true

	return respPlan{mode, length, filtered, chunkOut, upReusable}, true
}

// relayBody streams the body of a response whose head is in c.out.
func (c *conn) relayBody(h *Handler, s *Session, g *upstream.Group, up *upstream.Conn, pl respPlan) outcome {
	mode, length, filtered, chunkOut := pl.mode, pl.length, pl.filtered, pl.chunkOut
	var err error
	var clientFailed bool
	switch {
	case mode == http1.BodyNone:
		err = c.write(h, c.out)
		clientFailed = err != nil
	case mode == http1.BodyLength && !filtered:
		clientFailed, err = c.copyLength(h, s, g, up, length)
	default: // chunked, close-delimited, or filtered: re-framed for the client
		clientFailed, err = c.copyFiltered(h, s, g, up, mode, length, chunkOut)
	}
	if err != nil {
		up.Close()
		c.keepAlive = false
		if clientFailed {
			s.Err = &ClientError{err}
			return done
		}
		s.Err = &UpstreamError{s.Peer.Addr, "read body", err}
		return failed
	}
	if pl.upReusable {
		up.Pool().Put(up)
	} else {
		up.Close()
	}
	return done
}

// copyLength streams a Content-Length body unchanged. Large bodies go
// through the kernel (splice) when both ends are TCP.
func (c *conn) copyLength(h *Handler, s *Session, g *upstream.Group, up *upstream.Conn, length int64) (bool, error) {
	buffered := up.In.Unread()
	if int64(len(buffered)) > length {
		buffered = buffered[:length]
	}
	if err := c.writev(h, c.out, buffered); err != nil {
		return true, err
	}
	up.In.Consume(len(buffered))
	left := length - int64(len(buffered))
	s.BytesOut = int64(len(buffered))
	if left == 0 {
		return false, nil
	}
	if tc, ok := c.nc.(*net.TCPConn); ok && left >= spliceMin {
		if src, ok := up.Conn.(*net.TCPConn); ok {
			return c.spliceBody(h, s, g, up, tc, src, left)
		}
	}
	for left > 0 {
		c.armUpRead(up, g.Timeouts.Idle)
		if _, err := up.In.Fill(up); err != nil {
			return false, noEOF(err)
		}
		p := up.In.Unread()
		if int64(len(p)) > left {
			p = p[:left]
		}
		if err := c.write(h, p); err != nil {
			return true, err
		}
		up.In.Consume(len(p))
		left -= int64(len(p))
		s.BytesOut += int64(len(p))
	}
	return false, nil
}

// spliceBody moves a large body from peer to client in the kernel, in
// steps so that the idle timeouts apply per step.
func (c *conn) spliceBody(h *Handler, s *Session, g *upstream.Group, up *upstream.Conn, dst, src *net.TCPConn, left int64) (bool, error) {
	lr := &io.LimitedReader{R: src}
	for left > 0 {
		step := min(left, 4<<20)
		lr.N = step
		c.armUpRead(up, g.Timeouts.Idle)
		c.armWrite(h.Limits.WriteTimeout)
		n, err := dst.ReadFrom(lr)
		left -= n
		s.BytesOut += n
		if err != nil {
			// splice(2) reports either socket's error and ReadFrom cannot
			// say which, so none of it is held against the peer: a client
			// that drops a download must never get a peer ejected.
			return true, err
		}
		if n < step {
			return false, io.ErrUnexpectedEOF // the peer closed early
		}
	}
	return false, nil
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// copyFiltered is the general body path: any upstream framing in, body
// filters applied, chunked (or close-delimited) out.
func (c *conn) copyFiltered(h *Handler, s *Session, g *upstream.Group, up *upstream.Conn, mode http1.BodyMode, length int64, chunkOut bool) (bool, error) {
	if err := c.write(h, c.out); err != nil {
		return true, err
	}
	emit := func(data []byte, end bool) (bool, error) {
		out, err := s.Route.Chain.runBody(s, data, end)
		if err == nil {
			out, err = h.Chain.runBody(s, out, end)
		}
		if err != nil {
			return false, err
		}
		if len(out) > 0 {
			s.BytesOut += int64(len(out))
			if chunkOut {
				c.out = http1.AppendChunkHeader(c.out[:0], len(out))
				if err := c.writev(h, c.out, out, crlf); err != nil {
					return true, err
				}
			} else if err := c.write(h, out); err != nil {
				return true, err
			}
		}
		return false, nil
	}
	var trailer *message.Header
	switch mode {
	case http1.BodyLength:
		left := length
		for left > 0 {
			if up.In.Buffered() == 0 {
				c.armUpRead(up, g.Timeouts.Idle)
				if _, err := up.In.Fill(up); err != nil {
					return false, noEOF(err)
				}
			}
			p := up.In.Unread()
			if int64(len(p)) > left {
				p = p[:left]
			}
			up.In.Consume(len(p))
			left -= int64(len(p))
			if cf, err := emit(p, false); err != nil {
				return cf, err
			}
		}
	case http1.BodyChunked:
		c.respDec.Reset(http1.ChunkLimits{})
		for !c.respDec.Done() {
			data, n, err := c.respDec.Decode(up.In.Unread())
			up.In.Consume(n)
			if err != nil && err != http1.ErrIncomplete {
				return false, err
			}
			if len(data) > 0 {
				if cf, err := emit(data, false); err != nil {
					return cf, err
				}
				continue
			}
			if n == 0 && !c.respDec.Done() {
				c.armUpRead(up, g.Timeouts.Idle)
				if _, err := up.In.Fill(up); err != nil {
					return false, noEOF(err)
				}
			}
		}
		trailer = c.respDec.Trailer()
	case http1.BodyUntilClose:
		for {
			if up.In.Buffered() == 0 {
				c.armUpRead(up, g.Timeouts.Idle)
				if _, err := up.In.Fill(up); err != nil {
					if err == io.EOF {
						break
					}
					return false, err
				}
			}
			p := up.In.Unread()
			up.In.Consume(len(p))
			if cf, err := emit(p, false); err != nil {
				return cf, err
			}
		}
	}
	if cf, err := emit(nil, true); err != nil {
		return cf, err
	}
	if chunkOut {
		c.out = http1.AppendLastChunk(c.out[:0], trailer)
		if err := c.write(h, c.out); err != nil {
			return true, err
		}
	}
	return false, nil
}

// tunnel relays bytes both ways after a 101 Switching Protocols, until
// either side closes. The connection is not reused afterwards.
func (c *conn) tunnel(h *Handler, s *Session, up *upstream.Conn) outcome {
	resp := &s.Resp
	if h.Via {
		resp.Header.AddString("Via", "1.1 weir")
	}
	c.out = http1.AppendResponseHead(c.out[:0], resp)
	s.Status = 101
	c.wroteHead = true
	c.keepAlive = false
	if err := c.writev(h, c.out, up.In.Unread()); err != nil {
		up.Close()
		return done
	}
	up.In.Consume(up.In.Buffered())
	_ = c.nc.SetDeadline(time.Time{})
	_ = up.SetDeadline(time.Time{})
	c.rdl, c.wdl, up.ReadDL, up.WriteDL = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	errc := make(chan error, 1)
	clientLeft := c.in.Unread()
	go func() {
		// client → upstream
		var err error
		if len(clientLeft) > 0 {
			_, err = up.Write(clientLeft)
		}
		if err == nil {
			_, err = io.Copy(up.Conn, c.nc)
		}
		if cw, ok := up.Conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		errc <- err
	}()
	n, _ := io.Copy(c.nc, up.Conn)
	s.BytesOut += n
	if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	// The upstream side ended; end the other direction too.
	_ = c.nc.SetReadDeadline(time.Now())
	<-errc
	c.in.Consume(c.in.Buffered())
	up.Close()
	return done
}

// String makes errors readable in logs.
func (o outcome) String() string {
	return [...]string{"done", "retry-stale", "retry-peer", "failed"}[o]
}
