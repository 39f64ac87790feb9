package proxy

import (
	"crypto/tls"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/message"
)

// ListenerOptions select what a listener speaks besides cleartext
// HTTP/1.1.
type ListenerOptions struct {
	// TLS terminates TLS (nil: cleartext). Its NextProtos decide whether
	// clients may pick HTTP/2 ("h2") or only HTTP/1.1.
	TLS *tls.Config
	// H2C accepts cleartext HTTP/2 with prior knowledge (RFC 9113 3.3) on
	// a cleartext listener. HTTP/1.1 Upgrade: h2c is never honoured.
	H2C bool
	// AltSvc, when set, is sent as the Alt-Svc field of HTTP/1.1 and
	// HTTP/2 responses, to advertise HTTP/3 (e.g. `h3=":443"; ma=86400`).
	AltSvc string
	// H2 bounds HTTP/2 connections (zero fields: defaults).
	H2 H2Limits
	// Fingerprint, when set, is called with every TLS client's raw
	// ClientHello capture hook: it wraps the accepted connection before
	// the handshake and returns the wrapper plus a function that reports
	// the fingerprints once the handshake is done (see package tlsfp).
	Fingerprint func(net.Conn) (net.Conn, func() (ja3, ja4 string))
	// MaxConns bounds the client connections open at once on this
	// listener (0: no bound); further connections wait in the kernel's
	// backlog until one closes. Unlike a wrapping listener (such as
	// netutil.LimitListener), it leaves the accepted *net.TCPConn as it
	// is, so splice and the buffer-free idle wait still apply.
	MaxConns int
	// EventLoop serves a cleartext HTTP/1.1 listener with event loops
	// (Linux; one per GOMAXPROCS) instead of a goroutine per connection.
	// The loops run the same phases, but filters run on the loop's
	// goroutine: set it only when no filter blocks (waits on the network
	// or a lock held long). Requests the loop does not carry itself (with
	// a body, upgrades, CONNECT, large or filtered response bodies, HTTP/2
	// or TLS peers, peers named by host name) move to a goroutine with
	// their connection. Ignored with TLS or H2C, and on other systems.
	EventLoop bool
}

// H2Limits bound one HTTP/2 client connection. The glitch budget answers
// floods (Rapid Reset, CONTINUATION, PING, SETTINGS, empty frames,
// oversized header lists): every suspicious frame costs a point, points
// refill at GlitchRate per second up to GlitchBudget, and a connection
// that runs out gets GOAWAY ENHANCE_YOUR_CALM and is closed.
type H2Limits struct {
	MaxConcurrentStreams uint32
	MaxHeaderListSize    uint32
	StreamWindow         int32
	ConnWindow           int32
	MaxReadFrameSize     uint32
	IdleTimeout          time.Duration
	GlitchBudget         int
	GlitchRate           int
}

func (l *H2Limits) fill() {
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = limits.H2MaxConcurrentStreams
	}
	if l.MaxHeaderListSize == 0 {
		l.MaxHeaderListSize = limits.MaxHeaderBytes
	}
	if l.StreamWindow == 0 {
		l.StreamWindow = limits.H2StreamWindow
	}
	if l.ConnWindow == 0 {
		l.ConnWindow = limits.H2ConnWindow
	}
	if l.MaxReadFrameSize == 0 {
		l.MaxReadFrameSize = limits.H2MaxFrameSize
	}
	if l.IdleTimeout == 0 {
		l.IdleTimeout = limits.IdleTimeout
	}
	if l.GlitchBudget == 0 {
		l.GlitchBudget = limits.H2GlitchBudget
	}
	if l.GlitchRate == 0 {
		l.GlitchRate = limits.H2GlitchRate
	}
}

// listenerState is what one listener's connections share.
type listenerState struct {
	opts ListenerOptions
	// slots holds one token per open connection when opts.MaxConns > 0.
	slots chan struct{}
	// h2conns are the open HTTP/2 connections, for Shutdown's GOAWAY.
	h2mu    sync.Mutex
	h2conns map[*h2Conn]struct{}
	h2drain bool
}

func newListenerState(o *ListenerOptions) *listenerState {
	ls := &listenerState{}
	if o != nil {
		ls.opts = *o
	}
	if ls.opts.MaxConns > 0 {
		ls.slots = make(chan struct{}, ls.opts.MaxConns)
	}
	ls.opts.H2.fill()
	return ls
}

// h3Front serves the requests of an HTTP/3 listener through the general
// path.
type h3Front struct {
	srv       *Server
	local     netip.AddrPort
	maxHeader int
}

var sessPool = sync.Pool{New: func() any { return new(Session) }}

