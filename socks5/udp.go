package socks5

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// UDPRelay relays the datagrams of one UDP association (RFC 1928 §7).
//
// A server that accepted a UDP ASSOCIATE request opens a UDP socket for the
// client (Client), answers the request with WriteReply and that socket's
// address, and calls Run. Datagrams reaching Client are accepted only from
// the IP address of the client's TCP control connection; the first
// well-formed one fixes the client's UDP port, and datagrams from any
// other address or port are dropped. Each accepted datagram loses its
// header and is sent from Outbound to the destination Resolve returns.
// Datagrams reaching Outbound are relayed back only from destinations the
// client has sent to, with a header naming their source, and are sent to
// the client. Fragments (FRAG not zero) are dropped.
//
// The association ends, and Run returns, when the control connection
// closes (as RFC 1928 requires), when no datagram has been relayed for
// IdleTimeout, or when a socket fails.
type UDPRelay struct {
	// Control is the TCP connection that carried the UDP ASSOCIATE
	// request. Run reads and discards anything the client sends on it;
	// any read error, a passed read deadline included, ends the
	// association.
	Control net.Conn

	// Client is the socket the client sends its datagrams to: the one
	// whose address the reply to UDP ASSOCIATE named.
	Client net.PacketConn

	// Outbound is the socket datagrams are sent to destinations from.
	// When nil, Run opens one on an unspecified address and port.
	Outbound net.PacketConn

	// Resolve applies the caller's policy to a destination and returns the
	// address to send to: it resolves names and refuses what is not
	// allowed with an error (ErrNotAllowed, for example). It is called
	// once for every datagram from the client, on one goroutine, so it
	// should answer from a cache when it can. Required.
	Resolve func(dst Addr) (netip.AddrPort, error)

	// IdleTimeout ends the association when no datagram has been relayed
	// in either direction for this long. Zero or less means
	// DefaultUDPIdleTimeout.
	IdleTimeout time.Duration

	// OnDrop, when set, is told about every datagram that is not relayed:
	// its source and the reason (ErrNotClient, ErrUnknownPeer,
	// ErrFragmented, another parse error, an error from Resolve, or a
	// failure to send). It may be called from two goroutines at once and
	// must not block.
	OnDrop func(from netip.AddrPort, err error)
}

var errNoResolvedAddr = errors.New("socks5: Resolve returned no address")

// udpHeaderRoom is the longest header the relay puts in front of a reply:
// RSV, FRAG, ATYP, an IPv6 address and the port.
const udpHeaderRoom = 3 + 1 + 16 + 2

// Run relays until the association ends, then closes Control, Client and
// Outbound (whoever opened them) and returns: nil when the control
// connection closed, ErrRelayIdle after the idle timeout, or the error of
// a socket that failed. When the relay cannot start (a required field is
// nil, Control has no IP address, Outbound cannot be opened), Run returns
// that error at once and closes nothing.
func (r *UDPRelay) Run() error {
	if r.Control == nil || r.Client == nil || r.Resolve == nil {
		return errors.New("socks5: UDPRelay needs Control, Client and Resolve")
	}
	ctrl, ok := addrPortOf(r.Control.RemoteAddr())
	if !ok {
		return errors.New("socks5: control connection has no IP address")
	}
	out := r.Outbound
	if out == nil {
		c, err := net.ListenUDP("udp", nil)
		if err != nil {
			return err
		}
		out = c
	}
	idle := r.IdleTimeout
	if idle <= 0 {
		idle = DefaultUDPIdleTimeout
	}

	s := &association{
		r:        r,
		out:      out,
		clientIP: ctrl.Addr().WithZone(""),
		start:    time.Now(),
		peers:    make(map[netip.AddrPort]int64),
	}
	var wg sync.WaitGroup
	ctrlDone := make(chan struct{})
	fail := make(chan error, 2)
	wg.Go(func() {
		var buf [512]byte
		for {
			if _, err := r.Control.Read(buf[:]); err != nil {
				close(ctrlDone)
				return
			}
		}
	})
	wg.Go(func() { fail <- s.fromClient() })
	wg.Go(func() { fail <- s.fromPeers() })

	timer := time.NewTimer(idle)
	var result error
wait:
	for {
		select {
		case <-ctrlDone:
			break wait
		case result = <-fail:
			break wait
		case <-timer.C:
			quiet := time.Since(s.start) - time.Duration(s.last.Load())
			if quiet >= idle {
				result = ErrRelayIdle
				break wait
			}
			timer.Reset(idle - quiet)
		}
	}
	timer.Stop()
	r.Control.Close()
	r.Client.Close()
	out.Close()
	wg.Wait()
	return result
}

