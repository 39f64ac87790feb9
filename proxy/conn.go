package proxy

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/internal/rbuf"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/upstream"
)

const (
	// connBufSize is the read buffer a client connection starts with; it
	// grows only for request heads larger than this (up to the limit).
	connBufSize = 16 << 10
	// minBodyRoom is the free room after a parsed head below which the head
	// is copied aside so the whole buffer can carry the body.
	minBodyRoom = 8 << 10
	// inlineBody is the largest buffered body written together with its
	// head in one write.
	inlineBody = 8 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, connBufSize); return &b }}

// reqState is what a connection needs only while it carries a request:
// the session, write buffers and chunk decoders. An idle connection gives
// it back to statePool, so that thousands of idle keep-alive connections
// cost little more than their sockets.
type reqState struct {
	sess    Session
	out     []byte // response head and small bodies
	up      []byte // upstream request head
	reqDec  http1.ChunkedDecoder
	respDec http1.ChunkedDecoder
	bufs    [4][]byte
	nbuf    net.Buffers
	h1d     h1Down
}

var statePool = sync.Pool{New: func() any {
	return &reqState{out: make([]byte, 0, 4<<10), up: make([]byte, 0, 2<<10)}
}}

// conn is one client connection and its keep-alive loop.
type conn struct {
	srv       *Server
	nc        net.Conn
	in        rbuf.Buffer
	inp       *[]byte // the pooled array behind in.B, if it came from bufPool
	*reqState         // nil while idle

	client, local netip.AddrPort
	tls           bool
	ls            *listenerState
	altSvc        string
	tlsInfo       *TLSInfo
	h2c           bool // the client sent the HTTP/2 preface in cleartext

	// raw reads the socket directly while idle (see idleRead).
	raw    rawConn
	readFn func(fd uintptr) bool
	rn     int
	rerr   error

	headCopy  []byte
	requests  int
	headStart int

	// rdl and wdl are the read and write deadlines last set on nc.
	rdl, wdl time.Time

	// per-request state
	keepAlive   bool
	bodyDone    bool // the request body was read to its end (true between requests)
	expect100   bool
	reqDeadline time.Time
	wroteHead   bool

	mu   sync.Mutex
	idle bool
}

func newConn(s *Server, nc net.Conn, ls *listenerState) *conn {
	c := &conn{srv: s, nc: nc, ls: ls, altSvc: ls.opts.AltSvc, bodyDone: true}
	c.client = addrPort(nc.RemoteAddr())
	c.local = addrPort(nc.LocalAddr())
	// Go already sets TCP_NODELAY on every TCP connection.
	c.initRaw()
	return c
}

// acquire takes per-request state and a read buffer, if not held yet.
func (c *conn) acquire() {
	if c.reqState == nil {
		c.reqState = statePool.Get().(*reqState)
		c.sess.conn = c
		c.sess.Client, c.sess.Local, c.sess.TLS, c.sess.TLSInfo = c.client, c.local, c.tls, c.tlsInfo
	}
	c.acquireBuf()
}

func (c *conn) acquireBuf() {
	if c.in.B == nil {
		c.inp = bufPool.Get().(*[]byte)
		c.in.B = *c.inp
		c.in.Reset()
	}
}

// release gives back what an idle connection does not need: the state
// always, the read buffer when it holds no pipelined bytes.
func (c *conn) release() {
	if st := c.reqState; st != nil {
		st.sess.reset()
		st.sess.conn = nil
		c.reqState = nil
		statePool.Put(st)
	}
	if c.in.Buffered() == 0 {
		c.releaseBuf()
	}
}

func (c *conn) releaseBuf() {
	if c.in.B == nil {
		return
	}
	if c.inp != nil && len(c.in.B) == connBufSize {
		bufPool.Put(c.inp)
	}
	c.in.B, c.inp = nil, nil
	c.in.Reset()
}

// waitRequest blocks until the first bytes of a request arrive.
func (c *conn) waitRequest() int {
	if c.raw == nil {
		c.acquireBuf()
		n, _ := c.in.Fill(c.nc)
		return n
	}
	c.rn, c.rerr = 0, nil
	if err := c.raw.Read(c.readFn); err != nil {
		return 0
	}
	return c.rn
}

