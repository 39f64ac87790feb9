package socks5

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(loopback, 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

func udpAddr(c net.PacketConn) netip.AddrPort {
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// startUDPEcho runs a UDP echo server on 127.0.0.1.
func startUDPEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	c := listenUDP(t)
	c.SetDeadline(time.Time{})
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, MaxDatagramLen)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	return udpAddr(c)
}

type drop struct {
	from netip.AddrPort
	err  error
}

// association is one UDP ASSOCIATE set up through ServerHandshake, with
// the relay running.
type udpAssoc struct {
	relay   *UDPRelay
	ctrl    net.Conn       // the client's end of the control connection
	relayAt netip.AddrPort // where the client sends datagrams (from the reply)
	done    chan error     // Run's result
	drops   chan drop
}

// startAssociation performs the UDP ASSOCIATE handshake over loopback TCP
// and starts a UDPRelay for it. echo is what the name "echo.test"
// resolves to; 192.0.2.0/24 is refused by policy.
func startAssociation(t *testing.T, echo netip.AddrPort, setup func(*UDPRelay)) *udpAssoc {
	t.Helper()
	ctrl, server := tcpPair(t)
	a := &udpAssoc{ctrl: ctrl, done: make(chan error, 1), drops: make(chan drop, 64)}
	a.relay = &UDPRelay{
		Control:  server,
		Client:   listenUDP(t),
		Outbound: listenUDP(t),
		Resolve: func(dst Addr) (netip.AddrPort, error) {
			if dst.Name == "echo.test" {
				return netip.AddrPortFrom(echo.Addr(), dst.Port), nil
			}
			ap, ok := dst.AddrPort()
			if !ok {
				return netip.AddrPort{}, &net.DNSError{Err: "no such host", Name: dst.Name, IsNotFound: true}
			}
			if netip.MustParsePrefix("192.0.2.0/24").Contains(ap.Addr()) {
				return netip.AddrPort{}, ErrNotAllowed
			}
			return ap, nil
		},
		OnDrop: func(from netip.AddrPort, err error) {
			select {
			case a.drops <- drop{from, err}:
			default:
			}
		},
	}
	if setup != nil {
		setup(a.relay)
	}

	handshake := make(chan error, 1)
	go func() {
		req, err := ServerHandshake(server, &ServerConfig{AllowUDPAssociate: true})
		if err == nil && req.Cmd != UDPAssociate {
			err = errors.New("not UDP ASSOCIATE")
		}
		if err == nil {
			err = WriteReply(server, Succeeded, udpAddr(a.relay.Client))
		}
		handshake <- err
	}()
	req, _ := AppendRequest(nil, UDPAssociate, Addr{IP: netip.IPv4Unspecified()})
	write(t, ctrl, cat(5, 1, 0), req)
	expect(t, ctrl, cat(5, 0))
	code, bound, err := ReadReply(ctrl)
	if err != nil || code != Succeeded {
		t.Fatalf("reply %v %v, %v", code, bound, err)
	}
	if err := <-handshake; err != nil {
		t.Fatal(err)
	}
	a.relayAt, _ = bound.AddrPort()

	go func() { a.done <- a.relay.Run() }()
	t.Cleanup(func() {
		ctrl.Close()
		a.wait(t)
	})
	return a
}

// wait returns Run's result, once.
func (a *udpAssoc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err, ok := <-a.done:
		if ok {
			close(a.done)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("UDPRelay.Run did not return")
		return nil
	}
}

// send wraps payload for dst and sends it from c to the relay.
func (a *udpAssoc) send(t *testing.T, c *net.UDPConn, dst Addr, payload []byte) {
	t.Helper()
	b, err := AppendUDPHeader(nil, dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteToUDPAddrPort(append(b, payload...), a.relayAt); err != nil {
		t.Fatal(err)
	}
}

// recv reads one datagram from the relay on c and unwraps it.
func (a *udpAssoc) recv(t *testing.T, c *net.UDPConn) (Addr, []byte) {
	t.Helper()
	buf := make([]byte, MaxDatagramLen)
	n, from, err := c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatal(err)
	}
	if from != a.relayAt {
		t.Fatalf("datagram from %v, want the relay at %v", from, a.relayAt)
	}
	src, hl, err := ParseUDPHeader(buf[:n])
	if err != nil {
		t.Fatalf("reply %q: %v", buf[:n], err)
	}
	return src, buf[hl:n]
}

