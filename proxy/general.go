package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/message"
	"github.com/weirproxy/weir/upstream"
)

// The general path carries every exchange that is not HTTP/1.1 on both
// sides: HTTP/2 and HTTP/3 clients (whatever the upstream speaks), and
// HTTP/1.1 clients whose route goes to HTTP/2 peers. It runs the same
// phases and filters as the HTTP/1.1 fast path in conn.go and upstream.go;
// only the two ends differ:
//
//	client side  downstream: h1Down (HTTP/1.1 connection), h2Stream
//	             (HTTP/2 stream, h2server.go), httpDown (HTTP/3 stream),
//	             grpcWebDown (translation)
//	peer side    roundTripH1 (pooled HTTP/1.1, this package's codec) or
//	             roundTripH2 (multiplexed HTTP/2, upstream.H2Transport)

// downstream is the client side of one exchange on the general path.
type downstream interface {
	// readBody reads request body bytes, io.EOF at its end.
	readBody(p []byte) (int, error)
	// abortBody makes a readBody in progress, and every later one, fail.
	abortBody()
	// reqTrailer returns the request's trailer fields once readBody
	// returned io.EOF (nil: none).
	reqTrailer() *message.Header
	// writeHead sends the response head. length is the body length, or
	// -1 when it is not known in advance. The head's own framing fields
	// are replaced to match, except for responses that never have a body
	// (HEAD, 1xx, 204, 304), whose fields are sent as they are.
	writeHead(s *Session, resp *message.Response, length int64) error
	// writeBody sends body bytes; they may wait in a buffer until flush
	// or the end of the response.
	writeBody(p []byte) error
	// flush pushes written bytes to the client now.
	flush() error
	// finish ends the response, with trailer fields (nil: none).
	finish(trailer *message.Header) error
	// started reports whether the response head was sent.
	started() bool
}

// bodyReader feeds a downstream's request body to a peer. The HTTP/2
// transport reads it from its own goroutine while the response streams
// back (gRPC bidirectional streams need exactly that), so reads are
// serialised with close: once close returns, no read runs or will run,
// and the client connection is the engine's again.
type bodyReader struct {
	mu     sync.Mutex
	ds     downstream
	max    int64
	n      int64
	closed bool
	eof    atomic.Bool
	err    error // the client-side or filter error that ended the body, if any
	// filter runs the request body filters (nil: there are none).
	filter func(p []byte, end bool) error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.eof.Load() {
		return 0, io.EOF
	}
	n, err := b.ds.readBody(p)
	b.n += int64(n)
	if b.max > 0 && b.n > b.max {
		b.err = errTooLarge
		return 0, b.err
	}
	if err == io.EOF {
		b.eof.Store(true)
	} else if err != nil {
		b.err = &ClientError{err}
		return n, err
	}
	if b.filter != nil {
		if ferr := b.filter(p[:n], err == io.EOF); ferr != nil {
			b.err = ferr
			return 0, ferr
		}
	}
	return n, err
}

// Close stops the body: a read blocked on the client is woken, and Close
// returns once no read is running.
func (b *bodyReader) Close() error {
	if !b.eof.Load() {
		b.ds.abortBody()
	}
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	return nil
}

var errBodyClosed = errors.New("request body closed")

// genBuf is the copy buffer of general-path bodies.
var genBuf = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// serveStream runs every phase for one request of a multiplexed client
// (HTTP/2, HTTP/3). s.Req is filled by the front end.
func (h *Handler) serveStream(s *Session, ds downstream) {
	if max := h.Limits.MaxBodyBytes; max > 0 && s.Req.ContentLength > max {
		failDown(h, s, ds, errTooLarge)
	} else if err := h.Chain.runRequest(s); err != nil {
		failDown(h, s, ds, err)
	} else if d, ok := ds.(muxTunnel); ok && !s.responded && h.Connect != nil && s.Req.IsMethod("CONNECT") {
		connectStream(h, s, d)
	} else if !s.responded {
		if s.Route = h.Router.Route(s); s.Route == nil {
			failDown(h, s, ds, errNoRoute)
		} else if err := s.Route.Chain.runRequest(s); err != nil {
			failDown(h, s, ds, err)
		} else if !s.responded {
			proxyStream(h, s, ds)
		}
	}
	s.End = time.Now()
	if s.Route != nil {
		s.Route.Chain.runLog(s)
	}
	h.Chain.runLog(s)
}

