package forward

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/limits"
	"github.com/weirproxy/weir/socks5"
)

// serveSOCKS runs a SOCKS5 connection: the handshake (authentication
// included) must end by deadline, then the command is carried out. The
// caller closes c.
func (s *Server) serveSOCKS(c net.Conn, deadline time.Time) {
	start := time.Now()
	cfg := &socks5.ServerConfig{
		HandshakeTimeout:  max(time.Until(deadline), time.Millisecond),
		AllowUDPAssociate: s.opts.UDP,
		AllowBind:         s.opts.SOCKS5Bind,
	}
	if auth := s.opts.Auth; auth != nil {
		cfg.Authenticate = func(name, pass string) bool {
			user, _ := egress.SplitSession(name)
			return auth.Check(user, pass)
		}
	}
	req, err := socks5.ServerHandshake(c, cfg)
	if err != nil {
		s.log.Debug("SOCKS5 handshake failed", "client", c.RemoteAddr().String(), "err", err)
		return
	}
	user, session := egress.SplitSession(req.User)
	id := identity{user: user, session: session, authed: s.opts.Auth != nil}
	cmd := "CONNECT"
	switch req.Cmd {
	case socks5.Connect:
	case socks5.UDPAssociate:
		cmd = "UDP ASSOCIATE"
	case socks5.Bind:
		cmd = "BIND"
	default:
		// ServerHandshake refuses commands that are not enabled.
		_ = writeReply(c, socks5.CommandNotSupported, netip.AddrPort{})
		return
	}
	client, _ := addrPortOf(c.RemoteAddr())
	u, ok := s.users.acquire(userKey(id, client.Addr()))
	if !ok {
		_ = writeReply(c, socks5.GeneralFailure, netip.AddrPort{})
		s.logSOCKS(c, cmd, id, req.Dst.String(), socks5.GeneralFailure, netip.Addr{}, netip.AddrPort{}, 0, 0, start, errUserConns)
		return
	}
	defer u.release()
	switch req.Cmd {
	case socks5.Connect:
		s.socksConnect(c, req, id, u, start)
	case socks5.UDPAssociate:
		s.socksUDP(c, req, id, u, start)
	case socks5.Bind:
		s.socksBind(c, req, id, u, start)
	}
}

// writeReply answers a SOCKS5 request within the write timeout.
func writeReply(c net.Conn, code socks5.ReplyCode, bound netip.AddrPort) error {
	_ = c.SetWriteDeadline(time.Now().Add(limits.WriteTimeout))
	err := socks5.WriteReply(c, code, bound)
	_ = c.SetWriteDeadline(time.Time{})
	return err
}

// socksReply is the reply code for a failed dial or resolution.
func socksReply(err error) socks5.ReplyCode {
	var refused *egress.Refused
	var chainErr *ChainError
	switch {
	case errors.As(err, &refused):
		return socks5.NotAllowed
	case errors.As(err, &chainErr):
		switch {
		case chainErr.Reply != 0:
			return chainErr.Reply
		case chainErr.Status == 403:
			return socks5.NotAllowed
		}
		return socks5.GeneralFailure
	case isDNSError(err):
		return socks5.HostUnreachable
	}
	return socks5.ReplyFor(err)
}

// socksConnect carries out CONNECT: dial through the egress policy,
// answer, relay.
func (s *Server) socksConnect(c net.Conn, req *socks5.Request, id identity, u *userState, start time.Time) {
	dest := req.Dst.String()
	src := s.sources.Pick(id.user, id.session)
	up, remote, err := s.dialOut(bgCtx, dest, src, false)
	if err != nil {
		code := socksReply(err)
		_ = writeReply(c, code, netip.AddrPort{})
		s.logSOCKS(c, "CONNECT", id, dest, code, src, netip.AddrPort{}, 0, 0, start, err)
		return
	}
	defer up.Close()
	bound, _ := addrPortOf(up.LocalAddr())
	if err := writeReply(c, socks5.Succeeded, bound); err != nil {
		s.logSOCKS(c, "CONNECT", id, dest, socks5.Succeeded, src, remote, 0, 0, start, err)
		return
	}
	s.tunnelling(c)
	in, out, err := relay(s.ctx, c, nil, up, s.opts.TunnelIdleTimeout, u)
	s.usage.add(id, kindSOCKS, in, out)
	s.logSOCKS(c, "CONNECT", id, dest, socks5.Succeeded, src, remote, in, out, start, err)
}