// roundTrip sends payload to dst through the relay and checks the echo.
func (a *udpAssoc) roundTrip(t *testing.T, c *net.UDPConn, dst Addr, echo netip.AddrPort, payload []byte) {
	t.Helper()
	a.send(t, c, dst, payload)
	src, got := a.recv(t, c)
	if src != AddrFromAddrPort(echo) {
		t.Fatalf("reply from %v, want %v", src, echo)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("reply payload of %d bytes, want %d", len(got), len(payload))
	}
}

// expectDrop waits for the relay to report a dropped datagram.
func (a *udpAssoc) expectDrop(t *testing.T, want error) drop {
	t.Helper()
	select {
	case d := <-a.drops:
		if want != nil && !errors.Is(d.err, want) {
			t.Fatalf("dropped from %v for %v, want %v", d.from, d.err, want)
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatalf("no datagram dropped, want one for %v", want)
		return drop{}
	}
}

func TestUDPRelayEcho(t *testing.T) {
	echo := startUDPEcho(t)
	a := startAssociation(t, echo, nil)
	if a.relayAt != udpAddr(a.relay.Client) {
		t.Fatalf("reply named %v, the relay listens on %v", a.relayAt, udpAddr(a.relay.Client))
	}
	c := listenUDP(t)
	a.roundTrip(t, c, AddrFromAddrPort(echo), echo, []byte("ping"))
	a.roundTrip(t, c, Addr{Name: "echo.test", Port: echo.Port()}, echo, []byte("by name"))
	a.roundTrip(t, c, AddrFromAddrPort(echo), echo, nil)
	a.roundTrip(t, c, AddrFromAddrPort(echo), echo, bytes.Repeat([]byte("0123456789"), 6000))

	// The association ends with the control connection.
	a.ctrl.Close()
	if err := a.wait(t); err != nil {
		t.Fatalf("Run = %v, want nil after the control connection closed", err)
	}
	if _, _, err := a.relay.Client.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("client socket after Run: %v, want it closed", err)
	}
	if _, _, err := a.relay.Outbound.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("outbound socket after Run: %v, want it closed", err)
	}
}

func TestUDPRelayDrops(t *testing.T) {
	echo := startUDPEcho(t)
	a := startAssociation(t, echo, nil)
	c := listenUDP(t)
	to := AddrFromAddrPort(echo)

	// A fragment does not fix the client's port, and is not relayed.
	b, _ := AppendUDPHeader(nil, to)
	b[2] = 1
	if _, err := c.WriteToUDPAddrPort(append(b, "frag"...), a.relayAt); err != nil {
		t.Fatal(err)
	}
	a.expectDrop(t, ErrFragmented)
	if _, err := c.WriteToUDPAddrPort(cat(0, 1, 0, 1, 127, 0, 0, 1, 0, 7), a.relayAt); err != nil {
		t.Fatal(err)
	}
	a.expectDrop(t, ErrReserved)

	// The first well-formed datagram fixes the client's port.
	a.roundTrip(t, c, to, echo, []byte("first"))
	other := listenUDP(t)
	a.send(t, other, to, []byte("from another port"))
	if d := a.expectDrop(t, ErrNotClient); d.from != udpAddr(other) {
		t.Fatalf("drop reported from %v, want %v", d.from, udpAddr(other))
	}

	// Policy and resolution failures from Resolve.
	a.send(t, c, Addr{IP: netip.MustParseAddr("192.0.2.1"), Port: 53}, []byte("refused"))
	a.expectDrop(t, ErrNotAllowed)
	a.send(t, c, Addr{Name: "nowhere.test", Port: 53}, []byte("unknown"))
	var dnsErr *net.DNSError
	if d := a.expectDrop(t, nil); !errors.As(d.err, &dnsErr) {
		t.Fatalf("drop for %v, want a DNS error", d.err)
	}

	// A datagram to the outbound socket from a host the client never sent
	// to is not relayed to the client.
	stranger := listenUDP(t)
	if _, err := stranger.WriteToUDPAddrPort([]byte("unsolicited"), udpAddr(a.relay.Outbound)); err != nil {
		t.Fatal(err)
	}
	if d := a.expectDrop(t, ErrUnknownPeer); d.from != udpAddr(stranger) {
		t.Fatalf("drop reported from %v, want %v", d.from, udpAddr(stranger))
	}

	// The association still works, and nothing else reached the client:
	// the next datagram it reads is this echo.
	a.roundTrip(t, c, to, echo, []byte("last"))
	select {
	case d := <-a.drops:
		t.Fatalf("unexpected drop from %v: %v", d.from, d.err)
	default:
	}
}