// failDown answers the request with the status err maps to, unless the
// response already started.
func failDown(h *Handler, s *Session, ds downstream, err error) {
	if s.Err == nil {
		s.Err = err
	}
	if ds.started() {
		return
	}
	status, msg := 500, ""
	var se *StatusError
	if errors.As(err, &se) {
		status, msg = se.Status, se.Msg
	} else if isTimeout(err) || errors.Is(err, context.DeadlineExceeded) {
		status = 504
	} else if ue := (*UpstreamError)(nil); errors.As(err, &ue) {
		status = 502
	} else if ce := (*ClientError)(nil); errors.As(err, &ce) {
		status = 400
		if errors.As(ce.Err, &se) { // the client side's own answer (a body timeout)
			status, msg = se.Status, se.Msg
		}
	} else {
		h.ErrorLog.Warn("request failed", "client", s.Client, "err", err)
	}
	text := http1.StatusText(status)
	body := make([]byte, 0, 64)
	body = http1.AppendInt(body, int64(status))
	body = append(body, ' ')
	body = append(body, text...)
	if msg != "" && status != 500 {
		body = append(body, ": "...)
		body = append(body, msg...)
	}
	body = append(body, '\n')
	if isGRPCRequest(s) {
		_ = writeGRPCStatus(s, ds, status, body[:len(body)-1])
		return
	}
	var hd message.Header
	hd.AddString("Content-Type", "text/plain; charset=utf-8")
	_ = writeLocalDown(s, ds, status, &hd, body)
}

// writeLocalDown sends a response made by Weir on the general path.
func writeLocalDown(s *Session, ds downstream, status int, header *message.Header, body []byte) error {
	if ds.started() {
		return errors.New("proxy: response already started")
	}
	var resp message.Response
	resp.ProtoMajor, resp.ProtoMinor = 1, 1
	resp.Status = status
	if header != nil {
		resp.Header.Fields = append(resp.Header.Fields, header.Fields...)
	}
	s.Status = status
	s.BytesOut = int64(len(body))
	if err := ds.writeHead(s, &resp, int64(len(body))); err != nil {
		return err
	}
	if len(body) > 0 && !s.Req.IsMethod("HEAD") {
		if err := ds.writeBody(body); err != nil {
			return err
		}
	}
	return ds.finish(nil)
}

// proxyStream sends the request to the route's upstream on the general
// path, retrying where safe, and streams the response back.
func proxyStream(h *Handler, s *Session, ds downstream) {
	g := s.Route.Upstream
	ctx := context.Background()
	if g.Timeouts.Request > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, s.Start.Add(g.Timeouts.Request))
		defer cancel()
	}
	buildUpstreamRequest(h, s)
	ur := &s.UpstreamReq
	if s.Route.GRPCWeb {
		if text, ok := isGRPCWeb(&s.Req); ok {
			ds = newGRPCWebDown(ds, text, &s.Req)
			toGRPCRequest(ur, text)
		}
	}
	if g.Proto != upstream.ProtoH2 {
		toHTTP1Request(s)
	}
	if err := s.Route.Chain.runUpstream(s, ur); err != nil {
		failDown(h, s, ds, err)
		return
	}
	if err := h.Chain.runUpstream(s, ur); err != nil {
		failDown(h, s, ds, err)
		return
	}
	body := &bodyReader{ds: ds, max: h.Limits.MaxBodyBytes}
	if hasRequestBodyFilter(h, s) {
		body.filter = func(p []byte, end bool) error { return filterRequestBody(h, s, p, end) }
	}
	defer func() {
		body.Close()
		s.BytesIn = body.n
	}()
	hasBody := s.Req.ContentLength != 0
	key := hashKey(g, s)
	var tried uint64
	stale := 0
	for {
		p := g.Balancer.Pick(key, tried)
		if p == nil {
			if s.Attempts == 0 {
				failDown(h, s, ds, errNoPeer)
			} else {
				failDown(h, s, ds, s.Err)
			}
			return
		}
		tried |= 1 << uint(p.Index)
		s.Peer = p
		s.Attempts++
		p.Begin()
		var res outcome
		if g.Proto == upstream.ProtoH2 {
			res = roundTripH2(ctx, h, s, ds, g, body)
		} else {
			res = roundTripH1(ctx, h, s, ds, g, body)
		}
		p.End()
		// A body that was read from cannot be sent again.
		if hasBody && res != done && body.n > 0 {
			res = failed
		}
		if res != done && isGRPCRequest(s) && grpcDeadlinePassed(s) {
			s.Err, res = errGRPCDeadline, failed
		}
		switch res {
		case done:
			p.ReportSuccess()
			return
		case retryStale:
			p.Pool().PruneClosed()
			if stale++; stale <= 3 {
				tried &^= 1 << uint(p.Index)
				s.Attempts--
				continue
			}
			peerFailed(h, s, g, p)
		case retryPeer:
			peerFailed(h, s, g, p)
			if s.Attempts <= g.Retries && !ds.started() {
				continue
			}
		case failed:
			// A client's failure, and an answer Weir chose (a filter's
			// refusal, a body too large, a gRPC call past its deadline),
			// are not the peer's.
			var ce *ClientError
			var se *StatusError
			if !errors.As(s.Err, &ce) && !errors.As(s.Err, &se) {
				peerFailed(h, s, g, p)
			}
		}
		if body.err != nil {
			s.Err = body.err
		}
		failDown(h, s, ds, s.Err)
		return
	}
}

