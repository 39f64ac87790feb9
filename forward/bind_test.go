package forward

import (
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/socks5"
)

// socksBind sends a BIND request for dst and returns the control
// connection with the first reply.
func socksBind(t *testing.T, proxyAddr string, dst socks5.Addr) (net.Conn, socks5.ReplyCode, netip.AddrPort) {
	t.Helper()
	c := dial(t, proxyAddr)
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
	msg, err := socks5.AppendRequest(msg, socks5.Bind, dst)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || sel[0] != 5 || sel[1] != byte(socks5.MethodNoAuth) {
		t.Fatalf("method selection: %x %v", sel, err)
	}
	code, bound := readReply(t, c)
	return c, code, bound
}

func readReply(t *testing.T, c net.Conn) (socks5.ReplyCode, netip.AddrPort) {
	t.Helper()
	code, a, err := socks5.ReadReply(c)
	if err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	return code, netip.AddrPortFrom(a.IP.Unmap(), a.Port)
}

func TestSOCKSBind(t *testing.T) {
	p := startProxy(t, Options{
		Policy:     egress.PolicyConfig{AllowPrivate: true},
		Resolver:   testResolver,
		SOCKS5Bind: true,
	})
	for _, dst := range []socks5.Addr{
		{IP: netip.MustParseAddr("127.0.0.1"), Port: 0},
		{Name: "origin.test", Port: 21},
		{IP: netip.IPv4Unspecified()},
	} {
		c, code, bound := socksBind(t, p.addr, dst)
		if code != socks5.Succeeded || bound.Addr() != netip.MustParseAddr("127.0.0.1") || bound.Port() == 0 {
			t.Fatalf("%v: first reply %d %v, want 0 and a port on 127.0.0.1", dst, code, bound)
		}
		// The "server" connects back to the advertised address.
		srv, err := net.DialTimeout("tcp", bound.String(), 5*time.Second)
		if err != nil {
			t.Fatalf("%v: connecting to the BIND address: %v", dst, err)
		}
		_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
		code, peer := readReply(t, c)
		want, _ := addrPortOf(srv.LocalAddr())
		if code != socks5.Succeeded || peer != want {
			t.Fatalf("%v: second reply %d %v, want 0 and %v", dst, code, peer, want)
		}
		if _, err := srv.Write([]byte("220 hello\r\n")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 11)
		if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "220 hello\r\n" {
			t.Fatalf("server to client: %q %v", buf, err)
		}
		if _, err := c.Write([]byte("QUIT\r\n")); err != nil {
			t.Fatal(err)
		}
		buf = make([]byte, 6)
		if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "QUIT\r\n" {
			t.Fatalf("client to server: %q %v", buf, err)
		}
		// The server ends: the client sees the end, then ends too.
		srv.Close()
		if rest, closed := readAllUntilClose(c, 10*time.Second); !closed || len(rest) != 0 {
			t.Fatalf("after the server closed: %q closed=%v", rest, closed)
		}
		c.Close()
	}
	testkit.WaitFor(t, 5*time.Second, "usage", func() bool {
		u := p.Usage()[""]
		return u.Tunnels == 3 && u.BytesIn == 3*6 && u.BytesOut == 3*11
	})
	testkit.WaitFor(t, 5*time.Second, "access lines", func() bool {
		return strings.Count(p.acc.String(), "method=BIND") == 3
	})
	if acc := p.acc.String(); !strings.Contains(acc, "proto=socks5") || !strings.Contains(acc, "host=origin.test:21") ||
		!strings.Contains(acc, "bytes_in=6 bytes_out=11") {
		t.Errorf("access log:\n%s", acc)
	}
	if n := p.dials.Load(); n != 0 {
		t.Errorf("%d outbound dials", n)
	}
}

