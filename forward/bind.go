package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/socks5"
)

// DefaultSOCKS5BindTimeout is how long a SOCKS5 BIND waits for its one
// incoming connection when Options.SOCKS5BindTimeout is zero. A client
// that gets no connection in time is answered with reply 0x06 (TTL
// expired).
const DefaultSOCKS5BindTimeout = 2 * time.Minute

// Errors that end a BIND before its relay starts.
var (
	errBindTimeout    = errors.New("no incoming connection before the BIND timeout")
	errBindClientGone = errors.New("client closed the control connection while waiting for the incoming connection")
)

// bindPeers is who may connect to a BIND's listener: the addresses the
// request's DST.ADDR resolved to (those the policy allows), or, when
// DST.ADDR is the unspecified address, anyone the policy allows.
type bindPeers struct {
	any   bool
	addrs []netip.Addr
}

// resolveBindPeers checks the host of a BIND request under the egress
// policy and resolves it. DST.PORT is not checked: a peer connects from a
// port its own system picks, which Weir does not enforce either. Errors
// are an *egress.Refused, or the resolver's error.
func (s *Server) resolveBindPeers(host string, src netip.Addr) (bindPeers, error) {
	if ip, err := netip.ParseAddr(host); err == nil && ip.Unmap().IsUnspecified() {
		return bindPeers{any: true}, nil
	}
	if err := s.policy.CheckName(host); err != nil {
		return bindPeers{}, err
	}
	want := func(a netip.Addr) bool { return !src.IsValid() || a.Is4() == src.Unmap().Is4() }
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap().WithZone("")
		if !want(ip) {
			return bindPeers{}, &egress.Refused{Reason: "destination address family differs from the source address"}
		}
		return bindPeers{addrs: []netip.Addr{ip}}, nil
	}
	ctx, cancel := context.WithTimeout(bgCtx, s.opts.ConnectTimeout)
	defer cancel()
	found, err := s.opts.Resolver.LookupNetIP(ctx, host)
	if err != nil {
		return bindPeers{}, err
	}
	var p bindPeers
	var firstRefusal error
	for _, a := range found {
		a = a.Unmap()
		if err := s.policy.CheckAddr(a); err != nil {
			if firstRefusal == nil {
				firstRefusal = err
			}
			continue
		}
		if want(a) && !slices.Contains(p.addrs, a) {
			p.addrs = append(p.addrs, a)
		}
	}
	switch {
	case len(p.addrs) > 0:
		return p, nil
	case firstRefusal != nil:
		return bindPeers{}, firstRefusal
	}
	return bindPeers{}, &net.DNSError{Err: "no usable addresses", Name: host, IsNotFound: true}
}

// check says whether peer may be the incoming connection.
func (p bindPeers) check(s *Server, peer netip.Addr) error {
	peer = peer.Unmap()
	if p.any {
		return s.policy.CheckAddr(peer)
	}
	if slices.Contains(p.addrs, peer) {
		return nil
	}
	return &egress.Refused{Reason: "incoming connection from an address other than the BIND request's"}
}

// bindAddr is the local address a BIND listens on: the picked source
// address, else the address of the interface that routes to the first
// allowed peer, else (any peer) the address the client reached Weir on.
func bindAddr(c net.Conn, peers bindPeers, port uint16, src netip.Addr) netip.Addr {
	if src.IsValid() {
		return src.Unmap()
	}
	if len(peers.addrs) > 0 {
		if port == 0 {
			port = 9 // any port: only the route is looked up, nothing is sent
		}
		// Connecting a UDP socket sends nothing; it only asks the kernel
		// which local address the route to the peer uses.
		u, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(peers.addrs[0], port)))
		if err == nil {
			local := u.LocalAddr().(*net.UDPAddr).AddrPort().Addr()
			u.Close()
			return local.Unmap()
		}
	}
	local, _ := addrPortOf(c.LocalAddr())
	return local.Addr().Unmap()
}

