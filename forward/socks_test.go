package forward

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/socks5"
)

func TestSOCKSConnect(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy:   egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		Resolver: testResolver,
	})
	for _, target := range []string{origin.hostport(), "origin.test:" + strconv.Itoa(int(origin.port()))} {
		c, err := socksDial(t, p.addr, target, "", "")
		if err != nil {
			t.Fatalf("SOCKS5 CONNECT %s: %v", target, err)
		}
		resp, body := getOver(t, c, target, "/via-socks")
		c.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(body, "hello from 127.0.0.1") {
			t.Fatalf("%s: %d %q", target, resp.StatusCode, body)
		}
	}
	// HTTP still works on the same port.
	resp, _ := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("HTTP on the SOCKS5 port: %d", resp.StatusCode)
	}
	testkit.WaitFor(t, 5*time.Second, "usage", func() bool { return p.Usage()[""].Tunnels == 2 })
}

func TestSOCKSAuth(t *testing.T) {
	origin := newEchoOrigin(t, false)
	users := usersFile(t, "alice:wonderland")
	p := startProxy(t, Options{
		Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		Auth:   users,
	})

	// Offering only "no authentication": method 0xFF, then closed.
	c := dial(t, p.addr)
	_, _ = c.Write([]byte{5, 1, 0})
	got, closed := readAllUntilClose(c, 10*time.Second)
	if !closed || !bytes.Equal(got, []byte{5, 0xFF}) {
		t.Fatalf("no acceptable method: got %x closed=%v, want 05ff and close", got, closed)
	}

	// Wrong password: {1,1}, then closed.
	c = dial(t, p.addr)
	msg := []byte{5, 1, 2}
	msg, _ = socks5.AppendUserPass(msg, "alice", "wrong")
	_, _ = c.Write(msg)
	got, closed = readAllUntilClose(c, 10*time.Second)
	if !closed || !bytes.Equal(got, []byte{5, 2, 1, 1}) {
		t.Fatalf("wrong password: got %x closed=%v, want 0502 0101 and close", got, closed)
	}
	if _, err := socksDial(t, p.addr, origin.hostport(), "nobody", "wonderland"); !errors.Is(err, socks5.ErrAuthFailed) {
		t.Fatalf("unknown user: %v", err)
	}

	// The right password, with a session suffix.
	tc, err := socksDial(t, p.addr, origin.hostport(), "alice-session-s1", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := getOver(t, tc, origin.hostport(), "/")
	tc.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("authenticated tunnel: %d", resp.StatusCode)
	}
	testkit.WaitFor(t, 5*time.Second, "alice's usage", func() bool {
		u := p.Usage()["alice"]
		return u.Tunnels == 1 && u.BytesIn > 0 && u.BytesOut > 0
	})
	if n := origin.accepts.Load(); n != 1 {
		t.Errorf("origin accepted %d connections, want only the authenticated one", n)
	}
}

func TestSOCKSCommandsRefused(t *testing.T) {
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}})
	for _, cmd := range []socks5.Command{socks5.Bind, socks5.UDPAssociate} {
		c := dial(t, p.addr)
		msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
		msg, _ = socks5.AppendRequest(msg, cmd, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 9})
		_, _ = c.Write(msg)
		got, closed := readAllUntilClose(c, 10*time.Second)
		if !closed || len(got) < 4 || got[3] != byte(socks5.CommandNotSupported) {
			t.Errorf("%v: got %x closed=%v, want reply %d", cmd, got, closed, socks5.CommandNotSupported)
		}
	}
	if n := p.dials.Load(); n != 0 {
		t.Errorf("%d dials", n)
	}
}

// udpAssociate opens a UDP association and returns the control
// connection, a client UDP socket and the relay's address.
func udpAssociate(t *testing.T, proxyAddr, user, pass string) (net.Conn, *net.UDPConn, netip.AddrPort) {
	t.Helper()
	c := dial(t, proxyAddr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	methods := []socks5.Method{socks5.MethodNoAuth}
	if user != "" {
		methods = []socks5.Method{socks5.MethodUserPass}
	}
	msg, _ := socks5.AppendGreeting(nil, methods...)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		t.Fatal(err)
	}
	if user != "" {
		up, _ := socks5.AppendUserPass(nil, user, pass)
		_, _ = c.Write(up)
		var st [2]byte
		if _, err := io.ReadFull(c, st[:]); err != nil || st[1] != 0 {
			t.Fatalf("auth: %x %v", st, err)
		}
	}
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	req, _ := socks5.AppendRequest(nil, socks5.UDPAssociate, socks5.AddrFromAddrPort(pc.LocalAddr().(*net.UDPAddr).AddrPort()))
	_, _ = c.Write(req)
	code, bound, err := socks5.ReadReply(c)
	if err != nil || code != socks5.Succeeded {
		t.Fatalf("UDP ASSOCIATE: %v %v", code, err)
	}
	_ = c.SetDeadline(time.Time{})
	ap, ok := bound.AddrPort()
	if !ok {
		t.Fatalf("relay address %v", bound)
	}
	return c, pc, ap
}

