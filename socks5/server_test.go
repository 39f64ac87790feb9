package socks5

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// handshakeResult is what ServerHandshake returned on the server side.
type handshakeResult struct {
	req *Request
	err error
}

// startHandshake runs ServerHandshake on the server end of a loopback
// TCP connection and returns the client end and the result to come.
// When the handshake fails, the server end is closed, as a caller would.
func startHandshake(t *testing.T, cfg *ServerConfig) (*net.TCPConn, net.Conn, <-chan handshakeResult) {
	t.Helper()
	client, server := tcpPair(t)
	done := make(chan handshakeResult, 1)
	go func() {
		req, err := ServerHandshake(server, cfg)
		if err != nil {
			server.Close()
		}
		done <- handshakeResult{req, err}
	}()
	return client, server, done
}

func wait(t *testing.T, done <-chan handshakeResult) handshakeResult {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("ServerHandshake did not return")
		return handshakeResult{}
	}
}

// expect reads exactly len(want) bytes from c and compares them.
func expect(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading %q: got %q, %v", want, got, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// expectClosed checks that the server closed the connection without
// sending anything more.
func expectClosed(t *testing.T, c net.Conn) {
	t.Helper()
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading to the end: %v", err)
	}
	if len(got) != 0 {
		t.Fatalf("unexpected bytes %q", got)
	}
}

func write(t *testing.T, c net.Conn, parts ...any) {
	t.Helper()
	if _, err := c.Write(cat(parts...)); err != nil {
		t.Fatal(err)
	}
}

func checkPassword(user, pass string) bool {
	return subtle.ConstantTimeCompare([]byte(user), []byte("alice")) == 1 &&
		subtle.ConstantTimeCompare([]byte(pass), []byte("secret")) == 1
}

var connectLocal = cat(5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90)

