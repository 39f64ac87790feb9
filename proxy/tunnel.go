package proxy

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/message"
)

// ConnectHandler serves CONNECT requests (a forward proxy's tunnels). It
// runs after the handler chain's RequestFilters (authentication, say),
// instead of routing. It answers with Tunnel.Accept, then relays bytes
// over the connection Accept returns, or with Tunnel.Refuse. An error
// returned before either is answered like a filter's (a *StatusError
// gives its status).
type ConnectHandler interface {
	Connect(s *Session, t *Tunnel) error
}

// Tunnel is the client side of one CONNECT request: an HTTP/1.1
// connection (RFC 9110 9.3.6) or an HTTP/2 stream (RFC 9113 8.5).
type Tunnel struct {
	s        *Session
	c        *conn // HTTP/1.1
	buffered []byte
	ms       muxTunnel // HTTP/2, HTTP/3
	answered bool
}

// Answered reports whether Accept or Refuse was called.
func (t *Tunnel) Answered() bool { return t.answered }

// Accept answers 200 with header's fields (nil: none) and returns the
// connection the tunnel's bytes travel over: reads give what the client
// sends (bytes it sent right after its request head first), writes go to
// the client. Over HTTP/2 the connection is the request's stream, and
// CloseWrite ends it.
func (t *Tunnel) Accept(header *message.Header) (net.Conn, error) {
	if t.answered {
		return nil, errors.New("proxy: CONNECT already answered")
	}
	t.answered = true
	t.s.Status = 200
	if t.c != nil {
		c := t.c
		resp := message.Response{Status: 200, Reason: connectEstablished}
		if header != nil {
			resp.Header.Fields = header.Fields
		}
		c.out = http1.AppendResponseHead(c.out[:0], &resp)
		c.wroteHead = true
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.handler.Load().Limits.WriteTimeout))
		if _, err := c.nc.Write(c.out); err != nil {
			return nil, err
		}
		_ = c.nc.SetDeadline(time.Time{})
		if len(t.buffered) == 0 {
			// The connection itself, so that relays can splice.
			return c.nc, nil
		}
		return &prefixConn{Conn: c.nc, pre: t.buffered}, nil
	}
	return t.ms.accept(t, header)
}

// muxTunnel is a CONNECT stream of a multiplexed client.
type muxTunnel interface {
	downstream
	accept(t *Tunnel, header *message.Header) (net.Conn, error)
	refuse(t *Tunnel, status int, header *message.Header, body []byte) error
}

func (d *httpDown) accept(t *Tunnel, header *message.Header) (net.Conn, error) {
	addFields(d.w.Header(), header)
	d.w.WriteHeader(200)
	d.wrote = true
	rc := http.NewResponseController(d.w)
	if err := rc.Flush(); err != nil {
		return nil, err
	}
	return &streamConn{r: d.r, w: d.w, rc: rc, local: addrOf(t.s.Local), remote: addrOf(t.s.Client)}, nil
}

// Refuse answers status with header's fields and body; the request ends.
func (t *Tunnel) Refuse(status int, header *message.Header, body []byte) error {
	if t.answered {
		return errors.New("proxy: CONNECT already answered")
	}
	t.answered = true
	if t.c != nil {
		t.c.keepAlive = false // writeLocal then says Connection: close
		return t.c.writeLocal(t.s, status, header, body)
	}
	t.s.Status = status
	return t.ms.refuse(t, status, header, body)
}

func (d *httpDown) refuse(t *Tunnel, status int, header *message.Header, body []byte) error {
	t.s.BytesOut = int64(len(body))
	hd := d.w.Header()
	addFields(hd, header)
	hd["Content-Length"] = []string{strconv.Itoa(len(body))}
	d.w.WriteHeader(status)
	d.wrote = true
	_, err := d.w.Write(body)
	return err
}

// connectEstablished is the reason phrase of an HTTP/1.1 CONNECT's 200.
var connectEstablished = []byte("Connection Established")

func addrOf(ap interface{ String() string }) net.Addr { return tunnelAddr(ap.String()) }

type tunnelAddr string

func (a tunnelAddr) Network() string { return "tcp" }
func (a tunnelAddr) String() string  { return string(a) }

// streamConn is an HTTP/2 CONNECT stream as a net.Conn.
type streamConn struct {
	r             *http.Request
	w             http.ResponseWriter
	rc            *http.ResponseController
	local, remote net.Addr
	mu            sync.Mutex
	closed        bool
}

func (c *streamConn) Read(p []byte) (int, error) { return c.r.Body.Read(p) }

func (c *streamConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, net.ErrClosed
	}
	n, err := c.w.Write(p)
	if err == nil {
		err = c.rc.Flush()
	}
	return n, err
}

// CloseWrite ends the stream toward the client (END_STREAM) once the
// handler returns; nothing more is written.
func (c *streamConn) CloseWrite() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return nil
}

func (c *streamConn) Close() error {
	_ = c.CloseWrite()
	return c.r.Body.Close()
}

func (c *streamConn) LocalAddr() net.Addr  { return c.local }
func (c *streamConn) RemoteAddr() net.Addr { return c.remote }
func (c *streamConn) SetDeadline(t time.Time) error {
	_ = c.rc.SetReadDeadline(t)
	return c.rc.SetWriteDeadline(t)
}
func (c *streamConn) SetReadDeadline(t time.Time) error  { return c.rc.SetReadDeadline(t) }
func (c *streamConn) SetWriteDeadline(t time.Time) error { return c.rc.SetWriteDeadline(t) }

var _ io.ReadWriteCloser = (*streamConn)(nil)

// connectStream hands an HTTP/2 or HTTP/3 CONNECT request to the
// ConnectHandler.
func connectStream(h *Handler, s *Session, d muxTunnel) {
	t := &Tunnel{s: s, ms: d}
	if err := h.Connect.Connect(s, t); err != nil {
		if s.Err == nil {
			s.Err = err
		}
		if !t.answered {
			failDown(h, s, d, err)
		}
	}
}