func TestUDPRelayIdle(t *testing.T) {
	echo := startUDPEcho(t)
	a := startAssociation(t, echo, func(r *UDPRelay) { r.IdleTimeout = 500 * time.Millisecond })
	c := listenUDP(t)
	a.roundTrip(t, c, AddrFromAddrPort(echo), echo, []byte("once"))
	start := time.Now()
	if err := a.wait(t); !errors.Is(err, ErrRelayIdle) {
		t.Fatalf("Run = %v, want ErrRelayIdle", err)
	}
	if time.Since(start) < 400*time.Millisecond {
		t.Fatal("the association ended before its idle timeout")
	}
	// The control connection was closed with it.
	if _, err := a.ctrl.Read(make([]byte, 1)); err == nil {
		t.Fatal("control connection still open")
	}
}

func TestUDPRelayOwnOutbound(t *testing.T) {
	echo := startUDPEcho(t)
	a := startAssociation(t, echo, func(r *UDPRelay) { r.Outbound = nil })
	c := listenUDP(t)
	a.roundTrip(t, c, AddrFromAddrPort(echo), echo, []byte("ping"))
	a.ctrl.Close()
	if err := a.wait(t); err != nil {
		t.Fatal(err)
	}
}

func TestUDPRelayNeedsItsParts(t *testing.T) {
	c := listenUDP(t)
	if err := (&UDPRelay{Client: c}).Run(); err == nil {
		t.Error("Run without Control or Resolve succeeded")
	}
	p, q := net.Pipe()
	defer p.Close()
	defer q.Close()
	r := &UDPRelay{Control: p, Client: c, Resolve: func(Addr) (netip.AddrPort, error) { return netip.AddrPort{}, nil }}
	if err := r.Run(); err == nil {
		t.Error("Run with a control connection without an IP address succeeded")
	}
}

func TestUDPRelayRemembersBoundedPeers(t *testing.T) {
	s := &association{peers: make(map[netip.AddrPort]int64)}
	peer := func(i int) netip.AddrPort {
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 53)
	}
	for i := range MaxUDPPeers {
		s.remember(peer(i), int64(i+1))
	}
	s.remember(peer(0), int64(MaxUDPPeers+1)) // used again: now the newest
	s.remember(peer(MaxUDPPeers), int64(MaxUDPPeers+2))
	if len(s.peers) != MaxUDPPeers {
		t.Fatalf("%d peers remembered, want %d", len(s.peers), MaxUDPPeers)
	}
	if !s.known(peer(0)) || s.known(peer(1)) || !s.known(peer(MaxUDPPeers)) {
		t.Fatal("the destination used longest ago was not the one forgotten")
	}
}

// plainPacketConn hides the netip methods of a *net.UDPConn, so the relay
// takes its net.Addr path.
type plainPacketConn struct{ net.PacketConn }

func TestUDPRelayPlainPacketConns(t *testing.T) {
	echo := startUDPEcho(t)
	a := startAssociation(t, echo, func(r *UDPRelay) {
		r.Client = plainPacketConn{r.Client}
		r.Outbound = plainPacketConn{r.Outbound}
	})
	c := listenUDP(t)
	a.roundTrip(t, c, AddrFromAddrPort(echo), echo, []byte("ping"))
	a.roundTrip(t, c, Addr{Name: "echo.test", Port: echo.Port()}, echo, []byte("pong"))
}