// toHTTP1Request adapts the upstream head of an HTTP/2 or HTTP/3 request
// to HTTP/1.1: a body of unknown length goes chunked, the authority
// becomes Host, and split Cookie fields are joined (RFC 9113 8.2.3).
func toHTTP1Request(s *Session) {
	ur := &s.UpstreamReq
	if s.Req.ProtoMajor < 2 {
		return
	}
	ur.ProtoMajor, ur.ProtoMinor = 1, 1
	ur.Header.Del("Content-Length")
	ur.Header.Del("Transfer-Encoding")
	ur.Chunked = false
	switch {
	case ur.ContentLength > 0:
		start := len(s.scratch)
		s.scratch = http1.AppendInt(s.scratch, ur.ContentLength)
		ur.Header.Add(message.S("Content-Length"), s.scratch[start:len(s.scratch):len(s.scratch)])
	case ur.ContentLength < 0:
		ur.Chunked = true
		ur.Header.AddString("Transfer-Encoding", "chunked")
	}
	if !ur.Header.Has("Host") && len(ur.Authority) > 0 {
		ur.Header.Add(message.S("Host"), ur.Authority)
	}
	if ur.Header.Count("Cookie") > 1 {
		start := len(s.scratch)
		for _, f := range ur.Header.Fields {
			if message.EqualFold(f.Name, "Cookie") {
				if len(s.scratch) > start {
					s.scratch = append(s.scratch, "; "...)
				}
				s.scratch = append(s.scratch, f.Value...)
			}
		}
		ur.Header.Set("Cookie", s.scratch[start:len(s.scratch):len(s.scratch)])
	}
}

// respond relays a peer's response head and body to the client through
// the response and body filters. read returns body bytes (io.EOF at the
// end); trailer is called after it.
//
// Bytes are pushed to the client (flush) before respond waits for more,
// unless ready says more is already at hand: a response that arrives whole
// goes out in one write with its end.
func respond(h *Handler, s *Session, ds downstream, resp *message.Response, length int64,
	read func([]byte) (int, error), ready func() bool, trailer func() *message.Header) (clientFailed bool, err error) {
	if err := s.Route.Chain.runResponse(s, resp); err != nil {
		return false, &filterError{err}
	}
	if err := h.Chain.runResponse(s, resp); err != nil {
		return false, &filterError{err}
	}
	filtered := s.Route.Chain.hasBody() || h.Chain.hasBody()
	if filtered {
		length = -1
	}
	if h.Via {
		resp.Header.AddString("Via", "1.1 weir")
	}
	s.Status = resp.Status
	if err := ds.writeHead(s, resp, length); err != nil {
		return true, err
	}
	bp := genBuf.Get().(*[]byte)
	defer genBuf.Put(bp)
	buf := *bp
	for {
		n, rerr := read(buf)
		end := rerr == io.EOF
		if rerr != nil && !end {
			return false, rerr
		}
		out := buf[:n]
		if filtered {
			if out, err = s.Route.Chain.runBody(s, out, end); err == nil {
				out, err = h.Chain.runBody(s, out, end)
			}
			if err != nil {
				return false, &filterError{err}
			}
		}
		if len(out) > 0 {
			s.BytesOut += int64(len(out))
			if err := ds.writeBody(out); err != nil {
				return true, err
			}
		}
		if end {
			break
		}
		if ready == nil || !ready() {
			if err := ds.flush(); err != nil {
				return true, err
			}
		}
	}
	var tr *message.Header
	if trailer != nil {
		tr = trailer()
	}
	if err := ds.finish(tr); err != nil {
		return true, err
	}
	return false, nil
}