func TestSOCKSBindEarlyBytes(t *testing.T) {
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, SOCKS5Bind: true})
	c, code, bound := socksBind(t, p.addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	if code != socks5.Succeeded {
		t.Fatalf("first reply %d", code)
	}
	// Bytes sent before the second reply reach the peer first.
	if _, err := c.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	srv := dial(t, bound.String())
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	if code, _ := readReply(t, c); code != socks5.Succeeded {
		t.Fatalf("second reply %d", code)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(srv, buf); err != nil || string(buf) != "early" {
		t.Fatalf("early bytes: %q %v", buf, err)
	}
}

func TestSOCKSBindWrongPeer(t *testing.T) {
	// The source address pins the listener to 127.0.0.1 while the BIND
	// names another address: a connection from 127.0.0.1 is refused.
	p := startProxy(t, Options{
		Policy:     egress.PolicyConfig{AllowPrivate: true},
		Sources:    egress.SourceConfig{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.1")}},
		SOCKS5Bind: true,
	})
	c, code, bound := socksBind(t, p.addr, socks5.Addr{IP: netip.MustParseAddr("10.0.0.1"), Port: 21})
	if code != socks5.Succeeded || bound.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("first reply %d %v", code, bound)
	}
	srv := dial(t, bound.String())
	if code, _ := readReply(t, c); code != socks5.NotAllowed {
		t.Fatalf("second reply %d, want %d", code, socks5.NotAllowed)
	}
	if _, closed := readAllUntilClose(c, 10*time.Second); !closed {
		t.Fatal("control connection left open")
	}
	if _, closed := readAllUntilClose(srv, 10*time.Second); !closed {
		t.Fatal("refused peer left open")
	}
	testkit.WaitFor(t, 5*time.Second, "access line", func() bool {
		acc := p.acc.String()
		return strings.Contains(acc, "method=BIND") && strings.Contains(acc, "reply=2")
	})
}

func TestSOCKSBindTimeout(t *testing.T) {
	p := startProxy(t, Options{
		Policy:            egress.PolicyConfig{AllowPrivate: true},
		SOCKS5Bind:        true,
		SOCKS5BindTimeout: 50 * time.Millisecond,
	})
	c, code, bound := socksBind(t, p.addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	if code != socks5.Succeeded {
		t.Fatalf("first reply %d", code)
	}
	if code, _ := readReply(t, c); code != socks5.TTLExpired {
		t.Fatalf("second reply %d, want %d", code, socks5.TTLExpired)
	}
	if _, closed := readAllUntilClose(c, 10*time.Second); !closed {
		t.Fatal("control connection left open")
	}
	if conn, err := net.DialTimeout("tcp", bound.String(), 5*time.Second); err == nil {
		conn.Close()
		t.Fatal("the BIND listener is still open")
	}
}

func TestSOCKSBindClientGone(t *testing.T) {
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, SOCKS5Bind: true})
	c, code, bound := socksBind(t, p.addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	if code != socks5.Succeeded {
		t.Fatalf("first reply %d", code)
	}
	c.Close()
	testkit.WaitFor(t, 5*time.Second, "the BIND listener to close", func() bool {
		conn, err := net.DialTimeout("tcp", bound.String(), 5*time.Second)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	testkit.WaitFor(t, 5*time.Second, "the connection to end", func() bool { return p.ActiveConns() == 0 })
}

func TestSOCKSBindRefused(t *testing.T) {
	p := startProxy(t, Options{Resolver: testResolver, SOCKS5Bind: true})
	for _, tc := range []struct {
		dst  socks5.Addr
		want socks5.ReplyCode
	}{
		{socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 21}, socks5.NotAllowed},
		{socks5.Addr{Name: "metadata.test", Port: 21}, socks5.NotAllowed},
		{socks5.Addr{Name: "nowhere.invalid", Port: 21}, socks5.HostUnreachable},
	} {
		c, code, _ := socksBind(t, p.addr, tc.dst)
		if code != tc.want {
			t.Errorf("%v: reply %d, want %d", tc.dst, code, tc.want)
		}
		if _, closed := readAllUntilClose(c, 10*time.Second); !closed {
			t.Errorf("%v: left open", tc.dst)
		}
	}
	// With the unspecified address, the peer itself is checked: a
	// loopback peer is not allowed.
	c, code, bound := socksBind(t, p.addr, socks5.Addr{IP: netip.IPv4Unspecified()})
	if code != socks5.Succeeded {
		t.Fatalf("any peer: first reply %d", code)
	}
	dial(t, bound.String())
	if code, _ := readReply(t, c); code != socks5.NotAllowed {
		t.Fatalf("loopback peer: second reply %d, want %d", code, socks5.NotAllowed)
	}
}

func TestSOCKSBindDisabled(t *testing.T) {
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}})
	c := dial(t, p.addr)
	msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
	msg, _ = socks5.AppendRequest(msg, socks5.Bind, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	_, _ = c.Write(msg)
	got, closed := readAllUntilClose(c, 10*time.Second)
	if !closed || len(got) < 4 || got[3] != byte(socks5.CommandNotSupported) {
		t.Fatalf("got %x closed=%v, want reply %d", got, closed, socks5.CommandNotSupported)
	}
}

func TestSOCKSBindUserLimit(t *testing.T) {
	p := startProxy(t, Options{
		Policy:     egress.PolicyConfig{AllowPrivate: true},
		SOCKS5Bind: true,
		UserLimits: UserLimits{MaxConns: 1},
	})
	_, code, _ := socksBind(t, p.addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	if code != socks5.Succeeded {
		t.Fatalf("first BIND: reply %d", code)
	}
	if _, code, _ := socksBind(t, p.addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")}); code != socks5.GeneralFailure {
		t.Fatalf("second BIND: reply %d, want %d", code, socks5.GeneralFailure)
	}
}

func TestSOCKSBindUpstream(t *testing.T) {
	_, err := New(Options{Listen: "127.0.0.1:0", SOCKS5Bind: true, Upstream: "http://127.0.0.1:1"})
	if err == nil || !strings.Contains(err.Error(), "BIND") {
		t.Fatalf("New: %v", err)
	}
}
