//go:build linux

package proxy

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/weirproxy/weir/http1"
	"github.com/weirproxy/weir/internal/rbuf"
	"github.com/weirproxy/weir/upstream"
)

const loopSupported = true

// epollExclusive is EPOLLEXCLUSIVE (Linux 4.5), which package syscall
// lacks: one loop wakes per new connection, not all of them.
const epollExclusive = 1 << 28

// The event-loop engine (ListenerOptions.EventLoop) serves cleartext
// HTTP/1.1 the way nginx does: one loop per core, each a goroutine with
// its own epoll set (sockets registered once, edge-triggered) over
// non-blocking sockets, so no goroutine parks per request and no read
// runs before the socket is readable. Requests run through the same code as the goroutine
// engine (parser, checks, filters, router, upstream head, balancer,
// response head, loggers); only the waiting differs. Idle pooled peer
// connections stay in the loop's epoll set, so a close or unasked bytes
// are seen when they arrive and the connection is dropped then, instead
// of being probed before reuse.
//
// The loop handles requests without a body, or with a small one that
// arrived with the head, whose response is bodiless or has a
// Content-Length body smaller than spliceMin, to peers that are
// plain TCP at an IP address: the bulk of API and page traffic. Anything
// else is handed over, with everything read so far, to a goroutine of the
// goroutine engine, which serves the connection from then on: request
// bodies, upgrades, CONNECT, chunked, large (spliced) or filtered
// response bodies, HTTP/2 peers, TLS or hostname peers.

const (
	// loopTick is the longest a loop sleeps: a drain, a closed listener
	// or a connection closed by Shutdown is noticed within it.
	loopTick = 100 * time.Millisecond
	// loopScanGap spaces deadline scans under a stream of deadlines.
	loopScanGap = 2 * time.Millisecond
	// acceptBatch bounds the connections one readiness event accepts.
	acceptBatch = 64
)

// timeout kinds of a client connection's deadline
const (
	tNone  uint8 = iota
	tIdle        // waiting for a request: close quietly
	tHead        // a partial request head: 408
	tWrite       // output the client does not take: close
)

// states of a loop's peer connection
const (
	upIdle uint8 = iota
	upConnecting
	upWriting
	upHead
	upBody
)

type loop struct {
	srv   *Server
	ls    *listenerState
	lnRaw syscall.RawConn // the listener, to notice it closed
	lfd   int             // this loop's duplicate of the listener; -1 once closed
	ep    int
	// epf is the epoll set as a file of Go's poller: the loop parks
	// through it (see wait), so a waiting loop holds no thread and no P.
	epf    *os.File
	eprc   syscall.RawConn
	armed  time.Time // the read deadline set on epf
	waitFn func(fd uintptr) bool
	nev    int
	werr   error
	conns  map[int]*loopConn
	ups    map[int]*loopUp
	idle   map[*upstream.Pool][]*loopUp
	ready  []*loopConn // connections whose next request is buffered or may be in the socket
	events [128]syscall.EpollEvent
	gen    int32

	now      time.Time
	due      time.Time // the earliest deadline set since the last scan
	lastScan time.Time
	paused   bool // not accepting: at MaxConns or after an accept error
	resumeAt time.Time

	local     netip.AddrPort // the listener's address, unless a wildcard
	loops     int            // how many loops serve the listener
	directFor *Handler
	direct    map[*upstream.Group]bool
	stopped   func()
}

// loopConn is a client connection served by a loop. Its conn's nc is the
// loopConn itself (see Write), so the engine's code writes through it.
type loopConn struct {
	l   *loop
	fd  int
	gen int32
	c   *conn
	h   *Handler
	rd  bool // input may be waiting (edge seen, not yet read dry)
	hup bool // the peer closed its side: a read will end

	out    []byte // bytes written that the socket has not taken yet
	outOff int

	deadline time.Time
	kind     uint8
	wdl      time.Time // the write deadline the engine last set
	head     bool      // a partial head is buffered
	busy     bool      // a request is in progress
	queued   bool      // in loop.ready
	closing  bool      // close once out is flushed
	closed   bool
	nodelay  bool        // TCP_NODELAY is set (once the connection is kept alive)
	killed   atomic.Bool // set by Close from another goroutine

	// the exchange in progress
	up    *loopUp
	g     *upstream.Group
	p     *upstream.Peer
	begun bool
	att   attempts
	left  int64
	pl    respPlan
}

type loopUp struct {
	fd       int
	gen      int32
	pool     *upstream.Pool
	in       rbuf.Buffer
	lc       *loopConn // nil while idle
	state    uint8
	reused   bool
	rd       bool // input may be waiting
	hup      bool // the peer closed its side
	wbuf     []byte
	woff     int
	got      bool
	deadline time.Time
	epoch    uint64 // the pool's epoch when it went idle
}