// filterError marks an error a filter returned while the response was
// relayed: it is answered like any filter error, never held against the
// peer.
type filterError struct{ err error }

func (e *filterError) Error() string { return e.err.Error() }
func (e *filterError) Unwrap() error { return e.err }

// roundTripH2 runs one attempt against an HTTP/2 peer.
func roundTripH2(ctx context.Context, h *Handler, s *Session, ds downstream, g *upstream.Group, body *bodyReader) outcome {
	hreq, err := toHTTPRequest(ctx, s, g, body)
	if err != nil {
		s.Err = &StatusError{Status: 400, Msg: "request cannot be sent over HTTP/2"}
		return failed
	}
	hresp, err := g.H2.RoundTrip(hreq)
	if err != nil {
		s.Err = &UpstreamError{s.Peer.Addr, "exchange", err}
		if body.err != nil {
			s.Err = body.err
			return failed
		}
		if ctx.Err() != nil {
			s.Err = &UpstreamError{s.Peer.Addr, "exchange", context.DeadlineExceeded}
			return failed
		}
		return retryPeer
	}
	defer hresp.Body.Close()
	s.UpstreamHeadAt = time.Now()
	resp := &s.Resp
	resp.ProtoMajor, resp.ProtoMinor = 2, 0
	resp.Status = hresp.StatusCode
	fromHTTPHeader(&resp.Header, hresp.Header)
	length := hresp.ContentLength
	if len(hresp.Trailer) > 0 || isGRPC(resp.Header.Get("Content-Type")) {
		// Trailers are coming: an HTTP/1.1 client can only get them
		// with chunked framing.
		length = -1
	}
	clientFailed, err := respond(h, s, ds, resp, length, hresp.Body.Read, nil, func() *message.Header {
		if len(hresp.Trailer) == 0 {
			return nil
		}
		var t message.Header
		fromHTTPHeader(&t, hresp.Trailer)
		return &t
	})
	if err != nil {
		return streamFailure(s, err, clientFailed, ctx)
	}
	return done
}

// isGRPC reports a gRPC content type.
func isGRPC(ct []byte) bool {
	const p = "application/grpc"
	return len(ct) >= len(p) && message.EqualFold(ct[:len(p)], p)
}

// streamFailure classifies an error while a response streamed.
func streamFailure(s *Session, err error, clientFailed bool, ctx context.Context) outcome {
	var fe *filterError
	switch {
	case errors.As(err, &fe):
		s.Err = fe.err
	case clientFailed:
		s.Err = &ClientError{err}
	case ctx.Err() != nil:
		s.Err = &UpstreamError{s.Peer.Addr, "read body", context.DeadlineExceeded}
	default:
		s.Err = &UpstreamError{s.Peer.Addr, "read body", err}
	}
	return failed
}

