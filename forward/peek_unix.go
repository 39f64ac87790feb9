//go:build unix

package forward

import (
	"io"
	"net"
	"syscall"
)

// peekSocket waits (within the read deadline) for the first byte on c's
// socket and returns it without consuming it.
func peekSocket(c net.Conn) (byte, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return 0, errNoPeek
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return 0, errNoPeek
	}
	var b [1]byte
	var n int
	var perr error
	err = raw.Read(func(fd uintptr) bool {
		for {
			n, _, perr = syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK)
			if perr == syscall.EINTR {
				continue
			}
			return perr != syscall.EAGAIN
		}
	})
	if err != nil {
		return 0, err
	}
	if perr != nil {
		return 0, perr
	}
	if n == 0 {
		return 0, io.EOF
	}
	return b[0], nil
}
