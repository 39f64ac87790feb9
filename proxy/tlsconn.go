package proxy

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"time"

	"golang.org/x/net/http2"
)

// handshake runs the TLS server handshake within the header timeout and
// records what filters and logs may want of it.
func (c *conn) handshake(h *Handler) bool {
	nc := c.nc
	var fp func() (string, string)
	if f := c.ls.opts.Fingerprint; f != nil {
		nc, fp = f(nc)
	}
	tc := tls.Server(nc, c.ls.opts.TLS)
	ctx, cancel := context.WithTimeout(context.Background(), h.Limits.HeaderReadTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		h.ErrorLog.Debug("tls handshake failed", "client", c.client, "err", err)
		return false
	}
	st := tc.ConnectionState()
	info := &TLSInfo{Version: st.Version, CipherSuite: st.CipherSuite, ServerName: st.ServerName, ALPN: st.NegotiatedProtocol}
	if len(st.VerifiedChains) > 0 && len(st.PeerCertificates) > 0 {
		info.ClientCertSubject = st.PeerCertificates[0].Subject.String()
	}
	if fp != nil {
		info.JA3, info.JA4 = fp()
	}
	c.nc, c.tls, c.tlsInfo = tc, true, info
	// Idle waits read the socket directly only for cleartext; TLS
	// records must go through crypto/tls.
	c.raw = nil
	return true
}

// sniffPreface reports whether a cleartext connection starts with the
// HTTP/2 client preface. It reads until the preface is complete or the
// bytes differ from it.
func (c *conn) sniffPreface(h *Handler) bool {
	p := []byte(http2.ClientPreface)
	_ = c.nc.SetReadDeadline(time.Now().Add(h.Limits.HeaderReadTimeout))
	c.rdl = time.Time{}
	for {
		got := c.in.Unread()
		n := min(len(got), len(p))
		if !bytes.Equal(got[:n], p[:n]) {
			return false
		}
		if n == len(p) {
			return true
		}
		if _, err := c.in.Fill(c.nc); err != nil {
			return false
		}
	}
}

// serveH2C serves a cleartext HTTP/2 connection whose first bytes are in
// the read buffer.
func (c *conn) serveH2C() {
	buffered := append([]byte(nil), c.in.Unread()...)
	c.in.Consume(len(buffered))
	c.release()
	_ = c.nc.SetReadDeadline(time.Time{})
	c.serveH2(&prefixConn{Conn: c.nc, pre: buffered})
}

// prefixConn returns bytes already read before reading the connection.
type prefixConn struct {
	net.Conn
	pre []byte
}

func (p *prefixConn) Read(b []byte) (int, error) {
	if len(p.pre) > 0 {
		n := copy(b, p.pre)
		p.pre = p.pre[n:]
		return n, nil
	}
	return p.Conn.Read(b)
}
