package socks5

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/weirproxy/weir/internal/testkit"
)

// startEcho runs a TCP echo server on 127.0.0.1 and returns its address.
func startEcho(t *testing.T) netip.AddrPort {
	t.Helper()
	return netip.MustParseAddrPort(testkit.TCP(t, 10*time.Second, func(c net.Conn) { io.Copy(c, c) }))
}

// startProxy runs a small CONNECT-only SOCKS5 server on 127.0.0.1 built on
// ServerHandshake, the way Weir's forward proxy uses it. Names resolve
// through names only; anything else is not found.
func startProxy(t *testing.T, cfg *ServerConfig, names map[string]netip.AddrPort) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { proxyConn(c, cfg, names) })
		}
	})
	return ln.Addr().String()
}

func proxyConn(c net.Conn, cfg *ServerConfig, names map[string]netip.AddrPort) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	req, err := ServerHandshake(c, cfg)
	if err != nil {
		return
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	dst, ok := req.Dst.AddrPort()
	if !ok {
		if dst, ok = names[req.Dst.Name]; !ok {
			WriteReply(c, ReplyFor(&net.DNSError{Err: "no such host", Name: req.Dst.Name, IsNotFound: true}), netip.AddrPort{})
			return
		}
		dst = netip.AddrPortFrom(dst.Addr(), req.Dst.Port)
	}
	up, err := net.DialTimeout("tcp", dst.String(), 5*time.Second)
	if err != nil {
		WriteReply(c, ReplyFor(err), netip.AddrPort{})
		return
	}
	defer up.Close()
	if err := WriteReply(c, Succeeded, up.LocalAddr().(*net.TCPAddr).AddrPort()); err != nil {
		return
	}
	done := make(chan struct{})
	go func() {
		io.Copy(up, c)
		up.(*net.TCPConn).CloseWrite()
		close(done)
	}()
	io.Copy(c, up)
	<-done
}

func dialProxy(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	deadline(t, c)
	return c
}

// echoThrough sends a line through an established tunnel and reads it back.
func echoThrough(t *testing.T, c net.Conn) {
	t.Helper()
	msg := []byte("hello through SOCKS5\n")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	expect(t, c, msg)
}

