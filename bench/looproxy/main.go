//go:build linux

// Command looproxy is a measuring stick, not a product: the smallest
// HTTP/1.1 reverse proxy built the way nginx is (one goroutine, a
// level-triggered epoll loop over non-blocking sockets), using Weir's own
// parser and head writer and doing the per-request header work Weir's
// quick mode does (hop-by-hop fields out, X-Forwarded-For/-Proto/-Host and
// Via in). It keeps upstream connections in a pool that stays registered
// with the loop, so a pooled connection that turns readable (the peer
// closed it, or sent bytes nobody asked for) is closed when that happens
// instead of being probed on reuse.
//
// It has no filters, routes, retries, health checks or timeouts, and it
// answers only requests without a body whose responses have a
// Content-Length; anything else closes the connection. BENCHMARKS.md uses
// it to measure what the event-loop design it names would give Weir.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"syscall"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/message"
)

const bufSize = 16 << 10

type client struct {
	fd   int
	ip   []byte // the client's address, for X-Forwarded-For
	in   []byte
	r, w int
	req  message.Request
	ur   message.Request
	up   *upConn
	// out holds bytes for the client that a write did not take.
	out     []byte
	outOff  int
	wantOut bool
	keep    bool
}

type upConn struct {
	fd       int
	in       []byte
	r, w     int
	cl       *client // nil while pooled
	resp     message.Response
	left     int64 // body bytes still to relay
	headDone bool
}

type loop struct {
	ep      int
	origin  syscall.Sockaddr
	clients map[int]*client
	ups     map[int]*upConn
	pool    []*upConn
	lim     http1.Limits
	scratch []byte
}

func main() {
	from := flag.String("from", "127.0.0.1:8000", "listen `address`")
	to := flag.String("to", "127.0.0.1:9000", "origin `address`")
	flag.Parse()
	lap, err := netip.ParseAddrPort(*from)
	check(err)
	oap, err := netip.ParseAddrPort(*to)
	check(err)
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	check(err)
	check(syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
	check(syscall.Bind(lfd, &syscall.SockaddrInet4{Port: int(lap.Port()), Addr: lap.Addr().As4()}))
	check(syscall.Listen(lfd, 4096))
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	check(err)
	l := &loop{ep: ep, origin: &syscall.SockaddrInet4{Port: int(oap.Port()), Addr: oap.Addr().As4()},
		clients: map[int]*client{}, ups: map[int]*upConn{}, lim: http1.DefaultLimits()}
	l.ctl(syscall.EPOLL_CTL_ADD, lfd, syscall.EPOLLIN)
	fmt.Fprintf(os.Stderr, "looproxy %s -> %s\n", lap, oap)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(ep, events, -1)
		if err == syscall.EINTR {
			continue
		}
		check(err)
		for i := range n {
			fd, ev := int(events[i].Fd), events[i].Events
			if fd == lfd {
				l.accept(lfd)
			} else if c := l.clients[fd]; c != nil {
				if ev&syscall.EPOLLOUT != 0 {
					l.flushClient(c)
				} else {
					l.clientReadable(c)
				}
			} else if u := l.ups[fd]; u != nil {
				l.upReadable(u)
			}
		}
	}
}

func (l *loop) accept(lfd int) {
	for {
		fd, sa, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		c := &client{fd: fd, in: make([]byte, bufSize)}
		if a, ok := sa.(*syscall.SockaddrInet4); ok {
			c.ip = netip.AddrFrom4(a.Addr).AppendTo(nil)
		}
		l.clients[fd] = c
		l.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN)
	}
}

// clientReadable reads a request head and sends it upstream.
func (l *loop) clientReadable(c *client) {
	if c.r == c.w && c.up == nil {
		c.r, c.w = 0, 0
	}
	if c.w == len(c.in) {
		l.closeClient(c) // a head larger than the buffer, or too much pipelined
		return
	}
	n, err := syscall.Read(c.fd, c.in[c.w:])
	if err == syscall.EAGAIN {
		return
	}
	if n <= 0 {
		l.closeClient(c)
		return
	}
	c.w += n
	if c.up == nil {
		l.startExchange(c)
	} // else: pipelined bytes wait for the end of this exchange
}

func (l *loop) startExchange(c *client) {
	c.req.Reset()
	hn, err := http1.ParseRequest(c.in[c.r:c.w], &l.lim, &c.req)
	if err == http1.ErrIncomplete {
		return
	}
	if err != nil || c.req.ContentLength != 0 || c.req.Chunked {
		l.closeClient(c)
		return
	}
	c.keep = !c.req.Close
	// The upstream head, with the header work of Weir's quick mode.
	ur := &c.ur
	ur.Reset()
	ur.Method, ur.Target, ur.Path, ur.ProtoMajor, ur.ProtoMinor = c.req.Method, c.req.Target, c.req.Path, 1, 1
	ur.Header.CopyFrom(&c.req.Header)
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Upgrade", "Proxy-Authorization"} {
		ur.Header.Del(name)
	}
	ur.Header.Add(message.S("X-Forwarded-For"), c.ip)
	ur.Header.AddString("X-Forwarded-Proto", "http")
	if h := c.req.Header.Get("Host"); h != nil {
		ur.Header.Add(message.S("X-Forwarded-Host"), h)
	}
	ur.Header.AddString("Via", "1.1 weir")
	l.scratch = http1.AppendRequestHead(l.scratch[:0], ur)
	c.r += hn
	u := l.getUp()
	if u == nil {
		l.closeClient(c)
		return
	}
	u.cl, u.headDone, u.r, u.w = c, false, 0, 0
	c.up = u
	if m, err := syscall.Write(u.fd, l.scratch); err != nil || m != len(l.scratch) {
		// A head that does not fit an empty socket buffer at once is
		// outside what this measuring stick handles.
		l.closeUp(u)
		l.closeClient(c)
	}
}

