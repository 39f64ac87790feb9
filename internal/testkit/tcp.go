package testkit

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// TCP starts a TCP server on 127.0.0.1 that runs serve on every
// connection (with a deadline of d, then closes it) and returns its
// address. Cleanup closes the listener and waits for the connections.
func TCP(tb testing.TB, d time.Duration, serve func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(d))
				serve(c)
			})
		}
	})
	tb.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// Echo is a TCP server on 127.0.0.1 that sends back what it reads and
// closes its write half when the client closes its own.
func Echo(tb testing.TB) string {
	tb.Helper()
	return TCP(tb, 30*time.Second, func(c net.Conn) {
		_, _ = io.Copy(c, c)
		_ = c.(*net.TCPConn).CloseWrite()
	})
}