// serveLoops serves ln with one event loop per core until ln closes or
// the server drains.
func (s *Server) serveLoops(ln *net.TCPListener, ls *listenerState) error {
	rc, err := ln.SyscallConn()
	if err != nil {
		return err
	}
	local := addrPort(ln.Addr())
	if local.Addr().IsUnspecified() {
		local = netip.AddrPort{}
	}
	n := runtime.GOMAXPROCS(0)
	stop := make(chan struct{})
	var once sync.Once
	loops := make([]*loop, 0, n)
	for range n {
		var lfd int
		var derr error
		if err := rc.Control(func(fd uintptr) {
			lfd, derr = dupCloexec(int(fd))
		}); err != nil {
			return err
		}
		if derr == nil {
			var ep int
			if ep, derr = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC); derr == nil {
				l := &loop{srv: s, ls: ls, lnRaw: rc, lfd: lfd, ep: ep, local: local, loops: n,
					conns: map[int]*loopConn{}, ups: map[int]*loopUp{}, idle: map[*upstream.Pool][]*loopUp{},
					direct: map[*upstream.Group]bool{}, stopped: func() { once.Do(func() { close(stop) }) }}
				if derr = l.initWait(); derr == nil {
					l.ctl(syscall.EPOLL_CTL_ADD, lfd, 0, syscall.EPOLLIN|epollExclusive)
					loops = append(loops, l)
					continue
				}
			}
			syscall.Close(lfd)
		}
		for _, l := range loops {
			syscall.Close(l.lfd)
			l.epf.Close()
		}
		return os.NewSyscallError("event loop", derr)
	}
	for _, l := range loops {
		go l.run()
	}
	<-stop
	if s.draining.Load() {
		return ErrServerClosed
	}
	return net.ErrClosed
}

func dupCloexec(fd int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if e != 0 {
		return -1, e
	}
	return int(r), nil
}

func (l *loop) ctl(op, fd int, gen int32, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd), Pad: gen}
	_ = syscall.EpollCtl(l.ep, op, fd, &ev)
}

// initWait makes the epoll set a non-blocking file of Go's poller (an
// epoll set is itself pollable: readable while it has events).
func (l *loop) initWait() error {
	if err := syscall.SetNonblock(l.ep, true); err != nil {
		syscall.Close(l.ep)
		return err
	}
	l.epf = os.NewFile(uintptr(l.ep), "epoll")
	rc, err := l.epf.SyscallConn()
	if err != nil {
		l.epf.Close()
		return err
	}
	l.eprc = rc
	l.waitFn = func(fd uintptr) bool {
		n, err := syscall.EpollWait(int(fd), l.events[:], 0)
		if err == syscall.EINTR {
			n, err = 0, nil
		}
		l.nev, l.werr = n, err
		return n > 0 || err != nil
	}
	return nil
}

// wait returns the next events. It polls the epoll set without blocking
// and, when nothing is ready, parks the goroutine in Go's poller until
// the set turns readable or the next deadline (at most loopTick away):
// a thread blocked in epoll_wait would keep its P from the goroutines
// of handed-over connections until the runtime took it back, which
// showed as 13–16 ms p99s for them.
func (l *loop) wait() (int, error) {
	if len(l.ready) > 0 {
		return syscall.EpollWait(l.ep, l.events[:], 0)
	}
	want := l.now.Add(loopTick)
	if !l.due.IsZero() && l.due.Before(want) {
		want = l.due
		if min := l.lastScan.Add(loopScanGap); want.Before(min) {
			want = min
		}
	}
	if l.armed.IsZero() || want.Before(l.armed) || !l.armed.After(l.now) {
		_ = l.epf.SetReadDeadline(want)
		l.armed = want
	}
	l.nev, l.werr = 0, nil
	if err := l.eprc.Read(l.waitFn); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			l.armed = time.Time{}
			return 0, nil
		}
		return 0, err
	}
	return l.nev, l.werr
}

func (l *loop) run() {
	defer func() {
		for _, u := range l.ups {
			l.closeUp(u)
		}
		l.stopAccepting()
		l.epf.Close()
	}()
	l.now = time.Now()
	for {
		n, err := l.wait()
		l.now = time.Now()
		if err != nil && err != syscall.EINTR {
			l.handler().ErrorLog.Error("event loop stopped", "err", err)
			for _, lc := range l.conns {
				l.closeConn(lc)
			}
			return
		}
		for i := range n {
			ev := &l.events[i]
			fd := int(ev.Fd)
			if fd == l.lfd && ev.Pad == 0 {
				l.accept()
			} else if lc := l.conns[fd]; lc != nil && lc.gen == ev.Pad {
				l.connEvent(lc, ev.Events)
			} else if u := l.ups[fd]; u != nil && u.gen == ev.Pad {
				l.upEvent(u, ev.Events)
			}
		}
		l.runReady()
		l.housekeeping()
		if l.lfd < 0 && len(l.conns) == 0 {
			return
		}
	}
}

func (l *loop) handler() *Handler { return l.srv.handler.Load() }

func (l *loop) nextGen() int32 {
	l.gen++
	if l.gen <= 0 {
		l.gen = 1
	}
	return l.gen
}

func (l *loop) noteDeadline(t time.Time) {
	if !t.IsZero() && (l.due.IsZero() || t.Before(l.due)) {
		l.due = t
	}
}

func (l *loop) setDeadline(lc *loopConn, t time.Time, kind uint8) {
	lc.deadline, lc.kind = t, kind
	l.noteDeadline(t)
}

func (l *loop) setUpDeadline(u *loopUp, t time.Time) {
	u.deadline = t
	l.noteDeadline(t)
}