// getUp takes a pooled upstream connection or dials one.
func (l *loop) getUp() *upConn {
	if n := len(l.pool); n > 0 {
		u := l.pool[n-1]
		l.pool = l.pool[:n-1]
		return u
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	// A blocking connect: new connections are made only while the pool
	// fills, before the measured run.
	if err := syscall.Connect(fd, l.origin); err != nil {
		syscall.Close(fd)
		return nil
	}
	_ = syscall.SetNonblock(fd, true)
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	u := &upConn{fd: fd, in: make([]byte, bufSize)}
	l.ups[fd] = u
	l.ctl(syscall.EPOLL_CTL_ADD, fd, syscall.EPOLLIN)
	return u
}

// upReadable reads the response and relays it.
func (l *loop) upReadable(u *upConn) {
	c := u.cl
	if c == nil {
		// A pooled connection turned readable: closed by the peer, or
		// bytes nobody asked for. Either way it cannot be used.
		l.closeUp(u)
		return
	}
	if u.w == len(u.in) {
		u.r, u.w = 0, 0
	}
	n, err := syscall.Read(u.fd, u.in[u.w:])
	if err == syscall.EAGAIN {
		return
	}
	if n <= 0 {
		l.closeUp(u)
		l.closeClient(c)
		return
	}
	u.w += n
	if !u.headDone {
		u.resp.Reset()
		hn, err := http1.ParseResponse(u.in[u.r:u.w], &l.lim, &u.resp)
		if err == http1.ErrIncomplete {
			return
		}
		mode, length := http1.ResponseBodyMode(c.req.Method, &u.resp)
		if err != nil || mode != http1.BodyLength && mode != http1.BodyNone {
			l.closeUp(u)
			l.closeClient(c)
			return
		}
		u.headDone, u.left = true, length
		u.r += hn
		for _, name := range []string{"Connection", "Keep-Alive"} {
			u.resp.Header.Del(name)
		}
		u.resp.Header.AddString("Via", "1.1 weir")
		if !c.keep {
			u.resp.Header.AddString("Connection", "close")
		}
		c.out = http1.AppendResponseHead(c.out[:0], &u.resp)
	}
	body := u.in[u.r:u.w]
	if int64(len(body)) > u.left {
		body = body[:u.left]
	}
	c.out = append(c.out, body...)
	u.r += len(body)
	u.left -= int64(len(body))
	l.flushClient(c)
}

// flushClient writes what is queued for c; once a response is complete
// it pools the upstream connection and goes on with the next request.
func (l *loop) flushClient(c *client) {
	for c.outOff < len(c.out) {
		n, err := syscall.Write(c.fd, c.out[c.outOff:])
		if err == syscall.EAGAIN {
			if !c.wantOut {
				// Stop reading the peer until the client takes these.
				c.wantOut = true
				l.ctl(syscall.EPOLL_CTL_MOD, c.fd, syscall.EPOLLOUT)
				if c.up != nil {
					l.ctl(syscall.EPOLL_CTL_MOD, c.up.fd, 0)
				}
			}
			return
		}
		if err != nil {
			if c.up != nil {
				l.closeUp(c.up)
			}
			l.closeClient(c)
			return
		}
		c.outOff += n
	}
	c.out, c.outOff = c.out[:0], 0
	u := c.up
	if c.wantOut {
		c.wantOut = false
		l.ctl(syscall.EPOLL_CTL_MOD, c.fd, syscall.EPOLLIN)
		if u != nil {
			l.ctl(syscall.EPOLL_CTL_MOD, u.fd, syscall.EPOLLIN)
		}
	}
	if u == nil || !u.headDone || u.left > 0 {
		return
	}
	// The response is complete.
	c.up, u.cl = nil, nil
	if u.r != u.w {
		l.closeUp(u) // bytes beyond the response: not reusable
	} else {
		u.r, u.w = 0, 0
		l.pool = append(l.pool, u)
	}
	if !c.keep {
		l.closeClient(c)
		return
	}
	if c.r < c.w {
		l.startExchange(c) // a pipelined request is already here
	}
}

func (l *loop) closeClient(c *client) {
	if c.up != nil {
		l.closeUp(c.up)
	}
	delete(l.clients, c.fd)
	syscall.Close(c.fd)
}

func (l *loop) closeUp(u *upConn) {
	if _, ok := l.ups[u.fd]; !ok {
		return
	}
	if u.cl != nil {
		u.cl.up = nil
	}
	for i, p := range l.pool {
		if p == u {
			l.pool = append(l.pool[:i], l.pool[i+1:]...)
			break
		}
	}
	delete(l.ups, u.fd)
	syscall.Close(u.fd)
}

func (l *loop) ctl(op, fd int, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	_ = syscall.EpollCtl(l.ep, op, fd, &ev)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