// socksUDP carries out UDP ASSOCIATE: a socket for the client on the
// address it reached the server at, an outbound socket on the picked
// source address, and every datagram's destination checked by the policy.
func (s *Server) socksUDP(c net.Conn, req *socks5.Request, id identity, u *userState, start time.Time) {
	local, _ := addrPortOf(c.LocalAddr())
	clientSock, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local.Addr().Unmap(), 0)))
	if err != nil {
		_ = writeReply(c, socks5.GeneralFailure, netip.AddrPort{})
		s.logSOCKS(c, "UDP ASSOCIATE", id, req.Dst.String(), socks5.GeneralFailure, netip.Addr{}, netip.AddrPort{}, 0, 0, start, err)
		return
	}
	src := s.sources.Pick(id.user, id.session)
	var outAddr *net.UDPAddr
	if src.IsValid() {
		outAddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	outSock, err := net.ListenUDP("udp", outAddr)
	if err != nil {
		clientSock.Close()
		_ = writeReply(c, socks5.GeneralFailure, netip.AddrPort{})
		s.logSOCKS(c, "UDP ASSOCIATE", id, req.Dst.String(), socks5.GeneralFailure, src, netip.AddrPort{}, 0, 0, start, err)
		return
	}
	bound := clientSock.LocalAddr().(*net.UDPAddr).AddrPort()
	if err := writeReply(c, socks5.Succeeded, bound); err != nil {
		clientSock.Close()
		outSock.Close()
		return
	}
	s.tunnelling(c)
	out := &countingPacketConn{UDPConn: outSock, up: u.limiter(true), down: u.limiter(false)}
	relay := &socks5.UDPRelay{
		Control:     c,
		Client:      clientSock,
		Outbound:    out,
		IdleTimeout: s.opts.UDPIdleTimeout,
		Resolve: func(dst socks5.Addr) (netip.AddrPort, error) {
			ap, err := s.dialer.ResolveUDPFrom(bgCtx, dst.String(), src)
			var refused *egress.Refused
			if errors.As(err, &refused) {
				return ap, fmt.Errorf("%w: %s", socks5.ErrNotAllowed, refused.Reason)
			}
			return ap, err
		},
		OnDrop: func(from netip.AddrPort, err error) {
			s.log.Debug("SOCKS5 UDP datagram dropped", "from", from.String(), "err", err)
		},
	}
	err = relay.Run()
	if errors.Is(err, socks5.ErrRelayIdle) {
		err = nil
	}
	in, outN := out.sent.Load(), out.received.Load()
	s.usage.add(id, kindUDP, in, outN)
	s.logSOCKS(c, "UDP ASSOCIATE", id, req.Dst.String(), socks5.Succeeded, src, netip.AddrPort{}, in, outN, start, err)
}

// countingPacketConn counts the payload bytes of an association's
// outbound socket, and drops datagrams over the user's rate.
type countingPacketConn struct {
	*net.UDPConn
	up, down       *rate.Limiter // nil: no rate
	sent, received atomic.Int64
}

func (p *countingPacketConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, a, err := p.UDPConn.ReadFromUDPAddrPort(b)
		if err == nil && !allowN(p.down, n) {
			continue // over the rate: dropped
		}
		p.received.Add(int64(n))
		return n, a, err
	}
}

func (p *countingPacketConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	if !allowN(p.up, len(b)) {
		return 0, errRateLimited
	}
	n, err := p.UDPConn.WriteToUDPAddrPort(b, to)
	p.sent.Add(int64(n))
	return n, err
}

func (s *Server) logSOCKS(c net.Conn, cmd string, id identity, dest string, code socks5.ReplyCode,
	src netip.Addr, remote netip.AddrPort, in, out int64, start time.Time, err error) {
	al := s.opts.AccessLog
	if al == nil {
		return
	}
	client, _ := addrPortOf(c.RemoteAddr())
	proto := kindSOCKS
	if cmd == "UDP ASSOCIATE" {
		proto = kindUDP
	}
	attrs := make([]any, 0, 26)
	attrs = append(attrs,
		"proto", proto.String(),
		"client", client.Addr().Unmap().String(),
		"user", id.user,
		"method", cmd,
		"host", dest,
		"reply", int(code),
		"bytes_in", in,
		"bytes_out", out,
	)
	if src.IsValid() {
		attrs = append(attrs, "source", src.String())
	}
	if remote.IsValid() {
		attrs = append(attrs, "upstream", remote.String())
	}
	attrs = append(attrs, "duration", time.Since(start).Seconds())
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	al.Info("access", attrs...)
}

func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort(), true
	case *net.UDPAddr:
		return a.AddrPort(), true
	case nil:
		return netip.AddrPort{}, false
	}
	ap, err := netip.ParseAddrPort(a.String())
	return ap, err == nil
}
