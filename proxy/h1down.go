package proxy

import (
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/message"
)

// h1Down is an HTTP/1.1 client connection as the general path's client
// side, used when its route goes to HTTP/2 peers (gRPC, gRPC-Web). The
// HTTP/2 transport reads the request body from its own goroutine, so
// every write to the client holds wmu.
type h1Down struct {
	c       *conn
	h       *Handler
	wmu     sync.Mutex
	read    int64
	chunked bool
	noBody  bool
	sent100 bool
	eof     atomic.Bool
	aborted atomic.Bool
}

// proxyGeneral sends an HTTP/1.1 client's request through the general
// path.
func (c *conn) proxyGeneral(h *Handler, s *Session) {
	d := &c.h1d
	*d = h1Down{c: c, h: h}
	d.eof.Store(c.bodyDone)
	if s.Req.Chunked {
		c.reqDec.Reset(h.Limits.Chunk)
	}
	proxyStream(h, s, d)
	if d.aborted.Load() {
		c.keepAlive = false
	}
}

func (d *h1Down) readBody(p []byte) (int, error) {
	c := d.c
	if d.aborted.Load() {
		return 0, errBodyClosed
	}
	if c.bodyDone {
		return 0, io.EOF
	}
	req := &c.sess.Req
	if c.expect100 && !d.sent100 && c.in.Buffered() == 0 {
		d.sent100 = true
		d.wmu.Lock()
		var err error
		if !c.wroteHead {
			err = c.write(d.h, []byte("HTTP/1.1 100 Continue\r\n\r\n"))
		}
		d.wmu.Unlock()
		if err != nil {
			return 0, err
		}
	}
	if !req.Chunked {
		left := req.ContentLength - d.read
		if c.in.Buffered() == 0 {
			if err := c.readClient(d.h); err != nil {
				return 0, err
			}
		}
		n := copy(p, c.in.Unread()[:min(int64(c.in.Buffered()), left)])
		c.in.Consume(n)
		d.read += int64(n)
		if d.read == req.ContentLength {
			c.bodyDone = true
			d.eof.Store(true)
			return n, io.EOF
		}
		return n, nil
	}
	for {
		if c.reqDec.Done() {
			c.bodyDone = true
			d.eof.Store(true)
			return 0, io.EOF
		}
		in := c.in.Unread()
		if len(in) > len(p) {
			in = in[:len(p)]
		}
		data, n, err := c.reqDec.Decode(in)
		if err != nil && err != http1.ErrIncomplete {
			return 0, err
		}
		copy(p, data)
		c.in.Consume(n)
		if len(data) > 0 {
			return len(data), nil
		}
		if n == 0 && !c.reqDec.Done() {
			if err := c.readClient(d.h); err != nil {
				return 0, err
			}
		}
	}
}

func (d *h1Down) abortBody() {
	d.aborted.Store(true)
	_ = d.c.nc.SetReadDeadline(time.Unix(1, 0))
	d.c.rdl = time.Time{}
}

func (d *h1Down) reqTrailer() *message.Header {
	if t := d.c.reqDec.Trailer(); d.c.sess.Req.Chunked && t.Len() > 0 {
		return t
	}
	return nil
}

func (d *h1Down) started() bool { return d.c.wroteHead }

func (d *h1Down) writeHead(s *Session, resp *message.Response, length int64) error {
	d.wmu.Lock()
	defer d.wmu.Unlock()
	c := d.c
	st := resp.Status
	d.noBody = s.Req.IsMethod("HEAD") || st < 200 || st == 204 || st == 304
	client11 := s.Req.ProtoMinor >= 1
	if !d.noBody {
		resp.Header.Del("Content-Length")
		resp.Header.Del("Transfer-Encoding")
		switch {
		case length >= 0:
			start := len(s.scratch)
			s.scratch = http1.AppendInt(s.scratch, length)
			resp.Header.Add(message.S("Content-Length"), s.scratch[start:len(s.scratch):len(s.scratch)])
		case client11:
			d.chunked = true
			resp.Header.AddString("Transfer-Encoding", "chunked")
		default:
			c.keepAlive = false // close-delimited for an HTTP/1.0 client
		}
	}
	// A body the peer did not wait for may still be arriving: the
	// connection cannot carry another request then.
	if !d.eof.Load() || c.srv.draining.Load() {
		c.keepAlive = false
	}
	if !c.keepAlive {
		resp.Header.AddString("Connection", "close")
	} else if !client11 {
		resp.Header.AddString("Connection", "keep-alive")
	}
	if c.altSvc != "" {
		resp.Header.AddString("Alt-Svc", c.altSvc)
	}
	resp.ProtoMajor, resp.ProtoMinor = 1, 1
	c.out = http1.AppendResponseHead(c.out[:0], resp)
	c.wroteHead = true
	return c.write(d.h, c.out)
}

func (d *h1Down) writeBody(p []byte) error {
	if d.noBody {
		return nil
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	c := d.c
	if d.chunked {
		c.out = http1.AppendChunkHeader(c.out[:0], len(p))
		return c.writev(d.h, c.out, p, crlf)
	}
	return c.write(d.h, p)
}

// flush has nothing to do: writes go straight to the socket.
func (d *h1Down) flush() error { return nil }

func (d *h1Down) finish(trailer *message.Header) error {
	if d.noBody || !d.chunked {
		return nil
	}
	d.wmu.Lock()
	defer d.wmu.Unlock()
	c := d.c
	c.out = http1.AppendLastChunk(c.out[:0], trailer)
	return c.write(d.h, c.out)
}