// accept takes new connections from the listener.
func (l *loop) accept() {
	h := l.handler()
	for range acceptBatch {
		if l.ls.slots != nil {
			select {
			case l.ls.slots <- struct{}{}:
			default:
				l.pause(time.Time{})
				return
			}
		}
		fd, sa, err := syscall.Accept4(l.lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			l.ls.release()
			switch err {
			case syscall.EAGAIN, syscall.EINTR, syscall.ECONNABORTED:
			default:
				// Out of file descriptors and similar: pause, keep serving.
				h.ErrorLog.Warn("accept failed; retrying", "err", err, "retry_in", time.Second)
				l.pause(l.now.Add(time.Second))
			}
			return
		}
		c := &conn{srv: l.srv, ls: l.ls, altSvc: l.ls.opts.AltSvc, client: sockaddrPort(sa), local: l.local,
			bodyDone: true}
		if !l.local.IsValid() {
			// A wildcard listener: the address the client reached.
			if la, err := syscall.Getsockname(fd); err == nil {
				c.local = sockaddrPort(la)
			}
		}
		lc := &loopConn{l: l, fd: fd, gen: l.nextGen(), c: c}
		c.nc = lc
		l.srv.mu.Lock()
		if l.srv.draining.Load() {
			l.srv.mu.Unlock()
			syscall.Close(fd)
			l.ls.release()
			return
		}
		l.srv.conns[c] = struct{}{}
		l.srv.connWG.Add(1)
		l.srv.mu.Unlock()
		l.conns[fd] = lc
		l.ctl(syscall.EPOLL_CTL_ADD, fd, lc.gen, edgeEvents)
		l.setDeadline(lc, l.now.Add(h.Limits.IdleTimeout), tIdle)
	}
}

func sockaddrPort(sa syscall.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *syscall.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *syscall.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

func (l *loop) pause(until time.Time) {
	if !l.paused && l.lfd >= 0 {
		l.paused = true
		l.ctl(syscall.EPOLL_CTL_DEL, l.lfd, 0, 0)
	}
	l.resumeAt = until
}

func (l *loop) stopAccepting() {
	if l.lfd >= 0 {
		syscall.Close(l.lfd)
		l.lfd = -1
		l.stopped()
	}
}

// Sockets are registered once, edge-triggered, for input and output:
// no epoll_ctl per request. An input edge sets rd; a read that comes back
// short (or EAGAIN) clears it, so nothing is read before the socket has
// input and no input is left behind unnoticed.
const edgeEvents = syscall.EPOLLIN | syscall.EPOLLOUT | syscall.EPOLLRDHUP | epollET

// epollET is EPOLLET as the unsigned flag epoll_event carries.
const epollET = 1 << 31

const inputEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR

func (l *loop) connEvent(lc *loopConn, ev uint32) {
	if ev&inputEvents != 0 {
		lc.rd = true
		if ev&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			lc.hup = true
		}
	}
	if lc.outOff < len(lc.out) {
		if ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0 {
			l.flush(lc) // reads on, through afterOutput, once the output is out
		}
		return
	}
	if lc.rd && !lc.busy && !lc.queued {
		l.clientReadable(lc)
	}
}

