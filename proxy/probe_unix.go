//go:build unix

package proxy

import (
	"net"
	"syscall"
	"time"
)

// peerClosed reports whether an idle pooled connection can no longer
// carry a request: its peer closed it (EOF or reset) or sent bytes nobody
// asked for. It never blocks: the socket is non-blocking, so a live idle
// connection answers EAGAIN.
func peerClosed(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	// The read deadline of the connection's last exchange may have passed
	// while it sat idle; an expired deadline would fail the read below
	// before it looks at the socket. The next exchange sets its own.
	_ = c.SetReadDeadline(time.Time{})
	var buf [1]byte
	closed := false
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK)
		closed = n > 0 || err == nil || (err != syscall.EAGAIN && err != syscall.EINTR)
		return true // never wait for readiness
	})
	return closed
}