func addrPort(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

// serve is the connection's goroutine: it reads requests until the client
// goes away, an error closes the connection, or the server drains.
func (c *conn) serve() {
	defer c.close()
	if c.ls.opts.TLS != nil {
		if !c.handshake(c.srv.handler.Load()) {
			return
		}
		if c.tlsInfo.ALPN == "h2" {
			c.serveH2(c.nc)
			return
		}
	}
	c.serveRequests()
}

// serveRequests is the keep-alive loop: it reads requests until the
// client goes away, an error closes the connection, or the server drains.
func (c *conn) serveRequests() {
	for {
		if !c.readRequest(c.srv.handler.Load()) {
			if c.h2c {
				c.serveH2C()
			}
			return
		}
		// Load the handler again: a reload may have swapped it while the
		// connection sat idle, and a request that had not started yet
		// must run on the graph current when its head arrived.
		if !c.handle(c.srv.handler.Load()) {
			return
		}
	}
}

// close closes the socket, gives back what the connection held and
// forgets it.
func (c *conn) close() {
	if c.wroteHead && !c.bodyDone {
		c.linger()
	}
	c.nc.Close()
	c.retire()
}

// linger is the lingering close (see limits.LingerTime): the client may
// still be sending a body Weir answered without reading. Closing with
// unread bytes makes the kernel send a reset, and a reset can destroy the
// answer before the client reads it; so Weir ends its side, then reads
// and discards until the client closes too, goes quiet, or time is up.
// A drain cuts it short.
func (c *conn) linger() {
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		// tls.Conn.CloseWrite sends close_notify only.
		if uc, ok := tc.NetConn().(interface{ CloseWrite() error }); ok {
			_ = uc.CloseWrite()
		}
	}
	end := time.Now().Add(limits.LingerTime)
	buf := make([]byte, 4<<10)
	for !c.srv.draining.Load() {
		now := time.Now()
		if !now.Before(end) {
			return
		}
		dl := now.Add(limits.LingerTimeout)
		if end.Before(dl) {
			dl = end
		}
		_ = c.nc.SetReadDeadline(dl)
		if _, err := c.nc.Read(buf); err != nil {
			return
		}
	}
}

// retire gives back what a closed connection held and forgets it.
func (c *conn) retire() {
	c.in.Reset()
	c.release()
	c.srv.forget(c)
}

// setIdle marks the connection idle (blocked waiting for a new request) or
// busy. It returns false when going idle while the server drains.
func (c *conn) setIdle(idle bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if idle && c.srv.draining.Load() {
		return false
	}
	c.idle = idle
	return true
}

// wakeIfIdle unblocks an idle connection so it notices the drain.
func (c *conn) wakeIfIdle() {
	c.mu.Lock()
	if c.idle {
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
}

// readRequest reads and parses the next request head. It returns false
// when the connection should close (after answering a bad request).
func (c *conn) readRequest(h *Handler) bool {
	c.in.Floor = 0
	lim := &h.Limits
	if c.in.Buffered() == 0 {
		c.release()
		if !c.setIdle(true) {
			return false
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(lim.IdleTimeout))
		n := c.waitRequest()
		c.setIdle(false)
		c.rdl = time.Time{} // a drain may have moved it: set afresh when next needed
		if n == 0 {
			return false
		}
	}
	c.acquire()
	c.in.Compact()
	s := &c.sess
	s.reset()
	deadline := false
	if c.requests == 0 && c.ls.opts.H2C && c.in.Unread()[0] == 'P' {
		if c.h2c = c.sniffPreface(h); c.h2c {
			return false
		}
	}
	for {
		n, err := http1.ParseRequest(c.in.Unread(), &lim.Parser, &s.Req)
		if err == nil {
			c.headParsed(h, n, time.Now())
			return true
		}
		if err != http1.ErrIncomplete {
			if c.requests == 0 && c.ls.opts.H2C {
				// On an h2c listener the first bytes may have been meant
				// as HTTP/2: RFC 9113 3.4 has an invalid preface end the
				// connection without an answer.
				h.ErrorLog.Debug("neither HTTP/1.1 nor the HTTP/2 preface; closing", "client", c.client, "err", err)
				return false
			}
			c.badRequest(h, err)
			return false
		}
		if !deadline {
			deadline = true
			c.rdl = time.Now().Add(lim.HeaderReadTimeout)
			_ = c.nc.SetReadDeadline(c.rdl)
		}
		c.growForHead(h)
		if _, err := c.in.Fill(c.nc); err != nil {
			if isTimeout(err) {
				c.writeError(h, 408, false)
			}
			return false
		}
	}
}

// headParsed consumes a request head of n bytes the parser accepted.
func (c *conn) headParsed(h *Handler, n int, now time.Time) {
	s := &c.sess
	c.headStart = c.in.R
	c.in.Floor = c.in.R + n
	c.in.Consume(n)
	s.Start = now
	c.requests++
	s.Req.Scheme = "http"
	if s.TLS {
		s.Req.Scheme = "https"
	}
	if (s.Req.ContentLength > 0 || s.Req.Chunked) && len(c.in.B)-c.in.Floor < minBodyRoom {
		c.detachHead(h)
	}
}

// growForHead doubles a full read buffer, up to the head limit, for a
// request head that does not fit yet.
func (c *conn) growForHead(h *Handler) {
	if max := h.Limits.Parser.MaxHeaderBytes; c.in.W == len(c.in.B) && len(c.in.B) < max {
		c.in.Grow(min(2*len(c.in.B), max))
	}
}

// detachHead copies a large head out of the read buffer so that the whole
// buffer can carry the body, and parses the copy again so the head's
// slices point at it.
func (c *conn) detachHead(h *Handler) {
	c.headCopy = append(c.headCopy[:0], c.in.B[c.headStart:c.in.Floor]...)
	c.sess.Req.Reset()
	_, _ = http1.ParseRequest(c.headCopy, &h.Limits.Parser, &c.sess.Req)
	c.in.Floor = 0
	c.in.Compact()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded)
}