// clientReadable reads request bytes and parses what arrived.
func (l *loop) clientReadable(lc *loopConn) {
	c := lc.c
	h := l.handler()
	for !lc.closed && lc.rd && !lc.busy {
		c.acquireBuf()
		if c.in.W == len(c.in.B) {
			c.in.Compact()
			c.growForHead(h)
			if c.in.W == len(c.in.B) {
				// A head as large as the limit: the parser rejects it, or
				// there is nothing more to read into.
				l.parse(lc, h)
				if lc.head {
					l.closeConn(lc)
				}
				return
			}
		}
		room := len(c.in.B) - c.in.W
		n, err := sockRead(lc.fd, c.in.B[c.in.W:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			lc.rd = false
			if c.in.Buffered() == 0 {
				c.releaseBuf()
			}
			return
		}
		if n <= 0 {
			l.closeConn(lc)
			return
		}
		c.in.W += n
		if n < room && !lc.hup {
			lc.rd = false
		}
		l.parse(lc, h)
		if !lc.head {
			// Started, handed over, or answered (finish queued what
			// comes next).
			return
		}
		// More of the head is to come: read on while input may be
		// waiting, else wait for its edge.
	}
}

func (l *loop) enqueue(lc *loopConn) {
	if !lc.queued {
		lc.queued = true
		l.ready = append(l.ready, lc)
	}
}

// parse parses the buffered request head and starts the request.
func (l *loop) parse(lc *loopConn, h *Handler) {
	c := lc.c
	c.in.Floor = 0
	c.acquire()
	c.in.Compact()
	s := &c.sess
	s.reset()
	n, err := http1.ParseRequest(c.in.Unread(), &h.Limits.Parser, &s.Req)
	if err == http1.ErrIncomplete {
		if !lc.head {
			lc.head = true
			l.setDeadline(lc, l.now.Add(h.Limits.HeaderReadTimeout), tHead)
		}
		return
	}
	lc.head = false
	l.setDeadline(lc, time.Time{}, tNone)
	if err != nil {
		c.keepAlive = false
		c.badRequest(h, err)
		l.closeAfterFlush(lc)
		return
	}
	c.headParsed(h, n, l.now)
	req := &s.Req
	// A small body that arrived with its head goes out with it, as in
	// conn.proxy; a body still to come is streamed by a goroutine.
	inline := c.bodyBuffered() && !req.Header.Has("Expect")
	if (req.ContentLength > 0 || req.Chunked) && !inline || req.IsMethod("CONNECT") || isUpgrade(req) {
		l.handoff(lc, func(c *conn) bool { return c.handle(h) })
		return
	}
	l.start(lc, h)
}

// start runs a parsed request's phases up to the upstream exchange.
func (l *loop) start(lc *loopConn, h *Handler) {
	c := lc.c
	s := &c.sess
	lc.h = h
	lc.busy = true
	c.begin(h)
	if !c.prepare(h) {
		l.finish(lc)
		return
	}
	g := s.Route.Upstream
	if !l.isDirect(g) || s.Route.GRPCWeb {
		l.handoff(lc, func(c *conn) bool {
			c.proxy(h, &c.sess)
			return c.finish(h)
		})
		return
	}
	if !c.beforeAttempts(h, s, g, s.Req.ContentLength > 0) { // a body here is inline
		l.finish(lc)
		return
	}
	lc.g, lc.att = g, attempts{key: hashKey(g, s)}
	l.attempt(lc)
}

// isDirect reports whether the loop can reach every peer of g itself.
func (l *loop) isDirect(g *upstream.Group) bool {
	if g.Proto != upstream.ProtoHTTP1 {
		return false
	}
	if h := l.handler(); h != l.directFor {
		clear(l.direct)
		l.directFor = h
	}
	ok, known := l.direct[g]
	if !known {
		ok = true
		for _, p := range g.Peers {
			if _, err := netip.ParseAddrPort(p.Addr); err != nil || !p.Pool().Direct() {
				ok = false
			}
		}
		l.direct[g] = ok
	}
	return ok
}

// attempt picks a peer and starts an exchange with it, as conn.proxy does.
func (l *loop) attempt(lc *loopConn) {
	c, h, g := lc.c, lc.h, lc.g
	s := &c.sess
	for {
		p := c.pick(h, g, &lc.att)
		if p == nil {
			l.finish(lc)
			return
		}
		u, err := l.getUp(p.Pool())
		if err != nil {
			if c.connectFailed(h, g, p, err) {
				continue
			}
			l.finish(lc)
			return
		}
		lc.p, lc.up, u.lc = p, u, lc
		s.Reused = u.reused
		c.requestBytes(s, s.Req.ContentLength > 0) // a body here is inline
		u.wbuf, u.woff, u.got = c.up, 0, false
		if u.state == upConnecting {
			_, _, ct := u.pool.Limits()
			l.setUpDeadline(u, l.now.Add(ct))
			return
		}
		p.Begin()
		lc.begun = true
		l.upWrite(u)
		return
	}
}

// getUp takes an idle connection to the peer of pool, or opens one.
func (l *loop) getUp(pool *upstream.Pool) (*loopUp, error) {
	for list := l.idle[pool]; len(list) > 0; list = l.idle[pool] {
		u := list[len(list)-1]
		l.idle[pool] = list[:len(list)-1]
		pool.AddIdle(-1)
		if u.deadline.Sub(l.now) < 0 || pool.Retired() || u.epoch != pool.Epoch() {
			l.closeUp(u)
			continue
		}
		u.reused = true
		u.deadline = time.Time{}
		return u, nil
	}
	ap, err := netip.ParseAddrPort(pool.Addr())
	if err != nil {
		return nil, err
	}
	if err := pool.Reserve(); err != nil {
		return nil, err
	}
	var sa syscall.Sockaddr
	family := syscall.AF_INET
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		sa = &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	} else {
		family = syscall.AF_INET6
		sa = &syscall.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		pool.Unreserve()
		return nil, os.NewSyscallError("socket", err)
	}
	_ = syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	state := upWriting
	if err := syscall.Connect(fd, sa); err == syscall.EINPROGRESS {
		state = upConnecting
	} else if err != nil {
		syscall.Close(fd)
		pool.Unreserve()
		return nil, os.NewSyscallError("connect", err)
	}
	u := &loopUp{fd: fd, gen: l.nextGen(), pool: pool, state: state,
		in: rbuf.Buffer{B: make([]byte, connBufSize)}}
	l.ups[fd] = u
	l.ctl(syscall.EPOLL_CTL_ADD, fd, u.gen, edgeEvents)
	return u, nil
}

func (l *loop) upEvent(u *loopUp, ev uint32) {
	if ev&inputEvents != 0 {
		u.rd = true
		if ev&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 {
			u.hup = true
		}
	}
	out := ev&(syscall.EPOLLOUT|syscall.EPOLLERR|syscall.EPOLLHUP) != 0
	switch u.state {
	case upIdle:
		// Input while pooled: the peer closed it, or sent bytes nobody
		// asked for (which must never be read as a response).
		if u.rd {
			l.dropIdle(u)
		}
	case upConnecting:
		if out {
			l.connected(u)
		}
	case upWriting:
		if out {
			l.upWrite(u)
		}
	case upHead:
		if u.rd {
			l.upReadHead(u)
		}
	case upBody:
		if u.rd && u.lc.outOff == len(u.lc.out) {
			l.upReadBody(u)
		}
	}
}

