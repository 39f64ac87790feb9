package forward

import (
	"errors"
	"io"
	"net"
	"sync"
)

// connListener is the listener the HTTP engine serves: it yields the
// connections the server identified as HTTP, one at a time.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	once sync.Once
	done chan struct{}
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

// deliver hands c to the engine's Accept; false when the listener closed
// first (the caller then closes c).
func (l *connListener) deliver(c net.Conn) bool {
	select {
	case <-l.done:
		return false
	default:
	}
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

// Accept implements net.Listener.
func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener. The real listener belongs to the Server.
func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

// Addr implements net.Listener.
func (l *connListener) Addr() net.Addr { return l.addr }

// errNoPeek means the connection offers no way to peek at its socket.
var errNoPeek = errors.New("forward: cannot peek at this connection")

// peekFirst returns the first byte the client sent and the connection to
// go on with. On a socket the byte is peeked and stays unread, so the
// connection returned is c itself and keeps every fast path (splice, the
// engine's buffer-free idle wait). Other connections are read, and the
// byte is given back by a wrapper.
func peekFirst(c net.Conn) (byte, net.Conn, error) {
	b, err := peekSocket(c)
	if err == nil {
		return b, c, nil
	}
	if !errors.Is(err, errNoPeek) {
		return 0, nil, err
	}
	var one [1]byte
	if _, err := io.ReadFull(c, one[:]); err != nil {
		return 0, nil, err
	}
	return one[0], &replayConn{Conn: c, early: one[:]}, nil
}

// replayConn gives back bytes read ahead before reading on.
type replayConn struct {
	net.Conn
	mu    sync.Mutex
	early []byte
}

func (r *replayConn) Read(p []byte) (int, error) {
	r.mu.Lock()
	if len(r.early) > 0 {
		n := copy(p, r.early)
		r.early = r.early[n:]
		r.mu.Unlock()
		return n, nil
	}
	r.mu.Unlock()
	return r.Conn.Read(p)
}

// CloseWrite closes the write half when the connection has one.
func (r *replayConn) CloseWrite() error {
	if cw, ok := r.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.ErrUnsupported
}