// toHTTPRequest builds the request the HTTP/2 transport sends. Only
// fields allowed in HTTP/2 go out: connection-specific ones were removed
// as hop-by-hop, Host becomes :authority, and TE is sent only as
// "trailers" when the client asked for trailers (gRPC needs it).
func toHTTPRequest(ctx context.Context, s *Session, g *upstream.Group, body *bodyReader) (*http.Request, error) {
	ur := &s.UpstreamReq
	target := string(ur.Path)
	if len(target) == 0 || target[0] != '/' {
		return nil, errors.New("target is not origin-form")
	}
	hreq, err := http.NewRequestWithContext(ctx, string(ur.Method), g.H2.Scheme()+"://"+s.Peer.Addr+target, nil)
	if err != nil {
		return nil, err
	}
	hreq.Host = string(ur.Authority)
	if v := ur.Header.Get("Host"); v != nil {
		hreq.Host = string(v)
	}
	for _, f := range ur.Header.Fields {
		switch {
		case message.EqualFold(f.Name, "Host"), message.EqualFold(f.Name, "Content-Length"),
			message.EqualFold(f.Name, "Transfer-Encoding"), message.EqualFold(f.Name, "TE"):
			continue
		}
		addField(hreq.Header, "", &f)
	}
	if s.Req.Header.HasToken("TE", "trailers") || ur.Header.HasToken("TE", "trailers") {
		hreq.Header["Te"] = []string{"trailers"}
	}
	if s.Req.ContentLength != 0 {
		hreq.Body = body
		hreq.ContentLength = ur.ContentLength
		if hreq.ContentLength == 0 {
			hreq.ContentLength = -1
		}
	}
	return hreq, nil
}

// fromHTTPHeader appends the fields of an http.Header.
func fromHTTPHeader(dst *message.Header, src http.Header) {
	for k, vs := range src {
		for _, v := range vs {
			dst.Add(message.S(k), message.S(v))
		}
	}
}