// badRequest answers a head the parser rejected and closes.
func (c *conn) badRequest(h *Handler, err error) {
	status := 400
	var pe *http1.Error
	if errors.As(err, &pe) {
		status = pe.Status
	}
	c.sess.Err = err
	c.writeError(h, status, false)
	h.ErrorLog.Debug("bad request", "client", c.sess.Client, "status", status, "err", err)
	// A rejected head is logged like any request; its method and path
	// are empty since nothing of it can be trusted.
	c.sess.Start = time.Now()
	c.sess.End = c.sess.Start
	c.sess.Req.Reset()
	h.Chain.runLog(&c.sess)
}

// handle runs the phases for one parsed request and reports whether the
// connection may carry another.
func (c *conn) handle(h *Handler) bool {
	c.begin(h)
	if c.prepare(h) {
		c.proxy(h, &c.sess)
	}
	return c.finish(h)
}

// begin resets the per-request flags for a parsed request.
func (c *conn) begin(h *Handler) {
	req := &c.sess.Req
	c.keepAlive = !req.Close && c.requests < h.Limits.MaxRequestsPerConn && !c.srv.draining.Load()
	c.bodyDone = req.ContentLength == 0 && !req.Chunked
	c.expect100 = false
	c.wroteHead = false
	c.reqDeadline = time.Time{}
}

// prepare runs the engine's checks, the handler's RequestFilters, the
// router and the route's RequestFilters. It reports whether the request
// is to be proxied; otherwise it was answered (or tunnelled) already.
func (c *conn) prepare(h *Handler) bool {
	s := &c.sess
	if err := c.precheck(h); err != nil {
		c.fail(h, err)
	} else if err := h.Chain.runRequest(s); err != nil {
		c.fail(h, err)
	} else if !s.responded && h.Connect != nil && s.Req.IsMethod("CONNECT") {
		c.connect(h, s)
	} else if !s.responded {
		if s.Route = h.Router.Route(s); s.Route == nil {
			c.fail(h, errNoRoute)
		} else if err := s.Route.Chain.runRequest(s); err != nil {
			c.fail(h, err)
		} else {
			return !s.responded
		}
	}
	return false
}

// finish ends a request: the loggers run, and it reports whether the
// connection may carry another.
func (c *conn) finish(h *Handler) bool {
	s := &c.sess
	s.End = time.Now()
	if s.Route != nil {
		s.Route.Chain.runLog(s)
	}
	h.Chain.runLog(s)
	return c.keepAlive && c.bodyDone
}

var (
	errNoRoute  = &StatusError{Status: 404, Msg: "no route for this request"}
	errExpect   = &StatusError{Status: 417, Msg: "only Expect: 100-continue is supported"}
	errTooLarge = &StatusError{Status: 413, Msg: "request body too large"}
)

