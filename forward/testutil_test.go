package forward

import (
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// The helpers below stand in for internal/testutil, which imports
// package weir and so cannot be imported by this package's tests (its
// Weir-free part, internal/testkit, can).

// dial connects to addr over TCP and closes the connection when the test
// ends.
func dial(t testing.TB, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// readAllUntilClose reads c until it closes (closed true) or timeout
// passes.
func readAllUntilClose(c net.Conn, timeout time.Duration) (got []byte, closed bool) {
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err == nil {
			continue
		}
		var ne net.Error
		return got, !(errors.As(err, &ne) && ne.Timeout() || errors.Is(err, os.ErrDeadlineExceeded))
	}
}

// clip shortens b for messages.
func clip(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "..."
	}
	return string(b)
}