func (l *loop) connected(u *loopUp) {
	lc := u.lc
	errno, err := syscall.GetsockoptInt(u.fd, syscall.SOL_SOCKET, syscall.SO_ERROR)
	if err == nil && errno != 0 {
		err = os.NewSyscallError("connect", syscall.Errno(errno))
	}
	if err != nil {
		l.connectFailed(lc, u, err)
		return
	}
	u.state = upWriting
	lc.p.Begin()
	lc.begun = true
	l.upWrite(u)
}

func (l *loop) connectFailed(lc *loopConn, u *loopUp, err error) {
	l.closeUp(u)
	if lc.c.connectFailed(lc.h, lc.g, lc.p, err) {
		l.attempt(lc)
		return
	}
	l.finish(lc)
}

func (l *loop) upWrite(u *loopUp) {
	lc := u.lc
	for u.woff < len(u.wbuf) {
		n, err := sockWrite(u.fd, u.wbuf[u.woff:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			u.state = upWriting // on until an output edge
			l.setUpDeadline(u, lc.c.deadline(lc.g.Timeouts.Idle))
			return
		}
		if err != nil {
			l.beforeResponse(lc, u, "write request", os.NewSyscallError("write", err), true)
			return
		}
		u.woff += n
	}
	u.state = upHead
	// The response-head timeout is exact: a 504 must not come early.
	l.setUpDeadline(u, lc.c.deadline(lc.g.Timeouts.ResponseHeader))
	if u.rd {
		l.upReadHead(u) // an input edge came already
	}
}

// beforeResponse handles a failure before any response byte arrived.
func (l *loop) beforeResponse(lc *loopConn, u *loopUp, phase string, err error, writeFailed bool) {
	c, h := lc.c, lc.h
	s := &c.sess
	l.closeUp(u)
	s.Err = &UpstreamError{lc.p.Addr, phase, err}
	if !writeFailed && isTimeout(err) {
		c.upstreamFailed(h, s.Err)
		l.outcome(lc, failed)
		return
	}
	l.outcome(lc, c.retryable(h, u.reused, true, writeFailed))
}

// outcome acts on how an attempt ended, as conn.proxy does.
func (l *loop) outcome(lc *loopConn, res outcome) {
	if lc.begun {
		lc.begun = false
		lc.p.End()
	}
	if lc.c.settle(lc.h, lc.g, lc.p, res, &lc.att) {
		l.attempt(lc)
		return
	}
	l.finish(lc)
}

func (l *loop) upRead(u *loopUp) (int, error) {
	if u.in.W == len(u.in.B) {
		u.in.Compact()
		if u.in.W == len(u.in.B) {
			return 0, rbuf.ErrFull
		}
	}
	room := len(u.in.B) - u.in.W
	for {
		n, err := sockRead(u.fd, u.in.B[u.in.W:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			if err == syscall.EAGAIN {
				u.rd = false
			} else {
				err = os.NewSyscallError("read", err)
			}
			return 0, err
		}
		if n == 0 {
			return 0, errEarlyClose
		}
		u.in.W += n
		if n < room && !u.hup {
			u.rd = false
		}
		return n, nil
	}
}

// upReadHead reads and parses the response head.
func (l *loop) upReadHead(u *loopUp) {
	lc := u.lc
	c, h, g := lc.c, lc.h, lc.g
	s := &c.sess
	for {
		if _, err := l.upRead(u); err != nil {
			if err == syscall.EAGAIN {
				return
			}
			if !u.got {
				l.beforeResponse(lc, u, "read response", err, false)
				return
			}
			l.closeUp(u)
			s.Err = &UpstreamError{lc.p.Addr, "read response", err}
			c.upstreamFailed(h, s.Err)
			l.outcome(lc, failed)
			return
		}
		u.got = true
		err := parseResponseHead(&u.in, &g.ResponseLimits, &s.Resp)
		if err == nil {
			break
		}
		if err != http1.ErrIncomplete {
			l.closeUp(u)
			s.Err = &UpstreamError{lc.p.Addr, "read response", err}
			c.upstreamFailed(h, s.Err)
			l.outcome(lc, failed)
			return
		}
		if !u.rd {
			return // the rest of the head comes with the next edge
		}
	}
	if s.Req.ContentLength > 0 {
		c.inlineBodySent()
	}
	s.UpstreamHeadAt = l.now
	mode, length := http1.ResponseBodyMode(s.Req.Method, &s.Resp)
	filtered := s.Route.Chain.hasBody() || h.Chain.hasBody()
	if s.Resp.Status == 101 || !(mode == http1.BodyNone ||
		mode == http1.BodyLength && !filtered && length-int64(u.in.Buffered()) < spliceMin) {
		l.handoffRelay(lc, u, false)
		return
	}
	pl, ok := c.responseHead(h, s)
	if !ok {
		l.closeUp(u)
		l.outcome(lc, done)
		return
	}
	lc.pl, lc.left = pl, 0
	if pl.mode != mode || pl.filtered {
		l.handoffRelay(lc, u, true)
		return
	}
	if mode == http1.BodyLength {
		lc.left = pl.length
	}
	body := u.in.Unread()
	if int64(len(body)) > lc.left {
		body = body[:lc.left]
	}
	c.out = append(c.out, body...)
	u.in.Consume(len(body))
	lc.left -= int64(len(body))
	s.BytesOut = int64(len(body))
	l.relayed(lc, u, c.write(h, c.out))
}

// relayed goes on after body bytes were passed to the client.
func (l *loop) relayed(lc *loopConn, u *loopUp, werr error) {
	c := lc.c
	if werr != nil {
		l.closeUp(u)
		c.keepAlive = false
		c.sess.Err = &ClientError{werr}
		l.outcome(lc, done)
		return
	}
	if lc.left > 0 {
		u.state = upBody
		l.resumeBody(lc)
		return
	}
	lc.up, u.lc = nil, nil
	if lc.pl.upReusable {
		l.putIdle(u)
	} else {
		l.closeUp(u)
	}
	l.outcome(lc, done)
}

// resumeBody reads the peer again once the client took what it had.
func (l *loop) resumeBody(lc *loopConn) {
	u := lc.up
	if lc.outOff < len(lc.out) {
		l.setUpDeadline(u, time.Time{})
		return
	}
	l.setUpDeadline(u, lc.c.deadline(lc.g.Timeouts.Idle))
	if u.rd {
		l.upReadBody(u)
	}
}

func (l *loop) upReadBody(u *loopUp) {
	lc := u.lc
	c, h := lc.c, lc.h
	s := &c.sess
	if u.in.Buffered() == 0 {
		u.in.Reset()
	}
	if _, err := l.upRead(u); err != nil {
		if err == syscall.EAGAIN {
			return
		}
		if err == errEarlyClose {
			err = io.ErrUnexpectedEOF // as copyLength reports it
		}
		l.closeUp(u)
		c.keepAlive = false
		s.Err = &UpstreamError{lc.p.Addr, "read body", err}
		l.outcome(lc, failed)
		return
	}
	body := u.in.Unread()
	if int64(len(body)) > lc.left {
		body = body[:lc.left]
	}
	werr := c.write(h, body)
	u.in.Consume(len(body))
	lc.left -= int64(len(body))
	s.BytesOut += int64(len(body))
	l.relayed(lc, u, werr)
}

// putIdle keeps a peer connection for reuse, watched by the loop.
func (l *loop) putIdle(u *loopUp) {
	maxIdle, idleTimeout, _ := u.pool.Limits()
	list := l.idle[u.pool]
	if u.in.Buffered() != 0 || u.rd || u.hup || u.pool.Retired() || maxIdle < 0 || len(list) >= max(maxIdle/l.loops, 1) {
		l.closeUp(u)
		return
	}
	u.in.Reset()
	u.state, u.wbuf, u.epoch = upIdle, nil, u.pool.Epoch()
	l.setUpDeadline(u, l.now.Add(idleTimeout))
	l.idle[u.pool] = append(list, u)
	u.pool.AddIdle(1)
}

func (l *loop) dropIdle(u *loopUp) {
	list := l.idle[u.pool]
	for i, x := range list {
		if x == u {
			l.idle[u.pool] = append(list[:i], list[i+1:]...)
			u.pool.AddIdle(-1)
			break
		}
	}
	l.closeUp(u)
}

func (l *loop) closeUp(u *loopUp) {
	if l.ups[u.fd] != u {
		return
	}
	delete(l.ups, u.fd)
	syscall.Close(u.fd)
	u.pool.Unreserve()
	if lc := u.lc; lc != nil && lc.up == u {
		lc.up = nil
	}
}

// finish ends the request in the loop: loggers, then the next request
// or the close.
func (l *loop) finish(lc *loopConn) {
	c := lc.c
	keep := c.finish(lc.h)
	lc.busy = false
	lc.up, lc.g, lc.p = nil, nil, nil
	if !keep {
		l.closeAfterFlush(lc)
		return
	}
	if !lc.nodelay {
		// As nginx does, TCP_NODELAY is set once a connection is kept
		// alive: a response on a connection about to close goes out
		// with the close, and setting the option also sends at once what
		// Nagle's algorithm may still hold of the first response.
		lc.nodelay = true
		_ = syscall.SetsockoptInt(lc.fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
	}
	c.in.Floor = 0
	if c.in.Buffered() == 0 {
		c.release()
	}
	l.afterOutput(lc)
}

// afterOutput arms the connection for its next request once its output
// is out.
func (l *loop) afterOutput(lc *loopConn) {
	if lc.outOff < len(lc.out) {
		l.setDeadline(lc, lc.wdl, tWrite)
	} else if lc.busy {
		l.setDeadline(lc, time.Time{}, tNone)
		if lc.up != nil && lc.up.state == upBody {
			l.resumeBody(lc)
		}
	} else if lc.c.in.Buffered() > 0 || lc.rd {
		// The next request is buffered already (pipelined) or may be in
		// the socket: it waits its turn in the ready list.
		l.enqueue(lc)
	} else {
		l.setDeadline(lc, l.now.Add(l.handler().Limits.IdleTimeout), tIdle)
	}
}

// runReady goes on with connections whose next request is buffered
// (pipelined) or may be in the socket. One pass per round of events: a
// connection queued again (its request answered at once) waits for the
// next round, so a client pipelining locally answered requests cannot
// keep the loop from the others.
func (l *loop) runReady() {
	if len(l.ready) > 0 {
		batch := l.ready
		l.ready = nil
		for _, lc := range batch {
			lc.queued = false
			if lc.closed || lc.busy || lc.outOff < len(lc.out) {
				continue
			}
			if lc.c.in.Buffered() > 0 {
				l.parse(lc, l.handler())
				if !lc.head {
					continue
				}
			}
			if lc.rd {
				l.clientReadable(lc)
			} else if lc.c.in.Buffered() == 0 {
				l.setDeadline(lc, l.now.Add(l.handler().Limits.IdleTimeout), tIdle)
			}
		}
	}
}

func (l *loop) closeAfterFlush(lc *loopConn) {
	lc.closing = true
	if lc.outOff == len(lc.out) {
		l.closeConn(lc)
		return
	}
	l.setDeadline(lc, lc.wdl, tWrite)
}

// flush writes queued output the socket can take now.
func (l *loop) flush(lc *loopConn) {
	for lc.outOff < len(lc.out) {
		n, err := sockWrite(lc.fd, lc.out[lc.outOff:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			return
		}
		if err != nil {
			l.abort(lc, os.NewSyscallError("write", err))
			return
		}
		lc.outOff += n
	}
	if cap(lc.out) > 64<<10 {
		lc.out = nil
	}
	lc.out, lc.outOff = lc.out[:0], 0
	if lc.closing {
		l.closeConn(lc)
		return
	}
	l.afterOutput(lc)
}

// abort closes a connection whose client failed (a reset, a write
// timeout), ending its request as the goroutine engine would.
func (l *loop) abort(lc *loopConn, err error) {
	if lc.busy && lc.p != nil {
		c := lc.c
		if lc.up != nil {
			l.closeUp(lc.up)
		}
		c.keepAlive = false
		c.sess.Err = &ClientError{err}
		lc.out, lc.outOff = nil, 0
		l.outcome(lc, done) // ends in finish, which closes
		if !lc.closed {
			l.closeConn(lc)
		}
		return
	}
	l.closeConn(lc)
}

func (l *loop) closeConn(lc *loopConn) {
	if lc.closed {
		return
	}
	lc.closed = true
	if lc.up != nil {
		l.closeUp(lc.up)
		if lc.begun {
			lc.begun = false
			lc.p.End()
		}
	}
	if lc.c.wroteHead && !lc.c.bodyDone {
		// A lingering close blocks: a goroutine does it.
		l.handoff(lc, func(*conn) bool { return false })
		return
	}
	delete(l.conns, lc.fd)
	syscall.Close(lc.fd)
	lc.c.retire()
}

// handoff gives the connection to a goroutine of the goroutine engine,
// which runs step and then serves the connection's further requests.
func (l *loop) handoff(lc *loopConn, step func(*conn) bool) {
	c := lc.c
	lc.closed = true
	delete(l.conns, lc.fd)
	l.ctl(syscall.EPOLL_CTL_DEL, lc.fd, 0, 0)
	nc, err := fdConn(lc.fd)
	if err != nil {
		l.handler().ErrorLog.Warn("event loop: handing a connection over failed", "client", c.client, "err", err)
		c.retire()
		return
	}
	pending := lc.out[lc.outOff:]
	wt := l.handler().Limits.WriteTimeout
	l.srv.mu.Lock() // Shutdown reads c.nc under it
	c.nc = nc
	l.srv.mu.Unlock()
	c.initRaw()
	c.rdl, c.wdl = time.Time{}, time.Time{}
	go func() {
		defer c.close()
		if len(pending) > 0 {
			_ = c.nc.SetWriteDeadline(time.Now().Add(wt))
			if _, err := c.nc.Write(pending); err != nil {
				return
			}
		}
		if step(c) {
			c.serveRequests()
		}
	}()
}

// handoffRelay hands the connection over after the response head was
// read: the goroutine relays the response (headBuilt: its body, by the
// plan in lc.pl, the head being in c.out already; else all of it).
func (l *loop) handoffRelay(lc *loopConn, u *loopUp, headBuilt bool) {
	h, g, p := lc.h, lc.g, lc.p
	delete(l.ups, u.fd)
	l.ctl(syscall.EPOLL_CTL_DEL, u.fd, 0, 0)
	lc.up, u.lc = nil, nil
	lc.begun = false // the goroutine ends it
	nc, err := fdConn(u.fd)
	if err != nil {
		u.pool.Unreserve()
		lc.c.sess.Err = &UpstreamError{p.Addr, "read response", err}
		lc.c.upstreamFailed(h, lc.c.sess.Err)
		p.End()
		l.finish(lc)
		return
	}
	up := u.pool.Adopt(nc, u.in, u.reused)
	plan, att := lc.pl, lc.att
	l.handoff(lc, func(c *conn) bool {
		s := &c.sess
		var res outcome
		if !headBuilt {
			res = c.relayResponse(h, s, g, up)
		} else {
			res = c.relayBody(h, s, g, up, plan)
		}
		p.End()
		c.settle(h, g, p, res, &att) // done or failed: a relay is not retried
		return c.finish(h)
	})
}

// fdConn turns a socket of the loop into a net.Conn of Go's poller.
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f)
	f.Close()
	return nc, err
}

// housekeeping expires deadlines, retires idle peer connections and
// notices a drain or a closed listener.
func (l *loop) housekeeping() {
	draining := l.srv.draining.Load()
	sinceScan := l.now.Sub(l.lastScan)
	if l.lfd >= 0 {
		if draining || sinceScan >= loopTick && l.lnRaw.Control(func(uintptr) {}) != nil {
			l.stopAccepting()
		} else if l.paused && (l.resumeAt.IsZero() || !l.now.Before(l.resumeAt)) &&
			(l.ls.slots == nil || len(l.ls.slots) < cap(l.ls.slots)) {
			l.paused = false
			l.ctl(syscall.EPOLL_CTL_ADD, l.lfd, 0, syscall.EPOLLIN|epollExclusive)
		}
	}
	if !draining && sinceScan < loopTick &&
		(l.due.IsZero() || l.now.Before(l.due) || sinceScan < loopScanGap) {
		return
	}
	l.lastScan = l.now
	l.due = time.Time{}
	for _, lc := range l.conns {
		if lc.killed.Load() {
			l.abort(lc, net.ErrClosed)
			continue
		}
		if draining && !lc.busy && lc.outOff == len(lc.out) && lc.c.in.Buffered() == 0 {
			l.closeConn(lc)
			continue
		}
		if lc.deadline.IsZero() {
			continue
		}
		if lc.deadline.After(l.now) {
			l.noteDeadline(lc.deadline)
			continue
		}
		switch lc.kind {
		case tHead:
			lc.head = false
			lc.deadline = time.Time{}
			lc.c.keepAlive = false
			lc.c.writeError(l.handler(), 408, false)
			l.closeAfterFlush(lc)
		case tWrite:
			l.abort(lc, os.ErrDeadlineExceeded)
		default:
			l.closeConn(lc)
		}
	}
	for _, u := range l.ups {
		if u.deadline.IsZero() {
			continue
		}
		if u.deadline.After(l.now) && !(u.state == upIdle && (u.pool.Retired() || u.epoch != u.pool.Epoch())) {
			l.noteDeadline(u.deadline)
			continue
		}
		l.expireUp(u)
	}
	for pool, list := range l.idle {
		if len(list) == 0 && pool.Retired() {
			delete(l.idle, pool) // a pool a reload retired
		}
	}
}

// expireUp acts on a peer connection whose deadline passed.
func (l *loop) expireUp(u *loopUp) {
	lc := u.lc
	if u.state == upIdle || lc == nil {
		l.dropIdle(u)
		return
	}
	c, h := lc.c, lc.h
	s := &c.sess
	switch u.state {
	case upConnecting:
		l.connectFailed(lc, u, os.ErrDeadlineExceeded)
	case upWriting:
		l.beforeResponse(lc, u, "write request", os.ErrDeadlineExceeded, true)
	case upHead:
		l.closeUp(u)
		s.Err = &UpstreamError{lc.p.Addr, "read response", os.ErrDeadlineExceeded}
		c.upstreamFailed(h, s.Err)
		l.outcome(lc, failed)
	case upBody:
		l.closeUp(u)
		c.keepAlive = false
		s.Err = &UpstreamError{lc.p.Addr, "read body", os.ErrDeadlineExceeded}
		l.outcome(lc, failed)
	}
}

// The loopConn is the client connection's net.Conn while the loop
// serves it. Write never blocks: what the socket does not take at once is
// queued and sent when it turns writable. Only the loop's goroutine calls
// it, apart from Close (Shutdown), which asks the loop to close.

func (lc *loopConn) Write(b []byte) (int, error) {
	if lc.closed {
		return 0, net.ErrClosed
	}
	n := len(b)
	if lc.outOff == len(lc.out) {
		for len(b) > 0 {
			m, err := sockWrite(lc.fd, b)
			if err == syscall.EINTR {
				continue
			}
			if err == syscall.EAGAIN {
				break
			}
			if err != nil {
				return n - len(b), os.NewSyscallError("write", err)
			}
			b = b[m:]
		}
		if len(b) == 0 {
			return n, nil
		}
	}
	lc.out = append(lc.out, b...) // sent on the next output edge
	lc.l.setDeadline(lc, lc.wdl, tWrite)
	return n, nil
}

func (lc *loopConn) Read([]byte) (int, error) {
	return 0, errors.New("proxy: read on an event-loop connection")
}

func (lc *loopConn) Close() error {
	lc.killed.Store(true)
	return nil
}

func (lc *loopConn) LocalAddr() net.Addr  { return net.TCPAddrFromAddrPort(lc.c.local) }
func (lc *loopConn) RemoteAddr() net.Addr { return net.TCPAddrFromAddrPort(lc.c.client) }

func (lc *loopConn) SetDeadline(t time.Time) error {
	lc.wdl = t
	return nil
}

func (lc *loopConn) SetReadDeadline(time.Time) error { return nil }

func (lc *loopConn) SetWriteDeadline(t time.Time) error {
	lc.wdl = t
	return nil
}

// sockRead and sockWrite are read(2) and write(2) on the loop's
// non-blocking sockets, made without the scheduler's enter/exit
// bookkeeping of syscall.Read and Write: they never block, so there is
// no P to hand over while they run.
func sockRead(fd int, b []byte) (int, error) { return sockIO(syscall.SYS_READ, fd, b) }

func sockWrite(fd int, b []byte) (int, error) { return sockIO(syscall.SYS_WRITE, fd, b) }

func sockIO(trap uintptr, fd int, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(trap, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}