// association is the state of one running UDPRelay.
type association struct {
	r        *UDPRelay
	out      net.PacketConn
	clientIP netip.Addr                     // from the control connection, no zone
	client   atomic.Pointer[netip.AddrPort] // fixed by the first datagram
	start    time.Time
	last     atomic.Int64 // when a datagram was last relayed, since start

	mu    sync.Mutex
	peers map[netip.AddrPort]int64 // destinations, and when each was last used
}

func (s *association) drop(from netip.AddrPort, err error) {
	if s.r.OnDrop != nil {
		s.r.OnDrop(from, err)
	}
}

func (s *association) touch() int64 {
	now := int64(time.Since(s.start))
	s.last.Store(now)
	return now
}

// fromClient relays datagrams from the client to their destinations.
func (s *association) fromClient() error {
	buf := make([]byte, MaxDatagramLen)
	for {
		n, from, err := readFrom(s.r.Client, buf)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return err
		}
		client := s.client.Load()
		if from.Addr().Unmap().WithZone("") != s.clientIP || (client != nil && *client != from) {
			s.drop(from, ErrNotClient)
			continue
		}
		dst, hl, err := ParseUDPHeader(buf[:n])
		if err != nil {
			s.drop(from, err)
			continue
		}
		if client == nil {
			s.client.Store(&from)
		}
		to, err := s.r.Resolve(dst)
		if err != nil {
			s.drop(from, err)
			continue
		}
		if !to.Addr().IsValid() {
			s.drop(from, errNoResolvedAddr)
			continue
		}
		to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
		s.remember(to, s.touch())
		if err := writeTo(s.out, buf[hl:n], to); err != nil {
			s.drop(from, err)
		}
	}
}

// fromPeers relays datagrams from destinations back to the client.
func (s *association) fromPeers() error {
	buf := make([]byte, udpHeaderRoom+MaxDatagramLen)
	var hdr [udpHeaderRoom]byte
	for {
		n, from, err := readFrom(s.out, buf[udpHeaderRoom:])
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				continue
			}
			return err
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		client := s.client.Load()
		if client == nil || !s.known(from) {
			s.drop(from, ErrUnknownPeer)
			continue
		}
		h, err := AppendUDPHeader(hdr[:0], AddrFromAddrPort(from))
		if err != nil {
			s.drop(from, err)
			continue
		}
		start := udpHeaderRoom - len(h)
		copy(buf[start:], h)
		if err := writeTo(s.r.Client, buf[start:udpHeaderRoom+n], *client); err != nil {
			s.drop(from, err)
			continue
		}
		s.touch()
	}
}

// remember records that the client sent to peer at time now, forgetting
// the destination used longest ago when MaxUDPPeers are remembered.
func (s *association) remember(peer netip.AddrPort, now int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.peers[peer]; !ok && len(s.peers) >= MaxUDPPeers {
		var oldest netip.AddrPort
		t := int64(-1)
		for p, used := range s.peers {
			if t < 0 || used < t {
				oldest, t = p, used
			}
		}
		delete(s.peers, oldest)
	}
	s.peers[peer] = now
}

// known reports whether the client has sent to peer.
func (s *association) known(peer netip.AddrPort) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.peers[peer]
	return ok
}

func readFrom(c net.PacketConn, b []byte) (int, netip.AddrPort, error) {
	if u, ok := c.(interface {
		ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error)
	}); ok {
		return u.ReadFromUDPAddrPort(b)
	}
	n, a, err := c.ReadFrom(b)
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	ap, _ := addrPortOf(a)
	return n, ap, nil
}

func writeTo(c net.PacketConn, b []byte, to netip.AddrPort) error {
	if u, ok := c.(interface {
		WriteToUDPAddrPort([]byte, netip.AddrPort) (int, error)
	}); ok {
		_, err := u.WriteToUDPAddrPort(b, to)
		return err
	}
	_, err := c.WriteTo(b, net.UDPAddrFromAddrPort(to))
	return err
}

// addrPortOf returns the IP address and port of a network address.
func addrPortOf(a net.Addr) (netip.AddrPort, bool) {
	var ap netip.AddrPort
	switch a := a.(type) {
	case nil:
		return netip.AddrPort{}, false
	case *net.TCPAddr:
		ap = a.AddrPort()
	case *net.UDPAddr:
		ap = a.AddrPort()
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return netip.AddrPort{}, false
		}
	}
	if !ap.Addr().IsValid() {
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), true
}