func TestSOCKSUDPAssociate(t *testing.T) {
	echo := udpEcho(t)
	echoAddr := echo.LocalAddr().(*net.UDPAddr).AddrPort()
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, UDP: true, Resolver: testResolver})
	ctrl, pc, relay := udpAssociate(t, p.addr, "", "")

	for i, to := range []socks5.Addr{
		socks5.AddrFromAddrPort(echoAddr),
		{Name: "origin.test", Port: echoAddr.Port()},
	} {
		payload := []byte("datagram " + strconv.Itoa(i))
		dg, _ := socks5.AppendUDPHeader(nil, to)
		dg = append(dg, payload...)
		var got []byte
		// UDP may drop a datagram: send again until the answer comes, a
		// bounded number of times.
		for attempt := 0; attempt < 20 && got == nil; attempt++ {
			if _, err := pc.WriteToUDPAddrPort(dg, relay); err != nil {
				t.Fatal(err)
			}
			_ = pc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
			buf := make([]byte, 2048)
			n, _, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				continue
			}
			got = buf[:n]
		}
		if got == nil {
			t.Fatalf("no answer through the UDP relay to %v", to)
		}
		src, hl, err := socks5.ParseUDPHeader(got)
		if err != nil || !bytes.Equal(got[hl:], payload) {
			t.Fatalf("answer %x: %v", got, err)
		}
		if ap, _ := src.AddrPort(); ap != echoAddr {
			t.Errorf("answer names %v, want %v", src, echoAddr)
		}
	}
	ctrl.Close()
	testkit.WaitFor(t, 5*time.Second, "the association to end", func() bool {
		u := p.Usage()[""]
		return u.Associations == 1 && u.BytesIn > 0 && u.BytesOut > 0
	})
}

func TestSOCKSUDPPolicy(t *testing.T) {
	echo := udpEcho(t)
	echoAddr := echo.LocalAddr().(*net.UDPAddr).AddrPort()
	p := startProxy(t, Options{UDP: true, Resolver: testResolver})
	_, pc, relay := udpAssociate(t, p.addr, "", "")
	dg, _ := socks5.AppendUDPHeader(nil, socks5.AddrFromAddrPort(echoAddr))
	dg = append(dg, "to loopback"...)
	if _, err := pc.WriteToUDPAddrPort(dg, relay); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 5*time.Second, "the datagram to be dropped by the policy", func() bool {
		return strings.Contains(p.log.String(), "SOCKS5 UDP datagram dropped") &&
			strings.Contains(p.log.String(), "not allowed")
	})
}

// TestHandshakeRobustness: broken and slow first messages are closed while
// another client keeps being served.
func TestHandshakeRobustness(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy:           egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		HandshakeTimeout: 500 * time.Millisecond,
	})
	hold := func(b []byte) net.Conn {
		c := dial(t, p.addr)
		if len(b) > 0 {
			_, _ = c.Write(b)
		}
		return c
	}
	cases := []struct {
		name string
		c    net.Conn
		want string // prefix of what the proxy answers before closing
	}{
		{"silent", hold(nil), ""},
		{"binary garbage", hold([]byte("\x00\x01\x02\xff\xfe garbage\r\n\r\n")), ""},
		{"tls client hello", hold([]byte{0x16, 3, 1, 0, 0x80, 1}), ""},
		{"text garbage", hold([]byte("NOT AN HTTP REQUEST AT ALL\r\n\r\n")), "HTTP/1.1 400 "},
		{"socks4", hold([]byte{4, 1, 0, 80, 127, 0, 0, 1, 'u', 0}), "\x00\x5b"},
		{"socks5 truncated greeting", hold([]byte{5, 3, 0}), ""},
		{"socks5 truncated request", hold([]byte{5, 1, 0, 5, 1, 0, 3, 200, 'a'}), "\x05\x00"},
		{"socks5 bad request version", hold([]byte{5, 1, 0, 4, 1, 0, 1, 127, 0, 0, 1, 0, 80}), "\x05\x00"},
		{"socks5 no methods", hold([]byte{5, 0}), "\x05\xff"},
	}
	// Meanwhile a client doing a byte-at-a-time SOCKS5 handshake, and
	// then an HTTP client, are served.
	c := dial(t, p.addr)
	msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
	msg, _ = socks5.AppendRequest(msg, socks5.Connect, socks5.AddrFromAddrPort(netip.MustParseAddrPort(origin.hostport())))
	for i := range msg {
		if _, err := c.Write(msg[i : i+1]); err != nil {
			t.Fatal(err)
		}
	}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("method selection %x %v", sel, err)
	}
	if code, _, err := socks5.ReadReply(c); err != nil || code != socks5.Succeeded {
		t.Fatalf("byte-at-a-time handshake: %v %v", code, err)
	}
	if resp, _ := getOver(t, c, origin.hostport(), "/"); resp.StatusCode != 200 {
		t.Fatalf("tunnel after a byte-at-a-time handshake: %d", resp.StatusCode)
	}
	if resp, _ := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/ HTTP/1.1\r\nHost: x\r\n\r\n"); resp.StatusCode != 200 {
		t.Fatalf("HTTP while broken clients wait: %d", resp.StatusCode)
	}
	for _, tc := range cases {
		got, closed := readAllUntilClose(tc.c, 10*time.Second)
		if !closed {
			t.Errorf("%s: still open", tc.name)
		}
		if !strings.HasPrefix(string(got), tc.want) || (tc.want == "" && len(got) != 0) {
			t.Errorf("%s: answered %q, want %q", tc.name, got, tc.want)
		}
	}
	c.Close()
	testkit.WaitFor(t, 5*time.Second, "every SOCKS5 and unidentified connection to be closed", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.conns) == 0
	})
}