func TestClientThroughServer(t *testing.T) {
	echo := startEcho(t)
	names := map[string]netip.AddrPort{"echo.test": echo}
	plain := startProxy(t, nil, names)
	authed := startProxy(t, &ServerConfig{Authenticate: checkPassword}, names)

	t.Run("IPv4 target", func(t *testing.T) {
		c := dialProxy(t, plain)
		bound, err := ClientHandshake(c, echo.String(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		if bound.Addr() != ip("127.0.0.1") || bound.Port() == 0 {
			t.Fatalf("bound %v", bound)
		}
		echoThrough(t, c)
	})
	t.Run("domain target", func(t *testing.T) {
		c := dialProxy(t, plain)
		if _, err := ClientHandshake(c, "echo.test:"+strconv.Itoa(int(echo.Port())), "", ""); err != nil {
			t.Fatal(err)
		}
		echoThrough(t, c)
	})
	t.Run("user/pass", func(t *testing.T) {
		c := dialProxy(t, authed)
		if _, err := ClientHandshake(c, echo.String(), "alice", "secret"); err != nil {
			t.Fatal(err)
		}
		echoThrough(t, c)
	})
	t.Run("credentials the server does not need", func(t *testing.T) {
		c := dialProxy(t, plain)
		if _, err := ClientHandshake(c, echo.String(), "alice", "secret"); err != nil {
			t.Fatal(err)
		}
		echoThrough(t, c)
	})
	t.Run("wrong password", func(t *testing.T) {
		c := dialProxy(t, authed)
		if _, err := ClientHandshake(c, echo.String(), "alice", "guess"); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("err = %v, want ErrAuthFailed", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		c := dialProxy(t, authed)
		if _, err := ClientHandshake(c, echo.String(), "", ""); !errors.Is(err, ErrNoAcceptableMethod) {
			t.Fatalf("err = %v, want ErrNoAcceptableMethod", err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := ln.Addr().String()
		ln.Close()
		c := dialProxy(t, plain)
		_, err = ClientHandshake(c, closed, "", "")
		var re *ReplyError
		if !errors.As(err, &re) || re.Code != ConnectionRefused {
			t.Fatalf("err = %v, want a ReplyError with ConnectionRefused", err)
		}
	})
	t.Run("unknown name", func(t *testing.T) {
		c := dialProxy(t, plain)
		_, err := ClientHandshake(c, "nowhere.test:80", "", "")
		var re *ReplyError
		if !errors.As(err, &re) || re.Code != HostUnreachable {
			t.Fatalf("err = %v, want a ReplyError with HostUnreachable", err)
		}
	})
}

// fakeServer runs script against one client connection on loopback and
// returns the client end.
func fakeServer(t *testing.T, script func(c net.Conn)) net.Conn {
	t.Helper()
	client, server := tcpPair(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		script(server)
		server.Close()
	}()
	t.Cleanup(func() { <-done })
	return client
}

func TestClientAgainstBrokenServers(t *testing.T) {
	skip := func(c net.Conn, n int) { io.ReadFull(c, make([]byte, n)) }
	cases := []struct {
		name   string
		user   string
		script func(c net.Conn)
		check  func(bound netip.AddrPort, err error) bool
	}{
		{"method not offered", "", func(c net.Conn) {
			skip(c, 3)
			c.Write(cat(5, 2))
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, ErrUnexpectedMethod) }},
		{"GSS-API chosen", "alice", func(c net.Conn) {
			skip(c, 4)
			c.Write(cat(5, 1))
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, ErrUnexpectedMethod) }},
		{"SOCKS4 answer", "", func(c net.Conn) {
			skip(c, 3)
			c.Write(cat(0, 0x5a))
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, ErrVersion) }},
		{"auth status with the wrong version", "alice", func(c net.Conn) {
			skip(c, 4)
			c.Write(cat(5, 2))
			skip(c, 14)
			c.Write(cat(5, 0))
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, ErrVersion) }},
		{"closed after the greeting", "", func(c net.Conn) {
			skip(c, 3)
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, io.EOF) }},
		{"reply with a domain", "", func(c net.Conn) {
			skip(c, 3)
			c.Write(cat(5, 0))
			skip(c, 10)
			c.Write(domainMsg([]byte{5, 0, 0}, "relay.example", 1080))
		}, func(bound netip.AddrPort, err error) bool { return err == nil && bound == netip.AddrPort{} }},
		{"reply with the wrong version", "", func(c net.Conn) {
			skip(c, 3)
			c.Write(cat(5, 0))
			skip(c, 10)
			c.Write(cat(4, 0, 0, 1, 0, 0, 0, 0, 0, 0))
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, ErrVersion) }},
		{"truncated reply", "", func(c net.Conn) {
			skip(c, 3)
			c.Write(cat(5, 0))
			skip(c, 10)
			c.Write(cat(5, 0, 0, 1, 127))
		}, func(_ netip.AddrPort, err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }},
		{"TTL expired", "", func(c net.Conn) {
			skip(c, 3)
			c.Write(cat(5, 0))
			skip(c, 10)
			c.Write(cat(5, 6, 0, 1, 0, 0, 0, 0, 0, 0))
		}, func(_ netip.AddrPort, err error) bool {
			var re *ReplyError
			return errors.As(err, &re) && re.Code == TTLExpired && err.Error() == "socks5: server replied TTL expired"
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := fakeServer(t, c.script)
			bound, err := ClientHandshake(conn, "127.0.0.1:80", c.user, "secret")
			if !c.check(bound, err) {
				t.Fatalf("bound %v, err %v", bound, err)
			}
		})
	}
}

// TestClientRejectsBeforeWriting checks arguments are checked before any
// byte is sent: a write on the unread pipe would block until the deadline.
func TestClientRejectsBeforeWriting(t *testing.T) {
	for _, c := range []struct{ target, user, pass string }{
		{"no-port", "", ""},
		{"bad name:80", "", ""},
		{"127.1:80", "", ""},
		{"example.com:99999", "", ""},
		{"example.com:80", "alice", ""},
		{"example.com:80", label(256), "p"},
	} {
		a, b := net.Pipe()
		a.SetDeadline(time.Now().Add(time.Second))
		_, err := ClientHandshake(a, c.target, c.user, c.pass)
		if err == nil || isTimeout(err) {
			t.Errorf("%+v: err = %v", c, err)
		}
		a.Close()
		b.Close()
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