// connect hands a CONNECT request to the handler's ConnectHandler.
func (c *conn) connect(h *Handler, s *Session) {
	c.keepAlive = false
	buffered := append([]byte(nil), c.in.Unread()...)
	c.in.Consume(len(buffered))
	c.bodyDone = true
	_ = c.nc.SetDeadline(time.Time{})
	c.rdl, c.wdl = time.Time{}, time.Time{}
	t := &Tunnel{s: s, c: c, buffered: buffered}
	if err := h.Connect.Connect(s, t); err != nil {
		if s.Err == nil {
			s.Err = err
		}
		if !t.answered {
			c.fail(h, err)
		}
	}
}

// precheck applies the engine's own rules before any filter runs.
func (c *conn) precheck(h *Handler) error {
	req := &c.sess.Req
	if v := req.Header.Get("Expect"); v != nil {
		if !message.EqualFold(v, "100-continue") {
			return errExpect
		}
		c.expect100 = req.ContentLength > 0 || req.Chunked
	}
	if max := h.Limits.MaxBodyBytes; max > 0 && req.ContentLength > max {
		return errTooLarge
	}
	return nil
}

// fail answers the request with the status that err maps to, if nothing
// was sent yet.
func (c *conn) fail(h *Handler, err error) {
	s := &c.sess
	if s.Err == nil {
		s.Err = err
	}
	if c.wroteHead {
		c.keepAlive = false
		return
	}
	status := 500
	var se *StatusError
	if errors.As(err, &se) {
		status = se.Status
		if se.Msg != "" && status != 500 {
			c.writeLocalStatus(h, status, se.Msg)
			return
		}
	} else {
		h.ErrorLog.Warn("request failed", "client", s.Client, "err", err)
	}
	c.writeError(h, status, c.keepAlive)
}

// writeError sends a short plain-text error that names only the status.
func (c *conn) writeError(h *Handler, status int, keep bool) {
	c.keepAlive = c.keepAlive && keep
	c.writeLocalStatus(h, status, "")
}

func (c *conn) writeLocalStatus(h *Handler, status int, msg string) {
	// An error response is sent within write_timeout even when the
	// request's overall deadline (timeouts.request) has passed: that is
	// often why it is sent, and a write bound by the expired deadline
	// would fail at once, closing with no 408 or 504 at all.
	c.reqDeadline = time.Time{}
	text := http1.StatusText(status)
	b := c.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = http1.AppendInt(b, int64(status))
	b = append(b, ' ')
	b = append(b, text...)
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: "...)
	bodyLen := len(text) + 5
	if msg != "" {
		bodyLen += len(msg) + 2
	}
	b = http1.AppendInt(b, int64(bodyLen))
	b = c.appendConnection(b)
	b = append(b, "\r\n"...)
	b = http1.AppendInt(b, int64(status))
	b = append(b, ' ')
	b = append(b, text...)
	if msg != "" {
		b = append(b, ": "...)
		b = append(b, msg...)
	}
	b = append(b, '\n')
	c.out = b
	c.sess.Status = status
	c.sess.BytesOut = int64(bodyLen)
	c.wroteHead = true
	_ = c.write(h, b)
}

// appendConnection ends the head's fields with the connection header the
// client needs, then the blank line.
func (c *conn) appendConnection(b []byte) []byte {
	if !c.keepAlive || !c.bodyDone {
		c.keepAlive = false
		return append(b, "\r\nConnection: close\r\n"...)
	}
	if c.sess.Req.ProtoMinor == 0 {
		return append(b, "\r\nConnection: keep-alive\r\n"...)
	}
	return append(b, "\r\n"...)
}

// writeLocal sends a response made by a filter (Session.Respond).
func (c *conn) writeLocal(s *Session, status int, header *message.Header, body []byte) error {
	if c.wroteHead {
		return errors.New("proxy: response already started")
	}
	h := c.srv.handler.Load()
	b := c.out[:0]
	b = append(b, "HTTP/1.1 "...)
	b = http1.AppendInt(b, int64(status))
	b = append(b, ' ')
	b = append(b, http1.StatusText(status)...)
	b = append(b, "\r\nContent-Length: "...)
	b = http1.AppendInt(b, int64(len(body)))
	if header != nil {
		for _, f := range header.Fields {
			b = append(b, "\r\n"...)
			b = append(b, f.Name...)
			b = append(b, ": "...)
			b = append(b, f.Value...)
		}
	}
	b = c.appendConnection(b)
	b = append(b, "\r\n"...)
	c.out = b
	s.Status = status
	s.BytesOut = int64(len(body))
	c.wroteHead = true
	if len(body) <= inlineBody && s.Req.Method != nil && !s.Req.IsMethod("HEAD") {
		c.out = append(c.out, body...)
		return c.write(h, c.out)
	}
	if err := c.write(h, c.out); err != nil {
		return err
	}
	if s.Req.IsMethod("HEAD") {
		return nil
	}
	return c.write(h, body)
}

