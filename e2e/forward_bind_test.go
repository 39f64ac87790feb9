package e2e

import (
	"context"
	"fmt"
	"github.com/weirproxy/weir"
	"github.com/weirproxy/weir/config"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testutil"
	"github.com/weirproxy/weir/socks5"
)

// bindRequest sends a SOCKS5 BIND request for dst through the proxy at
// proxyAddr and returns the control connection with the first reply.
func bindRequest(t *testing.T, proxyAddr string, dst socks5.Addr) (net.Conn, socks5.ReplyCode, netip.AddrPort) {
	t.Helper()
	c, err := net.DialTimeout("tcp", proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	msg, _ := socks5.AppendGreeting(nil, socks5.MethodNoAuth)
	if msg, err = socks5.AppendRequest(msg, socks5.Bind, dst); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	sel := make([]byte, 2)
	if _, err := io.ReadFull(c, sel); err != nil || sel[1] != byte(socks5.MethodNoAuth) {
		t.Fatalf("method selection: %x %v", sel, err)
	}
	code, bound := bindReply(t, c)
	return c, code, bound
}

func bindReply(t *testing.T, c net.Conn) (socks5.ReplyCode, netip.AddrPort) {
	t.Helper()
	code, a, err := socks5.ReadReply(c)
	if err != nil {
		t.Fatalf("reading a reply: %v", err)
	}
	return code, netip.AddrPortFrom(a.IP.Unmap(), a.Port)
}

// TestForwardProxySOCKSBind: `weir forward-proxy --socks-bind
// --allow-private` opens a port for a BIND, relays the connection a
// "server" makes to it from the address the client named, and logs it;
// without --socks-bind, BIND is not supported.
func TestForwardProxySOCKSBind(t *testing.T) {
	t.Parallel()
	p := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--socks-bind", "--allow-private", "--access-log", "stderr"}
	})
	c, code, bound := bindRequest(t, p.Addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1"), Port: 0})
	if code != socks5.Succeeded || !bound.Addr().IsLoopback() || bound.Port() == 0 {
		t.Fatalf("first reply %d %v, want 0 and a loopback port", code, bound)
	}
	srv, err := net.DialTimeout("tcp", bound.String(), 5*time.Second)
	if err != nil {
		t.Fatalf("connecting to the BIND port: %v", err)
	}
	defer srv.Close()
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	code, peer := bindReply(t, c)
	if want := srv.LocalAddr().(*net.TCPAddr).AddrPort(); code != socks5.Succeeded || peer != want {
		t.Fatalf("second reply %d %v, want 0 and %v", code, peer, want)
	}
	if _, err := srv.Write([]byte("PORT ok\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 8)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "PORT ok\n" {
		t.Fatalf("server to client: %q %v", got, err)
	}
	if _, err := c.Write([]byte("bye\n")); err != nil {
		t.Fatal(err)
	}
	got = make([]byte, 4)
	if _, err := io.ReadFull(srv, got); err != nil || string(got) != "bye\n" {
		t.Fatalf("client to server: %q %v", got, err)
	}
	c.Close()
	// The client's end reaches the server.
	if n, err := srv.Read(got); err != io.EOF {
		t.Fatalf("after the client closed: %d %v, want EOF", n, err)
	}
	srv.Close()
	// A drain waits for the BIND's access line; then the log is complete.
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.Done:
	case <-time.After(20 * time.Second):
		t.Fatal("weir forward-proxy did not exit after SIGTERM")
	}
	if l := p.Stderr.String(); !strings.Contains(l, "method=BIND") || !strings.Contains(l, "proto=socks5") ||
		!strings.Contains(l, "bytes_in=4 bytes_out=8") {
		t.Errorf("no BIND access line in:\n%s", l)
	}

	off := testutil.StartProcess(t, func(addr string) []string {
		return []string{weirBin, "forward-proxy", "--listen", addr, "--allow-private", "--access-log", "off"}
	})
	_, code, _ = bindRequest(t, off.Addr, socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
	if code != socks5.CommandNotSupported {
		t.Errorf("without --socks-bind: reply %d, want %d", code, socks5.CommandNotSupported)
	}
}

// TestForwardConfigSOCKSBind: the YAML key socks5_bind turns BIND on for
// a forward proxy run from a configuration file.
func TestForwardConfigSOCKSBind(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg, err := config.Parse("test.yaml", []byte(fmt.Sprintf(
			"forward_proxies:\n  - {address: \"127.0.0.1:3128\", socks5_bind: %v, policy: {allow_private: true}}\nlog: {access: \"off\"}\nshutdown_grace: 5s\n", on)))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ForwardProxies[0].Address = "127.0.0.1:0"
		srv, err := weir.New(cfg, weir.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		_, code, _ := bindRequest(t, srv.ForwardAddrs()[0].String(), socks5.Addr{IP: netip.MustParseAddr("127.0.0.1")})
		want := socks5.CommandNotSupported
		if on {
			want = socks5.Succeeded
		}
		if code != want {
			t.Errorf("socks5_bind: %v: BIND answered %v, want %v", on, code, want)
		}
		cancel()
		<-done
	}
}
