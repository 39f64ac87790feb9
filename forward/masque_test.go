package forward

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
	"github.com/weirproxy/weir/masque"
)

// h3Conn opens an HTTP/3 connection with datagrams to addr, trusting
// roots.
func h3Conn(t testing.TB, addr string, roots *x509.CertPool) *http3.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, addr, &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", NextProtos: []string{http3.NextProtoH3}},
		&quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatalf("QUIC to %s: %v", addr, err)
	}
	tr := &http3.Transport{EnableDatagrams: true}
	t.Cleanup(func() {
		_ = qc.CloseWithError(0, "")
		tr.Close()
	})
	return tr.NewClientConn(qc)
}

// udpRoundTrip sends msg through the flow until its echo comes back
// (datagrams may be lost), a bounded number of times.
func udpRoundTrip(t testing.TB, c *masque.Conn, msg []byte) {
	t.Helper()
	for range 50 {
		if err := c.Send(msg); err != nil {
			t.Fatalf("send: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		got, err := c.Receive(ctx)
		cancel()
		if err == nil {
			if !bytes.Equal(got, msg) {
				t.Fatalf("echo %q, want %q", got, msg)
			}
			return
		}
	}
	t.Fatalf("no echo of %q through the flow", msg)
}

// startMASQUE starts a proxy with TLS and HTTP/3 on a UDP socket of its
// own, and returns it with that socket's address and the roots to trust.
func startMASQUE(t testing.TB, o Options) (*testProxy, string, *x509.CertPool) {
	t.Helper()
	srvTLS, roots := proxyTLS(t)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.TLS, o.HTTP3, o.PacketConn = srvTLS, true, pc
	p := startProxy(t, o)
	return p, pc.LocalAddr().String(), roots
}

// TestMASQUE: CONNECT-UDP over HTTP/3 asks for credentials, relays
// datagrams to a local UDP echo server, counts the flow for its user,
// logs it, and holds it to the user's connection limit.
func TestMASQUE(t *testing.T) {
	echo := udpEcho(t)
	target := echo.LocalAddr().String()
	p, h3addr, roots := startMASQUE(t, Options{
		Auth:       usersFile(t, "alice:wonderland"),
		Policy:     egress.PolicyConfig{AllowPrivate: true},
		UserLimits: UserLimits{MaxConns: 2},
	})
	cc := h3Conn(t, h3addr, roots)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, resp, err := masque.Dial(ctx, cc, h3addr, target, nil)
	if err == nil || resp == nil || resp.StatusCode != 407 || resp.Header.Get("Proxy-Authenticate") == "" {
		t.Fatalf("CONNECT-UDP without credentials: %v %v", resp, err)
	}
	cred := http.Header{"Proxy-Authorization": {"Basic " + b64("alice:wonderland")}}
	_, resp, err = masque.Dial(ctx, cc, h3addr, target, http.Header{"Proxy-Authorization": {"Basic " + b64("alice:nope")}})
	if err == nil || resp == nil || resp.StatusCode != 407 {
		t.Fatalf("CONNECT-UDP with a wrong password: %v %v", resp, err)
	}

	c1, _, err := masque.Dial(ctx, cc, h3addr, target, cred)
	if err != nil {
		t.Fatal(err)
	}
	udpRoundTrip(t, c1, []byte("ping over MASQUE"))
	c2, _, err := masque.Dial(ctx, cc, h3addr, target, cred)
	if err != nil {
		t.Fatal(err)
	}
	udpRoundTrip(t, c2, []byte("second flow"))
	// A third flow is over alice's limit of 2.
	_, resp, err = masque.Dial(ctx, cc, h3addr, target, cred)
	if err == nil || resp == nil || resp.StatusCode != 429 || !strings.Contains(resp.Header.Get("Proxy-Status"), "http_request_denied") {
		t.Fatalf("third CONNECT-UDP with MaxConns 2: %v %v", resp, err)
	}
	c1.Close()
	c2.Close()
	testkit.WaitFor(t, 10*time.Second, "both flows counted", func() bool {
		u := p.Usage()["alice"]
		return u.Associations == 2 && u.BytesIn >= int64(len("ping over MASQUE")) && u.BytesOut >= int64(len("ping over MASQUE"))
	})
	// With both flows ended, alice may open one again.
	testkit.WaitFor(t, 10*time.Second, "a new flow after the others ended", func() bool {
		c, _, err := masque.Dial(ctx, cc, h3addr, target, cred)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	if l := p.acc.String(); !strings.Contains(l, "proto=masque") || !strings.Contains(l, "user=alice") || !strings.Contains(l, "status=429") {
		t.Errorf("access log without the MASQUE lines:\n%s", l)
	}
}

// TestMASQUERefused: without AllowPrivate a loopback target is refused
// with 403 and Proxy-Status, and no datagram leaves.
func TestMASQUERefused(t *testing.T) {
	echo := udpEcho(t)
	_, h3addr, roots := startMASQUE(t, Options{})
	cc := h3Conn(t, h3addr, roots)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, target := range []string{echo.LocalAddr().String(), "localhost:53", "169.254.169.254:53"} {
		_, resp, err := masque.Dial(ctx, cc, h3addr, target, nil)
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("CONNECT-UDP to %s: %v %v, want 403", target, resp, err)
		}
		if ps := resp.Header.Get("Proxy-Status"); !strings.Contains(ps, "destination_ip_prohibited") {
			t.Errorf("CONNECT-UDP to %s: Proxy-Status %q", target, ps)
		}
	}
}

// TestMASQUENeedsTLS: HTTP3 without TLS, or with an upstream proxy, is a
// configuration error.
func TestMASQUENeedsTLS(t *testing.T) {
	if _, err := New(Options{Listen: "127.0.0.1:0", HTTP3: true}); err == nil {
		t.Error("HTTP3 without TLS accepted")
	}
	srvTLS, _ := proxyTLS(t)
	if _, err := New(Options{Listen: "127.0.0.1:0", HTTP3: true, TLS: srvTLS, Upstream: "http://127.0.0.1:1"}); err == nil {
		t.Error("HTTP3 with an upstream proxy accepted")
	}
}

// TestHTTP3BesideTCP: without a PacketConn, HTTP/3 listens on the UDP
// port with the TCP port's number.
func TestHTTP3BesideTCP(t *testing.T) {
	srvTLS, roots := proxyTLS(t)
	echo := udpEcho(t)
	var p *testProxy
	for attempt := 0; ; attempt++ {
		// The UDP port of that number may be taken: try a few TCP ports.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if pc, err := listenUDPBeside(ln.Addr()); err != nil {
			ln.Close()
			if attempt < 5 {
				continue
			}
			t.Fatal(err)
		} else {
			pc.Close()
		}
		p = startProxy(t, Options{Listener: ln, TLS: srvTLS, HTTP3: true, Policy: egress.PolicyConfig{AllowPrivate: true}})
		break
	}
	cc := h3Conn(t, p.addr, roots)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := masque.Dial(ctx, cc, p.addr, echo.LocalAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	udpRoundTrip(t, c, []byte("same port number"))
}

// TestMASQUESourceAddress: a flow leaves from the source address picked
// for its user.
func TestMASQUESourceAddress(t *testing.T) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { // answers every datagram with the address it came from
		defer close(done)
		buf := make([]byte, 2048)
		for {
			_, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteToUDPAddrPort([]byte(from.Addr().String()), from)
		}
	}()
	t.Cleanup(func() { pc.Close(); <-done })
	_, h3addr, roots := startMASQUE(t, Options{
		Policy:  egress.PolicyConfig{AllowPrivate: true},
		Sources: egress.SourceConfig{Addrs: []netip.Addr{netip.MustParseAddr("127.0.0.2")}},
	})
	cc := h3Conn(t, h3addr, roots)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := masque.Dial(ctx, cc, h3addr, pc.LocalAddr().String(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var got []byte
	for i := 0; i < 50 && got == nil; i++ {
		if err := c.Send([]byte("who")); err != nil {
			t.Fatal(err)
		}
		rctx, rcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		got, _ = c.Receive(rctx)
		rcancel()
	}
	if string(got) != "127.0.0.2" {
		t.Errorf("the target saw the flow from %q, want 127.0.0.2", got)
	}
}

// TestMASQUERateLimit: a user's bandwidth limit applies to MASQUE flows:
// datagrams over the rate are dropped, as a congested path would drop
// them, while small ones within it pass.
func TestMASQUERateLimit(t *testing.T) {
	echo := udpEcho(t)
	_, h3addr, roots := startMASQUE(t, Options{
		Auth:       usersFile(t, "alice:wonderland"),
		Policy:     egress.PolicyConfig{AllowPrivate: true},
		UserLimits: UserLimits{BytesPerSecond: 1},
	})
	cc := h3Conn(t, h3addr, roots)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cred := http.Header{"Proxy-Authorization": {"Basic " + b64("alice:wonderland")}}
	c, _, err := masque.Dial(ctx, cc, h3addr, echo.LocalAddr().String(), cred)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The bucket holds at least 64 KiB: the first 1000-byte datagrams
	// fit, so the flow works at all.
	udpRoundTrip(t, c, bytes.Repeat([]byte("a"), 1000))
	// Then 100 datagrams of 1,200 bytes: far over 1 byte per second once
	// the bucket is empty, so most are dropped (without the limit, about
	// 96 of 100 come back on loopback).
	got := 0
	for range 100 {
		if err := c.Send(bytes.Repeat([]byte("b"), 1200)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		rctx, rcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := c.Receive(rctx)
		rcancel()
		if err != nil {
			break
		}
		got++
	}
	if got > 60 {
		t.Fatalf("%d of 100 datagrams came back through a 1 B/s limit", got)
	}
	t.Logf("%d of 100 datagrams passed the limit", got)
}
