// Package testkit has the test helpers that several packages share and
// that need no Weir package: the smallest peers and clients (a fixed
// HTTP/1.1 origin, a keep-alive client, raw TCP servers, a DNS server),
// waiting for a condition, a log buffer. Since it imports no Weir
// package, any package's tests may use it; internal/testutil, which
// starts whole Weirs, builds on it.
package testkit

import (
	"bufio"
	"bytes"
	"net"
	"testing"
)

// Fixed starts a loopback origin that answers every bodiless request head
// it reads with the bytes resp, keeping the connection open, and returns
// its address. It allocates nothing per request, so benchmarks through it
// measure the proxy's allocations.
func Fixed(tb testing.TB, resp []byte) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReaderSize(c, 16<<10)
				for {
					// Read the head to its blank line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) == 2 && line[0] == '\r' {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// KeepAlive is one client connection that sends the same request again
// and again and reads each response whole, without allocating.
type KeepAlive struct {
	tb      testing.TB
	c       net.Conn
	br      *bufio.Reader
	buf     []byte
	req     []byte
	bodyLen int
}

// DialKeepAlive connects to addr; every RoundTrip sends req and expects a
// response with a body of bodyLen bytes.
func DialKeepAlive(tb testing.TB, addr string, req []byte, bodyLen int) *KeepAlive {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return &KeepAlive{tb: tb, c: c, br: bufio.NewReaderSize(c, 4096), buf: make([]byte, 4096), req: req, bodyLen: bodyLen}
}

// RoundTrip sends the request and returns the response's head (valid
// until the next call).
func (k *KeepAlive) RoundTrip() []byte {
	if _, err := k.c.Write(k.req); err != nil {
		k.tb.Fatal(err)
	}
	n := 0
	for {
		m, err := k.br.Read(k.buf[n:])
		if err != nil {
			k.tb.Fatalf("%v after %q", err, k.buf[:n])
		}
		n += m
		if i := bytes.Index(k.buf[:n], []byte("\r\n\r\n")); i >= 0 && n >= i+4+k.bodyLen {
			return k.buf[:i+4]
		}
	}
}
