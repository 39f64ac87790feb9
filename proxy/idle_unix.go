//go:build unix

package proxy

import (
	"io"
	"syscall"
)

type rawConn = syscall.RawConn

func (c *conn) initRaw() {
	if sc, ok := c.nc.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			c.raw = raw
			c.readFn = c.idleRead
		}
	}
}

// idleRead runs inside RawConn.Read while the connection waits for its
// next request. It takes a read buffer only once the socket has bytes,
// and gives it back before waiting: a parked idle connection holds none.
func (c *conn) idleRead(fd uintptr) bool {
	c.acquireBuf()
	n, err := syscall.Read(int(fd), c.in.B[c.in.W:])
	if err == syscall.EAGAIN {
		c.releaseBuf()
		return false // wait for readiness, then call again
	}
	if err == syscall.EINTR {
		return c.idleRead(fd)
	}
	if n < 0 {
		n = 0
	}
	if n == 0 && err == nil {
		err = io.EOF
	}
	c.in.W += n
	c.rn, c.rerr = n, err
	return true
}