// socksBind carries out BIND (RFC 1928 section 4): check and resolve
// DST.ADDR under the policy, listen on the egress side, answer with the
// listener's address, wait for one incoming connection from DST.ADDR,
// answer with the peer's address, relay.
func (s *Server) socksBind(c net.Conn, req *socks5.Request, id identity, u *userState, start time.Time) {
	dest := req.Dst.String()
	src := s.sources.Pick(id.user, id.session)
	fail := func(code socks5.ReplyCode, bound netip.Addr, peer netip.AddrPort, err error) {
		_ = writeReply(c, code, netip.AddrPort{})
		s.logSOCKS(c, "BIND", id, dest, code, bound, peer, 0, 0, start, err)
	}
	host, _, err := egress.SplitHostPort(dest)
	if err != nil {
		fail(socks5.NotAllowed, src, netip.AddrPort{}, &egress.Refused{Reason: "invalid destination"})
		return
	}
	peers, err := s.resolveBindPeers(host, src)
	if err != nil {
		fail(socksReply(err), src, netip.AddrPort{}, err)
		return
	}
	local := bindAddr(c, peers, req.Dst.Port, src)
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)))
	if err != nil {
		fail(socks5.GeneralFailure, local, netip.AddrPort{}, err)
		return
	}
	defer ln.Close()
	bound := ln.Addr().(*net.TCPAddr).AddrPort()
	if err := writeReply(c, socks5.Succeeded, bound); err != nil {
		s.logSOCKS(c, "BIND", id, dest, socks5.Succeeded, local, netip.AddrPort{}, 0, 0, start, err)
		return
	}

	peer, early, err := s.bindAccept(c, ln)
	if err != nil {
		code := socks5.GeneralFailure
		switch {
		case errors.Is(err, errBindTimeout):
			code = socks5.TTLExpired
		case errors.Is(err, errBindClientGone):
			s.logSOCKS(c, "BIND", id, dest, socks5.Succeeded, local, netip.AddrPort{}, 0, 0, start, err)
			return
		}
		fail(code, local, netip.AddrPort{}, err)
		return
	}
	defer peer.Close()
	remote, _ := addrPortOf(peer.RemoteAddr())
	remote = netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port())
	if err := peers.check(s, remote.Addr()); err != nil {
		fail(socks5.NotAllowed, local, remote, err)
		return
	}
	if err := writeReply(c, socks5.Succeeded, remote); err != nil {
		s.logSOCKS(c, "BIND", id, dest, socks5.Succeeded, local, remote, 0, 0, start, err)
		return
	}
	s.tunnelling(c)
	in, out, err := relay(s.ctx, c, early, peer, s.opts.TunnelIdleTimeout, u)
	s.usage.add(id, kindSOCKS, in, out)
	s.logSOCKS(c, "BIND", id, dest, socks5.Succeeded, local, remote, in, out, start, err)
}

// bindAccept waits for one connection on ln, for at most the BIND
// timeout, and while the client keeps the control connection open. Bytes
// the client sends meanwhile are returned as early, to be relayed first;
// after a first read of them, only the timeout ends the wait. The
// listener is left open; the caller closes it.
func (s *Server) bindAccept(c net.Conn, ln *net.TCPListener) (peer net.Conn, early []byte, err error) {
	_ = ln.SetDeadline(time.Now().Add(s.opts.SOCKS5BindTimeout))
	type watched struct {
		b   []byte
		err error
	}
	watch := make(chan watched, 1)
	go func() {
		buf := make([]byte, 4<<10)
		n, err := c.Read(buf)
		if err != nil {
			ln.Close() // the client is gone (or the read is being stopped)
		}
		watch <- watched{buf[:n], err}
	}()
	peer, acceptErr := ln.AcceptTCP()
	// Stop the watcher and collect what it saw.
	_ = c.SetReadDeadline(time.Now())
	w := <-watch
	_ = c.SetReadDeadline(time.Time{})
	clientGone := w.err != nil && !isTimeout(w.err)
	if acceptErr != nil {
		switch {
		case clientGone:
			return nil, nil, fmt.Errorf("%w: %v", errBindClientGone, w.err)
		case isTimeout(acceptErr):
			return nil, nil, errBindTimeout
		}
		return nil, nil, acceptErr
	}
	if clientGone {
		peer.Close()
		return nil, nil, fmt.Errorf("%w: %v", errBindClientGone, w.err)
	}
	return peer, w.b, nil
}