func TestServerNoAuth(t *testing.T) {
	client, server, done := startHandshake(t, nil)
	write(t, client, 5, 1, 0)
	expect(t, client, cat(5, 0))
	write(t, client, connectLocal)
	r := wait(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := Request{Cmd: Connect, Dst: Addr{IP: ip("127.0.0.1"), Port: 8080}}
	if *r.req != want {
		t.Fatalf("request %+v, want %+v", *r.req, want)
	}
	if err := WriteReply(server, Succeeded, netip.MustParseAddrPort("127.0.0.1:4321")); err != nil {
		t.Fatal(err)
	}
	expect(t, client, cat(5, 0, 0, 1, 127, 0, 0, 1, 0x10, 0xe1))
}

func TestServerUserPass(t *testing.T) {
	client, server, done := startHandshake(t, &ServerConfig{Authenticate: checkPassword})
	write(t, client, 5, 2, 0, 2)
	expect(t, client, cat(5, 2))
	write(t, client, 1, 5, "alice", 6, "secret")
	expect(t, client, cat(1, 0))
	write(t, client, domainMsg([]byte{5, 1, 0}, "example.com", 443))
	r := wait(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	want := Request{Cmd: Connect, Dst: Addr{Name: "example.com", Port: 443}, User: "alice"}
	if *r.req != want {
		t.Fatalf("request %+v, want %+v", *r.req, want)
	}
	if err := WriteReply(server, NotAllowed, netip.AddrPort{}); err != nil {
		t.Fatal(err)
	}
	expect(t, client, cat(5, 2, 0, 1, 0, 0, 0, 0, 0, 0))
}

// TestServerFailures runs handshakes that must fail, checking the bytes the
// server answers with, the error, and that nothing follows.
func TestServerFailures(t *testing.T) {
	auth := &ServerConfig{Authenticate: checkPassword}
	cases := []struct {
		name   string
		cfg    *ServerConfig
		send   [][]byte // each write is followed by reading the next answer
		answer [][]byte
		err    error
	}{
		{"wrong password", auth,
			[][]byte{cat(5, 1, 2), cat(1, 5, "alice", 5, "wrong")}, [][]byte{cat(5, 2), cat(1, 1)}, ErrAuthFailed},
		{"unknown user", auth,
			[][]byte{cat(5, 1, 2), cat(1, 3, "bob", 6, "secret")}, [][]byte{cat(5, 2), cat(1, 1)}, ErrAuthFailed},
		{"empty password", auth,
			[][]byte{cat(5, 1, 2), cat(1, 5, "alice", 0)}, [][]byte{cat(5, 2), cat(1, 1)}, ErrCredentialLen},
		{"user/pass with the wrong version", auth,
			[][]byte{cat(5, 1, 2), cat(5)}, [][]byte{cat(5, 2), cat(1, 1)}, ErrVersion},
		{"auth required, only no-auth offered", auth,
			[][]byte{cat(5, 1, 0)}, [][]byte{cat(5, 0xff)}, ErrNoAcceptableMethod},
		{"no auth, only user/pass offered", nil,
			[][]byte{cat(5, 1, 2)}, [][]byte{cat(5, 0xff)}, ErrNoAcceptableMethod},
		{"only GSS-API offered", nil,
			[][]byte{cat(5, 1, 1)}, [][]byte{cat(5, 0xff)}, ErrNoAcceptableMethod},
		{"no methods", nil,
			[][]byte{cat(5, 0)}, [][]byte{cat(5, 0xff)}, ErrNoMethods},
		{"SOCKS4", nil,
			[][]byte{cat(4, 1, 0, 80, 127, 0, 0, 1, 0)}, [][]byte{nil}, ErrVersion},
		{"HTTP", nil,
			[][]byte{[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")}, [][]byte{nil}, ErrVersion},
		{"BIND not enabled", nil,
			[][]byte{cat(5, 1, 0), cat(5, 2, 0, 1, 0, 0, 0, 0, 0, 0)}, [][]byte{cat(5, 0), cat(5, 7, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrCommandNotSupported},
		{"UDP ASSOCIATE not enabled", nil,
			[][]byte{cat(5, 1, 0), cat(5, 3, 0, 1, 0, 0, 0, 0, 0, 0)}, [][]byte{cat(5, 0), cat(5, 7, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrCommandNotSupported},
		{"unknown command", nil,
			[][]byte{cat(5, 1, 0), cat(5, 9, 0, 1)}, [][]byte{cat(5, 0), cat(5, 7, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrCommandNotSupported},
		{"unknown address type", nil,
			[][]byte{cat(5, 1, 0), cat(5, 1, 0, 7)}, [][]byte{cat(5, 0), cat(5, 8, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrAddressTypeNotSupported},
		{"bad domain", nil,
			[][]byte{cat(5, 1, 0), domainMsg([]byte{5, 1, 0}, "a\x00b", 80)}, [][]byte{cat(5, 0), cat(5, 1, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrDomain},
		{"reserved byte", nil,
			[][]byte{cat(5, 1, 0), cat(5, 1, 1, 1)}, [][]byte{cat(5, 0), cat(5, 1, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrReserved},
		{"request with the wrong version", nil,
			[][]byte{cat(5, 1, 0), cat(4, 1, 0, 1)}, [][]byte{cat(5, 0), cat(5, 1, 0, 1, 0, 0, 0, 0, 0, 0)}, ErrVersion},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			client, _, done := startHandshake(t, c.cfg)
			for i, msg := range c.send {
				write(t, client, msg)
				if c.answer[i] != nil {
					expect(t, client, c.answer[i])
				}
			}
			expectClosed(t, client)
			r := wait(t, done)
			if !errors.Is(r.err, c.err) {
				t.Fatalf("err = %v, want %v", r.err, c.err)
			}
		})
	}
}

func TestServerAllowedCommands(t *testing.T) {
	for _, cmd := range []Command{Bind, UDPAssociate} {
		t.Run(cmd.String(), func(t *testing.T) {
			client, _, done := startHandshake(t, &ServerConfig{AllowBind: true, AllowUDPAssociate: true})
			write(t, client, 5, 1, 0)
			expect(t, client, cat(5, 0))
			write(t, client, 5, cmd, 0, 1, 0, 0, 0, 0, 0, 0)
			r := wait(t, done)
			if r.err != nil || r.req.Cmd != cmd {
				t.Fatalf("%+v, %v", r.req, r.err)
			}
		})
	}
}

// TestServerByteAtATime sends the whole handshake one byte per segment,
// then tunnel bytes, which the server must leave in the connection.
func TestServerByteAtATime(t *testing.T) {
	client, server, done := startHandshake(t, &ServerConfig{Authenticate: checkPassword})
	send := func(b []byte) {
		for i := range b {
			write(t, client, b[i:i+1])
		}
	}
	send(cat(5, 3, 0, 1, 2))
	expect(t, client, cat(5, 2))
	send(cat(1, 5, "alice", 6, "secret"))
	expect(t, client, cat(1, 0))
	send(cat(5, 1, 0, 4, ip("::1").AsSlice(), 0, 80, "data"))
	r := wait(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.req.Dst != (Addr{IP: ip("::1"), Port: 80}) || r.req.User != "alice" {
		t.Fatalf("request %+v", *r.req)
	}
	expect(t, server, []byte("data"))
}

// TestServerPipelined sends the greeting, the request and tunnel bytes in
// one write, as optimistic clients do: the server must read only the
// handshake.
func TestServerPipelined(t *testing.T) {
	client, server, done := startHandshake(t, nil)
	write(t, client, cat(5, 1, 0), connectLocal, "GET / HTTP/1.1\r\n\r\n")
	r := wait(t, done)
	if r.err != nil {
		t.Fatal(r.err)
	}
	expect(t, client, cat(5, 0))
	expect(t, server, []byte("GET / HTTP/1.1\r\n\r\n"))
}

func TestServerTimeout(t *testing.T) {
	client, _, done := startHandshake(t, &ServerConfig{HandshakeTimeout: 100 * time.Millisecond})
	write(t, client, 5, 1) // and nothing more
	r := wait(t, done)
	if !errors.Is(r.err, os.ErrDeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", r.err)
	}
	expectClosed(t, client)
}

// TestServerClearsDeadline checks that a successful handshake leaves no
// deadline behind for the tunnel.
func TestServerClearsDeadline(t *testing.T) {
	client, server, done := startHandshake(t, &ServerConfig{HandshakeTimeout: 250 * time.Millisecond})
	write(t, client, cat(5, 1, 0), connectLocal)
	if r := wait(t, done); r.err != nil {
		t.Fatal(r.err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(server, make([]byte, 1))
		got <- err
	}()
	// Wait past the handshake timeout, measured by a second read that
	// does carry a deadline, before sending the byte.
	if got, err := readWithTimeout(client, 400*time.Millisecond); !errors.Is(err, os.ErrDeadlineExceeded) || !bytes.Equal(got, cat(5, 0)) {
		t.Fatalf("client read %q, %v; want the method selection, then a timeout", got, err)
	}
	write(t, client, "x")
	if err := <-got; err != nil {
		t.Fatalf("read after the handshake: %v", err)
	}
}

// readWithTimeout reads (the client's method selection, then nothing)
// until nothing arrives for d.
func readWithTimeout(c net.Conn, d time.Duration) ([]byte, error) {
	var all []byte
	buf := make([]byte, 64)
	for {
		c.SetReadDeadline(time.Now().Add(d))
		n, err := c.Read(buf)
		all = append(all, buf[:n]...)
		if err != nil {
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			return all, err
		}
	}
}

func TestServerClientGone(t *testing.T) {
	client, _, done := startHandshake(t, nil)
	write(t, client, 5, 1)
	client.Close()
	r := wait(t, done)
	if !errors.Is(r.err, io.ErrUnexpectedEOF) {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", r.err)
	}
}

func TestWriteReply(t *testing.T) {
	cases := []struct {
		code  ReplyCode
		bound netip.AddrPort
		want  []byte
	}{
		{Succeeded, netip.MustParseAddrPort("10.0.0.1:80"), cat(5, 0, 0, 1, 10, 0, 0, 1, 0, 80)},
		{Succeeded, netip.MustParseAddrPort("[::ffff:10.0.0.1]:80"), cat(5, 0, 0, 1, 10, 0, 0, 1, 0, 80)},
		{Succeeded, netip.MustParseAddrPort("[2001:db8::1]:443"), cat(5, 0, 0, 4, ip("2001:db8::1").AsSlice(), 1, 0xbb)},
		{Succeeded, netip.MustParseAddrPort("[fe80::1%eth0]:443"), cat(5, 0, 0, 4, ip("fe80::1").AsSlice(), 1, 0xbb)},
		{HostUnreachable, netip.AddrPort{}, cat(5, 4, 0, 1, 0, 0, 0, 0, 0, 0)},
	}
	for _, c := range cases {
		var b bytes.Buffer
		if err := WriteReply(&b, c.code, c.bound); err != nil || !bytes.Equal(b.Bytes(), c.want) {
			t.Errorf("WriteReply(%v, %v) = %q, %v; want %q", c.code, c.bound, b.Bytes(), err, c.want)
		}
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "i/o timeout" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

func opErr(errno syscall.Errno) error {
	return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", errno)}
}

func TestReplyFor(t *testing.T) {
	cases := []struct {
		err  error
		want ReplyCode
	}{
		{nil, Succeeded},
		{errors.New("something"), GeneralFailure},
		{ErrDomain, GeneralFailure},
		{fmt.Errorf("policy: %w", ErrNotAllowed), NotAllowed},
		{opErr(syscall.EACCES), NotAllowed},
		{opErr(syscall.EPERM), NotAllowed},
		{ErrCommandNotSupported, CommandNotSupported},
		{ErrAddressTypeNotSupported, AddressTypeNotSupported},
		{&net.OpError{Op: "dial", Err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}}, HostUnreachable},
		{&net.DNSError{Err: "timeout", Name: "x.example", IsTimeout: true}, HostUnreachable},
		{opErr(syscall.ECONNREFUSED), ConnectionRefused},
		{opErr(syscall.ENETUNREACH), NetworkUnreachable},
		{opErr(syscall.EHOSTUNREACH), HostUnreachable},
		{opErr(syscall.EHOSTDOWN), HostUnreachable},
		{opErr(syscall.ETIMEDOUT), TTLExpired},
		{&net.OpError{Op: "dial", Err: os.ErrDeadlineExceeded}, TTLExpired},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), TTLExpired},
		{&net.OpError{Op: "dial", Err: timeoutErr{}}, TTLExpired},
		{context.Canceled, GeneralFailure},
	}
	for _, c := range cases {
		if got := ReplyFor(c.err); got != c.want {
			t.Errorf("ReplyFor(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestReplyForRealDial maps the errors of real dials on loopback.
func TestReplyForRealDial(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = net.DialTimeout("tcp", addr, 5*time.Second)
	if got := ReplyFor(err); got != ConnectionRefused {
		t.Errorf("dial to a closed port: %v -> %v", err, got)
	}

	ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	var d net.Dialer
	_, err = d.DialContext(ctx, "tcp", "127.0.0.1:1")
	if got := ReplyFor(err); got != TTLExpired {
		t.Errorf("dial past its deadline: %v -> %v", err, got)
	}
}
