package tlsfp

import (
	"net"
	"sync/atomic"
)

// Conn wraps a connection accepted by Weir so that the ClientHello is
// parsed as crypto/tls reads it:
//
//	fc := tlsfp.NewConn(raw)
//	tc := tls.Server(fc, cfg)
//	// after tc.Handshake, or inside cfg.GetConfigForClient via
//	// ClientHelloInfo.Conn:
//	hello := fc.ClientHello() // or tlsfp.Lookup(tc)
//
// Conn passes every byte through unchanged and never fails a Read itself.
// While the hello is incomplete it feeds what it reads to a Parser (which
// holds only the handshake message, at most MaxHandshakeSize bytes); once
// the hello is parsed, or parsing failed, it drops that state and Read is
// a plain call to the wrapped connection. A connection whose first byte
// is not a TLS handshake record costs nothing beyond the Conn itself.
//
// Only the first ClientHello is seen: the second one a client sends after
// a HelloRetryRequest is not parsed.
//
// Read must not be called from two goroutines at once (crypto/tls never
// does). ClientHello and Err may be called from any goroutine.
type Conn struct {
	net.Conn
	p     Parser
	done  atomic.Bool // set once hello and err are final
	hello *ClientHello
	err   error
}

// NewConn wraps c.
func NewConn(c net.Conn) *Conn {
	return &Conn{Conn: c}
}

// Read reads from the wrapped connection and, until the ClientHello is
// complete, parses what it read.
func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if c.done.Load() {
		return n, err
	}
	if n > 0 {
		h, perr := c.p.Feed(b[:n])
		if perr != ErrIncomplete {
			c.finish(h, perr)
			return n, err
		}
	}
	if err != nil {
		if ne, ok := err.(net.Error); !ok || !ne.Timeout() {
			// The stream ended (or broke) before the hello did. A
			// timeout is not final: the caller may read again.
			c.finish(nil, ErrIncomplete)
		}
	}
	return n, err
}

func (c *Conn) finish(h *ClientHello, err error) {
	c.hello, c.err = h, err
	c.p = Parser{} // release the message buffer
	c.done.Store(true)
}

// ClientHello returns the parsed ClientHello, or nil if it has not been
// read completely yet, or the connection is not TLS, or its hello could
// not be parsed (Err says why). Once crypto/tls has read the hello (from
// GetConfigForClient on) the result is final.
func (c *Conn) ClientHello() *ClientHello {
	if !c.done.Load() {
		return nil
	}
	return c.hello
}

// Err returns why ClientHello is nil: ErrIncomplete while the hello is
// still being read, or if the connection ended first; ErrNotTLS,
// ErrTooLarge or an error wrapping ErrMalformed if parsing failed. It
// returns nil once a hello was parsed.
func (c *Conn) Err() error {
	if !c.done.Load() {
		return ErrIncomplete
	}
	return c.err
}

// NetConn returns the wrapped connection, as tls.Conn.NetConn does.
func (c *Conn) NetConn() net.Conn {
	return c.Conn
}

// maxUnwrap bounds how many NetConn layers Lookup looks through.
const maxUnwrap = 8

// Lookup returns the ClientHello recorded by the Conn inside c: c itself,
// or found by unwrapping NetConn methods (as *tls.Conn has) at most a few
// layers deep. It returns nil if there is no Conn or it has no hello.
func Lookup(c net.Conn) *ClientHello {
	for range maxUnwrap {
		switch v := c.(type) {
		case *Conn:
			return v.ClientHello()
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}

// Fingerprint wraps an accepted connection in a Conn and returns it with a
// function that reports the client's fingerprints once crypto/tls has read
// the ClientHello: the JA3 hash (JA3Hash) and JA4 over TCP. Both are ""
// when there is no parsed hello. Its signature is the one Weir's listener
// options take for their Fingerprint hook.
func Fingerprint(c net.Conn) (net.Conn, func() (ja3, ja4 string)) {
	fc := NewConn(c)
	return fc, fc.fingerprints
}

func (c *Conn) fingerprints() (ja3, ja4 string) {
	h := c.ClientHello()
	if h == nil {
		return "", ""
	}
	return h.JA3Hash(), h.JA4(TransportTCP)
}

// NewListener returns a listener whose accepted connections are wrapped
// in Conn, for tls.NewListener(tlsfp.NewListener(ln), cfg).
func NewListener(l net.Listener) net.Listener {
	return listener{l}
}

type listener struct{ net.Listener }

func (l listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return NewConn(c), nil
}
