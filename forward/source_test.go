package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
)

var (
	src2 = netip.MustParseAddr("127.0.0.2")
	src3 = netip.MustParseAddr("127.0.0.3")
)

// sourceSeen asks the echo origin through the proxy with user and returns
// the client address the origin saw.
func sourceSeen(t *testing.T, p *testProxy, origin *echoOrigin, user string) string {
	t.Helper()
	auth := ""
	if user != "" {
		auth = basic(user, "pw")
	}
	resp, body := rawRequest(t, p.addr, "GET http://"+origin.hostport()+"/ HTTP/1.1\r\nHost: x\r\n"+auth+"\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("GET as %q: %d %q", user, resp.StatusCode, body)
	}
	return resp.Header.Get("X-Remote-IP")
}

func TestSourceRoundRobin(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy:  egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		Sources: egress.SourceConfig{Addrs: []netip.Addr{src2, src3}},
	})
	var seen []string
	for range 4 {
		seen = append(seen, sourceSeen(t, p, origin, ""))
	}
	if seen[0] == seen[1] || seen[0] != seen[2] || seen[1] != seen[3] {
		t.Fatalf("round robin over 127.0.0.2 and 127.0.0.3: origin saw %v", seen)
	}
	for _, s := range seen {
		if s != "127.0.0.2" && s != "127.0.0.3" {
			t.Fatalf("origin saw %s, not a pool address", s)
		}
	}
	// Tunnels pick from the same pool.
	got := map[string]bool{}
	for range 2 {
		c, err := socksDial(t, p.addr, origin.hostport(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := getOver(t, c, origin.hostport(), "/")
		c.Close()
		got[resp.Header.Get("X-Remote-IP")] = true
	}
	if !got["127.0.0.2"] || !got["127.0.0.3"] {
		t.Fatalf("two SOCKS5 tunnels came from %v", got)
	}
	testkit.WaitFor(t, 5*time.Second, "source in the access log", func() bool {
		return strings.Contains(p.acc.String(), "source=127.0.0.2") && strings.Contains(p.acc.String(), "source=127.0.0.3")
	})
}

func TestSourceSticky(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{
		Policy:  egress.PolicyConfig{AllowPrivate: true},
		Sources: egress.SourceConfig{Addrs: []netip.Addr{src2, src3}, Mode: egress.ModeSticky},
		Auth:    usersFile(t, "alice:pw"),
	})
	first := sourceSeen(t, p, origin, "alice-session-abc123")
	for i := range 5 {
		if got := sourceSeen(t, p, origin, "alice-session-abc123"); got != first {
			t.Fatalf("request %d of session abc123 came from %s, the first from %s", i+2, got, first)
		}
	}
	// Another session gets the next address.
	if other := sourceSeen(t, p, origin, "alice-session-xyz"); other == first {
		t.Fatalf("a new session got the same address %s", other)
	}
	// And the first session still keeps its own.
	if got := sourceSeen(t, p, origin, "alice-session-abc123"); got != first {
		t.Fatalf("session abc123 moved from %s to %s", first, got)
	}
	if n := p.sources.Sessions(); n != 2 {
		t.Errorf("%d sticky sessions remembered, want 2", n)
	}
}

func TestShutdownEndsTunnels(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}}})
	// One SOCKS5 tunnel and one CONNECT tunnel, both left open.
	sc, err := socksDial(t, p.addr, origin.hostport(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	hc := dial(t, p.addr)
	fmt.Fprintf(hc, "CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n", origin.hostport())
	buf := make([]byte, 64)
	_ = hc.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := hc.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("CONNECT: %q %v", buf[:n], err)
	}
	idle := dial(t, p.addr) // not identified yet: closed at once
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := p.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown with open tunnels: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Shutdown took %v", d)
	}
	for name, c := range map[string]net.Conn{"socks5": sc, "connect": hc, "idle": idle} {
		if _, closed := readAllUntilClose(c, 5*time.Second); !closed {
			t.Errorf("%s connection still open after Shutdown", name)
		}
	}
	if _, err := net.DialTimeout("tcp", p.addr, time.Second); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}
