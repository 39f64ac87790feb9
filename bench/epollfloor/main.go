//go:build linux

// Command epollfloor is the second floor of the proxy benchmark: a raw
// TCP pass-through like tcpproxy, but written the way nginx and HAProxy
// are, as one goroutine running a level-triggered epoll loop over
// non-blocking sockets. Go's network poller, goroutine switches and
// deadlines are out of the picture, and each exchange costs one read and
// one write per direction plus a share of one epoll_wait.
//
// It parses nothing. It bounds what an event-loop design could reach in
// this harness, next to tcpproxy, which bounds what a goroutine-per-
// connection design could reach.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/netip"
	"os"
	"syscall"
)

const bufSize = 16 << 10

// side is one socket of a relayed pair and the bytes read from it that
// its peer has not taken yet.
type side struct {
	fd       int
	peer     *side
	buf      []byte
	off, end int  // pending bytes are buf[off:end]
	wantOut  bool // registered for EPOLLOUT
}

type loop struct {
	ep    int
	sides map[int]*side
}

func main() {
	from := flag.String("from", "127.0.0.1:8000", "listen `address`")
	to := flag.String("to", "127.0.0.1:9000", "origin `address`")
	flag.Parse()
	lap, err := netip.ParseAddrPort(*from)
	if err != nil {
		log.Fatal(err)
	}
	oap, err := netip.ParseAddrPort(*to)
	if err != nil {
		log.Fatal(err)
	}
	lfd := must(syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0))
	check(syscall.SetsockoptInt(lfd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1))
	check(syscall.Bind(lfd, &syscall.SockaddrInet4{Port: int(lap.Port()), Addr: lap.Addr().As4()}))
	check(syscall.Listen(lfd, 4096))
	l := &loop{ep: must(syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)), sides: map[int]*side{}}
	l.ctl(syscall.EPOLL_CTL_ADD, lfd, syscall.EPOLLIN)
	origin := &syscall.SockaddrInet4{Port: int(oap.Port()), Addr: oap.Addr().As4()}
	fmt.Fprintf(os.Stderr, "epollfloor %s -> %s\n", lap, oap)

	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(l.ep, events, -1)
		if err == syscall.EINTR {
			continue
		}
		check(err)
		for i := range n {
			ev := &events[i]
			fd := int(ev.Fd)
			if fd == lfd {
				l.accept(lfd, origin)
				continue
			}
			s := l.sides[fd]
			if s == nil {
				continue // closed earlier in this batch
			}
			if ev.Events&syscall.EPOLLOUT != 0 {
				l.flush(s)
			}
			if ev.Events&(syscall.EPOLLIN|syscall.EPOLLHUP|syscall.EPOLLERR) != 0 && l.sides[fd] != nil {
				l.pump(s)
			}
		}
	}
}

func (l *loop) accept(lfd int, origin syscall.Sockaddr) {
	for {
		cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: no more waiting
		}
		ufd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			syscall.Close(cfd)
			continue
		}
		if err := syscall.Connect(ufd, origin); err != nil && err != syscall.EINPROGRESS {
			syscall.Close(cfd)
			syscall.Close(ufd)
			continue
		}
		_ = syscall.SetsockoptInt(cfd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		_ = syscall.SetsockoptInt(ufd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
		c := &side{fd: cfd, buf: make([]byte, bufSize)}
		u := &side{fd: ufd, buf: make([]byte, bufSize)}
		c.peer, u.peer = u, c
		l.sides[cfd], l.sides[ufd] = c, u
		l.ctl(syscall.EPOLL_CTL_ADD, cfd, syscall.EPOLLIN)
		// Until the connect completes, bytes from the client wait in
		// c.buf and the first EPOLLOUT on ufd flushes them.
		u.wantOut = true
		l.ctl(syscall.EPOLL_CTL_ADD, ufd, syscall.EPOLLIN|syscall.EPOLLOUT)
	}
}

// pump reads what s has and writes it to its peer.
func (l *loop) pump(s *side) {
	if s.end > s.off {
		return // the peer has not taken the last read yet; EPOLLIN is off
	}
	n, err := syscall.Read(s.fd, s.buf)
	if err == syscall.EAGAIN {
		return
	}
	if n <= 0 {
		l.close(s)
		return
	}
	s.off, s.end = 0, n
	l.flush(s.peer)
}

// flush writes the bytes pending from d's peer to d.
func (l *loop) flush(d *side) {
	src := d.peer
	for src.end > src.off {
		n, err := syscall.Write(d.fd, src.buf[src.off:src.end])
		if err == syscall.EAGAIN || err == syscall.ENOTCONN {
			if !d.wantOut {
				d.wantOut = true
				l.ctl(syscall.EPOLL_CTL_MOD, d.fd, syscall.EPOLLIN|syscall.EPOLLOUT)
				l.ctl(syscall.EPOLL_CTL_MOD, src.fd, 0) // stop reading until d drains
			}
			return
		}
		if err != nil {
			l.close(d)
			return
		}
		src.off += n
	}
	src.off, src.end = 0, 0
	if d.wantOut {
		d.wantOut = false
		l.ctl(syscall.EPOLL_CTL_MOD, d.fd, syscall.EPOLLIN)
		l.ctl(syscall.EPOLL_CTL_MOD, src.fd, syscall.EPOLLIN)
	}
}

func (l *loop) close(s *side) {
	for _, x := range []*side{s, s.peer} {
		delete(l.sides, x.fd)
		syscall.Close(x.fd)
	}
}

func (l *loop) ctl(op, fd int, events uint32) {
	ev := syscall.EpollEvent{Events: events, Fd: int32(fd)}
	_ = syscall.EpollCtl(l.ep, op, fd, &ev)
}

func must(fd int, err error) int {
	check(err)
	return fd
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
