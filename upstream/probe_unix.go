//go:build unix

package upstream

import (
	"net"
	"syscall"
	"time"
)

// initProbe prepares the allocation-free liveness probe on the TCP
// connection under c.
func (c *Conn) initProbe(tcp net.Conn) {
	if sc, ok := tcp.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.probeFn = c.probe
		}
	}
}

// probe runs inside RawConn.Read: a non-blocking peek that tells a live
// idle connection (EAGAIN) from one the peer closed (EOF, reset) or wrote
// unasked bytes to.
func (c *Conn) probe(fd uintptr) bool {
	n, _, err := syscall.Recvfrom(int(fd), c.probeBuf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	c.probeDead = n > 0 || err == nil || (err != syscall.EAGAIN && err != syscall.EINTR)
	return true // never wait for readiness
}

// PeerClosed reports whether an idle connection can no longer carry a
// request. It never blocks and does not allocate.
func (c *Conn) PeerClosed() bool {
	if c.raw == nil {
		return false
	}
	// An expired read deadline fails the read before it looks at the
	// socket. ReadDL is the deadline the connection's last exchange set;
	// one that passed while the connection sat idle is cleared, and the
	// next exchange sets its own. A deadline left unrecorded shows up as
	// a failed read, and is cleared the same way.
	c.probeDead = false
	if c.ReadDL.IsZero() || !time.Now().Before(c.ReadDL) {
		c.clearReadDeadline()
	}
	if err := c.raw.Read(c.probeFn); err != nil {
		c.clearReadDeadline()
		_ = c.raw.Read(c.probeFn)
	}
	return c.probeDead
}

func (c *Conn) clearReadDeadline() {
	_ = c.Conn.SetReadDeadline(time.Time{})
	c.ReadDL = time.Time{}
}