// roundTripH1 runs one attempt against an HTTP/1.1 peer for a client on
// the general path: the head and body go out, then the response streams
// back. The body is sent before the response is read, as HTTP/1.1 peers
// expect.
func roundTripH1(ctx context.Context, h *Handler, s *Session, ds downstream, g *upstream.Group, body *bodyReader) outcome {
	p := s.Peer
	up, err := p.Pool().Get(ctx, true)
	if err != nil {
		s.Err = &UpstreamError{p.Addr, "connect", err}
		return retryPeer
	}
	s.Reused = up.Reused
	ur := &s.UpstreamReq
	hostOrPeer(s)
	idle := g.Timeouts.Idle
	end, exact := ctx.Deadline()
	bp := genBuf.Get().(*[]byte)
	defer genBuf.Put(bp)
	buf := (*bp)[:0]
	buf = http1.AppendRequestHead(buf, ur)
	armUpWrite(up, capDeadline(idle, end), idle, exact)
	if _, err := up.Write(buf); err != nil {
		up.Close()
		s.Err = &UpstreamError{p.Addr, "write request", err}
		if up.Reused {
			return retryStale
		}
		return retryPeer
	}
	if s.Req.ContentLength != 0 {
		if err := sendBodyH1(up, ur.Chunked, body, (*bp)[:cap(*bp)], func() { armUpWrite(up, capDeadline(idle, end), idle, exact) }); err != nil {
			up.Close()
			if body.err != nil {
				s.Err = body.err
			} else {
				s.Err = &UpstreamError{p.Addr, "write body", err}
			}
			return failed
		}
	}
	armUpRead(up, capDeadline(g.Timeouts.ResponseHeader, end), 0, true) // exact, as documented
	resp := &s.Resp
	got := false
	for {
		err := parseResponseHead(&up.In, &g.ResponseLimits, resp)
		if err == nil && resp.Status == 101 {
			up.Close()
			s.Err = &UpstreamError{p.Addr, "read response", errors.New("101 switching protocols is not supported here")}
			return failed
		}
		if err == nil {
			break
		}
		if err != http1.ErrIncomplete {
			up.Close()
			s.Err = &UpstreamError{p.Addr, "read response", err}
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
		s.Err = &UpstreamError{p.Addr, "read response", rerr}
		if !got && !isTimeout(rerr) {
			if up.Reused {
				return retryStale
			}
			if s.Req.Idempotent() {
				return retryPeer
			}
		}
		return failed
	}
	s.UpstreamHeadAt = time.Now()
	mode, length := http1.ResponseBodyMode(s.Req.Method, resp)
	reusable := !resp.Close && mode != http1.BodyUntilClose
	removeHopByHop(&resp.Header)
	r := &h1BodyReader{up: up, mode: mode, left: length, idle: idle, end: end, exact: exact}
	if mode != http1.BodyLength {
		length = -1
	}
	if mode == http1.BodyChunked {
		r.dec.Reset(http1.ChunkLimits{})
	}
	clientFailed, err := respond(h, s, ds, resp, length, r.Read, r.ready, r.trailer)
	if err != nil {
		up.Close()
		return streamFailure(s, err, clientFailed, ctx)
	}
	if reusable {
		up.Pool().Put(up)
	} else {
		up.Close()
	}
	return done
}

// sendBodyH1 copies a general-path request body to an HTTP/1.1 peer,
// chunked when its length is unknown.
func sendBodyH1(up *upstream.Conn, chunked bool, body *bodyReader, buf []byte, arm func()) error {
	var hdr []byte
	for {
		room := buf
		if chunked {
			room = buf[:len(buf)-16]
		}
		n, err := body.Read(room)
		if n > 0 {
			arm()
			if chunked {
				hdr = http1.AppendChunkHeader(hdr[:0], n)
				bufs := net.Buffers{hdr, room[:n], crlf}
				if _, werr := bufs.WriteTo(up); werr != nil {
					return werr
				}
			} else if _, werr := up.Write(room[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if chunked {
		arm()
		hdr = http1.AppendLastChunk(hdr[:0], body.ds.reqTrailer())
		if _, err := up.Write(hdr); err != nil {
			return err
		}
	}
	return nil
}

// h1BodyReader reads an HTTP/1.1 response body in any framing.
type h1BodyReader struct {
	up    *upstream.Conn
	mode  http1.BodyMode
	left  int64
	dec   http1.ChunkedDecoder
	idle  time.Duration
	end   time.Time // the request's deadline (zero: none)
	exact bool      // a request deadline is in force: deadlines are set exactly
	done  bool
}

func (r *h1BodyReader) fill() error {
	r.arm()
	_, err := r.up.In.Fill(r.up)
	return err
}

// arm sets the read deadline for the next read from the peer.
func (r *h1BodyReader) arm() { armUpRead(r.up, capDeadline(r.idle, r.end), r.idle, r.exact) }

func (r *h1BodyReader) Read(p []byte) (int, error) {
	if r.done {
		return 0, io.EOF
	}
	switch r.mode {
	case http1.BodyNone:
		r.done = true
		return 0, io.EOF
	case http1.BodyLength:
		if r.left == 0 {
			r.done = true
			return 0, io.EOF
		}
		var n int
		if r.up.In.Buffered() == 0 && len(p) >= len(r.up.In.B) {
			// Nothing buffered and a caller's buffer at least as large:
			// read straight into it, as bufio does.
			r.arm()
			var err error
			if n, err = r.up.Read(p[:min(int64(len(p)), r.left)]); n == 0 {
				if err == nil {
					err = io.ErrNoProgress
				}
				return 0, noEOF(err)
			}
		} else {
			if r.up.In.Buffered() == 0 {
				if err := r.fill(); err != nil {
					return 0, noEOF(err)
				}
			}
			n = copy(p, r.up.In.Unread()[:min(int64(r.up.In.Buffered()), r.left)])
			r.up.In.Consume(n)
		}
		r.left -= int64(n)
		if r.left == 0 {
			r.done = true
			return n, io.EOF
		}
		return n, nil
	case http1.BodyChunked:
		for {
			if r.dec.Done() {
				r.done = true
				return 0, io.EOF
			}
			in := r.up.In.Unread()
			if len(in) > len(p) {
				in = in[:len(p)]
			}
			data, n, err := r.dec.Decode(in)
			if err != nil && err != http1.ErrIncomplete {
				return 0, err
			}
			copy(p, data)
			r.up.In.Consume(n)
			if len(data) > 0 {
				return len(data), nil
			}
			if n == 0 && !r.dec.Done() {
				if err := r.fill(); err != nil {
					return 0, noEOF(err)
				}
			}
		}
	default: // until close
		if r.up.In.Buffered() == 0 {
			if err := r.fill(); err != nil {
				if err == io.EOF {
					r.done = true
				}
				return 0, err
			}
		}
		n := copy(p, r.up.In.Unread())
		r.up.In.Consume(n)
		return n, nil
	}
}

// ready reports bytes at hand: the next Read will not wait for the peer.
func (r *h1BodyReader) ready() bool {
	return r.done || r.up.In.Buffered() > 0 || (r.mode == http1.BodyChunked && r.dec.Done())
}

func (r *h1BodyReader) trailer() *message.Header {
	if r.mode != http1.BodyChunked {
		return nil
	}
	if t := r.dec.Trailer(); t.Len() > 0 {
		return t
	}
	return nil
}