// write writes b to the client within the write timeout.
func (c *conn) write(h *Handler, b []byte) error {
	c.armWrite(h.Limits.WriteTimeout)
	_, err := c.nc.Write(b)
	if err != nil {
		c.keepAlive = false
	}
	return err
}

// writev writes several buffers with one system call where possible.
func (c *conn) writev(h *Handler, bufs ...[]byte) error {
	c.armWrite(h.Limits.WriteTimeout)
	c.nbuf = append(c.bufs[:0], bufs...)
	_, err := c.nbuf.WriteTo(c.nc)
	c.bufs = [4][]byte{}
	if err != nil {
		c.keepAlive = false
	}
	return err
}

// Deadlines are timers in the runtime; resetting one on every read and
// write of a busy connection is measurable. A deadline is therefore moved
// only when the one in force would fire more than slack(d) early, so a
// timeout may act up to 1/16 of itself (at most one second) early, never
// late. A request deadline (timeouts.request) is always set exactly.
func slack(d time.Duration) time.Duration { return min(d/16, time.Second) }

// rearm reports whether the deadline cur must move to want: always when
// want is earlier (a shorter timeout takes over), and when it is later by
// more than the slack.
func (c *conn) rearm(cur, want time.Time, d time.Duration) bool {
	return mustMove(cur, want, d, !c.reqDeadline.IsZero())
}

// mustMove is rearm for any deadline: exact (a request deadline is in
// force) moves it every time.
func mustMove(cur, want time.Time, d time.Duration, exact bool) bool {
	return exact || cur.IsZero() || want.Before(cur) || want.Sub(cur) > slack(d)
}

// armRead sets the client read deadline to now+d, if it moved enough.
func (c *conn) armRead(d time.Duration) {
	if want := c.deadline(d); c.rearm(c.rdl, want, d) {
		c.rdl = want
		_ = c.nc.SetReadDeadline(want)
	}
}

// armWrite sets the client write deadline to now+d, if it moved enough.
func (c *conn) armWrite(d time.Duration) {
	if want := c.deadline(d); c.rearm(c.wdl, want, d) {
		c.wdl = want
		_ = c.nc.SetWriteDeadline(want)
	}
}

// armUpRead and armUpWrite do the same for a peer connection.
func (c *conn) armUpRead(up *upstream.Conn, d time.Duration) {
	armUpRead(up, c.deadline(d), d, !c.reqDeadline.IsZero())
}

func (c *conn) armUpWrite(up *upstream.Conn, d time.Duration) {
	armUpWrite(up, c.deadline(d), d, !c.reqDeadline.IsZero())
}

// armUpRead and armUpWrite set a peer connection's deadline to want and
// record it (the pool's reuse probe reads ReadDL), when it moved enough
// (mustMove).
func armUpRead(up *upstream.Conn, want time.Time, d time.Duration, exact bool) {
	if mustMove(up.ReadDL, want, d, exact) {
		up.ReadDL = want
		_ = up.SetReadDeadline(want)
	}
}

func armUpWrite(up *upstream.Conn, want time.Time, d time.Duration, exact bool) {
	if mustMove(up.WriteDL, want, d, exact) {
		up.WriteDL = want
		_ = up.SetWriteDeadline(want)
	}
}

// deadline returns now+d, capped by the request's overall deadline.
func (c *conn) deadline(d time.Duration) time.Time { return capDeadline(d, c.reqDeadline) }

// capDeadline returns now+d, or end when that is earlier (zero end: none).
func capDeadline(d time.Duration, end time.Time) time.Time {
	t := time.Now().Add(d)
	if !end.IsZero() && end.Before(t) {
		return end
	}
	return t
}

// readClient reads more request bytes within the body timeout.
func (c *conn) readClient(h *Handler) error {
	c.armRead(h.Limits.BodyReadTimeout)
	n, err := c.in.Fill(c.nc)
	if n > 0 {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
