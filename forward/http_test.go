package forward

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/weirproxy/weir/egress"
	"github.com/weirproxy/weir/internal/testkit"
)

func TestForwardAbsoluteForm(t *testing.T) {
	origin := newEchoOrigin(t, false)
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, Resolver: testResolver})
	c := proxyClient(t, p.addr, "", "", nil)

	for i := range 3 {
		resp, err := c.Post("http://"+origin.hostport()+"/echo?q=1", "text/plain", strings.NewReader("ping"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `body="ping"`) {
			t.Fatalf("request %d: %d %q", i, resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-URI"); got != "/echo?q=1" {
			t.Errorf("origin saw request-target %q, want origin-form /echo?q=1", got)
		}
		if got := resp.Header.Get("X-Host"); got != origin.hostport() {
			t.Errorf("origin saw Host %q, want %q", got, origin.hostport())
		}
		if got := resp.Header.Get("X-Forwarded-For-Seen"); got != "" {
			t.Errorf("a forward proxy must not tell destinations its clients' addresses; X-Forwarded-For: %q", got)
		}
	}
	// Keep-alive toward the destination: three requests, one connection.
	if n := origin.accepts.Load(); n != 1 {
		t.Errorf("origin accepted %d connections for 3 requests, want 1 (pooled)", n)
	}
	// A name, resolved by the proxy's resolver.
	resp, err := c.Get("http://origin.test:" + strconv.Itoa(int(origin.port())) + "/named")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Host") != "origin.test:"+strconv.Itoa(int(origin.port())) {
		t.Fatalf("by name: %d host %q", resp.StatusCode, resp.Header.Get("X-Host"))
	}
	testkit.WaitFor(t, 5*time.Second, "the access lines", func() bool {
		return strings.Count(p.acc.String(), "proto=http ") == 4
	})
}

func TestForwardRejectsOtherTargetForms(t *testing.T) {
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, Resolver: testResolver})
	for _, tc := range []struct {
		req, want string
	}{
		{"GET https://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n\r\n", "use CONNECT"},
		{"GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n", "forward proxy"},
		{"GET http://origin.test:99999/ HTTP/1.1\r\nHost: origin.test\r\n\r\n", "400"},
	} {
		resp, body := rawRequest(t, p.addr, tc.req)
		if resp.StatusCode != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%q: %d %q, want 400 mentioning %q", firstLine(tc.req), resp.StatusCode, body, tc.want)
		}
	}
	if n := p.dials.Load(); n != 0 {
		t.Errorf("%d outbound dials for refused requests", n)
	}
}

func TestForwardConnectTLS(t *testing.T) {
	origin := newEchoOrigin(t, true)
	p := startProxy(t, Options{
		Policy:   egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{origin.port()}},
		Resolver: testResolver,
	})
	pool := x509.NewCertPool()
	pool.AddCert(origin.Certificate())
	c := proxyClient(t, p.addr, "", "", &tls.Config{RootCAs: pool, ServerName: "example.com"})
	for i := range 2 {
		resp, err := c.Get("https://" + origin.hostport() + "/tls")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "hello from 127.0.0.1") {
			t.Fatalf("request %d through CONNECT: %d %q", i, resp.StatusCode, body)
		}
	}
	// The default ConnectPorts (443 only) refuses other ports.
	resp, body := rawRequest(t, p.addr, "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n")
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("Proxy-Status"), "destination_ip_prohibited") {
		t.Fatalf("CONNECT to port 22: %d %q %q", resp.StatusCode, resp.Header.Get("Proxy-Status"), body)
	}
}

func TestForwardConnectRelaysBothWays(t *testing.T) {
	// A raw TCP destination that echoes, then closes its side once it has
	// read the client's end of stream: the tunnel must carry the half
	// close both ways.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{uint16(port)}}})
	c := dial(t, p.addr)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	target := ln.Addr().String()
	// Bytes sent right behind the CONNECT head reach the destination too.
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\nearly-", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: "CONNECT"})
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	payload := strings.Repeat("0123456789", 100_000) // 1 MB
	go func() {
		_, _ = io.WriteString(c, payload)
		_ = c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(br)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "early-"+payload {
		t.Fatalf("echoed %d bytes, want %d", len(got), len("early-"+payload))
	}
	testkit.WaitFor(t, 5*time.Second, "usage counters", func() bool {
		u := p.Usage()[""]
		return u.Tunnels == 1 && u.BytesIn == int64(len(got)) && u.BytesOut == int64(len(got))
	})
}

func TestForwardConnectErrors(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, ps, _ := net.SplitHostPort(closed)
	port, _ := strconv.Atoi(ps)
	p := startProxy(t, Options{
		Policy:   egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{uint16(port), 443}},
		Resolver: testResolver,
	})
	for _, tc := range []struct {
		target  string
		status  int
		errType string
	}{
		{closed, 502, "connection_refused"},
		{"nowhere.invalid:443", 502, "dns_error"},
	} {
		resp, _ := rawRequest(t, p.addr, "CONNECT "+tc.target+" HTTP/1.1\r\nHost: "+tc.target+"\r\n\r\n")
		if resp.StatusCode != tc.status || !strings.Contains(resp.Header.Get("Proxy-Status"), tc.errType) {
			t.Errorf("CONNECT %s: %d %q, want %d %s", tc.target, resp.StatusCode, resp.Header.Get("Proxy-Status"), tc.status, tc.errType)
		}
	}
	// Absolute-form to the closed port: the engine answers 502.
	resp, _ := rawRequest(t, p.addr, "GET http://"+closed+"/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp.StatusCode != 502 {
		t.Errorf("GET to a closed port: %d, want 502", resp.StatusCode)
	}
	// A client's unreachable destination is not the operator's problem:
	// no warning, only debug lines and the access line.
	if strings.Contains(p.log.String(), "level=WARN") {
		t.Errorf("destination failures logged as warnings:\n%s", p.log.String())
	}
}

func TestForwardTunnelIdleTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		// Hold connections open, silent, until the test ends.
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	p := startProxy(t, Options{
		Policy:            egress.PolicyConfig{AllowPrivate: true, ConnectPorts: []uint16{uint16(port)}},
		TunnelIdleTimeout: 300 * time.Millisecond,
	})
	c := dial(t, p.addr)
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: x\r\n\r\n", ln.Addr())
	start := time.Now()
	got, closed := readAllUntilClose(c, 10*time.Second)
	if !closed || !strings.HasPrefix(string(got), "HTTP/1.1 200 ") {
		t.Fatalf("idle tunnel: closed=%v after %v, got %q", closed, time.Since(start), got)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("tunnel closed after %v, before its idle timeout", d)
	}
}

func TestForwardAuth(t *testing.T) {
	origin := newEchoOrigin(t, false)
	users := usersFile(t, "alice:wonderland", "bob:builder")
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, Auth: users})
	target := "http://" + origin.hostport() + "/secret"

	// No credentials: 407 with the challenge, on GET and on CONNECT.
	for _, req := range []string{
		"GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"CONNECT " + origin.hostport() + " HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET " + target + " HTTP/1.1\r\nHost: x\r\n" + basic("alice", "wrong") + "\r\n",
		"GET " + target + " HTTP/1.1\r\nHost: x\r\n" + basic("mallory", "wonderland") + "\r\n",
		"GET " + target + " HTTP/1.1\r\nHost: x\r\nProxy-Authorization: Bearer abc\r\n\r\n",
	} {
		resp, _ := rawRequest(t, p.addr, req)
		if resp.StatusCode != 407 {
			t.Errorf("%q: %d, want 407", firstLine(req), resp.StatusCode)
		}
		if got := resp.Header.Get("Proxy-Authenticate"); !strings.HasPrefix(got, `Basic realm="weir"`) {
			t.Errorf("%q: Proxy-Authenticate %q", firstLine(req), got)
		}
	}
	if n := origin.accepts.Load(); n != 0 {
		t.Fatalf("the origin saw %d connections from unauthenticated requests", n)
	}
	// With credentials: served, and the credentials are not forwarded.
	resp, body := rawRequest(t, p.addr, "GET "+target+" HTTP/1.1\r\nHost: x\r\n"+basic("alice", "wonderland")+"\r\n")
	if resp.StatusCode != 200 || resp.Header.Get("X-Proxy-Authorization") != "" {
		t.Fatalf("authenticated GET: %d %q, origin saw Proxy-Authorization %q", resp.StatusCode, body, resp.Header.Get("X-Proxy-Authorization"))
	}
	// A session suffix authenticates as the user.
	c := proxyClient(t, p.addr, "bob-session-42", "builder", nil)
	r2, err := c.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 {
		t.Fatalf("bob-session-42: %d", r2.StatusCode)
	}
	testkit.WaitFor(t, 5*time.Second, "per-user counters", func() bool {
		u := p.Usage()
		return u["alice"].Requests == 1 && u["bob"].Requests == 1 && u["alice"].BytesOut > 0
	})
	if _, ok := p.Usage()["mallory"]; ok {
		t.Error("an unknown user got a usage entry")
	}
}

func TestForwardRefusesOpenProxy(t *testing.T) {
	_, err := New(Options{Listen: "0.0.0.0:0"})
	var open *OpenProxyError
	if !errors.As(err, &open) || !strings.Contains(err.Error(), "refusing to run an open proxy on 0.0.0.0:0") {
		t.Fatalf("New on 0.0.0.0 without auth: %v", err)
	}
	_, err = New(Options{Listen: ":0"})
	if !errors.As(err, &open) {
		t.Fatalf("New on :0 without auth: %v", err)
	}
	// Loopback needs no authentication; AllowOpen forces the rest, with
	// a warning.
	p := startProxy(t, Options{Listen: "0.0.0.0:0", AllowOpen: true})
	testkit.WaitFor(t, 5*time.Second, "the warning", func() bool {
		return strings.Contains(p.log.String(), "WARNING: open proxy")
	})
	p2 := startProxy(t, Options{Listen: "127.0.0.1:0"})
	if strings.Contains(p2.log.String(), "WARNING") {
		t.Errorf("a loopback proxy warned: %s", p2.log.String())
	}
}

func TestForwardDestinationPoolsBounded(t *testing.T) {
	var origins []*echoOrigin
	for range 4 {
		origins = append(origins, newEchoOrigin(t, false))
	}
	p := startProxy(t, Options{Policy: egress.PolicyConfig{AllowPrivate: true}, MaxDestinations: 2})
	c := proxyClient(t, p.addr, "", "", nil)
	for _, o := range origins {
		resp, err := c.Get("http://" + o.hostport() + "/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if n := p.groups.len(); n > 2 {
			t.Fatalf("%d destination pools kept, bound is 2", n)
		}
	}
	// Idle pools are closed by the janitor.
	p.groups.expire(time.Now().Add(time.Hour))
	if n := p.groups.len(); n != 0 {
		t.Fatalf("%d pools after expiry", n)
	}
}