func (f *h3Front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := f.srv.handler.Load()
	s := sessPool.Get().(*Session)
	s.reset()
	defer func() {
		s.reset()
		s.ds = nil
		sessPool.Put(s)
	}()
	s.Client, _ = netip.ParseAddrPort(r.RemoteAddr)
	s.Local, s.TLS = f.local, true
	if r.TLS != nil {
		s.TLSInfo = &TLSInfo{Version: r.TLS.Version, CipherSuite: r.TLS.CipherSuite,
			ServerName: r.TLS.ServerName, ALPN: r.TLS.NegotiatedProtocol}
	}
	s.Start = time.Now()
	d := &httpDown{w: w, r: r}
	s.ds = d
	req := &s.Req
	req.Method = message.S(r.Method)
	req.Target = message.S(r.RequestURI)
	req.Path = req.Target
	req.Authority = message.S(r.Host)
	req.Scheme = "https"
	req.ProtoMajor, req.ProtoMinor = 3, 0
	size := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			req.Header.Add(message.S(k), message.S(v))
			size += len(k) + len(v) + 32
		}
	}
	switch {
	case r.ContentLength > 0:
		req.ContentLength = r.ContentLength
	case r.ContentLength < 0, r.Body != nil && r.Body != http.NoBody:
		// HTTP/3 gives 0 for a body without content-length; a body
		// that is really empty ends at once.
		req.ContentLength = -1
	}
	serveMux(h, s, d, size, f.maxHeader)
}

// serveMux runs one request of a multiplexed client (HTTP/2, HTTP/3) once
// the front end filled s.Req; size is the request's header list size.
// What crosses into HTTP/1.1 must be what Weir's own parser accepts
// there: a :method that is no token, a :path with spaces or a fragment,
// or an :authority that is no host, would reach a peer's request line or
// Host field.
func serveMux(h *Handler, s *Session, ds downstream, size, maxHeader int) {
	req := &s.Req
	var reject error
	if !http1.ValidMethod(req.Method) {
		reject = &StatusError{Status: 400, Msg: "invalid :method"}
	} else if connect := req.IsMethod("CONNECT"); !http1.ValidHost(req.Authority, connect) ||
		!connect && !http1.ValidOriginForm(req.Target) && !(req.IsMethod("OPTIONS") && string(req.Target) == "*") {
		reject = &StatusError{Status: 400, Msg: "invalid :path or :authority"}
	} else if maxHeader > 0 && size > maxHeader {
		// The HTTP/2 guard has charged the connection's glitch budget
		// for this header list already.
		reject = &StatusError{Status: 431, Msg: "request header fields too large"}
	}
	if reject != nil {
		failDown(h, s, ds, reject)
		s.End = time.Now()
		h.Chain.runLog(s)
		return
	}
	h.serveStream(s, ds)
}

// httpDown is one HTTP/3 stream as the general path's client side.
type httpDown struct {
	w       http.ResponseWriter
	r       *http.Request
	wrote   bool
	noBody  bool
	trailer message.Header
	rc      *http.ResponseController
}

func (d *httpDown) readBody(p []byte) (int, error) { return d.r.Body.Read(p) }
func (d *httpDown) abortBody()                     { _ = d.r.Body.Close() }
func (d *httpDown) started() bool                  { return d.wrote }

func (d *httpDown) reqTrailer() *message.Header {
	if len(d.r.Trailer) == 0 {
		return nil
	}
	d.trailer.Reset()
	fromHTTPHeader(&d.trailer, d.r.Trailer)
	return &d.trailer
}

// connectionSpecific are the fields HTTP/2 and HTTP/3 forbid (RFC 9113
// 8.2.2); hop-by-hop removal has taken most, this catches the rest.
func connectionSpecific(name []byte) bool {
	for _, n := range [...]string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade"} {
		if message.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func (d *httpDown) writeHead(s *Session, resp *message.Response, length int64) error {
	hd := d.w.Header()
	st := resp.Status
	d.noBody = noResponseBody(s, st)
	for _, f := range resp.Header.Fields {
		if !muxKeepsField(f.Name, d.noBody) {
			continue
		}
		addField(hd, "", &f)
	}
	if !d.noBody && length >= 0 {
		hd["Content-Length"] = []string{strconv.FormatInt(length, 10)}
	}
	d.w.WriteHeader(st)
	d.wrote = true
	return nil
}

func (d *httpDown) writeBody(p []byte) error {
	if d.noBody {
		return nil
	}
	_, err := d.w.Write(p)
	return err
}

func (d *httpDown) flush() error {
	if d.rc == nil {
		d.rc = http.NewResponseController(d.w)
	}
	return d.rc.Flush()
}

func (d *httpDown) finish(trailer *message.Header) error {
	if trailer == nil {
		return nil
	}
	hd := d.w.Header()
	for i := range trailer.Fields {
		addField(hd, http.TrailerPrefix, &trailer.Fields[i])
	}
	return nil
}

// noResponseBody reports a response that never has a body: to HEAD, 1xx,
// 204 and 304.
func noResponseBody(s *Session, status int) bool {
	return s.Req.IsMethod("HEAD") || status < 200 || status == 204 || status == 304
}

// muxKeepsField reports whether a response field goes to an HTTP/2 or
// HTTP/3 client as it is: connection-specific fields never do, and
// Content-Length is replaced by the length the front end sends, unless
// the response has no body.
func muxKeepsField(name []byte, noBody bool) bool {
	return !connectionSpecific(name) && (noBody || !message.EqualFold(name, "Content-Length"))
}

// addField appends f to an http.Header under prefix and its canonical
// name.
func addField(dst http.Header, prefix string, f *message.Field) {
	k := prefix + http.CanonicalHeaderKey(string(f.Name))
	dst[k] = append(dst[k], string(f.Value))
}

// addFields appends every field of h (nil: none) to dst.
func addFields(dst http.Header, h *message.Header) {
	if h == nil {
		return
	}
	for i := range h.Fields {
		addField(dst, "", &h.Fields[i])
	}
}
